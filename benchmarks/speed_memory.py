"""STUNet vs. the fixed-temporal baseline vs. diffusers' UNet3DConditionModel, at matched parameter count
on the same video (16 x 32 x 32 x 3): time per denoising step, training step, FLOPs and peak memory.
Each measurement runs in its own process so that peak RSS belongs to one model. Also times the
end-to-end ``vidiff generate`` of the default clip (model load included).

    python benchmarks/speed_memory.py --out runs/speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

MODELS = {
    "stunet": "STUNet (vidiff stunet-shapes)",
    "baseline": "fixed-temporal baseline (vidiff baseline-shapes)",
    "unet3d-a": "diffusers UNet3DConditionModel (32,64,128,128)",
    "unet3d-b": "diffusers UNet3DConditionModel (64,64,128,128)",
}
T, H = 16, 32


def build(name: str):
    import torch

    if name in ("stunet", "baseline"):
        from vidiff.models.unet import build_unet
        m = build_unet(f"{name}-shapes")

        def fwd(x, t, text):
            return m(x, t, text)
    else:
        from diffusers import UNet3DConditionModel
        from diffusers.models.attention_processor import AttnProcessor
        boc = (32, 64, 128, 128) if name == "unet3d-a" else (64, 64, 128, 128)
        m = UNet3DConditionModel(sample_size=H, in_channels=3, out_channels=3, block_out_channels=boc, layers_per_block=1,
                                 cross_attention_dim=384, attention_head_dim=8, norm_num_groups=32)
        m.set_attn_processor(AttnProcessor())  # matmul attention: counted by FlopCounterMode, fast backward on CPU

        def fwd(x, t, text):
            return m(x, t, encoder_hidden_states=text).sample
    torch.manual_seed(0)
    return m, fwd


def worker(name: str, what: str, reps: int, bf16: bool) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    m, fwd = build(name)
    params = sum(p.numel() for p in m.parameters())
    text = torch.randn(2, 12, 384)
    ac = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    out = {"model": name, "params_m": round(params / 1e6, 2), "what": what, "bf16": bf16}
    if what == "flops":
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            fwd(torch.randn(1, 3, T, H, H), torch.tensor([500]), text[:1])
        out["gflop_per_clip_step"] = round(fc.get_total_flops() / 1e9, 2)
        return out
    if what == "denoise":  # one classifier-free-guided denoising step: batch 2
        m.eval()
        x = torch.randn(2, 3, T, H, H)
        times = []
        with torch.no_grad(), ac:
            for _ in range(reps + 2):
                t0 = time.perf_counter()
                fwd(x, torch.tensor([500, 500]), text)
                times.append(time.perf_counter() - t0)
        out["s_per_step"] = round(sorted(times[2:])[len(times[2:]) // 2], 4)
    elif what == "train":  # batch 4, forward + backward + AdamW
        opt = torch.optim.AdamW(m.parameters(), 1e-4)
        x = torch.randn(4, 3, T, H, H)
        txt = torch.randn(4, 12, 384)
        times = []
        for _ in range(reps + 2):
            t0 = time.perf_counter()
            with ac:
                y = fwd(x, torch.full((4,), 500), txt)
            y.float().pow(2).mean().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - t0)
        out["s_per_train_step_b4"] = round(sorted(times[2:])[len(times[2:]) // 2], 4)
    out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    return out


def run_worker(*args: str) -> dict:
    r = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def generate_default(model: str) -> dict:
    """Wall time and peak RSS of ``vidiff generate`` of the default 16-frame clip, model load included."""
    out = Path("runs/bench_clip.mp4")
    out.parent.mkdir(exist_ok=True)
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "vidiff", "generate", "a red circle quickly bouncing left and right",
                    "-o", str(out), "--model", model, "-q"], check=True)
    wall = time.time() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return {"wall_s": round(wall, 2), "peak_rss_gb": round(rss, 3)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", nargs=4, metavar=("MODEL", "WHAT", "REPS", "BF16"))
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--model", default="vidiff/weights/default")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.worker:
        name, what, reps, bf16 = args.worker
        print(json.dumps(worker(name, what, int(reps), bf16 == "1")))
        return
    report = {"video": f"{T}x{H}x{H}x3", "threads": int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())),
              "load_avg": os.getloadavg()}
    if Path(args.model).exists():  # first: RUSAGE_CHILDREN is a maximum over every child so far
        report["generate_default_clip"] = generate_default(args.model)
        print(json.dumps(report["generate_default_clip"]), flush=True)
    rows = {}
    for name in MODELS:
        row = {"label": MODELS[name]}
        for what, bf16 in (("flops", "0"), ("denoise", "0"), ("denoise", "1"), ("train", "0"), ("train", "1")):
            r = run_worker(name, what, str(args.reps), bf16)
            row["params_m"] = r["params_m"]
            suffix = "_bf16" if bf16 == "1" else ""
            for k, v in r.items():
                if k not in ("model", "params_m", "what", "bf16"):
                    row[k + (f"_{what}" if k == "peak_rss_gb" else "") + suffix] = v
        rows[name] = row
        print(json.dumps({name: row}), flush=True)
    report["models"] = rows
    st = rows["stunet"]
    for ref in ("unet3d-a", "unet3d-b", "baseline"):
        r = rows[ref]
        print(f"{ref}/stunet: denoise step x{r['s_per_step'] / st['s_per_step']:.2f} "
              f"(bf16 x{r['s_per_step_bf16'] / st['s_per_step_bf16']:.2f}), "
              f"train step x{r['s_per_train_step_b4'] / st['s_per_train_step_b4']:.2f}, "
              f"FLOPs x{r['gflop_per_clip_step'] / st['gflop_per_clip_step']:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
