"""The Shapes analytic scores as a metric object: read every video back against its caption
(:mod:`vidiff.shapes.reader`, and :mod:`vidiff.shapes.strict_reader` under ``"strict"``) and
accumulate attribute accuracies, per-motion accuracy and the
consistency figures; captions holding a held-out combination (compositional generalisation) are reported apart.
"""

from __future__ import annotations

import collections

import numpy as np
import torch

from vidiff.shapes.scenes import ShapeObject, is_held_out
from vidiff.shapes.reader import parse_caption, score_video, summarize
from vidiff.shapes.strict_reader import score_video_strict, summarize_strict


def caption_is_held_out(caption: str) -> bool:
    return any(is_held_out(ShapeObject(o["color"], o["shape"], o["motion"], o["speed"])) for o in parse_caption(caption))


class ShapesScore:
    """``update(videos (b, 3, t, h, w) in [0, 1], captions)``; ``compute()`` -> ``{"all", "seen", "held_out"}``
    summaries plus ``per_motion``; ``records`` keeps one line per video (its reading and a 0-1 score)."""

    def __init__(self, fps: float = 8.0):
        self.fps = fps
        self.reset()

    def reset(self) -> None:
        self.results: list[dict] = []
        self.records: list[dict] = []

    def update(self, videos, captions: list[str]) -> None:
        v = videos.float().cpu().numpy() if isinstance(videos, torch.Tensor) else np.asarray(videos)
        if len(v) != len(captions):
            raise ValueError(f"{len(v)} videos but {len(captions)} captions")
        for video, cap in zip(v, captions):
            r = score_video(video, cap, self.fps)
            r["caption"], r["held_out"] = cap, caption_is_held_out(cap)
            r["strict"] = score_video_strict(video, cap, self.fps)
            self.results.append(r)
            o = r["objects"]
            score = float(np.mean([np.mean([x.color, x.shape, x.motion, x.present_all]) for x in o]))
            self.records.append({"index": len(self.records), "caption": cap, "held_out": r["held_out"],
                                 "read": " and ".join(f"{x.read_shape} {x.read_speed} {x.read_motion}" for x in o),
                                 "color": all(x.color for x in o), "shape": all(x.shape for x in o),
                                 "motion": all(x.motion for x in o), "present_all": all(x.present_all for x in o),
                                 "score": score})

    def compute(self) -> dict:
        seen = [r for r in self.results if not r["held_out"]]
        held = [r for r in self.results if r["held_out"]]
        per_motion = collections.defaultdict(list)
        for r in self.results:
            for o, parsed in zip(r["objects"], parse_caption(r["caption"])):
                per_motion[parsed["motion"]].append(o.motion)
        strict_motion = collections.defaultdict(list)
        for r in self.results:
            for o, parsed in zip(r["strict"], parse_caption(r["caption"])):
                strict_motion[parsed["motion"]].append(o.motion)
        strict = {name: summarize_strict([o for r in rs for o in r["strict"]])
                  for name, rs in (("all", self.results), ("seen", seen), ("held_out", held))}
        strict["per_motion"] = {m: float(np.mean(v)) for m, v in sorted(strict_motion.items())}
        return {"all": summarize(self.results), "seen": summarize(seen), "held_out": summarize(held),
                "per_motion": {m: float(np.mean(v)) for m, v in sorted(per_motion.items())}, "strict": strict}


__all__ = ["ShapesScore", "caption_is_held_out"]
