"""Loading, augmentation, and the training run: checkpoints, resuming, divergence."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import write_split

from tinyalex import AlexNet, DatasetError, IncompleteFileError
from tinyalex.data import Augmenter, BatchLoader, PreparedSplit, batch_rng, center_position, ten_crop_positions
from tinyalex.model import paper_gain_weight_std
from tinyalex import training
from tinyalex.recipe import Recipe
from tinyalex.training import (CHECKPOINT, METRICS, CheckpointError, Interrupted, Trainer, TrainingDiverged,
                               load_checkpoint, save_checkpoint)

SIZE, CROP = 75, 67
GEOMETRY = dict(image_size=CROP, channels=(16, 32, 48, 48, 32), hidden=64)
MODEL = dict(num_classes=3, **GEOMETRY, weight_std=paper_gain_weight_std(**GEOMETRY), positive_bias=0.1, seed=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny prepared data set: 3 classes told apart by a bright square's height
    (not its left-right position, which the random flips would confuse)."""
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)

    def make(n):
        labels = np.arange(n) % 3
        images = rng.integers(0, 100, size=(n, SIZE, SIZE, 3), dtype=np.uint8)
        for image, label in zip(images, labels):
            y0 = 8 + 20 * label
            image[y0:y0 + 15, 30:45] = 250
        return images, labels

    write_split(folder / "train.h5", *make(48))
    write_split(folder / "val.h5", *make(12))
    return PreparedSplit(folder / "train.h5"), PreparedSplit(folder / "val.h5")


# Loading and augmentation ------------------------------------------------------------------

def test_incomplete_file_is_refused(tmp_path):
    write_split(tmp_path / "half.h5", np.zeros((2, 8, 8, 3), np.uint8), np.zeros(2), complete=False)
    with pytest.raises(IncompleteFileError, match="not a complete prepared file"):
        PreparedSplit(tmp_path / "half.h5")
    with pytest.raises(DatasetError, match="datasets/prepare.py"):
        PreparedSplit(tmp_path / "missing.h5")


def test_raw_reads_give_what_h5py_reads(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (9, 8, 8, 3), dtype=np.uint8)
    write_split(tmp_path / "train.h5", images, np.arange(9) % 3)
    raw, through_h5py = PreparedSplit(tmp_path / "train.h5"), PreparedSplit(tmp_path / "train.h5", raw=False)
    assert raw.descriptor is not None and through_h5py.descriptor is None
    assert (raw.offsets > 0).all()                 # every image's offset listed when opened
    indices = [7, 0, 3, 8]
    for split in (raw, through_h5py):
        read, labels = split.read(indices)
        np.testing.assert_array_equal(read, images[sorted(indices)])
        np.testing.assert_array_equal(labels, np.array(sorted(indices)) % 3)
        split.close()


def test_a_truncated_file_fails_a_raw_read_with_the_reason(tmp_path):
    images = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    path = write_split(tmp_path / "train.h5", images, np.zeros(4))
    split = PreparedSplit(path, check=False)       # with checks, any read after the cut stops (test_data_checks.py)
    last = int(split.offsets.max())
    os.truncate(path, last + 10)                   # the last image loses all but 10 of its bytes
    split.read([0, 1, 2])
    with pytest.raises(DatasetError, match="image 3 ends after 10 of its 192 bytes"):
        split.read([3])


def test_loader_batches(data):
    train, _ = data
    loader = BatchLoader(train, 10, seed=1)
    batches = list(loader.epoch(0))
    assert len(batches) == len(loader) == 4                      # 48 // 10, the rest is dropped
    seen = np.concatenate([labels for _, (_, labels) in batches])
    for index, (images, labels) in batches:
        assert images.shape == (10, SIZE, SIZE, 3) and images.dtype == np.uint8
        assert labels.dtype == np.int64
    # each epoch is a permutation: no image twice; another epoch, another order
    order = np.concatenate(loader.batch_indices(0))
    assert len(np.unique(order)) == 40
    assert not np.array_equal(order, np.concatenate(loader.batch_indices(1)))
    np.testing.assert_array_equal(seen, np.concatenate([np.sort(i) for i in loader.batch_indices(0)]) % 3)
    # resuming mid-epoch yields the remaining batches
    assert [i for i, _ in loader.epoch(0, start=2)] == [2, 3]


def test_evaluation_loader_keeps_every_image(data):
    _, val = data
    loader = BatchLoader(val, 5, shuffle=False)
    sizes = [len(labels) for _, (_, labels) in loader.epoch(0)]
    assert sizes == [5, 5, 2]


