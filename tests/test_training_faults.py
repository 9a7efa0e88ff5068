"""Faults around examples/train_imagenet.py, evaluate.py and predict.py: bad arguments,
missing or damaged inputs, an --out in use, read-only or full. Each must end with one
line that says what is wrong, a non-zero exit code, and nothing written.

Most run the programs' main() in this process (quick); the lock and the full disk need
real processes.
"""

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import example, write_split
from PIL import Image

from tinyalex import AlexNet, Recipe
from tinyalex.data import PreparedSplit
from tinyalex.training import CHECKPOINT, Trainer, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(num_classes=3, image_size=67, channels=(8, 8, 12, 12, 8), hidden=16)


def train_main(*args):
    return example("train_imagenet").main(["--devices", "cpu", "--batch-size", "4", "--ten-crop-every", "0",
                                           *map(str, args)])


def contents(folder):
    return {path.name: path.read_bytes() for path in Path(folder).iterdir()} if Path(folder).exists() else None


@pytest.mark.parametrize("option, value", [("--epochs", "0"), ("--epochs", "-1"), ("--lr", "-0.01"), ("--lr", "0"),
                                           ("--lr", "nan"), ("--batch-size", "0"), ("--ten-crop-every", "-1")])
def test_invalid_numbers_are_refused_before_anything_is_written(data, tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as stop:
        train_main("--data", data, "--out", tmp_path / "run", option, value)
    assert stop.value.code == 2
    assert option in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def refused(function, *args):
    """The one-line message a program stopped with (SystemExit carrying a string)."""
    with pytest.raises(SystemExit) as stop:
        function(*args)
    message = stop.value.code
    assert isinstance(message, str) and message.startswith("error: ") and "\n" not in message, message
    assert "allow_pickle" not in message and "Traceback" not in message
    return message


def test_missing_or_unprepared_data_and_a_file_as_out(data, tmp_path):
    out = tmp_path / "run"
    assert "no such prepared file" in refused(train_main, "--data", tmp_path / "nowhere", "--out", out)
    unprepared = tmp_path / "unprepared"
    unprepared.mkdir()
    (unprepared / "train.h5").write_bytes(os.urandom(1000))
    assert "not an HDF5 file" in refused(train_main, "--data", unprepared, "--out", out)
    half = tmp_path / "half"
    half.mkdir()
    write_split(half / "train.h5", np.zeros((2, 8, 8, 3), np.uint8), np.zeros(2), complete=False)
    assert "not a complete prepared file" in refused(train_main, "--data", half, "--out", out)
    assert not out.exists()

    (tmp_path / "file").write_text("in the way")
    assert "is a file" in refused(train_main, "--data", data, "--out", tmp_path / "file")
    assert (tmp_path / "file").read_text() == "in the way"


def test_resume_without_a_checkpoint(data, tmp_path):
    assert "nothing to resume" in refused(train_main, "--data", data, "--out", tmp_path / "run", "--resume")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage", ["truncated", "random bytes", "other model"])
def test_checkpoints_that_cannot_be_resumed(data, tmp_path, damage):
    out = tmp_path / "run"
    out.mkdir()
    if damage == "other model":
        save_checkpoint(out / CHECKPOINT, {}, {"model": dict(SMALL), "classes": ["n0", "n1", "n2"]})
    else:
        save_checkpoint(out / CHECKPOINT, {"w": np.arange(10_000.0)}, {"model": {}})
        whole = (out / CHECKPOINT).read_bytes()
        (out / CHECKPOINT).write_bytes(whole[:len(whole) // 2] if damage == "truncated" else os.urandom(len(whole)))
    before = contents(out)
    message = refused(train_main, "--data", data, "--out", out, "--resume")
    assert ("different model" if damage == "other model" else "not a readable tinyalex checkpoint") in message
    after = contents(out)
    after.pop(".lock", None)  # the lock file of the run that refused
    assert after == before


def test_evaluate_and_predict_explain_a_damaged_checkpoint(data, tmp_path):
    (tmp_path / CHECKPOINT).write_bytes(os.urandom(2000))
    image = tmp_path / "photo.png"
    Image.new("RGB", (300, 260), "red").save(image)
    assert "not a readable tinyalex checkpoint" in refused(example("evaluate").main,
                                                           [str(tmp_path / CHECKPOINT), str(data), "--devices", "cpu"])
    assert "not a readable tinyalex checkpoint" in refused(
        example("predict").main, [str(tmp_path / CHECKPOINT), str(image), "--data", str(data), "--devices", "cpu"])


def test_predict_on_data_stored_smaller_than_the_crop(tmp_path):
    rng = np.random.default_rng(0)
    small = write_split(tmp_path / "train.h5", rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8), np.arange(8) % 3)
    train = PreparedSplit(small)
    model = AlexNet(devices="cpu", **SMALL)
    Trainer(model, SMALL, train, train, tmp_path / "run", recipe=Recipe(batch_size=4)).save()
    image = tmp_path / "photo.png"
    Image.new("RGB", (300, 260), "red").save(image)
    message = refused(example("predict").main, [str(tmp_path / "run" / CHECKPOINT), str(image), "--train-h5",
                                                str(small), "--devices", "cpu"])
    assert "64-pixel images, smaller than the network's 67-pixel crops" in message


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can write to: a read-only mount for root (who ignores permissions)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)]).returncode != 0:
        pytest.skip("cannot mount a read-only folder here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_out_that_cannot_be_written_is_found_at_the_start(data, read_only_folder):
    message = refused(train_main, "--data", data, "--out", read_only_folder / "run")
    assert "cannot be written" in message


def run_program(*args, **options):
    command = [sys.executable, str(ROOT / "examples" / "train_imagenet.py"), "--devices", "cpu", "--batch-size", "4",
               "--ten-crop-every", "0", "--no-plots", *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)


def test_second_training_run_into_one_out_is_refused(data, tmp_path):
    out = tmp_path / "run"
    first = run_program("--data", data, "--out", out, "--epochs", "50")
    try:
        deadline = time.monotonic() + 120
        while not (out / ".lock").exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # from creating the lock file to holding the lock
        assert first.poll() is None, first.communicate()[1]
        second = run_program("--data", data, "--out", out, "--epochs", "1", "--seed", "1")
        _, err = second.communicate(timeout=120)
        assert second.returncode != 0 and "in use by a training run" in err and "Traceback" not in err
    finally:
        first.kill()
        first.communicate()


def test_full_disk_while_saving_is_one_message(data, tmp_path):
    """A file size limit stands in for a full disk: the checkpoint (hundreds of MB) cannot be written."""
    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    out = tmp_path / "run"
    done = run_program("--data", data, "--out", out, "--epochs", "1", preexec_fn=limit_file_size)
    _, err = done.communicate(timeout=600)
    assert done.returncode != 0
    assert err.count("error:") == 1 and "no space left" in err and "no checkpoint was written" in err
    assert "Traceback" not in err
    assert not (out / CHECKPOINT).exists() and not (out / (CHECKPOINT + ".writing")).exists()


def test_out_without_room_for_a_checkpoint_is_found_at_the_start(data, tmp_path, monkeypatch):
    real_disk_usage = shutil.disk_usage

    def almost_full(path):
        total, used, _ = real_disk_usage(path)
        return type(real_disk_usage(path))(total, used, 10_000_000)   # 10 MB free

    monkeypatch.setattr(shutil, "disk_usage", almost_full)
    message = refused(train_main, "--data", data, "--out", tmp_path / "run")
    assert "10 MB free" in message and "make room" in message
    assert not (tmp_path / "run").exists()
