#!/usr/bin/env bash
# The GPU check (issue 23), <= 8 minutes on one GPU: the tests marked gpu, then benchmarks/gpu.py (training throughput
# at the largest batch that fits, a default clip's generate time, a 128-frame SSR run's peak memory, per-step times at
# 16 x 128 x 128, and DDP over every GPU when there are 2+). Writes $OUT/gpu-check.json and $OUT/gpu-check.md.
#   scripts/gpu_check.sh                  # OUT defaults to runs/gpu-check
# TESTS_S / BENCH_S bound the two parts (240 / 420 s). On a lent device machine: scripts/device_kit.py.
# Needs a Python with vidiff installed (pip install -e ".[test]") and a CUDA build of torch.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device visible to torch ($("$PY" -c 'import torch; print(torch.__version__)')); nothing to check" >&2
    exit 2
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
start=$(date +%s)
timeout "${TESTS_S:-240}" "$PY" -m pytest -m gpu -q tests/test_gpu.py 2>&1 | tail -n 30 | tee "$OUT/pytest-gpu.log"
tests_rc=${PIPESTATUS[0]}
timeout "${BENCH_S:-420}" "$PY" benchmarks/gpu.py --out "$OUT/gpu-check.json" --md "$OUT/gpu-check.md"
bench_rc=$?
echo "gpu_check: tests exit $tests_rc, benchmark exit $bench_rc, $(( $(date +%s) - start )) s; $OUT/gpu-check.md"
exit $(( tests_rc != 0 || bench_rc != 0 ))
