"""Conditional generation through a masked conditioning video (Lumiere 4.2).

One model (``cond_channels = 4``, widened from the text-to-video checkpoint and fine-tuned, see
``configs/conditional-shapes.yaml``) serves every application; each pipeline only chooses the
conditioning video C and the mask M of known pixels (:mod:`vidiff.conditioning.masks`):

- :class:`ImageToVideoPipeline`: the first frame is given;
- :class:`VideoInpaintPipeline`: a region (or a border: outpainting) of a video is regenerated;
- :class:`CinemagraphPipeline`: an image comes alive only inside a region.

By default the given pixels are also pasted back after every denoising step (``keep_known``), so they come
out exactly as given; the model's conditioning is what makes the generated pixels agree with them.

Inputs and outputs are videos ``(b, 3, t, h, w)`` / images ``(b, 3, h, w)`` / masks ``(b, 1, [t,] h, w)``,
pixel values in [0, 1]; a mask's 1 marks the region to generate.
"""

from __future__ import annotations

from typing import Callable

import torch

from vidiff.checks import number
from vidiff.conditioning.masks import (
    COND_CHANNELS, check_mask, cinemagraph_mask, condition_input, first_frame_mask, inpaint_mask,
)
from vidiff.io.inputs import image_input, mask_input, video_input
from vidiff.pipelines.base import (VideoDiffusionPipeline, VideoPipelineOutput, check_output_type, check_return_dict,
                                   check_unit_range, repeat_videos, step_callback)


class ConditionalVideoPipeline(VideoDiffusionPipeline):
    """The shared call: ``pipe.generate(prompt, video, known)`` with ``known`` = 1 on given pixels."""

    task = "conditional"

    def condition_guidance(self, given: float | None = None) -> float:
        """The guidance scale on the conditioning video: ``given``, else the folder's default (1: none)."""
        return number(self.defaults["condition_guidance_scale"] if given is None else given, "condition_guidance_scale")

    def generate(self, prompt, video: torch.Tensor, known: torch.Tensor, num_inference_steps: int | None = None,
                 guidance_scale: float | None = None, negative_prompt: str | list[str] | None = "",
                 sampler: str | None = None, generator: torch.Generator | list[torch.Generator] | None = None,
                 progress: bool = False,
                 keep_known: bool = True, condition_guidance_scale: float | None = None, base_only: bool = False,
                 ssr_window: int | None = None, ssr_stride: int | None = None, ssr_steps: int | None = None,
                 output_type: str = "np", callback_on_step_end: Callable | None = None,
                 num_videos_per_prompt: int = 1, return_dict: bool = True,
                 callback_on_step_end_tensor_inputs: list[str] | None = None,
                 prompt_embeds: torch.Tensor | None = None, prompt_attention_mask: torch.Tensor | None = None,
                 negative_prompt_embeds: torch.Tensor | None = None,
                 negative_prompt_attention_mask: torch.Tensor | None = None,
                 timesteps: list[int] | None = None, guidance_rescale: float | None = None,
                 eta: float | None = None) -> VideoPipelineOutput | tuple:
        """``keep_known`` pastes the given pixels back after every denoising step, so the output keeps them
        exactly; ``False`` leaves them to the model's conditioning alone (Lumiere's setting).
        ``condition_guidance_scale`` > 1 guides towards the conditioning video as well as the caption
        (InstructPix2Pix's image guidance; one more model pass per step); ``None``: the pipeline's default
        (``defaults["condition_guidance_scale"]``, 1 = none where the folder names none). The super-resolution
        stage the folder names runs after (``base_only`` skips it; ``ssr_*`` set its window, stride, steps).
        ``num_videos_per_prompt`` as in diffusers: n videos from each given input (videos ``i * n`` to
        ``i * n + n - 1`` are input ``i``'s; a list of generators gives one per video). ``prompt_embeds`` and the
        rest in place of the captions, ``timesteps`` (a custom step grid), ``guidance_rescale`` and ``eta``, as in
        :class:`~vidiff.pipelines.text_to_video.TextToVideoPipeline`."""
        check_output_type(output_type)
        check_return_dict(return_dict)
        callback_on_step_end = step_callback(callback_on_step_end, callback_on_step_end_tensor_inputs)
        if not isinstance(keep_known, bool):  # "no" read as true
            raise ValueError(f"keep_known must be True or False, got {keep_known!r}")
        video = check_unit_range("video", video)
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"the video must be (b, 3, t, h, w), got {tuple(video.shape)}")
        known = check_mask(known)
        condition_guidance_scale = self.condition_guidance(condition_guidance_scale)
        if not 0.0 <= condition_guidance_scale <= 50.0:
            raise ValueError(f"condition_guidance_scale must be in [0, 50], got {condition_guidance_scale}")
        if self.unet.cond_channels != COND_CHANNELS:
            raise ValueError(f"this model takes {self.unet.cond_channels} conditioning channels, not the "
                             f"{COND_CHANNELS} of <C, M>; train one with configs/conditional-shapes.yaml")
        s, prompts, negative_prompt, n, embeds = self.check_video_call(
            prompt, video, num_inference_steps, guidance_scale, negative_prompt, sampler, base_only, ssr_window,
            ssr_stride, ssr_steps, num_videos_per_prompt,
            (prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask), timesteps,
            guidance_rescale, eta)
        video = repeat_videos(n, video)
        known = repeat_videos(n, known)
        b, _, t, h, w = video.shape
        cond = condition_input(video * 2 - 1, known)  # (b, 4, t, h, w)
        window = self.denoiser(prompts, s["guidance_scale"], negative_prompt, cond=cond,
                               cond_scale=condition_guidance_scale, embeds=embeds, rescale=s["guidance_rescale"])
        shape = (b, self.unet.sample_channels, t, h, w)
        known_pixels = (video * 2 - 1, known) if keep_known else None
        videos = self.sample(window, shape, s["num_inference_steps"], sampler, generator, progress=progress,
                             known=known_pixels, callback_on_step_end=callback_on_step_end,
                             timesteps=s.get("timesteps"), eta=s["eta"])
        s.update(**self.sampler_settings(sampler), negative_prompt=negative_prompt, keep_known=keep_known,
                 condition_guidance_scale=condition_guidance_scale)
        s.update(self.embeds_settings(embeds, negative_prompt_embeds is not None))
        return self.finish(prompts, videos, s, output_type, base_only, generator, progress, callback_on_step_end,
                           ssr_window, ssr_stride, ssr_steps, return_dict)


