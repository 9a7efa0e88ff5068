"""Write the built-in data set of shapes and textures, or a picture of it.

    python datasets/synthetic.py OUT_DIR [--classes 10] [--train-per-class 100]
        [--val-per-class 20] [--seed 0]
    python datasets/synthetic.py --montage PNG    (a picture of examples of each class)

OUT_DIR gets ImageNet's folder layout (train/<wnid>/, a flat val/ with
val_ground_truth.txt, words.txt); prepare it with datasets/prepare.py. The images
themselves are drawn by tinyalex.datasets.synthetic, which says how.
"""

import argparse
import sys

from tinyalex.datasets import DatasetError
from tinyalex.datasets.synthetic import CLASSES, make_synthetic_imagenet, save_montage


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python datasets/synthetic.py", description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", nargs="?", help="a new or empty folder to write the data set to")
    parser.add_argument("--classes", type=int, default=10, help=f"number of classes, 1 to {len(CLASSES)}")
    parser.add_argument("--train-per-class", type=int, default=100)
    parser.add_argument("--val-per-class", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--montage", help="instead, save a PNG with examples of each class to this path")
    args = parser.parse_args(argv)
    if not args.out_dir and not args.montage:
        parser.error("give OUT_DIR, or --montage PNG")
    if not 1 <= args.classes <= len(CLASSES):
        parser.error(f"--classes must be from 1 to {len(CLASSES)}, not {args.classes}")
    if args.train_per_class < 1 or args.val_per_class < 1:
        parser.error("--train-per-class and --val-per-class must be at least 1")
    try:
        if args.montage:
            save_montage(args.montage, num_classes=args.classes, seed=args.seed)
        else:
            make_synthetic_imagenet(args.out_dir, args.classes, args.train_per_class, args.val_per_class, args.seed)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
