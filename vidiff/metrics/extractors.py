"""Feature networks for the distribution metrics, loaded from local files (nothing is downloaded).

Every extractor maps float videos ``(b, 3, t, h, w)`` in [0, 1] (or frames ``(n, 3, h, w)`` for image
features) to ``(b, d)`` and has ``num_features = d``. Specs, as the CLI takes them:

- ``shapes``: the shipped Shapes encoder (:mod:`vidiff.shapes.encoder`): video, frame and IS features.
- ``i3d:PATH``: I3D (Kinetics-400) for FVD/KVD, from
  - a TorchScript file (StyleGAN-V's ``i3d_torchscript.pt``), called as StyleGAN-V does: values in [0, 255],
    ``(b, c, t, h, w)``, ``rescale=True, resize=True, return_features=True`` (400-d features before softmax);
  - or a state dict of pytorch-i3d's ``InceptionI3d`` (VideoGPT / TATS ``i3d_pretrained_400.pt``), with
    VideoGPT's preprocessing: short side bilinear to 224, centre crop 224, values to [-1, 1]; features are the
    400 logits averaged over time (``i3d-pool:PATH``: the 1024-d average pool instead).
  I3D needs T >= 9 frames; FVD at 16 frames is the ``fvd2048_16f`` protocol when 2048 clips are used.
- ``inception:PATH``: StyleGAN2-ADA's TorchScript ``inception-2015-12-05.pt`` for frame FID/KID (uint8 frames,
  ``return_features=True``, 2048-d).
- ``torchscript:PATH``: any TorchScript module taking videos in [0, 1] and returning (b, d) (e.g. a C3D
  UCF-101 classifier exported by the user, for the IS of the literature).

A spec whose file is missing raises ValueError naming the file it needs; no metric falls back to another
network.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidiff.metrics.frames import check_videos

# ---------------------------------------------------------------- pytorch-i3d InceptionI3d (Carreira & Zisserman)
# The architecture of piergiaj/pytorch-i3d, with its module names, so its state dicts load strictly.


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    pad = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
    return pad // 2, pad - pad // 2


def _pad_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    t, h, w = x.shape[2:]
    pt, ph, pw = (_same_pad(n, k, s) for n, k, s in zip((t, h, w), kernel, stride))
    return F.pad(x, (*pw, *ph, *pt))


class Unit3D(nn.Module):
    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), activation: bool = True,
                 batch_norm: bool = True, bias: bool = False):
        super().__init__()
        self.kernel, self.stride, self.activation = tuple(kernel), tuple(stride), activation
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class MaxPool3dSame(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    def __init__(self, cin: int, oc: tuple[int, ...]):
        super().__init__()
        self.b0 = Unit3D(cin, oc[0])
        self.b1a, self.b1b = Unit3D(cin, oc[1]), Unit3D(oc[1], oc[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, oc[3]), Unit3D(oc[3], oc[4], (3, 3, 3))
        self.b3a, self.b3b = MaxPool3dSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, oc[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


_I3D_MIXED = [  # name, input channels, (b0, b1a, b1b, b2a, b2b, b3b)
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)), ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", None, ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)), ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)), ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", None, ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)), ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
]


class InceptionI3d(nn.Module):
    """I3D with pytorch-i3d's parameter names. ``forward`` returns (logits averaged over time (b, classes),
    average-pool features averaged over time (b, 1024)). Input: (b, 3, t, 224, 224) in [-1, 1], t >= 9."""

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        for name, cin, arg in _I3D_MIXED:
            self.add_module(name, InceptionModule(cin, arg) if cin else MaxPool3dSame(*arg))
        self.logits = Unit3D(1024, num_classes, activation=False, batch_norm=False, bias=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[2] < 9:
            raise ValueError(f"I3D needs at least 9 frames, got {x.shape[2]}")
        for name in ("Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
                     *(n for n, _, _ in _I3D_MIXED)):
            x = getattr(self, name)(x)
        pool = F.avg_pool3d(x, (2, 7, 7), stride=1)  # (b, 1024, t', 1, 1)
        logits = self.logits(pool)[:, :, :, 0, 0]  # (b, classes, t')
        return logits.mean(2), pool[:, :, :, 0, 0].mean(2)


def videogpt_preprocess(video: torch.Tensor, size: int = 224) -> torch.Tensor:
    """(b, 3, t, h, w) in [0, 1] -> short side bilinear to ``size``, centre crop, values in [-1, 1]."""
    b, c, t, h, w = video.shape
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = video.transpose(1, 2).reshape(b * t, c, h, w).float()
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[:, :, top: top + size, left: left + size]
    return (x * 2 - 1).reshape(b, t, c, size, size).transpose(1, 2)


class I3DFeatures(nn.Module):
    """FVD features from I3D weights on disk: TorchScript (StyleGAN-V conventions) or an InceptionI3d state
    dict (VideoGPT conventions); see the module docstring."""

    def __init__(self, path: str | os.PathLike, features: str = "logits"):
        super().__init__()
        path = _need_file(path, "I3D weights (StyleGAN-V i3d_torchscript.pt or pytorch-i3d i3d_pretrained_400.pt)")
        self.features = features
        try:
            self.net = torch.jit.load(str(path), map_location="cpu").eval()
            self.kind = "torchscript"
        except (RuntimeError, ValueError):
            try:
                state = torch.load(str(path), map_location="cpu", weights_only=True)
            except Exception as e:  # arbitrary bytes fail anywhere in the unpickler (IndexError, EOFError, ...)
                raise ValueError(f"{path} is neither a TorchScript file nor an I3D state dict "
                                 f"({type(e).__name__} reading it)") from None
            if not isinstance(state, dict):
                raise ValueError(f"{path} is neither a TorchScript file nor an I3D state dict")
            state = state.get("state_dict", state)
            num_classes = state["logits.conv3d.weight"].shape[0] if "logits.conv3d.weight" in state else 400
            self.net = InceptionI3d(num_classes)
            missing, unexpected = self.net.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ValueError(f"{path} is not a pytorch-i3d InceptionI3d state dict "
                                 f"(missing {len(missing)} keys, unexpected {len(unexpected)})")
            self.net.eval()
            self.kind = "state_dict"
        self.num_features = 1024 if (features == "pool" and self.kind == "state_dict") else 400

    @torch.no_grad()
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        check_videos(video)
        if self.kind == "torchscript":
            return self.net(video.float() * 255, rescale=True, resize=True, return_features=True).float()
        logits, pool = self.net(videogpt_preprocess(video))
        return (pool if self.features == "pool" else logits).float()


class InceptionFeatures(nn.Module):
    """Frame FID features from StyleGAN2-ADA's TorchScript Inception (``inception-2015-12-05.pt``):
    frames (n, 3, h, w) in [0, 1] -> uint8 -> ``net(x, return_features=True)`` (2048-d)."""

    num_features = 2048

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.net = _load_torchscript(path, "Inception weights (StyleGAN2-ADA inception-2015-12-05.pt, TorchScript)")

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = (check_videos(frames, "frames", frames=True) * 255).round().to(torch.uint8)
        return self.net(x, return_features=True).float()


class TorchScriptFeatures(nn.Module):
    """Any TorchScript module mapping videos in [0, 1] to (b, d): user-supplied features or classifier logits."""

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.net = _load_torchscript(path, "a TorchScript feature or classifier module")
        self.num_features: int | None = None  # set by the loader from a probe clip

    @torch.no_grad()
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.net(check_videos(video).float()).float()


def _need_file(path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ValueError(f"{what} not found at {p}: put the file there (nothing is downloaded)")
    return p


def _load_torchscript(path, what: str):
    p = _need_file(path, what)
    try:
        return torch.jit.load(str(p), map_location="cpu").eval()
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"{p} is not a TorchScript file ({what})") from e


# ---------------------------------------------------------------- loading by spec
_DEFAULT_SHAPES = Path(__file__).resolve().parent.parent / "weights" / "shapes_encoder"


def load_shapes_encoder(path: str | os.PathLike | None = None):
    """The Shapes encoder from its folder (default: the shipped one), loaded once per process and folder: the
    feature views share it read-only (eval mode, no_grad)."""
    return _load_shapes_encoder(Path(path).resolve() if path else _DEFAULT_SHAPES)


@functools.lru_cache(maxsize=4)
def _load_shapes_encoder(p: Path):
    from vidiff.shapes.encoder import ShapesEncoder

    if not (p / "config.json").is_file():
        raise ValueError(f"the Shapes encoder needs its weights folder {p} (config.json + safetensors); "
                         "train it with scripts/train_shapes_encoder.py")
    return ShapesEncoder.from_pretrained(str(p)).eval()


def _split(spec: str) -> tuple[str, str]:
    kind, _, arg = spec.partition(":")
    return kind, arg


def _torchscript(path: str) -> nn.Module:
    module = TorchScriptFeatures(path)
    module.num_features = int(module(torch.rand(2, 3, 16, 32, 32)).shape[-1])
    return module


def _from_spec(spec: str, kinds: dict, what: str) -> nn.Module:
    kind, arg = _split(spec)
    if kind == "shapes":
        return kinds["shapes"](load_shapes_encoder(arg or None))
    if kind in kinds and arg:
        return kinds[kind](arg)
    allowed = ", ".join(k if k == "shapes" else f"{k}:PATH" for k in kinds)
    raise ValueError(f"unknown {what} spec {spec!r}; allowed: {allowed}")


def video_extractor(spec: str = "shapes") -> nn.Module:
    """FVD/KVD features: ``shapes`` | ``i3d:PATH`` | ``i3d-pool:PATH`` | ``torchscript:PATH``."""
    from vidiff.shapes.encoder import VideoFeatures

    return _from_spec(spec, {"shapes": VideoFeatures, "i3d": I3DFeatures, "i3d-pool": lambda a: I3DFeatures(a, "pool"),
                             "torchscript": _torchscript}, "video feature")


def image_extractor(spec: str = "shapes") -> nn.Module:
    """Frame FID/KID features: ``shapes`` | ``inception:PATH``."""
    from vidiff.shapes.encoder import FrameFeatures

    return _from_spec(spec, {"shapes": FrameFeatures, "inception": InceptionFeatures}, "image feature")


def video_classifier(spec: str = "shapes") -> nn.Module:
    """IS classifier: ``shapes`` (210 joint colour-shape-motion classes) | ``i3d:PATH`` (Kinetics-400 logits)
    | ``torchscript:PATH`` (e.g. a C3D UCF-101 classifier)."""
    from vidiff.shapes.encoder import JointClassifier

    return _from_spec(spec, {"shapes": JointClassifier, "i3d": I3DFeatures, "torchscript": _torchscript}, "classifier")


__all__ = ["InceptionI3d", "I3DFeatures", "InceptionFeatures", "TorchScriptFeatures", "video_extractor",
           "image_extractor", "video_classifier", "load_shapes_encoder", "videogpt_preprocess"]
