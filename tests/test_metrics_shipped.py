"""The shipped Shapes encoder: it reads real clips, and the metrics built on it move the right way."""

from __future__ import annotations

import pytest
import torch

from vidiff.shapes.scenes import COLORS, MOTIONS, SHAPES, render, sample_scene


@pytest.fixture(scope="module")
def clips():
    scenes = [sample_scene(s, "test", num_objects=1) for s in range(96)]
    return torch.stack([torch.from_numpy(render(s)) for s in scenes]), scenes


@pytest.fixture(scope="module")
def encoder():
    from vidiff.metrics.extractors import load_shapes_encoder

    return load_shapes_encoder()


def test_shipped_encoder_reads_real_clips(encoder, clips):
    v, scenes = clips
    with torch.no_grad():
        out = encoder(v)
    objs = [s.objects[0] for s in scenes]
    acc = lambda k, names, attr: float(  # noqa: E731
        (out[k].argmax(-1) == torch.tensor([names.index(getattr(o, attr)) for o in objs])).float().mean())
    assert acc("color", list(COLORS), "color") >= 0.97
    assert acc("shape", SHAPES, "shape") >= 0.95
    assert acc("motion", MOTIONS, "motion") >= 0.9


def test_shipped_fvd_grows_with_each_degradation(clips):
    from vidiff.metrics.degrade import DEGRADATIONS
    from vidiff.metrics.distribution import FrechetVideoDistance
    from vidiff.metrics.extractors import video_extractor

    v, _ = clips
    feats = video_extractor("shapes")
    for name, fn in DEGRADATIONS.items():
        vals = []
        # shuffling saturates: past half the frames moved, the order is gone either way
        for sev in ((0.0, 0.25, 0.5) if name == "shuffle" else (0.0, 0.5, 1.0)):
            m = FrechetVideoDistance(feats)
            m.update(v, True)
            m.update(fn(v, sev, seed=1), False)
            vals.append(float(m.compute()))
        assert vals[0] < vals[1] < vals[2], (name, vals)


def test_shipped_is_and_frame_fid_react(clips):
    from vidiff.metrics.degrade import blur, noise, shuffle
    from vidiff.metrics.distribution import FrameFID, VideoInceptionScore
    from vidiff.metrics.extractors import image_extractor, video_classifier

    v, _ = clips
    cls, img = video_classifier("shapes"), image_extractor("shapes")

    def inception(x):
        m = VideoInceptionScore(cls)
        m.update(x)
        return float(m.compute()[0])

    def fid(x):
        m = FrameFID(img)
        m.update(v, True)
        m.update(x, False)
        return float(m.compute())

    clean = inception(v)
    assert clean > 20  # 96 clips over 210 joint classes
    assert inception(noise(v, 1.0)) < clean and inception(blur(v, 1.0)) < clean
    assert fid(v) == pytest.approx(0.0, abs=1e-3)
    assert fid(shuffle(v, 1.0)) == pytest.approx(0.0, abs=1e-3)  # the same frames, reordered
    assert 0 < fid(noise(v, 0.5)) < fid(noise(v, 1.0))
