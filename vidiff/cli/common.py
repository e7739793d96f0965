"""What the generating commands share: output paths, checks before any model loads, loading the pipeline the
user asked for, and writing the video, its contact sheet and its settings sidecar."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from vidiff.registry import model_path, resolve_model, weights_dir

DEFAULT_MODEL = "default"


def default_model_path() -> Path:
    return weights_dir() / DEFAULT_MODEL


def planned_outputs(args: argparse.Namespace) -> list[Path]:
    """Every file or folder the command will write: the video, its contact sheet and its settings sidecar."""
    from vidiff.io.outputs import absolute, sheet_path, sidecar_path

    out = absolute(args.output)
    return [out, sidecar_path(out)] + ([] if args.no_sheet else [sheet_path(out)])


def _inputs(args: argparse.Namespace) -> list:
    """Everything the command reads, which it must never write over."""
    named = [getattr(args, k, None) for k in ("input", "mask", "region", "config")]
    models = [getattr(args, k, None) for k in ("model", "style", "ssr", "image_model")]
    return named + [model_path(m) for m in models if m]


# ---------------------------------------------------------------------- shared by the generating commands
def _prepare(args: argparse.Namespace) -> tuple[Path, float]:
    """Checks that need no heavy import (caption, output path, numeric ranges, model path), threads;
    returns the output path and the start time."""
    from vidiff.conditioning.captions import check_caption
    from vidiff.io.video import check_writable, output_format
    from vidiff.models.lora import is_lora_file, read_lora

    check_caption(args.prompt)
    if getattr(args, "negative_prompt", ""):
        check_caption(args.negative_prompt, "the negative prompt")
    if getattr(args, "base_only", False) and getattr(getattr(args, "func", None), "__name__", "") != "cmd_upscale":
        given = [f for f, key in (("--ssr", "ssr"), ("--window", "window"), ("--stride", "stride"),
                                  ("--ssr-steps", "ssr_steps")) if getattr(args, key, None) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} set{'s' if len(given) == 1 else ''} the super-resolution stage, "
                             f"which --base-only skips; drop one or the other")
    _check_ranges(args)
    from vidiff.io.outputs import check_outputs

    outputs = planned_outputs(args)
    check_outputs(outputs, _inputs(args), overwrite=args.overwrite)
    output_format(args.output)
    out = outputs[0]
    check_writable(out)
    _precision(args)  # the device exists and runs the precision: checked before any model loads
    for name in ("model", "style", "ssr", "image_model"):
        value = getattr(args, name, None)
        if name == "image_model" and value and is_lora_file(value):
            read_lora(value)  # a LoRA of the image model: its tensors are read and checked here
        elif value:
            resolve_model(value)
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    return out, time.time()


def check_ssr_args(args: argparse.Namespace, model: Path) -> None:
    """--window / --stride against the super-resolution stage that will run (--ssr, else the one ``model``'s folder
    names), read from its vidiff_pipeline.json before any model loads: a window shorter than the stage's own stride
    was refused only after the base clip had been made."""
    given = [f for f, v in (("--window", args.window), ("--stride", args.stride),
                            ("--ssr-steps", getattr(args, "ssr_steps", None))) if v is not None]
    if getattr(args, "base_only", False) or not given:
        return
    from vidiff.pipelines.folder import check_folder, named_super_resolution, read_meta
    from vidiff.pipelines.super_resolution import ssr_windows

    ssr = resolve_model(args.ssr) if getattr(args, "ssr", None) else named_super_resolution(model, read_meta(model))
    if ssr is None:  # --ssr-steps was refused after the model had loaded, in the library's words (ssr_steps)
        raise ValueError(f"{' / '.join(given)} set{'s' if len(given) == 1 else ''} the super-resolution stage, and "
                         f"{str(model)!r} names none; give --ssr PATH, or drop {'it' if len(given) == 1 else 'them'}")
    ssr_windows(check_folder(ssr, "super-resolution"), args.window, args.stride, ("--window", "--stride"))


def _load(cls, model: str, args: argparse.Namespace):
    """The pipeline as the user asked for it: the model, its super-resolution stage (--ssr, else the folder's,
    none with --base-only) and a style (--style, --alpha). Everything else is the library's defaults."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    _say(args, f"loading {model}" + (f" with style {args.style}" if getattr(args, "style", None) else "") + " ...")
    ssr = getattr(args, "ssr", None)
    pipe = cls.from_pretrained(model, base_only=getattr(args, "base_only", False),
                               super_resolution=ssr if ssr and not args.base_only else None)
    if getattr(args, "image_model", None):
        scale = getattr(args, "image_model_scale", None)
        pipe = pipe.with_image_model(args.image_model, 1.0 if scale is None else scale,
                                     boundary_ratio=getattr(args, "image_model_boundary", None))
    if getattr(args, "style", None):
        pipe = pipe.with_style(args.style, args.alpha)
    if getattr(args, "free_init", None):
        pipe.enable_free_init(args.free_init)
    if getattr(args, "correlated_noise", None) is not None:
        try:
            pipe.enable_correlated_step_noise(args.correlated_noise, getattr(args, "correlated_noise_max_t", None))
        except ValueError as e:
            raise ValueError(_step_noise_flags(e)) from None
    return pipe.to(_device(args))


