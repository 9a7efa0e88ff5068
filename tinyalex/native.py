"""tinyalex's CUDA kernels compiled for the CPU: the fast CPU path.

The NumPy path of a layer is the reference: written once against ``xp``, it is what a
reader reads first. On the CPU it is also slow where a layer is a small loop that NumPy
can only spell as many whole-array passes (nine ``maximum`` passes for a 3x3 max-pool,
five shifted additions and a power for LRN, four passes for one SGD update), each pass
on one core. The ``.cu`` kernels already are those loops, written element by element.
This module compiles the very same files with the system C++ compiler, as ordinary C++:

* ``__global__`` disappears, so each kernel (declared ``extern "C"``) is a plain function;
* ``KERNEL_LOOP(i, count)``, which is a grid-stride loop on a GPU (:mod:`tinyalex.cuda`),
  becomes ``for (int i = 0; i < count; ++i)`` under OpenMP's ``parallel for``: the
  elements are shared out among the CPU's cores in contiguous ranges, handed out as
  threads become free (``schedule(guided)``), so a core that something else holds for a
  while does not hold up the others.

A kernel is then called once for the whole array (:class:`NativeKernel`), with the
calling convention of :class:`tinyalex.cuda.Kernels`, so a layer's kernel path
(``forward_kernels`` / ``backward_kernels``) runs unchanged on NumPy arrays.
:class:`tinyalex.layers.base.Layer` picks it for CPU arrays, for the passes where a layer
measured it faster than NumPy (``kernels_on_cpu``), whenever it is available.

It is not available, and every layer quietly keeps its NumPy path, when there is no C++
compiler on the PATH, when compiling fails (a warning says why), for dtypes other than
float32 and float64, or when the environment variable ``TINYALEX_NATIVE`` is ``0``. The
number of threads is OpenMP's: every core, unless ``OMP_NUM_THREADS`` says otherwise.
Without OpenMP (a compiler that does not know ``-fopenmp``) the kernels run on one core.

The kernels take turns with BLAS's threads, which do the matrix products. OpenMP's threads
would by default spin for a while after each loop, waiting for the next one, and steal a
core from BLAS (measured: the convolutions' backward pass 10-20% slower). So unless
``OMP_WAIT_POLICY`` is already set, it is set to ``PASSIVE`` (threads sleep at once)
before the first library loads OpenMP's runtime. The other way round, OpenBLAS's threads
spin after each product unless ``OPENBLAS_THREAD_TIMEOUT`` was set before NumPy loaded
OpenBLAS, which importing tinyalex first does (``tinyalex/__init__.py``);
:func:`openblas_idle` says which it is.

The compiled library is kept in the user's own cache folder (``~/.cache/tinyalex/kernels``,
checked to be private before anything is loaded from it: :mod:`tinyalex.kernel_cache`)
under a hash of the source, the compile command and the type; the first use of a file
costs a second or two.

This module also holds what the thread-by-thread emulator (:mod:`tinyalex.cuda_emulation`)
shares with it: finding the compiler, reading kernel signatures, compiling, and checking
every argument against the kernel's signature before a call.
"""

import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np

from . import kernel_cache
from .cuda import KERNEL_DIR, c_type_name, kernel_source

# What makes a .cu file C++, for every CPU build: __global__ and friends disappear, and the
# maths functions come from the C++ library
CPU_SHIM = r"""
#include <cmath>
#include <algorithm>
#define __global__
#define __device__
#define __forceinline__ inline
using std::max; using std::min; using std::pow; using std::exp; using std::sqrt;
"""

NATIVE_SHIM = CPU_SHIM + r"""
#define KERNEL_LOOP(i, count) \
    _Pragma("omp parallel for schedule(guided)") for (int i = 0; i < (count); ++i)
#ifdef _OPENMP
#include <omp.h>
extern "C" int tinyalex_threads() { return omp_get_max_threads(); }
#else
extern "C" int tinyalex_threads() { return 1; }
#endif
"""

SIGNATURE = re.compile(r"__global__\s+void\s+(\w+)\s*\(([^)]*)\)")


