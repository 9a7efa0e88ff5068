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

from .. import cuda
from ..backend import get_array_module, is_gpu_array
from . import winograd
from .base import Layer, check_dtype, compiled_kernels, initial_parameters


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

    The patches are first a strided *view* of the padded input (no copy): element
    [c, i, j, n, oy, ox] of the view is x[n, c, oy*s + i, ox*s + j]. The final reshape
    copies that view into a contiguous matrix.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    k = kernel_size
    OH, OW = output_size(H, k, stride, pad), output_size(W, k, stride, pad)
    if pad:
        x = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    sN, sC, sH, sW = x.strides
    patches = xp.lib.stride_tricks.as_strided(
        x, shape=(C, k, k, N, OH, OW), strides=(sC, sH, sW, sN, sH * stride, sW * stride))
    return patches.reshape(C * k * k, N * OH * OW)


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


def winograd_fits(kernel_size, stride):
    """Whether Winograd's F(2x2, 3x3) (:mod:`tinyalex.layers.winograd`) computes this
    convolution: a 3 x 3 kernel with stride 1."""
    return (kernel_size, stride) == (3, 1)


class SharedPatches:
    """Hands the im2col matrix one conv layer built to the next layer that asks for the
    same input with the same geometry, once.

    On one device the two columns' conv1 layers read the same images (the same array)
    with the same kernel size, stride and padding, so their im2col matrices are equal: the
    first layer to ask builds it, the second takes it, and this object forgets it. It
    holds a matrix only between those two calls, never from one step to the next, and a
    call with another input (or another geometry) builds afresh.
    """

    def __init__(self):
        self.source = self.geometry = self.cols = None

    def get(self, x, geometry, build):
        if self.source is x and self.geometry == geometry:
            cols, self.source, self.geometry, self.cols = self.cols, None, None, None
            return cols
        cols = build(x)
        self.source, self.geometry, self.cols = x, geometry, cols
        return cols


