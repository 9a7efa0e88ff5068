"""Loading and launching the raw CUDA kernels of tinyalex.

The kernels live in ``.cu`` files beside the code that uses them (``layers/lrn.cu``,
``layers/maxpool.cu``, ``layers/conv.cu``, ``sgd.cu``, and the engine ``engines/winograd.cu``),
named by their path inside the package. Every kernel is written against the type name
``scalar_t``, which is defined when the file is compiled: ``float`` for float32 arrays,
``double`` for float64, and declared ``extern "C"`` so that its name is not mangled and
CuPy finds it by name. So the accumulators follow the array dtype, and a float64
gradient check means as much on the GPU as on the CPU.

Every kernel walks its elements with ``KERNEL_LOOP(i, count) { ... }`` (Caffe's
``CUDA_KERNEL_LOOP``). On a GPU the macro is a grid-stride loop (:data:`GRID_STRIDE_LOOP`):
a thread handles element ``i``, then ``i + blockDim.x * gridDim.x``, and so on. That
makes any launch size correct and keeps the launch arithmetic in one place
(:func:`grid_size`). Because the loop is a macro, the same source also compiles for the
CPU: :mod:`tinyalex.kernels.native` defines it as a loop shared out among the CPU's threads (the
fast CPU path), and :mod:`tinyalex.kernels.emulation` runs the grid-stride loop thread by
thread (for the tests).
"""

import functools
from pathlib import Path

import numpy as np

from .. import backend

KERNEL_DIR = Path(__file__).parents[1]   # kernel files are named from tinyalex/: "layers/lrn.cu"
THREADS_PER_BLOCK = 256
MAX_BLOCKS = 65535

C_TYPE_NAMES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def c_type_name(dtype):
    """The C type that ``scalar_t`` stands for with arrays of ``dtype``."""
    try:
        return C_TYPE_NAMES[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"tinyalex kernels support float32 and float64 arrays, not {np.dtype(dtype)}") from None


# One thread per element, every thread of the launch grid taking a share
GRID_STRIDE_LOOP = ("#define KERNEL_LOOP(i, count) \\\n"
                    "    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (count); i += blockDim.x * gridDim.x)\n")


def kernel_source(filename):
    """The text of a kernel file, as written (``KERNEL_LOOP`` not yet defined)."""
    return (KERNEL_DIR / filename).read_text()


def gpu_source(filename):
    """What a GPU compiles: the kernel file after the grid-stride ``KERNEL_LOOP``."""
    return GRID_STRIDE_LOOP + kernel_source(filename)


def grid_size(n):
    """Blocks for ``n`` elements: one thread each, capped (the loops stride over the rest)."""
    return min(max(1, -(-n // THREADS_PER_BLOCK)), MAX_BLOCKS)


def launch(kernel, n, *args):
    """Launch ``kernel`` with one thread per element for ``n`` elements."""
    kernel((grid_size(n),), (THREADS_PER_BLOCK,), args)


class Kernels:
    """The kernels of one ``.cu`` file, compiled for one dtype on one GPU.

    ``kernels.lrn_fill_scale(grid, block, args)`` launches the kernel of that name, with
    CuPy's calling convention. CuPy does not check argument types against the kernel's
    signature, so callers pass ``np.int32`` and ``dtype.type`` scalars explicitly.
    """

    def __init__(self, filename, dtype, device):
        import cupy

        with cupy.cuda.Device(device):
            self.module = cupy.RawModule(
                code=gpu_source(filename),
                options=(f"-Dscalar_t={c_type_name(dtype)}",),
            )
            self.module.compile()
        self.device = device

    def __getattr__(self, name):
        if name.startswith("_") or name == "module":  # not a kernel (e.g. while unpickling)
            raise AttributeError(name)
        kernel = self.module.get_function(name)
        setattr(self, name, kernel)  # looked up once: later launches find the attribute directly
        return kernel


@functools.lru_cache(maxsize=None)
def load(filename, dtype, device):
    """Compile (once per file, dtype and device) and return :class:`Kernels`."""
    return Kernels(filename, np.dtype(dtype), device)


def kernels_for(filename, array):
    """The kernels of ``filename`` for the dtype and GPU of ``array``."""
    return load(filename, array.dtype, backend.device_of(array))
