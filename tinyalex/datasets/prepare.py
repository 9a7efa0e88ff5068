"""Prepares ImageNet, or any folder in its layout, as one HDF5 file per split.

:func:`prepare_imagenet` (the command line: ``python datasets/prepare.py SRC OUT_DIR``)
reads SRC/train/<wnid>/*.JPEG and SRC/val/ (listing.py says which files belong to a split
and how classes are numbered) and writes OUT_DIR/train.h5 and OUT_DIR/val.h5 in the
layout prepared.py describes. Decoding and resizing is the slow part, so it runs in
``workers`` processes.

N counts the images actually written: files that cannot be decoded are left out (listed
in `skipped` and in OUT_DIR/<split>_skipped.txt), and the others are written one after
another with no gaps, in listing order: class by class for class folders, by file name
for a flat folder.

Surviving a stop at any moment (Ctrl-C, ``kill -9``, a full disk, a closed terminal).
An HDF5 file is not safe to kill while it is being written: HDF5 keeps its index in
memory and writes it back in pieces, and a process killed between two pieces leaves a
file that can no longer be opened. So while the images are decoded, nothing is written
in HDF5. The work goes to two plain files instead:

    OUT_DIR/<split>.rows.partial       the decoded images, S*S*3 bytes each, one after another
    OUT_DIR/<split>.checkpoint.npz     how many files are done and how many rows are valid,
                                       the skipped files and the running colour sums

Every ``checkpoint_every`` files the rows are flushed to disk (fsync) and then the
checkpoint is written under a temporary name and renamed over the old one, so the
checkpoint on disk is always a whole one and never counts a row that is not on disk.
A run that finds a checkpoint cuts the rows file back to the rows it counts (anything
after them was written by a run that did not reach its next checkpoint) and continues
with the next file. When every file is done, the HDF5 file is built from the rows file
in one go (prepared.write_prepared: through <split>.h5.partial, ``complete`` set last,
then renamed to <split>.h5); a stop during that step just builds it again. The room for
it is checked first, because HDF5 cannot stop cleanly when the disk fills up half-way
through a file. The rows file and the checkpoint are deleted once <split>.h5 exists.

The price: the rows file needs as much disk as the split's images (about 250 GB for
ImageNet's training set) until the HDF5 file is built, and building it reads them once
more (a sequential copy: minutes, against the hours of decoding).

Only one preparation may write into OUT_DIR at a time: each holds OUT_DIR/.lock
(tinyalex/locking.py) while it runs, and a second one stops at once. The decoding
processes die with the process that started them, so a killed preparation leaves none
behind.
"""

import collections
import contextlib
import ctypes
import errno
import hashlib
import multiprocessing
import os
import resource
import shutil
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py
import numpy as np

from ..locking import folder_lock
from ..progress import progress_bar
from .errors import DatasetError
from .images import load_image
from .listing import find_split
from .prepared import is_complete, partial_path, write_prepared
from .stats import ColourStatistics, rgb_moments

SPLITS = ("train", "val")
CHUNKSIZE = 16  # files handed to a worker process at a time
REPORT_LINES = 10  # skipped files printed at the end; the report file has all
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # full disk, full quota, file size limit


class NoSpaceLeft(DatasetError):
    """The output folder's disk (or quota, or file size limit) is full."""


