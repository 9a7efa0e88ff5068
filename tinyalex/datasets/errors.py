"""The errors that data preparation raises on purpose.

Each message names the file or folder at fault, so a user can fix it without
reading a traceback.
"""


class DatasetError(Exception):
    """The input folders or files do not fit the expected ImageNet layout."""


class IncompleteFileError(DatasetError):
    """A prepared HDF5 file whose preparation has not finished."""


class DataChanged(DatasetError):
    """What was read from a prepared file is not what was prepared: an image fails its
    checksum, or the file was rewritten or replaced while a job was reading it."""
