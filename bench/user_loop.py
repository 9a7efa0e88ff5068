"""A training loop as a user writes it: AlexNet, forward, loss, backward, SGD, nothing else.

    python bench/user_loop.py [--steps N] [--batch N] [--rebuild-cols on|off]

No process-wide setting is made first, so the times show the speed a user's own loop gets
from the library as it is. Every step's time is printed, then the median and the slowest
of the steps after the first (which pays for first touches and compiling the kernels),
and the process's peak memory. --rebuild-cols on makes every conv layer rebuild its im2col
matrix in backward instead of keeping it from forward (AlexNet(rebuild_cols=True)), off
keeps every one (False); without it, the library's choice (on a CPU: conv1 rebuilds, the
others keep).
"""

import argparse
import resource
import statistics
import time

# tinyalex before NumPy, as docs/kernels.md advises: importing it tells OpenBLAS, before
# NumPy loads it, to let its idle threads sleep
from tinyalex import SGD, AlexNet, native
from tinyalex.layers import SoftmaxCrossEntropy

import numpy as np  # noqa: I001


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rebuild-cols", choices=("on", "off"), help="rebuild im2col matrices in backward (on), "
                   "keep them from forward (off); default: the library's choice")
    args = p.parse_args()
    rebuild = None if args.rebuild_cols is None else args.rebuild_cols == "on"
    model = AlexNet(devices="cpu", rebuild_cols=rebuild)
    print(f"CPU layers: {native.describe()}")
    optimizer, loss = SGD(), SoftmaxCrossEntropy()
    rng = np.random.default_rng(0)
    images = (rng.standard_normal((args.batch, 3, 227, 227)) * 60).astype(np.float32)
    labels = rng.integers(0, 1000, args.batch)
    times = []
    for step in range(args.steps):
        start = time.perf_counter()
        loss.forward(model.forward(images), labels)
        model.backward(loss.backward())
        optimizer.step(model.parameters())
        times.append(time.perf_counter() - start)
        print(f"step {step}: {1e3 * times[-1]:.0f} ms")
    later = times[1:]
    print(f"after the first step: median {1e3 * statistics.median(later):.0f} ms, slowest {1e3 * max(later):.0f} ms "
          f"({max(later) / statistics.median(later):.2f}x the median); "
          f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
