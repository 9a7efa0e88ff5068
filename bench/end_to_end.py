"""Training from a prepared file, end to end, against the bare training step.

    python bench/end_to_end.py [--device cpu|0] [--batch N] [--steps N] [--images 20000]
                               [--data DIR] [--cached]

1. Makes (once, in --data) a prepared split shaped like ImageNet's with the library's own
   writer: --images training images of 256 x 256 pixels in 1,000 classes (3.9 GB for
   20,000), and --val-images validation images.
2. Times --steps steps of the bare training step of the full AlexNet at --batch: images
   already on the device, forward, loss, backward, SGD.
3. Trains the same model from the file with the training program's own loop
   (``tinyalex.training.Trainer``: the loader reading ahead in its thread, the
   augmentation, the step), for --steps steps, then writes a checkpoint and makes a
   validation pass (centre crops), as at the end of an epoch.
4. Times the bare step again, and prints images/s end to end against the bare step's
   (the mean of 2 and 4), the share of each part of the loop, and the rate at which the
   training read the file.

Before the training the file's pages are dropped from the operating system's cache
(``posix_fadvise``), so the reads come from the disk, as in the first epoch of a real
run; --cached leaves them, as in a later epoch on a machine with memory enough for the
data set. Each part is timed where the loop calls it, with the GPU synchronised at its
end; "waiting for data" is the time the loop waited for the loader's next batch (reading
ahead, the loader reads while the step runs).
"""

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from tinyalex import PAPER, SGD, AlexNet, engines
from tinyalex.backend import on_device, parse_devices, to_device
from tinyalex.data import PreparedSplit
from tinyalex.datasets import is_complete, write_prepared
from tinyalex.datasets.stats import rgb_eigen_of
from tinyalex.layers import SoftmaxCrossEntropy
from tinyalex.training import Trainer

from user_loop import cpu_name

SIZE, CLASSES, BLOCK = 256, 1000, 64



# 1. The data -------------------------------------------------------------------------------

