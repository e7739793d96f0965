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


@pytest.mark.parametrize("args,words", [
    (["generate", "", "-o", "{tmp}/a.mp4"], "caption is empty"),
    (["generate", "a red circle", "-o", "{tmp}/a.mp4", "--frames", "3"], "num_frames"),
    (["generate", "a red circle", "-o", "{tmp}/a.mp4", "--size", "30"], "multiples"),
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


def test_help_is_quick_and_imports_nothing_heavy():
    code = "import sys, vidiff.cli; print(any(m in sys.modules for m in ('torch', 'diffusers', 'transformers')))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False"
