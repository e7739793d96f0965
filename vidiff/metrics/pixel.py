"""Reconstruction metrics for conditioned tasks (image-to-video, inpainting, super-resolution, editing):
PSNR and SSIM per frame, averaged, on the masked and unmasked regions separately; LPIPS from a file on disk.

Videos are float ``(b, 3, t, h, w)`` in [0, 1]. ``mask`` marks the region the model had to fill (1) versus the
region it was given (0); it broadcasts to ``(b, 1, t, h, w)`` (e.g. ``(b, 1, 1, h, w)`` or ``(h, w)``).
``compute`` returns ``{"all", "masked", "unmasked"}``; a region empty in every frame gives NaN.

PSNR: 10 log10(1 / MSE) per frame and region (MSE over the region's pixels and channels), capped at 100 dB for
identical frames, then averaged over frames. SSIM: torchmetrics' 2-D SSIM map (Gaussian 11 x 11, sigma 1.5) of
every frame, averaged over the region (torchmetrics on a 5-D tensor would compute 3-D SSIM instead).
"""

from __future__ import annotations

import os

import torch
from torchmetrics import Metric

from vidiff.metrics.frames import check_videos

REGIONS = ("all", "masked", "unmasked")
SSIM_MIN_SIDE = 6  # the 11 x 11 window is padded by 5 on each side, by reflection


def _prepare(preds: torch.Tensor, target: torch.Tensor, mask) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    preds, target = check_videos(preds, "preds"), check_videos(target, "target")  # uint8 or 0-255 read 100 dB
    if preds.shape != target.shape:
        raise ValueError(f"preds and target differ in shape: {tuple(preds.shape)} and {tuple(target.shape)}")
    b, c, t, h, w = preds.shape
    if mask is None:
        m = torch.zeros(b, 1, t, h, w)
    else:
        m = torch.as_tensor(mask).float()
        if m.min() < 0 or m.max() > 1:
            raise ValueError("mask values must be in [0, 1]")
        try:
            m = torch.broadcast_to(m, (b, 1, t, h, w))
        except RuntimeError:
            raise ValueError(f"mask of shape {tuple(m.shape)} does not broadcast to (b, 1, t, h, w) = {(b, 1, t, h, w)}") from None
    flat = lambda x: x.transpose(1, 2).reshape(b * t, x.shape[1], h, w)  # noqa: E731
    return flat(preds.float()), flat(target.float()), (flat(m) > 0.5).float()


def _region_masks(m: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"all": torch.ones_like(m), "masked": m, "unmasked": 1 - m}


class _RegionMetric(Metric):
    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for r in REGIONS:
            self.add_state(f"{r}_total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{r}_count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def _add(self, region: str, per_frame: torch.Tensor, valid: torch.Tensor) -> None:
        setattr(self, f"{region}_total", getattr(self, f"{region}_total") + per_frame[valid].double().sum())
        setattr(self, f"{region}_count", getattr(self, f"{region}_count") + valid.sum())

    def compute(self) -> dict[str, float]:
        out = {}
        for r in REGIONS:
            n = int(getattr(self, f"{r}_count"))
            out[r] = float(getattr(self, f"{r}_total") / n) if n else float("nan")
        return out


class MaskedPSNR(_RegionMetric):
    def update(self, preds: torch.Tensor, target: torch.Tensor, mask=None) -> None:
        p, t, m = _prepare(preds, target, mask)
        err = (p - t).pow(2).sum(1, keepdim=True)  # (n, 1, h, w)
        for r, rm in _region_masks(m).items():
            area = rm.sum((1, 2, 3)) * 3
            mse = (err * rm).sum((1, 2, 3)) / area.clamp(min=1)
            psnr = (10 * torch.log10(1.0 / mse.clamp(min=1e-10))).clamp(max=100.0)
            self._add(r, psnr, area > 0)


class MaskedSSIM(_RegionMetric):
    def update(self, preds: torch.Tensor, target: torch.Tensor, mask=None) -> None:
        from torchmetrics.functional.image import structural_similarity_index_measure as ssim

        p, t, m = _prepare(preds, target, mask)
        if min(p.shape[-2:]) < SSIM_MIN_SIDE:  # torchmetrics' reflection padding failed with a RuntimeError
            raise ValueError(f"SSIM's 11 x 11 window needs frames of at least {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels, "
                             f"got {p.shape[-1]}x{p.shape[-2]}")
        _, smap = ssim(p, t, data_range=1.0, return_full_image=True, reduction="none")
        smap = smap.mean(1, keepdim=True)  # (n, 1, h, w)
        for r, rm in _region_masks(m).items():
            area = rm.sum((1, 2, 3))
            self._add(r, (smap * rm).sum((1, 2, 3)) / area.clamp(min=1), area > 0)


class LPIPS(Metric):
    """LPIPS from a TorchScript file on disk, called as ``net(a, b)`` on frames in [-1, 1] (the ``lpips``
    package's convention) returning one distance per frame; averaged over frames. Whole frames only."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, path: str | os.PathLike, **kwargs):
        super().__init__(**kwargs)
        from vidiff.metrics.extractors import _load_torchscript

        self.net = _load_torchscript(path, "LPIPS weights (a TorchScript export of lpips.LPIPS)")
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @torch.no_grad()
    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        p, t, _ = _prepare(preds, target, None)
        d = self.net(p * 2 - 1, t * 2 - 1).reshape(-1)
        self.total += d.double().sum()
        self.count += d.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()


__all__ = ["MaskedPSNR", "MaskedSSIM", "LPIPS"]
