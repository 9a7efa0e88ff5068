"""Overlapping max-pooling (paper, section 3.4).

Each output is the maximum of a ``size`` x ``size`` window of one channel; windows are
``stride`` pixels apart. The paper uses size 3 and stride 2, so neighbouring windows
overlap, and reports 0.4 / 0.3 points lower top-1 / top-5 error than size = stride = 2.

The gradient of a maximum flows only to the input that won. Forward therefore records,
for each output, where its winner was (``argmax``: the index y * W + x inside the input
plane); backward sends each output's gradient there. Because windows overlap, an input
can win several windows and receives the sum of their gradients.

The NumPy path and the kernel path (``maxpool.cu``) fill the same buffers, ``out`` and
``argmax``, with the same tie rule (the first maximum in row-major order wins).
"""

import numpy as np

from ..kernels import cuda
from ..backend import get_array_module
from .base import Layer
from .conv import output_size


class MaxPool2D(Layer):
    """x (N, C, H, W) -> out (N, C, OH, OW), OH = (H - size) // stride + 1 (rounded up
    instead with ``ceil_mode``; see :func:`~tinyalex.layers.conv.output_size`).

    Any input size is accepted, with PyTorch's rules. By default the sizes are rounded
    down: input rows and columns past the last whole window are dropped (pooling 8x11
    with size 3, stride 2 gives 3x5; the last row is never looked at). With
    ``ceil_mode=True`` (Caffe's rule) they are rounded up: one more window per axis that
    runs past the edge and takes the maximum of the pixels it does cover (8x11 gives
    4x5), as long as it starts inside the input.

    Two paths fill the same buffers, ``out`` and ``argmax``: ``forward_numpy`` /
    ``backward_numpy`` (written against ``xp``: they run on NumPy or CuPy arrays) and
    ``forward_kernels`` / ``backward_kernels`` (the kernels of ``maxpool.cu``). :class:`Layer`
    runs the kernels on a GPU and the NumPy path on a CPU.
    """

    kernel_file = "layers/maxpool.cu"

    def __init__(self, size=3, stride=2, ceil_mode=False):
        self.size, self.stride, self.ceil_mode = size, stride, ceil_mode
        self.argmax = self.x_shape = None

    def output_shape(self, x_shape):
        N, C, H, W = x_shape
        return (N, C, output_size(H, self.size, self.stride, 0, self.ceil_mode),
                output_size(W, self.size, self.stride, 0, self.ceil_mode))

    def keep(self, train, x_shape, argmax):
        """Backward needs the input's shape and the winners; evaluation keeps neither."""
        self.x_shape, self.argmax = (x_shape, argmax) if train else (None, None)

    # The NumPy path ----------------------------------------------------------------------

    def forward_numpy(self, x, train=True):
        xp = get_array_module(x)
        N, C, H, W = x.shape
        _, _, OH, OW = self.output_shape(x.shape)
        k, s = self.size, self.stride
        # A window that runs past the edge (ceil_mode) sees the lowest value there, which
        # never wins: -inf for floats, the type's minimum for integers
        reach_y, reach_x = (OH - 1) * s + k, (OW - 1) * s + k
        if reach_y > H or reach_x > W:
            lowest = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
            x = xp.pad(x, ((0, 0), (0, 0), (0, max(0, reach_y - H)), (0, max(0, reach_x - W))),
                       constant_values=lowest)
        # candidates[i * k + j][n, c, oy, ox] = x[n, c, oy*s + i, ox*s + j]: one strided view
        # (no copy) per position (i, j) inside the window, each covering every window at once
        candidates = [x[:, :, i:i + s * (OH - 1) + 1:s, j:j + s * (OW - 1) + 1:s] for i in range(k) for j in range(k)]
        out = candidates[0].copy()
        for candidate in candidates[1:]:
            xp.maximum(out, candidate, out=out)
        if not train:
            self.keep(False, None, None)
            return out
        # the winner is the first position, in row-major order, that holds the maximum:
        # walking the positions backwards, the last one written is the first maximum
        winner = xp.zeros(out.shape, dtype=xp.int32)               # i * k + j of the winner
        for position in reversed(range(k * k)):
            xp.copyto(winner, position, where=candidates[position] == out)
        oy, ox = xp.arange(OH, dtype=xp.int32)[:, None], xp.arange(OW, dtype=xp.int32)[None, :]
        # the winner's place in its (unpadded) input plane: -inf padding never wins
        self.keep(True, (N, C, H, W), (oy * s + winner // k) * W + ox * s + winner % k)
        return out

    def backward_numpy(self, dout):
        self.check_saved(self.argmax)
        xp = get_array_module(dout)
        N, C, H, W = self.x_shape
        # forward: out[n, c, oy, ox] = x[n, c, argmax[n, c, oy, ox]] (argmax: y * W + x in the plane).
        # Each output's gradient goes to its winner; add.at adds every entry, so a pixel that
        # won several overlapping windows receives the sum of their gradients. (On CuPy,
        # add.at adds with atomic operations in no fixed order; the kernel path below gathers
        # instead, deterministically.)
        plane_start = (xp.arange(N * C) * (H * W)).reshape(N, C, 1, 1)
        dx = xp.zeros(N * C * H * W, dtype=dout.dtype)
        xp.add.at(dx, (self.argmax + plane_start).ravel(), dout.ravel())
        return dx.reshape(self.x_shape)

    # The kernel path: the same buffers, computed by the kernels of maxpool.cu. ``kernels`` is
    # kernels.cuda.Kernels on a GPU, kernels.native.NativeKernels on the CPU, or
    # kernels.emulation.EmulatedKernels for running the GPU's launch thread by thread.

    def forward_kernels(self, x, train, kernels):
        xp = get_array_module(x)
        x = xp.ascontiguousarray(x)
        N, C, H, W = x.shape
        out = xp.empty(self.output_shape(x.shape), dtype=x.dtype)
        OH, OW = out.shape[2:]
        argmax = xp.empty(out.shape, dtype=xp.int32)
        cuda.launch(kernels.maxpool_forward, out.size, x, out, argmax, np.int32(out.size),
                    np.int32(H), np.int32(W), np.int32(OH), np.int32(OW),
                    np.int32(self.size), np.int32(self.stride))
        self.keep(train, x.shape, argmax)
        return out

    def backward_kernels(self, dout, kernels):
        self.check_saved(self.argmax)
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
        ceil = ", ceil_mode=True" if self.ceil_mode else ""
        return f"MaxPool2D(size={self.size}, stride={self.stride}{ceil})"
