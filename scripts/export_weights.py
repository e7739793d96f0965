"""Ship a trained pipeline as embedded weights: fp16 safetensors under vidiff/weights/<name>.

    python scripts/export_weights.py runs/stunet-shapes/final                 # the default
    python scripts/export_weights.py runs/style-outlined/final style-outlined
    python scripts/export_weights.py runs/ssr-shapes/final ssr
    python scripts/export_weights.py runs/stunet-shapes/final default --super-resolution ../ssr
    python scripts/export_weights.py runs/t2i-shapes/final t2i-shapes --guidance-scale 2 --no-text-cache
    python scripts/export_weights.py --text-cache-only default      # (re)write the folder's text cache

A text-to-video or conditional export also writes ``text_cache.safetensors``: the text encoder's embeddings of
every single-object Shapes caption and of the empty one (vidiff.conditioning.text.CachedTextEncoder), so that
generating them loads no text encoder.
"""

import argparse
import os
from pathlib import Path

from vidiff.diffusion import SAMPLERS
from vidiff.tasks import pipeline_class
from vidiff.pipelines.folder import check_guidance_min_t, read_meta

p = argparse.ArgumentParser()
p.add_argument("src", nargs="?", default="runs/stunet-shapes/final")
p.add_argument("name", nargs="?", default="default")
p.add_argument("--super-resolution", default=None, help="path of the SSR stage, relative to the exported folder")
# the sampling defaults an export can set, each chosen on validation scenes after training: flag -> (the folder's
# defaults key, type, help); the one home of these defaults is then the exported folder's vidiff_pipeline.json
DEFAULT_FLAGS = {
    "--guidance-scale": ("guidance_scale", float, "the default guidance scale, if the recipe's was replaced"),
    "--condition-guidance-scale": ("condition_guidance_scale", float,
                                   "conditional models: the default guidance scale on the conditioning video (1: none)"),
    "--steps": ("num_inference_steps", int, "the default number of sampling steps"),
    "--logsnr-min": ("logsnr_min", float,
                     "DPM++: space the steps uniformly in log-SNR above this (vidiff.diffusion.schedule.logsnr_timesteps)"),
    "--guidance-min-t": ("guidance_min_t", float, "classifier-free guidance only on the steps with t >= this, the "
                         "conditional model alone below (vidiff.diffusion.sampling.guidance_from)"),
    "--sampler": ("sampler", str, f"the default sampler: {', '.join(SAMPLERS)}"),
}
for flag, (key, kind, text) in DEFAULT_FLAGS.items():
    p.add_argument(flag, dest=key, type=kind, default=None, help=text,
                   **({"choices": SAMPLERS} if key == "sampler" else {}))
p.add_argument("--overwrite", action="store_true", help="replace an existing exported folder")
p.add_argument("--no-text-cache", action="store_true", help="ship no text cache (a model whose captions the default's "
               "cache already holds: the encoder loads on first use)")
p.add_argument("--text-cache-only", metavar="NAME", default=None, help="only write the text cache of vidiff/weights/NAME")
args = p.parse_args()


def write_cache(folder: Path, overwrite: bool) -> None:
    from vidiff.conditioning.text import CACHE_FILE, TextEncoder, write_text_cache
    from vidiff.shapes.scenes import caption_vocabulary

    meta = read_meta(folder)
    encoder = TextEncoder(meta.get("text_encoder", "minilm"), features=meta.get("text_features", "last"))
    write_text_cache(encoder, caption_vocabulary() + [""], folder / CACHE_FILE, overwrite=overwrite)
    print(f"wrote {folder / CACHE_FILE}")


if args.text_cache_only:
    write_cache(Path(__file__).resolve().parents[1] / "vidiff" / "weights" / args.text_cache_only, args.overwrite)
    raise SystemExit(0)
src = Path(args.src)
dst = Path(__file__).resolve().parents[1] / "vidiff" / "weights" / args.name
pipe = pipeline_class(read_meta(src).get("task", "text-to-video")).from_pretrained(src)
pipe.text_encoder.name = "minilm"
if args.super_resolution:
    # given relative to the exported folder; save_pretrained re-bases a relative stage from the pipeline's own folder
    # (src), so it is named from there (passed as given, '../ssr' was written as '../../../runs/<run>/ssr')
    pipe.extra["super_resolution"] = os.path.relpath(dst / args.super_resolution, src.resolve())
for key, *_ in DEFAULT_FLAGS.values():
    if getattr(args, key) is not None:
        pipe.defaults[key] = getattr(args, key)
try:
    check_guidance_min_t(pipe.defaults.get("guidance_min_t"), pipe.diffusion.num_train_timesteps)
except ValueError as e:
    raise SystemExit(f"--guidance-min-t: {e}") from None
if args.sampler is not None or args.logsnr_min is not None:
    pipe.scheduler = pipe.make_scheduler(pipe.defaults["sampler"])  # the scheduler/ config the folder ships
card = dst / "README.md"  # the model card of a shipped folder stays with the new weights
pipe.save_pretrained(dst, train_config=None, half=True, overwrite=args.overwrite,
                     extra_files=[card] if args.overwrite and card.is_file() else ())
print(f"exported {src} -> {dst}")
if pipe.task in ("text-to-video", "conditional") and not args.no_text_cache:
    write_cache(dst, overwrite=True)
