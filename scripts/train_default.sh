#!/usr/bin/env bash
# Train the embedded default model (configs/stunet-shapes.yaml) in the background, logging to a file.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs
nohup vidiff train --config configs/stunet-shapes.yaml --resume latest > runs/stunet-shapes.log 2>&1 &
echo "training in the background: tail -f runs/stunet-shapes.log"
