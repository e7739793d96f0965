"""The GPU check (issue 23): what vidiff does on one GPU (and on several where the machine has them), in one JSON and
one Markdown table. scripts/gpu_check.sh runs it after the tests marked gpu; sized for <= 8 minutes on one GPU.

    python benchmarks/gpu.py --out runs/gpu-check/gpu-check.json --md runs/gpu-check/gpu-check.md
    python benchmarks/gpu.py --quick --device cpu --out /tmp/g.json --md /tmp/g.md   # the script itself, on a CPU

Sections (each bounded in time; one that fails is recorded with its error and the rest still run):
  train     the default recipe (configs/stunet-shapes-single.yaml), bf16, at the largest batch that fits (searched on random
            clips, doubling), then 200 steps through `vidiff train` with DataLoader workers: clips/s, peak memory
  generate  a default clip: a cold `vidiff generate --device cuda` (whole process) and warm in-process calls
  ssr128    the super-resolution stage over a 128-frame clip (MultiDiffusion windows): time, peak memory
  steptime  one training step (bf16, batch 4) at 16 x 128 x 128 pixels: STUNet, the same layout without temporal
            down/up-sampling, diffusers' UNet3DConditionModel (SDPA), matched parameters
  multigpu  with 2+ GPUs: the same 200 steps under `accelerate launch` (DDP), all GPUs
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gb(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if device.type == "cuda" else None


def env(device: torch.device) -> dict:
    import accelerate
    import diffusers

    import vidiff

    out = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda, "vidiff": vidiff.__version__,
           "diffusers": diffusers.__version__, "accelerate": accelerate.__version__, "python": platform.python_version(),
           "date": time.strftime("%Y-%m-%d")}
    if device.type == "cuda":
        out.update(gpu=torch.cuda.get_device_name(device), gpus=torch.cuda.device_count(),
                   memory_gb=round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1),
                   bf16=torch.cuda.is_bf16_supported())
    return out


# ---------------------------------------------------------------- train
def largest_batch(device: torch.device, candidates: list[int], frames: int, size: int) -> dict:
    """The largest batch of the default model's training step (bf16, AdamW) that fits, doubling; s / step of each."""
    from vidiff.models.unet import build_unet

    model = build_unet("stunet-shapes").to(device)
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    tried = {}
    best = None
    for b in candidates:
        try:
            _reset_peak(device)
            x = torch.randn(b, 3, frames, size, size, device=device)
            text, t = torch.randn(b, 12, 384, device=device), torch.randint(0, 1000, (b,), device=device)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    loss = model(x, t, text).float().square().mean()
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                _sync(device)
                times.append(time.perf_counter() - t0)
            tried[b] = {"s_per_step": round(min(times[1:]), 4), "peak_gb": _peak_gb(device)}
            best = b
        except torch.OutOfMemoryError:
            tried[b] = "out of memory"
            break
        finally:
            opt.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return {"batch": best, "tried": tried}


def train_run(out: Path, batch: int, steps: int, workers: int, launcher: list[str] | None = None) -> dict:
    """``steps`` steps of the default recipe through `vidiff train` (optionally under accelerate launch)."""
    run = out / ("train" if launcher is None else "train-multigpu")
    cmd = (launcher or [sys.executable]) + ["-m", "vidiff", "train", "--config", str(ROOT / "configs/stunet-shapes-single.yaml"),
                                            "-q", "--set", f"train.steps={steps}", "--set", f"train.batch_size={batch}",
                                            "--set", f"train.checkpoint_every={steps}", "--set", "train.snapshot_every=0",
                                            "--set", f"train.num_workers={workers}", "--set", "train.warmup_steps=10",
                                            "--set", f"output_dir={run}"]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=420)
    if r.returncode:
        raise RuntimeError(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}")
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines() if line.strip()]
    log = [x for x in log if "elapsed_s" in x]
    first, last = log[0], log[-1]
    clips = (last["step"] - first["step"]) * batch
    seconds = last["elapsed_s"] - first["elapsed_s"]
    return {"steps": last["step"], "batch": batch, "workers": workers, "wall_s": round(time.time() - t0, 1),
            "clips_per_s": round(clips / max(seconds, 1e-9), 1), "s_per_step": round(seconds / max(1, last["step"] -
                                                                                                 first["step"]), 4),
            "peak_gb": last.get("peak_mem_gb"), "final_loss": last["loss"]}


