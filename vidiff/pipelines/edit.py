"""Video-to-video editing with SDEdit (Meng et al. 2022; Lumiere 4, figure 9).

The input video is noised to an intermediate step and denoised with the new caption by the text-to-video
model. ``strength`` is the fraction of the sampling schedule that is run: 0 returns the input unchanged,
1 starts from pure noise and ignores the input; in between, the coarse layout and motion of the input
survive while the caption decides the rest.
"""

from __future__ import annotations

from typing import Callable

import torch

from vidiff.checks import number
from vidiff.diffusion.sampling import timesteps_for
from vidiff.io.inputs import video_input
from vidiff.pipelines.base import (VideoPipelineOutput, check_output_type, check_return_dict, check_unit_range,
                                   repeat_videos, step_callback)
from vidiff.pipelines.text_to_video import TextToVideoPipeline


class VideoEditPipeline(TextToVideoPipeline):
    """``pipe(prompt, video, strength=0.6)``: ``video`` (b, 3, t, h, w) in [0, 1]."""

    latent_models = False  # takes a pixel clip: not for latent models yet

    @torch.no_grad()
    def __call__(self, prompt=None, video: torch.Tensor | None = None, strength: float | None = None,
                 num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 negative_prompt: str | list[str] | None = "", sampler: str | None = None,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 base_only: bool = False, ssr_window: int | None = None, ssr_stride: int | None = None,
                 ssr_steps: int | None = None, output_type: str = "np", callback_on_step_end: Callable | None = None,
                 progress: bool = False, num_videos_per_prompt: int = 1,
                 return_dict: bool = True,
                 callback_on_step_end_tensor_inputs: list[str] | None = None,
                 prompt_embeds: torch.Tensor | None = None, prompt_attention_mask: torch.Tensor | None = None,
                 negative_prompt_embeds: torch.Tensor | None = None,
                 negative_prompt_attention_mask: torch.Tensor | None = None, timesteps: list[int] | None = None,
                 guidance_rescale: float | None = None, eta: float | None = None) -> VideoPipelineOutput | tuple:
        """``strength``: default the folder's (0.6). ``num_videos_per_prompt`` and ``return_dict`` as in diffusers:
        n edits of each given video (videos ``i * n`` to ``i * n + n - 1`` are video ``i``'s); False returns the
        tuple ``(frames,)``. ``prompt_embeds`` and the rest in place of the captions, as in
        :class:`~vidiff.pipelines.text_to_video.TextToVideoPipeline`; ``timesteps`` a custom step grid, of which the
        edit runs the steps at or below ``strength`` x T; ``guidance_rescale`` and ``eta`` as there."""
        check_output_type(output_type)
        check_return_dict(return_dict)
        callback_on_step_end = step_callback(callback_on_step_end, callback_on_step_end_tensor_inputs)
        strength = number(self.defaults["strength"] if strength is None else strength, "strength")
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        video = check_unit_range("video", video_input(video, *self.size()))  # a list of PIL frames: diffusers' video
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"the video must be (b, 3, t, h, w), got {tuple(video.shape)}")
        if self.unet.cond_channels:
            raise ValueError("editing needs a text-to-video model (this one takes a conditioning video)")
        s, prompts, negative_prompt, n, embeds = self.check_video_call(
            prompt, video, num_inference_steps, guidance_scale, negative_prompt, sampler, base_only, ssr_window,
            ssr_stride, ssr_steps, num_videos_per_prompt,
            (prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask), timesteps,
            guidance_rescale, eta)
        video = repeat_videos(n, video)
        window = self.denoiser(prompts, s["guidance_scale"], negative_prompt, embeds=embeds,
                               rescale=s["guidance_rescale"])
        videos = self.sample(window, tuple(video.shape), s["num_inference_steps"], sampler, generator,
                             start=video * 2 - 1, strength=strength, progress=progress,
                             callback_on_step_end=callback_on_step_end, timesteps=s.get("timesteps"), eta=s["eta"])
        # where the edit started: strength x T snapped down to the sampler's step grid (the default's 20 log-SNR
        # spaced steps start strength 0.6 at t = 516), recorded beside the strength asked for
        first = timesteps_for(self.make_scheduler(sampler), s["num_inference_steps"], strength, s.get("timesteps"))[:1]
        s.update(strength=strength, start_timestep=int(first[0]) if len(first) else None,
                 **self.sampler_settings(sampler), negative_prompt=negative_prompt)
        s.update(self.embeds_settings(embeds, negative_prompt_embeds is not None))
        return self.finish(prompts, videos, s, output_type, base_only, generator, progress, callback_on_step_end,
                           ssr_window, ssr_stride, ssr_steps, return_dict)
