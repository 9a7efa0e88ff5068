"""Overlapping max-pooling (paper, section 3.4).

Each output is the maximum of a ``size`` x ``size`` window of one channel; windows are
``stride`` pixels apart. The paper uses size 3 and stride 2, so neighbouring windows
overlap, and reports 0.4 / 0.3 points lower top-1 / top-5 error than size = stride = 2.

The gradient of a maximum flows only to the input that won. Forward therefore records,
for each output, where its winner was (``argmax``: the index y * W + x inside the input
plane); backward sends each output's gradient there. Because windows overlap, an input
can win several windows and receives the sum of their gradients.

The NumPy path and the CUDA path (``maxpool.cu``) fill the same buffers, ``out`` and
``argmax``, with the same tie rule (the first maximum in row-major order wins).
"""

import numpy as np

from .. import cuda
from ..backend import get_array_module, is_gpu_array
from .base import Layer
from .conv import output_size


class MaxPool2D(Layer):
    """x (N, C, H, W) -> out (N, C, OH, OW), OH = (H - size) // stride + 1."""

    def __init__(self, size=3, stride=2):
        self.size, self.stride = size, stride

    def forward(self, x):
        if is_gpu_array(x):
            return self.forward_cuda(x, cuda.kernels_for("maxpool.cu", x))
        xp = get_array_module(x)
        N, C, H, W = x.shape
        OH = output_size(H, self.size, self.stride, 0)
        OW = output_size(W, self.size, self.stride, 0)
        self.x_shape = x.shape
        k, s = self.size, self.stride
        # candidates[i * k + j][n, c, oy, ox] = x[n, c, oy*s + i, ox*s + j]: one strided view
        # (no copy) per position (i, j) inside the window, each covering every window at once
        candidates = [x[:, :, i:i + s * (OH - 1) + 1:s, j:j + s * (OW - 1) + 1:s] for i in range(k) for j in range(k)]
        out = candidates[0].copy()
        for candidate in candidates[1:]:
            xp.maximum(out, candidate, out=out)
        # the winner is the first position, in row-major order, that holds the maximum:
        # walking the positions backwards, the last one written is the first maximum
        winner = xp.zeros(out.shape, dtype=xp.int32)               # i * k + j of the winner
        for position in reversed(range(k * k)):
            xp.copyto(winner, position, where=candidates[position] == out)
        oy, ox = xp.arange(OH, dtype=xp.int32)[:, None], xp.arange(OW, dtype=xp.int32)[None, :]
        self.argmax = (oy * s + winner // k) * W + ox * s + winner % k
        return out

    def backward(self, dout):
        if is_gpu_array(dout):
            return self.backward_cuda(dout, cuda.kernels_for("maxpool.cu", dout))
        N, C, H, W = self.x_shape
        # forward: out[n, c, oy, ox] = x[n, c, argmax[n, c, oy, ox]] (argmax: y * W + x in the plane).
        # Each output's gradient goes to its winner; np.add.at adds every entry, so a pixel
        # that won several overlapping windows receives the sum of their gradients.
        plane_start = (np.arange(N * C) * (H * W)).reshape(N, C, 1, 1)
        dx = np.zeros(N * C * H * W, dtype=dout.dtype)
        np.add.at(dx, (self.argmax + plane_start).ravel(), dout.ravel())
        return dx.reshape(self.x_shape)

    # The CUDA path: the same buffers, computed by the kernels of maxpool.cu. ``kernels`` is
    # cuda.Kernels on a GPU, or cuda_emulation.EmulatedKernels for running maxpool.cu on a CPU.

    def forward_cuda(self, x, kernels):
        xp = get_array_module(x)
        x = xp.ascontiguousarray(x)
        N, C, H, W = x.shape
        OH = output_size(H, self.size, self.stride, 0)
        OW = output_size(W, self.size, self.stride, 0)
        self.x_shape = x.shape
        out = xp.empty((N, C, OH, OW), dtype=x.dtype)
        self.argmax = xp.empty((N, C, OH, OW), dtype=xp.int32)
        cuda.launch(kernels.maxpool_forward, out.size, x, out, self.argmax, np.int32(out.size),
                    np.int32(H), np.int32(W), np.int32(OH), np.int32(OW),
                    np.int32(self.size), np.int32(self.stride))
        return out

    def backward_cuda(self, dout, kernels):
        xp = get_array_module(dout)
        dout = xp.ascontiguousarray(dout)
        N, C, H, W = self.x_shape
        OH, OW = dout.shape[2:]
        dx = xp.empty(self.x_shape, dtype=dout.dtype)
        cuda.launch(kernels.maxpool_backward, dx.size, dout, self.argmax, dx, np.int32(dx.size),
                    np.int32(H), np.int32(W), np.int32(OH), np.int32(OW),
                    np.int32(self.size), np.int32(self.stride))
        return dx

    def __repr__(self):
        return f"MaxPool2D(size={self.size}, stride={self.stride})"