class Conv2D(Layer):
    """2-D convolution, NCHW activations and OIHW weights.

    x (N, C, H, W) -> out (N, O, OH, OW), with OH = (H + 2*pad - kernel_size) // stride + 1
    (rounded down: input rows and columns past the last whole window are not used).

    ``weight`` (O, C, k, k) and ``bias`` (O,) start as the paper initialises them
    (section 5): weights from N(0, weight_std^2), biases constant. ``input_grad=False``
    suits a first layer: backward then skips the gradient with respect to the image,
    which nobody needs, and returns None.

    ``algorithm`` chooses how the sums are computed:

    * "im2col": the matrix of patches above, then one matrix product (any geometry);
    * "winograd": Winograd's F(2x2, 3x3) (:mod:`tinyalex.layers.winograd`), for 3 x 3
      kernels with stride 1 only: 16/36 of the multiplications, half the memory kept;
    * None (the default): "winograd" where it applies and its transforms run as compiled
      kernels on a CPU, "im2col" everywhere else (on a GPU Winograd measured slower and
      larger than im2col in training: docs/benchmarks.md).

    Backward needs forward's im2col matrix (or Winograd's transformed input), the largest
    buffer of the network: about k*k / stride^2 times the size of the input (conv2's: 25
    times, 112 MB per column at batch 32). ``rebuild_cols`` chooses between keeping it from
    forward (False) and keeping only the input and rebuilding the matrix in backward
    (True), one more copy for a fraction of the memory. The default, None, rebuilds on a
    GPU, where memory decides the batch a user can afford, and on a CPU, where the copy
    costs time, keeps, except in a layer without ``input_grad`` (conv1): its matrix is the
    network's largest (134 MiB per column at batch 32) and, built first and used last, it
    is held through the whole backward pass, when memory peaks (docs/benchmarks.md
    measures these choices).

    ``shared_patches``, a :class:`SharedPatches` that two layers reading the same input
    are given (the model gives one to the two columns' conv1 on one device), lets the
    second borrow the first's im2col matrix instead of building its own.

    im2col and col2im come from the kernels of ``conv.cu`` where :class:`Layer` finds them
    (a GPU, or a CPU with a C++ compiler, for the passes in ``kernels_on_cpu``), and from
    the NumPy functions above otherwise; Winograd's transforms likewise from
    ``winograd.cu`` or the NumPy functions of winograd.py.
    """

    param_names = ("weight", "bias")
    kernel_file = "layers/conv.cu"
    winograd_file = "layers/winograd.cu"
    # On a CPU, NumPy's im2col (one reshape copy) is faster than the kernel's
    # one-thread-per-pixel loop; the col2im kernel beats NumPy's k * k passes
    kernels_on_cpu = ("backward",)
    algorithms = ("im2col", "winograd")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad=0, *, input_grad=True,
                 rebuild_cols=None, algorithm=None, shared_patches=None, weight_std=0.01, bias=0.0, rng=None,
                 device="cpu", dtype="float32"):
        if algorithm not in (None, *self.algorithms):
            raise ValueError(f"algorithm must be None or one of {self.algorithms}, got {algorithm!r}")
        if algorithm == "winograd" and not winograd_fits(kernel_size, stride):
            raise ValueError(f"Winograd's F(2x2, 3x3) needs 3 x 3 kernels with stride 1, not "
                             f"{kernel_size} x {kernel_size} with stride {stride}; use algorithm='im2col'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad
        self.input_grad, self.rebuild_cols, self.algorithm = input_grad, rebuild_cols, algorithm
        self.shared_patches = shared_patches
        self.weight, self.bias = initial_parameters(
            (out_channels, in_channels, kernel_size, kernel_size), out_channels,
            weight_std, bias, rng, device, dtype)
        self.dweight = self.dbias = None
        self.x = self.cols = None

    def algorithm_for(self, x):
        """The algorithm this layer runs on ``x``: its ``algorithm``, or the default's choice."""
        if self.algorithm is not None:
            return self.algorithm
        fits = winograd_fits(self.kernel_size, self.stride)
        on_cpu_compiled = not is_gpu_array(x) and compiled_kernels(self.winograd_file, x) is not None
        return "winograd" if fits and on_cpu_compiled else "im2col"

    def im2col(self, x):
        if self.shared_patches is not None:
            return self.shared_patches.get(x, (self.kernel_size, self.stride, self.pad), self.build_im2col)
        return self.build_im2col(x)

    def build_im2col(self, x):
        kernels = self.kernels_for(x, "forward")   # the same choice for forward, evaluation and backward
        if kernels is None:
            return im2col(x, self.kernel_size, self.stride, self.pad)
        return im2col_kernel(x, self.kernel_size, self.stride, self.pad, kernels)

    def col2im(self, dcols, x_shape):
        kernels = self.kernels_for(dcols, "backward")
        if kernels is None:
            return col2im(dcols, x_shape, self.kernel_size, self.stride, self.pad)
        return col2im_kernel(dcols, x_shape, self.kernel_size, self.stride, self.pad, kernels)

    def transform_input(self, x):
        """Winograd's V = BT d B (the role im2col has in the other algorithm)."""
        kernels = compiled_kernels(self.winograd_file, x)
        if kernels is None:
            return winograd.transform_input(x, self.pad)
        return winograd.transform_input_kernel(x, self.pad, kernels)

    def forward(self, x, train=True):
        check_dtype(x, self.weight, self)
        N, C, H, W = x.shape
        if C != self.in_channels:
            raise ValueError(f"{self!r} expects {self.in_channels} input channels, got input of shape {x.shape}")
        OH = output_size(H, self.kernel_size, self.stride, self.pad)
        OW = output_size(W, self.kernel_size, self.stride, self.pad)
        if self.algorithm_for(x) == "winograd":
            cols = self.transform_input(x)     # Winograd's transformed input, kept as cols is
            out = self.winograd_output(cols, (N, self.out_channels, OH, OW))
        else:
            cols = self.im2col(x)
            out = self.im2col_output(cols, (N, self.out_channels, OH, OW))
        # what backward needs: the input, and the im2col matrix unless backward rebuilds it
        self.x = x if train else None
        self.cols = cols if train and not self.rebuilds_cols(x) else None
        return out

    def rebuilds_cols(self, x):
        """Whether backward rebuilds the matrix from the input ``x`` instead of keeping it."""
        if self.rebuild_cols is not None:
            return self.rebuild_cols
        return is_gpu_array(x) or not self.input_grad   # the default: on a GPU, and conv1's everywhere

    def im2col_output(self, cols, out_shape):
        """The convolution from the im2col matrix: W @ cols + b, (O, N*OH*OW), as NCHW."""
        N, O, OH, OW = out_shape
        out = self.weight.reshape(O, -1) @ cols
        out += self.bias[:, None]
        return get_array_module(cols).ascontiguousarray(out.reshape(O, N, OH, OW).transpose(1, 0, 2, 3))

    def winograd_output(self, V, out_shape):
        """The convolution from the transformed input: M = U @ V, one product per point of
        the 4 x 4 tile, then y = AT M A + bias."""
        xp = get_array_module(V)
        M = winograd.planes(xp, self.out_channels, V.shape[2], V.dtype)
        xp.matmul(winograd.transform_weight(self.weight), V, out=M)
        kernels = compiled_kernels(self.winograd_file, V)
        if kernels is None:
            return winograd.transform_output(M, self.bias, out_shape)
        return winograd.transform_output_kernel(M, self.bias, out_shape, kernels)

    def backward(self, dout):
        self.check_saved(self.x)
        if self.algorithm_for(self.x) == "winograd":   # the choice forward made on the same input
            return self.backward_winograd(dout)
        O = self.out_channels
        cols = self.im2col(self.x) if self.cols is None else self.cols
        self.cols = None  # free the largest buffer as soon as possible
        # forward: out = W @ cols + b, with out seen as (O, N*OH*OW)
        dout = dout.transpose(1, 0, 2, 3).reshape(O, -1)
        self.dweight = (dout @ cols.T).reshape(self.weight.shape)
        self.dbias = dout.sum(axis=1)
        x_shape, self.x = self.x.shape, None
        if not self.input_grad:
            return None
        dcols = self.weight.reshape(O, -1).T @ dout
        del cols
        return self.col2im(dcols, x_shape)

    def backward_winograd(self, dout):
        """Forward read backwards (winograd.py): dM = A dY AT, dU = dM @ V^T, dg = GT dU G,
        and for the input dV = U^T @ dM, dx = B dV BT over the overlapping patches."""
        xp = get_array_module(dout)
        V = self.transform_input(self.x) if self.cols is None else self.cols
        self.cols = None
        kernels = compiled_kernels(self.winograd_file, dout)
        if kernels is None:
            dM = winograd.transform_output_adjoint(dout)
        else:
            dM = winograd.transform_output_adjoint_kernel(dout, kernels)
        self.dweight = winograd.transform_weight_adjoint(xp.matmul(dM, V.transpose(0, 2, 1)))
        self.dbias = dout.sum(axis=(0, 2, 3))
        x_shape, self.x = self.x.shape, None
        if not self.input_grad:
            return None
        del V
        dV = winograd.planes(xp, self.in_channels, dM.shape[2], dM.dtype)
        xp.matmul(winograd.transform_weight(self.weight).transpose(0, 2, 1), dM, out=dV)
        del dM
        if kernels is None:
            return winograd.transform_input_adjoint(dV, x_shape, self.pad)
        return winograd.transform_input_adjoint_kernel(dV, x_shape, self.pad, kernels)

    def __repr__(self):
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, pad={self.pad})")