class ImageToVideoPipeline(ConditionalVideoPipeline):
    """``pipe(prompt, image)``: the video starts with ``image`` (b, 3, h, w), or a PIL image (a list of them: a
    batch) resized to the model's size."""

    @torch.no_grad()
    def __call__(self, prompt=None, image: torch.Tensor | None = None, num_frames: int | None = None,
                 **kw) -> VideoPipelineOutput:
        image = check_unit_range("image", image_input(image, *self.size()))
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"the image must be (b, 3, h, w), got {tuple(image.shape)}")
        t = self.settings(num_frames=num_frames)["num_frames"]
        b, _, h, w = image.shape
        video = torch.zeros(b, 3, t, h, w)
        video[:, :, 0] = image
        return self.generate(prompt, video, first_frame_mask(b, t, h, w), **kw)


class VideoInpaintPipeline(ConditionalVideoPipeline):
    """``pipe(prompt, video, region)``: regenerate ``region`` (b, 1, h, w) or (b, 1, t, h, w) of ``video``
    (b, 3, t, h, w); the rest is kept. Outpainting: a border region (:func:`border_region`). A list of PIL frames
    and a PIL mask (white: the region) are read as the CLI reads files."""

    @torch.no_grad()
    def __call__(self, prompt=None, video: torch.Tensor | None = None, region: torch.Tensor | None = None,
                 **kw) -> VideoPipelineOutput:
        video = check_unit_range("video", video_input(video, *self.size()))
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"the video must be (b, 3, t, h, w), got {tuple(video.shape)}")
        region = check_mask(mask_input(region, *video.shape[-2:]))
        b, _, t, h, w = video.shape
        if region.shape[-2:] != (h, w) or region.shape[:2] != (b, 1) or (region.dim() == 5 and region.shape[2] != t):
            raise ValueError(f"the mask is {tuple(region.shape)}; it must be (b, 1, h, w) or (b, 1, t, h, w) "
                             f"matching the video {tuple(video.shape)}")
        if region.sum() == 0:
            raise ValueError("the mask is empty: nothing to inpaint (white marks the region to fill)")
        return self.generate(prompt, video, inpaint_mask(region, t), **kw)


class CinemagraphPipeline(ConditionalVideoPipeline):
    """``pipe(prompt, image, region)``: ``image`` (b, 3, h, w) repeated; only ``region`` (b, 1, h, w) moves. A PIL
    image and a PIL mask (white: the region) are read as the CLI reads files."""

    @torch.no_grad()
    def __call__(self, prompt=None, image: torch.Tensor | None = None, region: torch.Tensor | None = None,
                 num_frames: int | None = None,
                 **kw) -> VideoPipelineOutput:
        image = check_unit_range("image", image_input(image, *self.size()))
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"the image must be (b, 3, h, w), got {tuple(image.shape)}")
        region = check_mask(mask_input(region, *image.shape[-2:], "region mask"))
        b, _, h, w = image.shape
        if region.shape != (b, 1, h, w):
            raise ValueError(f"the region mask is {tuple(region.shape)}; it must be (b, 1, h, w) = {(b, 1, h, w)}")
        if region.sum() == 0:
            raise ValueError("the region mask is empty: nothing would move (white marks the region to animate)")
        t = self.settings(num_frames=num_frames)["num_frames"]
        video = image[:, :, None].expand(-1, -1, t, -1, -1)
        return self.generate(prompt, video, cinemagraph_mask(region, t), **kw)