def test_train_batch_shapes_values_and_determinism(data):
    train, _ = data
    augmenter = Augmenter(*train.statistics(), crop=CROP)
    images, _ = train.read(np.arange(8))
    x = augmenter.train_batch(images, batch_rng(0, 0, 0))
    assert x.shape == (8, 3, CROP, CROP) and x.dtype == np.float32 and x.flags.c_contiguous
    assert -255 < x.min() and x.max() < 255                       # 0..255 minus a mean, plus a small shift
    np.testing.assert_array_equal(x, augmenter.train_batch(images, batch_rng(0, 0, 0)))
    assert not np.array_equal(x, augmenter.train_batch(images, batch_rng(0, 0, 1)))


def test_train_crop_is_a_crop_or_its_mirror(data):
    train, _ = data
    mean, values, vectors = train.statistics()
    augmenter = Augmenter(np.zeros_like(mean), values, vectors, crop=CROP, pca_std=0.0)  # no mean, no noise
    images, _ = train.read(np.arange(6))
    x = augmenter.train_batch(images, batch_rng(3, 0, 0)).transpose(0, 2, 3, 1)
    for crop, image in zip(x, images):
        found = [(top, left, flip) for top in range(SIZE - CROP + 1) for left in range(SIZE - CROP + 1)
                 for flip in (False, True)
                 if np.array_equal(crop, (image[top:top + CROP, left:left + CROP, :][:, ::-1] if flip
                                          else image[top:top + CROP, left:left + CROP, :]))]
        assert found, "the augmented image is not a crop of the original"


def test_pca_noise_statistics(data):
    train, _ = data
    _, values, vectors = train.statistics()
    augmenter = Augmenter(np.zeros((SIZE, SIZE, 3)), values, vectors, crop=CROP)
    shifts = augmenter.colour_shift(np.random.default_rng(0), 200_000)
    # shift = P (a * l) / 255 with a ~ N(0, 0.1): its covariance is P diag((0.1 l / 255)^2) P^T
    expected = vectors @ np.diag((0.1 * values / 255) ** 2) @ vectors.T
    np.testing.assert_allclose(np.cov(shifts, rowvar=False), expected, rtol=0.02, atol=1e-3 * expected.max())
    assert np.abs(shifts.mean(axis=0)).max() < 0.01 * np.sqrt(expected.max())
    # in the eigenvector basis the components are independent, with std 0.1 * l / 255
    np.testing.assert_allclose((shifts @ vectors).std(axis=0), 0.1 * values / 255, rtol=0.01)


def test_ten_crop_geometry():
    positions = ten_crop_positions(256, 227)
    assert len(set(positions)) == 10
    assert {(t, l) for t, l, _ in positions} == {(0, 0), (0, 29), (29, 0), (29, 29), (14, 14)}
    assert sum(flip for _, _, flip in positions) == 5
    assert center_position(256, 227) == (14, 14, False)


