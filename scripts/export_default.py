"""Ship a trained pipeline as the embedded default: fp16 safetensors under vidiff/weights/default.

    python scripts/export_default.py runs/stunet-shapes/final
"""

import sys
from pathlib import Path

from vidiff.pipelines.text_to_video import TextToVideoPipeline

src = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/stunet-shapes/final")
dst = Path(__file__).resolve().parents[1] / "vidiff" / "weights" / "default"
pipe = TextToVideoPipeline.from_pretrained(src)
pipe.text_encoder.name = "minilm"
pipe.save_pretrained(dst, train_config=None, half=True)
print(f"exported {src} -> {dst}")
