"""What a model folder's ``task`` means, in one place: the pipeline class that loads and saves it, the
conditioning input its training batches get, and the recipe settings it allows. Trainer, recipe checks, folder
checks and the weight export all ask here instead of switching on the task name themselves. No heavy imports."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Task:
    name: str
    pipeline: str  # "module:Class" of the pipeline that loads and saves folders of this task
    condition: Callable | None = None  # (cfg, batch, x0, generator) -> the U-Net's conditioning input, or None
    image_batches: bool = False  # may train on image batches (data.image_prob)
    known_pixel_weight: bool = False  # may weight the loss on given pixels (train.known_pixel_weight)
    needs_lowres: bool = False  # trains on (low-res, high-res) pairs (data.lowres)

    def pipeline_class(self):
        module, name = self.pipeline.split(":")
        return getattr(importlib.import_module(module), name)

    def check(self, cfg) -> None:
        """Recipe settings this task cannot take, as one-line ValueErrors."""
        if cfg.data.image_prob and not self.image_batches:
            raise ValueError(f"data.image_prob (image batches) works with task 'text-to-video' only, not {self.name!r}")
        if cfg.train.known_pixel_weight != 1.0 and not self.known_pixel_weight:
            raise ValueError(f"train.known_pixel_weight applies to task 'conditional' only (this recipe's task is "
                             f"{self.name!r})")
        if self.needs_lowres and not cfg.data.lowres:
            raise ValueError(f"task {self.name!r} needs low-resolution pairs: set data.lowres")


def _masked_condition(cfg, batch, x0, g):
    """<C, M> with a random mask of known pixels (Lumiere 4.2)."""
    from vidiff.conditioning.masks import condition_input, random_training_mask

    b, _, t, h, w = x0.shape
    return condition_input(x0, random_training_mask(g, b, t, h, w).to(x0.device))


def _lowres_condition(cfg, batch, x0, g):
    """The low-resolution clip, upsampled and noise-augmented (cascaded diffusion's conditioning augmentation)."""
    from vidiff.conditioning.resolution import augment_lowres, upsample_video

    if "lowres" not in batch:
        raise ValueError("task 'super-resolution' needs low-resolution pairs: set data.lowres")
    up = upsample_video(batch["lowres"], x0.shape[-2], x0.shape[-1])
    return augment_lowres(up, cfg.train.lowres_noise, g).to(x0.device)


TASKS = {t.name: t for t in (
    Task("text-to-video", "vidiff.pipelines.text_to_video:TextToVideoPipeline", image_batches=True),
    Task("conditional", "vidiff.pipelines.conditional:ConditionalVideoPipeline", _masked_condition,
         known_pixel_weight=True),
    Task("super-resolution", "vidiff.pipelines.super_resolution:SuperResolutionPipeline", _lowres_condition,
         needs_lowres=True),
)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}")
    return TASKS[name]


def pipeline_class(task: str):
    """The pipeline class that loads and saves a folder of ``task`` (training exports, weight export)."""
    return get_task(task).pipeline_class()
