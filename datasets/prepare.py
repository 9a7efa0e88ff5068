"""Prepare ImageNet, or any folder in its layout, as the HDF5 files the trainer reads.

    python datasets/prepare.py SRC OUT_DIR [--splits train val] [--workers N]
        [--val-labels FILE] [--val-synsets FILE] [--size 256] [--checkpoint-every 1000]

reads SRC/train/<wnid>/*.JPEG and SRC/val/ and writes OUT_DIR/train.h5 and
OUT_DIR/val.h5. Stopped in any way (Ctrl-C, kill -9, a full disk), the same command
continues from its last checkpoint. tinyalex.datasets.prepare does the work and its
docstring says how; docs/data.md describes the folder layout and the file format.
"""

import argparse
import sys

from tinyalex.datasets import DatasetError
from tinyalex.datasets.prepare import SPLITS, prepare_imagenet
from tinyalex.locking import FolderInUse


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python datasets/prepare.py", description=__doc__.split("\n")[0])
    parser.add_argument("src", help="folder holding train/ and val/ in ImageNet's layout")
    parser.add_argument("out_dir", help="where to write <split>.h5")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS))
    parser.add_argument("--workers", type=positive, default=None, help="decoding processes (default: all CPU cores)")
    parser.add_argument("--val-labels", help="labels file of a flat val/ folder: ILSVRC ground truth or CSV")
    parser.add_argument("--val-synsets", help="wnid of each ILSVRC class index, one a line, in index order")
    parser.add_argument("--size", type=positive, default=256, help="side of the square images (default 256)")
    parser.add_argument("--checkpoint-every", type=positive, default=1000, help="files between two checkpoints")
    args = parser.parse_args(argv)
    try:
        prepare_imagenet(args.src, args.out_dir, args.splits, val_labels=args.val_labels,
                         val_synsets=args.val_synsets, size=args.size, workers=args.workers,
                         checkpoint_every=args.checkpoint_every)
    except (DatasetError, FolderInUse) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to continue from the last checkpoint", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