def test_ten_crops_are_the_corners_centre_and_mirrors(data):
    train, _ = data
    mean, values, vectors = train.statistics()
    augmenter = Augmenter(mean, values, vectors, crop=CROP)
    images, _ = train.read([0, 1])
    crops = list(augmenter.ten_crops(images))
    far = SIZE - CROP
    expected = images[:, far:, :CROP].astype(np.float32) - mean[far:, :CROP]   # bottom-left
    np.testing.assert_allclose(crops[2], expected.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(crops[7], crops[2][..., ::-1])                              # its mirror
    np.testing.assert_allclose(augmenter.center_crop(images), crops[4])


# The training run --------------------------------------------------------------------------

def make_trainer(data, out, epochs=2, patience=2, **kwargs):
    train, val = data
    model = AlexNet(devices="cpu", **MODEL)
    recipe = Recipe(batch_size=8, learning_rate=0.01, patience=patience)
    return Trainer(model, MODEL, train, val, out, recipe=recipe, epochs=epochs, **kwargs)


def final_state(trainer):
    return trainer.model.state_dict(), trainer.sgd.state_dict()["velocity"]


def test_training_runs_and_logs(data, tmp_path):
    trainer = make_trainer(data, tmp_path, epochs=2)
    history = trainer.train()
    assert [m["epoch"] for m in history] == [1, 2]
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == history
    for m in history:
        assert 0 <= m["val_top1_error"] <= m["val_top5_error"] + 100 and 0 <= m["val_top5_error"] <= 100
        assert "val_top1_error_10crop" in m and np.isfinite(m["train_loss"])
    _, meta = load_checkpoint(tmp_path / CHECKPOINT)
    assert meta["epoch"] == 2 and meta["batch"] == 0


def test_resume_equals_an_uninterrupted_run(data, tmp_path):
    whole = make_trainer(data, tmp_path / "whole", epochs=2)
    whole.train()

    # stop in the middle of epoch 1 (as Ctrl-C does: after a step, with a checkpoint) ...
    first = make_trainer(data, tmp_path / "stopped", epochs=2)
    original_step = first.step

    def step_then_stop(*args):
        result = original_step(*args)
        if first.epoch == 1 and first.batch == 1:   # the step of batch 2 of epoch 2 is under way
            first.stop_requested = True
        return result

    first.step = step_then_stop
    with pytest.raises(Interrupted):
        first.train()
    # ... and continue in a new process-like trainer from the checkpoint
    second = make_trainer(data, tmp_path / "stopped", epochs=2)
    second.resume()
    assert (second.epoch, second.batch) == (1, 2)
    second.train()

    state, velocity = final_state(whole)
    resumed_state, resumed_velocity = final_state(second)
    for key in state:
        np.testing.assert_array_equal(resumed_state[key], state[key], err_msg=key)
    for key in velocity:
        np.testing.assert_array_equal(resumed_velocity[key], velocity[key], err_msg=key)
    for a, b in zip(whole.history, second.history):
        assert {k: v for k, v in a.items() if "seconds" not in k and "per_second" not in k} == \
               {k: v for k, v in b.items() if "seconds" not in k and "per_second" not in k}


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, {"w": np.arange(3.0)}, {"epoch": 1})

    def crash_halfway(file, **arrays):
        file.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash_halfway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"w": np.arange(5.0)}, {"epoch": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]  # no half-written scratch file
    arrays, meta = load_checkpoint(path)
    assert meta == {"epoch": 1}
    np.testing.assert_array_equal(arrays["w"], np.arange(3.0))


def test_nan_loss_stops_and_keeps_the_last_checkpoint(data, tmp_path):
    trainer = make_trainer(data, tmp_path, epochs=3)
    trainer.train_epoch()
    trainer.end_epoch()                          # writes the checkpoint of epoch 1
    before = (tmp_path / CHECKPOINT).read_bytes()
    trainer.model.fc8.weight[...] = np.nan
    with pytest.raises(TrainingDiverged, match="intact"):
        trainer.train()
    assert (tmp_path / CHECKPOINT).read_bytes() == before


def blow_up_on_the_last_step(trainer, epoch):
    """Make the last step of ``epoch`` (0-based) end with NaN weights, as an update that
    overflows does: the loss checked before that step was still finite."""
    real_step = trainer.step

    def step(*args):
        result = real_step(*args)
        if trainer.epoch == epoch and trainer.batch == len(trainer.loader) - 1:
            trainer.model.fc8.weight[...] = np.nan
        return result

    trainer.step = step


def test_blow_up_on_an_epochs_last_step_never_replaces_the_checkpoint(data, tmp_path):
    trainer = make_trainer(data, tmp_path, epochs=3)
    blow_up_on_the_last_step(trainer, epoch=1)
    with pytest.raises(TrainingDiverged) as error:
        trainer.train()
    assert "validation loss became nan" in str(error.value) and "is intact" in str(error.value)
    _, meta = load_checkpoint(tmp_path / CHECKPOINT)
    assert meta["epoch"] == 1 and all(np.isfinite(m["val_loss"]) for m in meta["history"])
    assert [json.loads(line)["epoch"] for line in (tmp_path / METRICS).read_text().splitlines()] == [1]


def test_divergence_without_a_checkpoint_says_so(data, tmp_path):
    trainer = make_trainer(data, tmp_path, epochs=2)
    blow_up_on_the_last_step(trainer, epoch=0)
    with pytest.raises(TrainingDiverged) as error:
        trainer.train()
    assert "intact" not in str(error.value) and "no checkpoint of this run yet" in str(error.value)
    assert not (tmp_path / CHECKPOINT).exists() and not (tmp_path / METRICS).exists()


def test_non_finite_weights_are_never_saved(data, tmp_path):
    trainer = make_trainer(data, tmp_path, epochs=1)
    trainer.model.fc8.weight[0, 0] = np.inf
    with pytest.raises(TrainingDiverged, match="no longer finite"):
        trainer.save()
    assert not (tmp_path / CHECKPOINT).exists()


def metrics_epochs(folder):
    return [json.loads(line)["epoch"] for line in (folder / METRICS).read_text().splitlines()]


