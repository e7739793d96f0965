"""Train the Shapes feature network (vidiff.shapes.encoder) and save it as safetensors.

    python scripts/train_shapes_encoder.py --config configs/metrics/shapes-encoder.yaml
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm.auto import trange

from vidiff.shapes.scenes import COLORS, MOTIONS, SHAPES, SPEEDS, ground_truth, render, sample_scene
from vidiff.shapes.encoder import ShapesEncoder, joint_index


def make_batch(seeds) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Single-object test-split clips (16 x 32 x 32, 8 fps) and their labels."""
    videos, labels = [], {k: [] for k in ("color", "shape", "motion", "speed", "joint", "position")}
    for s in seeds:
        sc = sample_scene(int(s), "test", 16, 8.0, num_objects=1)
        o = sc.objects[0]
        videos.append(torch.from_numpy(render(sc, 16, 8.0, 32)))
        gt = ground_truth(sc, 16, 8.0)
        labels["color"].append(list(COLORS).index(o.color))
        labels["shape"].append(SHAPES.index(o.shape))
        labels["motion"].append(MOTIONS.index(o.motion))
        labels["speed"].append(SPEEDS.index(o.speed))
        labels["joint"].append(joint_index(o.color, o.shape, o.motion))
        labels["position"].append(np.concatenate([gt["centre"][0], gt["scale"][0][:, None]], -1))  # (t, 3)
    out = {k: torch.as_tensor(np.asarray(v)) for k, v in labels.items()}
    return torch.stack(videos), out


def loss_fn(model: ShapesEncoder, video: torch.Tensor, y: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    out = model(video)
    losses = {k: F.cross_entropy(out[k], y[k]) for k in ("color", "shape", "motion", "speed", "joint")}
    t = video.shape[2]
    for k in ("color", "shape"):
        losses[f"frame_{k}"] = F.cross_entropy(out[f"frame_{k}"].flatten(0, 1), y[k].repeat_interleave(t))
    losses["frame_position"] = 10 * F.mse_loss(out["frame_position"], y["position"].float())
    acc = {k: (out[k].argmax(-1) == y[k]).float().mean().item() for k in ("color", "shape", "motion", "speed")}
    return sum(losses.values()), acc


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/metrics/shapes-encoder.yaml")
    args = p.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    torch.manual_seed(cfg["seed"])
    model = ShapesEncoder()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=cfg["steps"], pct_start=0.1)
    b, first = cfg["batch_size"], cfg["first_seed"]
    t0, log = time.time(), []
    bar = trange(cfg["steps"], desc="shapes encoder")
    for step in bar:
        video, y = make_batch(range(first + step * b, first + (step + 1) * b))
        loss, acc = loss_fn(model, video, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == cfg["steps"] - 1:
            log.append({"step": step, "loss": round(loss.item(), 4), **{k: round(v, 3) for k, v in acc.items()}})
            bar.set_postfix(loss=f"{loss.item():.3f}", motion=f"{acc['motion']:.2f}")
    model.eval()
    # held-out check on evaluation-style seeds (test split, seeds 0..511)
    with torch.no_grad():
        video, y = make_batch(range(512))
        out = model(video)
    val = {k: round((out[k].argmax(-1) == y[k]).float().mean().item(), 4) for k in ("color", "shape", "motion", "speed", "joint")}
    print("accuracy on test seeds 0..511:", val)
    # fixed feature scales: mean per-dimension std on 512 more training-style clips
    with torch.no_grad():
        video, _ = make_batch(range(first - 512, first))
        feats, frames = model.video_features(video)
    model.register_to_config(video_scale=round(float(feats.std(0).mean()), 4),
                             frame_scale=round(float(frames.flatten(0, 1).std(0).mean()), 4))
    model.save_pretrained(cfg["output"], safe_serialization=True)
    (Path(cfg["output"]) / "training.json").write_text(json.dumps(
        {"config": cfg, "minutes": round((time.time() - t0) / 60, 1), "accuracy_test_0_511": val, "log": log}, indent=1))


if __name__ == "__main__":
    main()
