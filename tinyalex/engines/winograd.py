"""3 x 3 convolutions with fewer multiplications: Winograd's F(2x2, 3x3).

Not in the AlexNet paper: it is how convolution libraries (cuDNN, oneDNN) run small
kernels today, after Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks"
(2015). conv3, conv4 and conv5 are 3 x 3 convolutions with stride 1, and nearly half of
AlexNet's multiplications.

The idea, for one output channel and one input channel: four neighbouring outputs (a 2 x 2
tile) depend on a 4 x 4 patch ``d`` of the input. Computed directly they cost 4 x 9 = 36
multiplications. Winograd's minimal filtering computes them as

    Y = AT [ (G g GT) * (BT d B) ] A          (* elementwise, over the 4 x 4 points)

with 16: the kernel ``g`` and the patch are each carried into a 4 x 4 "transformed" space
(U = G g GT, V = BT d B) where the convolution is a pointwise product, and AT ... A
carries the result back. Summed over input channels, the pointwise products become one
matrix product per point xi of the 4 x 4 space:

    M[xi] = U[xi] @ V[xi]          U[xi]: (O, C)    V[xi]: (C, tiles of the batch)

16 products of (O x C) by (C x T), against im2col's one product of (O x 9C) by (9C x 4T)
for the same outputs: 16/36 of the multiplications, and a transformed input V about half
the size of the im2col matrix, so backward has half as much to keep. The matrices hold
only 0, 1, -1 and 1/2, so the results differ from the direct convolution by rounding
alone (tests/test_winograd.py checks it in float64).

Backward is the same algebra read backwards, since every step is linear:

    dM[xi] = (A dY AT)[xi]     dU[xi] = dM[xi] @ V[xi]^T     dV[xi] = U[xi]^T @ dM[xi]
    dg = GT dU G                dd = B dV BT, added back onto the overlapping patches

The NumPy functions below are the reference, written as the formulas; the kernels of
``winograd.cu`` do the four transforms in one pass each; :class:`WinogradConv2D`, at the
end, is a :class:`~tinyalex.layers.Conv2D` that computes its sums this way. The engine
table (:mod:`tinyalex.engines`) puts it in place of conv3-conv5 where it measured faster.
"""

import numpy as np

from ..backend import get_array_module
from ..kernels import cuda
from ..layers.conv import Conv2D

BT = np.array([[1, 0, -1, 0],
               [0, 1, 1, 0],
               [0, -1, 1, 0],
               [0, 1, 0, -1]])
G = np.array([[1, 0, 0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0, 0, 1]])
AT = np.array([[1, 1, 1, 0],
               [0, 1, -1, -1]])