@functools.lru_cache(maxsize=None)
def find_compiler():
    """The system C++ compiler's path, or None; looked up once (layers ask on every call)."""
    for name in ("c++", "g++", "clang++"):
        path = shutil.which(name)
        if path:
            return path
    return None


def kernel_signatures(source):
    """``{kernel name: [(c type, is_pointer), ...]}`` for every ``__global__`` function."""
    signatures = {}
    for name, params in SIGNATURE.findall(source):
        args = []
        for param in params.split(","):
            words = param.replace("*", " * ").split()
            words = [w for w in words if w not in ("const", "__restrict__")]
            is_pointer = "*" in words
            words = [w for w in words if w != "*"]
            args.append((" ".join(words[:-1]), is_pointer))
        signatures[name] = args
    return signatures


def library_name(filename, dtype, shim, flags):
    """The file name of ``filename`` compiled for ``dtype`` with ``shim`` and ``flags``: a
    hash of all four, so that a changed source or command never loads an old build."""
    ctype = c_type_name(dtype)
    key = hashlib.sha256("\n".join((shim, kernel_source(filename), ctype, *flags)).encode()).hexdigest()[:16]
    return f"{Path(filename).stem}-{ctype}-{key}.so"


@functools.lru_cache(maxsize=None)
def compile_shared_library(filename, dtype, shim, flags):
    """Compile kernel file ``filename`` for ``dtype``, with ``shim`` forced in front of it
    and the compiler ``flags``, into a shared library kept in the user's private cache
    folder (:mod:`tinyalex.kernel_cache`), and load it."""
    compiler = find_compiler()
    if compiler is None:
        raise RuntimeError("compiling the kernels for the CPU needs a C++ compiler (c++, g++ or clang++) "
                           "on the PATH")

    def build(output):
        header = kernel_cache.scratch_text(shim, ".h")
        try:
            command = [compiler, "-std=c++14", *flags, "-shared", "-fPIC", f"-Dscalar_t={c_type_name(dtype)}",
                       "-include", header, "-x", "c++", str(KERNEL_DIR / filename), "-o", output]
            result = subprocess.run(command, capture_output=True, text=True)
        finally:
            os.unlink(header)
        if result.returncode != 0:
            raise RuntimeError(f"compiling {filename} for the CPU failed:\n{' '.join(command)}\n{result.stderr}")

    path = kernel_cache.cached_file(library_name(filename, dtype, shim, flags), build)
    return ctypes.CDLL(str(path))


class NativeKernel:
    """One kernel of a compiled file; ``kernel(grid, block, args)`` runs it over all its
    elements at once (the CPU ignores the launch grid: OpenMP shares out the loop)."""

    def __init__(self, library, name, signature, dtype):
        self.name = name
        self.function = getattr(library, name)
        self.function.restype = None
        self.signature = signature
        self.dtype = dtype

    def _c_argument(self, position, value, ctype, is_pointer):
        scalar = self.dtype if ctype == "scalar_t" else {"int": np.dtype(np.int32)}.get(ctype)
        if scalar is None:
            raise TypeError(f"{self.name}: unknown C type {ctype!r} in the kernel's signature")
        where = f"{self.name} argument {position} ({ctype}{' *' if is_pointer else ''})"
        if is_pointer:
            if not isinstance(value, np.ndarray) or value.dtype != scalar or not value.flags.c_contiguous:
                got = f"{type(value).__name__} {getattr(value, 'dtype', '')}"
                raise TypeError(f"{where}: needs a C-contiguous {scalar} array, got {got}")
            return ctypes.c_void_p(value.ctypes.data)
        if type(value) is not scalar.type:
            raise TypeError(f"{where}: needs a {scalar.type.__name__} scalar, got {type(value).__name__} "
                            "(CuPy would pass it without checking)")
        return np.ctypeslib.as_ctypes_type(scalar)(value)

    def c_arguments(self, args):
        """``args`` checked against the kernel's signature and converted for ctypes."""
        if len(args) != len(self.signature):
            raise TypeError(f"{self.name} takes {len(self.signature)} arguments, got {len(args)}")
        return [self._c_argument(i, value, ctype, is_pointer)
                for i, (value, (ctype, is_pointer)) in enumerate(zip(args, self.signature))]

    def __call__(self, grid, block, args):
        self.function(*self.c_arguments(args))