# ---------------------------------------------------------------- sampling
def generate(device: torch.device, out: Path, quick: bool) -> dict:
    from vidiff.hardware import autocast
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    # an mp4 where PyAV is installed; PNG frames where it is not (the device kit leaves it behind: scripts/device_kit.py)
    has_av = importlib.util.find_spec("av") is not None
    clip = out / ("default-clip.mp4" if has_av else "default-clip")
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "vidiff", "generate", "a red circle moving left", "--device",
                        device.type, "-q", "--overwrite", "-o", str(clip)], capture_output=True, text=True, timeout=300)
    if r.returncode:
        raise RuntimeError(r.stderr.strip().splitlines()[-1])
    cold = time.time() - t0
    pipe = TextToVideoPipeline.from_pretrained("default").to(device)
    warm = {}
    for precision in ("fp32", "bf16"):
        times = []
        for i in range(1 if quick else 3):
            _sync(device)
            t1 = time.perf_counter()
            with autocast(device, precision):
                pipe("a red circle moving left", generator=torch.Generator().manual_seed(i))
            _sync(device)
            times.append(time.perf_counter() - t1)
        warm[precision] = round(min(times), 3)
    return {"cold_process_s": round(cold, 2), "warm_call_s": warm, "steps": pipe.defaults["num_inference_steps"],
            "written": "mp4" if has_av else "PNG frames (no PyAV)"}


def ssr128(device: torch.device, frames: int) -> dict:
    from vidiff.pipelines.super_resolution import SuperResolutionPipeline

    pipe = SuperResolutionPipeline.from_pretrained("ssr").to(device)
    low = torch.rand(1, 3, frames, 32, 32)
    _reset_peak(device)
    _sync(device)
    t0 = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16):
        v = pipe("a red circle moving left", low, generator=torch.Generator().manual_seed(0)).videos
    _sync(device)
    return {"frames": frames, "out_shape": list(v.shape), "s": round(time.perf_counter() - t0, 2),
            "peak_gb": _peak_gb(device)}


