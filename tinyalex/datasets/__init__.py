"""Data for tinyalex: from image folders to the prepared HDF5 files the trainer reads.

    prepared.py    the prepared file's layout; open_prepared() to read one, write_prepared()
                   to write one
    prepare.py     ImageNet-style folders -> train.h5 / val.h5, resumable after any stop
    listing.py     which files belong to a split, and their class labels
    images.py      one image file -> a 256x256 RGB array
    stats.py       mean image and PCA colour statistics of the training set
    synthetic.py   a small built-in data set of shapes and textures
    errors.py      the errors raised for bad input: DatasetError and its kinds

The command-line programs are in the repository's datasets/ folder
(``python datasets/prepare.py SRC OUT_DIR``, ``python datasets/verify.py FILE``); docs/data.md
explains all of it.
"""

from .errors import DataChanged, DatasetError, IncompleteFileError
from .prepared import is_complete, open_prepared, write_prepared

__all__ = ["DataChanged", "DatasetError", "IncompleteFileError", "is_complete", "open_prepared", "write_prepared"]
