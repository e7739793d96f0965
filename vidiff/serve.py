"""``vidiff serve``: a local web page (gradio) over the library's pipelines.

Text-to-video with the shipped models (and a style slider), image-to-video from an uploaded picture, inpainting
and cinemagraphs with a region drawn on the picture or given as a box, SDEdit of an uploaded clip; seed, steps and
guidance; a progress bar; the video shown playable and downloadable with its settings (the same sidecar JSON the
CLI writes). Every handler calls the same pipeline as the CLI; bad input is shown as an error on the page.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
import uuid
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vidiff.registry import resolve_model

if TYPE_CHECKING:
    import torch

DEFAULT_MODELS = {"text-to-video": "default", "conditional": "conditional", "style": "style-outlined"}


# what each of the page's models must be (read from its vidiff_pipeline.json), and the CLI flag that names it
ROLES = {"text-to-video": ("text-to-video", "--model"), "conditional": ("conditional", "--conditional"),
         "style": ("text-to-video", "--style")}


def check_port(port: int) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ValueError(f"the port must be a whole number in [1, 65535], got {port!r}")
    return port


def check_host(host: str) -> str:
    """The address to listen on: a host name or address this machine resolves. gradio replaces an empty one with
    127.0.0.1 (or $GRADIO_SERVER_NAME) without a word, while the command announced an address without a host."""
    allowed = "give an address of this machine: 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
    if not isinstance(host, str) or not host or host != host.strip() or not host.isprintable() or " " in host:
        raise ValueError(f"--host must be an address or host name without spaces, got {host!r}; {allowed}")
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError) as e:
        raise ValueError(f"cannot resolve --host {host!r} ({e}); {allowed}") from None
    return host


def check_models(models: dict) -> None:
    """Before anything loads: each of the page's models exists and is the kind its tabs run (a text-to-video
    model for generating, editing and styles, a conditional one for image-to-video, inpainting, cinemagraphs)."""
    from vidiff.pipelines.folder import read_meta, unet_class_name

    for role, (task, flag) in ROLES.items():
        if not models.get(role):
            continue
        folder = resolve_model(models[role])
        got = read_meta(folder).get("task", "text-to-video")
        if got != task:
            raise ValueError(f"{flag} {models[role]!r} is a {got} model; the page needs a {task} model there")
        if role == "text-to-video" and unet_class_name(folder) == "UNet2DConditionModel":
            raise ValueError(f"{flag} {models[role]!r} is a text-to-image model; the page needs a video model (make "
                             f"one of it with 'vidiff inflate')")


@lru_cache(maxsize=4)
def _loaded(model: str, conditional: bool, device: str):
    """One loaded copy of each model folder: the page's kinds share it (``from_pipe``); until 2026-12-02 generating
    and editing each held a copy of the text-to-video model, and the three conditional kinds three of theirs."""
    from vidiff.hardware import resolve_device
    from vidiff.pipelines.conditional import ConditionalVideoPipeline
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    cls = ConditionalVideoPipeline if conditional else TextToVideoPipeline
    return cls.from_pretrained(model).to(resolve_device(device))


@lru_cache(maxsize=8)
def _pipeline(kind: str, model: str, style: str | None = None, alpha: float | None = None, device: str = "auto"):
    from vidiff.pipelines import conditional as cp
    from vidiff.pipelines.edit import VideoEditPipeline
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    cls = {"generate": TextToVideoPipeline, "edit": VideoEditPipeline, "animate": cp.ImageToVideoPipeline,
           "inpaint": cp.VideoInpaintPipeline, "cinemagraph": cp.CinemagraphPipeline}[kind]
    pipe = cls.from_pipe(_loaded(model, cls.task == "conditional", device))
    return pipe.with_style(style, alpha) if style else pipe


def _progress_callback(progress, total_steps: int, stop=None):
    """A ``callback_on_step_end`` that moves the page's progress bar over every stage's steps, and stops the sampling
    (diffusers' ``pipe._interrupt``) once ``stop`` (a ``threading.Event``) is set."""
    done = [0]

    def callback(pipe, i, t, kwargs):
        done[0] += 1
        if progress is not None:
            progress(min(done[0] / max(total_steps, 1), 1.0), desc=f"{pipe.task}: step {i + 1}")
        if stop is not None and stop.is_set():
            pipe._interrupt = True  # the stage's remaining steps are skipped; a later stage stops after its first
        return kwargs

    return callback


def _total_steps(pipe, steps: int | None, strength: float = 1.0) -> int:
    base = int(steps or pipe.defaults["num_inference_steps"])
    ssr = pipe.super_resolution
    return int(base * strength) + (int(ssr.defaults["num_inference_steps"]) if ssr is not None else 0)


def _write(result, pipe, inputs: dict, out_dir: Path) -> tuple[str, str, dict]:
    """The clip as an mp4 (H.264, upscaled for players) and its settings beside it; returns both paths and the
    settings."""
    from vidiff.io.atomic import write_text_atomic
    from vidiff.io.outputs import sidecar_path
    from vidiff.io.video import write_video

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"vidiff-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    settings = {**inputs, **result.settings, "model": str(pipe.path)}
    video = write_video(result.to_uint8()[0], out_dir / f"{stem}.mp4", fps=settings["fps"])
    side = sidecar_path(video)
    write_text_atomic(side, json.dumps(settings, indent=2))
    return str(video), str(side), settings


def picture(array, height: int, width: int, name: str = "image") -> "torch.Tensor":
    """An uploaded picture (uint8 h x w [x 3/4]) at the model's size as (1, 3, height, width) in [0, 1]."""
    from vidiff.io.inputs import frames_to_tensor, resize_frames

    if array is None:
        raise ValueError(f"upload an {name} first")
    a = np.asarray(array)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, -1)
    a = resize_frames(np.ascontiguousarray(a[..., :3].astype(np.uint8))[None], height, width, source=f"the {name}")
    return frames_to_tensor(a)[:, :, 0]  # (1, 3, height, width)


