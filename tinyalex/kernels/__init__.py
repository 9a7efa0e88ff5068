"""The machinery that runs a ``.cu`` file: on a GPU through CuPy (:mod:`.cuda`), as native
multi-threaded CPU code (:mod:`.native`), or thread by thread on a CPU for the tests
(:mod:`.emulation`), with the compiled CPU libraries kept in a private cache (:mod:`.cache`).

A layer never imports these modules itself: :class:`tinyalex.layers.Layer` asks
:func:`compiled_kernels` for its file's kernels and hands them to its kernel path.
"""

from . import cuda, native
from ..backend import is_gpu_array


def compiled_kernels(filename, array):
    """The kernels of ``filename`` compiled for where ``array`` lives: by CuPy for a GPU
    array, by the C++ compiler for a NumPy array; None when there are none on the CPU (no
    compiler, a failed build, or a dtype the kernels do not support)."""
    if is_gpu_array(array):
        return cuda.kernels_for(filename, array)
    return native.kernels_for(filename, array)
