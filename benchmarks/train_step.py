"""The time of one training step of the default's architecture (batch 16 of 16 x 32 x 32, bf16 autocast, AdamW), eager
or through ``torch.compile``: where a recipe's minutes go, and whether compiling buys any of them back.

    python benchmarks/train_step.py              # eager
    python benchmarks/train_step.py --compile    # inductor; the first steps compile (minutes on 2 cores)

Caption lengths vary from step to step as in training (9-12 tokens), so a compiled model meets the shape changes
a real run does. Prints the warm-up steps' times, then the median and minimum of the next `--steps` (12).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/stunet-shapes-single.yaml")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    args = p.parse_args()

    from vidiff.training.config import load_config
    from vidiff.training.trainer import build_model

    torch.manual_seed(0)
    cfg = load_config(args.config)
    text_dim = 768  # all-MiniLM-L6-v2 read at two depths (text_features: last+embeddings)
    model = build_model(cfg, text_dim)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    fn = torch.compile(model) if args.compile else model
    b, d = args.batch, cfg.data
    x = torch.randn(b, 3, d.num_frames, d.resolution, d.resolution)

    def step(length: int) -> float:
        t0 = time.perf_counter()
        t = torch.randint(0, 1000, (b,))
        emb, mask = torch.randn(b, length, text_dim), torch.ones(b, length, dtype=torch.bool)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.fp32):
            out = fn(x, t, emb, mask, None)
        (out.float() - x).pow(2).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    warm = [round(step(n), 2) for n in (9, 11, 9, 12)]
    times = sorted(step((9, 10, 11, 12)[i % 4]) for i in range(args.steps))
    print(json.dumps({"compile": args.compile, "bf16": not args.fp32, "batch": b, "threads": torch.get_num_threads(),
                      "warmup_s": warm, "median_s": round(times[len(times) // 2], 3), "min_s": round(times[0], 3)}))


if __name__ == "__main__":
    main()
