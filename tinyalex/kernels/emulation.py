"""Run tinyalex's CUDA kernels on the CPU, thread by thread.

With no GPU, the ``.cu`` sources would otherwise only be compiled, never run. This module
compiles the very same source with the system C++ compiler, under a small header that
stands in for CUDA:

* ``__global__`` disappears, so each kernel (declared ``extern "C"``, which keeps its name
  unmangled for CuPy too) is a plain C function;
* ``blockIdx``, ``threadIdx``, ``blockDim`` and ``gridDim`` become global variables;
* ``KERNEL_LOOP`` is the GPU's grid-stride loop (:data:`tinyalex.kernels.cuda.GRID_STRIDE_LOOP`).

:class:`EmulatedKernels` then plays the part of :class:`tinyalex.kernels.cuda.Kernels`: calling
``kernels.name(grid, block, args)`` sets the four variables for every thread of the
launch grid in turn and calls the kernel function once for each, with NumPy arrays in
place of device pointers. Threads run one after another, which is a valid schedule for
kernels that use no shared memory, no ``__syncthreads`` and no atomics -- the rules
tinyalex's kernels follow.

Unlike CuPy, the emulator checks every argument against the kernel's signature
(a pointer gets a C-contiguous array of the right dtype, an ``int`` gets ``np.int32``,
a ``scalar_t`` gets the array's scalar type), so a wrongly typed launch fails here
instead of computing garbage on a GPU.

Compiling and the argument checks are shared with :mod:`tinyalex.kernels.native`, which compiles
the same files as fast multi-threaded CPU code; the emulator differs in running the GPU's
loop, launch grid included, one thread at a time.
"""

import ctypes

from .cuda import GRID_STRIDE_LOOP
from .native import CPU_SHIM, CompiledKernels, NativeKernel

CUDA_SHIM = CPU_SHIM + r"""
struct tinyalex_dim3 { unsigned int x, y, z; };
extern "C" { tinyalex_dim3 blockIdx, threadIdx, blockDim, gridDim; }
""" + GRID_STRIDE_LOOP


class EmulatedKernel(NativeKernel):
    """One kernel, launched like a GPU launches it: every thread of the grid in turn."""

    def __init__(self, library, name, signature, dtype):
        super().__init__(library, name, signature, dtype)
        self.index = {v: (ctypes.c_uint * 3).in_dll(library, v)
                      for v in ("blockIdx", "threadIdx", "blockDim", "gridDim")}

    def __call__(self, grid, block, args):
        c_args = self.c_arguments(args)
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


class EmulatedKernels(CompiledKernels):
    """Stand-in for :class:`tinyalex.kernels.cuda.Kernels` that runs the kernels on the CPU."""

    kernel_class = EmulatedKernel

    def __init__(self, filename, dtype):
        super().__init__(filename, dtype, CUDA_SHIM, ("-O1",))
