import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def vidiff(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vidiff", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_generate_writes_video_sheet_and_config(tmp_path, tiny_pipeline_dir):
    out = tmp_path / "clip.mp4"
    r = vidiff("generate", "a red circle moving left", "-o", str(out), "--model", str(tiny_pipeline_dir), "--seed", "7", "-q")
    assert r.returncode == 0, r.stderr
    assert out.exists() and (tmp_path / "clip.png").exists()
    cfg = json.loads((tmp_path / "clip.json").read_text())
    assert cfg["seed"] == 7 and cfg["num_frames"] == 4 and cfg["prompt"] == "a red circle moving left"
    r = vidiff("generate", "a red circle moving left", "-o", str(tmp_path / "frames"), "--model", str(tiny_pipeline_dir),
               "--no-sheet", "-q")
    assert r.returncode == 0 and len(list((tmp_path / "frames").glob("*.png"))) == 4
    # a clip three times the model's length through MultiDiffusion windows
    r = vidiff("generate", "a red circle moving left", "-o", str(tmp_path / "long"), "--model", str(tiny_pipeline_dir),
               "--frames", "12", "--base-window", "4", "--no-sheet", "-q")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "long").glob("*.png"))) == 12
    cfg = json.loads((tmp_path / "long.json").read_text())
    assert cfg["num_frames"] == 12 and cfg["window"] == 4 and cfg["stride"] == 1  # the library's names
    assert cfg["window_weighting"] == "triangle"


@pytest.mark.parametrize("args,words", [
    (["generate", "", "-o", "{tmp}/a.mp4"], "caption is empty"),
    (["generate", "a red circle", "-o", "{tmp}/a.mp4", "--frames", "3"], "--frames must be 1"),
    (["generate", "a red circle", "-o", "{tmp}/a.mp4", "--size", "30"], "--size must be a positive multiple of"),
    (["generate", "a red circle", "-o", "{tmp}/a.mp4", "--frames", "12", "--base-window", "4", "--base-stride", "6"],
     "must not exceed the window"),
    (["generate", "a red circle", "-o", "{tmp}/a.mp4", "--base-window", "0"], "--base-window must be in [1, 1024]"),
    (["generate", "a red circle", "-o", "{tmp}/a.mp4", "--model", "{tmp}/no-such-model"], "does not exist"),
    (["generate", "a red circle", "-o", "{tmp}/a.avi"], "unsupported output"),
    (["generate", "a red circle", "-o", "/proc/forbidden/a.mp4"], "output folder"),
    (["train", "--config", "{tmp}/missing.yaml"], "not found"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, tiny_pipeline_dir, args, words):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if args[0] == "generate" and "--model" not in args:
        args += ["--model", str(tiny_pipeline_dir)]
    r = vidiff(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in r.stderr


def test_truncated_weights_exit_2(tmp_path, tiny_pipeline_dir):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_pipeline_dir, bad)
    w = next((bad / "unet").glob("*.safetensors"))
    w.write_bytes(w.read_bytes()[:100])
    r = vidiff("generate", "a red circle", "-o", str(tmp_path / "a.mp4"), "--model", str(bad))
    assert r.returncode == 2 and "cannot load" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["--help"], ["generate", "--help"], ["generate", "", "-o", "x.mp4"],
                                  ["generate", "a red circle", "--steps", "0", "-o", "x.mp4"]])
def test_help_and_refused_arguments_are_quick_and_import_nothing_heavy(argv, tmp_path):
    # importing vidiff.cli was checked, building the parser was not: it read PRECISIONS from vidiff.hardware, which
    # imported torch, so `vidiff --help` and every refused argument took about 2 s instead of 0.1-0.2 s
    code = ("import sys\nfrom vidiff.cli import main\ntry:\n    code = main(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    code = e.code\nprint(code, any(m in sys.modules for m in ('torch', 'diffusers', 'transformers')))")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=tmp_path)
    assert r.stdout.strip().splitlines()[-1] in ("0 False", "2 False"), (r.stdout[-300:], r.stderr[-300:])


def _inputs(tmp_path):
    """A 8x8 PNG, a 4-frame mp4 and a PNG mask (white square in the middle)."""
    import numpy as np
    from PIL import Image

    from vidiff.io.video import write_video

    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "img.png")
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    frames = np.random.default_rng(0).integers(0, 255, (6, 8, 8, 3), dtype=np.uint8)
    write_video(frames, tmp_path / "frames")  # lossless PNG folder
    return tmp_path / "img.png", tmp_path / "frames", tmp_path / "mask.png"


