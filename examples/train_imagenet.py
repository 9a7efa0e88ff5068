"""Train AlexNet the way the paper does (section 5), on ImageNet or on the built-in data.

    python examples/train_imagenet.py                       # the built-in data set, a small run
    python examples/train_imagenet.py --data DIR            # DIR/train.h5 and DIR/val.h5 (prepared)
    python examples/train_imagenet.py --imagenet ILSVRC/    # prepares ILSVRC/train and ILSVRC/val first
    python examples/train_imagenet.py --resume --out runs/alexnet
    mpirun -n 4 python examples/train_imagenet.py --data DIR   # 4 processes, one model (docs/distributed.md)

Defaults are the paper's recipe: batch 128, learning rate 0.01 divided by 10 when the
validation error stops improving (three times, then stop), momentum 0.9, weight decay
0.0005, at most 90 epochs. Everything lands in --out: checkpoint.npz (after every epoch
and on Ctrl-C, SIGTERM or SIGHUP), metrics.jsonl (one line per epoch) and the plots.

Only one run may write into an --out at a time (a second one stops at once). Bad
arguments, data that is missing or not prepared, an --out that cannot be written and a
checkpoint that cannot be resumed each stop with a one-line message, before anything is
written. docs/training.md has a table of what survives which fault.

Under mpirun, the N processes train one model on shares of every batch (the batch and the
learning rate stay as given); process l of a machine takes the GPU(s) --devices names
shifted by l (by 2l for two columns per process); only process 0 prints and writes.
Processes given different data stop at the start, and a process that waits longer than
--wait-limit seconds for the others ends the job with a message.
"""

import argparse
import errno
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from tinyalex import PAPER, AlexNet, DatasetError
from tinyalex.backend import parse_devices
from tinyalex.data import PreparedSplit
from tinyalex.datasets.prepare import prepare_imagenet
from tinyalex.locking import FolderInUse, folder_lock
from tinyalex.model import DROPPABLE_CONVS, removal_refused
from tinyalex import builtin, distributed, engines, plots
from tinyalex.data import PCA_NOISE_STD
from tinyalex.training import (CHECKPOINT, CheckpointError, Interrupted, StoppedAtOnce, Trainer,
                               TrainingDiverged, check_prepared_alike)

NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def int_at_least(minimum):
    """An argparse type: an integer no smaller than ``minimum``."""
    def parse(text):
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value
    return parse


def positive_float(text):
    value = float(text)
    if not value > 0 or value == float("inf"):  # "not >" also refuses NaN
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def seconds(text):
    value = float(text)
    if not value >= 0 or value == float("inf"):  # "not >=" also refuses NaN
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more, not {text}")
    return value