class CompiledKernels:
    """Every kernel of one file, compiled for the CPU, offered under its name."""

    kernel_class = NativeKernel

    def __init__(self, filename, dtype, shim, flags):
        self.dtype = np.dtype(dtype)
        self.shared_object = compile_shared_library(filename, self.dtype, shim, tuple(flags))
        self.kernels = {name: self.kernel_class(self.shared_object, name, signature, self.dtype)
                        for name, signature in kernel_signatures(kernel_source(filename)).items()}

    def __getattr__(self, name):
        try:
            return self.__dict__["kernels"][name]
        except KeyError:
            raise AttributeError(f"no kernel named {name!r}") from None


class NativeKernels(CompiledKernels):
    """The kernels of one ``.cu`` file as native, multi-threaded CPU code."""

    def __init__(self, filename, dtype):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # read once, when OpenMP's runtime loads
        try:
            super().__init__(filename, dtype, NATIVE_SHIM, ("-O3", "-fopenmp"))
        except RuntimeError:  # a compiler without OpenMP: the same loops on one core
            super().__init__(filename, dtype, NATIVE_SHIM, ("-O3",))
        self.threads = self.shared_object.tinyalex_threads()


def enabled():
    """False when the environment variable TINYALEX_NATIVE is 0, or there is no compiler."""
    return os.environ.get("TINYALEX_NATIVE", "1") != "0" and find_compiler() is not None


@functools.lru_cache(maxsize=None)
def load(filename, dtype):
    """:class:`NativeKernels` for ``filename`` and ``dtype``, or None (with a warning if
    compiling failed) when the NumPy path must do."""
    try:
        return NativeKernels(filename, dtype)
    except (RuntimeError, OSError) as error:   # no compiler, a failed build, a cache folder not
        # private to this user, or a library that cannot be loaded (a noexec file system)
        warnings.warn(f"tinyalex runs the NumPy path instead of the compiled kernels of {filename}: {error}",
                      RuntimeWarning, stacklevel=3)
        return None


def kernels_for(filename, array):
    """The native kernels of ``filename`` for a NumPy ``array``, or None for the NumPy path."""
    if not enabled() or np.dtype(array.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        return None
    return load(filename, np.dtype(array.dtype))


def openblas_idle():
    """What NumPy's OpenBLAS threads do between matrix products: "sleep" (they were told
    to, by OPENBLAS_THREAD_TIMEOUT), "spin" (OpenBLAS's default), or None if NumPy's BLAS is
    not an OpenBLAS this function can find (Linux only: it looks in /proc/self/maps)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    paths = {line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower() and ".so" in line}
    for path in sorted(paths):
        try:
            timeout = ctypes.CDLL(path).openblas_thread_timeout   # the variable as OpenBLAS read it
        except (OSError, AttributeError):
            continue
        timeout.restype = ctypes.c_int
        return "sleep" if 0 < timeout() <= 10 else "spin"
    return None


def describe():
    """One line saying which path CPU layers run, for a program's start-up report."""
    if os.environ.get("TINYALEX_NATIVE", "1") == "0":
        return "NumPy path (TINYALEX_NATIVE=0)"
    if find_compiler() is None:
        return "NumPy path (no C++ compiler on the PATH)"
    kernels = load("layers/maxpool.cu", np.dtype(np.float32))
    if kernels is None:
        return "NumPy path (compiling the kernels failed)"
    line = f"compiled kernels, {kernels.threads} thread{'s' if kernels.threads > 1 else ''}"
    if openblas_idle() == "spin":
        line += ("; OpenBLAS's idle threads spin (NumPy was imported before tinyalex: import tinyalex "
                 "first, or set OPENBLAS_THREAD_TIMEOUT=4, for faster steps)")
    return line