def coarse_blocks(count, seed):
    """Blocks of ``count`` random 32 x 32 RGB images (uint8), the same for the same seed."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, BLOCK):
        yield rng.integers(0, 256, (min(BLOCK, count - start), SIZE // 8, SIZE // 8, 3), dtype=np.uint8)


def statistics_of(count, seed):
    """The colour statistics of the images :func:`coarse_blocks` makes, scaled up 8 x 8."""
    pixel_sum, rgb_sum, outer_sum = np.zeros((SIZE // 8, SIZE // 8, 3)), np.zeros(3), np.zeros((3, 3))
    for block in coarse_blocks(count, seed):
        pixel_sum += block.sum(axis=0, dtype=np.float64)
        rgb = block.reshape(-1, 3).astype(np.float64)
        rgb_sum += rgb.sum(axis=0)
        outer_sum += rgb.T @ rgb
    pixels = count * (SIZE // 8) ** 2       # every coarse pixel is 64 equal pixels: the means are the same
    mean = rgb_sum / pixels
    covariance = outer_sum / pixels - np.outer(mean, mean)
    values, vectors = rgb_eigen_of(covariance)
    mean_image = (pixel_sum / count).repeat(8, axis=0).repeat(8, axis=1).astype(np.float32)
    return dict(mean_image=mean_image, rgb_mean=mean, rgb_covariance=covariance, rgb_eigenvalues=values,
                rgb_eigenvectors=vectors)


def make_data(folder, images, val_images):
    """train.h5 (``images`` images) and val.h5 in ``folder``, made once: images of 8 x 8
    squares of random colours, random labels."""
    folder.mkdir(parents=True, exist_ok=True)
    wnids = [f"n{k:08d}" for k in range(CLASSES)]
    for split, count, seed in (("train", images, 0), ("val", val_images, 1)):
        path = folder / f"{split}.h5"
        if is_complete(path) and len(PreparedSplit(path)) == count:
            continue
        started = time.perf_counter()
        labels = np.random.default_rng(seed).integers(0, CLASSES, count)
        blocks = (block.repeat(8, axis=1).repeat(8, axis=2) for block in coarse_blocks(count, seed))
        write_prepared(path, ((count, SIZE, SIZE, 3), blocks), labels, [f"{i}.JPEG" for i in range(count)], wnids,
                       wnids, split=split, source="bench/end_to_end.py",
                       statistics=statistics_of(count, seed) if split == "train" else None)
        print(f"  wrote {path}: {count:,} images, {path.stat().st_size / 1e9:.1f} GB in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return PreparedSplit(folder / "train.h5"), PreparedSplit(folder / "val.h5")


def drop_from_cache(path):
    """Ask the operating system to forget the file's pages, so that the next reads are the disk's."""
    with open(path, "rb") as file:
        os.fsync(file.fileno())
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


# 2. and 4. The bare step ----------------------------------------------------------------

def bare_steps(model, sgd, batch, steps, sync):
    """Seconds of each of ``steps`` training steps on one batch already on the device."""
    rng = np.random.default_rng(0)
    loss = SoftmaxCrossEntropy()
    with on_device(model.devices[0]):
        x = to_device((rng.standard_normal((batch, 3, model.image_size, model.image_size)) * 60).astype(np.float32),
                      model.devices[0])
        y = to_device(rng.integers(0, model.num_classes, batch), model.devices[0])
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss.forward(model.forward(x, train=True), y)
        model.backward(loss.backward())
        sgd.step(model.parameters())
        sync()
        times.append(time.perf_counter() - start)
    return times


# 3. The training loop, its parts timed -------------------------------------------------------

class Timed:
    """Adds the seconds of every call of ``fn`` to ``totals[name]`` (the GPU synchronised first)."""

    def __init__(self, fn, name, totals, sync):
        self.fn, self.name, self.totals, self.sync = fn, name, totals, sync

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        result = self.fn(*args, **kwargs)
        self.sync()
        self.totals[self.name] = self.totals.get(self.name, 0.0) + time.perf_counter() - start
        return result


class FirstBatches:
    """The trainer's loader cut to its first ``steps`` batches; times the waits for each."""

    def __init__(self, loader, steps, totals, step_ends):
        self.loader, self.steps, self.totals, self.step_ends = loader, steps, totals, step_ends

    def __len__(self):
        return self.steps

    def epoch(self, epoch, start=0):
        batches = self.loader.epoch(epoch, start)
        for _ in range(start, self.steps):
            waited = time.perf_counter()
            item = next(batches)
            self.totals["waiting for data"] = self.totals.get("waiting for data", 0.0) + time.perf_counter() - waited
            yield item
            self.step_ends.append(time.perf_counter())
        batches.close()


