"""``vidiff serve``: the page's handlers call the library like the CLI, bad input is an error shown on the page,
and in a real headless Chromium a caption typed and "Generate" clicked gives a playable video."""

import json
import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("gradio", reason="the web page needs gradio (pip install 'vidiff[serve]')")

from vidiff.serve import build_app, check_port, region_mask, run  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def models(tiny_cascade_dir, tiny_conditional_dir):
    return {"text-to-video": str(tiny_cascade_dir), "conditional": str(tiny_conditional_dir), "style": None}


def test_the_page_gives_the_clip_the_library_gives(tmp_path, models):
    from vidiff.io.video import read_video
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    video, side, settings = run("generate", "a red circle moving left", 4, 2, None, model=models["text-to-video"],
                                out_dir=tmp_path)
    assert Path(video).suffix == ".mp4" and json.loads(Path(side).read_text()) == settings
    assert settings["seed"] == 4 and settings["num_inference_steps"] == 2 and settings["output_size"] == [16, 16]
    lib = TextToVideoPipeline.from_pretrained(models["text-to-video"])(
        "a red circle moving left", num_inference_steps=2, generator=torch.Generator().manual_seed(4))
    frames, _ = read_video(video)
    small = frames.reshape(len(frames), 16, 16, 16, 16, 3).mean((2, 4))  # written 16x upscaled for players
    assert np.abs(small - lib.to_uint8()[0].astype(np.float64)).mean() < 6  # H.264 at crf 18


def test_every_tab_runs(tmp_path, models):
    from vidiff.io.video import write_video

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    clip = tmp_path / "in.mp4"
    write_video(rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8), clip)
    cond = models["conditional"]
    box = (0.25, 0.25, 0.75, 0.75)
    painted = np.zeros((40, 40, 4), np.uint8)
    painted[:20, :20, 3] = 255
    for kind, given in (("animate", {"image": image}),
                        ("cinemagraph", {"image": {"background": image, "layers": [painted]}, "box": box}),
                        ("inpaint", {"video": str(clip), "drawn": None, "box": box}),
                        ("edit", {"video": str(clip), "strength": 0.5})):
        model = models["text-to-video"] if kind == "edit" else cond
        steps = 6 if kind == "edit" else 2  # 2 steps leave an edit no step above t = 0 (refused: it changed nothing)
        video, _, settings = run(kind, "a red circle", 1, steps, None, model=model, out_dir=tmp_path, **given)
        assert Path(video).is_file() and settings["num_frames"] == 4, kind
    # one loaded copy of each model serves every tab that runs it (each tab loaded its own until 2026-12-02)
    from vidiff.serve import _pipeline

    assert _pipeline("edit", models["text-to-video"]).unet is _pipeline("generate", models["text-to-video"]).unet
    assert len({id(_pipeline(k, cond).unet) for k in ("animate", "cinemagraph", "inpaint")}) == 1


def test_the_page_starts_at_the_models_own_steps_and_guidance(tmp_path, models):
    # its steps slider started at 25, so a page clip took 25 steps where the model folder (and `vidiff generate`)
    # takes its own number (20 for the default)
    import gradio as gr

    app = build_app(models, out_dir=tmp_path / "out")
    sliders = [b for b in app.blocks.values() if isinstance(b, gr.Slider) and b.label.startswith(("denoising", "guid"))]
    assert sliders and all(s.value == 0 and "the model's" in s.label for s in sliders), \
        [(s.label, s.value) for s in sliders]


def test_stop_ends_a_request_before_its_next_step_and_writes_nothing(tmp_path, models):
    # the page had no way to stop a long request: it ran every step of both stages
    import threading

    import gradio as gr

    event, calls = threading.Event(), []

    def progress(fraction, desc=None):  # the page's progress bar; Stop is pressed while the first step is shown
        calls.append(desc)
        event.set()

    with pytest.raises(ValueError, match="stopped before the end: nothing was written"):
        run("generate", "a red circle", 0, 20, None, model=models["text-to-video"], out_dir=tmp_path / "run",
            progress=progress, stop=event)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
    assert len(calls) == 2, calls  # the base stage's first step, then the super-resolution stage's first only
    # Stop pressed as the last step is shown skips nothing: the full clip is written (it was refused)
    event.clear()
    late = run("generate", "a red circle", 0, 2, None, model=models["text-to-video"], out_dir=tmp_path / "late",
               progress=lambda fraction, desc=None: fraction >= 1 and event.set(), stop=event)
    assert event.is_set() and Path(late[0]).is_file() and "interrupted_after_step" not in late[2]
    # the page's wiring: a Stop click ends the request of the page that made it (its gr.State key), not another's
    app = build_app(models, out_dir=tmp_path / "out")
    fns = list(app.fns.values())
    stop = next(f.fn for f in fns if f.fn.__name__ == "stop")
    generate = next(f.fn for f in fns if f.fn.__name__ == "fn" and len(f.inputs) == 7)  # key, 4 fields, style, alpha
    with pytest.raises(gr.Error, match="stopped before the end"):
        generate("page-a", "a red circle", 0, 20, 0, False, 0.7, progress=lambda *a, **k: stop("page-a"))
    got = generate("page-a", "a red circle", 0, 2, 0, False, 0.7, progress=lambda *a, **k: stop("page-b"))
    assert Path(got[0]).is_file() and len(list((tmp_path / "out").glob("*.json"))) == 1
    stop("page-a")  # nothing running: nothing to stop, and the next request runs in full
    assert Path(generate("page-a", "a red circle", 0, 2, 0, False, 0.7, progress=lambda *a, **k: None)[0]).is_file()
    assert any(b.elem_id == "t2v-stop" for b in app.blocks.values() if isinstance(b, gr.Button))


