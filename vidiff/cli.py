"""``vidiff``: the command line. Heavy libraries are imported inside the commands, so start-up is quick.

Bad input -> one line on stderr naming the problem and what is allowed, exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DEFAULT_MODEL = "default"


def default_model_path() -> Path:
    return Path(__file__).resolve().parent / "weights" / "default"


def resolve_model(path: str) -> Path:
    p = default_model_path() if path == DEFAULT_MODEL else Path(path)
    if not p.exists():
        raise ValueError(f"model path {path!r} does not exist; give a pipeline folder (from 'vidiff train') or 'default'")
    if not (p / "vidiff_pipeline.json").exists():
        raise ValueError(f"{path!r} is not a vidiff pipeline folder (vidiff_pipeline.json missing)")
    return p


def sidecar_path(output: Path) -> Path:
    """``clip.mp4`` -> ``clip.json``; a PNG folder ``clip/`` -> ``clip.json`` beside it."""
    return output.with_suffix(".json") if output.suffix else output.with_name(output.name + ".json")


# ---------------------------------------------------------------------- generate
def cmd_generate(args: argparse.Namespace) -> int:
    from vidiff.io.atomic import write_text_atomic
    from vidiff.io.video import check_writable, output_format

    if not args.prompt.strip():
        raise ValueError("the caption is empty; give a text prompt such as 'a red circle moving left'")
    out = Path(args.output)
    output_format(out)
    check_writable(out)
    model_dir = resolve_model(args.model)
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    t0 = time.time()
    import torch

    from vidiff.io.video import contact_sheet, write_video
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = TextToVideoPipeline.from_pretrained(model_dir)
    d = pipe.defaults
    settings = {
        "prompt": args.prompt, "negative_prompt": args.negative_prompt, "model": str(model_dir),
        "num_frames": d["num_frames"] if args.frames is None else args.frames,
        "height": d["height"] if args.size is None else args.size, "width": d["width"] if args.size is None else args.size,
        "num_inference_steps": d["num_inference_steps"] if args.steps is None else args.steps,
        "guidance_scale": d["guidance_scale"] if args.guidance is None else args.guidance,
        "sampler": args.sampler, "seed": args.seed, "fps": args.fps or d["fps"],
    }
    generator = torch.Generator().manual_seed(args.seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        video = pipe(args.prompt, num_frames=settings["num_frames"], height=settings["height"], width=settings["width"],
                     num_inference_steps=settings["num_inference_steps"], guidance_scale=settings["guidance_scale"],
                     negative_prompt=args.negative_prompt, sampler=args.sampler, generator=generator,
                     progress=not args.quiet)
    frames = video.frames[0]
    write_video(frames, out, fps=settings["fps"])
    written = [str(out)]
    if not args.no_sheet:
        sheet = out.with_suffix(".png") if out.suffix else out.with_name(out.name + ".png")
        contact_sheet(frames, sheet)
        written.append(str(sheet))
    settings["seconds"] = round(time.time() - t0, 2)
    settings["bf16"] = args.bf16
    write_text_atomic(sidecar_path(out), json.dumps(settings, indent=2))
    if not args.quiet:
        print(f"wrote {', '.join(written)} ({settings['seconds']} s)")
    return 0


# ---------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    import logging

    from vidiff.training.config import load_config

    overrides = {}
    for item in args.set or []:
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"--set takes KEY=VALUE (e.g. train.steps=100), got {item!r}")
        import yaml
        overrides[key] = yaml.safe_load(value)
    cfg = load_config(args.config, overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from vidiff.training.trainer import train

    final = train(cfg, resume=args.resume, progress=not args.quiet)
    print(f"trained model: {final}")
    return 0


# ---------------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    if bool(args.real) != bool(args.fake):
        raise ValueError("--real and --fake go together (two folders of videos)")
    if args.real and args.model:
        raise ValueError("give either --model (generate a suite) or --real/--fake (score folders), not both")
    if not args.real and not args.model:
        raise ValueError("give --model PATH (or 'default') with --suite, or --real DIR --fake DIR")
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from vidiff.evaluation.report import evaluate_folders, evaluate_model

    common = dict(video_features=args.video_features, image_features=args.image_features,
                  classifier=args.classifier, clip=args.clip, progress=not args.quiet)
    if args.real:
        out = Path(args.out or "runs/eval-folders")
        report = evaluate_folders(args.real, args.fake, out, captions=args.captions, frames=args.frames, **common)
    else:
        model_dir = resolve_model(args.model)
        out = Path(args.out or f"runs/eval-{args.suite}")
        report = evaluate_model(model_dir, args.suite, args.samples, out, steps=args.steps, guidance=args.guidance,
                                seed=args.seed, sweep_steps=tuple(args.sweep_steps), sweep_samples=args.sweep_samples,
                                bf16=not args.fp32, **common)
    if not args.quiet:
        print(json.dumps(report["metrics"], indent=1))
        print(f"wrote {out}/metrics.json, report.md, plots ({report['seconds']['total']} s)")
    return 0


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidiff", description="Text-to-video diffusion (Lumiere STUNet and friends).")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate a video from a caption")
    g.add_argument("prompt", help="the caption, e.g. 'a red circle quickly bouncing left and right'")
    g.add_argument("-o", "--output", default="video.mp4", help="output .mp4/.webm/.gif, or a folder for PNG frames")
    g.add_argument("--model", default=DEFAULT_MODEL, help="pipeline folder; 'default' is the embedded model")
    g.add_argument("--frames", type=int, default=None, help="number of frames (model default: 16)")
    g.add_argument("--size", type=int, default=None, help="height and width in pixels (model default: 32)")
    g.add_argument("--steps", type=int, default=None, help="denoising steps (default 25)")
    g.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    g.add_argument("--sampler", default="dpm++", help="dpm++ (default), ddim or ddpm")
    g.add_argument("--negative-prompt", default="", help="caption for the unconditional branch")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--fps", type=float, default=None)
    g.add_argument("--bf16", action="store_true", help="bfloat16 autocast (faster on CPUs with AMX)")
    g.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    g.add_argument("--no-sheet", action="store_true", help="do not write the contact-sheet PNG")
    g.add_argument("-q", "--quiet", action="store_true")
    g.set_defaults(func=cmd_generate)

    t = sub.add_parser("train", help="train a model from a YAML recipe (accelerate-aware)")
    t.add_argument("--config", required=True, help="a recipe, e.g. configs/stunet-shapes.yaml")
    t.add_argument("--resume", default=None, help="'latest' or a checkpoint-N folder")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key, e.g. train.steps=100")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="the metric suite: generate a Shapes suite, or score two folders of videos")
    e.add_argument("--model", default=None, help="pipeline folder or 'default': generate the suite with fixed seeds")
    e.add_argument("--suite", default="shapes-test", help="shapes-test (default) or shapes-heldout")
    e.add_argument("--samples", type=int, default=200, help="number of captions / videos (default 200)")
    e.add_argument("--real", default=None, help="folder of real videos (with --fake)")
    e.add_argument("--fake", default=None, help="folder of generated videos (with --real)")
    e.add_argument("--captions", default=None, help="CSV/JSONL manifest (path, caption) for CLIPSIM / Shapes scores")
    e.add_argument("--frames", type=int, default=16, help="frames read from each folder video (default 16)")
    e.add_argument("--steps", type=int, default=25, help="denoising steps of the main run")
    e.add_argument("--guidance", type=float, default=None, help="guidance scale (model default)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--sweep-steps", type=int, nargs="*", default=[5, 10, 25], help="steps of the metric-vs-steps plot")
    e.add_argument("--sweep-samples", type=int, default=32, help="videos per point of the steps sweep")
    e.add_argument("--video-features", default="shapes", help="FVD/KVD features: shapes | i3d:PATH | i3d-pool:PATH | torchscript:PATH")
    e.add_argument("--image-features", default="shapes", help="frame FID/KID features: shapes | inception:PATH")
    e.add_argument("--classifier", default="shapes", help="IS classifier: shapes | i3d:PATH | torchscript:PATH")
    e.add_argument("--clip", default=None, help="local transformers CLIP folder: CLIPSIM and frame consistency")
    e.add_argument("--fp32", action="store_true", help="generate in fp32 (default: bf16 autocast)")
    e.add_argument("--threads", type=int, default=0)
    e.add_argument("-o", "--out", default=None, help="report folder (default runs/eval-<suite>)")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:
        print(f"vidiff: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vidiff: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
