"""Classify image files with a trained AlexNet: the five most probable classes of each.

    python examples/predict.py CHECKPOINT IMAGE [IMAGE ...] (--data DIR | --train-h5 FILE)
                               [--top 5] [--center-only] [--devices cpu|0|0,1]
    python examples/predict.py --caffemodel FILE [--synset-words FILE] [--mean FILE] IMAGE [IMAGE ...]
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

--caffemodel FILE: classify with a trained Caffe model of the paper's net instead, such as
    Caffe's bvlc_alexnet.caffemodel (tinyalex/caffe.py, docs/results.md); every positional
    argument is then an image. Each image is prepared as Caffe's deploy did: resized to
    256 x 256 (the aspect ratio is not kept), Caffe's mean pixel subtracted (or the mean
    image of --mean FILE, Caffe's imagenet_mean.binaryproto). The classes are
    named from --synset-words FILE (Caffe's synset_words.txt, one "wnid name" a line in the
    order of the outputs), or printed as "class k".

A file that cannot be read as an image is reported (naming it) and skipped; the others are
still classified, and the exit status is then 1.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from tinyalex import DatasetError, caffe
from tinyalex.backend import parse_devices, to_numpy
from tinyalex.data import Augmenter, PreparedSplit
from tinyalex.datasets.images import load_image
from tinyalex.layers.loss import softmax
from tinyalex.training import CheckpointError, model_from_checkpoint


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="checkpoint.npz of a training run (with --caffemodel: an image)")
    p.add_argument("images", type=Path, nargs="*", help="image files (JPEG, PNG, ...)")
    p.add_argument("--caffemodel", type=Path, help="a trained Caffe model of the paper's net, e.g. bvlc_alexnet.caffemodel")
    p.add_argument("--mean", type=Path,
                   help="with --caffemodel: Caffe's imagenet_mean.binaryproto, to subtract its mean image "
                        "instead of its mean pixel")
    p.add_argument("--synset-words", type=Path, help="with --caffemodel: Caffe's synset_words.txt, to name the classes")
    training = p.add_mutually_exclusive_group()
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
    except (DatasetError, CheckpointError, caffe.CaffeModelError) as error:
        raise SystemExit(f"error: {error}")


def run(args):
    if args.top < 1:
        raise SystemExit(f"--top must be at least 1, not {args.top}")
    if args.caffemodel is not None:
        return run_caffemodel(args)
    if args.train_h5 is None and args.data is None:
        raise SystemExit("give the prepared training split with --data DIR or --train-h5 FILE")
    if not args.images:
        raise SystemExit("give at least one image file after the checkpoint")
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

    return classify(args.images, lambda path: load_image(path, size=train.stored_size), model, augmenter,
                    train.class_names, top, not args.center_only)


def run_caffemodel(args):
    """The images (every positional argument) classified by a caffemodel, prepared as Caffe's deploy did."""
    if args.data is not None or args.train_h5 is not None:
        raise SystemExit("--caffemodel brings its own mean and classes: --data and --train-h5 are not used with it")
    images = [args.checkpoint, *args.images]
    try:
        devices = parse_devices(args.devices)
    except ValueError as error:
        raise SystemExit(f"--devices {error}")
    model = caffe.load_caffemodel(args.caffemodel, devices)
    names = [f"class {k}" for k in range(model.num_classes)]
    if args.synset_words is not None:
        names = caffe.read_synset_words(args.synset_words)[1]
        if len(names) != model.num_classes:
            raise SystemExit(f"error: {args.synset_words} names {len(names)} classes, the model has "
                             f"{model.num_classes} outputs")
    mean_image = caffe.read_mean_binaryproto(args.mean) if args.mean is not None else None
    augmenter = caffe.caffe_augmenter(device=model.devices[0], mean_image=mean_image)
    return classify(images, caffe.load_image_like_caffe, model, augmenter, names, min(args.top, model.num_classes),
                    not args.center_only)


def classify(paths, load, model, augmenter, class_names, top, ten_crop):
    """Print the ``top`` classes of every image ``load(path)`` gives; 1 if any could not be read."""
    how = "ten crops" if ten_crop else "centre crop"
    failed = []
    for path in paths:
        try:
            image = load(path)
        except Exception as error:  # anything Pillow raises for a missing, broken or non-image file
            print(f"error: {path}: cannot read it as an image ({type(error).__name__}: {error})", file=sys.stderr)
            failed.append(path)
            continue
        p = class_probabilities(model, augmenter, image, ten_crop)
        print(f"{path} ({how})")
        for k in np.argsort(-p, kind="stable")[:top]:
            print(f"  {100 * p[k]:6.2f}%  {class_names[k]}")
    if failed:
        print(f"{len(failed)} of {len(paths)} files could not be read: {', '.join(map(str, failed))}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
