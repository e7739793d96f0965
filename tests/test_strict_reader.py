"""The strict Shapes reader: true renders read right, temporally incoherent, reversed, too-fast, absent or
speck-sized objects do not."""

import numpy as np
import pytest

from vidiff.shapes.scenes import Scene, ShapeObject, render
from vidiff.shapes.suites import suite_scenes
from vidiff.shapes.strict_reader import score_video_strict, shuffle_middle


def _one(caption_obj: ShapeObject, video=None):
    sc = Scene((caption_obj,))
    return score_video_strict(render(sc) if video is None else video, sc.caption)[0]


@pytest.fixture(scope="module")
def scenes():
    return suite_scenes("test", 60, first_scene=200_000)  # neither the calibration nor the reported seeds


def test_true_renders_read_right_and_shuffled_ones_do_not_move_right(scenes):
    rng = np.random.default_rng(0)
    for sc in scenes:
        v = render(sc)
        s = score_video_strict(v, sc.caption)[0]
        assert s.color and s.shape and s.motion and s.valid, (sc.caption, s.why)
        if sc.objects[0].motion != "standing still":  # shuffling a still clip changes nothing
            assert not score_video_strict(shuffle_middle(v, rng), sc.caption)[0].motion, sc.caption


def test_a_directed_move_played_backwards_reads_reversed():
    obj = ShapeObject("red", "square", "moving left", "normal", 0.7, 0.5)
    v = render(Scene((obj,)))
    s = _one(obj, v[:, ::-1])
    assert not s.motion and s.reversed and s.why == "wrong direction"
    circle = ShapeObject("green", "circle", "circling", "normal", 0.5, 0.5, 0.3)
    s = _one(circle, render(Scene((circle,)))[:, ::-1])  # counterclockwise
    assert not s.motion and s.reversed and "counterclockwise" in s.why


def test_the_speed_class_counts():
    quick = ShapeObject("blue", "square", "moving right", "quickly", 0.2, 0.5)
    slow = ShapeObject("blue", "square", "moving right", "slowly", 0.2, 0.5)
    s = _one(slow, render(Scene((quick,))))
    assert s.direction and not s.motion and s.read_speed == "quickly"
    fast = ShapeObject("cyan", "circle", "bouncing left and right", "quickly", 0.5, 0.5, 0.1)
    s = _one(ShapeObject("cyan", "circle", "bouncing left and right", "slowly", 0.5, 0.5, 0.1), render(Scene((fast,))))
    assert not s.motion


def test_an_object_missing_from_7_frames_or_a_speck_scores_nothing():
    obj = ShapeObject("yellow", "circle", "moving down", "normal", 0.5, 0.3)
    v = render(Scene((obj,))).copy()
    v[:, 4:11] = 0  # absent from 7 of 16 frames
    s = _one(obj, v)
    assert not (s.valid or s.color or s.shape or s.motion) and "present in 56%" in s.why
    speck = np.zeros((3, 16, 32, 32), np.float32)
    speck[:, :, 10:12, 10:13] = 1.0  # 6 white pixels
    s = _one(ShapeObject("white", "square", "standing still"), speck)
    assert not (s.valid or s.color)


def test_a_square_whose_edges_fall_mid_pixel_reads_square_under_pixel_noise():
    """Half-covered edge rows turn ragged under noise after thresholding; the bounding-box fill then reads a
    circle (the rule before the outline fit), the outline fit still reads the square."""
    from vidiff.shapes.reader import COLOR_NAMES, segment
    from vidiff.shapes.strict_reader import classify_shape_strict, coverage

    c = 21.3 / 32  # the square's edges at x, y = 16.5 px: half of row and column 16 covered
    obj = ShapeObject("green", "square", "standing still", "normal", c, c)
    clean = render(Scene((obj,)))
    v = np.clip(clean + 0.06 * np.random.default_rng(0).standard_normal(clean.shape), 0, 1).astype(np.float32)
    labels, k = segment(v), COLOR_NAMES.index("green")
    binary = [classify_shape_strict(*np.nonzero(labels[f] == k)[::-1]) for f in range(16)]
    assert binary.count("circle") >= 3  # the old rule's misreading, which this reader must not repeat
    s = _one(obj, v)
    assert s.shape and s.read_shape == "square", s.why
    circle = ShapeObject("green", "circle", "standing still", "normal", c, c)
    noisy = np.clip(render(Scene((circle,))) + 0.06 * np.random.default_rng(1).standard_normal(clean.shape), 0, 1)
    assert _one(circle, noisy.astype(np.float32)).read_shape == "circle"
    fits = [classify_shape_strict(*np.nonzero(labels[f] == k)[::-1], coverage(v[:, f], labels[f], k)) for f in range(16)]
    assert fits.count("square") == 16


def test_a_square_with_its_corners_cut_off_is_not_a_square():
    octagon = np.zeros((3, 16, 32, 32), np.float32)
    yy, xx = np.mgrid[0:32, 0:32]
    inside = (abs(xx - 15.5) <= 5) & (abs(yy - 15.5) <= 5) & (abs(xx - 15.5) + abs(yy - 15.5) <= 7)
    octagon[1, :, inside] = 1.0  # green, corners cut 3 pixels along each edge
    s = _one(ShapeObject("green", "square", "standing still"), octagon)
    assert s.valid and not s.shape and s.read_shape == "circle"
