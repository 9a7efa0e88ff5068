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
# float32 sums in another order differ in the last bits, by an amount that depends on the
# compiler and the CPU, so the snippet prints a bound rather than the digits
print("largest |difference| in scale below 1e-5:", bool(np.abs(cuda_path.scale - numpy_path.scale).max() < 1e-5))
print("largest |difference| in out below 1e-6:  ", bool(np.abs(out_cuda - out).max() < 1e-6))
print("out_cuda[0, :, 0, 0] =", np.round(out_cuda[0, :, 0, 0], 3))
try:
    kernels.lrn_output((1,), (256,), (x, cuda_path.scale, np.empty_like(x), x.size, np.float32(0.75)))
except TypeError as error:
    print("TypeError:", error)
