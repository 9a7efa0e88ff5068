# shown in: docs/kernels.md
# needs: c++
"""LRN's CUDA path run on the CPU by the emulator, against its NumPy path (the code printed in
docs/kernels.md, as it is there)."""

import numpy as np
from tinyalex.layers import LRN
from tinyalex.kernels.emulation import EmulatedKernels

x = np.random.default_rng(0).standard_normal((2, 6, 3, 3)).astype(np.float32)
kernels = EmulatedKernels("layers/lrn.cu", np.float32)      # lrn.cu compiled by c++ with scalar_t = float
numpy_path, cuda_path = LRN(k=1.0, alpha=1.0), LRN(k=1.0, alpha=1.0)
out = numpy_path.forward_numpy(x)
out_cuda = cuda_path.forward_kernels(x, True, kernels)  # every thread of the launch grid, one by one
print(sorted(kernels.kernels))
print("largest |difference| in scale:", np.abs(cuda_path.scale - numpy_path.scale).max())
print("largest |difference| in out:  ", np.abs(out_cuda - out).max())
print("out_cuda[0, :, 0, 0] =", out_cuda[0, :, 0, 0])
try:
    kernels.lrn_output((1,), (256,), (x, cuda_path.scale, np.empty_like(x), x.size, np.float32(0.75)))
except TypeError as error:
    print("TypeError:", error)
