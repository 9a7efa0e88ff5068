"""tinyalex's CUDA kernels compiled for the CPU: the compiled-kernel engine's CPU path.

The NumPy path of a layer is the reference: written once against ``xp``, it is what a
reader reads first, and what a layer runs on a CPU unless an engine says otherwise
(:mod:`tinyalex.engines`). On the CPU it is slow where a layer is a small loop that NumPy
can only spell as many whole-array passes (nine ``maximum`` passes for a 3x3 max-pool,
k * k shifted additions for col2im, four passes for one SGD update), each pass on one
core. The ``.cu`` kernels already are those loops, written element by element. This
module compiles the very same files with the system C++ compiler, as ordinary C++:

* ``__global__`` disappears, so each kernel (declared ``extern "C"``) is a plain function;
* ``KERNEL_LOOP(i, count)``, which is a grid-stride loop on a GPU (:mod:`.cuda`),
  becomes ``for (int i = 0; i < count; ++i)`` under OpenMP's ``parallel for``: the
  elements are shared out among the CPU's cores in contiguous ranges, handed out as
  threads become free (``schedule(guided)``), so a core that something else holds for a
  while does not hold up the others.

A kernel is then called once for the whole array (:class:`NativeKernel`), with the
calling convention of :class:`.cuda.Kernels`, so a layer's kernel path
(``forward_kernels`` / ``backward_kernels``) runs unchanged on NumPy arrays.

There are no compiled kernels, and every layer keeps its NumPy path, when there is no C++
compiler on the PATH, when compiling or loading fails (a warning says why), or for dtypes
other than float32 and float64. The number of threads is OpenMP's: every core, unless
``OMP_NUM_THREADS`` says otherwise. Without OpenMP (a compiler that does not know
``-fopenmp``) the kernels run on one core. How the threads wait between two kernels is a
setting of the whole process, left to the program (:func:`tinyalex.engines.tune_process`).

The compiled library is kept in the user's own cache folder (``~/.cache/tinyalex/kernels``,
checked to be private before anything is loaded from it: :mod:`.cache`) under a hash of
the source, the compile command and the type; the first use of a file costs a second or two.

This module also holds what the thread-by-thread emulator (:mod:`.emulation`) shares with
it: finding the compiler, reading kernel signatures, compiling, and checking every
argument against the kernel's signature before a call.
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

from . import cache as kernel_cache
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
extern "C" void tinyalex_set_threads(int n) { omp_set_num_threads(n); }
#else
extern "C" int tinyalex_threads() { return 1; }
extern "C" void tinyalex_set_threads(int n) {}
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


def shared_object_name(filename, dtype, shim, flags):
    """The file name of ``filename`` compiled for ``dtype`` with ``shim`` and ``flags``: a
    hash of all four, so that a changed source or command never loads an old build."""
    ctype = c_type_name(dtype)
    key = hashlib.sha256("\n".join((shim, kernel_source(filename), ctype, *flags)).encode()).hexdigest()[:16]
    return f"{Path(filename).stem}-{ctype}-{key}.so"


@functools.lru_cache(maxsize=None)
def compile_shared_library(filename, dtype, shim, flags):
    """Compile kernel file ``filename`` for ``dtype``, with ``shim`` forced in front of it
    and the compiler ``flags``, into a shared library kept in the user's private cache
    folder (:mod:`.cache`), and load it."""
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

    path = kernel_cache.cached_file(shared_object_name(filename, dtype, shim, flags), build)
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
        try:
            super().__init__(filename, dtype, NATIVE_SHIM, ("-O3", "-fopenmp"))
        except RuntimeError:  # a compiler without OpenMP: the same loops on one core
            super().__init__(filename, dtype, NATIVE_SHIM, ("-O3",))
        self.threads = self.shared_object.tinyalex_threads()


def available():
    """Whether there is a C++ compiler to build the kernels with (they may still fail to
    build or load: :func:`load` then warns and returns None)."""
    return find_compiler() is not None


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
    if not available() or np.dtype(array.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        return None
    return load(filename, np.dtype(array.dtype))


def set_threads_of_this_thread(count):
    """The compiled kernels use ``count`` threads when they are called from the calling
    thread (OpenMP's setting is the calling thread's own); every other thread keeps its
    own. Nothing happens without a compiler."""
    kernels = load("layers/maxpool.cu", np.dtype(np.float32)) if available() else None
    if kernels is not None:
        kernels.shared_object.tinyalex_set_threads(count)


def describe():
    """What the compiled kernels are here, in a few words, for a program's start-up report."""
    if not available():
        return "no compiled kernels (no C++ compiler on the PATH)"
    kernels = load("layers/maxpool.cu", np.dtype(np.float32))
    if kernels is None:
        return "no compiled kernels (building or loading them failed: see the warning)"
    return f"compiled kernels, {kernels.threads} thread{'s' if kernels.threads > 1 else ''}"
