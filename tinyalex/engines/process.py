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

import contextlib
import ctypes
import ctypes.util
import os
import sys
import time
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


def usable_cores():
    """The cores this process may run on (``taskset`` and containers may allow fewer than
    the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class BlasThreads:
    """How many threads NumPy's BLAS uses for each training step, chosen by timing the steps.

    On a quiet machine the matrix products are fastest on every core. When other programs
    take cores, BLAS's threads wait for each other at every product, and a step on one
    thread can be nearly twice as fast as on all of them (measured: docs/benchmarks.md). The
    load comes and goes while a run trains, so the choice is made from the steps themselves:

    * once, after the first three steps, ``probe`` steps on one thread, for a machine that
      is already loaded when the run starts (on a quiet one this costs two slower steps);
    * on all cores, while steps stay within ``slower`` of the fastest recent median, nothing
      else is tried;
    * when they get slower than that, the next ``probe`` steps run on one thread, and the
      faster of the two recent medians is kept;
    * on one thread, after ``every`` steps, ``probe`` steps on all cores see whether the
      load has gone (after each probe that finds it still there, twice as many steps, up
      to eight times ``every``).

    Use it around each step, ``with threads.step(): ...``; :attr:`history` counts the steps
    run with each thread count. The thread count is a setting of the whole process (through
    threadpoolctl), made only inside ``step`` and put back after it, and only by a program
    that builds this object. Without threadpoolctl, or on one core, it does nothing.
    """

    def __init__(self, cores=None, *, slower=1.3, probe=2, every=25, window=5):
        self.cores = cores or usable_cores()
        self.slower, self.probe, self.every, self.window = slower, probe, every, window
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            threadpool_limits = None
        self.limits = threadpool_limits if self.cores > 1 else None
        self.current = self.cores
        self.recent = {self.cores: [], 1: []}
        self.best = {self.cores: float("inf"), 1: float("inf")}
        self.probing, self.steps_since_probe, self.wait = 0, 0, every
        self.calibrated = False       # whether the first look at one thread was taken
        self.history = {self.cores: 0, 1: 0}

    @property
    def active(self):
        return self.limits is not None

    def describe(self):
        if not self.active:
            return "NumPy's BLAS threads: as BLAS chose them (threadpoolctl not installed, or one core)"
        return (f"NumPy's BLAS threads: {self.cores} for each step, or 1 while other programs slow the steps "
                f"by {self.slower:.1f}x or more (chosen by timing the steps)")

    def next_count(self):
        """The thread count for the next step."""
        if self.probing:
            return self.cores + 1 - self.current      # the other one: 1 <-> cores
        return self.current

    def record(self, count, seconds):
        """Add one step's time, and decide what the next steps run on."""
        self.history[count] += 1
        recent = self.recent[count]
        recent.append(seconds)
        del recent[:-self.window]
        if len(recent) >= min(3, self.window):
            self.best[count] = min(self.best[count], median(recent))
        if self.probing:
            self.probing -= 1
            if not self.probing:   # the probe is over: keep the faster recent median
                other = self.cores + 1 - self.current
                if median(self.recent[other][-self.probe:]) < median(self.recent[self.current][-self.probe:]):
                    self.current, self.wait = other, self.every
                    self.recent[other] = self.recent[other][-self.probe:]
                elif self.current == 1:   # still loaded: look again later
                    self.wait = min(2 * self.wait, 8 * self.every)
                self.steps_since_probe = 0
            return
        self.steps_since_probe += 1
        if self.current == self.cores and not self.calibrated and len(recent) >= 3:
            self.calibrated = True    # loaded from the start: no change of speed would show it
            self.start_probe()
        elif self.current == self.cores:
            # the median of three, so that one slow step (a page fault storm, a log write) is not load
            if len(recent) >= 3 and median(recent[-3:]) > self.slower * self.best[count]:
                self.start_probe()
        elif self.steps_since_probe >= self.wait:
            self.start_probe()

    def start_probe(self):
        other = self.cores + 1 - self.current
        self.recent[other] = []     # only fresh times count: the load may have changed since
        self.probing = self.probe

    @contextlib.contextmanager
    def step(self):
        """Run the body (one training step) with the chosen thread count, and time it."""
        if not self.active:
            yield
            return
        count = self.next_count()
        with self.limits(count, user_api="blas"):
            start = time.perf_counter()
            yield
            seconds = time.perf_counter() - start
        self.record(count, seconds)


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