def test_conditional_and_editing_commands(tmp_path, tiny_conditional_dir, tiny_pipeline_dir, tiny_ssr_dir):
    img, video, mask = _inputs(tmp_path)
    cond = ["--model", str(tiny_conditional_dir), "--steps", "2", "-q"]
    runs = {
        "animate": ["animate", str(img), "a red circle moving left", *cond],
        "inpaint": ["inpaint", str(video), "a red circle", "--mask", str(mask), *cond],
        "outpaint": ["inpaint", str(video), "a red circle", "--border", "2", *cond, "--condition-guidance", "2"],
        "cinemagraph": ["cinemagraph", str(img), "a red circle", "--region", str(mask), *cond, "--no-keep-known"],
        "edit": ["edit", str(video), "a blue square", "--strength", "0.5", "--model", str(tiny_pipeline_dir),
                 "--steps", "4", "-q"],
        "upscale": ["upscale", str(video), "a red circle", "--model", str(tiny_ssr_dir), "--ssr-steps", "2",
                    "--window", "4", "--stride", "2", "-q"],
    }
    for name, args in runs.items():
        out = tmp_path / f"{name}.mp4"
        r = vidiff(*args, "-o", str(out), "--seed", "3")
        assert r.returncode == 0, (name, r.stderr)
        side = json.loads((tmp_path / f"{name}.json").read_text())
        assert out.exists() and side["seed"] == 3 and side["prompt"], name
    assert json.loads((tmp_path / "edit.json").read_text())["strength"] == 0.5
    assert json.loads((tmp_path / "upscale.json").read_text())["output_size"] == [16, 16]
    assert json.loads((tmp_path / "outpaint.json").read_text())["border"] == 2
    assert json.loads((tmp_path / "outpaint.json").read_text())["condition_guidance_scale"] == 2.0
    assert json.loads((tmp_path / "animate.json").read_text())["keep_known"] is True
    assert json.loads((tmp_path / "animate.json").read_text())["condition_guidance_scale"] == 1.0  # the folder's
    assert json.loads((tmp_path / "cinemagraph.json").read_text())["keep_known"] is False


def test_generate_runs_the_named_super_resolution_unless_base_only(tmp_path, tiny_cascade_dir):
    r = vidiff("generate", "a red circle", "-o", str(tmp_path / "a.mp4"), "--model", str(tiny_cascade_dir),
               "--ssr-steps", "2", "-q")
    assert r.returncode == 0, r.stderr
    side = json.loads((tmp_path / "a.json").read_text())
    assert side["output_size"] == [16, 16] and side["super_resolution"]["window"] == 4
    r = vidiff("generate", "a red circle", "-o", str(tmp_path / "b.mp4"), "--model", str(tiny_cascade_dir),
               "--base-only", "-q")
    assert r.returncode == 0 and json.loads((tmp_path / "b.json").read_text())["output_size"] == [8, 8]


def test_generate_with_style(tmp_path, tiny_pipeline_dir, tiny_text_encoder):
    from conftest import make_tiny_pipeline, make_tiny_style

    style = make_tiny_style(tiny_pipeline_dir, tmp_path / "style", seed=4)
    r = vidiff("generate", "a red circle", "-o", str(tmp_path / "s.mp4"), "--model", str(tiny_pipeline_dir),
               "--style", str(style), "--alpha", "0.5", "-q")
    assert r.returncode == 0, r.stderr
    side = json.loads((tmp_path / "s.json").read_text())
    assert side["style"] == str(style) and side["alpha"] == 0.5
    other = make_tiny_pipeline(tmp_path / "other", tiny_text_encoder, seed=4)  # an unrelated model of the same shape
    r = vidiff("generate", "a red circle", "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_pipeline_dir),
               "--style", str(other), "-q")
    assert r.returncode == 2 and "not a style fine-tune of this model" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args,words", [
    (["animate", "{tmp}/missing.png", "a red circle"], "not found"),
    (["animate", "{tmp}/mask.png", ""], "caption is empty"),
    (["inpaint", "{tmp}/frames", "a red circle"], "--mask FILE"),
    (["inpaint", "{tmp}/frames", "a red circle", "--border", "9"], "border"),
    (["inpaint", "{tmp}/frames", "a red circle", "--mask", "{tmp}/empty.png"], "empty"),
    (["inpaint", "{tmp}/frames", "a red circle", "--mask", "{tmp}/mask.png", "--frames", "8"], "has 6 frames"),
    (["cinemagraph", "{tmp}/img.png", "a red circle", "--region", "{tmp}/nothing.png"], "not found"),
    (["animate", "{tmp}/img.png", "a red circle", "--style", "{model}", "--alpha", "1.5"], "alpha"),
    (["edit", "{tmp}/frames", "a red circle", "--strength", "2"], "strength"),
    (["edit", "{tmp}/frames", "a red circle", "--model", "{cond}"], "needs a text-to-video"),
    (["animate", "{tmp}/img.png", "a red circle", "--model", "{t2v}"], "needs a conditional"),
    (["animate", "{tmp}/wide.png", "a red circle"], "crop it to that aspect ratio"),
])
def test_application_bad_input_is_one_line_and_exit_2(tmp_path, capsys, tiny_conditional_dir, tiny_pipeline_dir, args,
                                                     words):
    """In-process through ``main`` (the entry point's own error handling), to keep the suite quick."""
    from vidiff.cli import main

    import numpy as np
    from PIL import Image

    _inputs(tmp_path)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "empty.png")
    Image.fromarray(np.zeros((8, 32, 3), np.uint8)).save(tmp_path / "wide.png")  # 32x8 for an 8x8 model
    subs = {"{tmp}": str(tmp_path), "{cond}": str(tiny_conditional_dir), "{t2v}": str(tiny_pipeline_dir),
            "{model}": str(tiny_conditional_dir)}
    args = [a for a in args]
    for k, v in subs.items():
        args = [a.replace(k, v) for a in args]
    if "--model" not in args:
        args += ["--model", str(tiny_pipeline_dir if args[0] == "edit" else tiny_conditional_dir)]
    code = main([*args, "-o", str(tmp_path / "o.mp4"), "--steps", "2", "-q"])
    err = capsys.readouterr().err
    assert code == 2, (args, err)
    assert len(err.strip().splitlines()) == 1 and words in err and not (tmp_path / "o.mp4").exists(), err
