"""Convolution as one matrix product: im2col, then W @ cols (paper, section 3.5).

Every output pixel of a convolution is a dot product between one kernel and one patch of
the input. ``im2col`` copies every patch of every image of the batch into one column of a
matrix; the whole convolution of the whole batch is then a single matrix product, which is
the operation GPUs (and BLAS libraries) do fastest. ``col2im`` is its adjoint: it adds
each column back onto the patch it came from, which is what backward needs.

Shapes, for an input of N images with C channels of H x W pixels, O kernels of size
k x k, stride s and zero padding p::

    OH = (H + 2p - k) // s + 1        OW = (W + 2p - k) // s + 1   (rounded down, as in
                                       PyTorch and Caffe: rows and columns that no whole
                                       window reaches are left out)
    x     (N, C, H, W)
    cols  (C*k*k, N*OH*OW)             one column per output pixel of the batch
    W     (O, C, k, k)  seen as (O, C*k*k)
    out   (N, O, OH, OW)
"""

import numpy as np

from ..backend import get_array_module
from ..kernels import cuda
from .base import Layer, check_dtype, initial_parameters


def output_size(size, kernel_size, stride, pad=0, ceil_mode=False):
    """Outputs along one axis: (size + 2*pad - kernel_size) / stride + 1, rounded down.

    The floor rule drops the last rows (or columns) that no whole window reaches.
    ``ceil_mode=True`` rounds up instead (Caffe's pooling rule): one more window that runs
    past the edge, as long as it starts inside the input (PyTorch's ``ceil_mode``).
    """
    span = size + 2 * pad - kernel_size
    if span < 0:
        raise ValueError(f"a {kernel_size}x{kernel_size} window with padding {pad} does not fit in an input "
                         f"of size {size}")
    count = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (count - 1) * stride >= size + pad:
        count -= 1   # that last window would start in the padding (or past it): PyTorch drops it
    return count


def exact_output_size(size, kernel_size, stride, pad=0):
    """Like :func:`output_size`, but refuse a size that the windows do not tile exactly.

    The network's geometry uses this: an AlexNet whose image size leaves pixels out would
    quietly differ from the paper's, so it is refused with the reason.
    """
    span = size + 2 * pad - kernel_size
    if span < 0 or span % stride:
        raise ValueError(f"a {kernel_size}x{kernel_size} window with stride {stride} and padding {pad} "
                         f"does not tile an input of size {size}: (size + 2*pad - kernel) must be a "
                         f"non-negative multiple of the stride, got {span}")
    return span // stride + 1


def im2col(x, kernel_size, stride, pad):
    """(N, C, H, W) -> (C*k*k, N*OH*OW): every k x k patch of the batch as one column.

    The patches are first a strided *view* of the padded input (no copy, :func:`patches`);
    the final reshape copies that view into a contiguous matrix.
    """
    view = patches(x, kernel_size, stride, pad)
    C, k, _, N, OH, OW = view.shape
    return view.reshape(C * k * k, N * OH * OW)


def patches(x, kernel_size, stride, pad):
    """(N, C, H, W) -> a view (C, k, k, N, OH, OW) of the padded input, nothing copied:
    element [c, i, j, n, oy, ox] is x[n, c, oy*s + i, ox*s + j]."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    k = kernel_size
    OH, OW = output_size(H, k, stride, pad), output_size(W, k, stride, pad)
    if pad:
        x = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    sN, sC, sH, sW = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, shape=(C, k, k, N, OH, OW), strides=(sC, sH, sW, sN, sH * stride, sW * stride))


def col2im(cols, x_shape, kernel_size, stride, pad):
    """(C*k*k, N*OH*OW) -> (N, C, H, W): the adjoint of :func:`im2col`.

    Patches overlap when the stride is smaller than the kernel, so an input pixel
    receives the sum of the entries of every column that copied it. The loop runs over
    the k*k positions inside the kernel (not over pixels): each step adds one strided
    slice of the whole batch at once.
    """
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    k = kernel_size
    OH, OW = output_size(H, k, stride, pad), output_size(W, k, stride, pad)
    cols = cols.reshape(C, k, k, N, OH, OW)
    dx = xp.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            # forward: patches[c, i, j, n, oy, ox] = x[n, c, oy*s + i, ox*s + j]
            dx[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride] += cols[:, i, j].transpose(1, 0, 2, 3)
    return dx[:, :, pad:pad + H, pad:pad + W] if pad else dx


# The same two matrices, filled by the kernels of conv.cu: one pass, one thread per output
# pixel (im2col) or input pixel (col2im), where NumPy's reshape copies a 6-D view and col2im
# makes k * k passes over dx. ``kernels`` comes from Layer.kernels_for: cuda.Kernels on a
# GPU, native.NativeKernels on the CPU (or the emulator, in the tests).

def im2col_kernel(x, kernel_size, stride, pad, kernels):
    """:func:`im2col` by the kernel ``im2col`` of conv.cu."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    N, C, H, W = x.shape
    k = kernel_size
    OH, OW = output_size(H, k, stride, pad), output_size(W, k, stride, pad)
    cols = xp.empty((C * k * k, N * OH * OW), dtype=x.dtype)
    count = C * N * OH * OW        # one thread per (channel, output pixel)
    cuda.launch(kernels.im2col, count, x, cols, np.int32(count), np.int32(N), np.int32(C), np.int32(H),
                np.int32(W), np.int32(OH), np.int32(OW), np.int32(k), np.int32(stride), np.int32(pad))
    return cols


