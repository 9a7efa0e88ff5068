#!/usr/bin/env bash
# The GPU check, for a machine with a CUDA GPU, CuPy and PyTorch; about 4 minutes.
#   1. the GPU tests: every kernel against the NumPy path (float32 and float64), the whole
#      model's logits and gradients on the GPU against the CPU;
#   2. tinyalex against PyTorch (cuDNN) with the same weights: same logits and gradients;
#   3. training-step speed of the full AlexNet at batch 128, tinyalex against PyTorch, with
#      the library's default (im2col for every conv layer on a GPU);
#   4. the same with Winograd's F(2x2, 3x3) for conv3-conv5 (docs/winograd.md), which
#      decides the GPU's default.
# Run from anywhere; exits non-zero if any part fails.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
status=0

"$PYTHON" - <<'PY' || exit 1
import cupy
props = cupy.cuda.runtime.getDeviceProperties(0)
name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
print(f"GPU: {name}, {cupy.cuda.runtime.getDeviceCount()} device(s), CuPy {cupy.__version__}")
PY

echo; echo "== 1. GPU tests"
timeout 150 "$PYTHON" -m pytest -m gpu -v -rs -p no:cacheprovider tests || status=1

echo; echo "== 2. Same weights, same numbers as PyTorch"
timeout 60 "$PYTHON" bench/compare.py --device 0 || status=1

echo; echo "== 3. Training step, batch 128"
timeout 120 "$PYTHON" bench/benchmark.py --device 0 --batch 128 || status=1

echo; echo "== 4. Training step, batch 128, Winograd for conv3-conv5"
timeout 120 "$PYTHON" bench/benchmark.py --device 0 --batch 128 --conv-algorithm winograd || status=1

echo; [ $status -eq 0 ] && echo "GPU check passed" || echo "GPU check FAILED"
exit $status
