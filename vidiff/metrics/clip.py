"""CLIP metrics with any local transformers CLIP directory (nothing is downloaded).

- CLIPSIM (text-video): the cosine between the caption's CLIP text embedding and each frame's image embedding,
  averaged over frames and videos. Reported as the raw cosine (``compute``); papers often print 100 x cosine
  (torchmetrics' CLIPScore is max(100 cos, 0)), which ``compute_x100`` gives.
- Frame consistency: the mean cosine between CLIP image embeddings of consecutive frames (``pairs="consecutive"``,
  the default) or of all frame pairs (``pairs="all"``).

Frames are resized (short side, bicubic) to the model's image size, centre-cropped and normalised with the mean
and std of the directory's preprocessor_config.json (CLIP's own when absent).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torchmetrics import Metric

from vidiff.metrics.frames import check_videos, split_frames

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class CLIPEncoder(torch.nn.Module):
    def __init__(self, path: str | os.PathLike):
        super().__init__()
        p = Path(path).expanduser()
        if not (p / "config.json").is_file():
            raise ValueError(f"CLIP metrics need a local transformers CLIP directory; no config.json in {p}")
        from transformers import AutoTokenizer, CLIPModel

        self.model = CLIPModel.from_pretrained(str(p)).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(str(p))
        pre = p / "preprocessor_config.json"
        cfg = json.loads(pre.read_text()) if pre.is_file() else {}
        self.register_buffer("mean", torch.tensor(cfg.get("image_mean", CLIP_MEAN)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("image_std", CLIP_STD)).view(1, 3, 1, 1), persistent=False)
        self.size = int(self.model.config.vision_config.image_size)

    @torch.no_grad()
    def images(self, frames: torch.Tensor) -> torch.Tensor:
        """(n, 3, h, w) in [0, 1] -> unit-norm embeddings (n, d)."""
        n, c, h, w = frames.shape
        s = self.size / min(h, w)
        nh, nw = max(self.size, round(h * s)), max(self.size, round(w * s))
        x = F.interpolate(frames.float(), size=(nh, nw), mode="bicubic", align_corners=False).clamp(0, 1)
        top, left = (nh - self.size) // 2, (nw - self.size) // 2
        x = x[:, :, top: top + self.size, left: left + self.size]
        emb = self.model.get_image_features(pixel_values=(x - self.mean) / self.std)
        emb = getattr(emb, "pooler_output", emb)
        return F.normalize(emb.float(), dim=-1)

    @torch.no_grad()
    def texts(self, captions: list[str]) -> torch.Tensor:
        tok = self.tokenizer(list(captions), padding=True, truncation=True,
                             max_length=self.model.config.text_config.max_position_embeddings, return_tensors="pt")
        emb = self.model.get_text_features(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
        emb = getattr(emb, "pooler_output", emb)
        return F.normalize(emb.float(), dim=-1)


class CLIPSIM(Metric):
    higher_is_better = True
    full_state_update = False

    def __init__(self, clip: CLIPEncoder | str | os.PathLike, **kwargs):
        super().__init__(**kwargs)
        self.clip = clip if isinstance(clip, CLIPEncoder) else CLIPEncoder(clip)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, videos: torch.Tensor, captions: list[str]) -> None:
        frames, b, t = split_frames(check_videos(videos))
        if len(captions) != b:
            raise ValueError(f"{b} videos but {len(captions)} captions")
        img = self.clip.images(frames).reshape(b, t, -1)
        txt = self.clip.texts(captions)
        cos = (img * txt[:, None]).sum(-1)  # (b, t)
        self.total += cos.double().sum()
        self.count += cos.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()

    def compute_x100(self) -> torch.Tensor:
        return (100 * self.compute()).clamp(min=0)


class FrameConsistency(Metric):
    higher_is_better = True
    full_state_update = False

    def __init__(self, clip: CLIPEncoder | str | os.PathLike, pairs: str = "consecutive", **kwargs):
        super().__init__(**kwargs)
        if pairs not in ("consecutive", "all"):
            raise ValueError(f"pairs must be 'consecutive' or 'all', got {pairs!r}")
        self.pairs = pairs
        self.clip = clip if isinstance(clip, CLIPEncoder) else CLIPEncoder(clip)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, videos: torch.Tensor) -> None:
        frames, b, t = split_frames(check_videos(videos))
        if t < 2:
            raise ValueError("frame consistency needs at least 2 frames")
        e = self.clip.images(frames).reshape(b, t, -1)
        if self.pairs == "consecutive":
            cos = (e[:, 1:] * e[:, :-1]).sum(-1)
        else:
            sim = e @ e.transpose(1, 2)
            iu = torch.triu_indices(t, t, 1)
            cos = sim[:, iu[0], iu[1]]
        self.total += cos.double().sum()
        self.count += cos.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()


__all__ = ["CLIPEncoder", "CLIPSIM", "FrameConsistency"]
