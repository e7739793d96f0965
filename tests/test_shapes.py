import re

import numpy as np
import pytest

from vidiff.shapes.scenes import (
    HELD_OUT_COLOR_SHAPE, COLORS, Scene, ShapeObject, ShapesConfig, ShapesDataset, allowed_motions,
    caption_vocabulary, ground_truth, is_held_out, render, sample_scene,
)
from vidiff.shapes.reader import parse_caption, score_video, summarize
from vidiff.shapes.strict_reader import score_image_strict, score_video_strict
from vidiff.shapes.suites import suite_scenes


def test_same_seed_same_pixels_and_splits_differ():
    a, b = render(sample_scene(7, "train")), render(sample_scene(7, "train"))
    assert np.array_equal(a, b)
    assert sample_scene(7, "train").to_dict() != sample_scene(7, "test").to_dict()


def test_train_split_never_holds_a_held_out_combination():
    for s in range(600):
        scene = sample_scene(s, "train", two_object_prob=0.5)
        assert not any(is_held_out(o) for o in scene.objects), scene.caption
        colors = [o.color for o in scene.objects]
        assert len(set(colors)) == len(colors)
    held = [sample_scene(s, "test", only_held_out=True) for s in range(20)]
    assert all(any(is_held_out(o) for o in sc.objects) for sc in held)


def test_motion_weights_reweight_the_draws_and_leave_the_uniform_stream_alone():
    import collections

    # no weights (or {}) draws from the stream the benchmark's seeds were fixed with
    assert all(sample_scene(s, "train", motion_weights={}).to_dict() == sample_scene(s, "train").to_dict()
               for s in range(50))
    counts = collections.Counter(sample_scene(s, "train", motion_weights={"standing still": 9}).objects[0].motion
                                 for s in range(900))
    assert 0.4 < counts["standing still"] / 900 < 0.6  # 9 / 18 of the draws (uniform: 1 / 10)
    none = collections.Counter(sample_scene(s, "train", motion_weights={"growing": 0}).objects[0].motion
                               for s in range(300))
    assert none["growing"] == 0 and len(none) == 9
    ds = ShapesDataset(ShapesConfig(num_frames=8, resolution=16, motion_weights={"circling": 50}))
    assert sum(ds.scene(i).objects[0].motion == "circling" for i in range(40)) > 25
    for bad, words in (({"flying": 2}, "unknown motion"), ({"circling": -1}, ">= 0"),
                       ({"circling": float("nan")}, ">= 0"), ({m: 0 for m in allowed_motions(16, 8)}, "weight 0")):
        with pytest.raises(ValueError, match=words):
            sample_scene(0, "train", motion_weights=bad)


def test_objects_stay_inside_the_canvas():
    from vidiff.shapes.scenes import RADIUS, half_extents

    for s in range(300):
        scene = sample_scene(s, "test")
        gt = ground_truth(scene, 16, 8)
        for i, o in enumerate(scene.objects):
            for f in range(16):
                left, right, top, bottom = half_extents(o.shape, RADIUS * gt["scale"][i, f])
                x, y = gt["centre"][i, f]
                assert x - left >= -1e-5 and x + right <= 1 + 1e-5, scene.caption
                assert y - top >= -1e-5 and y + bottom <= 1 + 1e-5, scene.caption


def test_renders_at_two_resolutions_agree_after_area_downsampling():
    scene = sample_scene(3, "test")
    lo, hi = render(scene, 16, 8, 32), render(scene, 16, 8, 128)
    down = hi.reshape(3, 16, 32, 4, 32, 4).mean((3, 5))
    assert np.abs(lo - down).mean() < 2e-3
    assert np.abs(lo - down).max() < 0.1


def test_ground_truth_follows_the_spec():
    obj = ShapeObject("red", "circle", "moving right", "quickly", x0=0.2, y0=0.5)
    gt = ground_truth(Scene((obj,)), 16, 8)
    assert np.allclose(gt["centre"][0, -1, 0] - gt["centre"][0, 0, 0], 0.3 * 15 / 8, atol=1e-5)
    grow = ground_truth(Scene((ShapeObject("red", "square", "growing"),)), 16, 8)["scale"][0]
    assert grow[0] == pytest.approx(0.6) and grow[-1] == pytest.approx(0.6 + 0.8 * 15 / 16)
    assert "moving left" not in allowed_motions(64, 8) and "moving left" in allowed_motions(16, 8)


def test_caption_format_and_parse():
    o = ShapeObject("cyan", "triangle", "bouncing up and down", "quickly")
    assert o.caption() == "a cyan triangle quickly bouncing up and down"
    two = Scene((ShapeObject("white", "square", "growing"), ShapeObject("green", "circle", "circling", "slowly")))
    assert two.caption == "a white square growing and a green circle slowly circling"
    parsed = parse_caption(two.caption)
    assert [p["motion"] for p in parsed] == ["growing", "circling"] and parsed[1]["speed"] == "slowly"
    with pytest.raises(ValueError):
        parse_caption("a purple dog running")


def test_reader_reads_ground_truth_renders():
    results = [score_video(render(sc), sc.caption) for sc in (sample_scene(s, "test") for s in range(150))]
    s = summarize(results)
    assert s["color"] == 1.0 and s["present_all"] == 1.0
    assert s["shape"] >= 0.97 and s["motion"] >= 0.98 and s["speed"] >= 0.95


def test_reader_reads_two_object_scenes():
    scenes = [sample_scene(s, "test", num_objects=2) for s in range(60)]
    s = summarize([score_video(render(sc), sc.caption) for sc in scenes])
    assert s["color"] >= 0.95 and s["motion"] >= 0.8


