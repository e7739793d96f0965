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

from vidiff.registry import EMBEDDED, model_path, resolve_model, weights_dir  # noqa: F401  (names the CLI and tests use)

DEFAULT_MODEL = "default"


def default_model_path() -> Path:
    return weights_dir() / DEFAULT_MODEL


def sidecar_path(output: Path) -> Path:
    """``clip.mp4`` -> ``clip.json``; a PNG folder ``clip/`` -> ``clip.json`` beside it."""
    return output.with_suffix(".json") if output.suffix else output.with_name(output.name + ".json")


def sheet_path(output: Path) -> Path:
    """``clip.mp4`` -> ``clip.png``; a PNG folder ``clip/`` -> ``clip.png`` beside it."""
    return output.with_suffix(".png") if output.suffix else output.with_name(output.name + ".png")


def planned_outputs(args: argparse.Namespace) -> list[Path]:
    """Every file or folder the command will write: the video, its contact sheet and its settings sidecar."""
    from vidiff.io.outputs import absolute

    out = absolute(args.output)
    return [out, sidecar_path(out)] + ([] if args.no_sheet else [sheet_path(out)])


def _inputs(args: argparse.Namespace) -> list:
    """Everything the command reads, which it must never write over."""
    named = [getattr(args, k, None) for k in ("input", "mask", "region", "config")]
    models = [getattr(args, k, None) for k in ("model", "style", "ssr")]
    return named + [model_path(m) for m in models if m]


# ---------------------------------------------------------------------- shared by the generating commands
def _prepare(args: argparse.Namespace) -> tuple[Path, float]:
    """Checks that need no heavy import (caption, output path, numeric ranges, model path), threads;
    returns the output path and the start time."""
    from vidiff.conditioning.captions import check_caption
    from vidiff.io.video import check_writable, output_format

    check_caption(args.prompt)
    if getattr(args, "negative_prompt", ""):
        check_caption(args.negative_prompt, "the negative prompt")
    _check_ranges(args)
    from vidiff.io.outputs import check_outputs

    outputs = planned_outputs(args)
    check_outputs(outputs, _inputs(args), overwrite=args.overwrite)
    output_format(args.output)
    out = outputs[0]
    check_writable(out)
    for name in ("model", "style", "ssr"):
        if getattr(args, name, None):
            resolve_model(getattr(args, name))
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    return out, time.time()


def _load(cls, model: str, args: argparse.Namespace):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = cls.from_pretrained(resolve_model(model))
    if getattr(args, "style", None):
        pipe = pipe.with_style(resolve_model(args.style), args.alpha)
    return pipe


def _super_resolution(pipe, args: argparse.Namespace) -> Path | None:
    """The SSR to run after ``pipe``: --ssr, else the one the pipeline names; none with --base-only."""
    if args.base_only:
        return None
    if args.ssr:
        return resolve_model(args.ssr)
    named = pipe.extra.get("super_resolution")
    if named is None:
        return None
    path = (pipe.path / named).resolve()
    if not (path / "vidiff_pipeline.json").exists():
        raise ValueError(f"the model names a super-resolution stage {str(path)!r} that is missing; "
                         "give --ssr PATH or --base-only")
    return path


