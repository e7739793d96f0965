#!/usr/bin/env bash
# Train a recipe (default: the embedded model's, configs/stunet-shapes-single.yaml) in the background, logging to a file.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs
CONFIG=${1:-configs/stunet-shapes-single.yaml}
nohup vidiff train --config "$CONFIG" --resume latest -q > "runs/$(basename "$CONFIG" .yaml).log" 2>&1 &
echo "training $CONFIG in the background: tail -f runs/$(basename "$CONFIG" .yaml).log"
