"""What the programs check before they start: training and validation files prepared alike,
processes that read the same data, and the one-line messages of examples/evaluate.py,
examples/predict.py, examples/train_imagenet.py and datasets/prepare.py for mistakes that
used to end in a traceback, or in nothing said at all."""

import numpy as np
import pytest
from conftest import example, write_split

from tinyalex.data import PreparedSplit
from tinyalex.datasets import write_prepared
from tinyalex.training import check_prepared_alike


def refused(function, *args):
    """The one-line message a program stopped with (SystemExit carrying a string)."""
    with pytest.raises(SystemExit) as stop:
        function(*args)
    message = stop.value.code
    assert isinstance(message, str) and message.startswith("error: ") and "\n" not in message, message
    assert "Traceback" not in message
    return message


def train_main(*args):
    return example("train_imagenet").main(["--devices", "cpu", "--batch-size", "4", "--ten-crop-every", "0",
                                           "--no-plots", *map(str, args)])


def noise(n, size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# Training and validation files prepared alike ----------------------------------------------

@pytest.mark.parametrize("train_size, val_size", [(256, 240), (240, 256)])
def test_training_refuses_splits_of_different_sizes_before_the_first_step(tmp_path, train_size, val_size):
    folder = tmp_path / "data"
    folder.mkdir()
    write_split(folder / "train.h5", noise(4, train_size), np.arange(4) % 3)
    write_split(folder / "val.h5", noise(3, val_size, seed=1), np.arange(3) % 3)
    message = refused(train_main, "--data", folder, "--out", tmp_path / "run", "--epochs", "1")
    assert f"holds {val_size}-pixel images but" in message and "not prepared alike" in message
    assert not (tmp_path / "run").exists()


def test_training_refuses_a_mean_image_of_another_size(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    images = noise(4, 240)
    pixels = images.reshape(-1, 3).astype(np.float64)
    statistics = dict(mean_image=np.zeros((256, 256, 3), np.float32), rgb_mean=pixels.mean(axis=0),
                      rgb_covariance=np.eye(3), rgb_eigenvalues=np.ones(3), rgb_eigenvectors=np.eye(3))
    write_prepared(folder / "train.h5", images, np.arange(4) % 3, [f"{i}.JPEG" for i in range(4)],
                   ["n0", "n1", "n2"], ["n0", "n1", "n2"], split="train", statistics=statistics)
    write_split(folder / "val.h5", noise(3, 240), np.arange(3) % 3, wnids=("n0", "n1", "n2"))
    message = refused(train_main, "--data", folder, "--out", tmp_path / "run", "--epochs", "1")
    assert "the mean image of" in message and "is 256x256 but its images are 240x240" in message
    assert not (tmp_path / "run").exists()


def test_splits_prepared_alike_pass(data):
    check_prepared_alike(PreparedSplit(data / "train.h5"), PreparedSplit(data / "val.h5"))
