"""The argument parser of every command; what each flag means is in its help."""

from __future__ import annotations

import argparse

from vidiff.cli.commands import (
    cmd_conditional, cmd_convert, cmd_edit, cmd_evaluate, cmd_generate, cmd_inflate, cmd_serve, cmd_train,
    cmd_upscale,
)
from vidiff.cli.common import DEFAULT_MODEL

# ---------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse prints the usage block first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from vidiff import __version__
    from vidiff.diffusion import SAMPLERS
    from vidiff.diffusion.step_noise import DEFAULT_CORRELATION, DEFAULT_MAX_T
    from vidiff.hardware import PRECISIONS

    p = _Parser(prog="vidiff", description="Text-to-video diffusion (Lumiere STUNet and friends).")
    p.add_argument("--version", action="version", version=f"vidiff {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def device_args(c: argparse.ArgumentParser, precision: bool = True) -> None:
        c.add_argument("--device", default="auto", help="auto (default: CUDA when present, else the CPU), cpu, cuda, "
                       "cuda:N; the noise is drawn on the CPU, so a seed gives the same video on every device")
        if not precision:
            return
        c.add_argument("--dtype", choices=PRECISIONS, default=None, help="autocast precision: fp32 (default), bf16 "
                       "(GPUs; CPUs with AMX or AVX512-BF16, elsewhere it warns and runs fp32), fp16 (CUDA only)")
        c.add_argument("--bf16", action="store_true", help="the same as --dtype bf16")

    def sampling_args(c: argparse.ArgumentParser, model: str, frames: bool = True, from_noise: bool = True) -> None:
        c.add_argument("-o", "--output", default="video.mp4", help="output .mp4/.webm/.gif, or a folder for PNG frames")
        c.add_argument("--model", default=model, help=f"pipeline folder or embedded name (default: {model})")
        if frames:
            c.add_argument("--frames", type=int, default=None, help="number of frames (model default: 16)")
        c.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's; the embedded default takes 20)")
        c.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (model default)")
        c.add_argument("--timesteps", default=None, metavar="T1,T2,...", help="a custom step grid, noisiest first "
                       "(e.g. 999,700,400,100; diffusers' timesteps=): sets the steps; dpm++, dpm++-sde and ddpm take one")
        c.add_argument("--sampler", choices=SAMPLERS, default=None, help="the sampler (default: the model's; "
                       "dpm++: DPM-Solver++ 2M; dpm++-sde: its SDE form, the embedded default's)")
        c.add_argument("--guidance-rescale", type=float, default=None, metavar="PHI", help="rescaled guidance (Lin et "
                       "al. 2024; diffusers' guidance_rescale), 0-1: pulls a strongly guided prediction back to the "
                       "spread of the conditional one (default: the model's, 0: none)")
        c.add_argument("--eta", type=float, default=None, help="DDIM's eta, 0-1 (with --sampler ddim): the noise each "
                       "step adds back; 0 deterministic (default), 1 as DDPM")
        c.add_argument("--correlated-noise", type=float, default=None, metavar="RHO", help="the noise a stochastic "
                       "sampler (dpm++-sde, ddim with --eta) adds on the low-noise steps, correlated across frames by "
                       f"RHO in (0, 1), against flicker (default: off; RHO {DEFAULT_CORRELATION} chosen on Shapes)")
        c.add_argument("--correlated-noise-max-t", type=int, default=None, metavar="T", help="the steps with t < T "
                       f"take the correlated noise (default {DEFAULT_MAX_T}, with --correlated-noise)")
        if from_noise:
            c.add_argument("--free-init", type=int, default=None, metavar="N",
                           help="FreeInit: sample N times, each start re-initialised from the low frequencies of the "
                           "last result (N times the base stage's time; default: once, off)")
        c.add_argument("--seed", type=int, default=0, help="the random seed: the same seed, arguments and model "
                       "give the same video (default 0)")
        c.add_argument("--fps", type=float, default=None, help="frames per second written in the file (default: "
                       "the model's, 8; an input video's own for inpaint and edit); does not change the frames")
        c.add_argument("--style", default=None, help="a style fine-tune of the model (e.g. style-outlined): "
                       "generate with interpolated weights (Lumiere 4.1)")
        c.add_argument("--alpha", type=float, default=None, help="style weight: W = alpha W_style + (1 - alpha) W "
                       "(default: the style's, 0.7)")
        c.add_argument("--base-only", action="store_true", help="skip the spatial super-resolution stage")
        c.add_argument("--ssr", default=None, help="super-resolution pipeline (default: the one the model names)")
        c.add_argument("--window", type=int, default=None, help="SSR temporal window in frames (MultiDiffusion)")
        c.add_argument("--stride", type=int, default=None, help="SSR window stride; = window: no overlap")
        c.add_argument("--ssr-steps", type=int, default=None, help="SSR denoising steps")
        device_args(c)
        c.add_argument("--native-size", action="store_true", help="write the video at the model's size (default: "
                       "mp4/webm/gif upscaled nearest-neighbour to at least 256 px, for players)")
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
    g.add_argument("--base-weighting", choices=["triangle", "uniform"], default=None,
                   help="how overlapping windows are averaged: triangle (default: a cross-fade, fewest seams) or "
                        "uniform (Lumiere's plain mean)")
    g.add_argument("--image-model", default=None, help="a model inflated from an image model: run it with another "
                   "image model of the same layout (a fine-tune, a style), its temporal layers kept (AnimateDiff)")
    g.add_argument("--image-model-boundary", type=float, default=None, metavar="R", help="--image-model on the "
                   "low-noise steps only (t < R x the diffusion time; the model's own image weights above, where the "
                   "motion is decided), 0 < R <= 1 (default: the folder's own boundary, else 1: every step)")
    g.add_argument("--image-model-scale", type=float, default=None, metavar="S", help="how much of --image-model's "
                   "difference from the model's own image weights is applied: W + S (W_other - W), a LoRA's scale "
                   "(default 1: as it is; above 1: a stronger style of the same fine-tune)")
    g.add_argument("--zero-shot", action="store_true", help="a clip from a text-to-image model alone "
                   "(Text2Video-Zero: motion in the initial noise, cross-frame attention)")
    g.add_argument("--motion", default=None, metavar="DX,DY", help="--zero-shot: the translation in pixels per frame "
                   "(default: 0.5 pixel along the caption's left/right/up/down words)")
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
    i.add_argument("--border", type=int, default=None, help="outpaint: regenerate a border this many pixels wide, "
                   "in the model's pixels (32 x 32 for the shipped model, before super-resolution)")
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
    ed.add_argument("--strength", type=float, default=None, help="0: return the input; 1: ignore it (model "
                    "default: 0.6)")
    sampling_args(ed, DEFAULT_MODEL, from_noise=False)
    ed.set_defaults(func=cmd_edit)

    u = application("upscale", "spatial super-resolution of a low-resolution video (MultiDiffusion windows)",
                    "the low-resolution video", "its caption")
    u.add_argument("-o", "--output", default="video.mp4")
    u.add_argument("--model", default="ssr", help="super-resolution pipeline folder (default: the embedded ssr)")
    u.add_argument("--frames", type=int, default=None, help="read at most this many frames (default: all)")
    u.add_argument("--window", type=int, default=None, help="temporal window in frames")
    u.add_argument("--stride", type=int, default=None, help="window stride; = window: no overlap")
    u.add_argument("--ssr-steps", type=int, default=None, help="denoising steps")
    u.add_argument("--seed", type=int, default=0, help="the random seed (default 0)")
    u.add_argument("--fps", type=float, default=None, help="frames per second written (default: the input's)")
    device_args(u)
    u.add_argument("--native-size", action="store_true", help="write at the model's size, not upscaled for players")
    u.add_argument("--threads", type=int, default=0)
    u.add_argument("--no-sheet", action="store_true")
    u.add_argument("--overwrite", action="store_true", help="replace an existing output once the new one is complete")
    u.add_argument("-q", "--quiet", action="store_true")
    u.set_defaults(func=cmd_upscale, base_only=True, ssr=None, sampler=None, style=None)

    t = sub.add_parser("train", help="train a model from a YAML recipe (accelerate-aware)")
    t.add_argument("--config", required=True, help="a recipe, e.g. configs/stunet-shapes.yaml")
    t.add_argument("--resume", default=None, help="'latest' or a checkpoint-N folder")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key, e.g. train.steps=100")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    inf = sub.add_parser("inflate", help="turn a local text-to-image model (diffusers folder) into a video model "
                         "(Lumiere's STUNet or an AnimateDiff motion module)")
    inf.add_argument("image_model", help="a diffusers text-to-image folder: unet/ (UNet2DConditionModel), scheduler/")
    inf.add_argument("--arch", default="stunet", help="stunet (Lumiere 3.1, default), motion-module (vidiff's "
                     "AnimateDiff-style module) or animatediff (AnimateDiff's own layout, diffusers' UNetMotionModel)")
    inf.add_argument("--conv-inflation", default=None,
                     help="stunet's conv block after each image layer: temporal (a conv over time; the default) or "
                          "space-time (Lumiere fig. 4b: a new 3x3 conv, then the conv over time)")
    inf.add_argument("--motion-module", default=None, help="a trained motion module (.safetensors) to load")
    inf.add_argument("--motion-adapter", default=None,
                     help="with --arch animatediff: a diffusers MotionAdapter folder (an AnimateDiff motion adapter)")
    inf.add_argument("-o", "--out", required=True, help="the video model folder to write")
    inf.add_argument("--overwrite", action="store_true", help="replace an existing folder once the new one is complete")
    inf.set_defaults(func=cmd_inflate)

    cv = sub.add_parser("convert", help="a single-file checkpoint (.safetensors, original Stable Diffusion layout) "
                        "into a diffusers folder that inflate and --image-model read")
    cv.add_argument("checkpoint", help="one .safetensors file in the LDM layout (model.diffusion_model.*, optionally "
                    "first_stage_model.* and cond_stage_model.*), e.g. a community fine-tune of SD 1.5")
    cv.add_argument("--config", required=True, help="a diffusers folder of the same layout (e.g. the Stable "
                    "Diffusion 1.5 folder the file was fine-tuned from): its configs, tokenizer and scheduler")
    cv.add_argument("-o", "--out", required=True, help="the diffusers folder to write")
    cv.add_argument("--overwrite", action="store_true", help="replace an existing folder once the new one is complete")
    cv.set_defaults(func=cmd_convert)

    e = sub.add_parser("evaluate", help="the metric suite: generate a Shapes suite, or score two folders of videos")
    e.add_argument("--model", default=None, help="pipeline folder or 'default': generate the suite with fixed seeds")
    e.add_argument("--suite", default=None, help="with --model: shapes-test (default) or shapes-heldout")
    e.add_argument("--samples", type=int, default=None, help="with --model: number of captions / videos (default 200)")
    e.add_argument("--real", default=None, help="folder of real videos (with --fake)")
    e.add_argument("--fake", default=None, help="folder of generated videos (with --real)")
    e.add_argument("--captions", default=None, help="CSV/JSONL manifest (path, caption) for CLIPSIM / Shapes scores")
    e.add_argument("--frames", type=int, default=None,
                   help="with --real/--fake: frames read from each video (default 16)")
    e.add_argument("--steps", type=int, default=None, help="denoising steps of the main run (default: the model's)")
    e.add_argument("--guidance", type=float, default=None, help="guidance scale (model default)")
    e.add_argument("--seed", type=int, default=None, help="the first noise seed (default 0)")
    e.add_argument("--sweep-steps", type=int, nargs="*", default=None,
                   help="steps of the metric-vs-steps plot (default 5 10 25; none: no sweep)")
    e.add_argument("--sweep-samples", type=int, default=None, help="videos per point of the steps sweep (default 32)")
    e.add_argument("--video-features", default="shapes", help="FVD/KVD features: shapes | i3d:PATH | i3d-pool:PATH | torchscript:PATH (a TorchScript file runs "
                   "code: use only files you trust)")
    e.add_argument("--image-features", default="shapes", help="frame FID/KID features: shapes | inception:PATH")
    e.add_argument("--classifier", default="shapes",
                   help="IS classifier: shapes | i3d:PATH | torchscript:PATH (TorchScript runs code: trusted files only)")
    e.add_argument("--clip", default=None, help="local transformers CLIP folder: CLIPSIM and frame consistency")
    e.add_argument("--fp32", action="store_true", help="generate in fp32 (default: bf16 autocast where the CPU has native bf16 kernels)")
    device_args(e, precision=False)
    e.add_argument("--threads", type=int, default=0)
    e.add_argument("-o", "--out", default=None, help="report folder (default runs/eval-<suite>)")
    e.add_argument("--overwrite", action="store_true", help="replace an earlier report in the folder")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    sv = sub.add_parser("serve", help="a local web page (gradio): text-to-video, image-to-video, inpainting, "
                        "cinemagraphs, editing, styles")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    sv.add_argument("--model", default="default", help="text-to-video pipeline (default: the embedded default)")
    sv.add_argument("--conditional", default="conditional", help="conditional pipeline for image-to-video, "
                    "inpainting and cinemagraphs")
    sv.add_argument("--style", default="style-outlined", help="style fine-tune offered on the page ('none': no style)")
    device_args(sv, precision=False)
    sv.set_defaults(func=cmd_serve, quiet=False)
    return p
