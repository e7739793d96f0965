"""Stable Diffusion 1.5's layout at its real size, with random weights: the path a user with a community fine-tune
takes (one .safetensors in the original layout -> `vidiff convert` -> `vidiff inflate` -> a clip, and a few
temporal-only training steps), timed and its peak memory read, on the CPU. No SD weights are on these machines,
so the folder is built from SD 1.5's published configs (U-Net 320/640/1280/1280, 2 layers a block,
cross-attention 768; VAE 128/256/512/512; CLIP ViT-L/14's text tower, 12 layers of 768) with random weights; the
tokenizer is MiniLM's (the ids fit CLIP's vocabulary; what a token means does not matter here). The clip is
noise-like: this measures that the path runs at this size and what it costs, not what it draws.

    python benchmarks/sd15_dry_run.py --work /tmp --out benchmarks/results/sd15-dry-run.json
    python benchmarks/sd15_dry_run.py --device cuda --precision bf16 --size 512 --steps 25   # on a GPU
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import tempfile
import time
from pathlib import Path


def peak_rss_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def build_sd15_folder(path: Path) -> Path:
    """A diffusers folder of SD 1.5's layout with random weights (fp16 files, as downloads usually are)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel

    from vidiff.conditioning.text import default_encoder_path

    torch.manual_seed(0)
    UNet2DConditionModel(sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280),
                         layers_per_block=2, cross_attention_dim=768, attention_head_dim=8,
                         down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                         up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                         ).half().save_pretrained(path / "unet")
    AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                  down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                  latent_channels=4, sample_size=512).half().save_pretrained(path / "vae")
    CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                 num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                                 bos_token_id=0, eos_token_id=2)).half().save_pretrained(path / "text_encoder")
    AutoTokenizer.from_pretrained(default_encoder_path(), model_max_length=77).save_pretrained(path / "tokenizer")
    PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                  steps_offset=1).save_pretrained(path / "scheduler")
    return path