def region_mask(drawn, box: tuple[float, float, float, float] | None, height: int, width: int) -> "torch.Tensor":
    """(1, 1, height, width) in {0, 1}: where a layer of the image editor was painted, else the ``box`` (x0, y0,
    x1, y1 as fractions of the picture). Neither is an error."""
    import torch
    from PIL import Image

    layers = (drawn or {}).get("layers") or [] if isinstance(drawn, dict) else []
    painted = None
    for layer in layers:
        a = np.asarray(layer)
        if a.ndim == 3 and a.shape[-1] == 4:
            m = a[..., 3] > 0
            painted = m if painted is None else painted | m
    if painted is not None and painted.any():
        m = np.asarray(Image.fromarray(painted.astype(np.uint8) * 255).resize((width, height), Image.NEAREST)) >= 128
        return torch.from_numpy(m).float()[None, None]
    if box is None or any(v is None for v in box):
        raise ValueError("paint the region on the picture, or give a box (x0, y0, x1, y1 as fractions 0-1)")
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise ValueError(f"the box must have 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got {box}")
    m = torch.zeros(1, 1, height, width)
    m[..., int(y0 * height):max(int(y0 * height) + 1, round(y1 * height)),
      int(x0 * width):max(int(x0 * width) + 1, round(x1 * width))] = 1
    return m


