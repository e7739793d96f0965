"""A plan for real scale, on paper (issue 23, docs/scale.md): FLOPs of a 1B-class STUNet training step at Lumiere's
base size (80 x 128 x 128 pixels) and at 16 x 64 x 64 latents, counted by torch's FlopCounterMode on the meta device
(no memory, no GPU needed), and what a WebVid-10M-scale run costs in GPU-hours at a stated throughput.

    python benchmarks/scale_plan.py --out benchmarks/results/scale-plan.json
    python benchmarks/scale_plan.py --mfu 0.35 --peak-tflops 989   # H100 / H200 dense bf16 peak

A training step is counted as 3 forward passes (forward + backward), 4 with gradient checkpointing (one more
forward). The GPU throughput (model FLOPs utilisation, MFU) is an input: scripts/gpu_check.sh measures the
Shapes model's on the lent GPU; until a 1B-class model is measured there, the table states the MFU it assumes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

WEBVID_CLIPS = 10_700_000  # WebVid-10M: 10.7 M video-caption pairs

# VideoUNet settings of the 1B class (T5-XXL-width text, 4 levels, 2 layers per level)
WIDE = dict(channels=(320, 640, 1280, 1280), layers_per_level=2, cross_attention_levels=(1, 2, 3),
            self_attention_levels=(2, 3), heads=16, text_dim=4096, emb_dim=1024, mid_temporal_attention_layers=2)
SETTINGS = {
    "stunet-1b, pixels 80 x 128 x 128 (Lumiere's base)": (dict(WIDE, patch_size=2), (3, 80, 128, 128)),
    "fixed-temporal-1b, pixels 80 x 128 x 128": (dict(WIDE, patch_size=2, temporal_downsample=False,
                                                       temporal_attention_levels=(3,)), (3, 80, 128, 128)),
    "stunet-1b, latents 16 x 64 x 64 x 4 (16 frames at 512 px through an SD VAE)":
        (dict(WIDE, patch_size=1, in_channels=4, out_channels=4), (4, 16, 64, 64)),
}


def count(kwargs: dict, shape: tuple[int, ...], text_len: int = 77) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from vidiff.models.unet import VideoUNet

    with torch.device("meta"):
        model = VideoUNet(**kwargs)
    x = torch.empty(1, *shape, device="meta")
    text = torch.empty(1, text_len, kwargs["text_dim"], device="meta")
    with FlopCounterMode(display=False) as fc:
        model(x, torch.tensor([500], device="meta"), text)
    params = sum(p.numel() for p in model.parameters())
    return {"params_b": round(params / 1e9, 3), "forward_tflop_per_clip": round(fc.get_total_flops() / 1e12, 2),
            # fp32 weights + grads + AdamW's 2 moments + the EMA copy: 5 x 4 bytes per parameter
            "state_gb": round(params * 20 / 2**30, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of one GPU (H100/H200: 989)")
    p.add_argument("--mfu", type=float, nargs="+", default=[0.25, 0.40], help="model FLOPs utilisation(s) assumed")
    p.add_argument("--gpus", type=int, nargs="+", default=[8, 64, 256])
    p.add_argument("--epochs", type=float, default=1.0, help="passes over WebVid-10M")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    rows = {}
    for name, (kwargs, shape) in SETTINGS.items():
        r = count(kwargs, shape)
        step = 3 * r["forward_tflop_per_clip"]
        r["train_tflop_per_clip"] = round(step, 1)
        r["train_tflop_per_clip_checkpointed"] = round(4 * r["forward_tflop_per_clip"], 1)
        total = step * 1e12 * WEBVID_CLIPS * a.epochs
        r["gpu_hours"] = {f"mfu {m}": round(total / (a.peak_tflops * 1e12 * m) / 3600) for m in a.mfu}
        r["wall_hours"] = {f"{n} GPUs, mfu {m}": round(total / (a.peak_tflops * 1e12 * m) / 3600 / n, 1)
                           for n in a.gpus for m in a.mfu}
        rows[name] = r
        print(name, json.dumps(r), flush=True)
    report = {"clips": WEBVID_CLIPS, "epochs": a.epochs, "peak_tflops": a.peak_tflops, "mfu": a.mfu,
              "settings": {k: {"model": v[0], "clip": list(v[1])} for k, v in SETTINGS.items()}, "rows": rows}
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
