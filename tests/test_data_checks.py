"""Data that is wrong must not be read as if it were right: checksums per image, labels and
statistics checked at open, a file changed under a running job, datasets/verify.py; and the
preparation's corners that the other tests never reach (a symbolic-link loop, the fsync of
the rows before a checkpoint, the raw-read fallback).
"""

import errno
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import example, write_split
from PIL import Image

from tinyalex import AlexNet, Recipe
from tinyalex.data import PreparedSplit
from tinyalex.datasets import DataChanged, DatasetError
from tinyalex.datasets import prepare
from tinyalex.datasets.prepare import prepare_split
from tinyalex.training import CHECKPOINT, Trainer, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SIZE = 75
SMALL = dict(num_classes=3, image_size=67, channels=(8, 8, 12, 12, 8), hidden=16)


def noise(n, seed=0, side=SIZE):
    """n different random images."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)


def written(path, images, labels):
    """write_split into a folder made on the way."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_split(path, images, labels)


def flip_byte(path, index, at=1000):
    """Flips one bit of image ``index`` in the file on disk, past HDF5's back."""
    with h5py.File(path, "r") as f:
        offset = f["images"].id.get_chunk_info_by_coord((index, 0, 0, 0)).byte_offset
    with open(path, "r+b") as file:
        file.seek(offset + at)
        byte = file.read(1)[0]
        file.seek(offset + at)
        file.write(bytes([byte ^ 0x10]))


