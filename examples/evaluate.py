"""Measure a trained AlexNet's top-1 and top-5 error on prepared validation data (section 6).

    python examples/evaluate.py CHECKPOINT DATA [--train-h5 FILE] [--devices cpu|0|0,1]
                                [--batch-size 128] [--no-ten-crop] [--json FILE]
    python examples/evaluate.py --caffemodel FILE DATA [--synset-words FILE] [--mean FILE] [...]

CHECKPOINT: a checkpoint.npz written by examples/train_imagenet.py.
DATA: a prepared val.h5 (python datasets/prepare.py), or the folder holding it.

The network sees the validation images as the paper's test procedure shows them: the mean
training image is subtracted, then it classifies the centre crop (227 x 227 for the paper's
net) and, unless --no-ten-crop, averages the softmax over ten crops (four corners, the
centre, and their mirror images; section 4.1). Both results are printed. The mean image
lives in the training split's file: by default the train.h5 beside val.h5, else the one
given with --train-h5. The checkpoint must have been trained on the classes (wnids) of
these files, in the same order.

Prints a table like

                      top-1 error   top-5 error
    centre crop            42.10%        19.60%
    ten crops              40.80%        18.50%

and with --json FILE also writes the numbers (in percent) to FILE.

--caffemodel FILE evaluates a trained Caffe model of the paper's net instead of a
checkpoint, such as Caffe's bvlc_alexnet.caffemodel (tinyalex/caffe.py), on DATA prepared
from the ILSVRC-2012 validation set: the images get Caffe's mean pixel instead of a
train.h5's mean image, and the model's outputs are put in the order of the data's classes
(Caffe's outputs are the 1000 wnids sorted, or in the order of --synset-words FILE);
--mean FILE subtracts the mean image of Caffe's imagenet_mean.binaryproto instead, as Caffe
did when it measured bvlc_alexnet. Caffe
published 57.1% top-1 and 80.2% top-5 accuracy (42.9% and 19.8% error) for bvlc_alexnet's
centre crop; the program prints them beside its own numbers.
"""

import argparse
import json
import sys
from pathlib import Path

from tinyalex import DatasetError, caffe
from tinyalex.backend import parse_devices
from tinyalex.data import Augmenter, PreparedSplit
from tinyalex.training import CheckpointError, evaluate, model_from_checkpoint


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, nargs="?", help="checkpoint.npz of a training run")
    p.add_argument("data", type=Path, help="a prepared val.h5, or the folder holding it")
    p.add_argument("--train-h5", type=Path,
                   help="the prepared train.h5 whose mean image the network was trained with "
                        "(default: train.h5 beside val.h5)")
    p.add_argument("--devices", default=None,
                   help='"cpu", a GPU id such as 0, or two ids such as 0,1 (default: the first GPU, else the CPU)')
    p.add_argument("--batch-size", type=int, default=128, help="images per forward pass (default: 128)")
    p.add_argument("--no-ten-crop", action="store_true", help="only the centre crop (ten times less work)")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument("--caffemodel", type=Path, help="evaluate a trained Caffe model (bvlc_alexnet.caffemodel) instead")
    p.add_argument("--mean", type=Path,
                   help="with --caffemodel: Caffe's imagenet_mean.binaryproto, to subtract its mean image "
                        "instead of its mean pixel")
    p.add_argument("--synset-words", type=Path,
                   help="with --caffemodel: Caffe's synset_words.txt, the wnids of its outputs in order "
                        "(default: the data's 1000 wnids sorted)")
    return p.parse_args(argv)


def find_files(data, train_h5):
    """(val.h5 path, train.h5 path) from the command line's DATA and --train-h5."""
    val_path = data / "val.h5" if data.is_dir() else data
    train_path = train_h5 if train_h5 is not None else val_path.with_name("train.h5")
    if not val_path.exists():
        raise SystemExit(f"{val_path}: no such file (DATA is a prepared val.h5 or the folder holding it)")
    if not train_path.exists():
        raise SystemExit(f"{train_path}: no such file. The mean training image is needed to feed the network; "
                         "give the prepared train.h5 with --train-h5")
    return val_path, train_path


def check_classes(checkpoint_classes, split, checkpoint):
    """Stop with a clear message unless ``split`` holds the classes (wnids) the network was trained on."""
    if split.wnids == checkpoint_classes:
        return
    if len(split.wnids) != len(checkpoint_classes):
        detail = f"{len(checkpoint_classes)} classes in the checkpoint, {len(split.wnids)} in the data"
    else:
        i = next(i for i, (a, b) in enumerate(zip(checkpoint_classes, split.wnids)) if a != b)
        detail = f"class {i} is {checkpoint_classes[i]} in the checkpoint but {split.wnids[i]} in the data"
    raise SystemExit(f"{checkpoint} was trained on other classes than {split.path} holds ({detail}); "
                     "labels would be compared with the wrong outputs")


