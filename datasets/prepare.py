"""Prepares ImageNet, or any folder in its layout, as one HDF5 file per split.

    python -m datasets.prepare SRC OUT_DIR [--splits train val] [--workers N]
        [--val-labels FILE] [--val-synsets FILE] [--size 256] [--checkpoint-every 1000]

reads SRC/train/<wnid>/*.JPEG and SRC/val/ (see datasets/listing.py for the
folder layout, the labels file formats and how class indices are numbered) and
writes OUT_DIR/train.h5 and OUT_DIR/val.h5. Decoding and resizing is the slow
part, so it runs in `--workers` processes (all CPU cores by default).

Layout of OUT_DIR/<split>.h5 (N images written, S = size = 256, K classes):

    dataset            shape          dtype     contents
    images             (N, S, S, 3)   uint8     RGB; shorter side scaled to S, then the
                                                central S x S crop (datasets/images.py).
                                                One image per chunk, no compression, so
                                                reading one image reads exactly its bytes.
    labels             (N,)           int64     class index 0..K-1, into `wnids`
    filenames          (N,)           string    source file of each image, relative to SRC/<split>
    wnids              (K,)           string    the sorted folder names of SRC/train
    class_names        (K,)           string    readable names (the wnids if SRC has no words file)
    skipped            (M,)           string    "path<TAB>reason" for each file left out

    train.h5 only (datasets/stats.py; all on the 0..255 scale of the pixels):
    mean_image         (S, S, 3)      float32   mean over training images, per pixel and channel
    rgb_mean           (3,)           float64   mean R, G, B over all training pixels
    rgb_covariance     (3, 3)         float64   covariance of R, G, B over all training pixels
    rgb_eigenvalues    (3,)           float64   its eigenvalues, largest first, in levels^2
    rgb_eigenvectors   (3, 3)         float64   unit eigenvectors as COLUMNS: [:, i] goes with value i

    attributes: complete (True), split ("train"/"val"), size (S), num_classes (K),
                source (the SRC/<split> folder as given)

h5py returns the string datasets as bytes; read them with
`f["wnids"].asstr()[...]`. Open files with open_prepared(), which refuses a
file that is not marked complete.

N counts the images actually written: files that cannot be decoded are left
out (listed in `skipped` and in OUT_DIR/<split>_skipped.txt), and the others
are written one after another with no gaps, in listing order: class by class
for class folders, by file name for a flat folder.

Resuming: the work goes to OUT_DIR/<split>.h5.partial. Every
`checkpoint_every` files, the HDF5 file is flushed and then the progress -- how
many files are done, how many images written, the skipped list and the running
sums of the colour statistics -- is saved to OUT_DIR/<split>.checkpoint.npz,
written to a temporary name and renamed, so the checkpoint on disk is always a
whole one. A run that finds a checkpoint continues after the last file it
counts, overwriting any image rows written after it. When all files are done,
the file is trimmed to N, the statistics are stored, `complete` is set to
True, and only then is the file renamed to OUT_DIR/<split>.h5 (os.replace, an
atomic rename). So a file named <split>.h5 is always finished, and running the
command again on a finished split does nothing.
This survives a killed process (Ctrl-C, kill -9, a closed terminal), not
necessarily a power cut: HDF5 files are not crash-proof. A partial file that
cannot be opened any more is started over.
"""

import argparse
import collections
import contextlib
import hashlib
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py
import numpy as np

from datasets.errors import DatasetError, IncompleteFileError
from datasets.images import load_image
from datasets.listing import find_split
from datasets.stats import ColourStatistics, rgb_moments
from tinyalex.data import is_complete
from tinyalex.progress import Progress

SPLITS = ("train", "val")
CHUNKSIZE = 16  # files handed to a worker process at a time
REPORT_LINES = 10  # skipped files printed at the end; the report file has all


def prepare_imagenet(src, out_dir, splits=SPLITS, *, val_labels=None, val_synsets=None, size=256,
                     workers=None, checkpoint_every=1000):
    """Prepares each split of SRC into OUT_DIR/<split>.h5 -> {split: path}.

    All splits are listed before any is decoded, so a wrong labels file is
    reported at once, not after hours spent on train/. Splits whose file is
    already complete are left as they are.
    """
    out_dir = Path(out_dir)
    listings = {}
    for split in splits:
        if is_complete(out_dir / f"{split}.h5"):
            print(f"{out_dir / f'{split}.h5'} is already complete; delete it to prepare it again")
        else:
            labels, synsets = (val_labels, val_synsets) if split == "val" else (None, None)
            listings[split] = find_split(src, split, labels, synsets)
    for listing in listings.values():
        write_split(listing, out_dir, size=size, workers=workers, checkpoint_every=checkpoint_every)
    return {split: out_dir / f"{split}.h5" for split in splits}


