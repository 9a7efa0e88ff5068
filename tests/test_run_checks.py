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
from PIL import Image

from tinyalex import AlexNet, DatasetError, Recipe
from tinyalex.data import PreparedSplit
from tinyalex.datasets import write_prepared
from tinyalex.datasets.images import float_to_rgb
from tinyalex.datasets.listing import find_split
from tinyalex.training import CHECKPOINT, CheckpointError, Trainer, check_prepared_alike


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


# One-line messages ---------------------------------------------------------------------------

SMALL = dict(num_classes=3, image_size=67, channels=(8, 8, 12, 12, 8), hidden=16)


@pytest.fixture
def small_run(tmp_path):
    """A checkpoint of a small net, and the train.h5 and val.h5 (72-pixel images) it was trained on."""
    folder = tmp_path / "data"
    folder.mkdir()
    write_split(folder / "train.h5", noise(8, 72), np.arange(8) % 3)
    write_split(folder / "val.h5", noise(3, 72, seed=1), np.arange(3) % 3)
    train = PreparedSplit(folder / "train.h5")
    Trainer(AlexNet(devices="cpu", **SMALL), SMALL, train, train, tmp_path / "run", recipe=Recipe(batch_size=4)).save()
    return tmp_path / "run" / CHECKPOINT, folder


def test_evaluate_checks_the_json_folder_before_evaluating(small_run, tmp_path, monkeypatch):
    checkpoint, data = small_run
    evaluated = []
    evaluate = example("evaluate")
    monkeypatch.setattr(evaluate, "evaluate", lambda *args, **kw: evaluated.append(1) or {})
    message = refused(evaluate.main, [str(checkpoint), str(data), "--devices", "cpu", "--json",
                                      str(tmp_path / "missing" / "result.json")])
    assert "the folder" in message and "does not exist" in message and not evaluated


def test_a_validation_file_given_as_the_training_file(small_run, tmp_path):
    checkpoint, data = small_run
    image = tmp_path / "photo.png"
    Image.new("RGB", (90, 80), "red").save(image)
    for program, arguments in (("evaluate", [str(checkpoint), str(data)]),
                               ("predict", [str(checkpoint), str(image)])):
        message = refused(example(program).main, [*arguments, "--train-h5", str(data / "val.h5"), "--devices", "cpu"])
        assert "has no mean image" in message and "train.h5" in message, program


def test_the_default_positive_bias_given_is_the_same_model(small_run):
    checkpoint, data = small_run
    train = PreparedSplit(data / "train.h5")

    def resume_with(config):
        trainer = Trainer(AlexNet(devices="cpu", **config), config, train, train, checkpoint.parent,
                          recipe=Recipe(batch_size=4))
        return trainer.resume()

    resume_with(dict(SMALL, positive_bias=1.0))          # the default, given: the same model
    with pytest.raises(CheckpointError, match=r"positive_bias 1.0 in the checkpoint, 0.1 here"):
        resume_with(dict(SMALL, positive_bias=0.1))


def test_resume_on_other_data_of_the_same_classes_is_said(small_run, tmp_path):
    checkpoint, data = small_run
    other = tmp_path / "other.h5"
    write_split(other, noise(12, 72, seed=7), np.arange(12) % 3, split="train")
    for path, said in ((data / "train.h5", None), (other, "trained on other data with the same classes")):
        split = PreparedSplit(path)
        trainer = Trainer(AlexNet(devices="cpu", **SMALL), SMALL, split, split, checkpoint.parent,
                          recipe=Recipe(batch_size=4))
        note = trainer.other_data(trainer.resume())
        if said is None:
            assert note is None
        else:
            assert said in note and "8 images; now" in note and ", 12)" in note


def tiny_source(root, seed=0):
    """SRC/train/<wnid>/ and SRC/val/<wnid>/ with two small JPEGs per class."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for wnid in ("n00000000", "n00000001", "n00000002"):
            (root / split / wnid).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
                    root / split / wnid / f"{split}_{i}.JPEG")
    return root


def prepare(*args):
    return subprocess.run([sys.executable, str(ROOT / "datasets" / "prepare.py"), *map(str, args), "--workers", "1"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_prepare_into_a_folder_of_another_size_or_source(tmp_path):
    out = tmp_path / "prepared"
    first = prepare(tiny_source(tmp_path / "a"), out, "--size", "32")
    assert first.returncode == 0, first.stderr[-2000:]
    before = (out / "train.h5").read_bytes()

    other_size = prepare(tmp_path / "a", out, "--size", "24")
    assert other_size.returncode == 2 and "Traceback" not in other_size.stderr
    assert "holds 32-pixel images, not the 24 asked for" in other_size.stderr

    other_source = prepare(tiny_source(tmp_path / "b", seed=1), out, "--size", "32")
    assert other_source.returncode == 0
    assert f"it was prepared from {tmp_path / 'a' / 'train'}, not {tmp_path / 'b' / 'train'}" in other_source.stdout
    assert (out / "train.h5").read_bytes() == before


def test_a_truncated_prepared_file_is_called_cut_short(tmp_path, data):
    whole = (data / "train.h5").read_bytes()
    (tmp_path / "train.h5").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(DatasetError, match="cannot be read: cut short") as error:
        PreparedSplit(tmp_path / "train.h5")
    assert "not an HDF5 file" not in str(error.value)


def test_a_labels_file_with_a_byte_order_mark(tmp_path):
    root = tiny_source(tmp_path / "src")
    flat = root / "val"
    for wnid_folder in sorted(flat.iterdir()):
        for image in wnid_folder.iterdir():
            image.rename(flat / f"{wnid_folder.name}_{image.name}")
        wnid_folder.rmdir()
    names = sorted(path.name for path in flat.iterdir())
    for text in ("".join(f"{int(name[8]) + 1}\n" for name in names),                     # ILSVRC indices
                 "".join(f"{name},{name[:9]}\n" for name in names)):                     # CSV
        labels = tmp_path / "labels.txt"
        labels.write_bytes(b"\xef\xbb\xbf" + text.encode())   # what Windows' Notepad writes
        listing = find_split(root, "val", labels)
        assert list(listing.labels) == [int(name[8]) for name in names]


def test_nan_pixels_are_named_as_such():
    values = np.full((4, 4), 0.5, np.float32)
    values[1, 2] = np.nan
    with pytest.raises(ValueError) as error:
        float_to_rgb(Image.fromarray(values, mode="F"))
    assert "1 NaN" in str(error.value) and "from nan" not in str(error.value)
