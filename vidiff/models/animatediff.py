"""AnimateDiff's own layout, through diffusers: a ``UNetMotionModel`` (the image U-Net with AnimateDiff's motion
modules after every ResNet / attention pair of each block and in the middle block) behind vidiff's denoiser
contract, so that a motion adapter trained by AnimateDiff and kept as diffusers keeps it (a ``MotionAdapter``
folder: ``config.json`` + ``diffusion_pytorch_model.safetensors``, e.g. a local copy of
animatediff-motion-adapter-v1-5-2) runs under every vidiff command with the image model it was made for.

Why beside :class:`~vidiff.models.inflated.InflatedUNet`'s ``motion-module``: that one is vidiff's own layout
(one temporal transformer after each layer, zero-initialised, text mask passed), whose files are not AnimateDiff's;
the adapters people have are in this one. diffusers builds and runs it (``UNetMotionModel.from_unet2d``); what is
added here is the contract (clips ``(b, c, t, h, w)``, text per clip), the temporal-only training split and the
device attention policy of every vidiff model. A saved folder holds its adapter on its own too (``motion_adapter/``),
which ``--motion-adapter`` takes for another image model of the same layout (AnimateDiff's personalization).

diffusers' ``UNetMotionModel.forward`` takes no text attention mask: every text token is attended, as the Stable
Diffusion image models it comes from were trained (``text_features: padded``). A mask that hides a token is refused
rather than ignored.
"""

from __future__ import annotations

import os

import torch
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel

from vidiff.models.image import DiffusersContract, check_image_unet_config, use_device_attention
from vidiff.pipelines.folder import ADAPTER_DIR  # noqa: F401  (the folder format's name, kept importable here)

MOTION_KEY = "motion_modules"  # the parameters AnimateDiff adds (diffusers' names); everything else is the image model


class MotionUNet(DiffusersContract, UNetMotionModel):
    """A ``UNetMotionModel`` following vidiff's contract: ``forward(x, t, text, text_mask=None, cond=None)`` with
    ``x (b, c, t, h, w)`` returns ``(b, c_out, t, h, w)``; ``text (b, l, d)`` per clip, every token attended."""

    diffusers_class = "UNetMotionModel"

    def check_input_size(self, num_frames: int, height: int, width: int) -> None:
        super().check_input_size(num_frames, height, width)
        if num_frames > int(self.config.motion_max_seq_length):
            raise ValueError(f"{num_frames} frames: this motion adapter's position encoding holds "
                             f"{self.config.motion_max_seq_length} (motion_max_seq_length)")

    # ------------------------------------------------------------------ what is new, what is the image model
    def temporal_parameters(self) -> list:
        """The motion modules' parameters: what temporal-only training trains (AnimateDiff's training)."""
        return [p for n, p in self.named_parameters() if MOTION_KEY in n.split(".")]

    def freeze_spatial(self) -> None:
        for n, p in self.named_parameters():
            p.requires_grad_(MOTION_KEY in n.split("."))

    def freeze_temporal(self) -> None:
        for n, p in self.named_parameters():
            p.requires_grad_(MOTION_KEY not in n.split("."))

    # ------------------------------------------------------------------ the contract
    def forward(self, x: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor,
                text_mask: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            raise ValueError("an AnimateDiff model takes no conditioning input")
        if text_mask is not None and not bool(text_mask.all()):
            raise ValueError("an AnimateDiff model attends every text token (diffusers' UNetMotionModel takes no text "
                             "mask): its text must be read padded (text_features: padded), not masked")
        b, c, t, h, w = x.shape
        dtype = self.conv_in.weight.dtype
        timestep = torch.as_tensor(timestep, device=x.device).reshape(-1).expand(b)
        text = text.to(dtype).repeat_interleave(t, 0)  # diffusers' AnimateDiffPipeline: the prompt once per frame
        return super().forward(x.to(dtype), timestep, encoder_hidden_states=text, return_dict=False)[0]


def load_motion_adapter(path) -> MotionAdapter:
    """A diffusers ``MotionAdapter`` folder; ValueError naming what is wrong."""
    from vidiff.pipelines.folder import load_diffusers_model

    return load_diffusers_model(path, MotionAdapter, "motion adapter")


def check_text_reading(features: str, where: str) -> None:
    """Raise ValueError unless text is read padded (``features``, a ``text_features`` value): diffusers'
    ``UNetMotionModel`` takes no text mask. Checked by the callers before any weight loads."""
    if features != "padded":
        raise ValueError(f"{where}: AnimateDiff's layout attends every text token (diffusers' UNetMotionModel takes no "
                         f"text mask), so its text must be read padded (text_features: padded, a diffusers folder's "
                         f"own encoder, as Stable Diffusion's), not {features!r}")


def from_image_unet(unet: UNet2DConditionModel, adapter: MotionAdapter | str | os.PathLike | None = None) -> MotionUNet:
    """AnimateDiff's U-Net of ``unet`` with ``adapter``'s motion modules (diffusers' ``from_unet2d``; a
    MotionAdapter or its folder, :func:`load_motion_adapter`), or new ones when ``adapter`` is None, their output
    projections zeroed so that the video model starts as the image model frame by frame (as AnimateDiff initialises
    them; diffusers does not: without it the output moved by 0.89 at once on the tiny test model). ValueError when
    the adapter does not fit."""
    check_image_unet_config(dict(unet.config))
    if adapter is not None and not isinstance(adapter, MotionAdapter):
        adapter = load_motion_adapter(adapter)
    if adapter is not None:
        blocks = tuple(unet.config.block_out_channels)
        if tuple(adapter.config.block_out_channels) != blocks:
            raise ValueError(f"the motion adapter is for block_out_channels {tuple(adapter.config.block_out_channels)}; "
                             f"the image model has {blocks}")
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # from_unet2d casts with .to(), which warns of fp32-kept modules (none here)
    try:
        model = MotionUNet.from_unet2d(unet, adapter)
    except ValueError as e:  # diffusers' own compatibility checks (blocks, layers per block)
        raise ValueError(f"the motion adapter does not fit the image model: {e}") from None
    finally:
        diffusers_logging.set_verbosity(level)
    if adapter is None:  # new motion modules start as the identity (AnimateDiff zero-initialises their output)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if MOTION_KEY in name.split(".") and ".proj_out." in name:
                    p.zero_()
    return use_device_attention(torch.nn.Module.to(model, torch.float32))


__all__ = ["ADAPTER_DIR", "MOTION_KEY", "MotionUNet", "check_text_reading", "from_image_unet", "load_motion_adapter"]
