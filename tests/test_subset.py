"""A class subset of an ImageNet-style folder: made by datasets/subset.py as links, prepared
and trained on like the whole (docs/data.md, "A subset of ImageNet")."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyalex.data import PreparedSplit
from tinyalex.datasets import DatasetError
from tinyalex.datasets.prepare import prepare_imagenet
from tinyalex.datasets.synthetic import make_synthetic_imagenet, wnid

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "datasets"))
from subset import make_subset  # noqa: E402


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    """Four classes, a flat val/ folder in a shuffled order with an ILSVRC-style labels file."""
    root = tmp_path_factory.mktemp("imagenet") / "src"
    make_synthetic_imagenet(root, num_classes=4, train_per_class=5, val_per_class=3)
    return root


def val_classes(root):
    """{val file name: wnid}, from the labels file, independently of the code under test."""
    names = sorted(p.name for p in (root / "val").iterdir())
    indices = (root / "val_ground_truth.txt").read_text().split()
    return {name: wnid(int(index) - 1) for name, index in zip(names, indices)}


def test_a_subset_keeps_the_chosen_classes_with_their_own_validation_images(imagenet, tmp_path):
    chosen = tmp_path / "wnids.txt"
    chosen.write_text(f"{wnid(3)} the fourth\n{wnid(1)}\n")
    wnids, train_count, val_count = make_subset(imagenet, tmp_path / "sub", str(chosen),
                                                val_labels=imagenet / "val_ground_truth.txt")
    assert wnids == [wnid(1), wnid(3)] and (train_count, val_count) == (10, 6)
    prepared = prepare_imagenet(tmp_path / "sub", tmp_path / "data", size=48, workers=1)
    train, val = PreparedSplit(prepared["train"]), PreparedSplit(prepared["val"])
    assert train.wnids == val.wnids == [wnid(1), wnid(3)]
    assert len(train) == 10 and len(val) == 6
    truth = val_classes(imagenet)
    with_labels = zip(val.file["filenames"].asstr()[...], val.labels)
    assert all(truth[Path(name).name] == val.wnids[label] for name, label in with_labels)
    names = dict(line.split("\t", 1) for line in (imagenet / "words.txt").read_text().splitlines())
    assert (tmp_path / "sub" / "words.txt").read_text() == f"{wnid(1)} {names[wnid(1)]}\n{wnid(3)} {names[wnid(3)]}\n"


def test_bad_choices_are_one_message(imagenet, tmp_path):
    labels = imagenet / "val_ground_truth.txt"
    with pytest.raises(DatasetError, match="has 4 classes"):
        make_subset(imagenet, tmp_path / "a", "5", val_labels=labels)
    (tmp_path / "list.txt").write_text("n99999999\n")
    with pytest.raises(DatasetError, match="n99999999 is not class folders"):
        make_subset(imagenet, tmp_path / "b", str(tmp_path / "list.txt"), val_labels=labels)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("")
    with pytest.raises(DatasetError, match="not empty"):
        make_subset(imagenet, tmp_path / "c", "2", val_labels=labels)


def test_the_subset_program_then_preparation_then_training(imagenet, tmp_path):
    made = subprocess.run([sys.executable, "datasets/subset.py", str(imagenet), str(tmp_path / "sub"), "--classes",
                           "2", "--val-labels", str(imagenet / "val_ground_truth.txt")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    assert "2 classes, 10 training and 6 validation files" in made.stdout
    prepared = subprocess.run([sys.executable, "datasets/prepare.py", str(tmp_path / "sub"), str(tmp_path / "data"),
                               "--size", "144", "--workers", "1"], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
    assert prepared.returncode == 0, prepared.stderr
    run = subprocess.run([sys.executable, "examples/train_imagenet.py", "--data", str(tmp_path / "data"), "--net",
                          "builtin", "--epochs", "1", "--batch-size", "5", "--no-plots", "--out",
                          str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "2 classes" in run.stdout and len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1
    assert np.isfinite(PreparedSplit(tmp_path / "data" / "train.h5").statistics()[0]).all()