def run(kind: str, prompt: str, seed: int, steps: int | None, guidance: float | None, *, model: str,
        style: str | None = None, alpha: float | None = None, out_dir: Path, progress=None, device: str = "auto",
        stop=None, **given) -> tuple[str, str, dict]:
    """One page request: checks, the pipeline call, the written clip. Raises ValueError on bad input. ``stop``: a
    ``threading.Event``; once set (the page's Stop button) the sampling ends before its next step, and the request
    raises ValueError without writing anything (set after the last step, it skips nothing: the clip is written)."""
    import torch

    from vidiff.conditioning.captions import check_caption
    from vidiff.io.inputs import read_clip
    from vidiff.checks import in_limits

    check_caption(prompt)
    # whole numbers in the CLI's ranges: the page's fields send floats, and 2.5 went through int() as 2 (a request
    # made without the page)
    seed = in_limits(seed, "seed", "the seed")
    steps = None if steps is None else in_limits(steps, "steps")
    pipe = _pipeline(kind, str(resolve_model(model)), str(resolve_model(style)) if style else None,
                     None if alpha is None else float(alpha), device)
    h, w = int(pipe.defaults["height"]), int(pipe.defaults["width"])
    kw = dict(num_inference_steps=int(steps) if steps else None, guidance_scale=guidance,
              generator=torch.Generator().manual_seed(int(seed)))
    inputs = {"prompt": prompt, "seed": int(seed)}
    strength = 1.0
    if kind in ("animate", "cinemagraph"):
        image = given.get("image")
        image_t = picture(image.get("background") if isinstance(image, dict) else image, h, w)
    if kind in ("inpaint", "edit"):
        if not given.get("video"):
            raise ValueError("upload a video first")
        clip, fps = read_clip(given["video"], int(pipe.defaults["num_frames"]), h, w)
        inputs["input_fps"] = fps
    if kind == "generate":
        result = pipe(prompt, callback_on_step_end=_progress_callback(progress, _total_steps(pipe, steps), stop), **kw)
    elif kind == "edit":
        strength = float(pipe.defaults["strength"] if given.get("strength") is None else given["strength"])
        result = pipe(prompt, clip, strength=strength,
                      callback_on_step_end=_progress_callback(progress, _total_steps(pipe, steps, strength), stop),
                      **kw)
    else:
        cb = _progress_callback(progress, _total_steps(pipe, steps), stop)
        if kind == "animate":
            result = pipe(prompt, image_t, callback_on_step_end=cb, **kw)
        elif kind == "cinemagraph":
            region = region_mask(given.get("image"), given.get("box"), h, w)
            result = pipe(prompt, image_t, region, callback_on_step_end=cb, **kw)
        else:
            region = region_mask(given.get("drawn"), given.get("box"), h, w)
            result = pipe(prompt, clip, region, callback_on_step_end=cb, **kw)
    # a Stop pressed after the last step skipped nothing: the clip is the full one, and written
    if "interrupted_after_step" in result.settings or "interrupted_after_step" in result.settings.get(
            "super_resolution", {}):
        raise ValueError("stopped before the end: nothing was written")
    return _write(result, pipe, inputs, out_dir)