def verify(*paths):
    """datasets/verify.py run as a user runs it -> (exit code, stdout, stderr)."""
    done = subprocess.run([sys.executable, str(ROOT / "datasets" / "verify.py"), *map(str, paths)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return done.returncode, done.stdout, done.stderr


# Checksums -----------------------------------------------------------------------------------

def test_each_image_gets_its_crc32_at_preparation(tmp_path):
    images = noise(5)
    path = write_split(tmp_path / "train.h5", images, np.arange(5) % 3)
    with h5py.File(path, "r") as f:
        stored = f["checksums"][...]
    assert stored.tolist() == [zlib.crc32(image.tobytes()) for image in images]


def test_a_flipped_bit_stops_the_read_and_verify_names_the_image(tmp_path):
    path = write_split(tmp_path / "train.h5", noise(6), np.arange(6) % 3)
    flip_byte(path, 4)
    split = PreparedSplit(path)
    split.read([0, 1, 2, 3, 5])                      # the others are sound
    with pytest.raises(DataChanged, match=r"image 4 \(train_4.JPEG\) does not match the checksum"):
        split.read([1, 4])
    rc, out, err = verify(path)
    assert rc == 1, (out, err)
    assert "1 of 6 images do not match" in out and "image 4: train_4.JPEG" in out


def test_verify_passes_a_sound_file_and_gives_one_line_for_a_missing_one(tmp_path):
    path = write_split(tmp_path / "train.h5", noise(3), np.arange(3))
    rc, out, err = verify(path)
    assert rc == 0 and "every image matches its checksum" in out, (out, err)
    rc, out, err = verify(tmp_path / "missing.h5")
    assert rc == 2 and err.count("\n") == 1 and "no such prepared file" in err


def test_files_prepared_before_checksums_existed_keep_working(tmp_path):
    images = noise(4)
    path = write_split(tmp_path / "train.h5", images, np.arange(4) % 3)
    with h5py.File(path, "r+") as f:
        del f["checksums"]
    read, _ = PreparedSplit(path).read([0, 3])
    assert np.array_equal(read, images[[0, 3]])
    rc, out, err = verify(path)
    assert rc == 0 and "prepared before tinyalex stored checksums" in out, (out, err)


# Checked when a file is opened -----------------------------------------------------------------

@pytest.mark.parametrize("wrong", [3, 7, -1])
def test_a_label_out_of_range_is_refused_at_open_naming_the_file(tmp_path, wrong):
    path = write_split(tmp_path / "train.h5", noise(4), [0, 1, wrong, 2])
    with pytest.raises(DatasetError, match=rf"train.h5: image 2 has label {wrong}, not a class index from 0 to 2"):
        PreparedSplit(path)


def test_nan_in_the_mean_image_is_refused_at_open_not_called_divergence(tmp_path):
    data = tmp_path / "data"
    path = written(data / "train.h5", noise(8), np.arange(8) % 3)
    written(data / "val.h5", noise(3, seed=1), np.arange(3))
    with h5py.File(path, "r+") as f:
        f["mean_image"][10, 20, 1] = np.nan
    with pytest.raises(DatasetError, match="train.h5: its mean_image holds values that are not finite"):
        PreparedSplit(path)
    with pytest.raises(SystemExit) as stop:
        example("train_imagenet").main(["--devices", "cpu", "--batch-size", "4", "--data", str(data),
                                        "--out", str(tmp_path / "run")])
    message = stop.value.code
    assert "train.h5: its mean_image holds values that are not finite" in message and "\n" not in message
    assert "learning rate" not in message and not (tmp_path / "run" / CHECKPOINT).exists()


@pytest.mark.parametrize("dataset", ["labels", "checksums"])
def test_a_list_shorter_than_the_images_is_refused_at_open(tmp_path, dataset):
    path = write_split(tmp_path / "train.h5", noise(4), np.arange(4) % 3)
    with h5py.File(path, "r+") as f:
        kept = f[dataset][:3]
        del f[dataset]
        f[dataset] = kept
    with pytest.raises(DatasetError, match=f"train.h5 holds 4 images and 3 {dataset}"):
        PreparedSplit(path)


# A file changed under a running job -----------------------------------------------------------

def test_a_file_copied_over_while_read_is_found(tmp_path):
    images, labels = noise(6), np.arange(6) % 3
    path = write_split(tmp_path / "train.h5", images, labels)
    # the same images under other labels: every checksum still matches, only the labels lie
    other = written(tmp_path / "other" / "train.h5", images, (labels + 1) % 3)
    split = PreparedSplit(path)
    split.read([0, 1])
    time.sleep(0.1)                      # past the file system's clock tick, as any real copy is
    inode = os.stat(path).st_ino
    shutil.copyfile(other, path)         # cp: the same file rewritten in place
    assert os.stat(path).st_ino == inode and os.stat(path).st_size == os.stat(other).st_size
    with pytest.raises(DataChanged, match="train.h5 changed while this job was reading it"):
        split.read([0, 1])


def test_a_file_moved_over_while_read_is_found(tmp_path):
    images, labels = noise(6), np.arange(6) % 3
    other = written(tmp_path / "other" / "train.h5", images, (labels + 1) % 3)
    path = write_split(tmp_path / "train.h5", images, labels)
    opened = os.stat(path)
    os.utime(other, ns=(opened.st_atime_ns, opened.st_mtime_ns))   # as cp -p or rsync -t would leave it
    split = PreparedSplit(path)
    os.replace(other, path)              # mv: another file, of the same size and time, under the name
    with pytest.raises(DataChanged, match="changed while this job was reading it"):
        split.read([2])


def test_training_stops_with_one_line_and_a_checkpoint_when_its_file_changes(tmp_path):
    data = tmp_path / "data"
    images, labels = noise(8), np.arange(8) % 3
    train = PreparedSplit(written(data / "train.h5", images, labels))
    val = PreparedSplit(written(data / "val.h5", noise(3, seed=1), np.arange(3)))
    changed = written(tmp_path / "changed" / "train.h5", images[::-1], labels[::-1])

    def change_the_file(trainer):
        time.sleep(0.1)
        shutil.copyfile(changed, data / "train.h5")
        (trainer.out_dir / CHECKPOINT).unlink()      # so that the one found after is the stop's

    out = tmp_path / "run"
    trainer = Trainer(AlexNet(devices="cpu", **SMALL), SMALL, train, val, out, recipe=Recipe(batch_size=4),
                      epochs=3, ten_crop_every=0, after_epoch=change_the_file)
    with pytest.raises(DataChanged) as stop:
        trainer.train()
    message = str(stop.value)
    assert "train.h5 changed while this job was reading it" in message and "\n" not in message
    assert f"checkpoint of the steps trained so far was written to {out / CHECKPOINT}" in message
    _, meta = load_checkpoint(out / CHECKPOINT)
    assert (meta["epoch"], meta["batch"]) == (1, 0) and len(meta["history"]) == 1


# Preparation --------------------------------------------------------------------------------

def test_a_symbolic_link_loop_in_a_class_folder_is_skipped_with_its_reason(tmp_path):
    folder = tmp_path / "src" / "train" / "n00000000"
    folder.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(noise(1, seed=i, side=40)[0]).save(folder / f"img_{i}.JPEG")
    os.symlink("loop.JPEG", folder / "loop.JPEG")                  # points at itself
    os.symlink("b.jpg", folder / "a.jpg")                          # two that point at each other
    os.symlink("a.jpg", folder / "b.jpg")
    path = prepare_split(tmp_path / "src", tmp_path / "out", "train", size=32, workers=1)
    with h5py.File(path, "r") as f:
        skipped = dict(line.split("\t") for line in f["skipped"].asstr()[...])
        assert len(f["images"]) == 2
    assert sorted(skipped) == ["n00000000/a.jpg", "n00000000/b.jpg", "n00000000/loop.JPEG"]
    assert all(os.strerror(errno.ELOOP) in reason for reason in skipped.values()), skipped


def test_rows_are_fsynced_before_every_checkpoint_that_counts_them(tmp_path, monkeypatch):
    """A kill leaves the page cache alone, so only the order of the calls shows a missing
    fsync: each checkpoint put in place must count no more rows than were synced."""
    folder = tmp_path / "src" / "train" / "n00000000"
    folder.mkdir(parents=True)
    for i in range(7):
        Image.fromarray(noise(1, seed=i, side=40)[0]).save(folder / f"img_{i}.JPEG")
    out = tmp_path / "out"
    rows = out / "train.rows.partial"
    synced = {"bytes": 0}
    counted = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        real_fsync(fd)
        if rows.exists() and os.fstat(fd).st_ino == os.stat(rows).st_ino:
            synced["bytes"] = os.fstat(fd).st_size

    def replace(source, target):
        if str(target).endswith(".checkpoint.npz"):
            with np.load(source) as state:
                counted.append((int(state["images_written"]) * 32 * 32 * 3, synced["bytes"]))
        real_replace(source, target)

    monkeypatch.setattr(prepare.os, "fsync", fsync)
    monkeypatch.setattr(prepare.os, "replace", replace)
    prepare_split(tmp_path / "src", out, "train", size=32, workers=1, checkpoint_every=2)
    assert len(counted) >= 4 and counted[-1][0] == 7 * 32 * 32 * 3
    assert all(rows_counted <= rows_synced for rows_counted, rows_synced in counted), counted


# The raw-read fallback --------------------------------------------------------------------------

def test_raw_reads_of_offsets_not_listed_at_open_read_the_asked_image(tmp_path):
    images = noise(5)
    path = write_split(tmp_path / "train.h5", images, np.arange(5) % 3)
    split = PreparedSplit(path, check=False)     # the fallback alone, not the checksums, must be right
    assert split.descriptor is not None
    split.offsets[:] = -1                        # as if h5py could not list the chunks at open
    for index in (0, 2, 4, 3):
        read, _ = split.read([index])
        assert np.array_equal(read[0], images[index]), index
    assert split.offsets[1] == -1 and (split.offsets[[0, 2, 3, 4]] > 0).all()   # found on the way, as asked
