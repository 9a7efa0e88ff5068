"""Local response normalization (paper, section 3.3).

A neuron's activity is divided by a power of the summed squared activity of the neurons
at the same position in the ``size`` neighbouring channels ("adjacent kernel maps"),
a form of lateral inhibition::

    scale[c] = k + alpha * sum_{j = c - size//2}^{c + size//2} x[j]^2     (j clipped to [0, C-1])
    out[c]   = x[c] * scale[c]^(-beta)

The paper's constants are k = 2, size = 5, alpha = 1e-4, beta = 0.75, and tinyalex uses
them as written: alpha multiplies each squared term. Caffe and PyTorch divide alpha by
``size``; to get the same numbers from PyTorch's ``LocalResponseNorm``, give it
``alpha * size``.

The NumPy path and the kernel path (``lrn.cu``) compute the same buffers under the same
names, ``scale`` and ``out``.
"""

import numpy as np

from ..kernels import cuda
from ..backend import get_array_module
from .base import Layer


def window_sum(a, size):
    """Sum of ``a`` over a window of ``size`` channels centred on each channel (axis 1).

    The loop runs over the ``size`` offsets of the window, each adding one shifted
    slice of the whole tensor; the window is clipped at the first and last channel.
    """
    xp = get_array_module(a)
    C = a.shape[1]
    total = xp.zeros_like(a)
    for offset in range(-(size // 2), size // 2 + 1):
        # total[:, c] += a[:, c + offset] for every c with 0 <= c + offset < C
        total[:, max(0, -offset):min(C, C - offset)] += a[:, max(0, offset):min(C, C + offset)]
    return total


class LRN(Layer):
    """x (N, C, H, W) -> out (N, C, H, W), normalized across channels.

    Two paths fill the same buffers: ``forward_numpy`` / ``backward_numpy`` (written
    against ``xp``, so they run on NumPy or CuPy arrays) and ``forward_kernels`` /
    ``backward_kernels`` (the kernels of ``lrn.cu``). :class:`Layer` runs the kernels on a
    GPU and the NumPy path on a CPU.
    """

    kernel_file = "layers/lrn.cu"

    def __init__(self, size=5, k=2.0, alpha=1e-4, beta=0.75):
        if size < 1 or size % 2 == 0:
            raise ValueError(f"the LRN window must be an odd number of channels, got size={size}")
        self.size, self.k, self.alpha, self.beta = size, k, alpha, beta
        self.x = self.scale = self.out = None

    def keep(self, train, x, scale, out):
        """Backward needs x, scale and out; evaluation keeps none of them."""
        self.x, self.scale, self.out = (x, scale, out) if train else (None, None, None)

    # The NumPy path ----------------------------------------------------------------------

    def forward_numpy(self, x, train=True):
        scale = self.k + self.alpha * window_sum(x * x, self.size)
        out = x * scale ** -self.beta
        self.keep(train, x, scale, out)
        return out

    def backward_numpy(self, dout):
        self.check_saved(self.x)
        # forward: out[j] = x[j] * scale[j]^(-beta), scale[j] = k + alpha * sum_{i in window(j)} x[i]^2
        return (dout * self.scale ** -self.beta
                - 2 * self.alpha * self.beta * self.x * window_sum(dout * self.out / self.scale, self.size))

    # The kernel path: the same buffers, computed by the kernels of lrn.cu. ``kernels`` is
    # kernels.cuda.Kernels on a GPU, kernels.native.NativeKernels on the CPU, or
    # kernels.emulation.EmulatedKernels for running the GPU's launch thread by thread.

    def forward_kernels(self, x, train, kernels):
        xp = get_array_module(x)
        x = xp.ascontiguousarray(x)
        N, C, H, W = x.shape
        real = x.dtype.type
        scale, out = xp.empty_like(x), xp.empty_like(x)
        pixels = N * H * W
        cuda.launch(kernels.lrn_fill_scale, pixels, x, scale, np.int32(pixels), np.int32(C),
                    np.int32(H * W), np.int32(self.size), real(self.alpha), real(self.k))
        cuda.launch(kernels.lrn_output, x.size, x, scale, out, np.int32(x.size), real(self.beta))
        self.keep(train, x, scale, out)
        return out

    def backward_kernels(self, dout, kernels):
        self.check_saved(self.x)
        xp = get_array_module(dout)
        dout = xp.ascontiguousarray(dout)
        N, C, H, W = dout.shape
        real = dout.dtype.type
        dx = xp.empty_like(dout)
        pixels = N * H * W
        cuda.launch(kernels.lrn_backward, pixels, self.x, self.out, self.scale, dout, dx, np.int32(pixels),
                    np.int32(C), np.int32(H * W), np.int32(self.size), real(self.alpha), real(self.beta))
        return dx

    def __repr__(self):
        return f"LRN(size={self.size}, k={self.k}, alpha={self.alpha}, beta={self.beta})"


class WholeStackLRN(LRN):
    """One column's part of an LRN over every column's channels: x (N, C, H, W), the
    columns' outputs side by side -> out (N, C / parts, H, W), channels ``part`` of ``parts``.

    On the paper's two GPUs each column normalizes its own channels. A net written for one
    device (Caffe's ``bvlc_alexnet``) normalizes the whole stack at once, so the windows of
    the channels next to the boundary between the columns reach into the other column. Each
    column computes the whole stack's ``scale`` and ``out`` and keeps its own channels.
    """

    def __init__(self, part, parts, size=5, k=2.0, alpha=1e-4, beta=0.75):
        super().__init__(size, k, alpha, beta)
        self.part, self.parts = part, parts

    def own(self, channels):
        width = channels // self.parts
        return slice(self.part * width, (self.part + 1) * width)

    def forward(self, x, train=True):
        out = super().forward(x, train)
        return get_array_module(out).ascontiguousarray(out[:, self.own(out.shape[1])])

    def backward(self, dout):
        self.check_saved(self.x)
        # forward: out = whole-stack LRN(x)[:, own]; the other columns' outputs get no gradient here
        xp = get_array_module(dout)
        whole = xp.zeros_like(self.x)
        whole[:, self.own(whole.shape[1])] = dout
        return super().backward(whole)

    def __repr__(self):
        return (f"WholeStackLRN(part={self.part}, parts={self.parts}, size={self.size}, k={self.k}, "
                f"alpha={self.alpha}, beta={self.beta})")