def trained(meta):
    """How far the checkpoint's training got, e.g. "12 epochs" or "3 epochs and 250 batches"."""
    text = f"{meta['epoch']} epoch" + ("" if meta["epoch"] == 1 else "s")
    return text + f" and {meta['batch']} batches" if meta.get("batch") else text


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except (DatasetError, CheckpointError, caffe.CaffeModelError) as error:
        raise SystemExit(f"error: {error}")


def print_errors(result):
    print(f"{'':15s} {'top-1 error':>13s} {'top-5 error':>13s}")
    print(f"{'centre crop':15s} {result['top1_error']:12.2f}% {result['top5_error']:12.2f}%")
    if "top1_error_10crop" in result:
        print(f"{'ten crops':15s} {result['top1_error_10crop']:12.2f}% {result['top5_error_10crop']:12.2f}%")


def run(args):
    if args.caffemodel is not None:
        return run_caffemodel(args)
    if args.checkpoint is None:
        raise SystemExit("give a CHECKPOINT and the DATA, or --caffemodel FILE and the DATA")
    if not args.checkpoint.is_file():
        raise SystemExit(f"{args.checkpoint}: no such checkpoint file")
    val_path, train_path = find_files(args.data, args.train_h5)
    if args.json is not None and not args.json.parent.is_dir():   # found now, not after the evaluation
        raise SystemExit(f"error: --json {args.json}: the folder {args.json.parent} does not exist")
    if args.json is not None and args.json.is_dir():
        raise SystemExit(f"error: --json {args.json} is a folder; give a file name")
    try:
        devices = parse_devices(args.devices)
    except ValueError as error:
        raise SystemExit(f"--devices {error}")
    model, meta = model_from_checkpoint(args.checkpoint, devices=devices)
    val, train = PreparedSplit(val_path), PreparedSplit(train_path)
    check_classes(meta["classes"], val, args.checkpoint)
    check_classes(meta["classes"], train, args.checkpoint)
    if val.stored_size != train.stored_size:
        raise SystemExit(f"{val_path} holds {val.stored_size}-pixel images but the mean image of {train_path} "
                         f"is {train.stored_size} pixels: the two were not prepared alike")
    if val.stored_size < model.image_size:
        raise SystemExit(f"{val_path} holds {val.stored_size}-pixel images, smaller than the network's "
                         f"{model.image_size}-pixel crops")

    print(f"{model}, trained for {trained(meta)}; {len(val):,} images of {val_path} in {val.num_classes} classes")
    augmenter = Augmenter(*train.statistics(), device=model.devices[0], crop=model.image_size)
    result = evaluate(model, val, augmenter, args.batch_size, ten_crop=not args.no_ten_crop)

    print_errors(result)
    if args.json is not None:
        report = {"checkpoint": str(args.checkpoint), "data": str(val_path), "images": len(val),
                  "classes": val.num_classes, "trained": trained(meta), **result}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written to {args.json}")
    return 0


def run_caffemodel(args):
    """DATA's val.h5 classified by a caffemodel, its images prepared as Caffe's were."""
    if args.checkpoint is not None:
        raise SystemExit("give either a CHECKPOINT or --caffemodel, not both")
    val_path = args.data / "val.h5" if args.data.is_dir() else args.data
    if not val_path.exists():
        raise SystemExit(f"{val_path}: no such file (DATA is a prepared val.h5 or the folder holding it)")
    try:
        devices = parse_devices(args.devices)
    except ValueError as error:
        raise SystemExit(f"--devices {error}")
    val = PreparedSplit(val_path)
    model = caffe.load_caffemodel(args.caffemodel, devices)
    order = caffe.read_synset_words(args.synset_words)[0] if args.synset_words is not None else None
    caffe.match_classes(model, val.wnids, order)
    if val.stored_size < model.image_size:
        raise SystemExit(f"{val_path} holds {val.stored_size}-pixel images, smaller than the network's "
                         f"{model.image_size}-pixel crops")
    print(f"{args.caffemodel}: {model}; {len(val):,} images of {val_path} in {val.num_classes} classes")
    mean_image = caffe.read_mean_binaryproto(args.mean) if args.mean is not None else None
    augmenter = caffe.caffe_augmenter(val.stored_size, device=model.devices[0], crop=model.image_size,
                                      mean_image=mean_image)
    result = evaluate(model, val, augmenter, args.batch_size, ten_crop=not args.no_ten_crop)
    print_errors(result)
    print(f"{'published':15s} {100 - 57.1:12.1f}% {100 - 80.2:12.1f}%   (Caffe's bvlc_alexnet, centre crop)")
    if args.json is not None:
        report = {"caffemodel": str(args.caffemodel), "data": str(val_path), "images": len(val),
                  "classes": val.num_classes, **result}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
