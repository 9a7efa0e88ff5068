"""Corners of data preparation and reading that the other tests never reach: a symbolic-link
loop in a class folder, the fsync of the rows before a preparation checkpoint, and the
raw-read fallback for offsets not listed when a file was opened.
"""

import errno
import os

import h5py
import numpy as np
from conftest import write_split
from PIL import Image

from tinyalex.data import PreparedSplit
from tinyalex.datasets import prepare
from tinyalex.datasets.prepare import prepare_split

SIZE = 75


def noise(n, seed=0, side=SIZE):
    """n different random images."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)



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
    split = PreparedSplit(path)
    assert split.descriptor is not None
    split.offsets[:] = -1                        # as if h5py could not list the chunks at open
    for index in (0, 2, 4, 3):
        read, _ = split.read([index])
        assert np.array_equal(read[0], images[index]), index
    assert split.offsets[1] == -1 and (split.offsets[[0, 2, 3, 4]] > 0).all()   # found on the way, as asked
