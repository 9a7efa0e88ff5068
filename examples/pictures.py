"""The paper's pictures of a trained network, for Caffe's trained AlexNet: Figure 3 for real.

    python examples/pictures.py --caffemodel FILE [--data DIR] [--synset-words FILE] [--mean FILE]
                                [--out runs/bvlc_alexnet] [--devices cpu|0|0,1]

--caffemodel FILE: a trained Caffe model of the paper's net, such as Caffe's
    bvlc_alexnet.caffemodel (tinyalex/caffe.py, docs/results.md says where to get it).
--data DIR: a folder with a prepared val.h5 of ImageNet (python datasets/prepare.py), and
    optionally train.h5: with it the pictures of Figure 4 are drawn too.
--synset-words FILE: Caffe's synset_words.txt, the wnids of the model's outputs in order
    (default: the data's 1000 wnids sorted, Caffe's order).
--mean FILE: Caffe's imagenet_mean.binaryproto, whose mean image is subtracted instead of
    Caffe's mean pixel.

Writes into --out:

* conv1_kernels.png: the paper's Figure 3, conv1's 96 kernels, column a's 48 (Caffe's
  first group) above column b's 48, each with the median share of its kernels' variation
  that differs between colours (0: grey, colour-agnostic; 1: colour only). The columns'
  shares are printed too.
* with --data: predictions.png, Figure 4 left (eight validation images, their top five);
  and, when DIR holds train.h5, neighbours.png, Figure 4 right (validation images and the
  training images nearest to them in fc7 space, among an even subset of 2,000).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from tinyalex import DatasetError, caffe, plots
from tinyalex.backend import parse_devices
from tinyalex.data import PreparedSplit


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--caffemodel", type=Path, required=True,
                   help="a trained Caffe model of the paper's net, e.g. bvlc_alexnet.caffemodel")
    p.add_argument("--data", type=Path, help="folder with a prepared val.h5 (and train.h5) of ImageNet: Figure 4")
    p.add_argument("--mean", type=Path,
                   help="with --caffemodel: Caffe's imagenet_mean.binaryproto, to subtract its mean image "
                        "instead of its mean pixel")
    p.add_argument("--synset-words", type=Path, help="Caffe's synset_words.txt: the wnids of the outputs in order")
    p.add_argument("--out", type=Path, default=Path("runs/bvlc_alexnet"), help="where the pictures go")
    p.add_argument("--devices", default=None,
                   help='"cpu", a GPU id such as 0, or two ids such as 0,1 (default: the first GPU, else the CPU)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except (DatasetError, caffe.CaffeModelError) as error:
        raise SystemExit(f"error: {error}")


def run(args):
    val_path = None
    if args.data is not None:
        val_path = args.data / "val.h5"
        if not val_path.is_file():
            raise SystemExit(f"{val_path}: no such file (--data is a folder holding a prepared val.h5)")
    try:
        devices = parse_devices(args.devices)
    except ValueError as error:
        raise SystemExit(f"--devices {error}")
    model = caffe.load_caffemodel(args.caffemodel, devices)

    paths = [plots.plot_conv1_kernels(model, args.out / "conv1_kernels.png")]
    kernels = plots.conv1_weights(model)
    half = len(kernels) // 2
    for column, block in (("a", kernels[:half]), ("b", kernels[half:])):
        shares = plots.colour_shares(block)
        print(f"column {column}: colour share of conv1's kernels, median {np.median(shares):.2f} "
              f"(quartiles {np.quantile(shares, 0.25):.2f} to {np.quantile(shares, 0.75):.2f})")

    if val_path is not None:
        val = PreparedSplit(val_path)
        order = caffe.read_synset_words(args.synset_words)[0] if args.synset_words is not None else None
        caffe.match_classes(model, val.wnids, order)
        augmenter = caffe.caffe_augmenter(val.stored_size, device=model.devices[0], crop=model.image_size,
                                          mean_image=caffe.read_mean_binaryproto(args.mean) if args.mean else None)
        paths.append(plots.plot_predictions(model, val, augmenter, args.out / "predictions.png", count=8))
        train_path = args.data / "train.h5"
        if train_path.is_file():
            paths.append(plots.plot_neighbours(model, val, PreparedSplit(train_path), augmenter,
                                               args.out / "neighbours.png", queries=5, neighbours=6))
        else:
            print(f"no {train_path}: neighbours.png (Figure 4 right) needs training images to search")
    print("pictures: " + ", ".join(str(path) for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