def train_temporal(work: Path, video: Path, args) -> dict:
    """A few temporal-only training steps of the inflated folder on random mp4 clips, through the trainer (fp32)."""
    import numpy as np

    from vidiff.io.video import write_video
    from vidiff.training.config import config_from_dict
    from vidiff.training.trainer import train

    data = work / "clips"
    if not data.is_dir():
        data.mkdir()
        rng = np.random.default_rng(0)
        for i in range(2):
            write_video((rng.random((args.frames, args.size, args.size, 3)) * 255).astype(np.uint8), data / f"c{i}.mp4",
                        fps=8, view_size=args.size)
        (data / "train.csv").write_text("path,caption\nc0.mp4,a clip\nc1.mp4,another clip\n")
    run = work / f"run-{video.name}"
    cfg = config_from_dict({
        "data": {"kind": "folder", "manifest": str(data / "train.csv"), "num_frames": args.frames,
                 "resolution": args.size},
        "diffusion": {"prediction_type": "epsilon", "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                      "beta_end": 0.012},
        "text_encoder": str(video / "text_encoder"), "text_features": "padded",
        "train": {"steps": args.train_steps, "batch_size": 1, "checkpoint_every": args.train_steps,
                  "mixed_precision": {"fp32": "no"}.get(args.precision, args.precision), "init_from": str(video)},
        "output_dir": str(run)})
    train(cfg, progress=False)
    last = json.loads((run / "train_log.jsonl").read_text().splitlines()[-1])
    from safetensors import safe_open

    with safe_open(str(video / "motion_module.safetensors"), "pt") as f:  # the new layers alone: what trained
        n = sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())
    last["trainable_params_M"] = round(n / 1e6, 1)
    return last


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=None, help="a folder for the ~5 GB of files (default: a temporary one)")
    p.add_argument("--frames", type=int, default=16,
                   help="16: the fewest the STUNet of this layout takes (3 temporal halvings)")
    p.add_argument("--size", type=int, default=128, help="pixels (the latent is an eighth)")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--arch", nargs="+", default=["motion-module", "stunet"])
    p.add_argument("--train-steps", type=int, default=4, help="temporal-only training steps of each (0: none)")
    p.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda, cuda:N; training "
                   "runs where the trainer runs (CUDA when there is one)")
    p.add_argument("--precision", default="fp32", help="fp32, bf16 or fp16 (CUDA): sampling autocast and training's "
                   "mixed precision")
    p.add_argument("--out", default=None)
    args = p.parse_args()

    import torch

    from vidiff import versions
    from vidiff.hardware import autocast, check_precision, cpu_name, resolve_device
    from vidiff.pipelines.inflate import inflate
    from vidiff.pipelines.single_file import convert_single_file, save_single_file
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    device = resolve_device(args.device)
    check_precision(args.precision, device)
    tmp = tempfile.TemporaryDirectory(dir=args.work)
    work = Path(tmp.name)
    out = {"cpu": cpu_name(), "device": str(device), "precision": args.precision,
           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
           "threads": torch.get_num_threads(),
           "versions": versions(), "frames": args.frames, "size": args.size, "steps": args.steps, "rows": {}}

    def row(name, t0, **extra):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            extra["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        out["rows"][name] = {"seconds": round(time.time() - t0, 1), "peak_rss_gb": peak_rss_gb(), **extra}
        print(name, json.dumps(out["rows"][name]), flush=True)
        save()

    def save():  # after every row: a run stopped at a time limit keeps what it measured
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(out, indent=1))

    t0 = time.time()
    sd = build_sd15_folder(work / "sd15")
    row("build the SD-1.5-size folder (random weights, fp16 files)", t0)
    t0 = time.time()
    ckpt = save_single_file(sd, work / "model.safetensors", dtype=torch.float16)
    row("write it as one LDM-layout file (save_single_file)", t0, gb=round(ckpt.stat().st_size / 2**30, 2))
    t0 = time.time()
    image = convert_single_file(ckpt, sd, work / "image")
    from diffusers import UNet2DConditionModel

    a = UNet2DConditionModel.from_pretrained(sd / "unet").state_dict()
    b = UNet2DConditionModel.from_pretrained(image / "unet").state_dict()
    same = set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    params = sum(v.numel() for v in a.values())
    del a, b
    row("vidiff convert (diffusers' from_single_file, offline)", t0, unet_params_M=round(params / 1e6, 1),
        unet_weights_equal=same)
    for arch in args.arch:
        t0 = time.time()
        inflate(image, arch, work / f"video-{arch}")
        row(f"vidiff inflate --arch {arch}", t0)
        t0 = time.time()
        pipe = TextToVideoPipeline.from_pretrained(work / f"video-{arch}").to(device)
        n = sum(q.numel() for q in pipe.unet.parameters())
        row(f"load the {arch} folder", t0, params_M=round(n / 1e6, 1))
        t0 = time.time()
        with autocast(device, args.precision):
            clip = pipe("a corgi running on the beach", num_frames=args.frames, height=args.size, width=args.size,
                        num_inference_steps=args.steps, generator=torch.Generator().manual_seed(0))
        v = clip.videos
        row(f"generate {args.frames} x {args.size} x {args.size}, {args.steps} steps ({arch})", t0,
            shape=list(v.shape), finite=bool(torch.isfinite(v).all()))
        del pipe, clip
        if args.train_steps and importlib.util.find_spec("av") is None:  # the clips are mp4 files
            out["rows"][f"train temporal-only ({arch})"] = {"skipped": "PyAV is not installed (scripts/device_kit.py "
                                                                      "leaves it behind)"}
            save()
        elif args.train_steps:
            t0 = time.time()
            log = train_temporal(work, work / f"video-{arch}", args)
            row(f"train temporal-only, {args.train_steps} steps of 1 clip {args.frames} x {args.size} x {args.size} "
                f"({arch}), export included", t0, seconds_in_steps=log["elapsed_s"], final_loss=log["loss"],
                trainable_params_M=log["trainable_params_M"])
    tmp.cleanup()


if __name__ == "__main__":
    main()
