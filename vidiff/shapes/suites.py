"""Generate the Shapes test suites with fixed seeds and score them with the analytic reader.

Suites: ``test`` (single-object test-split scenes, seeds 0..n-1) and ``heldout`` (single-object scenes
holding a held-out combination). Clip ``i`` starts from the noise of ``torch.Generator().manual_seed(seed + i)``,
so a clip's result does not depend on the batch size.
"""

from __future__ import annotations

import collections

import numpy as np
import torch

from vidiff.checks import whole_in
from vidiff.shapes.scenes import sample_scene
from vidiff.shapes.reader import score_video, summarize
from vidiff.shapes.strict_reader import score_video_strict, shuffle_middle, summarize_strict

SUITES = ("test", "heldout")
# directed motions and their time reversal: a model without a sense of which end of the clip is the start
# draws one for the other
TIME_REVERSED = {"moving left": "moving right", "moving right": "moving left", "moving up": "moving down",
                 "moving down": "moving up", "circling": "circling counterclockwise"}


def suite_scenes(suite: str, n: int, num_frames: int = 16, fps: float = 8.0, first_scene: int = 0):
    """``first_scene`` moves to other test-split seeds (e.g. 100000 for a validation set used to choose
    sampling settings, apart from the reported seeds 0..n-1)."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; allowed: {', '.join(SUITES)}")
    n, first_scene = whole_in(n, "n", 0), whole_in(first_scene, "first_scene", 0)  # n = -1 gave no scenes
    return [sample_scene(s, "test", num_frames, fps, num_objects=1, only_held_out=suite == "heldout")
            for s in range(first_scene, first_scene + n)]


def generate_scenes(pipe, scenes, num_inference_steps: int, guidance_scale: float | None, seed: int = 0,
                    batch_size: int = 16, bf16: bool = False, num_frames: int = 16):
    """Yield ``(scenes, videos (b, c, t, h, w) float in [0, 1])`` batch by batch; clip ``i`` starts from the noise
    of ``torch.Generator().manual_seed(seed + i)``; a stochastic sampler's noise at later steps comes from a
    generator seeded per batch (``seed`` + 1,000,000 + the batch's first clip)."""
    from vidiff.hardware import autocast

    h = pipe.defaults["height"]
    for i in range(0, len(scenes), batch_size):
        chunk = scenes[i: i + batch_size]
        latents = torch.cat([torch.randn(1, 3, num_frames, h, h, generator=torch.Generator().manual_seed(seed + i + j))
                             for j in range(len(chunk))])
        with autocast(pipe.device, "bf16" if bf16 else "fp32"):
            out = pipe([sc.caption for sc in chunk], num_frames=num_frames, num_inference_steps=num_inference_steps,
                       guidance_scale=guidance_scale, latents=latents,
                       generator=torch.Generator().manual_seed(seed + 1_000_000 + i))
        videos = out.videos.float()
        bad = [j for j in range(len(chunk)) if not torch.isfinite(videos[j]).all()]
        if bad:  # the readers refuse such a clip; say which and why rather than score an empty canvas
            raise ValueError(f"the model made NaN or infinite values for {chunk[bad[0]].caption!r} (clip {i + bad[0]}): "
                             f"its weights or its precision{' (bf16)' if bf16 else ''} broke the sampling")
        yield chunk, videos


def evaluate_pipeline(pipe, suite: str = "test", n: int = 200, num_inference_steps: int = 25,
                      guidance_scale: float | None = None, seed: int = 0, batch_size: int = 16, bf16: bool = False,
                      num_frames: int = 16, fps: float = 8.0, progress: bool = True, first_scene: int = 0,
                      scenes=None) -> dict:
    """Returns ``{"summary": {...}, "per_motion": {...}, "time_reversed": float, "records": [...]}``;
    ``time_reversed``: the fraction of directed-motion clips (:data:`TIME_REVERSED`) read as their reversal.
    ``scenes``: single-object scenes to use instead of the suite's (e.g. only held-out colour-shape pairs)."""
    from tqdm.auto import tqdm

    scenes = suite_scenes(suite, n, num_frames, fps, first_scene) if scenes is None else list(scenes)
    n = len(scenes)
    results, records, strict = [], [], []
    bar = tqdm(total=n, desc=f"generating {suite}", disable=not progress)
    for chunk, videos in generate_scenes(pipe, scenes, num_inference_steps, guidance_scale, seed, batch_size, bf16,
                                         num_frames):
        for sc, v in zip(chunk, videos.numpy()):
            r = score_video(v, sc.caption, fps)
            results.append(r)
            o = r["objects"][0]
            st = score_video_strict(v, sc.caption, fps)[0]
            strict.append(st)
            records.append({"caption": sc.caption, "seed": sc.seed, "color": o.color, "shape": o.shape,
                            "motion": o.motion, "speed": o.speed, "present_all": o.present_all,
                            "read": f"{o.read_shape} {o.read_speed} {o.read_motion}",
                            "strict": {"color": st.color, "shape": st.shape, "motion": st.motion,
                                       "present": st.valid, "why": st.why}})
        bar.update(len(chunk))
    bar.close()
    per_motion, reversed_ = collections.defaultdict(list), []
    for sc, r in zip(scenes, results):
        asked, read = sc.objects[0].motion, r["objects"][0].read_motion
        per_motion[asked].append(r["objects"][0].motion)
        if asked in TIME_REVERSED:
            reversed_.append(read == TIME_REVERSED[asked])
    strict_per_motion = collections.defaultdict(list)
    for sc, st in zip(scenes, strict):
        strict_per_motion[sc.objects[0].motion].append(st.motion)
    return {"summary": summarize(results),
            "per_motion": {m: float(np.mean(v)) for m, v in sorted(per_motion.items())},
            "time_reversed": float(np.mean(reversed_)) if reversed_ else 0.0,
            "strict": {**summarize_strict(strict),
                       "per_motion": {m: float(np.mean(v)) for m, v in sorted(strict_per_motion.items())},
                       "floor": shuffled_floor(scenes, num_frames, fps)},
            "records": records}


def shuffled_floor(scenes, num_frames: int = 16, fps: float = 8.0, seed: int = 0) -> dict:
    """The strict reader's motion accuracy on the same scenes' true renders with every frame but the first and
    last shuffled: what a model that draws the right frames in no temporal order would score. Standing still
    is unchanged by shuffling, so its floor is 1 by construction."""
    from vidiff.shapes.scenes import render

    rng = np.random.default_rng(seed)
    per_motion = collections.defaultdict(list)
    for sc in scenes:
        v = shuffle_middle(render(sc, num_frames, fps, 32), rng)
        per_motion[sc.objects[0].motion].append(all(s.motion for s in score_video_strict(v, sc.caption, fps)))
    every = [x for v in per_motion.values() for x in v]
    return {"motion": float(np.mean(every)), "per_motion": {m: float(np.mean(v)) for m, v in sorted(per_motion.items())}}
