"""The prepared file: one HDF5 file per split, the only format the trainer reads.

Layout of OUT_DIR/<split>.h5 (N images, S = stored size, 256 for the paper, K classes):

    dataset            shape          dtype     contents
    images             (N, S, S, 3)   uint8     RGB; shorter side scaled to S, then the
                                                central S x S crop (images.py). One image
                                                per chunk, no compression, so reading one
                                                image reads exactly its bytes.
    labels             (N,)           int64     class index 0..K-1, into `wnids`
    filenames          (N,)           string    source file of each image, relative to SRC/<split>
    wnids              (K,)           string    the sorted folder names of SRC/train
    class_names        (K,)           string    readable names (the wnids if SRC has no words file)
    skipped            (M,)           string    "path<TAB>reason" for each file left out
    checksums          (N,)           uint32    CRC-32 (zlib.crc32) of each image's S*S*3 bytes; files
                                                prepared before checksums existed lack it

    train.h5 only (stats.py; all on the 0..255 scale of the pixels):
    mean_image         (S, S, 3)      float32   mean over training images, per pixel and channel
    rgb_mean           (3,)           float64   mean R, G, B over all training pixels
    rgb_covariance     (3, 3)         float64   covariance of R, G, B over all training pixels
    rgb_eigenvalues    (3,)           float64   its eigenvalues, largest first, in levels^2
    rgb_eigenvectors   (3, 3)         float64   unit eigenvectors as COLUMNS: [:, i] goes with value i

    attributes: complete (True), split ("train"/"val"), size (S), num_classes (K),
                source (the SRC/<split> folder as given)

h5py returns the string datasets as bytes; read them with `f["wnids"].asstr()[...]`.

"Complete" means complete: :func:`write_prepared` writes the whole file under the name
<split>.h5.partial, sets the ``complete`` attribute last, and only then renames it to
<split>.h5. So a file named <split>.h5 with ``complete`` set holds every image, and
:func:`open_prepared` refuses anything else.

What is checked, and when. Opening (:func:`open_prepared`, milliseconds even for ImageNet)
reads the labels and the statistics and refuses a label outside 0..K-1 or a statistic that
is not finite, naming the file. The images (252 GB for ImageNet) are checked one by one as
they are read (:class:`tinyalex.data.PreparedSplit`), and all at once by
``python datasets/verify.py FILE``, which uses :func:`damaged_images`.
"""

import os
import zlib
from pathlib import Path

import h5py
import numpy as np

from .errors import DatasetError, IncompleteFileError

PREPARE_COMMAND = "python datasets/prepare.py SRC OUT_DIR"
STATISTICS = ("mean_image", "rgb_mean", "rgb_covariance", "rgb_eigenvalues", "rgb_eigenvectors")


def partial_path(path):
    """Where a prepared file is written before it is complete: <split>.h5.partial."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def is_complete(path):
    """True if ``path`` is a prepared HDF5 file marked complete."""
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get("complete", False))
    except OSError:  # missing, or not an HDF5 file
        return False


def open_prepared(path):
    """Opens a prepared file for reading -> h5py.File; refuses a missing or unfinished one.

    Raises IncompleteFileError if the preparation did not finish, DatasetError if there is
    no such file or it is not a prepared file at all.
    """
    path = Path(path)
    if not path.exists():
        if any(path.parent.glob(path.stem + ".*partial")):
            raise IncompleteFileError(f"{path}: its preparation was interrupted; run {PREPARE_COMMAND} "
                                      "again to finish it")
        raise DatasetError(f"{path}: no such prepared file; make one with {PREPARE_COMMAND}")
    if path.is_dir():
        raise DatasetError(f"{path} is a folder, not a prepared file")
    try:
        file = h5py.File(path, "r")
    except OSError:
        if h5py.is_hdf5(path):   # the signature is there: a file cut short or damaged
            raise DatasetError(f"{path} is an HDF5 file that cannot be read: cut short (a copy that did not "
                               f"finish?) or damaged; copy it again or prepare it again with "
                               f"{PREPARE_COMMAND}") from None
        raise DatasetError(f"{path} is not an HDF5 file; prepare the images with {PREPARE_COMMAND}") from None
    if not file.attrs.get("complete", False):
        file.close()
        raise IncompleteFileError(f"{path} is not a complete prepared file (its 'complete' attribute is not "
                                  f"set); run {PREPARE_COMMAND} again")
    missing = [name for name in ("images", "labels", "wnids", "class_names") if name not in file]
    if missing:
        file.close()
        raise DatasetError(f"{path} is marked complete but lacks {', '.join(missing)}: not a tinyalex "
                           "prepared file")
    check_contents(file, path)
    return file


def check_contents(file, path):
    """Refuses (DatasetError, naming ``path``) labels outside 0..K-1, statistics that are not
    finite, and a checksum list that does not match the images; closes ``file`` if so.

    Cheap: the labels (8 bytes an image) and the statistics are read, the images are not.
    """
    try:
        labels, classes = file["labels"][...], len(file["wnids"])
        if len(labels) != len(file["images"]):
            raise DatasetError(f"{path} holds {len(file['images'])} images and {len(labels)} labels: the file is "
                               f"damaged; prepare it again with {PREPARE_COMMAND}")
        wrong = np.flatnonzero((labels < 0) | (labels >= classes))
        if len(wrong):
            raise DatasetError(f"{path}: image {wrong[0]} has label {labels[wrong[0]]}, not a class index from 0 "
                               f"to {classes - 1} ({len(wrong)} of its {len(labels)} labels are out of range); the "
                               f"file is damaged, prepare it again with {PREPARE_COMMAND}")
        for name in STATISTICS:
            if name in file and not np.isfinite(file[name][...]).all():
                raise DatasetError(f"{path}: its {name} holds values that are not finite (NaN or infinite); "
                                   f"the file is damaged, prepare it again with {PREPARE_COMMAND}")
        if "checksums" in file and file["checksums"].shape != labels.shape:
            raise DatasetError(f"{path} holds {len(labels)} images and {len(file['checksums'])} checksums: the "
                               f"file is damaged; prepare it again with {PREPARE_COMMAND}")
    except DatasetError:
        file.close()
        raise


def image_checksum(image):
    """CRC-32 of one image's bytes (uint8 S x S x 3, C order), as stored in `checksums`."""
    return zlib.crc32(np.ascontiguousarray(image, dtype=np.uint8))


def damaged_images(file, block=64, progress=None):
    """Yields the index of every image of an open prepared file whose bytes do not match its
    stored checksum, reading the images once in file order, ``block`` at a time.

    progress: None, or a bar whose ``update(n)`` is called after every block. A file
    without checksums (prepared before they existed) raises DatasetError.
    """
    if "checksums" not in file:
        raise DatasetError(f"{file.filename} has no checksums: it was prepared before tinyalex stored them")
    images, checksums = file["images"], file["checksums"][...]
    for start in range(0, len(images), block):
        for offset, image in enumerate(images[start:start + block]):
            if image_checksum(image) != checksums[start + offset]:
                yield start + offset
        if progress is not None:
            progress.update(min(block, len(images) - start))


def write_prepared(path, images, labels, filenames, wnids, class_names, *, split, source="", skipped=(),
                   statistics=None, complete=True):
    """Writes a whole prepared file -> its path, through <split>.h5.partial and a rename.

    images: uint8 (N, S, S, 3), an array or anything that yields such blocks in order
        (a tuple ``(shape, blocks)``, so that a large split never has to fit in memory).
    labels: (N,) ints; filenames: N strings; wnids, class_names: K strings.
    statistics: None, or a dict with the arrays named in STATISTICS (train split only).
    complete: False writes a file that readers refuse (for tests of that refusal).
    """
    path = Path(path)
    partial = partial_path(path)
    shape, blocks = images if isinstance(images, tuple) else (images.shape, [images])
    strings = h5py.string_dtype()
    with h5py.File(partial, "w") as f:
        f.attrs.update(complete=False, split=split, size=shape[1], num_classes=len(wnids), source=str(source))
        stored = f.create_dataset("images", shape=shape, dtype=np.uint8, chunks=(1,) + tuple(shape[1:]))
        checksums = np.zeros(shape[0], dtype=np.uint32)
        row = 0
        for block in blocks:
            stored[row:row + len(block)] = block
            checksums[row:row + len(block)] = [image_checksum(image) for image in block]
            row += len(block)
        if row != shape[0]:
            raise ValueError(f"{row} images given for a file of {shape[0]}")
        f.create_dataset("checksums", data=checksums)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.int64))
        for name, texts in (("filenames", filenames), ("wnids", wnids), ("class_names", class_names),
                            ("skipped", skipped)):
            f.create_dataset(name, data=np.array(list(texts), dtype=strings))
        for name, data in (statistics or {}).items():
            f.create_dataset(name, data=data)
        f.attrs["complete"] = complete  # last: a file cut short is never marked complete
    with open(partial, "rb") as f:
        os.fsync(f.fileno())  # the bytes are on disk before the name says "finished"
    os.replace(partial, path)
    return path
