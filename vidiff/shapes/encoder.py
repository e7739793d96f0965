"""The Shapes feature network that vidiff trains and ships, so the embedded benchmark has FVD, KVD, IS and
frame FID/KID that need no download.

One small network, two feature spaces:

- frame features (128-d): a per-frame CNN stem (32x32 -> 4x4x64, flattened, so position is kept) and a
  projection; trained to read colour, shape, centre and scale of the frame's object. Used for frame FID/KID.
- Both feature spaces are divided by a fixed scale (the mean per-dimension std over 512 real training-style
  clips, stored in the config), so features have about unit spread and KVD/KID (polynomial kernel) stay in a
  readable range.
- video features (128-d): the 16 frame features through two temporal convolutions, flattened in time and
  projected; trained to read colour, shape, motion, speed and the joint (colour, shape, motion) class of the
  clip. Used for FVD/KVD; the joint class logits (210 classes) are the Inception Score's classifier.

Input conventions (stated and tested): float videos ``(b, 3, t, h, w)`` in [0, 1], 8 fps; frames are
area-resized to 32 x 32 when they are larger; the first 16 frames are used (fewer is an error), as in the
``fvd2048_16f`` protocol of StyleGAN-V.

The training data are test-split Shapes scenes (all colour/shape/motion combinations, held-out ones
included: this network is a measuring instrument, not a generator) from seeds >= 10,000,000, apart from
every evaluation seed. Recipe: ``configs/metrics/shapes-encoder.yaml``, script ``scripts/train_shapes_encoder.py``.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from vidiff.metrics.frames import check_videos
from vidiff.shapes.scenes import COLORS, MOTIONS, SHAPES, SPEEDS

CLIP_FRAMES = 16
RESOLUTION = 32
JOINT_CLASSES = list(itertools.product(COLORS, SHAPES, MOTIONS))  # 7 * 3 * 10 = 210


def joint_index(color: str, shape: str, motion: str) -> int:
    return JOINT_CLASSES.index((color, shape, motion))


def prepare_video(video: torch.Tensor, frames: int = CLIP_FRAMES) -> torch.Tensor:
    """(b, 3, t, h, w) in [0, 1] -> (b, 3, frames, 32, 32) float32: first ``frames`` frames, area-resized."""
    check_videos(video)
    if video.shape[2] < frames:
        raise ValueError(f"the Shapes encoder needs at least {frames} frames, got {video.shape[2]}")
    v = video[:, :, :frames].float()
    b, c, t, h, w = v.shape
    if (h, w) != (RESOLUTION, RESOLUTION):
        x = v.transpose(1, 2).reshape(b * t, c, h, w)
        x = F.interpolate(x, size=(RESOLUTION, RESOLUTION), mode="area" if h >= RESOLUTION else "bilinear")
        v = x.reshape(b, t, c, RESOLUTION, RESOLUTION).transpose(1, 2)
    return v


class ShapesEncoder(ModelMixin, ConfigMixin):
    config_name = "config.json"

    @register_to_config
    def __init__(self, width: int = 32, frame_dim: int = 128, video_dim: int = 128, video_scale: float = 1.0,
                 frame_scale: float = 1.0):
        super().__init__()
        w = width
        self.stem = nn.Sequential(
            nn.Conv2d(3, w // 2, 3, padding=1), nn.GELU(),
            nn.Conv2d(w // 2, w, 3, stride=2, padding=1), nn.GELU(),  # 16
            nn.Conv2d(w, w, 3, stride=2, padding=1), nn.GELU(),  # 8
            nn.Conv2d(w, w, 3, stride=2, padding=1), nn.GELU(),  # 4
        )
        self.frame_proj = nn.Linear(w * 16, frame_dim)
        self.frame_heads = nn.ModuleDict({"color": nn.Linear(frame_dim, len(COLORS)),
                                          "shape": nn.Linear(frame_dim, len(SHAPES)),
                                          "position": nn.Linear(frame_dim, 3)})
        self.temporal = nn.Sequential(nn.Conv1d(frame_dim, frame_dim, 3, padding=1), nn.GELU(),
                                      nn.Conv1d(frame_dim, frame_dim, 3, padding=1), nn.GELU())
        self.video_proj = nn.Linear(frame_dim * CLIP_FRAMES, video_dim)
        self.video_heads = nn.ModuleDict({"color": nn.Linear(video_dim, len(COLORS)),
                                          "shape": nn.Linear(video_dim, len(SHAPES)),
                                          "motion": nn.Linear(video_dim, len(MOTIONS)),
                                          "speed": nn.Linear(video_dim, len(SPEEDS)),
                                          "joint": nn.Linear(video_dim, len(JOINT_CLASSES))})

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(n, 3, 32, 32) in [0, 1] -> (n, frame_dim)."""
        x = self.stem(frames.to(self.frame_proj.weight.dtype) * 2 - 1)
        return F.gelu(self.frame_proj(x.flatten(1)))

    def video_features(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, 3, t, h, w) in [0, 1] -> (video features (b, video_dim), frame features (b, 16, frame_dim))."""
        v = prepare_video(video)
        b, c, t, h, w = v.shape
        f = self.frame_features(v.transpose(1, 2).reshape(b * t, c, h, w)).reshape(b, t, -1)
        x = self.temporal(f.transpose(1, 2))  # (b, d, t)
        return self.video_proj(x.flatten(1)), f

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """All head logits: video heads under their names, frame heads as ``frame_<name>`` (b, t, k)."""
        feats, f = self.video_features(video)
        out = {k: head(feats) for k, head in self.video_heads.items()}
        out.update({f"frame_{k}": head(f) for k, head in self.frame_heads.items()})
        return out


class _EncoderView(nn.Module):
    """One feature space of the encoder as the nn.Module (with ``num_features``) the metrics take."""

    def __init__(self, encoder: ShapesEncoder, num_features: int):
        super().__init__()
        self.encoder = encoder.eval()
        self.num_features = num_features


class VideoFeatures(_EncoderView):
    """FVD/KVD features of the Shapes encoder: videos (b, 3, t, h, w) in [0, 1] -> (b, 128)."""

    def __init__(self, encoder: ShapesEncoder):
        super().__init__(encoder, encoder.config.video_dim)

    @torch.no_grad()
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.encoder.video_features(video)[0].float() / self.encoder.config.video_scale


class FrameFeatures(_EncoderView):
    """Frame FID/KID features of the Shapes encoder: frames (n, 3, h, w) in [0, 1] -> (n, 128)."""

    def __init__(self, encoder: ShapesEncoder):
        super().__init__(encoder, encoder.config.frame_dim)

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = prepare_video(check_videos(frames, "frames", frames=True)[:, :, None], frames=1)[:, :, 0]
        return self.encoder.frame_features(x).float() / self.encoder.config.frame_scale


class JointClassifier(_EncoderView):
    """IS classifier of the Shapes encoder: videos -> logits over the 210 (colour, shape, motion) classes."""

    def __init__(self, encoder: ShapesEncoder):
        super().__init__(encoder, len(JOINT_CLASSES))

    @torch.no_grad()
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        feats, _ = self.encoder.video_features(video)
        return self.encoder.video_heads["joint"](feats).float()


__all__ = ["ShapesEncoder", "VideoFeatures", "FrameFeatures", "JointClassifier", "prepare_video",
           "JOINT_CLASSES", "joint_index"]
