"""A private folder for the compiled kernels: nothing another user wrote is ever loaded.

Loading a shared library runs its code, so the folder the compiled kernels are kept in
must be one that only their owner can write to. A fixed name under the system's
temporary folder is not: anyone on the machine can create it first, or plant a library
or a symbolic link in it. So the kernels live in the user's own cache folder
(``$XDG_CACHE_HOME/tinyalex/kernels``, by default ``~/.cache/tinyalex/kernels``), and

* each of its two folders is created with mode 0700 and, before anything is loaded from
  it, checked to be a real folder (not a link), owned by the user, and writable by nobody
  else; a folder that fails is refused (:class:`KernelCacheError`), and the caller falls
  back to the NumPy path;
* a library is loaded only if it is a regular file (not a link), owned by the user and
  writable by nobody else; any other file under its name is removed and rebuilt;
* files are written under fresh names that no one else can pre-empt (``mkstemp``) and
  renamed into place, which replaces a link instead of writing through it, and is atomic:
  two runs compiling at once never load a half-written file.
"""

import os
import stat
import tempfile
import warnings
from pathlib import Path


class KernelCacheError(RuntimeError):
    """The cache folder is not private to this user; nothing is loaded from it."""


def cache_root():
    """``$XDG_CACHE_HOME`` when it is an absolute path, else ``~/.cache`` (the XDG rule)."""
    configured = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(configured):
        return Path(configured)
    try:
        return Path.home() / ".cache"
    except RuntimeError as error:   # no HOME and no password entry
        raise KernelCacheError(f"no home folder to keep compiled kernels in ({error})") from None


def private_folder(path):
    """Create ``path`` (mode 0700) if it is missing and check that it is this user's alone."""
    path = Path(path)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(path)
    except OSError as error:
        raise KernelCacheError(f"cannot use {path} for compiled kernels: {error.strerror or error}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise KernelCacheError(f"{path} is not a folder (a link or a file is in its place); "
                               "compiled kernels are not loaded from it")
    if info.st_uid != os.getuid():
        raise KernelCacheError(f"{path} belongs to user id {info.st_uid}, not to you ({os.getuid()}); "
                               "compiled kernels are not loaded from another user's folder")
    if info.st_mode & 0o022:
        os.chmod(path, 0o700)   # it is ours: make it private, then every file in it is checked
    return path


def kernel_folder():
    """The checked folder the compiled kernels live in."""
    tinyalex_folder = private_folder(cache_root() / "tinyalex")
    return private_folder(tinyalex_folder / "kernels")


def trusted(path):
    """Whether ``path`` is a regular file of this user's that nobody else can write."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def cached_file(name, build):
    """The path of ``name`` in the kernel folder, built by ``build(scratch_path)`` first
    unless a trusted file of that name is already there."""
    folder = kernel_folder()
    path = folder / name
    if trusted(path):
        return path
    if os.path.lexists(path):
        warnings.warn(f"tinyalex rebuilds {path}: it was not a regular file of yours that only you can write",
                      RuntimeWarning, stacklevel=2)
        os.unlink(path)   # removes a link itself, never what it points to
    handle, scratch = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(handle)
    try:
        build(scratch)
        os.chmod(scratch, 0o700)
        os.replace(scratch, path)
    finally:
        if os.path.lexists(scratch):
            os.unlink(scratch)
    return path


def scratch_text(text, suffix):
    """``text`` written to a new file of the kernel folder that only this call knows;
    the caller removes it."""
    handle, path = tempfile.mkstemp(dir=kernel_folder(), prefix=".", suffix=suffix)
    with os.fdopen(handle, "w") as file:
        file.write(text)
    return path