def pool_setting(text):
    """"2,2" or "2x2" -> (2, 2): the max-pooling's window size and stride."""
    try:
        size, stride = (int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give SIZE,STRIDE such as 3,2 (the paper's) or 2,2, not {text!r}") from None
    if size < 1 or stride < 1:
        raise argparse.ArgumentTypeError(f"size and stride must be at least 1, not {text!r}")
    return size, stride


def droppable_conv(name):
    """A middle conv layer that the net can lose (section 7); any other name is refused with the reason."""
    reason = removal_refused(name)
    if reason:
        raise argparse.ArgumentTypeError(reason)
    return name


def ablation_switches(args):
    """The AlexNet settings that the ablation options change (only those given)."""
    switches = {}
    if args.activation != "relu":
        switches["activation"] = args.activation
    if args.no_lrn:
        switches["lrn"] = False
    if args.pool != (3, 2):
        switches["pool"] = args.pool
    if args.columns != 2:
        switches["columns"] = args.columns
    if args.no_dropout:
        switches["dropout"] = 0.0
    if args.drop_conv is not None:
        switches["drop_conv"] = args.drop_conv
    return switches


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="folder with prepared train.h5 and val.h5")
    source.add_argument("--imagenet", type=Path, help="ImageNet folder (train/<wnid>/, val/): prepared into --data-out")
    p.add_argument("--val-labels", type=Path, help="labels file for a flat val/ folder (see docs/data.md)")
    p.add_argument("--val-synsets", type=Path,
                   help="with the ILSVRC-2012 devkit's ground truth: the wnid of each class index (see docs/data.md)")
    p.add_argument("--data-out", type=Path, default=Path("data"),
                   help="where prepared files go (default: data/)")
    p.add_argument("--out", type=Path, default=Path("runs/alexnet"), help="output folder (default: runs/alexnet)")
    p.add_argument("--net", choices=("paper", "builtin"),
                   help="the paper's AlexNet (227-pixel crops; the default with --data or --imagenet), or the "
                        "built-in run's smaller one and its recipe (131-pixel crops of images prepared at 144 or "
                        "more; tinyalex/builtin.py): for CIFAR-10, an ImageNet subset or a CPU"),
    p.add_argument("--devices", default=None,
                   help='"cpu", a GPU id such as 0, or two ids such as 0,1 (default: the first GPU, else the CPU)')
    p.add_argument("--epochs", type=int_at_least(1), help=f"at most this many epochs (default: {PAPER.max_epochs})")
    p.add_argument("--batch-size", type=int_at_least(1), help=f"default: {PAPER.batch_size}")
    p.add_argument("--lr", type=positive_float,
                   help=f"initial learning rate (default: {PAPER.learning_rate}); with --resume, a new rate "
                        "if it differs from the one the run was given")
    p.add_argument("--positive-bias", type=float,
                   help="bias of conv2, conv4, conv5, fc6, fc7 (the paper's 1 by default; Caffe's port: 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ten-crop-every", type=int_at_least(0),
                   help="validate on ten crops every N epochs (0: only after the last; default: 1)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--adaptive-threads", action="store_true",
                   help="on a machine shared with other programs: NumPy's BLAS on one thread while they slow "
                        "the steps, on every core otherwise, chosen by timing the steps (faster under load, but "
                        "the numbers then depend on the load: a run is no longer repeatable to the last bit; "
                        "with the two columns side by side, as the fast engine runs them on a CPU with two or "
                        "more cores, BLAS has one thread in each already)")
    p.add_argument("--wait-limit", type=seconds, default=distributed.WAIT_LIMIT_SECONDS, metavar="SECONDS",
                   help="under mpirun: end the job, with a message, when a process waits this long for the "
                        f"others (default: {distributed.WAIT_LIMIT_SECONDS:g}; 0: no limit)")
    ablation = p.add_argument_group("the paper's ablations (each default is the paper's; see examples/ablations.py)")
    ablation.add_argument("--activation", choices=("relu", "tanh"), default="relu", help="section 3.1")
    ablation.add_argument("--no-lrn", action="store_true", help="no local response normalization (3.3)")
    ablation.add_argument("--pool", type=pool_setting, default=(3, 2), metavar="SIZE,STRIDE",
                          help="max-pooling window and stride: 3,2 overlapping (default), 2,2 not (3.4)")
    ablation.add_argument("--columns", type=int, choices=(1, 2), default=2,
                          help="2 columns (default) or 1 column holding every kernel, no crossings (3.2)")
    ablation.add_argument("--no-pca", action="store_true", help="no PCA colour noise (4.1)")
    ablation.add_argument("--no-dropout", action="store_true", help="no dropout (4.2)")
    ablation.add_argument("--drop-conv", type=droppable_conv, metavar="LAYER",
                          help=f"remove a middle conv layer: {' or '.join(DROPPABLE_CONVS)}, the one whose "
                               "removal keeps every crossing of the columns (7)")
    return p.parse_args(argv)


def prepare_data(args):
    """(train split, val split, model settings, recipe settings, epochs, ten_crop_every) for the
    chosen data; the last four are None or empty where the paper's defaults apply."""
    if args.data is not None:
        folder = args.data
    elif args.imagenet is not None:
        prepare_imagenet(args.imagenet, args.data_out, val_labels=args.val_labels, val_synsets=args.val_synsets)
        folder = args.data_out
    else:
        print("No data given: training a smaller AlexNet on the built-in data set, because")
        for reason in builtin.REASONS:
            print(f"  - {reason}")
        train, val = builtin.data(args.data_out)
        return (train, val, builtin.model_settings(**ablation_switches(args)), dict(builtin.RECIPE),
                builtin.EPOCHS, builtin.TEN_CROP_EVERY)
    train, val = PreparedSplit(folder / "train.h5"), PreparedSplit(folder / "val.h5")
    if val.wnids != train.wnids:
        raise SystemExit(f"error: {folder}: train.h5 and val.h5 have different classes")
    if args.net == "builtin":
        return (train, val, builtin.model_settings(**ablation_switches(args)), dict(builtin.RECIPE), builtin.EPOCHS,
                builtin.TEN_CROP_EVERY)
    return train, val, ablation_switches(args), {}, None, None


def check_output_folder(out, needed_bytes):
    """Stop now, with a message, if ``out`` cannot take a run's files; nothing is left behind.

    Checked at the start so that a read-only or full disk, or a file in the way, is found
    before an epoch of training rather than after it.
    """
    if out.exists() and not out.is_dir():
        raise SystemExit(f"error: --out {out} is a file; give a folder")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"tinyalex")
        probe.unlink()
        free = shutil.disk_usage(out).free
        if free < needed_bytes:
            raise SystemExit(f"error: --out {out} has {free / 1e6:.0f} MB free, and a checkpoint needs about "
                             f"{needed_bytes / 1e6:.0f} MB; make room or choose another --out")
    except OSError as error:
        raise SystemExit(f"error: --out {out} cannot be written ({error.strerror}); choose another folder")
    except SystemExit:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except (DatasetError, CheckpointError, FolderInUse) as error:
        raise SystemExit(f"error: {error}")


