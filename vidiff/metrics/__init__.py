"""vidiff.metrics: the video-generation metric suite, offline.

Every metric is an object with ``update`` / ``compute`` / ``reset``, usable in a training loop:

- :class:`FrechetVideoDistance`, :class:`KernelVideoDistance`, :class:`VideoInceptionScore`,
  :class:`FrameFID`, :class:`FrameKID` (:mod:`.distribution`, on torchmetrics, features from :mod:`.extractors`);
- :class:`CLIPSIM`, :class:`FrameConsistency` (:mod:`.clip`, any local CLIP directory);
- :class:`MaskedPSNR`, :class:`MaskedSSIM`, :class:`LPIPS` (:mod:`.pixel`).

The Shapes benchmark's own metrics (its reader as a score, its feature network) live in :mod:`vidiff.shapes`.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "FrechetVideoDistance": "distribution", "KernelVideoDistance": "distribution", "VideoInceptionScore": "distribution",
    "FrameFID": "distribution", "FrameKID": "distribution", "frechet_distance": "distribution",
    "CLIPSIM": "clip", "FrameConsistency": "clip", "CLIPEncoder": "clip",
    "MaskedPSNR": "pixel", "MaskedSSIM": "pixel", "LPIPS": "pixel",
    "video_extractor": "extractors", "image_extractor": "extractors", "video_classifier": "extractors",
    "I3DFeatures": "extractors", "InceptionI3d": "extractors",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"vidiff.metrics.{_EXPORTS[name]}"), name)
    raise AttributeError(name)


__all__ = list(_EXPORTS)
