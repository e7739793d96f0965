"""Text-to-video: caption -> video with a video U-Net, a text encoder and a diffusers scheduler."""

from __future__ import annotations

import torch

from vidiff.pipelines.base import VideoDiffusionPipeline, VideoPipelineOutput


class TextToVideoPipeline(VideoDiffusionPipeline):
    """``pipe(prompt, num_frames=16, num_inference_steps=25, guidance_scale=4, generator=g)``."""

    task = "text-to-video"

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], num_frames: int | None = None, height: int | None = None,
                 width: int | None = None, num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 negative_prompt: str = "", sampler: str = "dpm++", generator: torch.Generator | None = None,
                 latents: torch.Tensor | None = None, progress: bool = False) -> VideoPipelineOutput:
        s = self.settings(num_frames=num_frames, height=height, width=width, num_inference_steps=num_inference_steps,
                          guidance_scale=guidance_scale)
        prompts = self.check_inputs(prompt, s["num_frames"], s["height"], s["width"], s["num_inference_steps"],
                                    s["guidance_scale"], sampler)
        if self.unet.cfg.cond_channels:
            raise ValueError("this model takes a conditioning video; use the conditional pipelines "
                             "(vidiff animate / inpaint / cinemagraph)")
        shape = (len(prompts), self.unet.cfg.out_channels, s["num_frames"], s["height"], s["width"])
        window = self.denoiser(prompts, s["guidance_scale"], negative_prompt)
        return VideoPipelineOutput(self.sample(window, shape, s["num_inference_steps"], sampler, generator,
                                               latents=latents, progress=progress))
