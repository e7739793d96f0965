"""Guidance distillation (vidiff.training.distill): the student learns the teacher's guided output."""

import json

import pytest
import torch

from vidiff.training.config import config_from_dict
from vidiff.training.trainer import train

from test_training import tiny_config


def _probe(pipe_dir, n: int = 8):
    """Noised training clips, their timesteps and caption embeddings to compare a student with its teacher on."""
    from vidiff.pipelines.text_to_video import TextToVideoPipeline
    from vidiff.shapes.scenes import ShapesConfig, ShapesDataset

    pipe = TextToVideoPipeline.from_pretrained(pipe_dir)
    data = ShapesDataset(ShapesConfig(4, 8, 8))
    items = [data[10_000 + i] for i in range(n)]
    g = torch.Generator().manual_seed(5)
    x0 = torch.stack([torch.as_tensor(it["video"]) for it in items]).float()
    t = torch.linspace(50, 950, n).long()
    x = pipe.make_scheduler("ddpm").add_noise(x0, torch.randn(x0.shape, generator=g), t)
    text, mask = pipe.text_encoder.encode([it["caption"] for it in items])
    null, null_mask = pipe.text_encoder.encode([""])
    return pipe, x, t, text, mask, null, null_mask


def test_the_teacher_target_is_classifier_free_guidance(tiny_pipeline_dir):
    from vidiff.training.distill import GuidedTeacher

    pipe, x, t, text, mask, null, null_mask = _probe(tiny_pipeline_dir)
    teacher = GuidedTeacher(pipe.unet, pipe.text_encoder, 3.0)
    with torch.no_grad():
        c = pipe.unet(x, t, text, mask)
        u = pipe.unet(x, t, null.expand(len(x), -1, -1), null_mask.expand(len(x), -1))
        got = teacher.target_fn(text, mask)(x, t)
    assert torch.allclose(got, u + 3.0 * (c - u), atol=1e-5)
    assert not torch.allclose(got, c, atol=1e-3)  # guidance moves it away from the conditional output
    assert not any(p.requires_grad for p in teacher.model.parameters())


def _guided_error(teacher_dir, student_dir, scale: float = 3.0) -> float:
    teacher, x, t, text, mask, null, null_mask = _probe(teacher_dir)
    student, *_ = _probe(student_dir)
    with torch.no_grad():
        c = teacher.unet(x, t, text, mask)
        u = teacher.unet(x, t, null.expand(len(x), -1, -1), null_mask.expand(len(x), -1))
        return float((student.unet(x, t, text, mask) - (u + scale * (c - u))).pow(2).mean())


def test_distillation_moves_the_student_to_the_guided_output(tmp_path, tiny_text_dir, tiny_pipeline_dir):
    def run(name, **kw):
        cfg = tiny_config(tmp_path / name, tiny_text_dir, steps=120, init_from=str(tiny_pipeline_dir), lr=3e-3, batch_size=4,
                          ema_decay=0.0, caption_dropout=0.0, **kw)
        cfg["sample"] = {"guidance_scale": 1.0, "num_inference_steps": 3}
        return train(config_from_dict(cfg), progress=False)

    start = _guided_error(tiny_pipeline_dir, tiny_pipeline_dir)  # the student starts as the teacher
    distilled = _guided_error(tiny_pipeline_dir, run("distilled", distill_guidance=3.0))
    plain = _guided_error(tiny_pipeline_dir, run("plain"))  # the same steps on the ordinary diffusion loss
    assert distilled < 0.6 * start and distilled < 0.6 * plain, (start, distilled, plain)
    meta = json.loads((tmp_path / "distilled" / "final" / "vidiff_pipeline.json").read_text())
    assert meta["distilled_guidance_scale"] == 3.0 and meta["defaults"]["guidance_scale"] == 1.0
    assert "distilled_guidance_scale" not in json.loads((tmp_path / "plain" / "final" / "vidiff_pipeline.json").read_text())


@pytest.mark.parametrize("change, match", [
    ({"init_from": None}, "set train.init_from"),
    ({"lora_rank": 4}, "lora_rank"),
    ("guidance", "sample.guidance_scale to 1.0"),
    ("task", "text-to-video"),
])
def test_distillation_recipes_are_checked(tmp_path, tiny_text_dir, tiny_pipeline_dir, change, match):
    cfg = tiny_config(tmp_path, tiny_text_dir, steps=1, init_from=str(tiny_pipeline_dir), distill_guidance=3.0)
    cfg["sample"] = {"guidance_scale": 1.0}
    if change == "guidance":
        cfg["sample"] = {"guidance_scale": 3.0}
    elif change == "task":
        cfg["task"] = "conditional"
    else:
        cfg["train"].update(change)
    with pytest.raises(ValueError, match=match):
        config_from_dict(cfg)