def col2im_kernel(cols, x_shape, kernel_size, stride, pad, kernels):
    """:func:`col2im` by the kernel ``col2im`` of conv.cu."""
    xp = get_array_module(cols)
    cols = xp.ascontiguousarray(cols)
    N, C, H, W = x_shape
    k = kernel_size
    OH, OW = output_size(H, k, stride, pad), output_size(W, k, stride, pad)
    dx = xp.empty(x_shape, dtype=cols.dtype)
    cuda.launch(kernels.col2im, dx.size, cols, dx, np.int32(dx.size), np.int32(N), np.int32(C), np.int32(H),
                np.int32(W), np.int32(OH), np.int32(OW), np.int32(k), np.int32(stride), np.int32(pad))
    return dx


class Conv2D(Layer):
    """2-D convolution by im2col and one matrix product; NCHW activations, OIHW weights.

    x (N, C, H, W) -> out (N, O, OH, OW), with OH = (H + 2*pad - kernel_size) // stride + 1
    (rounded down: input rows and columns past the last whole window are not used).

    ``weight`` (O, C, k, k) and ``bias`` (O,) start as the paper initialises them
    (section 5): weights from N(0, weight_std^2), biases constant. ``input_grad=False``
    suits a first layer: backward then skips the gradient with respect to the image,
    which nobody needs, and returns None.

    Two paths build the matrices: ``forward_numpy`` / ``backward_numpy`` with
    :func:`im2col` and :func:`col2im` above, ``forward_kernels`` / ``backward_kernels`` with
    the kernels of ``conv.cu`` (:class:`Layer` picks one). The rest is one matrix product
    and its gradients, the same whichever path built the matrix (:meth:`multiply`).
    Forward keeps ``cols`` for backward: the largest buffer of the network, about
    k*k / stride^2 times the size of the input. (Engines that compute the same sums with
    less memory or fewer multiplications are subclasses, in :mod:`tinyalex.engines`.)
    """

    param_names = ("weight", "bias")
    kernel_file = "layers/conv.cu"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad=0, *, input_grad=True,
                 weight_std=0.01, bias=0.0, rng=None, device="cpu", dtype="float32"):
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad
        self.input_grad = input_grad
        self.weight, self.bias = initial_parameters(
            (out_channels, in_channels, kernel_size, kernel_size), out_channels, weight_std, bias, rng, device, dtype)
        self.dweight = self.dbias = None
        self.cols = self.x_shape = None

    def forward(self, x, train=True):
        self.check_input(x)
        return super().forward(x, train)   # the NumPy path or the kernel path (Layer)

    def check_input(self, x):
        check_dtype(x, self.weight, self)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expects {self.in_channels} input channels, (N, C, H, W), got shape {x.shape}")

    # The NumPy path ----------------------------------------------------------------------

    def forward_numpy(self, x, train=True):
        cols = im2col(x, self.kernel_size, self.stride, self.pad)
        return self.multiply(cols, x.shape, train)

    def backward_numpy(self, dout):
        x_shape = self.x_shape
        dcols = self.multiply_backward(dout)
        return None if dcols is None else col2im(dcols, x_shape, self.kernel_size, self.stride, self.pad)

    # The kernel path: the same matrices, filled by the kernels of conv.cu ------------------

    def forward_kernels(self, x, train, kernels):
        cols = im2col_kernel(x, self.kernel_size, self.stride, self.pad, kernels)
        return self.multiply(cols, x.shape, train)

    def backward_kernels(self, dout, kernels):
        x_shape = self.x_shape
        dcols = self.multiply_backward(dout)
        return None if dcols is None else col2im_kernel(dcols, x_shape, self.kernel_size, self.stride, self.pad,
                                                        kernels)

    # What both paths share: the product and its gradients --------------------------------

    def multiply(self, cols, x_shape, train):
        """out = W @ cols + b, (O, N*OH*OW), returned as (N, O, OH, OW); ``cols`` is kept
        for backward when ``train``."""
        N, _, H, W = x_shape
        O, k, s, p = self.out_channels, self.kernel_size, self.stride, self.pad
        out = self.weight.reshape(O, -1) @ cols
        out += self.bias[:, None]
        self.cols, self.x_shape = (cols, x_shape) if train else (None, None)
        out = out.reshape(O, N, output_size(H, k, s, p), output_size(W, k, s, p))
        return get_array_module(out).ascontiguousarray(out.transpose(1, 0, 2, 3))

    def multiply_backward(self, dout):
        """Fills dweight and dbias; returns dcols = W^T @ dout, or None without input_grad."""
        self.check_saved(self.cols)
        cols, self.cols = self.cols, None   # free the largest buffer as soon as possible
        O = self.out_channels
        # forward: out = W @ cols + b, with out seen as (O, N*OH*OW)
        dout = dout.transpose(1, 0, 2, 3).reshape(O, -1)
        self.dweight = (dout @ cols.T).reshape(self.weight.shape)
        self.dbias = dout.sum(axis=1)
        del cols
        return self.weight.reshape(O, -1).T @ dout if self.input_grad else None

    def __repr__(self):
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, pad={self.pad})")
