"""Zero-shot video from a text-to-image model (Text2Video-Zero, Khachatryan et al. 2023).

No video training: the image model's own sampler, with two changes.

1. **Motion dynamics in the initial noise.** The first frame is denoised alone (DDIM) from ``T`` to ``t1`` and
   on to ``t0``; frame ``k``'s sample at ``t0`` is the first frame's translated by ``k * motion`` pixels, noised
   back to ``t1`` (DDPM forward, fresh noise per frame); then all frames are denoised together from ``t1``.
   ``t1`` / ``t0`` are fractions of the diffusion time. The paper's 47 / 44 of 50 steps (0.94 / 0.88) suit SD's
   latent schedule; on vidiff's pixel models with the capped cosine schedule the translated frame then carries
   no layout and nothing moves (0% judged direction on 32 validation captions), so the defaults, 0.5 / 0.4 at
   0.5 pixel a frame, were chosen on validation captions (docs/inflation.md).
2. **Cross-frame attention.** Every self-attention layer of the image U-Net attends from each frame to the
   first frame's keys and values (:class:`FirstFrameAttnProcessor`), which keeps the object's appearance.

The motion is a global translation chosen by the caller (Text2Video-Zero's ``motion_field_strength``); vidiff
takes it from the caption's direction words when none is given (``motion_from_caption``): the image model
has no idea of motion, so "moving left" can only come from here.
"""

from __future__ import annotations

import math
import re

import torch

from vidiff.pipelines.text_to_video import TextToVideoPipeline

DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


def motion_from_caption(caption: str, speed: float = 0.5) -> tuple[float, float]:
    """(dx, dy) pixels per frame: ``speed`` along the caption's direction words (left/right/up/down, summed),
    or (speed, 0) when it has none (Text2Video-Zero's default is a fixed direction too)."""
    words = re.findall(r"[a-z]+", caption.lower())
    dx = sum(DIRECTIONS[w][0] for w in words if w in DIRECTIONS)
    dy = sum(DIRECTIONS[w][1] for w in words if w in DIRECTIONS)
    if dx == 0 and dy == 0:
        return (speed, 0.0)
    norm = (dx * dx + dy * dy) ** 0.5
    return (speed * dx / norm, speed * dy / norm)


