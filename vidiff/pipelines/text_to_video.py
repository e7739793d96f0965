"""Text-to-video: caption -> video with a video U-Net, a text encoder and a diffusers scheduler."""

from __future__ import annotations

import torch

from vidiff.pipelines.base import VideoDiffusionPipeline, VideoPipelineOutput


class TextToVideoPipeline(VideoDiffusionPipeline):
    """``pipe(prompt, num_frames=16, num_inference_steps=25, guidance_scale=4, generator=g)``.

    ``window`` (and ``stride``, default ``window // 2``) denoise a clip longer than the model was trained on
    as overlapping temporal windows fused at every step by MultiDiffusion, the fusion that the SSR stage uses
    (Lumiere 3.2; for the base model this is the long-video use of Gen-L-Video / MultiDiffusion). ``stride ==
    window`` denoises each window on its own: the no-overlap ablation, where seams show at window boundaries.
    ``window_weighting="triangle"`` weighs each window's frames by their distance from its edges (a linear
    cross-fade) instead of the paper's plain mean, so that no frame pair sees its covering windows swapped at once.
    """

    task = "text-to-video"

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], num_frames: int | None = None, height: int | None = None,
                 width: int | None = None, num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 negative_prompt: str = "", sampler: str = "dpm++", generator: torch.Generator | None = None,
                 latents: torch.Tensor | None = None, window: int | None = None, stride: int | None = None,
                 window_weighting: str = "uniform", progress: bool = False) -> VideoPipelineOutput:
        s = self.settings(num_frames=num_frames, height=height, width=width, num_inference_steps=num_inference_steps,
                          guidance_scale=guidance_scale)
        prompts = self.check_inputs(prompt, s["num_frames"], s["height"], s["width"], s["num_inference_steps"],
                                    s["guidance_scale"], sampler)
        if self.unet.cfg.cond_channels:
            raise ValueError("this model takes a conditioning video; use the conditional pipelines "
                             "(vidiff animate / inpaint / cinemagraph)")
        temporal_window = None
        if window is not None:
            from vidiff.diffusion.multidiffusion import temporal_windows, window_weights

            stride = max(1, window // 2) if stride is None else stride
            self.unet.check_input_size(window, s["height"], s["width"])
            temporal_windows(s["num_frames"], window, stride)  # ValueError on a bad window / stride
            window_weights(window, window_weighting)  # ValueError on an unknown weighting
            temporal_window = (window, stride, window_weighting)
        elif stride is not None:
            raise ValueError("stride needs a window: give window= (frames per window) as well")
        shape = (len(prompts), self.unet.cfg.out_channels, s["num_frames"], s["height"], s["width"])
        denoiser = self.denoiser(prompts, s["guidance_scale"], negative_prompt)
        return VideoPipelineOutput(self.sample(denoiser, shape, s["num_inference_steps"], sampler, generator,
                                               latents=latents, temporal_window=temporal_window, progress=progress))
