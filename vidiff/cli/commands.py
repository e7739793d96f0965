"""The commands: each parses nothing, checks what needs no model, calls the library, writes what it returns."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from vidiff.cli.common import (
    _autocast, _check_ranges, _generator, _guidance_kwargs, _load, _prepare, _ssr_kwargs, _timesteps, _write,
    check_ssr_args,
)
from vidiff.registry import resolve_model

# ---------------------------------------------------------------------- generate
def cmd_generate(args: argparse.Namespace) -> int:
    out, t0 = _prepare(args)
    from vidiff.pipelines.folder import check_folder

    if (args.base_stride is not None or args.base_weighting is not None) and args.base_window is None:
        # refused after the model had loaded, in the library's words (stride, window_weighting, window=)
        raise ValueError("--base-stride / --base-weighting set the base stage's temporal windows; give --base-window "
                         "(frames per window) as well")
    given = {"num_frames": "--base-window" if args.base_window else "--frames" if args.frames else None,
             "height and width must be positive multiples": "--size must be a positive multiple" if args.size else None}
    check_folder(resolve_model(args.model), "text-to-video", args.base_window or args.frames, args.size, args.size,
                 {k: v for k, v in given.items() if v})  # sizes the user gave are named as the flags in errors
    is_image = _is_image_model(resolve_model(args.model))
    if args.zero_shot or args.motion is not None:
        return _generate_zero_shot(args, out, t0, is_image)
    check_ssr_args(args, resolve_model(args.model))
    if is_image:
        raise ValueError(f"{args.model!r} is a text-to-image model: add --zero-shot (Text2Video-Zero), or make a video "
                         f"model of it with 'vidiff inflate'")
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    timesteps, knobs = _timesteps(args), _guidance_kwargs(args)
    pipe = _load(TextToVideoPipeline, args.model, args)
    with _autocast(args):
        result = pipe(args.prompt, num_frames=args.frames, height=args.size, width=args.size,
                      num_inference_steps=args.steps, timesteps=timesteps, guidance_scale=args.guidance,
                      negative_prompt=args.negative_prompt, sampler=args.sampler, generator=_generator(args),
                      window=args.base_window, stride=args.base_stride, window_weighting=args.base_weighting,
                      base_only=args.base_only, progress=not args.quiet, **knobs, **_ssr_kwargs(args))
    return _write(result, pipe, args, out, {"prompt": args.prompt}, t0)


def _is_image_model(folder: Path) -> bool:
    from vidiff.pipelines.folder import unet_class_name

    return unet_class_name(folder) == "UNet2DConditionModel"


def _generate_zero_shot(args: argparse.Namespace, out, t0: float, is_image: bool) -> int:
    if not is_image:
        raise ValueError(f"--zero-shot runs a text-to-image model; {args.model!r} is a video model")
    unused = [f for f in ("base_window", "base_stride", "base_weighting", "ssr", "window", "stride", "ssr_steps",
                          "style", "sampler", "image_model", "free_init", "timesteps",
                          "correlated_noise")
              if getattr(args, f, None) not in (None, False)]
    if unused:
        raise ValueError(f"--zero-shot does not take {', '.join('--' + f.replace('_', '-') for f in unused)}")
    motion = None
    if args.motion is not None:
        try:
            dx, dy = (float(v) for v in args.motion.split(","))
        except ValueError:
            raise ValueError(f"--motion takes DX,DY in pixels per frame (e.g. -1,0), got {args.motion!r}") from None
        if not (math.isfinite(dx) and math.isfinite(dy)):  # before the model loads; its size bounds them after
            raise ValueError(f"--motion takes two finite numbers of pixels per frame, got {args.motion!r}")
        motion = (dx, dy)
    if not args.zero_shot:
        raise ValueError("--motion needs --zero-shot")
    from vidiff.pipelines.zero_shot import TextToVideoZeroPipeline

    knobs = _guidance_kwargs(args, sampler="ddim")  # Text2Video-Zero samples with DDIM
    pipe = _load(TextToVideoZeroPipeline, args.model, args)
    with _autocast(args):
        result = pipe(args.prompt, num_frames=args.frames, height=args.size, width=args.size,
                      num_inference_steps=args.steps, guidance_scale=args.guidance,
                      negative_prompt=args.negative_prompt, motion=motion, generator=_generator(args),
                      progress=not args.quiet, **knobs)
    return _write(result, pipe, args, out, {"prompt": args.prompt}, t0)


# ---------------------------------------------------------------------- conditional generation and editing
def _read_inputs(args: argparse.Namespace, task: str) -> tuple[dict, dict]:
    """Check the model folder and read every input file at the model's size, before the model loads.
    Returns the tensors and what goes in the sidecar about them."""
    from vidiff.io.inputs import read_clip, read_image, read_mask
    from vidiff.pipelines.folder import check_folder

    model = resolve_model(args.model)
    d = check_folder(model, task, args.frames, names={"num_frames": "--frames"} if args.frames else None)
    check_ssr_args(args, model)
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


def _with_input_fps(args: argparse.Namespace, notes: dict) -> None:
    """A clip made from an input video keeps its frame rate unless --fps is given."""
    if "input_fps" in notes and args.fps is None:
        args.fps = notes["input_fps"]


def cmd_conditional(args: argparse.Namespace) -> int:
    """animate / inpaint / cinemagraph: one conditional model, a different <C, M> each (Lumiere 4.2)."""
    if args.command == "inpaint" and (args.mask is None) == (args.border is None):
        both = "--mask and --border both give the region to fill; give one: " if args.mask is not None else "give "
        raise ValueError(f"{both}the region to fill with --mask FILE (white = fill) or --border PIXELS (outpainting; "
                         "in the model's pixels, before super-resolution)")
    out, t0 = _prepare(args)
    inputs, notes = _read_inputs(args, "conditional")
    from vidiff.pipelines import conditional as cp

    cls = {"animate": cp.ImageToVideoPipeline, "inpaint": cp.VideoInpaintPipeline,
           "cinemagraph": cp.CinemagraphPipeline}[args.command]
    timesteps, knobs = _timesteps(args), _guidance_kwargs(args)
    pipe = _load(cls, args.model, args)
    kw = dict(num_inference_steps=args.steps, timesteps=timesteps, guidance_scale=args.guidance, sampler=args.sampler,
              generator=_generator(args), progress=not args.quiet, keep_known=not args.no_keep_known,
              condition_guidance_scale=args.condition_guidance, base_only=args.base_only, **knobs,
              **_ssr_kwargs(args))
    with _autocast(args):
        if args.command == "animate":
            result = pipe(args.prompt, inputs["image"], num_frames=args.frames, **kw)
        elif args.command == "cinemagraph":
            result = pipe(args.prompt, inputs["image"], inputs["region"], num_frames=args.frames, **kw)
        else:
            result = pipe(args.prompt, inputs["clip"], inputs["region"], **kw)
    _with_input_fps(args, notes)
    notes = {k: v for k, v in notes.items() if k != "input_fps"}
    return _write(result, pipe, args, out, {"prompt": args.prompt, "input": str(args.input), **notes}, t0)


def cmd_edit(args: argparse.Namespace) -> int:
    """SDEdit: noise the video to ``--strength`` and denoise it with the new caption."""
    out, t0 = _prepare(args)
    inputs, notes = _read_inputs(args, "text-to-video")
    from vidiff.pipelines.edit import VideoEditPipeline

    timesteps, knobs = _timesteps(args), _guidance_kwargs(args)
    pipe = _load(VideoEditPipeline, args.model, args)
    with _autocast(args):
        result = pipe(args.prompt, inputs["clip"], strength=args.strength, num_inference_steps=args.steps,
                      timesteps=timesteps, guidance_scale=args.guidance, sampler=args.sampler,
                      generator=_generator(args), base_only=args.base_only, progress=not args.quiet, **knobs,
                      **_ssr_kwargs(args))
    _with_input_fps(args, notes)
    return _write(result, pipe, args, out, {"prompt": args.prompt, "input": str(args.input)}, t0)


def cmd_upscale(args: argparse.Namespace) -> int:
    """The SSR stage alone, on an existing low-resolution video (one vidiff wrote is read back at its model
    resolution: vidiff.io.inputs.read_lowres)."""
    out, t0 = _prepare(args)
    from vidiff.io.inputs import check_aspect, frames_to_tensor, read_lowres
    from vidiff.pipelines.folder import check_folder

    d = check_folder(resolve_model(args.model), "super-resolution")
    from vidiff.pipelines.super_resolution import ssr_windows

    ssr_windows(d, args.window, args.stride, ("--window", "--stride"))
    frames, fps = read_lowres(args.input, num_frames=args.frames)
    h, w = frames.shape[1:3]
    H, W = int(d["height"]), int(d["width"])
    check_aspect(h, w, H, W, repr(str(args.input)))
    if H < h or W < w:
        raise ValueError(f"{str(args.input)!r} is {w}x{h} (width x height); this model makes {W}x{H} from a smaller "
                         f"clip: crop it first")
    from vidiff.pipelines.super_resolution import SuperResolutionPipeline

    pipe = _load(SuperResolutionPipeline, args.model, args)
    with _autocast(args):
        result = pipe(args.prompt, frames_to_tensor(frames), window=args.window, stride=args.stride,
                      num_inference_steps=args.ssr_steps, generator=_generator(args), progress=not args.quiet)
    if args.fps is None:
        args.fps = fps
    return _write(result, pipe, args, out, {"prompt": args.prompt, "input": str(args.input)}, t0)


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


# ---------------------------------------------------------------------- inflate
def cmd_inflate(args: argparse.Namespace) -> int:
    from vidiff.pipelines.inflate import inflate

    extra = {} if args.conv_inflation is None else {"conv_inflation": args.conv_inflation}
    inflate(args.image_model, args.arch, args.out, motion_module=args.motion_module, overwrite=args.overwrite,
            motion_adapter=args.motion_adapter, **extra)
    print(f"video model ({args.arch}): {args.out}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from vidiff.pipelines.single_file import convert_single_file

    out = convert_single_file(args.checkpoint, args.config, args.out, overwrite=args.overwrite)
    print(f"image model (diffusers folder): {out}")
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
    from vidiff.evaluation.report import DEFAULT_SUITE, SUITES
    from vidiff.evaluation.report_files import check_report_dir

    # each mode's options, given: the other mode's were ignored without a word (--frames with --model, --steps with
    # --real/--fake); what is not given takes the library's defaults
    for_model = {"--suite": args.suite, "--samples": args.samples, "--steps": args.steps, "--guidance": args.guidance,
                 "--seed": args.seed, "--sweep-steps": args.sweep_steps, "--sweep-samples": args.sweep_samples,
                 "--fp32": args.fp32 or None, "--device": None if args.device == "auto" else args.device}
    for_folders = {"--captions": args.captions, "--frames": args.frames}
    stray = [k for k, v in (for_model if args.real else for_folders).items() if v is not None]
    if stray:
        mode, other = (("scores two folders", "--model (generating a suite)") if args.real
                       else ("generates a suite", "--real/--fake (scoring folders)"))
        raise ValueError(f"{', '.join(stray)} appl{'ies' if len(stray) == 1 else 'y'} to {other}; this evaluation "
                         f"{mode}: drop {'it' if len(stray) == 1 else 'them'}")
    suite = args.suite or DEFAULT_SUITE
    out = Path(args.out or (f"runs/eval-{suite}" if args.model else "runs/eval-folders"))
    check_report_dir(out, args.overwrite)
    from vidiff.hardware import resolve_device

    resolve_device(args.device)  # a device this machine has, before anything loads
    if args.model:
        resolve_model(args.model)
        if suite not in SUITES:
            raise ValueError(f"unknown suite {suite!r}; allowed: {', '.join(SUITES)}")
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from vidiff.evaluation.report import evaluate_folders, evaluate_model

    common = dict(video_features=args.video_features, image_features=args.image_features,
                  classifier=args.classifier, clip=args.clip, progress=not args.quiet, overwrite=args.overwrite)
    if args.real:
        given = {k: v for k, v in (("frames", args.frames),) if v is not None}
        report = evaluate_folders(args.real, args.fake, out, captions=args.captions, **given, **common)
    else:
        model_dir = resolve_model(args.model)
        given = {k: v for k, v in (("seed", args.seed), ("sweep_samples", args.sweep_samples),
                                   ("sweep_steps", None if args.sweep_steps is None else tuple(args.sweep_steps)))
                 if v is not None}
        report = evaluate_model(model_dir, out_dir=out, suite=suite, samples=args.samples, steps=args.steps,
                                guidance=args.guidance, bf16=False if args.fp32 else None, device=args.device,
                                **given, **common)
    for w in report.get("warnings", []):
        print(f"vidiff: warning: {w}", file=sys.stderr)
    if not args.quiet:
        print(json.dumps(report["metrics"], indent=1))
        print(f"wrote {out}/metrics.json, report.md, plots ({report['seconds']['total']} s)")
    return 0


# ---------------------------------------------------------------------- serve
def cmd_serve(args: argparse.Namespace) -> int:
    from vidiff.serve import check_host, check_models, check_port, serve

    check_host(args.host)
    check_port(args.port)
    style = None if args.style.lower() in ("", "none") else args.style
    models = {"text-to-video": args.model, "conditional": args.conditional, "style": style}
    check_models(models)
    from vidiff.hardware import resolve_device

    models["device"] = str(resolve_device(args.device))
    try:
        import gradio  # noqa: F401  (only: is it installed)
    except ImportError:
        raise ValueError("the web page needs gradio: pip install 'vidiff[serve]'") from None
    print(f"vidiff: serving on http://{args.host}:{args.port} (Ctrl-C stops)", flush=True)
    serve(args.host, args.port, models)
    return 0