def _finish(videos, pipe, args: argparse.Namespace, out: Path, settings: dict, t0: float) -> int:
    """Run the SSR stage when there is one, write the video, contact sheet and the config + seed sidecar."""
    import torch

    from vidiff.io.atomic import write_text_atomic
    from vidiff.io.video import contact_sheet, write_video
    from vidiff.pipelines.base import VideoPipelineOutput

    ssr_path = _super_resolution(pipe, args)
    if ssr_path is not None:
        from vidiff.pipelines.base import read_meta, reads_like
        from vidiff.pipelines.super_resolution import SuperResolutionPipeline

        same_text = reads_like(pipe.text_encoder, read_meta(ssr_path))
        ssr = SuperResolutionPipeline.from_pretrained(ssr_path, text_encoder=pipe.text_encoder if same_text else None)
        generator = torch.Generator().manual_seed(args.seed + 1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            videos = ssr(settings["prompt"], videos, window=args.window, stride=args.stride,
                         num_inference_steps=args.ssr_steps, generator=generator, progress=not args.quiet).videos
        given = {"window": args.window, "stride": args.stride, "num_inference_steps": args.ssr_steps}
        settings["super_resolution"] = {"model": str(ssr_path), **{
            k: ssr.defaults.get(k) if given.get(k) is None else given[k]
            for k in ("height", "width", "window", "stride", "num_inference_steps")}}
    frames = VideoPipelineOutput(videos).frames[0]
    write_video(frames, out, fps=settings["fps"], overwrite=args.overwrite)
    written = [str(out)]
    if not args.no_sheet:
        contact_sheet(frames, sheet_path(out), overwrite=args.overwrite)
        written.append(str(sheet_path(out)))
    settings.update(seconds=round(time.time() - t0, 2), bf16=args.bf16, output_size=list(frames.shape[1:3]))
    write_text_atomic(sidecar_path(out), json.dumps(settings, indent=2), overwrite=args.overwrite)
    if not args.quiet:
        print(f"wrote {', '.join(written)} ({settings['seconds']} s)")
    return 0


def _common_settings(args: argparse.Namespace, pipe, num_frames: int | None = None, size: int | None = None,
                     **extra) -> dict:
    """The call's resolved settings (given values, else the pipeline's defaults) and seed, for the sidecar."""
    return {"prompt": args.prompt, "model": str(pipe.path), "seed": args.seed, "sampler": args.sampler,
            **pipe.settings(num_frames=num_frames, height=size, width=size, num_inference_steps=args.steps,
                            guidance_scale=args.guidance),
            "fps": args.fps or pipe.defaults["fps"], "style": args.style, "alpha": args.alpha if args.style else None,
            **extra}


# flag: (lowest, highest); every value must also be a finite number. Sizes are capped where a typo would
# otherwise allocate without bound.
LIMITS = {
    "frames": (1, 1024), "size": (1, 1024), "steps": (1, 1000), "guidance": (0.0, 50.0), "seed": (0, 2**62),
    "fps": (0.001, 1000.0), "threads": (0, 1024), "alpha": (0.0, 1.0), "strength": (0.0, 1.0), "window": (1, 1024),
    "stride": (1, 1024), "ssr_steps": (1, 1000), "base_window": (1, 1024), "base_stride": (1, 1024),
    "border": (1, 1024), "condition_guidance": (0.0, 50.0), "samples": (2, 100000), "sweep_samples": (1, 100000),
}


def _check_ranges(args: argparse.Namespace) -> None:
    import math

    for name, (low, high) in LIMITS.items():
        v = getattr(args, name, None)
        if v is None or (name == "alpha" and not getattr(args, "style", None)):
            continue
        if not math.isfinite(v) or not low <= v <= high:
            raise ValueError(f"--{name.replace('_', '-')} must be in [{low}, {high}], got {v}")
    for v in getattr(args, "sweep_steps", None) or []:
        if not 1 <= v <= 1000:
            raise ValueError(f"--sweep-steps values must be in [1, 1000], got {v}")


# ---------------------------------------------------------------------- generate
def cmd_generate(args: argparse.Namespace) -> int:
    out, t0 = _prepare(args)
    from vidiff.pipelines.base import check_folder

    window = args.base_window
    check_folder(resolve_model(args.model), "text-to-video", window or args.frames, args.size, args.size)
    import torch

    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    pipe = _load(TextToVideoPipeline, args.model, args)
    stride = args.base_stride
    if window is not None and stride is None:
        stride = max(1, window // 4)  # measured: the fewest seams (README, long clips)
    weighting = args.base_weighting if window is not None else None
    settings = _common_settings(args, pipe, args.frames, args.size, negative_prompt=args.negative_prompt,
                                base_window=window, base_stride=stride, base_weighting=weighting)
    generator = torch.Generator().manual_seed(args.seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        video = pipe(args.prompt, num_frames=settings["num_frames"], height=settings["height"], width=settings["width"],
                     num_inference_steps=settings["num_inference_steps"], guidance_scale=settings["guidance_scale"],
                     negative_prompt=args.negative_prompt, sampler=args.sampler, generator=generator,
                     window=window, stride=stride, window_weighting=args.base_weighting, progress=not args.quiet)
    return _finish(video.videos, pipe, args, out, settings, t0)


# ---------------------------------------------------------------------- conditional generation and editing
def _read_inputs(args: argparse.Namespace, task: str) -> tuple[dict, dict]:
    """Check the model folder and read every input file at the model's size, before the model loads.
    Returns the tensors and what goes in the sidecar about them."""
    from vidiff.io.inputs import read_clip, read_image, read_mask
    from vidiff.pipelines.base import check_folder

    model = resolve_model(args.model)
    d = check_folder(model, task, args.frames)
    t, h, w = int(args.frames or d["num_frames"]), int(d["height"]), int(d["width"])
    got, notes = {}, {}
    if args.command in ("animate", "cinemagraph"):
        got["image"] = read_image(args.input, h, w)
    if args.command == "cinemagraph":
        got["region"] = read_mask(args.region, h, w)
        notes["region"] = str(args.region)
    if args.command in ("inpaint", "edit"):
        got["clip"], notes["input_fps"] = read_clip(args.input, t, h, w)
        if args.fps is None:
            from vidiff.io.video import check_fps
            try:
                check_fps(notes["input_fps"])
            except ValueError:
                raise ValueError(f"{str(args.input)!r} gives a frame rate of {notes['input_fps']}, which the output "
                                 f"cannot store: give --fps") from None
    if args.command == "inpaint":
        if args.border is not None:
            from vidiff.conditioning.masks import border_region
            got["region"], notes["border"] = border_region(1, h, w, args.border), args.border
        else:
            got["region"], notes["mask"] = read_mask(args.mask, h, w, t), str(args.mask)
    return got, notes


def cmd_conditional(args: argparse.Namespace) -> int:
    """animate / inpaint / cinemagraph: one conditional model, a different <C, M> each (Lumiere 4.2)."""
    if args.command == "inpaint" and (args.mask is None) == (args.border is None):
        raise ValueError("give the region to fill with --mask FILE (white = fill) or --border PIXELS (outpainting)")
    out, t0 = _prepare(args)
    inputs, notes = _read_inputs(args, "conditional")
    import torch

    from vidiff.pipelines import conditional as cp

    cls = {"animate": cp.ImageToVideoPipeline, "inpaint": cp.VideoInpaintPipeline,
           "cinemagraph": cp.CinemagraphPipeline}[args.command]
    pipe = _load(cls, args.model, args)
    settings = _common_settings(args, pipe, args.frames, input=str(args.input))
    settings.update({k: v for k, v in notes.items() if k != "input_fps"})
    if "input_fps" in notes:
        settings["fps"] = args.fps or notes["input_fps"]
    t = settings["num_frames"]
    settings["keep_known"] = not args.no_keep_known
    cond_scale = pipe.condition_guidance(args.condition_guidance)
    settings["condition_guidance_scale"] = cond_scale
    kw = dict(num_inference_steps=args.steps, guidance_scale=args.guidance, sampler=args.sampler,
              generator=torch.Generator().manual_seed(args.seed), progress=not args.quiet,
              keep_known=settings["keep_known"], condition_guidance_scale=cond_scale)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        if args.command == "animate":
            video = pipe(args.prompt, inputs["image"], num_frames=t, **kw)
        elif args.command == "cinemagraph":
            video = pipe(args.prompt, inputs["image"], inputs["region"], num_frames=t, **kw)
        else:
            video = pipe(args.prompt, inputs["clip"], inputs["region"], **kw)
    return _finish(video.videos, pipe, args, out, settings, t0)


def cmd_edit(args: argparse.Namespace) -> int:
    """SDEdit: noise the video to ``--strength`` and denoise it with the new caption."""
    out, t0 = _prepare(args)
    inputs, notes = _read_inputs(args, "text-to-video")
    import torch

    from vidiff.pipelines.edit import VideoEditPipeline

    pipe = _load(VideoEditPipeline, args.model, args)
    settings = _common_settings(args, pipe, args.frames, input=str(args.input), strength=args.strength)
    settings["fps"] = args.fps or notes["input_fps"]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        video = pipe(args.prompt, inputs["clip"], strength=args.strength, num_inference_steps=args.steps,
                     guidance_scale=args.guidance, sampler=args.sampler, generator=torch.Generator().manual_seed(args.seed),
                     progress=not args.quiet)
    return _finish(video.videos, pipe, args, out, settings, t0)


def cmd_upscale(args: argparse.Namespace) -> int:
    """The SSR stage alone, on an existing low-resolution video."""
    out, t0 = _prepare(args)
    from vidiff.io.inputs import check_aspect, frames_to_tensor
    from vidiff.io.video import read_video
    from vidiff.pipelines.base import check_folder

    d = check_folder(resolve_model(args.model), "super-resolution")
    frames, fps = read_video(args.input, num_frames=args.frames)
    h, w = frames.shape[1:3]
    H, W = int(d["height"]), int(d["width"])
    check_aspect(h, w, H, W, repr(str(args.input)))
    if H < h or W < w:
        raise ValueError(f"{str(args.input)!r} is {w}x{h} (width x height); this model makes {W}x{H} from a smaller "
                         f"clip: crop it first")
    import torch

    from vidiff.pipelines.super_resolution import SuperResolutionPipeline

    pipe = _load(SuperResolutionPipeline, args.model, args)
    lowres = frames_to_tensor(frames)  # (1, 3, t, h, w)
    settings = {"prompt": args.prompt, "model": str(pipe.path), "input": str(args.input), "seed": args.seed,
                "num_frames": len(frames), "window": args.window, "stride": args.stride,
                "num_inference_steps": args.ssr_steps, "fps": args.fps or fps}
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        video = pipe(args.prompt, lowres, window=args.window, stride=args.stride, num_inference_steps=args.ssr_steps,
                     generator=torch.Generator().manual_seed(args.seed), progress=not args.quiet)
    return _finish(video.videos, pipe, args, out, settings, t0)


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
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ValueError(f"--set {item!r}: the value is not valid YAML") from None
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
    _check_ranges(args)
    from vidiff.evaluation.report import SUITES, check_report_dir

    out = Path(args.out or (f"runs/eval-{args.suite}" if args.model else "runs/eval-folders"))
    check_report_dir(out, args.overwrite)
    if args.model:
        resolve_model(args.model)
        if args.suite not in SUITES:
            raise ValueError(f"unknown suite {args.suite!r}; allowed: {', '.join(SUITES)}")
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from vidiff.evaluation.report import evaluate_folders, evaluate_model

    common = dict(video_features=args.video_features, image_features=args.image_features,
                  classifier=args.classifier, clip=args.clip, progress=not args.quiet, overwrite=args.overwrite)
    if args.real:
        report = evaluate_folders(args.real, args.fake, out, captions=args.captions, frames=args.frames, **common)
    else:
        model_dir = resolve_model(args.model)
        report = evaluate_model(model_dir, args.suite, args.samples, out, steps=args.steps, guidance=args.guidance,
                                seed=args.seed, sweep_steps=tuple(args.sweep_steps), sweep_samples=args.sweep_samples,
                                bf16=False if args.fp32 else None, **common)
    if not args.quiet:
        print(json.dumps(report["metrics"], indent=1))
        print(f"wrote {out}/metrics.json, report.md, plots ({report['seconds']['total']} s)")
    return 0


# ---------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse prints the usage block first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vidiff", description="Text-to-video diffusion (Lumiere STUNet and friends).")
    sub = p.add_subparsers(dest="command", required=True)

    def sampling_args(c: argparse.ArgumentParser, model: str, frames: bool = True) -> None:
        c.add_argument("-o", "--output", default="video.mp4", help="output .mp4/.webm/.gif, or a folder for PNG frames")
        c.add_argument("--model", default=model, help=f"pipeline folder or embedded name (default: {model})")
        if frames:
            c.add_argument("--frames", type=int, default=None, help="number of frames (model default: 16)")
        c.add_argument("--steps", type=int, default=None, help="denoising steps (default 25)")
        c.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
        c.add_argument("--sampler", default="dpm++", help="dpm++ (default), ddim or ddpm")
        c.add_argument("--seed", type=int, default=0)
        c.add_argument("--fps", type=float, default=None)
        c.add_argument("--style", default=None, help="a style fine-tune of the model (e.g. style-outlined): "
                       "generate with interpolated weights (Lumiere 4.1)")
        c.add_argument("--alpha", type=float, default=0.7, help="style weight: W = alpha W_style + (1 - alpha) W")
        c.add_argument("--base-only", action="store_true", help="skip the spatial super-resolution stage")
        c.add_argument("--ssr", default=None, help="super-resolution pipeline (default: the one the model names)")
        c.add_argument("--window", type=int, default=None, help="SSR temporal window in frames (MultiDiffusion)")
        c.add_argument("--stride", type=int, default=None, help="SSR window stride; = window: no overlap")
        c.add_argument("--ssr-steps", type=int, default=None, help="SSR denoising steps")
        c.add_argument("--bf16", action="store_true", help="bfloat16 autocast (faster on CPUs with AMX)")
        c.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
        c.add_argument("--no-sheet", action="store_true", help="do not write the contact-sheet PNG")
        c.add_argument("--overwrite", action="store_true", help="replace an existing output (video, sheet, sidecar) "
                       "once the new one is complete; never an input, nor a folder holding other files")
        c.add_argument("-q", "--quiet", action="store_true")

    g = sub.add_parser("generate", help="generate a video from a caption (base model, then super-resolution)")
    g.add_argument("prompt", help="the caption, e.g. 'a red circle quickly bouncing left and right'")
    sampling_args(g, DEFAULT_MODEL)
    g.add_argument("--size", type=int, default=None, help="base height and width in pixels (model default: 32)")
    g.add_argument("--negative-prompt", default="", help="caption for the unconditional branch")
    g.add_argument("--base-window", type=int, default=None,
                   help="long clips: denoise --frames as overlapping windows of this many frames fused by "
                        "MultiDiffusion (e.g. --frames 48 --base-window 16)")
    g.add_argument("--base-stride", type=int, default=None, help="base window stride (default: a quarter of the "
                   "window; = window: independent windows)")
    g.add_argument("--base-weighting", choices=["triangle", "uniform"], default="triangle",
                   help="how overlapping windows are averaged: triangle (default: a cross-fade, fewest seams) or "
                        "uniform (Lumiere's plain mean)")
    g.set_defaults(func=cmd_generate)

    def application(name: str, help: str, input_help: str, prompt_help: str = "the caption") -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help)
        c.add_argument("input", help=input_help)
        c.add_argument("prompt", help=prompt_help)
        c.set_defaults(func=cmd_conditional)
        return c

    a = application("animate", "image-to-video: a video that starts with the given image",
                    "the first frame (PNG/JPEG), resized to the model's size")
    sampling_args(a, "conditional")
    i = application("inpaint", "regenerate a region of a video (--mask), or its border (--border: outpainting)",
                    "the video", "the caption of the whole result")
    i.add_argument("--mask", default=None, help="PNG (all frames) or video (per frame); white = region to fill")
    i.add_argument("--border", type=int, default=None, help="outpaint: regenerate a border this many pixels wide")
    sampling_args(i, "conditional")
    c = application("cinemagraph", "animate an image only inside a region", "the image")
    c.add_argument("--region", required=True, help="PNG mask; white = the region that moves")
    sampling_args(c, "conditional")
    for cmd in (a, i, c):
        cmd.add_argument("--no-keep-known", action="store_true", help="do not paste the given pixels back after "
                         "every step: leave them to the model's conditioning alone (Lumiere's setting)")
        cmd.add_argument("--condition-guidance", type=float, default=None, help="guidance scale on the given "
                         "pixels as well as the caption (InstructPix2Pix's image guidance; 1: none; default: the "
                         "model's)")

    ed = application("edit", "SDEdit: re-generate a video with a new caption, keeping its layout and motion",
                     "the video to edit", "the new caption")
    ed.add_argument("--strength", type=float, default=0.6, help="0: return the input; 1: ignore it (default 0.6)")
    sampling_args(ed, DEFAULT_MODEL)
    ed.set_defaults(func=cmd_edit)

    u = application("upscale", "spatial super-resolution of a low-resolution video (MultiDiffusion windows)",
                    "the low-resolution video", "its caption")
    u.add_argument("-o", "--output", default="video.mp4")
    u.add_argument("--model", default="ssr", help="super-resolution pipeline folder (default: the embedded ssr)")
    u.add_argument("--frames", type=int, default=None, help="read at most this many frames (default: all)")
    u.add_argument("--window", type=int, default=None, help="temporal window in frames")
    u.add_argument("--stride", type=int, default=None, help="window stride; = window: no overlap")
    u.add_argument("--ssr-steps", type=int, default=None, help="denoising steps")
    u.add_argument("--seed", type=int, default=0)
    u.add_argument("--fps", type=float, default=None)
    u.add_argument("--bf16", action="store_true")
    u.add_argument("--threads", type=int, default=0)
    u.add_argument("--no-sheet", action="store_true")
    u.add_argument("--overwrite", action="store_true", help="replace an existing output once the new one is complete")
    u.add_argument("-q", "--quiet", action="store_true")
    u.set_defaults(func=cmd_upscale, base_only=True, ssr=None)

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
    e.add_argument("--video-features", default="shapes", help="FVD/KVD features: shapes | i3d:PATH | i3d-pool:PATH | torchscript:PATH (a TorchScript file runs "
                   "code: use only files you trust)")
    e.add_argument("--image-features", default="shapes", help="frame FID/KID features: shapes | inception:PATH")
    e.add_argument("--classifier", default="shapes",
                   help="IS classifier: shapes | i3d:PATH | torchscript:PATH (TorchScript runs code: trusted files only)")
    e.add_argument("--clip", default=None, help="local transformers CLIP folder: CLIPSIM and frame consistency")
    e.add_argument("--fp32", action="store_true", help="generate in fp32 (default: bf16 autocast where the CPU has native bf16 kernels)")
    e.add_argument("--threads", type=int, default=0)
    e.add_argument("-o", "--out", default=None, help="report folder (default runs/eval-<suite>)")
    e.add_argument("--overwrite", action="store_true", help="replace an earlier report in the folder")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure is one line on stderr: bad input and OS errors (a full disk, a
    permission) exit 2, an interruption 130, anything else is a bug in vidiff and exits 1 (set VIDIFF_DEBUG=1
    for its traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:
        return _fail(str(e), 2)
    except OSError as e:
        where = f" {e.filename!r}" if getattr(e, "filename", None) else ""
        return _fail(f"cannot read or write{where}: {e.strerror or e}", 2)
    except MemoryError:
        return _fail("not enough memory for this size; lower --frames, --size or --window", 2)
    except KeyboardInterrupt:
        print("vidiff: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("VIDIFF_DEBUG"):
            raise
        return _fail(f"internal error, please report it ({type(e).__name__}: {str(e)[:200]}); "
                     "set VIDIFF_DEBUG=1 for the traceback", 1)


def _fail(message: str, code: int) -> int:
    print(f"vidiff: error: {' '.join(message.split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
