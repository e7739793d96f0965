"""Ship a trained pipeline as embedded weights: fp16 safetensors under vidiff/weights/<name>.

    python scripts/export_weights.py runs/stunet-shapes/final                 # the default
    python scripts/export_weights.py runs/style-outlined/final style-outlined
    python scripts/export_weights.py runs/ssr-shapes/final ssr
    python scripts/export_weights.py runs/stunet-shapes/final default --super-resolution ../ssr
"""

import argparse
from pathlib import Path

from vidiff.pipelines.base import pipeline_class, read_meta

p = argparse.ArgumentParser()
p.add_argument("src", nargs="?", default="runs/stunet-shapes/final")
p.add_argument("name", nargs="?", default="default")
p.add_argument("--super-resolution", default=None, help="path of the SSR stage, relative to the exported folder")
p.add_argument("--guidance-scale", type=float, default=None, help="the default guidance scale, if the recipe's "
               "was replaced by one chosen on validation scenes")
p.add_argument("--condition-guidance-scale", type=float, default=None, help="conditional models: the default "
               "guidance scale on the conditioning video (1: none)")
args = p.parse_args()
src = Path(args.src)
dst = Path(__file__).resolve().parents[1] / "vidiff" / "weights" / args.name
pipe = pipeline_class(read_meta(src).get("task", "text-to-video")).from_pretrained(src)
pipe.text_encoder.name = "minilm"
if args.super_resolution:
    pipe.extra["super_resolution"] = args.super_resolution
if args.guidance_scale is not None:
    pipe.defaults["guidance_scale"] = args.guidance_scale
if args.condition_guidance_scale is not None:
    pipe.defaults["condition_guidance_scale"] = args.condition_guidance_scale
pipe.save_pretrained(dst, train_config=None, half=True)
print(f"exported {src} -> {dst}")