def test_regions_and_bad_input(tmp_path, models):
    painted = np.zeros((16, 16, 4), np.uint8)
    painted[:8, :8, 3] = 255
    m = region_mask({"background": None, "layers": [painted]}, None, 8, 8)
    assert m.shape == (1, 1, 8, 8) and m[0, 0, :4, :4].all() and m.sum() == 16
    assert region_mask(None, (0.5, 0.0, 1.0, 0.5), 8, 8)[0, 0, :4, 4:].all()
    for box in [(0.5, 0.5, 0.2, 0.9), (-1, 0, 1, 1)]:
        with pytest.raises(ValueError, match="box"):
            region_mask(None, box, 8, 8)
    with pytest.raises(ValueError, match="paint the region"):
        region_mask({"layers": []}, None, 8, 8)
    t2v = models["text-to-video"]
    for args, kw, match in ((("generate", "", 0, 2, None), {}, "caption"),
                            (("generate", "a red circle", -1, 2, None), {}, "seed"),
                            (("generate", "a red circle", 0, 0, None), {}, "steps"),
                            (("generate", "a red circle", 2.5, 2, None), {}, "seed"),  # was taken as seed 2
                            (("generate", "a red circle", float("nan"), 2, None), {}, "seed"),
                            (("generate", "a red circle", 0, 2.5, None), {}, "steps"),
                            (("animate", "a red circle", 0, 2, None), {"image": None}, "upload an image"),
                            (("edit", "a red circle", 0, 2, None), {"video": None}, "upload a video")):
        model = models["conditional"] if args[0] == "animate" else t2v
        with pytest.raises(ValueError, match=match):
            run(*args, model=model, out_dir=tmp_path, **kw)
    for port in (0, 70000, -1, True):
        with pytest.raises(ValueError, match="port"):
            check_port(port)


def test_serve_bad_port_is_one_line_exit_2():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "vidiff", "serve", "--port", "99999"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "vidiff: error: the port must be a whole number in [1, 65535], got 99999"]


@pytest.mark.parametrize("argv,words", [
    (["--host", ""], "--host must be an address"),
    (["--host", "bad host name"], "--host must be an address"),
    (["--host", "nosuchhost.invalid"], "cannot resolve --host 'nosuchhost.invalid'"),
    (["--conditional", "default"], "--conditional 'default' is a text-to-video model; the page needs a conditional"),
    (["--model", "conditional"], "--model 'conditional' is a conditional model"),
    (["--model", "t2i-shapes"], "--model 't2i-shapes' is a text-to-image model"),
    (["--style", "ssr"], "--style 'ssr' is a super-resolution model"),
])
def test_serve_refuses_a_bad_host_or_the_wrong_kind_of_model_before_anything_starts(argv, words, capsys):
    # gradio swapped an empty host for 127.0.0.1 or $GRADIO_SERVER_NAME unsaid; a wrong model failed on first click
    from vidiff.cli import main

    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver; .ci/run installs them)")
def test_generate_in_a_real_browser(tmp_path, models):
    pytest.importorskip("selenium", reason="the browser test drives Chromium with selenium (pip install selenium)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    app = build_app(models, out_dir=tmp_path / "out")
    port = _free_port()
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                           ssr_mode=False)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,2000",
              "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 60)
        box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "textarea"))
        box.clear()
        box.send_keys("a blue square moving right")
        driver.find_element(By.ID, "t2v-generate").click()
        video = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#t2v-video video[src]"))
        ready = wait.until(lambda d: d.execute_script(
            "const v = arguments[0]; return v.readyState >= 2 && v.duration > 0 && !v.error ? "
            "[v.duration, v.videoWidth] : false;", video))
        assert ready[0] == pytest.approx(0.5, abs=0.2) and ready[1] == 256  # 4 frames at 8 fps, upscaled for players
        if os.environ.get("VIDIFF_SCREENSHOT"):
            driver.save_screenshot(os.environ["VIDIFF_SCREENSHOT"])
        written = list((tmp_path / "out").glob("*.json"))
        assert len(written) == 1 and json.loads(written[0].read_text())["prompt"] == "a blue square moving right"
        # bad input is an error shown on the page, and nothing is written
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.BACKSPACE)  # keystrokes, so the page sees the edit (clear() fires no input event)
        driver.find_element(By.ID, "t2v-generate").click()
        wait.until(lambda d: "caption is empty" in d.find_element(By.TAG_NAME, "body").text)
        assert len(list((tmp_path / "out").glob("*.json"))) == 1
    finally:
        driver.quit()
        app.close()
        time.sleep(0.5)
