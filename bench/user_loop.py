"""A training loop as a user writes it: NumPy first, then AlexNet, forward, loss, backward,
SGD, nothing else.

    python bench/user_loop.py [--steps N] [--batch N] [--engine plain|fast] [--tune]

No process-wide setting is made, so the times show the speed a user's own loop gets from
the library as it is; --tune makes the training program's one explicit call
(tinyalex.engines.tune_process) first, to compare. Every step's time is printed, then the
median and the slowest of the steps after the first (which pays for first touches and
compiling the kernels), and the process's peak memory.
"""

import argparse
import platform
import resource
import statistics
import time

import numpy as np

from tinyalex import SGD, AlexNet, engines
from tinyalex.layers import SoftmaxCrossEntropy


def cpu_name():
    """The CPU's model name, for every speed figure (the bench scripts share it)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--engine", choices=sorted(engines.ENGINES), default="fast")
    p.add_argument("--tune", action="store_true", help="call tinyalex.engines.tune_process() first")
    args = p.parse_args()
    if args.tune:
        print("process settings: " + "; ".join(engines.tune_process()))
    model = AlexNet(devices="cpu", engine=args.engine)
    print(f"{cpu_name()}; {engines.describe(model)}")
    optimizer, loss = SGD(engine=args.engine), SoftmaxCrossEntropy()
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