def _say(args: argparse.Namespace, message: str) -> None:
    """A progress line on stdout (stderr carries only warnings and the error line)."""
    if not args.quiet:
        print(message, flush=True)


def _precision(args: argparse.Namespace) -> str:
    """The autocast precision the user asked for (--dtype, or --bf16), checked against the device."""
    from vidiff.hardware import check_precision

    asked = getattr(args, "dtype", None) or ("bf16" if getattr(args, "bf16", False) else "fp32")
    if getattr(args, "dtype", None) and getattr(args, "bf16", False) and args.dtype != "bf16":
        raise ValueError(f"--bf16 and --dtype {args.dtype} disagree; give one")
    return check_precision(asked, _device(args))


def _device(args: argparse.Namespace):
    """--device resolved (auto: CUDA when present); ValueError for a device this machine does not have."""
    from vidiff.hardware import resolve_device

    return resolve_device(getattr(args, "device", "auto"))


def _autocast(args: argparse.Namespace):
    """Autocast of the device's type at the asked precision; bf16 on a CPU without native bf16 kernels (where it is
    ~100x slower) warns and stays in fp32."""
    from vidiff.hardware import SLOW_BF16, autocast, native_bf16

    device = _device(args)
    precision = _precision(args)
    if precision == "bf16" and device.type == "cpu" and not native_bf16():
        print(f"vidiff: warning: {SLOW_BF16}; running in fp32 instead", file=sys.stderr)
        precision = "fp32"
    args.bf16 = precision == "bf16"
    args.dtype = precision
    return autocast(device, precision)


def _generator(args: argparse.Namespace):
    import torch

    return torch.Generator().manual_seed(args.seed)


def _timesteps(args: argparse.Namespace) -> list[int] | None:
    """``--timesteps 999,700,400,100`` as the library's ``timesteps=``, checked against the model's diffusion time
    before it loads."""
    text = getattr(args, "timesteps", None)
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--timesteps takes whole numbers separated by commas, noisiest first (e.g. 999,700,400,100), "
                         f"got {text!r}") from None
    from vidiff.pipelines.base import check_timesteps
    from vidiff.pipelines.folder import read_meta

    total = read_meta(resolve_model(args.model)).get("diffusion", {}).get("num_train_timesteps", 1000)
    try:
        grid = check_timesteps(values, total)
    except ValueError as e:
        raise ValueError(str(e).replace("timesteps", "--timesteps", 1)) from None
    if args.steps is not None and args.steps != len(grid):
        raise ValueError(f"--steps {args.steps} and the {len(grid)} --timesteps disagree; give one of them")
    return grid