def test_metrics_agree_with_the_checkpoint_after_a_failed_save(data, tmp_path, monkeypatch):
    first = make_trainer(data, tmp_path, epochs=3)
    first.train_epoch()
    first.end_epoch()
    real_save = training.save_checkpoint

    def disk_full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(training, "save_checkpoint", disk_full)
    first.train_epoch()
    with pytest.raises(OSError):
        first.end_epoch()
    assert metrics_epochs(tmp_path) == [1] == [m["epoch"] for m in load_checkpoint(tmp_path / CHECKPOINT)[1]["history"]]
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    second = make_trainer(data, tmp_path, epochs=3)
    second.resume()
    history = second.train()
    assert metrics_epochs(tmp_path) == [1, 2, 3]
    assert [json.loads(line) for line in (tmp_path / METRICS).read_text().splitlines()] == history


def test_metrics_agree_with_the_checkpoint_after_a_kill_while_saving(data, tmp_path):
    """A real SIGKILL half-way through writing the checkpoint of epoch 2."""
    train, val = data
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from test_training import make_trainer
        from tinyalex.data import PreparedSplit
        real_savez, saves = np.savez, []
        def savez(file, **arrays):
            saves.append(1)
            if len(saves) == 2:
                file.write(b"PK half a checkpoint")
                file.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            real_savez(file, **arrays)
        np.savez = savez
        data = PreparedSplit({str(train.path)!r}), PreparedSplit({str(val.path)!r})
        make_trainer(data, {str(tmp_path)!r}, epochs=3).train()
    """)
    environment = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    killed = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert metrics_epochs(tmp_path) == [1] == [m["epoch"] for m in load_checkpoint(tmp_path / CHECKPOINT)[1]["history"]]
    resumed = make_trainer(data, tmp_path, epochs=3)
    resumed.resume()
    history = resumed.train()
    assert [json.loads(line) for line in (tmp_path / METRICS).read_text().splitlines()] == history
    assert metrics_epochs(tmp_path) == [1, 2, 3]


def test_resume_refuses_another_model(data, tmp_path):
    make_trainer(data, tmp_path, epochs=1).train()
    train, val = data
    other = dict(MODEL, hidden=32)
    trainer = Trainer(AlexNet(devices="cpu", **other), other, train, val, tmp_path, recipe=Recipe(batch_size=8))
    with pytest.raises(CheckpointError, match="different model"):
        trainer.resume()


def test_tiny_run_learns(data, tmp_path):
    trainer = make_trainer(data, tmp_path, epochs=15, patience=15, ten_crop_every=0)
    history = trainer.train()
    assert history[-1]["val_top1_error"] < 10   # chance: 66.7%


class CornerVoter:
    """A stand-in model that looks at one pixel: the top-left one of each crop it is given
    (red channel). It votes for class 1 with that pixel's value as the logit, and for
    nothing (equal logits) when the pixel is dark."""

    def forward(self, x, train=False):
        logits = np.zeros((len(x), 3), np.float32)
        logits[:, 1] = x[:, 0, 0, 0]
        return logits


def test_ten_crop_evaluation_uses_every_one_of_the_ten_crops(tmp_path):
    """Image k is dark but for one bright pixel, where the top-left corner of the k-th of the
    ten crops falls (256-pixel images, 227-pixel crops: the corners at 0 and 29, the centre
    at 14; a mirrored crop starts at the right end of its window). Only crop k sees it, and
    votes for the true class 1; averaged over all ten crops, every image is right. A crop
    left out, or one taken twice, leaves an image at a tie, read as class 0: wrong."""
    size, crop = 256, 227
    far, middle = size - crop, (size - crop) // 2
    windows = [(0, 0), (0, far), (far, 0), (far, far), (middle, middle)]
    marks = [(top, left) for top, left in windows] + [(top, left + crop - 1) for top, left in windows]
    images = np.zeros((10, size, size, 3), np.uint8)
    for k, (row, column) in enumerate(marks):
        images[k, row, column, 0] = 255
    split = PreparedSplit(write_split(tmp_path / "val.h5", images, np.ones(10, np.int64), statistics=False))
    augmenter = Augmenter(np.zeros((size, size, 3), np.float32), np.ones(3), np.eye(3), crop=crop)
    result = training.evaluate(CornerVoter(), split, augmenter, batch_size=4, ten_crop=True)
    assert result["top1_error_10crop"] == 0.0
    assert result["top1_error"] == 90.0       # the centre crop alone sees only image 4's mark