def test_reader_rejects_wrong_videos():
    scene = Scene((ShapeObject("red", "circle", "moving right", x0=0.3, y0=0.5),))
    v = render(scene)
    assert score_video(v, "a red circle moving right")["objects"][0].motion
    wrong = score_video(v, "a green square moving left")["objects"][0]
    assert not wrong.color and not wrong.motion
    still = np.repeat(v[:, :1], 16, axis=1)  # frozen first frame
    assert score_video(still, "a red circle moving right")["objects"][0].read_motion == "standing still"
    assert not score_video(v[:, ::-1].copy(), "a red circle moving right")["objects"][0].motion  # time reversed
    black = np.zeros_like(v)
    assert not score_video(black, "a red circle moving right")["objects"][0].present_all


def test_dataset_items():
    ds = ShapesDataset(ShapesConfig(num_frames=8, resolution=16))
    item = ds[3]
    assert item["video"].shape == (3, 8, 16, 16) and item["video"].min() >= -1 and item["video"].max() <= 1
    assert item["caption"] == ds.scene(3).caption
    assert set(COLORS) >= {c for c, _ in HELD_OUT_COLOR_SHAPE}


def test_redrawn_scenes_keep_the_caption_and_move_the_objects():
    """The like-for-like FVD floor: the same captions at new positions and phases, still inside the canvas."""
    from vidiff.shapes.scenes import RADIUS, ground_truth, half_extents, redraw_scene, sample_scene

    moved = 0
    for seed in range(40):
        sc = sample_scene(seed, "test", num_objects=1)
        again = redraw_scene(sc, seed)
        assert again.caption == sc.caption and again == redraw_scene(sc, seed)  # deterministic
        o, p = sc.objects[0], again.objects[0]
        moved += (o.x0, o.y0) != (p.x0, p.y0)
        gt = ground_truth(again)
        left, right, top, bottom = half_extents(p.shape, RADIUS * gt["scale"].max())
        x, y = gt["centre"][0, :, 0], gt["centre"][0, :, 1]
        assert x.min() >= left - 1e-6 and x.max() <= 1 - right + 1e-6, again.caption
        assert y.min() >= top - 1e-6 and y.max() <= 1 - bottom + 1e-6, again.caption
    assert moved == 40


def _clip():
    return render(sample_scene(0, "test", num_objects=1), 16, 8.0, 32)


BAD_SHAPES_CALLS = {  # each was a ZeroDivisionError, numpy's matmul error, or ran as something else
    "scene seed 1.5": (lambda: sample_scene(1.5), "seed must be an integer"),
    "scene 0 frames": (lambda: sample_scene(0, num_frames=0), "num_frames"),
    "scene fps 0": (lambda: sample_scene(0, fps=0), "fps"),
    "scene fps nan": (lambda: sample_scene(0, fps=float("nan")), "fps"),
    "render 0 frames": (lambda: render(sample_scene(0), 0), "num_frames"),
    "render resolution 0": (lambda: render(sample_scene(0), 4, 8.0, 0), "resolution"),
    "render fps 0": (lambda: render(sample_scene(0), 4, 0.0, 32), "fps"),
    "render style": (lambda: render(sample_scene(0), 4, 8.0, 32, style="dotted"), "style"),
    "vocabulary 0 frames": (lambda: caption_vocabulary(0), "num_frames"),
    "suite n -1": (lambda: suite_scenes("test", -1), "n must be"),
    "suite first -5": (lambda: suite_scenes("test", 2, first_scene=-5), "first_scene"),
    "score fps 0": (lambda: score_video(_clip(), "a red circle moving left", fps=0), "fps"),
    "score no frames": (lambda: score_video(_clip()[:, :0], "a red circle moving left"), "at least one frame"),
    "score NaN": (lambda: score_video(np.full((3, 4, 8, 8), np.nan, np.float32), "a red circle"), "NaN"),
    "score channels last float": (lambda: score_video(_clip().transpose(1, 2, 3, 0), "a red circle"), "(3, t, h, w)"),
    "score uint8 channels first": (lambda: score_video((_clip() * 255).astype(np.uint8), "a red circle"),
                                   "(t, h, w, 3)"),
    "strict fps 0": (lambda: score_video_strict(_clip(), "a red circle moving left", fps=0), "fps"),
    "strict no frames": (lambda: score_video_strict(_clip()[:, :0], "a red circle"), "at least one frame"),
    "strict image given a clip": (lambda: score_image_strict(_clip(), "a red circle"), "the image must be"),
}


@pytest.mark.parametrize("name", list(BAD_SHAPES_CALLS))
def test_the_benchmark_and_its_readers_refuse_bad_arguments_in_words(name):
    call, words = BAD_SHAPES_CALLS[name]
    with pytest.raises(ValueError, match=re.escape(words)):
        call()


def test_a_model_that_makes_nan_stops_the_evaluation_with_its_caption():
    import torch

    from vidiff.shapes.suites import generate_scenes

    class NaNPipe:
        defaults, device = {"height": 8}, torch.device("cpu")

        def __call__(self, prompts, **kw):
            v = torch.zeros(len(prompts), 3, kw["num_frames"], 8, 8)
            v[1, 0, 0, 0, 0] = float("nan")
            return type("Out", (), {"videos": v})()

    scenes = suite_scenes("test", 2, 4)
    with pytest.raises(ValueError, match=re.escape(f"{scenes[1].caption!r} (clip 1)")):
        list(generate_scenes(NaNPipe(), scenes, 2, 1.0, num_frames=4))
