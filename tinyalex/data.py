"""Feeding the network: minibatches from the prepared HDF5 files, and the paper's
augmentation (sections 2 and 4.1).

The files hold 256 x 256 RGB images as uint8 (:mod:`tinyalex.datasets.prepared` gives
their layout; ``python datasets/prepare.py`` writes them). :class:`BatchLoader` reads
random minibatches in a background thread, so the disk works while the GPU does;
:meth:`Augmenter.train_batch` then turns a batch into network input on the training
device:

* a random 227 x 227 crop of each 256 x 256 image, flipped left-right with probability 1/2;
* PCA colour noise: every pixel of an image gets the same RGB shift
  ``[p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T``, with a_i ~ N(0, 0.1) drawn per image;
* subtraction of the mean training image (the only preprocessing the paper does).

The result is float32 NCHW on the 0..255 scale, minus the mean. Evaluation takes the
centre crop (:meth:`Augmenter.center_crop`) or averages the softmax over ten crops
(:meth:`Augmenter.ten_crops`: four corners, the centre and their mirror images).

Every random draw comes from a generator seeded with (seed, epoch, batch): a run that is
stopped and resumed sees exactly the batches and augmentations of one that was not.
"""

import os
import queue
import threading
import weakref

import numpy as np

from .backend import array_module, on_device, to_device
from .datasets.errors import DataChanged, DatasetError
from .datasets.prepared import image_checksum, open_prepared
from .distributed import batch_share

CROP = 227
PCA_NOISE_STD = 0.1  # the standard deviation of a_i (section 4.1)


class PreparedSplit:
    """One prepared split (train.h5 or val.h5): images, labels, class names, statistics.

    ``stored_size`` is the side S of the stored images (256 for the paper), not the side of
    the crops the network sees (``AlexNet.image_size``, 227). Raises DatasetError (or its
    IncompleteFileError) for a missing, unfinished or foreign file, or one whose labels or
    statistics are out of range (open_prepared checks them).

    With ``check=True`` every read also checks that the file is still the one opened (its
    size, modification time and identity, one ``stat`` a batch) and that each image matches
    the checksum stored when it was prepared (CRC-32), and raises DataChanged if not. A file
    prepared before checksums existed is read without them.
    """

    def __init__(self, path, raw=True, check=True):
        self.path = path
        opened_as = identity(path)     # before the file is read: a change after this is seen
        self.file = open_prepared(path)
        self.check, self.opened_as = check, opened_as
        self.checksums = self.file["checksums"][...] if check and "checksums" in self.file else None
        self.images = self.file["images"]                     # (N, 256, 256, 3) uint8, on disk
        self.labels = self.file["labels"][...]                # (N,) int64, in memory
        self.wnids = list(self.file["wnids"].asstr()[...])
        self.class_names = list(self.file["class_names"].asstr()[...])
        self.stored_size = self.images.shape[1]
        # The file stores each image as one chunk of raw bytes (no compression, no filters),
        # so an image can be copied straight from the file at its chunk's byte offset: a
        # system call that releases the GIL and skips the HDF5 library (which serves one
        # thread at a time). A file laid out otherwise, or raw=False, is read through h5py.
        raw = (raw and self.images.chunks == (1,) + self.images.shape[1:]
               and self.images.id.get_create_plist().get_nfilters() == 0)
        self.descriptor = os.open(path, os.O_RDONLY) if raw else None
        self._close_descriptor = weakref.finalize(self, os.close, self.descriptor) if raw else None
        self.offsets = np.full(len(self.labels), -1, dtype=np.int64)   # each image's byte offset
        if raw and hasattr(self.images.id, "chunk_iter"):   # all at once: about 1 s for ImageNet
            self.images.id.chunk_iter(self._note_offset)

    def _note_offset(self, chunk):
        self.offsets[chunk.chunk_offset[0]] = chunk.byte_offset

    def __len__(self):
        return len(self.labels)

    @property
    def num_classes(self):
        return len(self.wnids)

    def statistics(self):
        """Mean image (S, S, 3) and the RGB eigen-decomposition, from a training split."""
        if "mean_image" not in self.file:
            raise DatasetError(f"{self.path} has no mean image or colour statistics: only a training split's file "
                               "has them (give the prepared train.h5)")
        return (self.file["mean_image"][...], self.file["rgb_eigenvalues"][...],
                self.file["rgb_eigenvectors"][...])

    def read(self, indices):
        """Images and labels at ``indices``, sorted (the order the file is laid out in).

        One read per image, straight into the batch: h5py's indexing with a list of indices
        (``images[indices]``) gives the same array about 100 times slower on files that store
        one image per chunk, and h5py's ``read_direct`` per image is several times slower
        than copying the chunk's bytes (``bench/loader.py`` measures both).
        """
        indices = np.sort(np.asarray(indices))
        images = np.empty((len(indices),) + self.images.shape[1:], dtype=self.images.dtype)
        for position, index in enumerate(indices):
            if self.descriptor is None:
                self.images.read_direct(images, np.s_[index], np.s_[position])
            else:
                self.read_raw(index, images[position])
        if self.check:
            self.check_read(indices, images)
        return images, self.labels[indices]

    def check_read(self, indices, images):
        """Raises DataChanged unless the file is the one opened and ``images`` (read from
        ``indices``) match their checksums."""
        if identity(self.path) != self.opened_as:
            raise DataChanged(f"{self.path} changed while this job was reading it (its size, modification time or "
                              "identity is not what it was when it was opened), so what is read from it cannot be "
                              "trusted")
        if self.checksums is None:
            return
        for position, index in enumerate(indices):
            if image_checksum(images[position]) != self.checksums[index]:
                name = self.file["filenames"].asstr()[index]
                raise DataChanged(f"{self.path}: image {index} ({name}) does not match the checksum stored when it "
                                  f"was prepared: the file is damaged (python datasets/verify.py {self.path} "
                                  "finds every damaged image)")

    def read_raw(self, index, out):
        """Copy image ``index``'s bytes from the file into ``out`` (one contiguous image)."""
        if self.offsets[index] < 0:   # not listed when the file was opened: ask HDF5
            self.offsets[index] = self.images.id.get_chunk_info_by_coord((index, 0, 0, 0)).byte_offset
        count = os.preadv(self.descriptor, [out], int(self.offsets[index]))
        if count != out.nbytes:
            raise DatasetError(f"{self.path}: image {index} ends after {count} of its {out.nbytes} bytes; "
                               "the file is truncated")

    def close(self):
        if self.descriptor is not None:
            self._close_descriptor()
            self.descriptor = None
        self.file.close()


