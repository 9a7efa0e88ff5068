"""Run tinyalex's CUDA kernels on the CPU, thread by thread.

With no GPU, the ``.cu`` sources would otherwise only be compiled, never run. This module
compiles the very same source with the system C++ compiler, under a small header that
stands in for CUDA:

* ``__global__`` disappears, so each kernel (declared ``extern "C"``, which keeps its name
  unmangled for CuPy too) is a plain C function;
* ``blockIdx``, ``threadIdx``, ``blockDim`` and ``gridDim`` become global variables.

:class:`EmulatedKernels` then plays the part of :class:`tinyalex.cuda.Kernels`: calling
``kernels.name(grid, block, args)`` sets the four variables for every thread of the
launch grid in turn and calls the kernel function once for each, with NumPy arrays in
place of device pointers. Threads run one after another, which is a valid schedule for
kernels that use no shared memory, no ``__syncthreads`` and no atomics -- the rules
tinyalex's kernels follow.

Unlike CuPy, the emulator checks every argument against the kernel's signature
(a pointer gets a C-contiguous array of the right dtype, an ``int`` gets ``np.int32``,
a ``scalar_t`` gets the array's scalar type), so a wrongly typed launch fails here
instead of computing garbage on a GPU.
"""

import ctypes
import functools
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .cuda import KERNEL_DIR, c_type_name, kernel_source

CUDA_SHIM = r"""
#include <cmath>
#include <algorithm>
struct tinyalex_dim3 { unsigned int x, y, z; };
extern "C" { tinyalex_dim3 blockIdx, threadIdx, blockDim, gridDim; }
#define __global__
#define __device__
#define __forceinline__ inline
using std::max; using std::min; using std::pow; using std::exp; using std::sqrt;
"""

SIGNATURE = re.compile(r"__global__\s+void\s+(\w+)\s*\(([^)]*)\)")


def find_compiler():
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


@functools.lru_cache(maxsize=None)
def compile_shared_library(filename, dtype):
    """Compile ``filename`` for ``dtype`` into a shared library; cached by content."""
    compiler = find_compiler()
    if compiler is None:
        raise RuntimeError("CUDA emulation needs a C++ compiler (c++, g++ or clang++) on the PATH")
    source = kernel_source(filename)
    ctype = c_type_name(dtype)
    key = hashlib.sha256((CUDA_SHIM + source + ctype).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "tinyalex-cuda-emulation"
    folder.mkdir(exist_ok=True)
    library = folder / f"{Path(filename).stem}-{ctype}-{key}.so"
    if not library.exists():
        shim = folder / f"shim-{key}.h"
        shim.write_text(CUDA_SHIM)
        scratch = library.with_suffix(f".{np.random.randint(1 << 30)}.tmp")
        command = [compiler, "-std=c++14", "-O1", "-shared", "-fPIC", f"-Dscalar_t={ctype}",
                   "-include", str(shim), "-x", "c++", str(KERNEL_DIR / filename),
                   "-o", str(scratch)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"compiling {filename} for emulation failed:\n{result.stderr}")
        scratch.replace(library)  # atomic: parallel test runs never load a half-written file
    return ctypes.CDLL(str(library))


class EmulatedKernel:
    def __init__(self, library, name, signature, dtype):
        self.name = name
        self.function = getattr(library, name)
        self.function.restype = None
        self.signature = signature
        self.dtype = dtype
        self.index = {v: (ctypes.c_uint * 3).in_dll(library, v)
                      for v in ("blockIdx", "threadIdx", "blockDim", "gridDim")}

    def _c_argument(self, position, value, ctype, is_pointer):
        scalar = self.dtype if ctype == "scalar_t" else {"int": np.dtype(np.int32)}.get(ctype)
        if scalar is None:
            raise TypeError(f"{self.name}: the emulator does not know the C type {ctype!r}")
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

    def __call__(self, grid, block, args):
        if len(args) != len(self.signature):
            raise TypeError(f"{self.name} takes {len(self.signature)} arguments, got {len(args)}")
        c_args = [self._c_argument(i, value, ctype, is_pointer)
                  for i, (value, (ctype, is_pointer)) in enumerate(zip(args, self.signature))]
        grid = tuple(grid) + (1,) * (3 - len(grid))
        block = tuple(block) + (1,) * (3 - len(block))
        self.index["gridDim"][:] = grid
        self.index["blockDim"][:] = block
        block_index, thread_index = self.index["blockIdx"], self.index["threadIdx"]
        for bz in range(grid[2]):
            for by in range(grid[1]):
                for bx in range(grid[0]):
                    block_index[:] = (bx, by, bz)
                    for tz in range(block[2]):
                        for ty in range(block[1]):
                            for tx in range(block[0]):
                                thread_index[:] = (tx, ty, tz)
                                self.function(*c_args)


class EmulatedKernels:
    """Stand-in for :class:`tinyalex.cuda.Kernels` that runs the kernels on the CPU."""

    def __init__(self, filename, dtype):
        self.dtype = np.dtype(dtype)
        library = compile_shared_library(filename, self.dtype)
        self.kernels = {name: EmulatedKernel(library, name, signature, self.dtype)
                        for name, signature in kernel_signatures(kernel_source(filename)).items()}

    def __getattr__(self, name):
        try:
            return self.__dict__["kernels"][name]
        except KeyError:
            raise AttributeError(f"no kernel named {name!r}") from None