def build_app(models: dict | None = None, out_dir: str | os.PathLike | None = None):
    """The gradio Blocks app. ``models`` maps "text-to-video", "conditional" and "style" to pipeline folders or
    embedded names (default :data:`DEFAULT_MODELS`); a missing style hides the slider. ``models["device"]``: where
    the pipelines run (default "auto": CUDA when present)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from vidiff.pipelines.folder import BASE_DEFAULTS  # the sliders start at the library's defaults

    models = {**DEFAULT_MODELS, **(models or {})}
    out = Path(out_dir or tempfile.mkdtemp(prefix="vidiff-serve-"))
    has_style = models.get("style") is not None
    if has_style:
        try:
            resolve_model(models["style"])
        except ValueError:
            has_style = False

    # the Stop buttons: each page (a gr.State key made when it loads) registers the Event of its running request
    running: dict[str, threading.Event] = {}

    def stop(key):
        if key in running:
            running[key].set()

    def handler(kind: str):
        def fn(key, prompt, seed, steps, guidance, *rest, progress=gr.Progress()):
            given = dict(zip(FIELDS[kind], rest))
            style = alpha = None
            if kind == "generate" and has_style and given.pop("use_style", False):
                style, alpha = models["style"], given.pop("alpha", None)
            given.pop("use_style", None), given.pop("alpha", None)
            if "x0" in given:
                given["box"] = tuple(given.pop(k) for k in ("x0", "y0", "x1", "y1"))
            model = models["conditional" if kind in ("animate", "inpaint", "cinemagraph") else "text-to-video"]
            event = threading.Event()
            if key is not None:  # a request without a page (no key) has no Stop button to answer
                running[key] = event
            try:
                video, side, settings = run(kind, prompt, seed, steps or None, guidance or None, model=model,
                                            style=style, alpha=alpha, out_dir=out, device=models.get("device", "auto"),
                                            progress=progress, stop=event, **given)
            except ValueError as e:
                raise gr.Error(str(e)) from None
            finally:
                if running.get(key) is event:
                    del running[key]
            return video, [video, side], settings
        return fn

    FIELDS = {"generate": ["use_style", "alpha"], "animate": ["image"], "edit": ["video", "strength"],
              "cinemagraph": ["image", "x0", "y0", "x1", "y1"], "inpaint": ["video", "drawn", "x0", "y0", "x1", "y1"]}

    with gr.Blocks(title="vidiff") as app:
        gr.Markdown("# vidiff\nText-to-video diffusion (Lumiere's Space-Time U-Net) with the shipped Shapes models. "
                    "Captions name a colour, a shape and a motion, e.g. *a red circle quickly bouncing left and right*.")

        def common(default_prompt: str):
            prompt = gr.Textbox(label="caption", value=default_prompt, elem_id=None)
            with gr.Row():
                seed = gr.Number(label="seed", value=0, precision=0, minimum=0)
                steps = gr.Slider(0, 100, value=0, step=1, label="denoising steps (0: the model's)")
                guidance = gr.Slider(0, 20, value=0, step=0.5, label="guidance (0: the model's)")
            return prompt, seed, steps, guidance

        key = gr.State(lambda: uuid.uuid4().hex)  # one per page load: whose request a Stop click ends

        def outputs(tab: str):
            with gr.Row():
                button = gr.Button("Generate", variant="primary", elem_id=f"{tab}-generate")
                gr.Button("Stop", variant="stop", elem_id=f"{tab}-stop").click(stop, [key], None, queue=False)
            video = gr.Video(label="video", elem_id=f"{tab}-video", autoplay=True, loop=True, interactive=False,
                             height=300)
            files = gr.File(label="download: video and settings", file_count="multiple", elem_id=f"{tab}-files")
            settings = gr.JSON(label="settings")
            return button, [video, files, settings]

        def box():
            with gr.Row():
                return [gr.Number(label=k, value=v, minimum=0, maximum=1)
                        for k, v in (("x0", 0.25), ("y0", 0.25), ("x1", 0.75), ("y1", 0.75))]

        with gr.Tab("Text to video"):
            prompt, seed, steps, guidance = common("a red circle quickly bouncing left and right")
            with gr.Row(visible=has_style):
                use_style = gr.Checkbox(label="style: outlined (Lumiere 4.1)", value=False)
                alpha = gr.Slider(0, 1, value=BASE_DEFAULTS["alpha"], step=0.05, label="style weight alpha")
            button, outs = outputs("t2v")
            button.click(handler("generate"), [key, prompt, seed, steps, guidance, use_style, alpha], outs)
        with gr.Tab("Image to video"):
            prompt, seed, steps, guidance = common("a blue square moving right")
            image = gr.Image(label="first frame", type="numpy", image_mode="RGB")
            button, outs = outputs("i2v")
            button.click(handler("animate"), [key, prompt, seed, steps, guidance, image], outs)
        with gr.Tab("Cinemagraph"):
            prompt, seed, steps, guidance = common("a green triangle growing")
            editor = gr.ImageEditor(label="picture: paint the region that moves (or use the box)", type="numpy",
                                    image_mode="RGBA")
            coords = box()
            button, outs = outputs("cine")
            button.click(handler("cinemagraph"), [key, prompt, seed, steps, guidance, editor, *coords], outs)
        with gr.Tab("Inpaint"):
            prompt, seed, steps, guidance = common("a red circle moving left")
            video_in = gr.Video(label="video", sources=["upload"])
            drawn = gr.ImageEditor(label="optional: paint the region to regenerate (else the box)", type="numpy",
                                   image_mode="RGBA")
            coords = box()
            button, outs = outputs("inpaint")
            button.click(handler("inpaint"), [key, prompt, seed, steps, guidance, video_in, drawn, *coords], outs)
        with gr.Tab("Edit (SDEdit)"):
            prompt, seed, steps, guidance = common("a yellow square moving left")
            video_in = gr.Video(label="video to edit", sources=["upload"])
            strength = gr.Slider(0, 1, value=BASE_DEFAULTS["strength"], step=0.05, label="strength (0: keep, 1: ignore the input)")
            button, outs = outputs("edit")
            button.click(handler("edit"), [key, prompt, seed, steps, guidance, video_in, strength], outs)
    return app


def serve(host: str = "127.0.0.1", port: int = 7860, models: dict | None = None, block: bool = True):
    """Start the page; returns (app, url). ``block=False`` returns at once (tests)."""
    check_host(host)
    check_port(port)
    check_models({**DEFAULT_MODELS, **(models or {})})
    app = build_app(models)
    try:
        _, url, _ = app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=True,
                               ssr_mode=False, share=False, inbrowser=False)
    except OSError as e:
        raise ValueError(f"cannot serve on {host}:{port} ({e}); choose another --port") from None
    return app, url
