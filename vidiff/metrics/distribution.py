"""Distribution metrics over feature spaces: FVD, KVD, video IS, frame FID/KID.

All are torchmetrics ``Metric`` objects (``update`` / ``compute`` / ``reset``, synchronised across processes),
built on torchmetrics' FID, KID and IS with a pluggable feature network, because torchmetrics already computes
those statistics correctly; what vidiff adds is the video side: the extractors (:mod:`.extractors`,
:mod:`vidiff.shapes.encoder`) and the frame flattening.

Inputs are float videos ``(b, 3, t, h, w)`` in [0, 1]. Conventions (the reference code differs, see
shared/notes/metrics-conventions.md): Fréchet distances use the unbiased covariance (N - 1, as torchmetrics and
common_metrics_on_video_quality; StyleGAN-V divides by N); KVD/KID are the unbiased polynomial-kernel MMD
(degree 3, gamma = 1/d, coef0 = 1) averaged over subsets; IS uses ``splits`` (TGANv2: 1, StyleGAN-V: 10).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from vidiff.metrics.frames import check_real, split_frames

# torchmetrics warns at every KID / IS construction that features are kept in memory: that is the design (a
# few thousand feature vectors here), and the warning would be the only noise on the command line
warnings.filterwarnings("ignore", message=r"Metric `(Kernel Inception Distance|InceptionScore)` will save all")


def _check_extractor(extractor) -> nn.Module:
    if not isinstance(extractor, nn.Module) or not hasattr(extractor, "num_features"):
        raise ValueError("a feature extractor must be an nn.Module with an int attribute num_features")
    return extractor


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The Fréchet distance between two Gaussians, the straightforward SciPy way (the reference in tests)."""
    from scipy import linalg

    _check_gaussians(mu1, sigma1, mu2, sigma2)
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _check_gaussians(mu1, sigma1, mu2, sigma2) -> None:
    """Means (d,) and covariances (d, d) of one d, finite (numpy's matmul error, or NaN, before)."""
    d = np.shape(mu1)[0] if np.ndim(mu1) == 1 else None
    if d is None or np.shape(mu2) != (d,) or np.shape(sigma1) != (d, d) or np.shape(sigma2) != (d, d):
        raise ValueError(f"frechet_distance needs means (d,) and covariances (d, d) of one d, got "
                         f"{np.shape(mu1)}, {np.shape(sigma1)}, {np.shape(mu2)}, {np.shape(sigma2)}")
    if not all(np.isfinite(a).all() for a in (mu1, sigma1, mu2, sigma2)):
        raise ValueError("frechet_distance got NaN or infinite statistics")


def _need_two(what: str, real: int, fake: int) -> None:
    """A distance between two sets of features needs 2 of each (torchmetrics raised a RuntimeError)."""
    if real < 2 or fake < 2:
        raise ValueError(f"{what} needs at least 2 real and 2 generated samples, got {real} and {fake}")


class _VideoDistance:
    """``update(videos, real)`` with the flag checked ("no" counted as real); the videos are the extractor's to
    check (:func:`vidiff.metrics.frames.check_videos` in vidiff's own: a custom one may take features)."""

    def update(self, videos: torch.Tensor, real: bool) -> None:  # noqa: D102
        super().update(self._inputs(videos), check_real(real))

    def _inputs(self, videos: torch.Tensor) -> torch.Tensor:
        return videos


class _FrechetCounts:
    """torchmetrics' FID ``compute`` with its too-few-samples RuntimeError as a ValueError."""

    def compute(self):  # noqa: D102
        _need_two(type(self).__name__, int(self.real_features_num_samples), int(self.fake_features_num_samples))
        return super().compute()


class FrechetVideoDistance(_VideoDistance, _FrechetCounts, FrechetInceptionDistance):
    """FVD: Fréchet distance between the video features of real and generated clips.

    ``extractor``: videos (b, 3, t, h, w) in [0, 1] -> (b, d), with ``num_features = d``
    (:class:`~vidiff.shapes.encoder.VideoFeatures`, :class:`~vidiff.metrics.extractors.I3DFeatures`).
    """

    def __init__(self, extractor: nn.Module, reset_real_features: bool = True, **kwargs):
        super().__init__(feature=_check_extractor(extractor), reset_real_features=reset_real_features, **kwargs)


class KernelVideoDistance(_VideoDistance, KernelInceptionDistance):
    """KVD: unbiased polynomial-kernel MMD between video features (mean over subsets; ``compute`` returns
    (mean, std)). The subset size is clamped to the number of samples held."""

    def __init__(self, extractor: nn.Module, subsets: int = 100, subset_size: int = 1000, **kwargs):
        super().__init__(feature=_check_extractor(extractor), subsets=subsets, subset_size=subset_size, **kwargs)
        self._max_subset = subset_size

    def compute(self):  # noqa: D102
        real, fake = sum(len(f) for f in self.real_features), sum(len(f) for f in self.fake_features)
        _need_two(type(self).__name__, real, fake)
        self.subset_size = min(self._max_subset, real, fake)
        return super().compute()


class VideoInceptionScore(InceptionScore):
    """Video IS: exp(E_x KL(p(y|x) || p(y))) of a video classifier's softmax (``compute`` returns (mean, std)
    over ``splits``). The Shapes classifier is :class:`~vidiff.shapes.encoder.JointClassifier`."""

    def __init__(self, classifier: nn.Module, splits: int = 1, **kwargs):
        super().__init__(feature=_check_extractor(classifier), splits=splits, **kwargs)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of the score over the splits (std NaN for one split). torchmetrics' own compute takes the
        log of the mean softmax, which is -inf as soon as every video gives a class probability 0.0 in float32
        (confident or saturated logits), and the score is then NaN; this is the same score in log space, in
        float64. The splits are the videos in the order given (torchmetrics shuffles them with the global RNG,
        which makes a report's spread change from run to run)."""
        from torchmetrics.utilities.data import dim_zero_cat

        scores = []
        for logits in dim_zero_cat(self.features).double().chunk(self.splits, dim=0):
            log_p = logits.log_softmax(dim=1)
            log_mean = torch.logsumexp(log_p, dim=0, keepdim=True) - np.log(len(log_p))
            scores.append((log_p.exp() * (log_p - log_mean)).sum(dim=1).mean().exp())
        kl = torch.stack(scores).float()
        return kl.mean(), (kl.std() if len(kl) > 1 else torch.tensor(float("nan")))


class FrameFID(_VideoDistance, _FrechetCounts, FrechetInceptionDistance):
    """Per-frame FID: every frame of every video is one sample of an image feature network
    (:class:`~vidiff.shapes.encoder.FrameFeatures`, :class:`~vidiff.metrics.extractors.InceptionFeatures`)."""

    def __init__(self, extractor: nn.Module, **kwargs):
        super().__init__(feature=_check_extractor(extractor), **kwargs)

    def _inputs(self, videos: torch.Tensor) -> torch.Tensor:
        return split_frames(videos)[0]


class FrameKID(KernelVideoDistance):
    """Per-frame KID over an image feature network (unbiased MMD, subsets)."""

    def _inputs(self, videos: torch.Tensor) -> torch.Tensor:
        return split_frames(videos)[0]


__all__ = ["FrechetVideoDistance", "KernelVideoDistance", "VideoInceptionScore", "FrameFID", "FrameKID",
           "frechet_distance"]
