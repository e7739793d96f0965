"""Text-to-video: caption -> video with a video U-Net, a text encoder and a diffusers scheduler."""

from __future__ import annotations

from typing import Callable

import torch

from vidiff.models.latent import latent_size
from vidiff.checks import whole
from vidiff.pipelines.base import (LATENT, VideoDiffusionPipeline, VideoPipelineOutput, check_output_type,
                                   check_return_dict, step_callback)


class TextToVideoPipeline(VideoDiffusionPipeline):
    """``pipe(prompt, num_frames=16, num_inference_steps=25, guidance_scale=4, generator=g)``.

    ``window`` (and ``stride``, default ``window // 4``) denoise a clip longer than the model was trained on
    as overlapping temporal windows fused at every step by MultiDiffusion, the fusion that the SSR stage uses
    (Lumiere 3.2; for the base model this is the long-video use of Gen-L-Video / MultiDiffusion). ``stride ==
    window`` denoises each window on its own: the no-overlap ablation, where seams show at window boundaries.
    ``window_weighting="triangle"`` (the default) weighs each window's frames by their distance from its edges (a
    linear cross-fade) instead of the paper's plain mean ("uniform"), so that no frame pair sees its covering
    windows swapped at once.
    """

    task = "text-to-video"
    latent_models = True

    @torch.no_grad()
    def __call__(self, prompt: str | list[str] | None = None, num_frames: int | None = None, height: int | None = None,
                 width: int | None = None, num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 negative_prompt: str | list[str] | None = "", sampler: str | None = None,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 latents: torch.Tensor | None = None, window: int | None = None, stride: int | None = None,
                 window_weighting: str | None = None, base_only: bool = False, ssr_window: int | None = None,
                 ssr_stride: int | None = None, ssr_steps: int | None = None, output_type: str = "np",
                 callback_on_step_end: Callable | None = None, progress: bool = False, num_videos_per_prompt: int = 1,
                 return_dict: bool = True, callback_on_step_end_tensor_inputs: list[str] | None = None,
                 prompt_embeds: torch.Tensor | None = None, prompt_attention_mask: torch.Tensor | None = None,
                 negative_prompt_embeds: torch.Tensor | None = None,
                 negative_prompt_attention_mask: torch.Tensor | None = None,
                 timesteps: list[int] | None = None, guidance_rescale: float | None = None,
                 eta: float | None = None) -> VideoPipelineOutput | tuple:
        """``sampler``: "dpm++", "dpm++-sde", "ddim" or "ddpm" with the model's schedule; None: ``pipe.scheduler``.
        ``ssr_*``: the super-resolution stage's window, stride and steps (its defaults otherwise). ``latents``: the
        start noise (b, c, t, h, w) as the model takes it (under a noise prior, already correlated across frames).
        ``num_videos_per_prompt`` and ``return_dict`` as in diffusers: videos ``i * n`` to ``i * n + n - 1`` are
        caption ``i``'s (a list of generators gives one per video); False returns the tuple ``(frames,)``.
        ``prompt_embeds`` / ``prompt_attention_mask`` (from :meth:`encode_prompt`, or your own) instead of ``prompt``,
        and the negative pair instead of ``negative_prompt``, as in diffusers; they reach the base stage only, so a
        pipeline with a super-resolution stage takes them with ``base_only=True``. ``output_type="latent"`` (a latent
        model's base stage) returns the samples before the VAE decodes them, as ``frames`` (b, c, t, h, w), as diffusers
        does; ``pipe.to_pixels(frames)`` decodes them to the video ``output_type="pt"`` gives. ``timesteps``: a custom
        step grid in falling order (diffusers' ``timesteps=``; for the samplers whose ``set_timesteps`` takes one),
        which sets the number of steps. ``guidance_rescale`` (Lin et al.'s rescaled guidance) and ``eta`` (DDIM's) as
        in diffusers, for the base stage; default the folder's (0: none)."""
        if output_type == LATENT:  # diffusers' "latent": the samples before the VAE decodes them
            self.check_latent_output(base_only)
        else:
            check_output_type(output_type)
        check_return_dict(return_dict)
        callback_on_step_end = step_callback(callback_on_step_end, callback_on_step_end_tensor_inputs)
        s = self.settings(num_frames=num_frames, height=height, width=width, num_inference_steps=num_inference_steps,
                          guidance_scale=guidance_scale, timesteps=timesteps, guidance_rescale=guidance_rescale,
                          eta=eta)
        if self.unet.cond_channels:
            raise ValueError("this model takes a conditioning video; use the conditional pipelines "
                             "(vidiff animate / inpaint / cinemagraph)")
        prompts, negative_prompt, _, embeds = self.check_text(
            prompt, negative_prompt,
            (prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask),
            num_videos_per_prompt, (s["num_frames"], s["height"], s["width"], s["num_inference_steps"],
                                    s["guidance_scale"]), sampler, base_only)
        self.check_super_resolution_args(base_only, ssr_window, ssr_stride, ssr_steps)
        temporal_window = None
        if window is not None:
            from vidiff.diffusion.multidiffusion import temporal_windows, window_weights

            window = whole(window, "window")
            stride = max(1, window // 4) if stride is None else stride  # a quarter window: the fewest seams measured
            window_weighting = window_weighting or self.defaults["window_weighting"]
            try:
                self.unet.check_input_size(window, *latent_size(s["height"], s["width"], self.latent_scale))
            except ValueError as e:
                raise ValueError(f"window={window}: each window is a clip the model denoises, and {e}") from None
            temporal_windows(s["num_frames"], window, stride)  # ValueError on a bad window / stride
            window_weights(window, window_weighting)  # ValueError on an unknown weighting
            temporal_window = (window, stride, window_weighting)
        elif stride is not None or window_weighting is not None:
            raise ValueError("stride and window_weighting need a window: give window= (frames per window) as well")
        shape = self.sample_shape(len(prompts), s["num_frames"], s["height"], s["width"])
        denoiser = self.denoiser(prompts, s["guidance_scale"], negative_prompt, embeds=embeds,
                                 rescale=s["guidance_rescale"])
        videos = self.sample(denoiser, shape, s["num_inference_steps"], sampler, generator, latents=latents,
                             temporal_window=temporal_window, progress=progress,
                             callback_on_step_end=callback_on_step_end, decode=output_type != LATENT,
                             timesteps=s.get("timesteps"), eta=s["eta"])
        s.update(**self.sampler_settings(sampler), negative_prompt=negative_prompt, window=window, stride=stride,
                 window_weighting=window_weighting)
        s.update(self.embeds_settings(embeds, negative_prompt_embeds is not None))
        return self.finish(prompts, videos, s, output_type, base_only, generator, progress, callback_on_step_end,
                           ssr_window, ssr_stride, ssr_steps, return_dict)
