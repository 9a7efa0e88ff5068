"""Classify image files with a trained AlexNet: the five most probable classes of each.

    python examples/predict.py CHECKPOINT IMAGE [IMAGE ...] (--data DIR | --train-h5 FILE)
                               [--top 5] [--center-only] [--devices cpu|0|0,1]

CHECKPOINT: a checkpoint.npz written by examples/train_imagenet.py.
--data DIR or --train-h5 FILE: the prepared training split the network was trained on
    (DIR/train.h5). It is needed for three things the checkpoint does not hold: the mean
    training image that is subtracted from every input, the size S the images were
    prepared at, and the readable class names.

Each image goes through the same preparation as the training images
(tinyalex/datasets/images.py: turned upright as its EXIF tag says, shorter side scaled to S,
central S x S square), then the softmax is averaged over the ten crops of the paper's test
procedure (four corners, the centre, and their mirror images,
section 4.1), or taken from the centre crop alone with --center-only. Output:

    cat.jpg (ten crops)
       91.40%  tabby, tabby cat
        4.02%  tiger cat
       ...

A file that cannot be read as an image is reported (naming it) and skipped; the others are
still classified, and the exit status is then 1.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from tinyalex import DatasetError
from tinyalex.backend import parse_devices, to_numpy
from tinyalex.data import Augmenter, PreparedSplit
from tinyalex.datasets.images import load_image
from tinyalex.layers.loss import softmax
from tinyalex.training import CheckpointError, model_from_checkpoint


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="checkpoint.npz of a training run")
    p.add_argument("images", type=Path, nargs="+", help="image files (JPEG, PNG, ...)")
    training = p.add_mutually_exclusive_group(required=True)
    training.add_argument("--data", type=Path, help="folder with the prepared train.h5 the network was trained on")
    training.add_argument("--train-h5", type=Path, help="the prepared train.h5 the network was trained on")
    p.add_argument("--top", type=int, default=5, help="how many classes to print per image (default: 5)")
    p.add_argument("--center-only", action="store_true", help="the centre crop only, instead of ten crops")
    p.add_argument("--devices", default=None,
                   help='"cpu", a GPU id such as 0, or two ids such as 0,1 (default: the first GPU, else the CPU)')
    return p.parse_args(argv)


def class_probabilities(model, augmenter, image, ten_crop):
    """One prepared image (S, S, 3) uint8 -> softmax probabilities (num_classes,), averaged
    over the ten crops or from the centre crop."""
    batch = image[None]
    crops = augmenter.ten_crops(batch) if ten_crop else [augmenter.center_crop(batch)]
    probabilities = [softmax(to_numpy(model.forward(x, train=False)).astype(np.float64)) for x in crops]
    return np.mean(probabilities, axis=0)[0]


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except (DatasetError, CheckpointError) as error:
        raise SystemExit(f"error: {error}")


def run(args):
    if args.top < 1:
        raise SystemExit(f"--top must be at least 1, not {args.top}")
    if not args.checkpoint.is_file():
        raise SystemExit(f"{args.checkpoint}: no such checkpoint file")
    train_path = args.train_h5 if args.train_h5 is not None else args.data / "train.h5"
    if not train_path.is_file():
        raise SystemExit(f"{train_path}: no such file (the prepared training split is needed for its mean image "
                         "and class names)")
    try:
        devices = parse_devices(args.devices)
    except ValueError as error:
        raise SystemExit(f"--devices {error}")
    model, meta = model_from_checkpoint(args.checkpoint, devices=devices)
    train = PreparedSplit(train_path)
    if train.wnids != meta["classes"]:
        raise SystemExit(f"{args.checkpoint} was trained on other classes than {train_path} holds: "
                         "its outputs would be given the wrong names")
    if train.stored_size < model.image_size:
        raise SystemExit(f"error: {train_path} holds {train.stored_size}-pixel images, smaller than the network's "
                         f"{model.image_size}-pixel crops: it is not the data this network was trained on")
    augmenter = Augmenter(*train.statistics(), device=model.devices[0], crop=model.image_size)
    top = min(args.top, model.num_classes)
    how = "centre crop" if args.center_only else "ten crops"

    failed = []
    for path in args.images:
        try:
            image = load_image(path, size=train.stored_size)
        except Exception as error:  # anything Pillow raises for a missing, broken or non-image file
            print(f"error: {path}: cannot read it as an image ({type(error).__name__}: {error})", file=sys.stderr)
            failed.append(path)
            continue
        p = class_probabilities(model, augmenter, image, ten_crop=not args.center_only)
        print(f"{path} ({how})")
        for k in np.argsort(-p, kind="stable")[:top]:
            print(f"  {100 * p[k]:6.2f}%  {train.class_names[k]}")
    if failed:
        print(f"{len(failed)} of {len(args.images)} files could not be read: {', '.join(map(str, failed))}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
