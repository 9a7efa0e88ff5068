"""One writer per output folder: a lock held for the whole run.

Two preparations into one folder, or two training runs into one ``--out``, would write
the same files at once and leave a mixture of both. So each run takes an exclusive
``flock`` on a small file in the folder and keeps it until it ends; a second run finds
it taken and stops at once. The kernel drops the lock when the process dies, however
it dies (``kill -9`` included), so a stale lock file never blocks the next run.
"""

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_NAME = ".lock"


class FolderInUse(RuntimeError):
    """Another process is writing to the folder."""


@contextlib.contextmanager
def folder_lock(folder, what):
    """Holds the lock of ``folder`` (created if needed) while the ``with`` body runs.

    ``what`` names the job in the error message, e.g. "a preparation" or "a training run".
    Raises FolderInUse at once if another process holds it.
    """
    path = Path(folder) / LOCK_NAME
    # O_CLOEXEC: a program this one starts does not inherit the lock
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderInUse(f"{folder} is in use by {what} in another process (it holds {path}); "
                              "wait for it to finish, or choose another folder") from None
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock
