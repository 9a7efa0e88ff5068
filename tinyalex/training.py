"""The training run (paper, section 5): epochs of SGD, validation, the learning-rate
schedule, checkpoints, and resuming.

One training step is the paper's loop body::

    x = augmenter.train_batch(batch, rng)    # random crop, flip, PCA colour noise, minus mean
    loss = softmax_cross_entropy(model.forward(x), labels)
    model.backward(d loss / d logits)        # fills every gradient
    sgd.step(model.parameters())             # v <- 0.9 v - 0.0005 lr w - lr dL/dw; w <- w + v

After each epoch the validation error drives :class:`~tinyalex.sgd.PlateauSchedule`, and
everything needed to continue -- parameters, momentum, schedule, position, dropout
streams, metrics -- goes into one checkpoint file, written atomically, and only after the
weights and the validation loss are checked to be finite: a diverged model never replaces
a good checkpoint. ``metrics.jsonl`` is rewritten from the checkpoint's history after each
save and on resume, so the two always agree. Ctrl-C, SIGTERM (what a cluster's scheduler
sends before it ends a job) and SIGHUP (a closed terminal) finish the step in progress, write
a checkpoint and stop; ``resume`` continues from it and gives the same result as a run that
was never stopped.
"""

import contextlib
import inspect
import json
import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np

from .backend import to_numpy
from .data import PCA_NOISE_STD, Augmenter, BatchLoader, batch_rng
from .datasets.errors import DataChanged, DatasetError
from .distributed import Communicator, ShareOfSplit, batch_share, data_digest, share_dropout
from .layers import SoftmaxCrossEntropy
from .layers.loss import softmax
from .model import AlexNet
from .progress import progress_bar
from .recipe import PAPER
from .sgd import SGD, PlateauSchedule

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


# The signals that ask a run to stop after the step in progress, with a checkpoint, and the
# names a message gives them
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


class Interrupted(Exception):
    """Training stopped on Ctrl-C, SIGTERM or SIGHUP after writing a checkpoint; ``signum`` is
    the signal (the program exits with 128 + signum, as a shell reports a signal)."""

    def __init__(self, message, signum=signal.SIGINT):
        super().__init__(message)
        self.signum = signum


class StoppedAtOnce(Exception):
    """A second stop signal arrived while the first was being honoured: no new checkpoint."""


class CheckpointError(Exception):
    """A checkpoint that is missing, damaged, not a checkpoint, or of another model or data."""


# Data --------------------------------------------------------------------------------------

def check_prepared_alike(train, val):
    """Raise DatasetError unless ``val`` can be fed as ``train`` is: images stored at the same
    size, and a mean image in ``train`` of that size (subtracted from every crop).

    Otherwise a whole epoch trains before validation fails (val larger), or validation
    quietly subtracts the wrong part of the mean image (val smaller).
    """
    mean_image = train.statistics()[0]
    if val.stored_size != train.stored_size:
        raise DatasetError(f"{val.path} holds {val.stored_size}-pixel images but {train.path} "
                           f"{train.stored_size}-pixel ones: the two were not prepared alike; prepare both "
                           "with the same --size")
    if mean_image.shape != (train.stored_size, train.stored_size, 3):
        raise DatasetError(f"the mean image of {train.path} is {mean_image.shape[0]}x{mean_image.shape[1]} but "
                           f"its images are {train.stored_size}x{train.stored_size}: prepare it again")


# Checkpoints -------------------------------------------------------------------------------

def save_checkpoint(path, arrays, meta):
    """Write arrays and JSON metadata to ``path`` atomically.

    The file is written under a temporary name, flushed to disk, and renamed over the old
    checkpoint in one step (os.replace), so a crash at any moment leaves either the old
    checkpoint or the new one, never a mixture.
    """
    path = Path(path)
    scratch = path.with_name(path.name + ".writing")
    try:
        with open(scratch, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)  # a save that failed (a full disk) leaves no half file


def load_checkpoint(path):
    """(arrays, meta) from a file written by :func:`save_checkpoint`.

    Raises CheckpointError, with a one-line reason, for a missing file and for anything
    that is not a whole checkpoint (cut short, another kind of file). Never loads pickled
    objects: a file of unknown origin could run code.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files if key != "meta"}
            meta = json.loads(str(f["meta"]))
    except Exception as error:  # BadZipFile, EOFError, ValueError, KeyError, ...: all mean "not a checkpoint"
        raise CheckpointError(f"{path} is not a readable tinyalex checkpoint ({type(error).__name__}): it is "
                              "cut short or another kind of file") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not a tinyalex checkpoint (its metadata is not a dictionary)")
    return arrays, meta


def write_metrics(path, history):
    """Writes ``history`` (one dict per epoch) as JSON lines to ``path``, atomically."""
    path = Path(path)
    scratch = path.with_name(path.name + ".writing")
    try:
        scratch.write_text("".join(json.dumps(metrics) + "\n" for metrics in history))
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


def model_from_checkpoint(path, devices=None):
    """Rebuild the trained model of a checkpoint (for evaluation and prediction)."""
    arrays, meta = load_checkpoint(path)
    if "model" not in meta:
        raise CheckpointError(f"{path} is not a checkpoint of a training run (it has no model settings)")
    model = AlexNet(devices=devices, **meta["model"])
    model.load_state_dict({k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")})
    return model, meta


# Evaluation --------------------------------------------------------------------------------

def top_k_errors(probabilities, labels, ks=(1, 5)):
    """Number of images whose label is not among the k most probable classes, for each k."""
    order = np.argsort(-probabilities, axis=1)
    return {k: int(np.sum(~np.any(order[:, :k] == labels[:, None], axis=1))) for k in ks}


def evaluate(model, split, augmenter, batch_size, ten_crop=True, description="validation"):
    """Top-1 and top-5 error (in %) on ``split``: the centre crop, and the ten-crop average."""
    loader = BatchLoader(split, batch_size, shuffle=False)
    loss_fn = SoftmaxCrossEntropy()
    errors = {"center": {1: 0, 5: 0}, "ten_crop": {1: 0, 5: 0}}
    loss_sum = 0.0
    with progress_bar(len(split), description, unit="img") as progress:
        for _, (images, labels) in loader.epoch(0):
            logits = model.forward(augmenter.center_crop(images), train=False)
            loss_sum += loss_fn.forward(logits, labels, train=False) * len(labels)
            for k, n in top_k_errors(softmax(to_numpy(logits)), labels).items():
                errors["center"][k] += n
            if ten_crop:
                probabilities = sum(softmax(to_numpy(model.forward(x, train=False)))
                                    for x in augmenter.ten_crops(images)) / 10
                for k, n in top_k_errors(probabilities, labels).items():
                    errors["ten_crop"][k] += n
            progress.update(len(labels))
    n = len(split)
    result = {"loss": loss_sum / n, "top1_error": 100 * errors["center"][1] / n,
              "top5_error": 100 * errors["center"][5] / n}
    if ten_crop:
        result.update(top1_error_10crop=100 * errors["ten_crop"][1] / n,
                      top5_error_10crop=100 * errors["ten_crop"][5] / n)
    return result


# Training ----------------------------------------------------------------------------------

class Trainer:
    """Trains ``model`` on the prepared ``train`` split, validating on ``val`` after each epoch.

    ``model_config`` is what :class:`~tinyalex.model.AlexNet` was built with (less the
    devices); it goes into checkpoints so that evaluate.py and predict.py can rebuild the
    model. ``out_dir`` receives the checkpoint and ``metrics.jsonl``; ``after_epoch(trainer)``
    runs after every epoch (the example draws its plots there). ``pca_std`` is the spread of
    the PCA colour noise's a_i (the paper's 0.1; 0 turns the noise off, for the ablation).

    ``communicator`` (:mod:`tinyalex.distributed`) makes this one of several processes
    training one model on shares of every batch: gradients are summed between backward
    and the SGD step, validation is shared out and combined, and only rank 0 prints,
    writes files and calls ``after_epoch``. The model's dropout layers then become
    :class:`~tinyalex.distributed.DropoutShare`. Without it, one process does everything.
    ``blas_threads`` (:class:`~tinyalex.engines.process.BlasThreads`) chooses NumPy's BLAS
    threads for each step by timing them, for a program that asks for it.
    """

    def __init__(self, model, model_config, train, val, out_dir, *, recipe=PAPER, epochs=None, seed=0,
                 ten_crop_every=1, after_epoch=None, communicator=None, pca_std=PCA_NOISE_STD, blas_threads=None):
        self.model = model
        self.model_config = json.loads(json.dumps(model_config))  # as a checkpoint gives it back
        self.train_split, self.val_split = train, val
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.recipe, self.seed = recipe, seed
        self.max_epochs = recipe.max_epochs if epochs is None else epochs
        self.ten_crop_every = ten_crop_every
        self.after_epoch = after_epoch
        self.sgd = SGD(recipe.learning_rate, recipe.momentum, recipe.weight_decay, engine=model.engine)
        self.schedule = PlateauSchedule(recipe.learning_rate, recipe.lr_drop_factor, recipe.patience,
                                        recipe.max_lr_drops)
        self.comm = Communicator() if communicator is None else communicator
        # the rows of every global batch that this process trains on (all of them when alone)
        self.share = batch_share(recipe.batch_size, self.comm.rank, self.comm.size)
        # and the validation images it evaluates
        self.val_share = val if self.comm.size == 1 else ShareOfSplit(val, self.comm.rank, self.comm.size)
        if self.comm.size > 1:
            share_dropout(model, *self.share, recipe.batch_size)
        self.loader = BatchLoader(train, recipe.batch_size, seed=seed, rank=self.comm.rank, size=self.comm.size)
        self.pca_std = pca_std
        self.blas_threads = blas_threads         # engines.BlasThreads, if the program asked for one
        self.augmenter = Augmenter(*train.statistics(), device=model.devices[0], crop=model.image_size,
                                   pca_std=pca_std)
        self.loss = SoftmaxCrossEntropy()
        self.epoch, self.batch = 0, 0            # the next batch to train on
        self.running = {"loss": 0.0, "correct": 0, "images": 0, "seconds": 0.0}
        self.history = []                        # one dict of metrics per finished epoch
        # the rate the command line gave last (the starting rate, or a later --lr): an --lr on
        # resume equal to it is the same command again, not a change of the schedule's rate
        self.lr_given = recipe.learning_rate
        self._data_description = None
        self.stop_requested, self.stop_signal = False, None   # set by Ctrl-C, SIGTERM or SIGHUP

    def data_description(self):
        """The training file, its image count and digest (computed once): a resume on other
        data with the same classes is allowed, and said."""
        if self._data_description is None:
            self._data_description = {"path": str(self.train_split.path), "images": len(self.train_split),
                                      "digest": data_digest(self.train_split)}
        return self._data_description

    def other_data(self, meta):
        """One line if the checkpoint ``meta`` was trained on other data than this trainer's, else None."""
        saved, now = meta.get("data"), self.data_description()
        if saved is None or saved["digest"] == now["digest"]:
            return None
        return (f"note: the checkpoint was trained on other data with the same classes ({saved['path']}, "
                f"{saved['images']} images; now {now['path']}, {now['images']}): going on with this data")

    @property
    def finished(self):
        return self.schedule.finished or self.epoch >= self.max_epochs

    # The loop ------------------------------------------------------------------------------

    def train(self):
        """Train until the schedule or ``epochs`` says stop.

        Ctrl-C, SIGTERM or SIGHUP (on any process) lets the step in progress finish, writes a
        checkpoint and raises Interrupted; a second one raises StoppedAtOnce without one.
        """
        def request_stop(signum, frame):
            if self.stop_requested:      # the second one stops at once, without a checkpoint
                raise StoppedAtOnce(f"a second {STOP_SIGNALS[signum]}: stopped at once")
            self.stop_requested, self.stop_signal = True, signum
            print(f"\n{STOP_SIGNALS[signum]}: finishing this step, then writing a checkpoint "
                  "(Ctrl-C again to quit now)", flush=True)

        previous = {}
        if threading.current_thread() is threading.main_thread():  # handlers can only be installed there
            previous = {signum: signal.signal(signum, request_stop) for signum in STOP_SIGNALS}
        try:
            self.comm.check_same_parameters(self.model.parameters())
            while not self.finished:
                self.train_epoch()
                if self.comm.any_true(self.stop_requested):  # all processes stop together, or none
                    self.save()
                    signum = self.stop_signal or signal.SIGINT   # None: another process's signal
                    raise Interrupted(f"{STOP_SIGNALS[signum]}: stopped at epoch {self.epoch + 1}, batch "
                                      f"{self.batch}; checkpoint written to {self.out_dir / CHECKPOINT}", signum)
                self.end_epoch()
        except DataChanged as error:
            raise self.data_changed(error) from None
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self.history

    def train_epoch(self):
        start = time.perf_counter()
        description = f"epoch {self.epoch + 1}/{self.max_epochs}"
        size = self.recipe.batch_size
        with progress_bar(len(self.loader) * size, description, unit="img", initial=self.batch * size) as progress:
            for index, (images, labels) in self.loader.epoch(self.epoch, start=self.batch):
                # asked before the step, so that a stop during the validation and the save of
                # the last epoch trains no further
                if self.comm.any_true(self.stop_requested):
                    break
                with self.blas_threads.step() if self.blas_threads else contextlib.nullcontext():
                    loss, correct = self.step(images, labels, batch_rng(self.seed, self.epoch, index))
                self.batch = index + 1
                r = self.running
                r["loss"] += loss * size                  # loss and correct are the global batch's
                r["correct"] += correct
                r["images"] += size
                progress.set_postfix(loss=r["loss"] / r["images"], acc=r["correct"] / r["images"], refresh=False)
                progress.update(size)
        self.running["seconds"] += time.perf_counter() - start

    def step(self, images, labels, rng):
        """One SGD step on one batch; returns (loss, number of correct top-1 predictions).

        With several processes, ``images`` and ``labels`` are this process's share of the
        global batch, and the returned loss and count are those of the global batch.
        """
        start, _ = self.share
        x = self.augmenter.train_batch(images, rng, share=(start, self.recipe.batch_size))
        logits = self.model.forward(x, train=True)
        loss = self.loss.forward(logits, labels)
        # The global batch's loss is the mean over all its images; this process's part of
        # it is its own mean times its share of the batch, n / B (1 for one process).
        # Summed over the processes, the parts and their gradients are the global ones.
        part = len(labels) / self.recipe.batch_size
        correct = int((to_numpy(logits).argmax(axis=1) == labels).sum())
        loss, correct = self.comm.sum_values([loss * part, correct])
        loss, correct = float(loss), int(correct)
        if not math.isfinite(loss):
            raise self.diverged(f"the loss became {loss} at epoch {self.epoch + 1}, batch {self.batch + 1}")
        self.model.backward(self.loss.backward(part))
        self.comm.allreduce_gradients(self.model.parameters())
        self.sgd.step(self.model.parameters())
        return loss, correct

    def diverged(self, what):
        """The TrainingDiverged error for ``what`` happened, saying truly what is on disk."""
        checkpoint = self.out_dir / CHECKPOINT
        if checkpoint.exists():
            kept = f"Nothing was written; the last good checkpoint, {checkpoint}, is intact."
        else:
            kept = "Nothing was written, and there is no checkpoint of this run yet."
        return TrainingDiverged(f"{what}. {kept} A smaller learning rate (the paper's is 0.01) or the smaller "
                                "positive bias (0.1) usually helps.")

    def data_changed(self, error):
        """The DataChanged error to stop with, after a checkpoint of the steps trained so far
        (one process only: with several, the others may not have seen the change)."""
        if self.comm.size > 1:
            return DataChanged(f"{error}. The last checkpoint is that of the last epoch's end")
        self.save()
        return DataChanged(f"{error}. A checkpoint of the steps trained so far was written to "
                           f"{self.out_dir / CHECKPOINT}; resume from it once the file is whole again")

    def end_epoch(self):
        validate_ten = self.ten_crop_every > 0 and (self.epoch + 1) % self.ten_crop_every == 0
        val = self.validate(ten_crop=validate_ten, description=f"validation {self.epoch + 1}")
        r = self.running
        metrics = {"epoch": self.epoch + 1, "lr": self.sgd.lr,
                   "train_loss": r["loss"] / r["images"], "train_top1_error": 100 * (1 - r["correct"] / r["images"]),
                   "train_images_per_second": r["images"] / r["seconds"], "train_seconds": r["seconds"],
                   **{f"val_{k}": v for k, v in val.items()}}
        # A blow-up on the epoch's last step passes the loss check of every step before it.
        if not math.isfinite(val["loss"]):
            raise self.diverged(f"the validation loss became {val['loss']} after epoch {self.epoch + 1}")
        self.sgd.lr = self.schedule.step(val["top1_error"])
        metrics["lr_next"] = self.sgd.lr
        self.history.append(metrics)
        self.epoch, self.batch = self.epoch + 1, 0
        self.running = {"loss": 0.0, "correct": 0, "images": 0, "seconds": 0.0}
        self.comm.check_same_parameters(self.model.parameters())
        self.save()
        if self.comm.is_root:
            print(format_metrics(metrics), flush=True)
        if self.after_epoch is not None and self.comm.is_root:
            self.after_epoch(self)

    def validate(self, ten_crop=True, description="validation"):
        """:func:`evaluate` on the validation split; with several processes, each evaluates
        its share of the images and the results are combined (every process gets them)."""
        result = evaluate(self.model, self.val_share, self.augmenter, self.recipe.batch_size, ten_crop=ten_crop,
                          description=description)
        return self.comm.combine_means(result, len(self.val_share))

    # Checkpoints ---------------------------------------------------------------------------

    def save(self):
        """Writes the checkpoint, then metrics.jsonl from its history; refuses non-finite weights.
        With several processes, every one checks its weights and rank 0 alone writes."""
        weights = self.model.state_dict()
        broken = [name for name, w in weights.items() if not np.isfinite(w).all()]
        if broken:
            raise self.diverged(f"the weights of {', '.join(broken[:3])} are no longer finite "
                                f"(epoch {self.epoch + 1}, batch {self.batch})")
        if not self.comm.is_root:  # the copies are identical (checked): one file, written by rank 0
            return
        arrays = {f"model/{k}": v for k, v in weights.items()}
        sgd_state = self.sgd.state_dict()
        arrays.update({f"velocity/{k}": v for k, v in sgd_state.pop("velocity").items()})
        meta = {"model": self.model_config, "sgd": sgd_state, "schedule": self.schedule.state_dict(),
                "epoch": self.epoch, "batch": self.batch, "running": self.running, "history": self.history,
                "dropout_calls": {name: layer.calls for name, layer in self.model.dropout_layers()},
                "seed": self.seed, "batch_size": self.recipe.batch_size, "max_epochs": self.max_epochs,
                "pca_std": self.pca_std, "lr_given": self.lr_given,
                "classes": self.train_split.wnids, "data": self.data_description()}
        save_checkpoint(self.out_dir / CHECKPOINT, arrays, meta)
        # metrics.jsonl follows the checkpoint: a stop between the two leaves it one epoch
        # behind, and resume rewrites it from the checkpoint.
        write_metrics(self.out_dir / METRICS, self.history)

    def resume(self, path=None):
        """Continue from a checkpoint (by default the one in ``out_dir``); CheckpointError if it
        is missing, damaged, or of another model, data, seed or batch size. With several
        processes, rank 0 reads it and sends it to the others."""
        path = Path(path or self.out_dir / CHECKPOINT)
        if not self.comm.broadcast(path.exists()):
            raise CheckpointError(f"{path} does not exist, so there is nothing to resume; "
                                  "start a new run without --resume")
        arrays, meta = self.comm.from_root(load_checkpoint, path)
        different = model_differences(meta.get("model"), self.model_config)
        if different:
            raise CheckpointError(f"{path} is of a different model: {different}")
        if meta["classes"] != self.train_split.wnids:
            raise CheckpointError(f"{path} was trained on other classes than this data set's")
        if meta["seed"] != self.seed or meta["batch_size"] != self.recipe.batch_size:
            raise CheckpointError(f"resume with the seed and batch size of {path} "
                                  f"(seed {meta['seed']}, batch size {meta['batch_size']})")
        if meta.get("pca_std", PCA_NOISE_STD) != self.pca_std:
            raise CheckpointError(f"{path} was trained with PCA colour noise of spread {meta.get('pca_std')}, "
                                  f"not {self.pca_std}: resume with the same setting (--no-pca or not)")
        self.model.load_state_dict({k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")})
        velocity = {k[len("velocity/"):]: v for k, v in arrays.items() if k.startswith("velocity/")}
        self.sgd.load_state_dict({**meta["sgd"], "velocity": velocity}, self.model.parameters())
        self.schedule.load_state_dict(meta["schedule"])
        # checkpoints from before lr_given was kept: the first epoch's rate, or the rate so far
        self.lr_given = meta.get("lr_given", meta["history"][0]["lr"] if meta["history"] else meta["sgd"]["lr"])
        self.epoch, self.batch = meta["epoch"], meta["batch"]
        self.running, self.history = meta["running"], meta["history"]
        for name, layer in self.model.dropout_layers():
            layer.calls = meta["dropout_calls"][name]
        if self.comm.is_root:  # drops lines of epochs the checkpoint lacks
            write_metrics(self.out_dir / METRICS, self.history)
        return meta


def model_differences(saved, config):
    """'' if the AlexNet settings ``saved`` (a checkpoint's) and ``config`` build the same
    model, else the settings that differ, in words. A setting left out is AlexNet's default:
    --positive-bias 1 given is the run that did not give it."""
    if not isinstance(saved, dict):
        return "it has no model settings"
    defaults = {name: parameter.default for name, parameter in inspect.signature(AlexNet).parameters.items()
                if parameter.default is not inspect.Parameter.empty and name not in ("devices", "engine")}
    saved, config = (json.loads(json.dumps({**defaults, **c})) for c in (saved, config))
    return "; ".join(f"{key} {saved.get(key)} in the checkpoint, {config.get(key)} here"
                     for key in sorted(saved.keys() | config.keys()) if saved.get(key) != config.get(key))


def format_metrics(m):
    line = (f"epoch {m['epoch']}: lr {m['lr']:g}, train loss {m['train_loss']:.3f}, train top-1 error "
            f"{m['train_top1_error']:.1f}%, val loss {m['val_loss']:.3f}, val top-1/top-5 error "
            f"{m['val_top1_error']:.1f}%/{m['val_top5_error']:.1f}%")
    if "val_top1_error_10crop" in m:
        line += f" (ten crops {m['val_top1_error_10crop']:.1f}%/{m['val_top5_error_10crop']:.1f}%)"
    if m["lr_next"] != m["lr"]:
        line += f"; learning rate divided by 10, now {m['lr_next']:g}"
    return line