def prepare_imagenet(src, out_dir, splits=SPLITS, *, val_labels=None, val_synsets=None, size=256,
                     workers=None, checkpoint_every=1000):
    """Prepares each split of SRC into OUT_DIR/<split>.h5 -> {split: path}.

    All splits are listed before any is decoded, so a wrong labels file is reported at
    once, not after hours spent on train/. Splits whose file is already complete are left
    as they are. Raises FolderInUse if another preparation writes into OUT_DIR, and
    NoSpaceLeft if the disk fills up (run again once there is room: it continues).
    """
    if size < 1 or checkpoint_every < 1 or (workers is not None and workers < 1):
        raise DatasetError(f"size, checkpoint_every and workers must be positive, not {size}, "
                           f"{checkpoint_every}, {workers}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DatasetError(f"{out_dir} is a file, not a folder; choose another output folder")
    listings = {}
    for split in splits:
        if is_complete(out_dir / f"{split}.h5"):
            check_kept(out_dir / f"{split}.h5", Path(src) / split, size)
        else:
            labels, synsets = (val_labels, val_synsets) if split == "val" else (None, None)
            listings[split] = find_split(src, split, labels, synsets)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with folder_lock(out_dir, "a preparation"):
            for split in splits:
                path = out_dir / f"{split}.h5"
                if is_complete(path):
                    remove_leftovers(path)
                    print(f"{path} is already complete; delete it to prepare it again")
                else:
                    write_split(listings[split], out_dir, size=size, workers=workers,
                                checkpoint_every=checkpoint_every)
    except OSError as error:
        if error.errno in NO_SPACE:
            raise NoSpaceLeft(f"{out_dir}: no space left on its disk ({os.strerror(error.errno)}); make room and run "
                              "the same command again: it continues from its last checkpoint") from None
        if error.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise DatasetError(f"{out_dir} cannot be written ({os.strerror(error.errno)}); choose another output "
                               "folder") from None
        raise
    return {split: out_dir / f"{split}.h5" for split in splits}


def check_kept(path, folder, size):
    """A complete ``path`` is kept as it is: refuse it if it holds images of another size than
    asked, and say so if it was prepared from another folder than ``folder``."""
    stored = file_description(path)
    if stored["size"] != size:
        raise DatasetError(f"{path} is complete but holds {stored['size']}-pixel images, not the {size} asked for; "
                           "delete it to prepare it again at this size, or choose another output folder")
    source = stored["source"]
    if source and Path(source) != folder and Path(source).resolve() != folder.resolve():
        print(f"note: {path} is kept, but it was prepared from {source}, not {folder}; delete it to prepare "
              f"{folder} instead")


def file_description(path):
    """The ``size`` and ``source`` attributes of a prepared file."""
    with h5py.File(path, "r") as f:
        return {"size": int(f.attrs.get("size", f["images"].shape[1])), "source": str(f.attrs.get("source", ""))}


def prepare_split(src, out_dir, split, *, val_labels=None, val_synsets=None, size=256, workers=None,
                  checkpoint_every=1000):
    """Prepares SRC/<split> into OUT_DIR/<split>.h5 -> its path (see prepare_imagenet)."""
    return prepare_imagenet(src, out_dir, [split], val_labels=val_labels, val_synsets=val_synsets, size=size,
                            workers=workers, checkpoint_every=checkpoint_every)[split]


def rows_path(path):
    return path.with_name(path.name.replace(".h5", ".rows.partial"))


def checkpoint_path(path):
    return path.with_name(path.name.replace(".h5", ".checkpoint.npz"))


def remove_leftovers(path):
    """Deletes the work files of a split whose <split>.h5 is complete (a run stopped just
    after the rename leaves them)."""
    for leftover in (rows_path(path), checkpoint_path(path), partial_path(path)):
        leftover.unlink(missing_ok=True)


def write_split(listing, out_dir, *, size=256, workers=None, checkpoint_every=1000):
    """Decodes the files of `listing` into OUT_DIR/<split>.h5, resuming a partial run."""
    out_dir = Path(out_dir)
    path = out_dir / f"{listing.split}.h5"
    if workers is None:
        workers = os.cpu_count() or 1
    with SplitWriter.open(path, listing, size) as writer:
        decode_files(writer, workers, checkpoint_every)
        write_report(writer, out_dir / f"{listing.split}_skipped.txt")
        writer.finish()
    remove_leftovers(path)
    return path


def decode_files(writer, workers, checkpoint_every):
    """Decodes every file not yet done, in order, and hands each result to `writer`."""
    listing = writer.listing
    start = writer.files_done
    tasks = [(str(listing.folder / name), writer.size, writer.stats is not None) for name in listing.files[start:]]
    with contextlib.closing(decoded(tasks, workers)) as results, \
            progress_bar(len(listing.files), desc=listing.split, unit="img", initial=start) as bar:
        for index, (image, moments, error) in enumerate(results, start=start):
            name, label = listing.files[index], listing.labels[index]
            if error is None:
                writer.add_image(name, label, image, moments)
            else:
                writer.add_skipped(name, error)
            bar.update()
            if writer.files_done % checkpoint_every == 0:
                writer.checkpoint()
    writer.checkpoint()


def decoded(tasks, workers):
    """Yields decode_task(task) for each task, in order.

    With several workers, chunks of CHUNKSIZE tasks run in worker processes, started
    fresh ("spawn"), so that they inherit nothing of this process (no open file, no
    lock), and set up to die with it (die_with_parent). At most 2 * workers chunks are
    submitted at a time: if writing is slower than decoding, finished images wait in a
    short queue instead of filling the memory.
    """
    if workers <= 1 or len(tasks) <= CHUNKSIZE:
        yield from map(decode_task, tasks)
        return
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        pending = collections.deque()
        for start in range(0, len(tasks), CHUNKSIZE):
            pending.append(executor.submit(decode_chunk, tasks[start:start + CHUNKSIZE]))
            if len(pending) > 2 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def die_with_parent(parent_pid):
    """Runs first in each worker: ask the kernel for SIGKILL when the parent dies.

    Without this, a parent killed with ``kill -9`` leaves its workers running on (Linux
    re-parents them), decoding for nobody. prctl(PR_SET_PDEATHSIG) exists on Linux only;
    elsewhere this step is skipped. The signal comes when the *thread* that started the
    worker ends: here the main thread, which starts workers as it submits the chunks.
    """
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request above took effect
        os._exit(1)


def decode_chunk(tasks):
    return [decode_task(task) for task in tasks]


def decode_task(task):
    """(path, size, with_moments) -> (image, moments, error); runs in a worker process.

    A file that cannot be decoded gives image None and an error message
    instead of an exception, so one bad file never stops the run.
    """
    path, size, with_moments = task
    try:
        image = load_image(path, size)
    except Exception as error:  # anything Pillow raises for a bad file, and images.py's refusals
        return None, None, f"{type(error).__name__}: {error}"
    moments = rgb_moments(image) if with_moments else None
    return image, moments, None


class SplitWriter:
    """OUT_DIR/<split>.rows.partial while the images are decoded, and its checkpoint.

    files_done: files of the listing handled so far (written or skipped).
    images_written: image rows written; the next image goes to this row.
    skipped: "path<TAB>reason" for each file left out so far.
    stats: the running colour sums (train split only, else None).
    """

    def __init__(self, path, listing, size, fingerprint, rows, state):
        self.path = path
        self.listing = listing
        self.size = size
        self.fingerprint = fingerprint
        self.rows = rows
        self.files_done = int(state["files_done"])
        self.images_written = int(state["images_written"])
        self.skipped = [str(line) for line in state["skipped"]]
        self.stats = ColourStatistics.from_state(state) if wants_statistics(listing) else None

    @property
    def row_bytes(self):
        return self.size * self.size * 3

    @classmethod
    def open(cls, path, listing, size):
        """Continues from the checkpoint of an earlier run, or starts afresh."""
        fingerprint = listing_fingerprint(listing, size)
        state = read_checkpoint(checkpoint_path(path), fingerprint)
        rows = rows_path(path)
        if state is None:
            state = fresh_state(listing, size)
            rows.unlink(missing_ok=True)
        valid = int(state["images_written"]) * size * size * 3
        if valid > 0 and (not rows.exists() or rows.stat().st_size < valid):
            raise DatasetError(f"{rows} holds fewer images than {checkpoint_path(path).name} counts (was it "
                               f"changed or deleted?); delete both to start {listing.split} over")
        if valid > 0:
            print(f"{path}: resuming after {int(state['files_done'])} of {len(listing.files)} files")
        file = open(rows, "r+b" if rows.exists() else "w+b")
        # Rows after the checkpoint's count come from a run stopped before its next
        # checkpoint: cut them off, the same files are decoded again.
        file.truncate(valid)
        file.seek(valid)
        writer = cls(path, listing, size, fingerprint, file, state)
        writer.checkpoint()
        return writer

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.rows.close()

    def add_image(self, name, label, image, moments):
        self.rows.write(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
        if self.stats is not None:
            self.stats.add(image, moments)
        self.images_written += 1
        self.files_done += 1

    def add_skipped(self, name, reason):
        self.skipped.append(f"{name}\t{reason}")
        self.files_done += 1

    def checkpoint(self):
        """Puts the rows on disk, then saves the counters that say they are there."""
        self.rows.flush()
        os.fsync(self.rows.fileno())
        state = {
            "fingerprint": np.array(self.fingerprint),
            "files_done": np.array(self.files_done),
            "images_written": np.array(self.images_written),
            "skipped": np.array(self.skipped, dtype=str),
        }
        if self.stats is not None:
            state.update(self.stats.state())
        target = checkpoint_path(self.path)
        temporary = target.with_name(target.name + ".tmp")
        try:
            with open(temporary, "wb") as file:
                np.savez(file, **state)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)  # a save that failed half-way leaves nothing behind

    def written_files(self):
        """(file name, label) of each image row, in row order: the files done, less the skipped."""
        skipped = {line.split("\t", 1)[0] for line in self.skipped}
        done = zip(self.listing.files[:self.files_done], self.listing.labels[:self.files_done])
        return [(name, label) for name, label in done if name not in skipped]

    def finish(self):
        """Builds OUT_DIR/<split>.h5 from the rows and the statistics (prepared.write_prepared).

        Safe to repeat, should a run be stopped half-way through it: the rows file and
        the checkpoint stay until the finished file has its name.
        """
        if self.images_written == 0:
            raise DatasetError(f"{self.listing.folder}: none of its {len(self.listing.files)} image files could be "
                               f"decoded; see {self.listing.split}_skipped.txt")
        written = self.written_files()
        assert len(written) == self.images_written, "the checkpoint disagrees with the listing"
        # HDF5 cannot stop cleanly when the disk fills up half-way (it crashes while it
        # tries to close the file), so make sure of the room first.
        check_room(self.path, needed=self.images_written * (self.row_bytes + 200) + 4 * self.row_bytes + (1 << 20))
        shape = (self.images_written, self.size, self.size, 3)
        images = np.memmap(self.rows.name, dtype=np.uint8, mode="r", shape=shape)
        blocks = (images[start:start + 64] for start in range(0, len(images), 64))
        statistics = None
        if self.stats is not None:
            eigenvalues, eigenvectors = self.stats.rgb_eigen()
            statistics = dict(mean_image=self.stats.mean_image(), rgb_mean=self.stats.rgb_mean(),
                              rgb_covariance=self.stats.rgb_covariance(), rgb_eigenvalues=eigenvalues,
                              rgb_eigenvectors=eigenvectors)
        write_prepared(self.path, (shape, blocks), [label for _, label in written], [name for name, _ in written],
                       self.listing.wnids, self.listing.class_names, split=self.listing.split,
                       source=self.listing.folder, skipped=self.skipped, statistics=statistics)
        del images


def check_room(path, needed):
    """Raises NoSpaceLeft unless a file of ``needed`` bytes fits beside ``path``: in the disk's
    free space and under the file size limit (ulimit -f)."""
    free = shutil.disk_usage(path.parent).free
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        free = min(free, limit)
    if free < needed:
        raise NoSpaceLeft(f"{path.parent}: building {path.name} needs about {needed / 1e6:.1f} MB, and only "
                          f"{free / 1e6:.1f} MB can be written; make room and run the same command again (the "
                          "decoded images are kept)")


def listing_fingerprint(listing, size):
    """A hash of what is being prepared, so a checkpoint of other inputs is never resumed."""
    digest = hashlib.sha256(f"{listing.split} {size}\n".encode())
    for name, label in zip(listing.files, listing.labels):
        digest.update(f"{name}\t{label}\n".encode())
    return digest.hexdigest()


def fresh_state(listing, size):
    """The progress of a run that has done nothing yet."""
    state = {"files_done": 0, "images_written": 0,
             "skipped": [f"{name}\tnot an image file (by its extension)" for name in listing.ignored]}
    if wants_statistics(listing):
        state.update(ColourStatistics(size).state())
    return state


def wants_statistics(listing):
    """The paper computes the mean image and the colour PCA over the training set only."""
    return listing.split == "train"


def read_checkpoint(path, fingerprint):
    """The saved progress, or None if there is none; refuses one of other inputs."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            state = {key: saved[key] for key in saved.files}
    except Exception as error:  # BadZipFile, EOFError, ValueError, ...: whatever a damaged file gives
        raise DatasetError(f"{path} is damaged ({type(error).__name__}); delete it and "
                           f"{path.name.replace('.checkpoint.npz', '.rows.partial')} to start over") from None
    if str(state["fingerprint"]) != fingerprint:
        raise DatasetError(f"{path} belongs to a preparation of other files (the folder or the size changed); "
                           f"delete it and {path.name.replace('.checkpoint.npz', '.rows.partial')} to start over")
    return state


def write_report(writer, report_path):
    """Prints how many files were skipped and why, and writes them all to `report_path`."""
    listing = writer.listing
    paths_and_reasons = [line.split("\t", 1) for line in writer.skipped]
    lines = [f"{listing.folder / name}\t{reason}" for name, reason in paths_and_reasons]
    report_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    print(f"{listing.split}: {writer.images_written} images written, {len(lines)} files skipped"
          + (f" (all listed in {report_path})" if lines else ""))
    for line in lines[:REPORT_LINES]:
        print("  skipped " + line.replace("\t", ": "))
    if len(lines) > REPORT_LINES:
        print(f"  ... and {len(lines) - REPORT_LINES} more")

