"""How fast the input pipeline feeds the network: reading batches from a prepared file,
and reading plus the training augmentation (crop, flip, PCA colour noise, mean).

    python bench/loader.py DATA/train.h5 [--crop 227] [--batch 128] [--device cpu|0]

Compare the images per second with a training step's (bench/benchmark.py): the loader
should be many times faster. "read (h5py)" reads each image through h5py, "read" copies
its bytes straight from the file (what PreparedSplit does for the files tinyalex writes).
Run it twice: the first pass may read from disk, the second from the operating system's
page cache.
"""

import argparse
import time
from pathlib import Path

from tinyalex.backend import on_device, parse_devices
from tinyalex.data import Augmenter, BatchLoader, PreparedSplit, batch_rng


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train_h5", type=Path, help="a prepared training split (train.h5)")
    p.add_argument("--crop", type=int, default=227)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--device", default="cpu", help='"cpu" or a GPU id: where the augmentation runs')
    args = p.parse_args()
    device = parse_devices(args.device)
    split, through_h5py = PreparedSplit(args.train_h5), PreparedSplit(args.train_h5, raw=False)
    augmenter = Augmenter(*split.statistics(), device=device, crop=args.crop)
    print(f"{args.train_h5}: {len(split)} images of {split.stored_size} pixels, batch {args.batch}, "
          f"crops of {args.crop}, augmentation on {device}")
    if split.descriptor is None:
        print("  (this file is not stored one raw image per chunk: both reads go through h5py)")
    for label, source, augment in (("read (h5py)", through_h5py, False), ("read", split, False),
                                   ("read + augment", split, True)):
        loader = BatchLoader(source, args.batch, seed=0)
        count, start = 0, time.perf_counter()
        for index, (images, labels) in loader.epoch(0):
            if augment:
                x = augmenter.train_batch(images, batch_rng(0, 0, index))
                if device != "cpu":
                    with on_device(device):
                        x.device.synchronize()
            count += len(labels)
        seconds = time.perf_counter() - start
        print(f"  {label:15s} {count / seconds:8.0f} images/s  ({count} images in {seconds:.1f} s)")


if __name__ == "__main__":
    main()