class FirstFrameAttnProcessor:
    """Self-attention whose keys and values come from the first frame of each clip (Text2Video-Zero's
    cross-frame attention). Works on the frame-folded batch ``(b * frames, tokens, c)`` of an image U-Net;
    cross-attention (to the text) is left as it is."""

    def __init__(self, frames: int, inner):
        self.frames, self.inner = frames, inner

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        if encoder_hidden_states is None and hidden_states.ndim == 3:
            bt, n, c = hidden_states.shape
            t = self.frames
            first = hidden_states.reshape(bt // t, t, n, c)[:, :1].expand(-1, t, -1, -1).reshape(bt, n, c)
            encoder_hidden_states = first
        return self.inner(attn, hidden_states, encoder_hidden_states=encoder_hidden_states,
                          attention_mask=attention_mask, temb=temb, **kw)


def translate(x: torch.Tensor, shift: tuple[float, float]) -> torch.Tensor:
    """(b, c, h, w) moved by whole pixels (dx right, dy down), wrapping at the borders: the warp of the noisy
    first frame (a wrapped noise field stays noise; zero padding would not)."""
    dx, dy = int(round(shift[0])), int(round(shift[1]))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


class TextToVideoZeroPipeline(TextToVideoPipeline):
    """Text2Video-Zero on a text-to-image folder (an ``ImageUNet``); see the module docstring."""

    cascades = False

    @torch.no_grad()
    def __call__(self, prompt, num_frames: int | None = None, height: int | None = None, width: int | None = None,
                 num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 negative_prompt: str | list[str] | None = "", motion: tuple[float, float] | None = None,
                 motion_speed: float = 0.5, t0: float = 0.4, t1: float = 0.5,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 latents: torch.Tensor | None = None, output_type: str = "np", progress: bool = False,
                 num_videos_per_prompt: int = 1, return_dict: bool = True, guidance_rescale: float | None = None,
                 eta: float | None = None, callback_on_step_end=None,
                 callback_on_step_end_tensor_inputs: list[str] | None = None, **unused):
        """``callback_on_step_end(pipe, i, t, {"latents": x})`` as in the other pipelines, after each of the clip's
        steps (``i`` counts from the start of the step grid; the first frame's steps before ``t1`` have no clip to
        show). ``pipe._interrupt = True`` (from the callback or another thread) skips the remaining steps; when that
        happens before the clip is built, the first frame as the sampler holds it fills every frame."""
        from vidiff.diffusion.sampling import denoise, timesteps_for
        from vidiff.checks import number
        from diffusers.utils.torch_utils import randn_tensor

        from vidiff.pipelines.base import (check_negative_prompt, check_output_type, check_return_dict,
                                           check_sampling_args, step_callback, videos_per_prompt)

        if unused:
            raise ValueError(f"zero-shot generation does not take {sorted(unused)}")
        self._interrupt = self._cut = False
        callback_on_step_end = step_callback(callback_on_step_end, callback_on_step_end_tensor_inputs)
        if self.free_init is not None:
            raise ValueError("zero-shot generation has its own sampling loop without FreeInit; disable it "
                             "(pipe.disable_free_init())")
        if self.step_noise is not None:
            raise ValueError("zero-shot generation has its own sampling loop without correlated step noise; disable "
                             "it (pipe.disable_correlated_step_noise())")
        t0, t1, motion_speed = number(t0, "t0"), number(t1, "t1"), number(motion_speed, "motion_speed")
        if not (0.0 < t0 < t1 <= 1.0):
            raise ValueError(f"zero-shot needs 0 < t0 < t1 <= 1, got t0={t0}, t1={t1}")
        from vidiff.models.image import DeviceAttnProcessor, ImageUNet

        if not isinstance(self.unet, ImageUNet):
            raise ValueError(f"zero-shot generation runs a text-to-image model; this folder holds a "
                             f"{type(self.unet).__name__}")
        check_output_type(output_type)
        s = self.settings(num_frames=num_frames, height=height, width=width, num_inference_steps=num_inference_steps,
                          guidance_scale=guidance_scale, guidance_rescale=guidance_rescale, eta=eta)
        prompts = self.check_inputs(prompt, 1, s["height"], s["width"], s["num_inference_steps"],
                                    s["guidance_scale"], None)
        negative_prompt = check_negative_prompt(negative_prompt, len(prompts))
        prompts, negative_prompt = videos_per_prompt(num_videos_per_prompt, prompts, negative_prompt)
        check_return_dict(return_dict)
        m, b = s["num_frames"], len(prompts)
        side = min(s["height"], s["width"])
        if not (math.isfinite(motion_speed) and abs(motion_speed) <= side):
            raise ValueError(f"motion_speed must be a finite number of pixels per frame, at most the frame's size "
                             f"({side}), got {motion_speed}")
        if motion is not None:
            try:  # numbers only: a string was iterated, "10" read as (1, 0)
                dx, dy = (number(v, "motion") for v in (None if isinstance(motion, str) else motion))
            except (TypeError, ValueError):
                raise ValueError(f"motion must be (dx, dy) in pixels per frame, got {motion!r}") from None
            if not all(math.isfinite(v) and abs(v) <= side for v in (dx, dy)):
                raise ValueError(f"motion must be two finite numbers of pixels per frame, each at most the frame's "
                                 f"size ({side}; the translation wraps at the border), got {motion!r}")
            motion = (dx, dy)
        moves = [motion if motion is not None else motion_from_caption(p, motion_speed) for p in prompts]
        scheduler = self.make_scheduler("ddim")
        ts = timesteps_for(scheduler, s["num_inference_steps"])
        T = scheduler.config.num_train_timesteps
        i1 = int((ts > t1 * T).sum())  # steps run on the first frame alone before t1
        i0 = max(int((ts > t0 * T).sum()), i1 + 1)
        if i0 >= len(ts):
            raise ValueError(f"{s['num_inference_steps']} steps are too few for t0={t0}")
        shape = self.sample_shape(b, 1, s["height"], s["width"])
        generator = check_sampling_args(shape, generator, latents, callback_on_step_end)
        noise = latents if latents is not None else randn_tensor(shape, generator=generator)
        window = self.denoiser(prompts, s["guidance_scale"], negative_prompt, rescale=s["guidance_rescale"])
        fn = window(None)
        device = self.device
        x = noise.float().to(device) * scheduler.init_noise_sigma
        eta = s["eta"]  # DDIM's, on every step: the first frame's and the clip's

        def finish(video: torch.Tensor):
            s.update(sampler="ddim", negative_prompt=negative_prompt,
                     zero_shot={"motion": [list(mv) for mv in moves], "t0": t0, "t1": t1})
            return self.finish(prompts, self.to_pixels(video), s, output_type, True, generator, progress,
                               return_dict=return_dict)

        self._steps_done = 0  # steps of the grid run: recorded where it was interrupted
        x_t1 = denoise(fn, scheduler, x, ts[:i1], generator=generator, eta=eta, stop=self._stop_here) if i1 else x
        x_t0 = x_t1 if self._interrupt else denoise(fn, scheduler, x_t1, ts[i1:i0], generator=generator, eta=eta,
                                                    stop=self._stop_here)
        if self._interrupt:  # before the clip exists: the first frame as the sampler holds it, in every frame
            self._cut = True  # (set from another thread: the step callback runs on the clip's steps only)
            return finish(x_t0.expand(-1, -1, m, -1, -1))
        x_t0 = x_t0[:, :, 0]  # (b, c, h, w)
        a = scheduler.alphas_cumprod
        ratio = (a[int(ts[i1])] / a[int(ts[i0])]).item()  # alpha-bar(t1) / alpha-bar(t0): DDPM forward t0 -> t1
        frames = [x_t1[:, :, 0]]
        eps = randn_tensor((b, shape[1], m - 1, *shape[3:]), generator=generator).to(device)
        for k in range(1, m):
            warped = torch.stack([translate(x_t0[j:j + 1], (k * mv[0], k * mv[1]))[0] for j, mv in enumerate(moves)])
            frames.append(ratio ** 0.5 * warped + (1 - ratio) ** 0.5 * eps[:, :, k - 1])
        video = torch.stack(frames, 2)  # (b, c, m, h, w) at t1
        processors = self.unet.attn_processors
        self.unet.set_attn_processor({name: FirstFrameAttnProcessor(m, DeviceAttnProcessor()) if "attn1" in name else p
                                      for name, p in processors.items()})
        callback = self._callback(callback_on_step_end)
        self._steps_done = i1  # the clip is denoised from t1: the grid's steps before it count once
        try:
            video = denoise(fn, scheduler, video, ts[i1:], generator=generator, progress=self.progress_bar_options(progress),
                            eta=eta, stop=self._stop_here,
                            callback=None if callback is None else (lambda j, t, x: callback(i1 + j, t, x)))
        finally:
            self.unet.set_attn_processor(processors)
        return finish(video)


__all__ = ["TextToVideoZeroPipeline", "FirstFrameAttnProcessor", "motion_from_caption"]
