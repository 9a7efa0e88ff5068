"""CIFAR-10, the data of the paper's Figure 1, read from the file its authors publish.

CIFAR-10 is 60,000 colour images of 32 x 32 pixels in 10 classes: 50,000 for training in
five batches and 10,000 for testing. Its "python version", ``cifar-10-python.tar.gz``
from the data set's page at the University of Toronto (www.cs.toronto.edu/~kriz/cifar.html),
holds one folder, ``cifar-10-batches-py/``, with

    data_batch_1 .. data_batch_5, test_batch   a dict each: b"data", a uint8 array of
                                               10,000 x 3072 (one image a row: the 1024
                                               red values row by row, then green, then
                                               blue), b"labels", 10,000 ints 0..9, and
                                               b"filenames", b"batch_label"
    batches.meta                               b"label_names": the 10 class names

Each is a pickle written by Python 2: its keys and strings are Python 2 ``str``, which
Python 3 reads as bytes (``encoding="bytes"``). A pickle can name any function to call, so
this reader lets it name only what such a batch holds (NumPy's array and dtype): a file
that asks for anything else is refused, not run.

:func:`read_cifar10` takes the archive as downloaded, or the folder it unpacks to (or the
folder above that one). Nothing is downloaded here.
"""

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from .errors import DatasetError

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
SIZE = 32
CLASSES = 10


class BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch: NumPy's array reconstruction and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"a CIFAR-10 batch holds arrays and lists only, and this file asks "
                                         f"for {module}.{name}")
        if name in ("ndarray", "dtype"):
            return getattr(np, name)
        try:                                   # NumPy 2 keeps it here, NumPy 1 in numpy.core
            from numpy._core import multiarray
        except ImportError:
            from numpy.core import multiarray
        return getattr(multiarray, name)


def unpickle(data, name):
    """One batch file's bytes -> its dict, with the keys as text."""
    try:
        loaded = BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:   # a damaged or foreign file fails in many ways; each is one message
        raise DatasetError(f"{name}: not a CIFAR-10 python batch ({type(error).__name__}: {error})") from None
    if not isinstance(loaded, dict):
        raise DatasetError(f"{name}: not a CIFAR-10 python batch (it holds a {type(loaded).__name__}, not a dict)")
    return {key.decode("latin-1") if isinstance(key, bytes) else key: value for key, value in loaded.items()}


def batch_files(path):
    """{batch name: bytes} from the archive or the folder at ``path``."""
    path = Path(path)
    names = (*TRAIN_BATCHES, TEST_BATCH, META)
    if not path.exists():
        raise DatasetError(f"{path} does not exist: give cifar-10-python.tar.gz or the {FOLDER} folder it unpacks to")
    if path.is_dir():
        folder = path / FOLDER if (path / FOLDER).is_dir() else path
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise DatasetError(f"{folder} lacks {', '.join(missing)}: not CIFAR-10's python folder ({FOLDER})")
        return {name: (folder / name).read_bytes() for name in names}
    try:
        with tarfile.open(path) as archive:
            members = {Path(member.name).name: member for member in archive.getmembers()
                       if member.isfile() and Path(member.name).parent.name == FOLDER}
            missing = [name for name in names if name not in members]
            if missing:
                raise DatasetError(f"{path} lacks {FOLDER}/{', '.join(missing)}: not CIFAR-10's python archive "
                                   "(cifar-10-python.tar.gz)")
            return {name: archive.extractfile(members[name]).read() for name in names}
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DatasetError(f"{path}: not a readable tar archive ({error}); give cifar-10-python.tar.gz or "
                           f"the {FOLDER} folder") from None


def batch_arrays(batch, name):
    """A batch dict -> (images uint8 (N, 32, 32, 3), labels int64 (N,), names "batch/row"), checked."""
    try:
        data, labels = batch["data"], batch["labels"]
    except KeyError as error:
        raise DatasetError(f"{name}: a CIFAR-10 batch has 'data' and 'labels', this one lacks {error}") from None
    data, labels = np.asarray(data), np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIZE * SIZE:
        raise DatasetError(f"{name}: 'data' should be uint8 rows of {3 * SIZE * SIZE} values, got {data.dtype} "
                           f"{data.shape}")
    if labels.shape != (len(data),):
        raise DatasetError(f"{name}: {len(data)} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= CLASSES):
        raise DatasetError(f"{name}: labels must be 0..{CLASSES - 1}, found {labels.min()}..{labels.max()}")
    # each row: 1024 red values row by row, then green, then blue -> (N, 3, 32, 32) -> (N, 32, 32, 3)
    images = data.reshape(len(data), 3, SIZE, SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64), [f"{name}/{row}" for row in range(len(data))]


def read_cifar10(path):
    """CIFAR-10 from its python archive or folder -> dict with "train" and "test", each
    (images uint8 (N, 32, 32, 3) RGB, labels int64 (N,), names "batch/row" (N,)), and
    "class_names" (10 strings)."""
    files = batch_files(path)
    train = [batch_arrays(unpickle(files[name], name), name) for name in TRAIN_BATCHES]
    test = batch_arrays(unpickle(files[TEST_BATCH], TEST_BATCH), TEST_BATCH)
    meta = unpickle(files[META], META)
    names = [name.decode() if isinstance(name, bytes) else str(name) for name in meta.get("label_names", [])]
    if len(names) != CLASSES:
        raise DatasetError(f"{META}: expected {CLASSES} label_names, found {len(names)}")
    return {"train": (np.concatenate([part[0] for part in train]), np.concatenate([part[1] for part in train]),
                      [row for part in train for row in part[2]]),
            "test": test, "class_names": names}


def prepare_cifar10(path, out_dir, size=SIZE):
    """CIFAR-10 as the prepared files the training program reads -> (train.h5, val.h5) paths.

    train.h5 holds the 50,000 training images with their mean image and colour statistics,
    val.h5 the 10,000 test images (CIFAR-10 has no other held-out set). ``size`` > 32 scales
    every image up to size x size (bicubic, as the preparation of image folders scales), for
    a net whose first layers need larger inputs, such as the built-in AlexNet (144).
    """
    from PIL import Image

    from .images import RESAMPLE
    from .prepared import write_prepared
    from .stats import ColourStatistics

    data = read_cifar10(path)
    names = data["class_names"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, key in (("train", "train"), ("val", "test")):
        images, labels, filenames = data[key]
        if size != SIZE:
            images = np.stack([np.asarray(Image.fromarray(image).resize((size, size), RESAMPLE)) for image in images])
        statistics = None
        if split == "train":
            colour = ColourStatistics(size)
            for image in images:
                colour.add(image)
            eigenvalues, eigenvectors = colour.rgb_eigen()
            statistics = dict(mean_image=colour.mean_image(), rgb_mean=colour.rgb_mean(),
                              rgb_covariance=colour.rgb_covariance(), rgb_eigenvalues=eigenvalues,
                              rgb_eigenvectors=eigenvectors)
        paths.append(write_prepared(out_dir / f"{split}.h5", images, labels, filenames, names, names, split=split,
                                    source=str(path), statistics=statistics))
    return tuple(paths)
