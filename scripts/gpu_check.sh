#!/usr/bin/env bash
# The GPU check, for a machine with a CUDA GPU, CuPy and PyTorch; about 10 minutes.
#   1. the GPU tests: every kernel against the NumPy path (float32 and float64), the whole
#      model's logits and gradients on the GPU against the CPU;
#   2. tinyalex against PyTorch (cuDNN) with the same weights: same logits and gradients;
#   3. training-step speed of the full AlexNet at batch 128, tinyalex against PyTorch, with
#      the library's default (im2col for every conv layer on a GPU);
#   4. the same with Winograd's F(2x2, 3x3) for conv3-conv5 (docs/winograd.md), which
#      decides the GPU's default;
#   5. the training loop fed from a prepared ImageNet-shaped file against the bare step
#      (bench/end_to_end.py, batch 128; makes data/end-to-end/ once, 3.9 GB);
#   6. the built-in run on the GPU (the whole training program, 40 epochs), timed;
#   7. the ablation study's first try on the GPU, timed;
#   8. the training program under mpirun with one process on the GPU (the NCCL communicator).
# Run from anywhere; exits non-zero if any part fails.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
status=0
mkdir -p runs/gpu-check

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

echo; echo "== 5. End to end from a prepared file, batch 128"
timeout 300 "$PYTHON" bench/end_to_end.py --device 0 --data data/end-to-end --out runs/gpu-check/end-to-end || status=1

echo; echo "== 6. The built-in run on the GPU"
start=$(date +%s)
timeout 600 "$PYTHON" examples/train_imagenet.py --devices 0 --no-plots --out runs/gpu-check/builtin \
    > runs/gpu-check-builtin.log 2>&1 || status=1
tail -n 3 runs/gpu-check-builtin.log; echo "wall time: $(( $(date +%s) - start )) s"

echo; echo "== 7. The ablations' first try on the GPU"
start=$(date +%s)
timeout 600 "$PYTHON" examples/ablations.py --quick --devices 0 --out runs/gpu-check/ablations \
    > runs/gpu-check-ablations.log 2>&1 || status=1
tail -n 12 runs/gpu-check-ablations.log; echo "wall time: $(( $(date +%s) - start )) s"

echo; echo "== 8. mpirun -n 1 on the GPU (NCCL)"
if command -v mpirun > /dev/null; then
    timeout 300 mpirun -n 1 "$PYTHON" examples/train_imagenet.py --devices 0 --epochs 1 --no-plots \
        --out runs/gpu-check/mpi 2>&1 | tail -n 4 || status=1
else
    echo "mpirun is not on the PATH (pip install -e '.[mpi]'): skipped"
fi

echo; [ $status -eq 0 ] && echo "GPU check passed" || echo "GPU check FAILED"
exit $status