def run(args):
    start = time.perf_counter()
    comm = distributed.launch(args.wait_limit)   # one process alone, or one of several started by mpirun
    distributed.quiet_unless_root(comm)
    process_settings = engines.tune_process()   # made once, for this program, and printed below
    # rank 0's disk decides, and rank 0 prepares the data; the others open it when it is ready
    if args.resume and not comm.broadcast((args.out / CHECKPOINT).is_file()):
        raise CheckpointError(f"{args.out / CHECKPOINT} does not exist, so there is nothing to resume; "
                              "start a new run without --resume")
    if not comm.is_root:
        comm.barrier(limit=False)          # preparing ImageNet takes hours
    train, val, model_settings, recipe_settings, epochs, ten_crop_every = prepare_data(args)
    if comm.is_root:
        comm.barrier(limit=False)
    different = comm.check_same_data(train, val)
    if different:                          # every process knows; all end here, process 0 says why
        if comm.is_root:
            print(f"error: {different}", file=sys.stderr)
        return 1
    check_prepared_alike(train, val)
    if args.ten_crop_every is not None:
        ten_crop_every = args.ten_crop_every
    elif ten_crop_every is None:
        ten_crop_every = 1
    if args.lr is not None:
        recipe_settings["learning_rate"] = args.lr
    if args.batch_size is not None:
        recipe_settings["batch_size"] = args.batch_size
    recipe = replace(PAPER, **recipe_settings)
    epochs = args.epochs if args.epochs is not None else (epochs or recipe.max_epochs)
    model_config = {"num_classes": train.num_classes, "seed": args.seed, **model_settings}
    if args.positive_bias is not None:
        model_config["positive_bias"] = args.positive_bias
    crop = model_config.get("image_size", 227)
    if train.stored_size < crop:
        raise SystemExit(f"error: {train.path} holds {train.stored_size}-pixel images, smaller than the "
                         f"{crop}-pixel crops")
    if len(train) < recipe.batch_size:
        raise SystemExit(f"error: {train.path} holds {len(train)} images, fewer than one batch of "
                         f"{recipe.batch_size}; give a smaller --batch-size")

    try:
        devices = parse_devices(args.devices)
    except ValueError as error:
        raise SystemExit(f"--devices {error}")
    try:
        devices = distributed.process_devices(devices, comm.local_rank)
    except ValueError as error:
        raise SystemExit(f"--devices {args.devices}: {error}")
    comm = distributed.for_devices(comm, devices)  # NCCL for the gradients when they are on GPUs
    model = AlexNet(devices=devices, **model_config)
    if not comm.is_root:  # rank 0 alone checks and locks --out: it alone writes there
        return train_and_report(args, comm, model, model_config, train, val, recipe, epochs, ten_crop_every, start)
    print("process settings: " + "; ".join(process_settings))
    # weights and momentum in float32, written beside the previous checkpoint
    check_output_folder(args.out, needed_bytes=2 * 8 * model.num_parameters())
    with folder_lock(args.out, "a training run"):
        if not args.resume and (args.out / CHECKPOINT).exists():
            raise SystemExit(f"error: {args.out / CHECKPOINT} exists: add --resume to continue it, or choose "
                             "another --out")
        return train_and_report(args, comm, model, model_config, train, val, recipe, epochs, ten_crop_every, start)