# ---------------------------------------------------------------- per-step time at a realistic size
def steptime(device: torch.device, size: int, steps: int) -> dict:
    from diffusers import UNet3DConditionModel

    from vidiff.models.unet import build_unet

    def unet3d():
        m = UNet3DConditionModel(sample_size=size, in_channels=3, out_channels=3, block_out_channels=(32, 64, 128, 128),
                                 layers_per_block=1, cross_attention_dim=384, attention_head_dim=8, norm_num_groups=32)
        return m, lambda x, t, text: m(x, t, encoder_hidden_states=text).sample

    def vidiff_model(preset):
        m = build_unet(preset)
        return m, lambda x, t, text: m(x, t, text)

    builders = {"stunet": lambda: vidiff_model("stunet-shapes"),
                "fixed-temporal": lambda: vidiff_model("baseline-shapes"),
                "unet3d-sdpa": unet3d}
    b = 4
    x = torch.randn(b, 3, 16, size, size, device=device)
    t, text = torch.full((b,), 500, device=device), torch.randn(b, 12, 384, device=device)
    out = {}
    for name, build in builders.items():
        torch.manual_seed(0)
        m, fwd = build()
        m.to(device).train()
        opt = torch.optim.AdamW(m.parameters(), 1e-4)
        _reset_peak(device)
        times = []
        try:
            for i in range(steps + 2):
                _sync(device)
                t0 = time.perf_counter()
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    y = fwd(x, t, text)
                y.float().square().mean().backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                _sync(device)
                if i >= 2:
                    times.append(time.perf_counter() - t0)
            times.sort()
            out[name] = {"params_m": round(sum(p.numel() for p in m.parameters()) / 1e6, 2),
                         "train_step_ms": round(1000 * times[len(times) // 2], 1), "peak_gb": _peak_gb(device)}
        except torch.OutOfMemoryError:
            out[name] = "out of memory"
        del m, opt
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"clip": f"16x{size}x{size}x3", "batch": b, "dtype": "bf16", **out}


# ---------------------------------------------------------------- report
def markdown(report: dict) -> str:
    e = report["env"]
    head = e.get("gpu", e["device"])
    lines = [f"GPU check, {e['date']}: {head}" + (f" x{e['gpus']}" if e.get("gpus", 1) > 1 else "") +
             f", torch {e['torch']} (CUDA {e['cuda']}), vidiff {e['vidiff']}", "", "| what | figure |", "|---|---|"]

    def row(what, value):
        lines.append(f"| {what} | {value} |")

    s = report["sections"]
    tr = s.get("train", {})
    if "run" in tr:
        r = tr["run"]
        row(f"default recipe, bf16, batch {r['batch']} (largest that fits), {r['steps']} steps, {r['workers']} loader "
            f"workers", f"{r['clips_per_s']} clips/s, {r['s_per_step']} s/step, peak {r['peak_gb']} GB")
    if "generate" in s and "cold_process_s" in s["generate"]:
        g = s["generate"]
        row(f"default clip, cold `vidiff generate --device {e['device'].split(':')[0]}` (whole process)", f"{g['cold_process_s']} s")
        row(f"default clip, warm call ({g['steps']} steps + SSR)", ", ".join(f"{k} {v} s" for k, v in g["warm_call_s"].items()))
    if "ssr128" in s and "peak_gb" in s["ssr128"]:
        q = s["ssr128"]
        row(f"SSR over a {q['frames']}-frame clip (32 -> 128 px), bf16", f"{q['s']} s, peak {q['peak_gb']} GB")
    if "steptime" in s and "clip" in s["steptime"]:
        st = s["steptime"]
        for name in ("stunet", "fixed-temporal", "unet3d-sdpa"):
            v = st.get(name)
            if isinstance(v, dict):
                row(f"training step, {st['clip']}, batch {st['batch']}, bf16: {name} ({v['params_m']} M)",
                    f"{v['train_step_ms']} ms, peak {v['peak_gb']} GB")
    if "multigpu" in s and "clips_per_s" in s["multigpu"]:
        m = s["multigpu"]
        row(f"default recipe on {e.get('gpus')} GPUs (DDP), global batch {m['batch']}", f"{m['clips_per_s']} clips/s")
    for name, v in s.items():
        if isinstance(v, dict) and "error" in v:
            row(f"{name}: failed", v["error"][:160])
        if isinstance(v, dict) and "skipped" in v:
            row(f"{name}: skipped", v["skipped"])
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny sizes: check the script itself (e.g. on a CPU)")
    p.add_argument("--sections", nargs="+", default=["train", "generate", "ssr128", "steptime", "multigpu"])
    p.add_argument("--out", default="runs/gpu-check/gpu-check.json")
    p.add_argument("--md", default="runs/gpu-check/gpu-check.md")
    a = p.parse_args()
    from vidiff.hardware import resolve_device

    device = resolve_device(a.device)
    out = Path(a.out).parent
    out.mkdir(parents=True, exist_ok=True)
    report = {"env": env(device), "quick": a.quick, "command": "python " + " ".join(sys.argv), "sections": {}}
    q = a.quick
    plan = {
        "train": lambda: (lambda lb: {"search": lb, "run": train_run(out, lb["batch"], 3 if q else 200, 0 if q else 8)})(
            largest_batch(device, [2, 4] if q else [64, 128, 256, 512, 1024, 2048], 16, 32)),
        "generate": lambda: generate(device, out, q),
        "ssr128": lambda: ssr128(device, 16 if q else 128),
        "steptime": lambda: steptime(device, 32 if q else 128, 2 if q else 10),
        "multigpu": lambda: ({"skipped": f"{torch.cuda.device_count()} GPU(s) on this machine"}
                             if device.type != "cuda" or torch.cuda.device_count() < 2 else
                             train_run(out, report["sections"]["train"]["run"]["batch"] * torch.cuda.device_count(),
                                       200, 8, [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                                                str(ROOT / "configs/accelerate/ddp.yaml"), "--num_processes",
                                                str(torch.cuda.device_count())])),
    }
    for name in a.sections:
        t0 = time.time()
        try:
            report["sections"][name] = plan[name]()
        except Exception as e:  # one failing section is recorded; the others still run
            report["sections"][name] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}
        report["sections"][name]["section_s"] = round(time.time() - t0, 1)
        print(name, json.dumps({k: v for k, v in report["sections"][name].items() if k != "trace"})[:600], flush=True)
        Path(a.out).write_text(json.dumps(report, indent=1))  # after every section: a timeout keeps what is done
    Path(a.md).write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