def train_from_file(model, train, val, out, batch, steps, sync):
    """The training program's loop for ``steps`` steps, a checkpoint and a validation pass ->
    (seconds per part, the end time of every step)."""
    config = {"num_classes": CLASSES}
    trainer = Trainer(model, config, train, val, out, recipe=replace(PAPER, batch_size=batch), epochs=1,
                      ten_crop_every=0)
    totals, step_ends = {}, []
    trainer.loader = FirstBatches(trainer.loader, steps, totals, step_ends)
    trainer.augmenter.train_batch = Timed(trainer.augmenter.train_batch, "augmentation and copy to the device",
                                          totals, sync)
    trainer.save = Timed(trainer.save, "checkpoint", totals, sync)
    trainer.validate = Timed(trainer.validate, "validation pass (centre crops)", totals, sync)
    started = time.perf_counter()
    trainer.train()
    totals["whole run"] = time.perf_counter() - started
    return totals, [started] + step_ends


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help='"cpu" (default) or a GPU id')
    p.add_argument("--batch", type=int, help="default: 32 on the CPU, 128 on a GPU")
    p.add_argument("--steps", type=int, help="timed steps (default: 12 on the CPU, 100 on a GPU)")
    p.add_argument("--images", type=int, default=20000, help="training images in the file (default 20,000)")
    p.add_argument("--val-images", type=int, help="validation images (default: 128 on the CPU, 2,000 on a GPU)")
    p.add_argument("--data", type=Path, default=Path("data/end-to-end"), help="where the file is made (kept)")
    p.add_argument("--out", type=Path, default=Path("runs/end-to-end"), help="the checkpoint's folder")
    p.add_argument("--cached", action="store_true", help="leave the file in the page cache")
    args = p.parse_args()
    try:
        device = parse_devices(args.device)
    except ValueError as error:
        p.error(f"--device {error}")
    if isinstance(device, tuple):
        p.error("--device takes one device: the benchmark trains both columns on it")
    gpu = device != "cpu"
    batch = args.batch or (128 if gpu else 32)
    steps = args.steps or (100 if gpu else 12)
    if min(batch, steps, args.images) < 1 or args.images < batch * (steps + 2):
        p.error(f"--batch, --steps and --images must be positive, with --images at least batch x (steps + 2) = "
                f"{batch * (steps + 2)}")
    settings = engines.tune_process()   # as the training program does
    if gpu:
        import cupy

        def sync():
            cupy.cuda.Device(device).synchronize()
    else:
        def sync():
            pass

    print(f"end to end: the full AlexNet at batch {batch} on {device} "
          f"({'GPU ' + str(device) if gpu else cpu_name()}, {os.cpu_count()} logical CPUs)")
    print("  process settings: " + "; ".join(settings))
    train, val = make_data(args.data, args.images, args.val_images or (2000 if gpu else 128))
    with on_device(device):
        model = AlexNet(num_classes=CLASSES, devices=device, seed=0)
    print(f"  {engines.describe(model)}")
    warmup = 2
    sgd = SGD(PAPER.learning_rate, PAPER.momentum, PAPER.weight_decay, engine=model.engine)
    before = bare_steps(model, sgd, batch, warmup + steps // 2, sync)[warmup:]
    if not args.cached:
        drop_from_cache(train.path)
    totals, ends = train_from_file(model, train, val, args.out, batch, warmup + steps, sync)
    after = bare_steps(model, sgd, batch, steps - steps // 2, sync)
    bare = statistics.median(before + after)

    timed = ends[warmup:]            # the steps after the warm-up ones
    loop_seconds = timed[-1] - timed[0]
    step_times = np.diff(timed)
    end_to_end = batch * len(step_times) / loop_seconds
    print(f"\nbare step: median {1e3 * bare:.0f} ms, {batch / bare:.1f} images/s "
          f"({len(before) + len(after)} steps, before and after the training)")
    print(f"end to end: {end_to_end:.1f} images/s over {len(step_times)} steps (median step "
          f"{1e3 * np.median(step_times):.0f} ms): {end_to_end / (batch / bare):.3f} of the bare step")
    whole = totals.pop("whole run")
    steps_all = len(ends) - 1
    parts = {"waiting for data": totals.get("waiting for data", 0.0),
             "augmentation and copy to the device": totals.get("augmentation and copy to the device", 0.0)}
    parts["training step (forward, backward, SGD)"] = (ends[-1] - ends[0]) - sum(parts.values())
    parts["checkpoint"] = totals.get("checkpoint", 0.0)
    parts["validation pass (centre crops)"] = totals.get("validation pass (centre crops)", 0.0)
    parts["other"] = whole - sum(parts.values())
    print(f"\nwhere the whole run's {whole:.1f} s went ({steps_all} steps, then a checkpoint and a validation "
          f"pass of {len(val):,} images):")
    for name, seconds in parts.items():
        print(f"  {name:40} {seconds:7.2f} s  {100 * seconds / whole:5.1f}%")
    read_bytes = steps_all * batch * SIZE * SIZE * 3
    print(f"\ndata read for training: {read_bytes / 1e6:.0f} MB in {ends[-1] - ends[0]:.1f} s, "
          f"{read_bytes / 1e6 / (ends[-1] - ends[0]):.1f} MB/s ({'from the page cache' if args.cached else 'from the disk: its pages were dropped from the cache first'})")


if __name__ == "__main__":
    sys.exit(main())
