"""What the programs check before they start: training and validation files prepared alike,
processes that read the same data, and the one-line messages of examples/evaluate.py,
examples/predict.py, examples/train_imagenet.py and datasets/prepare.py for mistakes that
used to end in a traceback, or in nothing said at all."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

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


# Processes that read the same data, and no wait without end --------------------------------

BIN = Path(sys.executable).parent
MPIEXEC = shutil.which("mpiexec", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
needs_mpiexec = pytest.mark.skipif(MPIEXEC is None, reason="needs mpiexec (pip install mpich, or a system MPI)")
ROOT = Path(__file__).resolve().parents[1]


def small_data(folder, n_train, labels_seed=None):
    """train.h5 and val.h5 of tiny images; ``labels_seed`` draws other labels for the same images."""
    folder.mkdir()
    labels = np.arange(n_train) % 3
    if labels_seed is not None:
        labels = np.random.default_rng(labels_seed).permutation(labels)
    write_split(folder / "train.h5", noise(n_train, 16), labels)
    write_split(folder / "val.h5", noise(3, 16, seed=1), np.arange(3) % 3)
    return folder


def train_each_on(folders, out):
    """The training program under mpiexec, process r reading folders[r] -> CompletedProcess."""
    command = [MPIEXEC]
    for rank, folder in enumerate(folders):
        command += ([":"] if rank else []) + ["-n", "1", sys.executable, str(ROOT / "examples" / "train_imagenet.py"),
                                              "--devices", "cpu", "--data", str(folder), "--out", str(out)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


@needs_mpiexec
def test_processes_with_different_image_counts_stop_with_one_line(tmp_path):
    done = train_each_on([small_data(tmp_path / "a", 24), small_data(tmp_path / "b", 48)], tmp_path / "run")
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-2000:]
    assert "process 1 has 48 training and 3 validation images" in errors[0] and "process 0 24 and 3" in errors[0]
    assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()


@needs_mpiexec
def test_processes_with_same_counts_but_other_labels_stop_with_one_line(tmp_path):
    done = train_each_on([small_data(tmp_path / "a", 24), small_data(tmp_path / "b", 24, labels_seed=5)],
                         tmp_path / "run")
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "other labels, classes, file names or mean image" in errors[0], done.stderr[-2000:]


WAITS_FOR_NOTHING = """
import time
from tinyalex.distributed import MpiCommunicator
comm = MpiCommunicator(wait_limit=2)
if comm.rank == 1:
    time.sleep(60)        # a process that never comes (hung, or gone another way)
comm.barrier()
"""


@needs_mpiexec
def test_a_wait_past_the_limit_ends_the_job_with_a_message():
    start = time.monotonic()
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-c", WAITS_FOR_NOTHING], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert time.monotonic() - start < 30, "the job waited for the sleeping process"
    assert done.returncode != 0
    assert "error: process 0 of 2 waited more than 2 s for the others in a barrier" in done.stderr


def test_wait_limit_must_be_a_number_of_seconds(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        train_main("--wait-limit", "-1", "--data", tmp_path / "nowhere", "--out", tmp_path / "run")
    assert stop.value.code == 2 and "--wait-limit" in capsys.readouterr().err
