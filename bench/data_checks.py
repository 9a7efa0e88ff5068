"""What the data checks cost a training step: the same loop reading through
PreparedSplit(check=True) and PreparedSplit(check=False), in one process.

    python bench/data_checks.py [--data DATA/train.h5] [--images 384] [--batch 128] [--rounds 3]

The checks are those made on every read: one ``stat`` of the file a batch (was it changed
or replaced?) and a CRC-32 of each image against the checksum stored at preparation.
Without --data, a file of random 256 x 256 images is written to a temporary folder and
deleted at the end. A step here is the read of its batch, in the loop's own thread (the
training program reads ahead in another thread, which can hide the checks; here they
cannot hide), then augmentation, forward, loss, backward and SGD.

Every batch is trained on twice in a row, once read with the checks and once without,
the order swapped from one batch to the next, so that other work on the machine slows
both alike; the ratio printed is the median of the pairs' ratios. The checks alone are
also timed, on a batch already in memory, and given as a share of the median step
without them: on a busy machine that is the steadier figure.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from user_loop import cpu_name

from tinyalex import SGD, AlexNet, engines
from tinyalex.data import Augmenter, BatchLoader, PreparedSplit, batch_rng
from tinyalex.datasets import write_prepared
from tinyalex.layers import SoftmaxCrossEntropy

SIDE = 256


def random_file(folder, count, classes=10):
    """train.h5 of ``count`` random images, written as the preparation writes it."""
    rng = np.random.default_rng(0)
    blocks = (rng.integers(0, 256, size=(min(64, count - start), SIDE, SIDE, 3), dtype=np.uint8)
              for start in range(0, count, 64))
    mean = np.full((SIDE, SIDE, 3), 127.5, dtype=np.float32)
    statistics_ = dict(mean_image=mean, rgb_mean=np.full(3, 127.5), rgb_covariance=np.eye(3) * 5418.0,
                       rgb_eigenvalues=np.full(3, 5418.0), rgb_eigenvectors=np.eye(3))
    wnids = [f"n{k:08d}" for k in range(classes)]
    return write_prepared(Path(folder) / "train.h5", ((count, SIDE, SIDE, 3), blocks), np.arange(count) % classes,
                          [f"{i}.JPEG" for i in range(count)], wnids, wnids, split="train", statistics=statistics_)


def step_time(split, indices, rng, model, loss, sgd, augmenter):
    """Seconds of one training step on the images at ``indices``, read from ``split``."""
    start = time.perf_counter()
    images, labels = split.read(indices)
    x = augmenter.train_batch(images, rng)
    loss.forward(model.forward(x, train=True), labels)
    model.backward(loss.backward())
    sgd.step(model.parameters())
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="a prepared train.h5 (default: random images in a temporary folder)")
    p.add_argument("--images", type=int, default=384, help="images of the random file (default 384)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.data or random_file(folder, args.images)
        checked, unchecked = PreparedSplit(path, check=True), PreparedSplit(path, check=False)
        if checked.checksums is None:
            raise SystemExit(f"error: {path} has no checksums (prepared before tinyalex stored them)")
        model = AlexNet(devices="cpu", num_classes=checked.num_classes)
        print(f"{cpu_name()}; {engines.describe(model)}")
        print(f"{path}: {len(checked)} images of {checked.stored_size} pixels, batch {args.batch}, "
              f"{len(checked) // args.batch} steps a pass")
        loss, sgd = SoftmaxCrossEntropy(), SGD()
        augmenter = Augmenter(*checked.statistics())
        batches = BatchLoader(checked, args.batch, seed=0)
        step_time(unchecked, batches.batch_indices(0)[0], batch_rng(0, 0, 0), model, loss, sgd, augmenter)  # warm-up
        steps = {False: [], True: []}
        for epoch in range(1, args.rounds + 1):
            for index, indices in enumerate(batches.batch_indices(epoch)):
                for check in (index % 2 == 1, index % 2 == 0):
                    split = checked if check else unchecked
                    steps[check].append(step_time(split, indices, batch_rng(0, epoch, index), model, loss, sgd,
                                                  augmenter))
        without, with_checks = statistics.median(steps[False]), statistics.median(steps[True])
        ratios = [a / b for a, b in zip(steps[True], steps[False])]
        print(f"step without checks: median {1e3 * without:.0f} ms over {len(steps[False])} steps "
              f"({1e3 * min(steps[False]):.0f} - {1e3 * max(steps[False]):.0f})")
        print(f"step with checks:    median {1e3 * with_checks:.0f} ms over {len(steps[True])} steps "
              f"({1e3 * min(steps[True]):.0f} - {1e3 * max(steps[True]):.0f})")
        print(f"ratio with / without, median of the {len(ratios)} pairs: {statistics.median(ratios):.3f} "
              f"({min(ratios):.3f} - {max(ratios):.3f})")

        indices = np.sort(np.random.default_rng(1).choice(len(checked), args.batch, replace=False))
        images, _ = unchecked.read(indices)
        alone = []
        for _ in range(20):
            start = time.perf_counter()
            checked.check_read(indices, images)
            alone.append(time.perf_counter() - start)
        cost = statistics.median(alone)
        print(f"the checks alone: {1e3 * cost:.1f} ms a batch of {args.batch} "
              f"({images.nbytes / cost / 1e6:.0f} MB/s), {100 * cost / without:.2g}% of a step without them")


if __name__ == "__main__":
    main()
