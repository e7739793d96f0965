"""Spatial super-resolution on overlapping temporal windows fused by MultiDiffusion (Lumiere 3.2, appendix C).

The SSR model is a video U-Net with ``cond_channels = 3``: the low-resolution video, upsampled to the output
size, is concatenated to its noisy input (:mod:`vidiff.conditioning.resolution`). It is trained on short
windows; a clip of any length is denoised as windows of ``window`` frames every ``stride`` frames, their
predictions fused at every step (:mod:`vidiff.diffusion.multidiffusion`), so memory stays flat as the clip
grows. ``stride == window`` is the no-overlap ablation.
"""

from __future__ import annotations

from typing import Callable

import torch

from vidiff.checks import number, whole
from vidiff.conditioning.resolution import LOWRES_CHANNELS, lowres_condition
from vidiff.io.inputs import check_aspect, video_input
from vidiff.pipelines.base import (VideoDiffusionPipeline, VideoPipelineOutput, check_output_type, check_return_dict,
                                   check_unit_range, step_callback)


def ssr_windows(defaults: dict, window: int | None = None, stride: int | None = None,
                names: tuple[str, str] = ("window", "stride")) -> tuple[int, int]:
    """The (window, stride) a super-resolution call runs: the given ones, else the folder's ``defaults`` (window 8;
    stride half the window). ValueError naming the arguments as the caller knows them (``names``), and saying so
    when the stride that does not fit is the folder's default rather than the caller's."""
    w_name, s_name = names
    own_window, own_stride = window is None, stride is None  # the folder's, not the caller's
    window = whole(defaults.get("window", 8) if own_window else window, w_name)
    stride = whole(defaults.get("stride", max(1, window // 2)) if own_stride else stride, s_name)
    if window < 1:
        raise ValueError(f"{w_name} must be at least 1 frame, got {window}")
    if stride < 1:
        raise ValueError(f"{s_name} must be at least 1 frame, got {stride}")
    if stride > window:
        if own_stride:
            raise ValueError(f"{w_name} {window} is shorter than the super-resolution model's own stride ({stride} "
                             f"frames); give {s_name} of at most {window} as well")
        which = f"the super-resolution model's own window ({window} frames)" if own_window else f"{w_name} ({window})"
        raise ValueError(f"{s_name} ({stride}) must not exceed {which}: frames would be skipped")
    return window, stride


class SuperResolutionPipeline(VideoDiffusionPipeline):
    """``pipe(prompt, lowres)``: ``lowres`` (b, 3, t, h, w) in [0, 1] -> (b, 3, t, H, W)."""

    task = "super-resolution"
    cascades = False

    @torch.no_grad()
    def __call__(self, prompt: str | list[str] | None = None, lowres: torch.Tensor | None = None,
                 height: int | None = None, width: int | None = None,
                 window: int | None = None, stride: int | None = None, num_inference_steps: int | None = None,
                 guidance_scale: float | None = None, noise_level: float | None = None, sampler: str | None = None,
                 generator: torch.Generator | None = None, output_type: str = "np",
                 callback_on_step_end: Callable | None = None, progress: bool = False,
                 return_dict: bool = True,
                 callback_on_step_end_tensor_inputs: list[str] | None = None, guidance_rescale: float | None = None,
                 eta: float | None = None, negative_prompt: str | list[str] | None = "",
                 prompt_embeds: torch.Tensor | None = None, prompt_attention_mask: torch.Tensor | None = None,
                 negative_prompt_embeds: torch.Tensor | None = None,
                 negative_prompt_attention_mask: torch.Tensor | None = None,
                 timesteps: list[int] | None = None) -> VideoPipelineOutput | tuple:
        """``return_dict=False``: diffusers' tuple ``(frames,)``. ``guidance_rescale`` and ``eta`` as in diffusers
        (Lin et al.'s rescaled guidance; DDIM's eta); default the folder's (0: none). ``negative_prompt``,
        ``prompt_embeds`` / ``prompt_attention_mask`` and the negative pair (from this pipeline's
        :meth:`encode_prompt`: its own text encoder), and ``timesteps`` (a custom step grid), as in the text-to-video
        call."""
        check_output_type(output_type)
        check_return_dict(return_dict)
        callback_on_step_end = step_callback(callback_on_step_end, callback_on_step_end_tensor_inputs)
        if self.unet.cond_channels != LOWRES_CHANNELS:
            raise ValueError(f"this model takes {self.unet.cond_channels} conditioning channels, not a "
                             f"{LOWRES_CHANNELS}-channel low-resolution video")
        # numpy or PIL frames (a base pipeline's output_type="np" / "pil" frames) at their own size
        lowres = check_unit_range("low-resolution video", video_input(lowres, None, None, "low-resolution video"))
        if lowres.dim() != 5 or lowres.shape[1] != 3:
            raise ValueError(f"the low-resolution video must be (b, 3, t, h, w), got {tuple(lowres.shape)}")
        b, _, t, h, w = lowres.shape
        s = self.settings(height=height, width=width, num_inference_steps=num_inference_steps,
                          guidance_scale=guidance_scale, guidance_rescale=guidance_rescale, eta=eta,
                          timesteps=timesteps)
        H, W = s["height"], s["width"]
        if H < h or W < w:
            raise ValueError(f"the output ({H}x{W}) must not be smaller than the input ({h}x{w})")
        check_aspect(h, w, H, W, "the low-resolution video")
        window, stride = ssr_windows(self.defaults, window, stride)
        prompts, negative_prompt, _, embeds = self.check_text(  # every window is min(window, t) frames
            prompt, negative_prompt,
            (prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask), 1,
            (min(window, t), H, W, s["num_inference_steps"], s["guidance_scale"]), sampler, base_only=True,
            batch=b)
        noise_level = number(self.defaults.get("noise_level", 0.0) if noise_level is None else noise_level,
                             "noise_level")
        if not 0.0 <= noise_level <= 1.0:
            raise ValueError(f"noise_level must be in [0, 1], got {noise_level}")
        cond = lowres_condition(lowres * 2 - 1, H, W, noise_level, generator)  # (b, 3, t, H, W)
        fns = self.denoiser(prompts, s["guidance_scale"], negative_prompt, cond=cond, embeds=embeds,
                            rescale=s["guidance_rescale"])
        shape = (b, self.unet.sample_channels, t, H, W)
        videos = self.sample(fns, shape, s["num_inference_steps"], sampler, generator, temporal_window=(window, stride),
                             progress=progress, callback_on_step_end=callback_on_step_end, eta=s["eta"],
                             timesteps=s.get("timesteps"))
        s.update(num_frames=t, window=window, stride=stride, noise_level=noise_level, negative_prompt=negative_prompt,
                 **self.sampler_settings(sampler))
        s.update(self.embeds_settings(embeds, negative_prompt_embeds is not None))
        return self.finish(prompts, videos, s, output_type, True, generator, progress, return_dict=return_dict)
