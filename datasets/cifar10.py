"""Prepare CIFAR-10 (the paper's data for Figure 1) as the HDF5 files the trainer reads.

    python datasets/cifar10.py cifar-10-python.tar.gz OUT_DIR [--size 32]

reads CIFAR-10's python archive (or the cifar-10-batches-py folder it unpacks to) and
writes OUT_DIR/train.h5 (the 50,000 training images, with their mean image and colour
statistics) and OUT_DIR/val.h5 (the 10,000 test images). --size 144 scales the images up
for the built-in run's AlexNet: `python examples/train_imagenet.py --data OUT_DIR --net
builtin`. examples/figure1.py reads the archive itself (--cifar10). docs/data.md says
where to get the file; tinyalex.datasets.cifar10 reads it.
"""

import argparse
import sys

from tinyalex.datasets import DatasetError
from tinyalex.datasets.cifar10 import prepare_cifar10


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python datasets/cifar10.py", description=__doc__.split("\n")[0])
    parser.add_argument("src", help="cifar-10-python.tar.gz, or the cifar-10-batches-py folder")
    parser.add_argument("out_dir", help="where to write train.h5 and val.h5")
    parser.add_argument("--size", type=int, default=32, help="side of the stored images (default 32, CIFAR's own)")
    args = parser.parse_args(argv)
    if args.size < 32:
        parser.error("--size must be at least 32 (CIFAR-10's images are 32x32)")
    try:
        for path in prepare_cifar10(args.src, args.out_dir, size=args.size):
            print(f"wrote {path}")
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
