"""The compiled kernels' cache is private: another user's files are never loaded or written
through, and a kernel that cannot be built or loaded leaves the NumPy path, with one warning."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tinyalex.kernels import cache as kernel_cache, native
from tinyalex.kernels.native import NATIVE_SHIM

ROOT = Path(__file__).resolve().parents[1]
OTHER_UID = 54321   # a user id that is not ours and owns nothing else here

# A library that leaves a mark when it is loaded: what an attacker would plant
PLANT = r"""
#include <stdio.h>
__attribute__((constructor)) static void plant(void) {
    FILE *f = fopen("%s", "w");
    if (f) { fputs("loaded", f); fclose(f); }
}
"""


def maxpool_name():
    """The file name native.py gives layers/maxpool.cu's float32 build with OpenMP."""
    return native.shared_object_name("layers/maxpool.cu", np.dtype(np.float32), NATIVE_SHIM, ("-O3", "-fopenmp"))


def build_plant(cxx, path, marker):
    source = path.with_suffix(".c")
    source.write_text(PLANT % marker)
    subprocess.run([cxx, "-x", "c", "-shared", "-fPIC", str(source), "-o", str(path)], check=True)
    source.unlink()


def fresh_load(filename="layers/maxpool.cu"):
    """native.load without its in-process caches, as a new process would run it."""
    native.compile_shared_library.cache_clear()
    return native.load.__wrapped__(filename, np.dtype(np.float32))


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    native.compile_shared_library.cache_clear()
    yield home
    native.compile_shared_library.cache_clear()


def test_the_cache_is_a_private_folder_in_the_users_cache_home(cxx, cache_home):
    assert fresh_load() is not None
    for folder in (cache_home / "tinyalex", cache_home / "tinyalex" / "kernels"):
        assert folder.is_dir() and (folder.stat().st_mode & 0o777) == 0o700
    assert (cache_home / "tinyalex" / "kernels" / maxpool_name()).is_file()
    assert not [p for p in (cache_home / "tinyalex" / "kernels").iterdir() if p.name.startswith(".")]


def test_a_cache_folder_of_ours_made_too_open_is_made_private_again(cxx, cache_home):
    folder = cache_home / "tinyalex" / "kernels"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    assert fresh_load() is not None
    assert (folder.stat().st_mode & 0o777) == 0o700


def test_a_library_others_can_write_is_rebuilt_not_loaded(cxx, cache_home, tmp_path):
    folder = kernel_cache.kernel_folder()
    marker = tmp_path / "loaded"
    build_plant(cxx, folder / maxpool_name(), marker)
    (folder / maxpool_name()).chmod(0o777)
    with pytest.warns(RuntimeWarning, match="rebuilds"):
        kernels = fresh_load()
    assert kernels is not None and not marker.exists()
    assert ((folder / maxpool_name()).stat().st_mode & 0o022) == 0


def test_a_link_in_the_cache_is_replaced_never_written_through(cxx, cache_home, tmp_path):
    folder = kernel_cache.kernel_folder()
    victim = tmp_path / "my_notes.txt"
    victim.write_text("mine")
    (folder / maxpool_name()).symlink_to(victim)
    with pytest.warns(RuntimeWarning, match="rebuilds"):
        assert fresh_load() is not None
    assert victim.read_text() == "mine"
    assert not (folder / maxpool_name()).is_symlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_folder_or_library_of_another_user_is_never_loaded(cxx, cache_home, tmp_path):
    folder = cache_home / "tinyalex" / "kernels"
    folder.mkdir(parents=True, mode=0o700)
    marker = tmp_path / "loaded"
    build_plant(cxx, folder / maxpool_name(), marker)
    for path in (cache_home / "tinyalex", folder, folder / maxpool_name()):
        os.chown(path, OTHER_UID, OTHER_UID)
    with pytest.warns(RuntimeWarning, match="another user's folder"):
        assert fresh_load() is None          # the NumPy path, not the planted library
    assert not marker.exists()
    # a folder of ours holding another user's library: rebuilt, the planted one never runs
    for path in (cache_home / "tinyalex", folder):
        os.chown(path, os.getuid(), os.getgid())
    with pytest.warns(RuntimeWarning, match="rebuilds"):
        assert fresh_load() is not None
    assert not marker.exists()


def run_as(uid, code, env):
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable,
                           "-c", code], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="two users on one machine need root and setpriv to switch user")
def test_two_users_sharing_one_cache_home(cxx, tmp_path):
    # As on a shared machine where both users point XDG_CACHE_HOME at one world-writable
    # folder: the first user's kernels never run as the second, and the second's run goes on
    shared = Path(tempfile.mkdtemp(prefix="tinyalex-shared-", dir="/tmp"))
    try:
        shared.chmod(0o1777)
        env = dict(os.environ, XDG_CACHE_HOME=str(shared), PYTHONPATH=str(ROOT), HOME=str(shared))
        code = "import tinyalex.kernels.native as n; print(n.describe())"
        probe = run_as(65534, "import tinyalex", env)
        if probe.returncode != 0:
            pytest.skip(f"the unprivileged user cannot import tinyalex from this checkout: {probe.stderr[-200:]}")
        first = run_as(65534, code, env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith("compiled kernels"), first.stdout
        folder = shared / "tinyalex" / "kernels"
        marker = shared / "loaded"
        plant = folder / maxpool_name()
        plant.unlink()
        build_plant(cxx, plant, marker)
        os.chown(plant, 65534, 65534)
        second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == 0, second.stderr
        assert second.stdout.startswith("no compiled kernels"), second.stdout
        assert "another user's folder" in second.stderr and "Traceback" not in second.stderr
        assert not marker.exists()
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_a_library_that_cannot_be_loaded_leaves_the_numpy_path_with_one_warning(cxx, cache_home, monkeypatch):
    def noexec(path, *args, **kwargs):
        raise OSError(f"{path}: failed to map segment from shared object")
    monkeypatch.setattr(native.ctypes, "CDLL", noexec)
    with pytest.warns(RuntimeWarning, match="NumPy path instead.*failed to map segment"):
        assert fresh_load() is None