def identity(path):
    """What says that ``path`` is still the same file: device, inode, size and modification
    time (None if it is gone). Copying over a file keeps its inode and changes the rest;
    moving another file to its name changes the inode."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def batch_rng(seed, epoch, batch):
    """The generator for one batch: the same (seed, epoch, batch) always draws the same numbers."""
    return np.random.default_rng([seed, epoch, batch])


def epoch_order(num_images, seed, epoch):
    return np.random.default_rng([seed, epoch]).permutation(num_images)


class BatchLoader:
    """Random minibatches of one epoch, read ahead in a background thread.

    ``for index, (images, labels) in loader.epoch(e, start=k)`` yields the batches of epoch
    ``e`` from batch ``k`` on (``start`` is for resuming mid-epoch). Images are uint8
    (B, S, S, 3) NumPy arrays, labels int64 (B,). With ``shuffle=False`` the batches
    follow the file order and the last one may be smaller (for evaluation).

    With ``rank`` and ``size`` (data-parallel training, :mod:`tinyalex.distributed`), the
    batches are the same global batches, drawn from the seed alone, and process ``rank``
    reads only its share of each: rows ``start:stop`` of the batch's sorted indices
    (:func:`~tinyalex.distributed.batch_share`), so no image is read by two processes in
    an epoch, and the shares laid end to end are the batch one process would read.
    """

    def __init__(self, split, batch_size, *, shuffle=True, seed=0, prefetch=3, rank=0, size=1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if shuffle and len(split) < batch_size:
            raise ValueError(f"{split.path} holds {len(split)} images, fewer than one batch of {batch_size}")
        self.split, self.batch_size, self.shuffle = split, batch_size, shuffle
        self.seed, self.prefetch = seed, prefetch
        if size > 1 and not shuffle:
            raise ValueError("evaluation is shared out by splitting the split (distributed.ShareOfSplit), "
                             "not its batches")
        self.rank, self.size = rank, size

    def __len__(self):
        n = len(self.split)
        return n // self.batch_size if self.shuffle else -(-n // self.batch_size)

    def batch_indices(self, epoch):
        order = epoch_order(len(self.split), self.seed, epoch) if self.shuffle else np.arange(len(self.split))
        batches = [order[i * self.batch_size:(i + 1) * self.batch_size] for i in range(len(self))]
        if self.size > 1:
            # sorted first, as PreparedSplit.read sorts them: then the shares, read one after
            # another, are exactly the rows of the batch that one process would read
            start, stop = batch_share(self.batch_size, self.rank, self.size)
            batches = [np.sort(batch)[start:stop] for batch in batches]
        return batches

    def epoch(self, epoch, start=0):
        batches = self.batch_indices(epoch)[start:]
        results = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def read_ahead():
            try:
                for indices in batches:
                    item = self.split.read(indices)
                    while not stop.is_set():
                        try:
                            results.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            pass
                    if stop.is_set():
                        return
            except Exception as error:  # hand the error to the consumer instead of dying silently
                results.put(error)

        reader = threading.Thread(target=read_ahead, daemon=True)
        reader.start()
        try:
            for index in range(start, start + len(batches)):
                item = results.get()
                if isinstance(item, Exception):
                    raise item
                yield index, item
        finally:
            stop.set()
            reader.join()


class Augmenter:
    """The paper's training-time augmentation and the evaluation crops, on one device.

    ``mean_image`` (S, S, 3), ``eigenvalues`` (3,) and ``eigenvectors`` (3, 3, columns) are
    the statistics of the training split on the 0..255 scale (``PreparedSplit.statistics``).
    """

    def __init__(self, mean_image, eigenvalues, eigenvectors, device="cpu", crop=CROP, pca_std=PCA_NOISE_STD):
        self.device, self.crop, self.pca_std = device, crop, pca_std
        self.xp = array_module(device)
        with on_device(device):
            self.mean_image = self.xp.asarray(mean_image, dtype=np.float32)
        # The paper does not say on which scale its eigenvalues were taken. Reproductions
        # take them on pixels scaled to [0, 1] (eigenvalues about 0.2, 0.02, 0.005 on
        # ImageNet), giving shifts of a few levels; on the 0..255 scale the same formula
        # would shift by hundreds. So: eigenvalues / 255^2 on the [0, 1] scale, and the
        # shift times 255 back into levels, i.e. shift = P (a * l) / 255.
        self.eigenvalues = np.asarray(eigenvalues, dtype=np.float64) / 255.0
        self.eigenvectors = np.asarray(eigenvectors, dtype=np.float64)

    def colour_shift(self, rng, count):
        """(count, 3) RGB shifts in levels: [p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T, a_i ~ N(0, 0.1)."""
        a = rng.normal(0.0, self.pca_std, size=(count, 3))
        return (a * self.eigenvalues) @ self.eigenvectors.T

    def _crop(self, images, top, left, flip):
        """Crop (and mirror) every image at its own offset; returns float32 NCHW minus the mean."""
        xp, c = self.xp, self.crop
        B = len(images)
        rows = top[:, None] + np.arange(c)                                  # (B, c)
        cols = left[:, None] + np.where(flip[:, None], np.arange(c)[::-1], np.arange(c))
        with on_device(self.device):
            images = to_device(images, self.device)
            rows, cols = xp.asarray(rows), xp.asarray(cols)
            b = xp.arange(B)[:, None, None]
            x = images[b, rows[:, :, None], cols[:, None, :]].astype(xp.float32)   # (B, c, c, 3)
            x -= self.mean_image[rows[:, :, None], cols[:, None, :]]
            return x

    def train_batch(self, images, rng, share=None):
        """uint8 (B, S, S, 3) -> float32 (B, 3, crop, crop) on the device, augmented.

        ``share=(start, batch_size)`` says that ``images`` are the rows start:start + B of
        a global batch of ``batch_size`` images, shared out between processes: the random
        draws are then those of the whole global batch, and these images get theirs.
        """
        B, S = len(images), images.shape[1]
        start, whole = (0, B) if share is None else share
        rows = slice(start, start + B)
        top = rng.integers(0, S - self.crop + 1, size=whole)[rows]
        left = rng.integers(0, S - self.crop + 1, size=whole)[rows]
        flip = (rng.random(whole) < 0.5)[rows]
        shift = self.colour_shift(rng, whole)[rows]
        x = self._crop(images, top, left, flip)
        with on_device(self.device):
            x += self.xp.asarray(shift, dtype=np.float32)[:, None, None, :]
            return self.xp.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def crops(self, images, positions):
        """The crops at ``positions`` [(top, left, flip)] of every image, as float32 NCHW."""
        B = len(images)
        for top, left, flip in positions:
            x = self._crop(images, np.full(B, top), np.full(B, left), np.full(B, flip))
            with on_device(self.device):
                yield self.xp.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def center_crop(self, images):
        return next(self.crops(images, [center_position(images.shape[1], self.crop)]))

    def ten_crops(self, images):
        """The ten test-time crops (section 4.1): four corners and the centre, and their mirrors."""
        return self.crops(images, ten_crop_positions(images.shape[1], self.crop))


def center_position(size, crop):
    offset = (size - crop) // 2
    return offset, offset, False


def ten_crop_positions(size, crop):
    far = size - crop
    corners = [(0, 0), (0, far), (far, 0), (far, far), ((far // 2), (far // 2))]
    return [(top, left, flip) for flip in (False, True) for top, left in corners]
