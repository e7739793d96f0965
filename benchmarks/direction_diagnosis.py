"""Why does a model draw directed moves backwards? Generate each directed validation scene twice from the same
noise, once with its caption and once with the opposite direction word, and read both.

- follows: the clip moves the captioned way (lenient direction reading, any speed);
- reversed: it moves the opposite way;
- flips: with the same noise, swapping the word swaps the direction (the text decides the direction);
- stuck: with the same noise, both captions give the same direction (the noise decides it, the word is ignored).

    python benchmarks/direction_diagnosis.py --model vidiff/weights/default --n 64 --guidance 3 6
"""

from __future__ import annotations

import argparse
import collections
import json

import torch

OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def _opposite(caption: str) -> str:
    words = caption.split()
    return " ".join(OPPOSITE.get(w, w) if i == len(words) - 1 else w for i, w in enumerate(words))


def diagnose(pipe, n: int, guidance: float, first_scene: int = 100_000, steps: int = 25, bf16: bool = False,
             negative_opposite: bool = False) -> dict:
    from vidiff.shapes.suites import suite_scenes
    from vidiff.shapes.reader import score_video

    scenes = [s for s in suite_scenes("test", 20 * n, first_scene=first_scene)
              if s.objects[0].motion.startswith("moving")][:n]
    caps = [s.caption for s in scenes]
    opp = [_opposite(c) for c in caps]
    # the model's clip (16 x 32 x 32 for the default; 8 frames for an 8-frame stage 1)
    size = tuple(int(pipe.defaults[k]) for k in ("num_frames", "height", "width"))
    read = {}
    for name, prompts in (("asked", caps), ("opposite", opp)):
        out = []
        for i in range(0, n, 16):
            chunk = prompts[i: i + 16]
            latents = torch.cat([torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(i + j))
                                 for j in range(len(chunk))])
            neg = [_opposite(c) for c in chunk] if negative_opposite else None
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                if neg is None:
                    v = pipe(chunk, num_inference_steps=steps, guidance_scale=guidance, latents=latents).videos
                else:  # one call per clip: the negative prompt is per clip
                    v = torch.cat([pipe([c], num_inference_steps=steps, guidance_scale=guidance, negative_prompt=ng,
                                        latents=latents[k: k + 1]).videos for k, (c, ng) in enumerate(zip(chunk, neg))])
            out += [score_video(x, c)["objects"][0].read_motion for x, c in zip(v.float().numpy(), chunk)]
        read[name] = out
    rows = collections.defaultdict(lambda: collections.Counter())
    for c, o, a, b in zip(caps, opp, read["asked"], read["opposite"]):
        d = c.split()[-1]
        want_a, want_b = f"moving {d}", f"moving {OPPOSITE[d]}"
        r = rows[d]
        r["n"] += 1
        r["follows"] += a == want_a
        r["reversed"] += a == want_b
        r["flips"] += a == want_a and b == want_b
        r["stuck"] += a == b and a in (want_a, want_b)
    total = collections.Counter()
    for r in rows.values():
        total.update(r)
    frac = lambda r: {k: round(r[k] / r["n"], 3) for k in ("follows", "reversed", "flips", "stuck")} | {"n": r["n"]}  # noqa: E731
    return {"guidance": guidance, "negative_opposite": negative_opposite, "all": frac(total),
            "per_direction": {d: frac(r) for d, r in sorted(rows.items())}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vidiff/weights/default")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--guidance", type=float, nargs="+", default=[3.0])
    p.add_argument("--negative-opposite", action="store_true", help="also: the opposite caption as negative prompt")
    p.add_argument("--first-scene", type=int, default=100_000)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    from vidiff.pipelines.text_to_video import TextToVideoPipeline

    pipe = TextToVideoPipeline.from_pretrained(a.model, base_only=True)
    results = []
    for g in a.guidance:
        for neg in ([False, True] if a.negative_opposite else [False]):
            r = diagnose(pipe, a.n, g, a.first_scene, bf16=a.bf16, negative_opposite=neg)
            results.append(r)
            print(json.dumps(r))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
