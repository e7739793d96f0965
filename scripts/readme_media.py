"""The README's picture: six clips of the embedded default, base + super-resolution as `vidiff generate` writes
them, in a captioned 3 x 2 grid, as an animated GIF.

    python scripts/readme_media.py docs/images/default-samples.gif
"""

from __future__ import annotations

import argparse

import torch
from PIL import Image, ImageDraw

from vidiff import TextToVideoPipeline

CAPTIONS = ["a red circle quickly bouncing left and right", "a cyan square moving up", "a green triangle circling",
            "a white circle growing", "a yellow square moving left", "a magenta triangle shrinking"]

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--bf16", action="store_true")
a = p.parse_args()

pipe = TextToVideoPipeline.from_pretrained("default")
clips = []
for seed, caption in enumerate(CAPTIONS):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
        clips.append(pipe(caption, generator=torch.Generator().manual_seed(seed)).to_uint8()[0])  # (t, 128, 128, 3)
t, h, w, _ = clips[0].shape
label_h, pad = 14, 4
frames = []
for i in range(t):
    canvas = Image.new("RGB", (3 * (w + pad) + pad, 2 * (h + label_h + pad) + pad), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    for k, clip in enumerate(clips):
        x, y = pad + (k % 3) * (w + pad), pad + (k // 3) * (h + label_h + pad)
        canvas.paste(Image.fromarray(clip[i]), (x, y + label_h))
        label = " ".join(CAPTIONS[k].split()[1:]).replace("quickly bouncing left and right", "bouncing l-r")
        draw.text((x + 1, y + 1), label, fill=(220, 220, 220))
    frames.append(canvas)
frames[0].save(a.out, save_all=True, append_images=frames[1:], duration=125, loop=0, optimize=True)
print(f"wrote {a.out} ({len(frames)} frames)")