def prepare_split(src, out_dir, split, *, val_labels=None, val_synsets=None, size=256, workers=None,
                  checkpoint_every=1000):
    """Prepares SRC/<split> into OUT_DIR/<split>.h5 -> its path (see prepare_imagenet)."""
    return prepare_imagenet(src, out_dir, [split], val_labels=val_labels, val_synsets=val_synsets, size=size,
                            workers=workers, checkpoint_every=checkpoint_every)[split]


def open_prepared(path):
    """Opens a prepared file for reading -> h5py.File; refuses unfinished ones."""
    path = Path(path)
    partial = partial_path(path)
    if not path.exists() and partial.exists():
        raise IncompleteFileError(f"{path}: preparation was interrupted ({partial.name} exists); "
                                  "run datasets.prepare again to finish it")
    if not path.exists():
        raise DatasetError(f"{path}: file not found; make it with python -m datasets.prepare")
    if not is_complete(path):
        raise IncompleteFileError(f"{path}: not a complete prepared file (its 'complete' attribute is not set)")
    return h5py.File(path, "r")


def partial_path(path):
    return path.with_name(path.name + ".partial")


def checkpoint_path(path):
    return path.with_name(path.name.replace(".h5", ".checkpoint.npz"))


def write_split(listing, out_dir, *, size=256, workers=None, checkpoint_every=1000):
    """Decodes the files of `listing` into OUT_DIR/<split>.h5, resuming a partial run."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{listing.split}.h5"
    if workers is None:
        workers = os.cpu_count() or 1
    # A complete partial file means an earlier run stopped just before the rename.
    if not is_complete(partial_path(path)):
        with SplitWriter.open(path, listing, size) as writer:
            decode_files(writer, workers, checkpoint_every)
            write_report(writer, out_dir / f"{listing.split}_skipped.txt")
            writer.finish()
    checkpoint_path(path).unlink(missing_ok=True)
    os.replace(partial_path(path), path)
    return path


def decode_files(writer, workers, checkpoint_every):
    """Decodes every file not yet done, in order, and hands each result to `writer`."""
    listing = writer.listing
    start = writer.files_done
    tasks = [(str(listing.folder / name), writer.size, writer.stats is not None) for name in listing.files[start:]]
    with contextlib.closing(decoded(tasks, workers)) as results, \
            Progress(len(listing.files), desc=listing.split, unit="img", initial=start) as bar:
        for index, (image, moments, error) in enumerate(bar.wrap(results), start=start):
            name, label = listing.files[index], listing.labels[index]
            if error is None:
                writer.add_image(name, label, image, moments)
            else:
                writer.add_skipped(name, error)
            if writer.files_done % checkpoint_every == 0:
                writer.checkpoint()
    writer.checkpoint()


def decoded(tasks, workers):
    """Yields decode_task(task) for each task, in order.

    With several workers, chunks of CHUNKSIZE tasks run in worker processes.
    At most 2 * workers chunks are submitted at a time: if writing is slower
    than decoding, finished images wait in a short queue instead of filling
    the memory. (multiprocessing.Pool.imap does not hold back like this, and
    its terminate() can hang on Ctrl-C while large results are in flight.)
    """
    if workers <= 1 or len(tasks) <= CHUNKSIZE:
        yield from map(decode_task, tasks)
        return
    with ProcessPoolExecutor(workers) as executor:
        pending = collections.deque()
        for start in range(0, len(tasks), CHUNKSIZE):
            pending.append(executor.submit(decode_chunk, tasks[start:start + CHUNKSIZE]))
            if len(pending) > 2 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


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
    except Exception as error:  # anything Pillow raises for a bad file
        return None, None, f"{type(error).__name__}: {error}"
    moments = rgb_moments(image) if with_moments else None
    return image, moments, None


class SplitWriter:
    """OUT_DIR/<split>.h5.partial while it is written, and its checkpoint.

    files_done: files of the listing handled so far (written or skipped).
    images_written: image rows written; the next image goes to this row.
    skipped: "path<TAB>reason" for each file left out so far.
    stats: the running colour sums (train split only, else None).
    """

    def __init__(self, path, listing, size, fingerprint, file, state):
        self.path = path
        self.listing = listing
        self.size = size
        self.fingerprint = fingerprint
        self.file = file
        self.files_done = int(state["files_done"])
        self.images_written = int(state["images_written"])
        self.skipped = [str(line) for line in state["skipped"]]
        self.stats = ColourStatistics.from_state(state) if wants_statistics(listing) else None

    @classmethod
    def open(cls, path, listing, size):
        """Continues from the checkpoint of an earlier run, or starts afresh."""
        partial = partial_path(path)
        fingerprint = listing_fingerprint(listing, size)
        state = read_checkpoint(checkpoint_path(path), fingerprint)
        if partial.exists() and state is not None:
            try:
                file = h5py.File(partial, "r+")
                print(f"{partial}: resuming after {int(state['files_done'])} of {len(listing.files)} files")
                return cls(path, listing, size, fingerprint, file, state)
            except OSError as error:
                print(f"{partial} cannot be opened ({error}); starting over")
        file = create_partial(partial, listing, size)
        writer = cls(path, listing, size, fingerprint, file, fresh_state(listing, size))
        writer.checkpoint()
        return writer

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.file.close()

    def add_image(self, name, label, image, moments):
        row = self.images_written
        self.file["images"][row] = image
        self.file["labels"][row] = label
        self.file["filenames"][row] = name
        if self.stats is not None:
            self.stats.add(image, moments)
        self.images_written += 1
        self.files_done += 1

    def add_skipped(self, name, reason):
        self.skipped.append(f"{name}\t{reason}")
        self.files_done += 1

    def checkpoint(self):
        """Flushes the image rows, then saves the counters that say they are there."""
        self.file.flush()
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
        with open(temporary, "wb") as file:
            np.savez(file, **state)
        os.replace(temporary, target)

    def finish(self):
        """Trims the file to the images written, adds the statistics, marks it complete.

        Safe to repeat, should a run be stopped half-way through it.
        """
        if self.images_written == 0:
            raise DatasetError(f"{self.listing.folder}: none of its {len(self.listing.files)} image files could be "
                               f"decoded; see {self.listing.split}_skipped.txt")
        file = self.file
        for name in ("images", "labels", "filenames"):
            file[name].resize(self.images_written, axis=0)
        results = {"skipped": np.array(self.skipped, dtype=h5py.string_dtype())}
        if self.stats is not None:
            eigenvalues, eigenvectors = self.stats.rgb_eigen()
            results.update(mean_image=self.stats.mean_image(), rgb_mean=self.stats.rgb_mean(),
                           rgb_covariance=self.stats.rgb_covariance(), rgb_eigenvalues=eigenvalues,
                           rgb_eigenvectors=eigenvectors)
        for name, data in results.items():
            if name in file:
                del file[name]
            file.create_dataset(name, data=data)
        file.attrs["complete"] = True


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
    with np.load(path) as saved:
        state = {key: saved[key] for key in saved.files}
    if str(state["fingerprint"]) != fingerprint:
        raise DatasetError(f"{path} belongs to a preparation of other files (the folder or the size changed); "
                           f"delete it and {path.name.replace('.checkpoint.npz', '.h5.partial')} to start over")
    return state


def create_partial(partial, listing, size):
    """A new HDF5 file with room for every listed file; unwritten rows take no disk space."""
    n = len(listing.files)
    file = h5py.File(partial, "w")
    file.attrs.update(complete=False, split=listing.split, size=size, num_classes=len(listing.wnids),
                      source=str(listing.folder))
    file.create_dataset("images", shape=(n, size, size, 3), maxshape=(n, size, size, 3), dtype=np.uint8,
                        chunks=(1, size, size, 3))
    file.create_dataset("labels", shape=(n,), maxshape=(n,), dtype=np.int64, chunks=True)
    file.create_dataset("filenames", shape=(n,), maxshape=(n,), dtype=h5py.string_dtype(), chunks=True)
    file.create_dataset("wnids", data=listing.wnids, dtype=h5py.string_dtype())
    file.create_dataset("class_names", data=listing.class_names, dtype=h5py.string_dtype())
    return file


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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m datasets.prepare", description=__doc__.split("\n")[0])
    parser.add_argument("src", help="folder holding train/ and val/ in ImageNet's layout")
    parser.add_argument("out_dir", help="where to write <split>.h5")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS))
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: all CPU cores)")
    parser.add_argument("--val-labels", help="labels file of a flat val/ folder: ILSVRC ground truth or CSV")
    parser.add_argument("--val-synsets", help="wnid of each ILSVRC class index, one a line, in index order")
    parser.add_argument("--size", type=int, default=256, help="side of the square images (default 256)")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="files between two checkpoints")
    args = parser.parse_args(argv)
    try:
        prepare_imagenet(args.src, args.out_dir, args.splits, val_labels=args.val_labels,
                         val_synsets=args.val_synsets, size=args.size, workers=args.workers,
                         checkpoint_every=args.checkpoint_every)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to continue from the last checkpoint", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
