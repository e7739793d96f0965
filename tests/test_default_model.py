"""The embedded default model: it ships, loads offline, and makes videos that show what was asked."""

import json
import subprocess
import sys

import numpy as np
import torch

from vidiff.cli import default_model_path
from vidiff.shapes.reader import score_video
from vidiff.pipelines.text_to_video import TextToVideoPipeline


def test_default_model_ships_in_fp16_safetensors():
    path = default_model_path()
    meta = json.loads((path / "vidiff_pipeline.json").read_text())
    assert meta["text_encoder"] == "minilm" and meta["defaults"]["num_frames"] == 16
    from safetensors import safe_open
    with safe_open(str(next((path / "unet").glob("*.safetensors"))), "pt") as f:
        assert all(f.get_slice(k).get_dtype() == "F16" for k in f.keys())


def test_shipped_style_is_a_fine_tune_of_the_shipped_default():
    # a style keeps the temporal layers of the model it was tuned from; a new default needs a new style
    pipe = TextToVideoPipeline.from_pretrained(default_model_path(), base_only=True)
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    styled = pipe.with_style(default_model_path().parent / "style-outlined", 0.7)  # raises if not
    after = styled.unet.state_dict()
    ids = {id(p) for p in styled.unet.temporal_parameters()}
    temporal = {n for n, p in styled.unet.named_parameters() if id(p) in ids}
    assert temporal and all(torch.equal(after[n], before[n]) for n in temporal)
    assert any(not torch.equal(after[n], before[n]) for n in after if n not in temporal)


def test_default_model_follows_captions():
    pipe = TextToVideoPipeline.from_pretrained(default_model_path(), base_only=True)
    captions = ["a red circle standing still", "a green square moving right", "a magenta triangle growing",
                "a cyan circle bouncing up and down"]
    g = torch.Generator().manual_seed(0)
    videos = pipe(captions, num_inference_steps=20, generator=g).videos.numpy()
    scores = [score_video(v, c)["objects"][0] for v, c in zip(videos, captions)]
    assert sum(s.color for s in scores) >= 3, scores
    assert sum(s.present_all for s in scores) >= 3, scores
    assert sum(s.motion for s in scores) >= 2, scores


def test_cli_generate_with_the_default_model(tmp_path):
    out = tmp_path / "circle.mp4"
    r = subprocess.run([sys.executable, "-m", "vidiff", "generate", "a red circle quickly bouncing left and right",
                        "-o", str(out), "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "circle.json").read_text())
    assert cfg["seed"] == 0 and cfg["num_frames"] == 16
    from vidiff.io.video import read_video
    frames, fps = read_video(out)
    assert frames.shape == (16, 256, 256, 3) and fps == 8
    assert np.asarray(frames).max() > 100  # something was drawn


def test_shipped_conditional_model_reproduces_a_given_first_frame_on_its_own():
    # Lumiere's setting (nothing pasted back): the first frame is the model's own. With the folder's default
    # guidance on the conditioning video (8) it reads 31.1 dB on 40 clips (docs/applications.md); without it, about 20 dB here.
    from vidiff.shapes.scenes import render, sample_scene
    from vidiff.metrics.pixel import MaskedPSNR
    from vidiff.pipelines.conditional import ImageToVideoPipeline

    pipe = ImageToVideoPipeline.from_pretrained(default_model_path().parent / "conditional", base_only=True)
    assert pipe.condition_guidance() == 8.0
    scenes = [sample_scene(i, "test", 16, 8.0, num_objects=1) for i in range(4)]
    true = torch.from_numpy(np.stack([render(s, 16, 8.0, 32, "filled") for s in scenes]))
    out = pipe([s.caption for s in scenes], true[:, :, 0], keep_known=False,
               generator=torch.Generator().manual_seed(0)).videos
    psnr = MaskedPSNR()
    psnr.update(out[:, :, :1], true[:, :, :1], None)
    assert psnr.compute()["all"] >= 27.0


def test_shipped_text_cache_matches_the_encoder():
    """The default's cached caption embeddings are the encoder's (to the last bits another CPU's kernels may
    change), and a caption outside the cache still works."""
    from vidiff.conditioning.text import CachedTextEncoder, TextEncoder

    pipe = TextToVideoPipeline.from_pretrained(default_model_path(), base_only=True)
    assert isinstance(pipe.text_encoder, CachedTextEncoder)
    live = TextEncoder(features=pipe.text_encoder.features)  # the features the model reads (last+embeddings)
    for caption in ("a red circle quickly bouncing left and right", "", "a white square growing"):
        assert caption in pipe.text_encoder._cache
        assert torch.allclose(pipe.text_encoder.embed(caption), live.embed(caption), atol=1e-5)
    assert pipe.text_encoder.encode(["two red circles"])[0].shape[-1] == pipe.unet.config.text_dim == 768