def tile_counts(height, width, pad):
    """(tiles_h, tiles_w): 2 x 2 output tiles that cover a 3 x 3, stride-1 convolution's
    output; the last row (column) of tiles runs past an odd output's edge."""
    out_h, out_w = height + 2 * pad - 2, width + 2 * pad - 2
    return -(-out_h // 2), -(-out_w // 2)


def matrix(constant, like):
    """One of BT, G, AT as an array of ``like``'s module and dtype."""
    return get_array_module(like).asarray(constant, dtype=like.dtype)


# ---- the reference: every transform written as the formula, on NumPy or CuPy arrays ----

def transform_weight(weight):
    """U = G g GT for every (out, in) kernel: (O, C, 3, 3) -> (16, O, C).

    Entry (a, b) of G g GT is sum over i, j of G[a, i] G[b, j] g[i, j]: one matrix
    product of the 16 x 9 matrix kron(G, G) with every kernel flattened to 9 numbers."""
    O, C = weight.shape[:2]
    GG = get_array_module(weight).kron(matrix(G, weight), matrix(G, weight))     # (16, 9)
    return (GG @ weight.reshape(O * C, 9).T).reshape(16, O, C)


def transform_weight_adjoint(dU):
    """dg = GT dU G: (16, O, C) -> (O, C, 3, 3), the gradient of the weights (the
    transpose of :func:`transform_weight`'s product)."""
    O, C = dU.shape[1:]
    GG = get_array_module(dU).kron(matrix(G, dU), matrix(G, dU))
    return (dU.reshape(16, O * C).T @ GG).reshape(O, C, 3, 3)


def input_patches(x, pad):
    """The 4 x 4 input patch of every tile, (N, C, tiles_h, tiles_w, 4, 4), a strided view
    of the input padded with zeros (``pad`` on the top and left, enough on the bottom and
    right for the last tiles)."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    tiles_h, tiles_w = tile_counts(H, W, pad)
    bottom, right = 2 * tiles_h + 2 - H - pad, 2 * tiles_w + 2 - W - pad
    x = xp.pad(x, ((0, 0), (0, 0), (pad, bottom), (pad, right)))
    sN, sC, sH, sW = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, shape=(N, C, tiles_h, tiles_w, 4, 4), strides=(sN, sC, 2 * sH, 2 * sW, sH, sW))


def transform_input(x, pad):
    """V = BT d B for every patch: (N, C, H, W) -> (16, C, N * tiles)."""
    d = input_patches(x, pad)
    N, C = x.shape[:2]
    V = matrix(BT, x) @ d @ matrix(BT, x).T                     # (N, C, th, tw, 4, 4)
    return V.transpose(4, 5, 1, 0, 2, 3).reshape(16, C, -1)


def transform_input_adjoint(dV, x_shape, pad):
    """dd = B dV BT for every patch, added back where the patches overlap:
    (16, C, N * tiles) -> dx (N, C, H, W)."""
    xp = get_array_module(dV)
    N, C, H, W = x_shape
    tiles_h, tiles_w = tile_counts(H, W, pad)
    dV = dV.reshape(4, 4, C, N, tiles_h, tiles_w).transpose(3, 2, 4, 5, 0, 1)
    dd = matrix(BT, dV).T @ dV @ matrix(BT, dV)                 # (N, C, th, tw, 4, 4)
    dx = xp.zeros((N, C, 2 * tiles_h + 2, 2 * tiles_w + 2), dtype=dV.dtype)
    for i in range(4):
        for j in range(4):
            dx[:, :, i:i + 2 * tiles_h:2, j:j + 2 * tiles_w:2] += dd[..., i, j]
    return dx[:, :, pad:pad + H, pad:pad + W]


def transform_output(M, bias, out_shape):
    """y = AT M A + bias for every tile: (16, O, N * tiles) -> (N, O, OH, OW)."""
    N, O, OH, OW = out_shape
    tiles_h, tiles_w = -(-OH // 2), -(-OW // 2)
    m = M.reshape(4, 4, O, N, tiles_h, tiles_w).transpose(3, 2, 4, 5, 0, 1)
    y = matrix(AT, M) @ m @ matrix(AT, M).T                     # (N, O, th, tw, 2, 2)
    y = y.transpose(0, 1, 2, 4, 3, 5).reshape(N, O, 2 * tiles_h, 2 * tiles_w)[:, :, :OH, :OW]
    return get_array_module(M).ascontiguousarray(y + bias[:, None, None])


def transform_output_adjoint(dy):
    """dM = A dy AT for every tile, dy zero past the edges: (N, O, OH, OW) -> (16, O, N * tiles)."""
    xp = get_array_module(dy)
    N, O, OH, OW = dy.shape
    tiles_h, tiles_w = -(-OH // 2), -(-OW // 2)
    g = xp.zeros((N, O, 2 * tiles_h, 2 * tiles_w), dtype=dy.dtype)
    g[:, :, :OH, :OW] = dy
    g = g.reshape(N, O, tiles_h, 2, tiles_w, 2).transpose(0, 1, 2, 4, 3, 5)
    dM = matrix(AT, g).T @ g @ matrix(AT, g)                    # (N, O, th, tw, 4, 4)
    return dM.transpose(4, 5, 1, 0, 2, 3).reshape(16, O, -1)


# ---- the same transforms by the kernels of winograd.cu, one pass each ----

def planes(xp, rows, columns, dtype):
    """An uninitialised (16, rows, columns) array for the kernels: 16 matrices, each
    contiguous, that do not start a multiple of 4096 bytes apart.

    A tile's 16 values go to (or come from) the same column of the 16 matrices. Were the
    matrices a multiple of 4096 bytes apart (conv3's V at batch 32 is 401,408 floats, 392
    times 4096 bytes), the 16 addresses would all fall in the same set of the CPU's
    first-level cache, which holds 8 lines per set: the transforms that write or read 16
    such streams took about three times as long (``python bench/cpu_paths.py`` times one
    both ways). Leaving an odd number of 64-byte lines between the starts spreads them
    over 16 sets. NumPy's matmul takes the matrices as they are, each contiguous; on a GPU
    there is no such cache, and no gap.
    """
    size = rows * columns
    if xp is not np:
        return xp.empty((16, rows, columns), dtype=dtype)
    line = 64 // np.dtype(dtype).itemsize                   # elements per 64-byte cache line
    stride = -(-size // line) * line
    if (stride // line) % 2 == 0:
        stride += line
    return np.empty((16, stride), dtype=dtype)[:, :size].reshape(16, rows, columns)


def as_planes(a):
    """(buffer, plane stride) for handing ``a``, 16 matrices, to a kernel: the contiguous
    buffer :func:`planes` made ``a`` in, or ``a`` itself, made contiguous."""
    base = a.base
    if (isinstance(a, np.ndarray) and isinstance(base, np.ndarray) and base.ndim == 2 and base.shape[0] == 16
            and base.flags.c_contiguous and base.strides[0] == a.strides[0]
            and base.__array_interface__["data"][0] == a.__array_interface__["data"][0]):
        return base, np.int32(base.shape[1])
    a = get_array_module(a).ascontiguousarray(a)
    return a, np.int32(a[0].size)


def transform_input_kernel(x, pad, kernels):
    """:func:`transform_input` by the kernel ``winograd_input``."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    N, C, H, W = x.shape
    tiles_h, tiles_w = tile_counts(H, W, pad)
    count = C * N * tiles_h * tiles_w
    V = planes(xp, C, N * tiles_h * tiles_w, x.dtype)
    buffer, stride = as_planes(V)
    cuda.launch(kernels.winograd_input, count, x, buffer, np.int32(count), stride, np.int32(N), np.int32(C),
                np.int32(H), np.int32(W), np.int32(tiles_h), np.int32(tiles_w), np.int32(pad))
    return V


def transform_input_adjoint_kernel(dV, x_shape, pad, kernels):
    """:func:`transform_input_adjoint` by the kernel ``winograd_input_adjoint``, launched
    once for each parity of the tiles' coordinates (patches of tiles two apart do not
    overlap)."""
    xp = get_array_module(dV)
    N, C, H, W = x_shape
    tiles_h, tiles_w = tile_counts(H, W, pad)
    dx = xp.zeros(x_shape, dtype=dV.dtype)
    dV, stride = as_planes(dV)
    for parity_y in (0, 1):
        for parity_x in (0, 1):
            count = C * N * ((tiles_h - parity_y + 1) // 2) * ((tiles_w - parity_x + 1) // 2)
            if count:
                cuda.launch(kernels.winograd_input_adjoint, count, dV, dx, np.int32(count), stride,
                            np.int32(N), np.int32(C), np.int32(H), np.int32(W), np.int32(tiles_h),
                            np.int32(tiles_w), np.int32(pad), np.int32(parity_y), np.int32(parity_x))
    return dx


def transform_output_kernel(M, bias, out_shape, kernels):
    """:func:`transform_output` by the kernel ``winograd_output``."""
    xp = get_array_module(M)
    N, O, OH, OW = out_shape
    tiles_h, tiles_w = -(-OH // 2), -(-OW // 2)
    count = O * N * tiles_h * tiles_w
    y = xp.empty(out_shape, dtype=M.dtype)
    M, stride = as_planes(M)
    cuda.launch(kernels.winograd_output, count, M, xp.ascontiguousarray(bias), y, np.int32(count), stride,
                np.int32(N), np.int32(O), np.int32(OH), np.int32(OW), np.int32(tiles_h),
                np.int32(tiles_w))
    return y


def transform_output_adjoint_kernel(dy, kernels):
    """:func:`transform_output_adjoint` by the kernel ``winograd_output_adjoint``."""
    xp = get_array_module(dy)
    dy = xp.ascontiguousarray(dy)
    N, O, OH, OW = dy.shape
    tiles_h, tiles_w = -(-OH // 2), -(-OW // 2)
    count = O * N * tiles_h * tiles_w
    dM = planes(xp, O, N * tiles_h * tiles_w, dy.dtype)
    buffer, stride = as_planes(dM)
    cuda.launch(kernels.winograd_output_adjoint, count, dy, buffer, np.int32(count), stride, np.int32(N),
                np.int32(O), np.int32(OH), np.int32(OW), np.int32(tiles_h), np.int32(tiles_w))
    return dM


def fits(layer):
    """Whether F(2x2, 3x3) computes ``layer``'s convolution: 3 x 3 kernels, stride 1."""
    return (layer.kernel_size, layer.stride) == (3, 1)


class WinogradConv2D(Conv2D):
    """:class:`~tinyalex.layers.Conv2D` with 3 x 3 kernels and stride 1, computed by
    Winograd's F(2x2, 3x3): the same weights, the same outputs up to rounding.

    Its twin paths are the NumPy formulas above (``*_numpy``) and the kernels of
    ``winograd.cu`` (``*_kernels``); forward keeps the transformed input V, as Conv2D keeps
    its im2col matrix, in ``cols``.
    """

    kernel_file = "engines/winograd.cu"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not fits(self):
            raise ValueError(f"Winograd's F(2x2, 3x3) needs 3 x 3 kernels with stride 1, not "
                             f"{self.kernel_size} x {self.kernel_size} with stride {self.stride}")

    def forward_numpy(self, x, train=True):
        return self.multiply_tiles(transform_input(x, self.pad), x.shape, train, None)

    def forward_kernels(self, x, train, kernels):
        return self.multiply_tiles(transform_input_kernel(x, self.pad, kernels), x.shape, train, kernels)

    def multiply_tiles(self, V, x_shape, train, kernels):
        """M = U @ V, one product per point of the 4 x 4 tile, then y = AT M A + bias."""
        xp = get_array_module(V)
        N, _, H, W = x_shape
        out_shape = (N, self.out_channels, H + 2 * self.pad - 2, W + 2 * self.pad - 2)
        M = planes(xp, self.out_channels, V.shape[2], V.dtype)
        xp.matmul(transform_weight(self.weight), V, out=M)
        self.cols, self.x_shape = (V, x_shape) if train else (None, None)
        if kernels is None:
            return transform_output(M, self.bias, out_shape)
        return transform_output_kernel(M, self.bias, out_shape, kernels)

    def backward_numpy(self, dout):
        x_shape = self.x_shape
        dV = self.multiply_tiles_backward(transform_output_adjoint(dout), dout)
        return None if dV is None else transform_input_adjoint(dV, x_shape, self.pad)

    def backward_kernels(self, dout, kernels):
        x_shape = self.x_shape
        dV = self.multiply_tiles_backward(transform_output_adjoint_kernel(dout, kernels), dout)
        return None if dV is None else transform_input_adjoint_kernel(dV, x_shape, self.pad, kernels)

    def multiply_tiles_backward(self, dM, dout):
        """Forward read backwards: dU = dM @ V^T, dg = GT dU G; returns dV = U^T @ dM, or
        None without input_grad."""
        self.check_saved(self.cols)
        V, self.cols = self.cols, None
        xp = get_array_module(dM)
        self.dweight = transform_weight_adjoint(xp.matmul(dM, V.transpose(0, 2, 1)))
        self.dbias = dout.sum(axis=(0, 2, 3))
        del V
        if not self.input_grad:
            return None
        dV = planes(xp, self.in_channels, dM.shape[2], dM.dtype)
        xp.matmul(transform_weight(self.weight).transpose(0, 2, 1), dM, out=dV)
        return dV

    def __repr__(self):
        return "Winograd" + super().__repr__()