def train_and_report(args, comm, model, model_config, train, val, recipe, epochs, ten_crop_every, start):
    """Resume or start, train, and write the summary and pictures (with --out locked)."""
    print(f"{model}: {model.num_parameters():,} parameters; {len(train):,} training and {len(val):,} "
          f"validation images in {train.num_classes} classes")
    print(engines.describe(model))
    if comm.size > 1:
        shares = sorted({stop - start for start, stop in
                         (distributed.batch_share(recipe.batch_size, r, comm.size) for r in range(comm.size))})
        print(f"{comm.size} processes ({comm.name} all-reduce), each training on "
              f"{' or '.join(map(str, shares))} images of every batch of {recipe.batch_size}")
    # the curves are redrawn after every epoch; the slower pictures once, at the end
    redraw_curves = None if args.no_plots else (lambda t: plots.plot_curves(t.history, t.out_dir / "curves.png"))
    switches = ablation_switches(args)
    if switches or args.no_pca:
        print("ablation: " + ", ".join([f"{key}={value}" for key, value in switches.items()]
                                       + (["no PCA colour noise"] if args.no_pca else [])))
    trainer = Trainer(model, model_config, train, val, args.out, recipe=recipe, epochs=epochs, seed=args.seed,
                      ten_crop_every=ten_crop_every, after_epoch=redraw_curves, communicator=comm,
                      pca_std=0.0 if args.no_pca else PCA_NOISE_STD,
                      blas_threads=engines.BlasThreads() if args.adaptive_threads else None)
    if args.adaptive_threads:
        print(trainer.blas_threads.describe())
    if args.resume:
        meta = trainer.resume()
        print(f"resuming from {args.out / CHECKPOINT}: epoch {meta['epoch'] + 1}, batch {meta['batch']}")
        if trainer.other_data(meta):
            print(trainer.other_data(meta))
        # the same command again (the advice after a stop) keeps the schedule's divided rate
        if args.lr is not None and args.lr != trainer.lr_given:
            print(f"learning rate set to {args.lr} by --lr (the checkpoint's was {trainer.sgd.lr:g})")
            trainer.sgd.lr = trainer.schedule.lr = trainer.lr_given = args.lr
        elif args.lr is not None and args.lr != trainer.sgd.lr:
            print(f"--lr {args.lr} is the rate this run was given: going on with the schedule's {trainer.sgd.lr:g}")
    print(f"recipe: batch {recipe.batch_size}, lr {trainer.sgd.lr:g}, momentum {recipe.momentum}, "
          f"weight decay {recipe.weight_decay}, at most {epochs} epochs; output in {args.out}")

    try:
        history = trainer.train()
    except Interrupted as stop:
        print(f"{stop}; continue with the same command and --resume", flush=True)
        return 128 + stop.signum           # as a shell reports a process ended by that signal
    except StoppedAtOnce as stop:
        kept = (f"the last checkpoint, {args.out / CHECKPOINT}, is intact" if (args.out / CHECKPOINT).exists()
                else "no checkpoint was written")
        raise SystemExit(f"error: {stop}; {kept}")
    except TrainingDiverged as error:
        print(f"training stopped: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        if error.errno not in NO_SPACE:
            raise
        kept = ("the previous checkpoint is intact. Make room, then run the same command with --resume"
                if (args.out / CHECKPOINT).exists() else "no checkpoint was written. Make room and start again")
        raise SystemExit(f"error: no space left in {args.out} ({error.strerror}) while writing the checkpoint; {kept}")
    last = history[-1] if history else {}
    if last and "val_top1_error_10crop" not in last:
        final = trainer.validate(ten_crop=True, description="ten crops")
        last.update({f"val_{k}": v for k, v in final.items()})
    if not comm.is_root:
        return 0
    if last and not args.no_plots:
        paths = plots.draw_all(model, history, train, val, trainer.augmenter, args.out)
        print("pictures: " + ", ".join(str(p) for p in paths.values()))
    summary = {"wall_seconds": round(time.perf_counter() - start, 1), "epochs": trainer.epoch, **last}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if last:
        print(f"done in {summary['wall_seconds']:.0f} s: validation top-1 error {last['val_top1_error']:.1f}% "
              f"(chance: {100 * (1 - 1 / train.num_classes):.1f}%), top-5 {last['val_top5_error']:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(distributed.run_or_abort(main))
