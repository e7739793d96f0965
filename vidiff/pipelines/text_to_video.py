"""Text-to-video: caption -> video with a video U-Net, a text encoder and a diffusers scheduler.

A pipeline folder holds ``vidiff_pipeline.json`` (diffusion config, text encoder, defaults) and the
U-Net under ``unet/`` (diffusers ``save_pretrained``: config.json + safetensors).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidiff.diffusion.sampling import classifier_free_guidance, denoise, timesteps_for
from vidiff.diffusion.schedule import SAMPLERS, DiffusionConfig, make_scheduler
from vidiff.io.atomic import atomic_path

PIPELINE_FILE = "vidiff_pipeline.json"


@dataclass
class VideoPipelineOutput:
    videos: torch.Tensor  # (b, c, t, h, w) float in [0, 1]

    @property
    def frames(self) -> np.ndarray:
        """uint8 (b, t, h, w, c), as diffusers' video pipelines return."""
        return (self.videos.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()


def load_unet(path: Path, dtype: torch.dtype):
    """Build the U-Net from its config and load its safetensors strictly: every key and shape must match
    (diffusers would silently re-initialise missing weights)."""
    from safetensors.torch import load_file

    from vidiff.models.unet import VideoUNet

    if not (path / "config.json").exists():
        raise ValueError(f"{str(path)!r} holds no model (unet/config.json missing)")
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ValueError(f"no .safetensors weights in {str(path)!r}")
    try:
        model = VideoUNet.from_config(VideoUNet.load_config(path))
        state = load_file(str(files[0]))
    except Exception as e:  # safetensors header / JSON errors: not a loadable model
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"cannot load the weights in {str(files[0])!r} (truncated or not a vidiff model?): {first[:160]}") from None
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"cannot load the weights in {str(files[0])!r}: they do not fit this model "
                         f"({len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} wrong-shape keys, "
                         f"e.g. {(missing + unexpected + wrong)[:2]})")
    model.load_state_dict(state)
    return torch.nn.Module.to(model, dtype)  # plain cast (diffusers' .to() warns about fp32-kept modules)


class TextToVideoPipeline:
    """``pipe(prompt, num_frames=16, num_inference_steps=25, guidance_scale=4, generator=g)``."""

    def __init__(self, unet, text_encoder, diffusion: DiffusionConfig, defaults: dict | None = None):
        self.unet = unet.eval()
        self.text_encoder = text_encoder
        self.diffusion = diffusion
        self.defaults = {"num_frames": 16, "fps": 8.0, "height": 32, "width": 32,
                         "guidance_scale": 4.0, "num_inference_steps": 25, **(defaults or {})}

    # ------------------------------------------------------------------ persistence
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, dtype: torch.dtype = torch.float32, text_encoder=None):
        from vidiff.conditioning.text import TextEncoder

        path = Path(path)
        meta_path = path / PIPELINE_FILE
        if not meta_path.is_file():
            raise ValueError(f"{str(path)!r} is not a vidiff pipeline folder ({PIPELINE_FILE} missing)")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError:
            raise ValueError(f"{str(meta_path)!r} is not valid JSON") from None
        unet = load_unet(path / "unet", dtype)
        if text_encoder is None:
            text_encoder = TextEncoder(meta.get("text_encoder", "minilm"))
        if text_encoder.dim != unet.cfg.text_dim:
            raise ValueError(f"text encoder width {text_encoder.dim} does not match the model's text_dim {unet.cfg.text_dim}")
        return cls(unet, text_encoder, DiffusionConfig(**meta["diffusion"]), meta.get("defaults"))

    def save_pretrained(self, path: str | os.PathLike, train_config: dict | None = None, half: bool = False) -> None:
        """Write atomically: to a temporary folder, then rename."""
        unet = self.unet
        if half:
            import copy
            unet = copy.deepcopy(unet).half()
        meta = {"diffusion": self.diffusion.to_dict(), "text_encoder": self.text_encoder.name, "defaults": self.defaults}
        if train_config is not None:
            meta["train_config"] = train_config
        with atomic_path(path) as tmp:
            unet.save_pretrained(tmp / "unet", safe_serialization=True)
            (tmp / PIPELINE_FILE).write_text(json.dumps(meta, indent=2))

    # ------------------------------------------------------------------ inference
    def check_inputs(self, prompt, num_frames: int, height: int, width: int, steps: int, guidance: float, sampler: str):
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
            raise ValueError("the caption is empty; give a text prompt such as 'a red circle moving left'")
        self.unet.check_input_size(num_frames, height, width)
        if steps < 1 or steps > 1000:
            raise ValueError(f"num_inference_steps must be in 1..1000, got {steps}")
        if not (0.0 <= guidance <= 50.0):
            raise ValueError(f"guidance_scale must be in [0, 50], got {guidance}")
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")
        return prompts

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], num_frames: int | None = None, height: int | None = None,
                 width: int | None = None, num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 negative_prompt: str = "", sampler: str = "dpm++", generator: torch.Generator | None = None,
                 latents: torch.Tensor | None = None, progress: bool = False) -> VideoPipelineOutput:
        d = self.defaults
        pick = lambda v, k: int(d[k] if v is None else v)  # noqa: E731
        num_frames, height, width = pick(num_frames, "num_frames"), pick(height, "height"), pick(width, "width")
        steps = pick(num_inference_steps, "num_inference_steps")
        guidance = float(d["guidance_scale"] if guidance_scale is None else guidance_scale)
        prompts = self.check_inputs(prompt, num_frames, height, width, steps, guidance, sampler)
        # 1. text
        text, mask = self.text_encoder.encode(prompts)
        null, null_mask = self.text_encoder.encode([negative_prompt])
        dtype = next(self.unet.parameters()).dtype
        device = next(self.unet.parameters()).device
        # 2. noise (drawn on the CPU so a seed gives the same video on every device)
        shape = (len(prompts), self.unet.cfg.out_channels, num_frames, height, width)
        x = latents if latents is not None else torch.randn(shape, generator=generator)
        x = x.to(device, torch.float32)
        # 3. denoise
        scheduler = make_scheduler(self.diffusion, sampler)
        fn = classifier_free_guidance(self.unet, text.to(device, dtype), mask.to(device), null.to(device, dtype),
                                      null_mask.to(device), guidance)
        x = x * scheduler.init_noise_sigma
        x = denoise(fn, scheduler, x, timesteps_for(scheduler, steps), generator=generator, progress=progress)
        return VideoPipelineOutput(((x.float().cpu() + 1) / 2).clamp(0, 1))