def _guidance_kwargs(args: argparse.Namespace, sampler: str | None = None) -> dict:
    """``--guidance-rescale`` and ``--eta`` as the library's keywords (their ranges: :func:`_check_ranges`); a non-zero
    ``--eta`` with a sampler other than DDIM (``sampler``: the one the command runs, else ``--sampler`` or the model's
    default) is refused before the model loads."""
    eta = getattr(args, "eta", None)
    if eta:
        if sampler is None:
            from vidiff.pipelines.folder import read_meta, resolve_defaults

            sampler = args.sampler or resolve_defaults(read_meta(resolve_model(args.model)).get("defaults"))["sampler"]
        if sampler != "ddim":
            raise ValueError(f"--eta is DDIM's; the sampler here is {sampler}: add --sampler ddim, or leave --eta out")
    return {"guidance_rescale": getattr(args, "guidance_rescale", None), "eta": eta}


def _ssr_kwargs(args: argparse.Namespace) -> dict:
    return {"ssr_window": args.window, "ssr_stride": args.stride, "ssr_steps": args.ssr_steps}


def _write(result, pipe, args: argparse.Namespace, out: Path, notes: dict, t0: float) -> int:
    """Write the video, its contact sheet and the sidecar (:meth:`VideoPipelineOutput.save`): the call's resolved
    settings, and what the user typed that the library does not record."""
    extra = {**notes, "model": str(pipe.path), "seed": args.seed, "bf16": args.bf16, "dtype": args.dtype,
             "device": str(pipe.device)}
    written = result.save(out, fps=args.fps, sheet=not args.no_sheet, overwrite=args.overwrite,
                          view_size=0 if getattr(args, "native_size", False) else 256, extra=extra, started=t0)
    if not args.quiet:
        print(f"wrote {', '.join(str(p) for p in written)} ({round(time.time() - t0, 2)} s)")
    return 0


def _step_noise_flags(e: ValueError) -> str:
    """The library's words for the correlated step noise's settings, as the flags that set them."""
    return (str(e).replace("the step noise's correlation", "--correlated-noise")
            .replace("the step noise's max_t", "--correlated-noise-max-t"))


def _check_ranges(args: argparse.Namespace) -> None:
    import math

    from vidiff.checks import LIMITS

    if getattr(args, "alpha", None) is not None and not getattr(args, "style", None):  # it was ignored
        raise ValueError("--alpha sets the weight of a --style fine-tune; give --style too")
    boundary = getattr(args, "image_model_boundary", None)
    if boundary is not None and not getattr(args, "image_model", None):
        raise ValueError("--image-model-boundary sets where an --image-model takes over; give --image-model too")
    if boundary is not None and not (math.isfinite(boundary) and 0.0 < boundary <= 1.0):
        raise ValueError(f"--image-model-boundary must be in (0, 1] (1: every step), got {boundary}")
    scale = getattr(args, "image_model_scale", None)
    if scale is not None and not getattr(args, "image_model", None):
        raise ValueError("--image-model-scale sets how much of an --image-model is applied; give --image-model too")
    if scale is not None and not math.isfinite(scale):
        raise ValueError(f"--image-model-scale must be a finite number (1: the image model as it is), got {scale}")
    rho, max_t = getattr(args, "correlated_noise", None), getattr(args, "correlated_noise_max_t", None)
    if max_t is not None and rho is None:
        raise ValueError("--correlated-noise-max-t sets the steps of --correlated-noise; give --correlated-noise too")
    if rho is not None:
        from vidiff.diffusion.step_noise import DEFAULT_MAX_T, StepNoise

        try:
            StepNoise(rho, DEFAULT_MAX_T if max_t is None else max_t)
        except ValueError as e:
            raise ValueError(_step_noise_flags(e)) from None
    for name, (low, high) in LIMITS.items():
        v = getattr(args, name, None)
        if v is None:
            continue
        if not math.isfinite(v) or not low <= v <= high:
            raise ValueError(f"--{name.replace('_', '-')} must be in [{low}, {high}], got {v}")
    low, high = LIMITS["steps"]
    for v in getattr(args, "sweep_steps", None) or []:
        if not low <= v <= high:
            raise ValueError(f"--sweep-steps values must be in [{low}, {high}], got {v}")
