"""The process-wide settings a CPU training program wants, made in one explicit call.

tinyalex changes nothing outside itself when it is imported or a model is built. A
program that trains on a CPU runs faster with three settings that belong to the whole
process, so it asks for them once, with :func:`tune_process`, and prints what it changed:

* OpenBLAS's idle threads sleep at once. By default they spin for about 2^28 processor
  cycles after every matrix product, on the cores that the compiled kernels right after it
  need (measured: col2im twice as slow after a product). OpenBLAS reads its timeout from
  the environment when it starts its threads, so the call sets it for OpenBLAS alone
  (``openblas_read_env``, with the variable set only while OpenBLAS reads it) and stops the
  threads, which OpenBLAS starts again, with the new timeout, at the next product. This
  works whether NumPy was imported before tinyalex or not.
* The compiled kernels' OpenMP threads sleep at once too (``OMP_WAIT_POLICY=PASSIVE``),
  instead of spinning for BLAS's cores. OpenMP reads this once, when its runtime loads, so
  it takes effect only if no compiled kernel has run yet; the report says which.
* The C allocator keeps freed memory for reuse (glibc's ``mallopt``). A training step
  allocates and frees the same large arrays every time; by default glibc hands blocks
  over 32 MB back to the system and the next step pays for fresh, zero-filled pages
  (measured: 1.0 to 2.2 s a step instead of 0.9 to 1.0 s). This cannot be undone.

The programs in ``examples/`` and ``bench/`` call it; so may your own training loop:

    import tinyalex
    for line in tinyalex.engines.tune_process():
        print(line)
"""

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

SLEEP_AT_ONCE = "4"   # OpenBLAS's timeout is 2^n cycles, n clamped to 4..30: 4 is the shortest


def openblas_library():
    """NumPy's OpenBLAS as a ctypes library, or None where NumPy's BLAS is another (or not
    found: this looks in /proc/self/maps, which only Linux has)."""
    import numpy  # noqa: F401  (loads OpenBLAS, whose path is then in the process's maps)
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    paths = sorted({line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower() and ".so" in line})
    for path in paths:
        try:
            library = ctypes.CDLL(path)
            library.openblas_thread_timeout.restype = ctypes.c_int
            return library
        except (OSError, AttributeError):
            continue
    return None


def openblas_idle():
    """What NumPy's OpenBLAS threads do between matrix products: "sleep" (they were told
    to), "spin" (OpenBLAS's default), or None if NumPy's BLAS is not an OpenBLAS found."""
    library = openblas_library()
    if library is None:
        return None
    return "sleep" if 0 < library.openblas_thread_timeout() <= 10 else "spin"


def openmp_loaded():
    """Whether an OpenMP runtime is already in the process (it has read its settings)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    return any(name in maps for name in ("libgomp", "libomp", "libiomp"))


def glibc():
    """The C library as a ctypes library if it is glibc (it has ``mallopt``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt   # noqa: B018  (musl has none)
    except (OSError, AttributeError):
        return None
    return libc


def tune_process():
    """Make the three settings above for this whole process; a list of lines saying what
    changed. Call it once, at the start of a program that trains on a CPU."""
    report = []

    openblas = openblas_library()
    if openblas is None:
        report.append("OpenBLAS: not NumPy's BLAS here, nothing changed")
    elif openblas_idle() == "sleep":
        report.append("OpenBLAS: idle threads sleep at once already")
    else:
        before = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = SLEEP_AT_ONCE
        try:
            openblas.openblas_read_env()
        finally:   # the variable was for OpenBLAS alone: the environment is left as it was
            if before is None:
                del os.environ["OPENBLAS_THREAD_TIMEOUT"]
            else:
                os.environ["OPENBLAS_THREAD_TIMEOUT"] = before
        openblas.blas_thread_shutdown_()   # started again at the next product, with the new timeout
        report.append("OpenBLAS: idle threads sleep at once (they spun for about 2^28 cycles)")

    if "OMP_WAIT_POLICY" in os.environ:
        report.append(f"OpenMP: OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} was set already, kept")
    elif openmp_loaded():
        report.append("OpenMP: its runtime was loaded already, its threads keep their wait policy")
    else:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"   # read by OpenMP's runtime when it loads
        report.append("OpenMP: OMP_WAIT_POLICY=PASSIVE (the compiled kernels' idle threads sleep at once)")

    libc = glibc()
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # from glibc's malloc.h
    if libc is not None and libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1):
        report.append("memory: freed blocks are kept for the next step (glibc's mallopt)")
    else:
        report.append("memory: the C library is not glibc, nothing changed")
    return report
