"""Speed of STUNet against the comparisons that mean something, in one process, interleaved.

Three questions, one table (same clip, threads and dtype for every model; each round times every model once,
in turn, and the minimum over rounds is reported, so that a busy moment on the machine hits all alike):

(a) Lumiere's claim proper: STUNet (`stunet-shapes`) against the same layout without temporal down/up-sampling
    (`baseline-shapes`: the same blocks at a fixed frame count).
(b) The layout against diffusers' UNet3DConditionModel (ModelScope / VideoCrafter's video U-Net) at matched
    parameters, with its default attention processor (SDPA) and with the plain matmul one.
(c) lucidrains' lumiere-pytorch (PyPI) inflating a Karras U-Net (denoising-diffusion-pytorch) at matched
    parameters: another implementation of the same paper.

A step is one classifier-free-guided denoising forward (batch 2) of a 16 x 32 x 32 x 3 clip, or a training step
(batch 4, forward + backward + AdamW). GFLOP per clip and step from torch's FlopCounterMode.

    python benchmarks/speed_memory.py --rounds 5 --out runs/speed.json          # fp32, the default
    python benchmarks/speed_memory.py --rounds 5 --dtype bf16                    # where the CPU has bf16 kernels
    python benchmarks/speed_memory.py --memory                                   # peak RSS, one process per model

The peers are optional: `pip install lumiere-pytorch` and `pip install --no-deps denoising-diffusion-pytorch`
(its package __init__ pulls torchvision, which does not load beside the torch CPU wheel; only its
karras_unet module is used, loaded without the __init__).
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

T, H = 16, 32
TEXT_DIM, TEXT_LEN = 384, 12
LABELS = {
    "stunet": "STUNet (vidiff stunet-shapes)",
    "fixed-temporal": "same layout, no temporal down/up-sampling (vidiff baseline-shapes)",
    "unet3d-sdpa": "diffusers UNet3DConditionModel (32,64,128,128), SDPA attention (its default)",
    "unet3d-matmul": "diffusers UNet3DConditionModel (32,64,128,128), matmul attention",
    "lumiere-pytorch": "lumiere-pytorch 0.0.24 inflating a KarrasUnet (dim 64, 3 downsamples)",
}


def _karras_unet_class():
    """KarrasUnet without running denoising_diffusion_pytorch/__init__.py (it imports torchvision)."""
    import importlib.util
    import types

    if "denoising_diffusion_pytorch" not in sys.modules:
        spec = importlib.util.find_spec("denoising_diffusion_pytorch")
        if spec is None:
            raise ImportError("pip install --no-deps denoising-diffusion-pytorch")
        pkg = types.ModuleType("denoising_diffusion_pytorch")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["denoising_diffusion_pytorch"] = pkg
    from denoising_diffusion_pytorch.karras_unet import KarrasUnet

    return KarrasUnet


def build(name: str):
    """(module, fwd(x, t, text) -> prediction) for one model, seeded."""
    import torch

    torch.manual_seed(0)
    if name in ("stunet", "fixed-temporal"):
        from vidiff.models.unet import build_unet

        m = build_unet("stunet-shapes" if name == "stunet" else "baseline-shapes")
        return m, lambda x, t, text: m(x, t, text)
    if name.startswith("unet3d"):
        from diffusers import UNet3DConditionModel
        from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

        m = UNet3DConditionModel(sample_size=H, in_channels=3, out_channels=3, block_out_channels=(32, 64, 128, 128),
                                 layers_per_block=1, cross_attention_dim=TEXT_DIM, attention_head_dim=8,
                                 norm_num_groups=32)
        m.set_attn_processor(AttnProcessor2_0() if name == "unet3d-sdpa" else AttnProcessor())
        return m, lambda x, t, text: m(x, t, encoder_hidden_states=text).sample
    if name == "lumiere-pytorch":
        from lumiere_pytorch import Lumiere

        unet = _karras_unet_class()(image_size=H, dim=64, dim_max=512, channels=3, num_downsamples=3,
                                    num_blocks_per_stage=2, attn_res=(8, 4), dropout=0.0)
        m = Lumiere(unet, image_size=H, unet_time_kwarg="time",  # module names as in lumiere-pytorch's README
                    conv_module_names=["downs.1", "ups.1", "downs.2", "ups.2"], attn_module_names=["mids.0"],
                    downsample_module_names=["downs.1", "downs.2"], upsample_module_names=["ups.1", "ups.2"])
        m.requires_grad_(True)  # Lumiere freezes the image model; the speed comparison trains everything
        return m, lambda x, t, text: m(x, time=t.float())  # no text input: a class-free Karras U-Net
    raise ValueError(name)


def available(names: list[str]) -> list[str]:
    out = []
    for n in names:
        try:
            build(n)
            out.append(n)
        except ImportError as e:
            print(f"skipping {n}: {e}", file=sys.stderr)
    return out


def flops(name: str) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    m, fwd = build(name)
    m.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        fwd(torch.randn(1, 3, T, H, H), torch.tensor([500]), torch.randn(1, TEXT_LEN, TEXT_DIM))
    return fc.get_total_flops() / 1e9


def interleaved(names: list[str], rounds: int, bf16: bool, train: bool) -> dict[str, float]:
    """Minimum seconds per step of each model over ``rounds`` interleaved rounds (after a warm-up round)."""
    import torch

    models = {n: build(n) for n in names}
    ac = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)  # noqa: E731
    b = 4 if train else 2
    x, t, text = torch.randn(b, 3, T, H, H), torch.full((b,), 500), torch.randn(b, TEXT_LEN, TEXT_DIM)
    opts = {n: torch.optim.AdamW(m.parameters(), 1e-4) for n, (m, _) in models.items()} if train else {}
    best = {n: float("inf") for n in names}
    for r in range(rounds + 1):
        for n, (m, fwd) in models.items():
            m.train(train)
            t0 = time.perf_counter()
            if train:
                with ac():
                    y = fwd(x, t, text)
                y.float().pow(2).mean().backward()
                opts[n].step()
                opts[n].zero_grad(set_to_none=True)
            else:
                with torch.no_grad(), ac():
                    fwd(x, t, text)
            dt = time.perf_counter() - t0
            if r:  # round 0 warms up
                best[n] = min(best[n], dt)
    return best


def memory_worker(name: str, train: bool) -> dict:
    interleaved([name], 2, False, train)
    return {"peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--models", nargs="+", default=list(LABELS))
    p.add_argument("--no-train", action="store_true", help="time denoising steps only")
    p.add_argument("--memory", action="store_true", help="peak RSS, each model in its own process")
    p.add_argument("--worker", nargs=2, metavar=("MODEL", "TRAIN"), help=argparse.SUPPRESS)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(memory_worker(a.worker[0], a.worker[1] == "1")))
        return
    import torch

    from vidiff.hardware import cpu_name, native_bf16

    names = available(a.models)
    report = {"clip": f"{T}x{H}x{H}x3", "dtype": a.dtype, "threads": torch.get_num_threads(), "cpu": cpu_name(),
              "native_bf16": native_bf16(), "torch": torch.__version__, "rounds": a.rounds, "models": {},
              # an instruction-set cap (ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2) stands in for an AVX2-only CPU
              "isa_cap": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if k in os.environ}}
    if a.memory:
        for n in names:
            row = {}
            for train in ("0", "1"):
                r = subprocess.run([sys.executable, __file__, "--worker", n, train], capture_output=True, text=True,
                                   check=True)
                row["peak_rss_gb_" + ("train" if train == "1" else "denoise")] = json.loads(r.stdout)["peak_rss_gb"]
            report["models"][n] = row
            print(n, row, flush=True)
    else:
        for n in names:
            m, _ = build(n)
            report["models"][n] = {"label": LABELS[n], "params_m": round(sum(q.numel() for q in m.parameters()) / 1e6, 2),
                                   "gflop_per_clip_step": round(flops(n), 2)}
        den = interleaved(names, a.rounds, a.dtype == "bf16", train=False)
        tr = {} if a.no_train else interleaved(names, max(2, a.rounds // 2), a.dtype == "bf16", train=True)
        for n in names:
            report["models"][n]["denoise_step_ms"] = round(den[n] * 1000, 1)
            if tr:
                report["models"][n]["train_step_ms"] = round(tr[n] * 1000, 1)
        print(table(report))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(report, indent=2))


def table(report: dict) -> str:
    rows = report["models"]
    st = rows.get("stunet")
    lines = [f"{report['cpu']}, {report['threads']} threads, {report['dtype']}, torch {report['torch']}, "
             f"minimum of {report['rounds']} interleaved rounds; clip {report['clip']}", "",
             "| model | params | GFLOP / clip / step | CFG denoising step (batch 2) | training step (batch 4) | "
             "vs STUNet: step / FLOPs |", "|---|---|---|---|---|---|"]
    for n, r in rows.items():
        rel = "-" if st is None or n == "stunet" else (
            f"{r['denoise_step_ms'] / st['denoise_step_ms']:.2f}x / {r['gflop_per_clip_step'] / st['gflop_per_clip_step']:.2f}x")
        train = f"{r['train_step_ms']:.0f} ms" if "train_step_ms" in r else "-"
        lines.append(f"| {r['label']} | {r['params_m']} M | {r['gflop_per_clip_step']} | {r['denoise_step_ms']:.0f} ms | "
                     f"{train} | {rel} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
