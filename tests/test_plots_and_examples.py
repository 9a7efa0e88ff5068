"""Tests of the pictures (tinyalex/plots.py) and of examples/evaluate.py and examples/predict.py.

Everything runs on a tiny prepared data set written here (3 classes, 80 x 80 images) and a
scaled-down AlexNet trained on it for one epoch, so the whole file takes seconds. What they
check: every picture is a PNG of the size its docstring gives; the kernel display
stretches each kernel on its own; the fc7 neighbour search finds an image itself; the
plots leave pyplot alone; evaluate.py reports the numbers tinyalex.training.evaluate
computes, finds train.h5 where it should, and refuses data of other classes; predict.py
gives probabilities that sum to one and reports unreadable files with exit status 1.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_split
from PIL import Image

from tinyalex import AlexNet, Recipe, plots
from tinyalex.data import Augmenter, PreparedSplit
from tinyalex.training import CHECKPOINT, Trainer, evaluate, model_from_checkpoint

REPO = Path(__file__).resolve().parent.parent
SIZE = 80                   # stored image size; the crops are 67 x 67
MODEL = dict(num_classes=3, image_size=67, channels=(8, 8, 12, 12, 8), hidden=16)
WNIDS = ["n00000001", "n00000002", "n00000003"]
NAMES = ["red thing, reddish object", "green thing", "blue thing"]


# A tiny prepared data set and a model trained on it -----------------------------------------

def class_images(rng, labels):
    """Noisy images tinted by class, so that the classes can be told apart."""
    images = rng.integers(0, 120, size=(len(labels), SIZE, SIZE, 3)).astype(np.int64)
    images[np.arange(len(labels)), :, :, labels] += 120
    return images.astype(np.uint8)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A data folder (train.h5, val.h5) and a one-epoch training run on it."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    data = root / "data"
    data.mkdir()
    train_labels, val_labels = np.repeat(np.arange(3), 8), np.tile(np.arange(3), 3)
    write_split(data / "train.h5", class_images(rng, train_labels), train_labels, wnids=WNIDS, class_names=NAMES)
    write_split(data / "val.h5", class_images(rng, val_labels), val_labels, wnids=WNIDS, class_names=NAMES)
    train, val = PreparedSplit(data / "train.h5"), PreparedSplit(data / "val.h5")
    model = AlexNet(devices="cpu", **MODEL)
    trainer = Trainer(model, MODEL, train, val, root / "out", recipe=Recipe(batch_size=4), epochs=1)
    trainer.train()
    yield dict(root=root, data=data, train=train, val=val, model=model, trainer=trainer,
               checkpoint=root / "out" / CHECKPOINT)
    train.close()
    val.close()


def png_size(path):
    path = Path(path)
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


# Pictures ------------------------------------------------------------------------------------

def test_curves_of_one_epoch_and_of_many(run, tmp_path):
    assert png_size(plots.plot_curves(run["trainer"].history, tmp_path / "one.png")) == (1200, 500)
    history = []
    for epoch in range(1, 8):
        lr = 0.01 if epoch <= 4 else 0.001
        metrics = dict(epoch=epoch, lr=lr, lr_next=lr / 10 if epoch == 4 else lr, train_loss=2 / epoch,
                       train_top1_error=80 - 5 * epoch, val_loss=2.2 / epoch, val_top1_error=85 - 5 * epoch,
                       val_top5_error=40 - 3 * epoch)
        if epoch % 3 == 0:  # ten crops measured every third epoch only
            metrics.update(val_top1_error_10crop=83 - 5 * epoch, val_top5_error_10crop=38 - 3 * epoch)
        history.append(metrics)
    assert png_size(plots.plot_curves(history, tmp_path / "many.png")) == (1200, 500)
    with pytest.raises(ValueError, match="empty"):
        plots.plot_curves([], tmp_path / "none.png")


def test_conv1_kernels_from_model_and_from_paper_sized_state_dict(run, tmp_path):
    # 8 kernels: 4 per column in one row -> max(60 * 4 + 40, 500) wide, 2 * (60 + 50) + 70 high
    assert png_size(plots.plot_conv1_kernels(run["model"], tmp_path / "small.png")) == (500, 290)
    state = {"conv1.weight": np.random.default_rng(1).normal(size=(96, 3, 11, 11))}
    assert png_size(plots.plot_conv1_kernels(state, tmp_path / "paper.png")) == (1000, 530)
    np.testing.assert_array_equal(plots.conv1_weights(run["model"]), run["model"].state_dict()["conv1.weight"])


def test_each_kernel_is_stretched_on_its_own():
    kernels = np.stack([np.full((3, 2, 2), 5.0), np.arange(12.0).reshape(3, 2, 2) * 100])
    mosaic = plots.kernel_mosaic(kernels, per_row=2)
    assert mosaic.shape == (1 * 3 + 1, 2 * 3 + 1, 3)
    np.testing.assert_allclose(mosaic[1:3, 1:3], 0.5)               # a constant kernel shows grey
    second = mosaic[1:3, 4:6]
    assert second.min() == 0 and second.max() == 1                  # the other spans black to white
    np.testing.assert_allclose(second[..., 0], [[0, 1 / 11], [2 / 11, 3 / 11]])


def test_predictions_are_deterministic(run, tmp_path):
    first = plots.plot_predictions(run["model"], run["val"], run["trainer"].augmenter, tmp_path / "a.png", count=5)
    again = plots.plot_predictions(run["model"], run["val"], run["trainer"].augmenter, tmp_path / "b.png", count=5)
    assert png_size(first) == (4 * 260, 2 * 400 + 60)
    assert first.read_bytes() == again.read_bytes()


def test_neighbours_picture_and_search(run, tmp_path):
    model, train, augmenter = run["model"], run["train"], run["trainer"].augmenter
    path = plots.plot_neighbours(model, run["val"], train, augmenter, tmp_path / "n.png", queries=3, neighbours=4,
                                 gallery_limit=10, batch_size=4)
    assert png_size(path) == (150 * 5, 170 * 3 + 100)

    indices = plots.spread_indices(len(train), 10)
    assert len(np.unique(indices)) == 10 and set(train.labels[indices]) == {0, 1, 2}
    features = plots.fc7_features(model, train, indices, augmenter, batch_size=4)  # 3 batches
    at_once = model.features(augmenter.center_crop(train.images[indices]), train=False)
    np.testing.assert_allclose(features, at_once, rtol=1e-6)


def test_euclidean_distances():
    rng = np.random.default_rng(4)
    gallery = rng.normal(size=(20, 16))
    queries = np.concatenate([gallery[[7, 3]], rng.normal(size=(2, 16))])
    distances = plots.euclidean_distances(queries, gallery)
    np.testing.assert_allclose(distances, np.linalg.norm(queries[:, None] - gallery[None], axis=2), atol=1e-12)
    assert list(distances[:2].argmin(axis=1)) == [7, 3] and np.all(distances[[0, 1], [7, 3]] >= 0)


def test_confusion_matrix_agrees_with_evaluate(run):
    counts = plots.confusion_matrix(run["model"], run["val"], run["trainer"].augmenter, batch_size=4)
    assert counts.shape == (3, 3)
    assert counts.sum(axis=1).tolist() == np.bincount(run["val"].read(np.arange(len(run["val"])))[1]).tolist()
    measured = evaluate(run["model"], run["val"], run["trainer"].augmenter, batch_size=2, ten_crop=False)
    assert 100 * (1 - np.trace(counts) / counts.sum()) == pytest.approx(measured["top1_error"])


def test_confusion_matrix_picture(tmp_path):
    counts = np.array([[5, 0, 0], [1, 3, 1], [0, 0, 0]])  # the last class has no images
    assert png_size(plots.plot_confusion_matrix(counts, NAMES, tmp_path / "three.png")) == (600, 500)
    many = np.diag(np.arange(1, 11))
    names = [f"class {k}" for k in range(10)]
    assert png_size(plots.plot_confusion_matrix(many, names, tmp_path / "ten.png")) == (900, 800)
    with pytest.raises(ValueError, match="one row and one column per class"):
        plots.plot_confusion_matrix(counts[:2], NAMES, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="one row and one column per class"):
        plots.plot_confusion_matrix(counts, NAMES[:2], tmp_path / "bad.png")


def test_draw_all(run, tmp_path):
    trainer = run["trainer"]
    paths = plots.draw_all(run["model"], trainer.history, run["train"], run["val"], trainer.augmenter, tmp_path)
    assert sorted(paths) == ["confusion_matrix", "conv1_kernels", "curves", "neighbours", "predictions"]
    for path in paths.values():
        assert path.parent == tmp_path and png_size(path)[0] > 0
    assert not list(tmp_path.glob("*.writing"))


def test_plots_leave_pyplot_alone(run, tmp_path):
    code = ("import sys, json; from tinyalex import plots; "
            f"plots.plot_curves(json.loads(sys.argv[1]), {str(tmp_path / 'c.png')!r}); "
            "assert 'matplotlib.pyplot' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, json.dumps(run["trainer"].history)], check=True, cwd=REPO)


# examples/evaluate.py ------------------------------------------------------------------------

def example(name, *args):
    return subprocess.run([sys.executable, str(REPO / "examples" / name), *map(str, args)], capture_output=True,
                          text=True, cwd=REPO)


def test_evaluate_reports_what_training_evaluate_computes(run, tmp_path):
    report = tmp_path / "result.json"
    done = example("evaluate.py", run["checkpoint"], run["data"], "--devices", "cpu", "--batch-size", "4",
                   "--json", report)
    assert done.returncode == 0, done.stderr
    assert "centre crop" in done.stdout and "ten crops" in done.stdout
    printed = [float(x) for x in re.findall(r"([\d.]+)%", done.stdout)]
    assert len(printed) == 4 and all(0 <= x <= 100 for x in printed)

    model, _ = model_from_checkpoint(run["checkpoint"], devices="cpu")
    augmenter = Augmenter(*run["train"].statistics(), device="cpu", crop=model.image_size)
    expected = evaluate(model, run["val"], augmenter, batch_size=4, ten_crop=True)
    result = json.loads(report.read_text())
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key
    assert result["images"] == len(run["val"])


def test_evaluate_finds_train_h5_or_asks_for_it(run, tmp_path):
    lonely = tmp_path / "val.h5"
    lonely.write_bytes((run["data"] / "val.h5").read_bytes())
    done = example("evaluate.py", run["checkpoint"], lonely, "--devices", "cpu", "--no-ten-crop")
    assert done.returncode != 0 and "--train-h5" in done.stderr

    done = example("evaluate.py", run["checkpoint"], lonely, "--devices", "cpu", "--no-ten-crop",
                   "--train-h5", run["data"] / "train.h5")
    assert done.returncode == 0, done.stderr
    assert "centre crop" in done.stdout and "ten crops" not in done.stdout


def test_evaluate_refuses_data_of_other_classes(run, tmp_path):
    labels = np.arange(3)
    other = write_split(tmp_path / "val.h5", class_images(np.random.default_rng(2), labels), labels,
                        wnids=["n00000001", "n00000002", "n09999999"], class_names=NAMES)
    done = example("evaluate.py", run["checkpoint"], other, "--devices", "cpu",
                   "--train-h5", run["data"] / "train.h5")
    assert done.returncode != 0
    assert "other classes" in done.stderr and "n09999999" in done.stderr


# examples/predict.py -------------------------------------------------------------------------

def printed_probabilities(stdout):
    """{image path: [percent, ...]} from predict.py's output."""
    results, current = {}, None
    for line in stdout.splitlines():
        if match := re.match(r"^(\S.*) \((ten crops|centre crop)\)$", line):
            current = results.setdefault(match.group(1), [])
        elif match := re.match(r"^\s+([\d.]+)%  \S", line):
            current.append(float(match.group(1)))
    return results


@pytest.fixture
def image_files(tmp_path):
    rng = np.random.default_rng(3)
    wide = tmp_path / "wide.png"
    Image.fromarray(rng.integers(0, 256, size=(60, 130, 3), dtype=np.uint8)).save(wide)
    grey = tmp_path / "grey.jpg"
    Image.fromarray(rng.integers(0, 256, size=(90, 90), dtype=np.uint8)).save(grey)
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    return wide, grey, text


def test_predict_prints_probabilities_that_sum_to_one(run, image_files):
    wide, grey, _ = image_files
    for option in ("--data", "--center-only"):
        extra = ["--data", run["data"]] if option == "--data" else ["--train-h5", run["data"] / "train.h5", option]
        done = example("predict.py", run["checkpoint"], wide, grey, "--top", "3", "--devices", "cpu", *extra)
        assert done.returncode == 0, done.stderr
        results = printed_probabilities(done.stdout)
        assert list(results) == [str(wide), str(grey)]
        for percents in results.values():  # all three classes are printed, so they add up to 100%
            assert len(percents) == 3 and percents == sorted(percents, reverse=True)
            assert sum(percents) == pytest.approx(100, abs=0.02)
        assert ("centre crop" in done.stdout) == (option == "--center-only")


def test_predict_reports_unreadable_files_and_goes_on(run, image_files):
    wide, _, text = image_files
    done = example("predict.py", run["checkpoint"], text, wide, "--data", run["data"], "--devices", "cpu")
    assert done.returncode == 1
    assert str(text) in done.stderr and "cannot read" in done.stderr
    results = printed_probabilities(done.stdout)
    assert list(results) == [str(wide)] and len(results[str(wide)]) == 3  # --top 5, but only 3 classes
