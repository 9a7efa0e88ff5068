"""Solutions to the exercises of docs/convolution.md. Run: python docs/exercises/convolution.py"""

import sys

import numpy as np

from gradient_check import layer_input_error, numerical_gradient
from tinyalex import Conv2D
from tinyalex.layers.conv import col2im, im2col, output_size
from tinyalex.testing import rel_error


def exercise_1():
    """Predict conv1's output shape and the shape of its im2col matrix for two 227 x 227 images."""
    assert output_size(227, 11, 4) == 55                    # (227 - 11) / 4 + 1
    x = np.zeros((2, 3, 227, 227), dtype=np.float32)
    cols = im2col(x, 11, 4, 0)
    assert cols.shape == (3 * 11 * 11, 2 * 55 * 55)          # (C*k*k, N*OH*OW) = (363, 6050)
    conv1 = Conv2D(3, 48, 11, stride=4)                      # one column's half of conv1
    assert conv1.forward(x, train=False).shape == (2, 48, 55, 55)
    # conv2 (5 x 5, pad 2) keeps 27 x 27; conv3 (3 x 3, pad 1) keeps 13 x 13
    assert output_size(27, 5, 1, 2) == 27 and output_size(13, 3, 1, 1) == 13


def exercise_2():
    """Show that column n*OH*OW + oy*OW + ox of im2col is the patch under output pixel (oy, ox) of image n,
    and that W @ cols is the convolution computed by a plain loop."""
    rng = np.random.default_rng(1)
    N, C, H, k, s, p = 2, 3, 7, 3, 2, 1
    x = rng.standard_normal((N, C, H, H))
    cols = im2col(x, k, s, p)
    OH = output_size(H, k, s, p)
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    for n in range(N):
        for oy in range(OH):
            for ox in range(OH):
                patch = padded[n, :, oy * s:oy * s + k, ox * s:ox * s + k]
                assert np.array_equal(cols[:, n * OH * OH + oy * OH + ox], patch.ravel())
    conv = Conv2D(C, 4, k, stride=s, pad=p, rng=rng, dtype="float64", weight_std=1.0)
    loops = np.zeros((N, 4, OH, OH))
    for n in range(N):
        for o in range(4):
            for oy in range(OH):
                for ox in range(OH):
                    patch = padded[n, :, oy * s:oy * s + k, ox * s:ox * s + k]
                    loops[n, o, oy, ox] = np.sum(conv.weight[o] * patch) + conv.bias[o]
    assert rel_error(conv.forward(x, train=False), loops) < 1e-12


def col2im_overwriting(cols, x_shape, kernel_size, stride, pad):
    """tinyalex's col2im with one change: ``=`` where it has ``+=``."""
    N, C, H, W = x_shape
    k = kernel_size
    OH, OW = output_size(H, k, stride, pad), output_size(W, k, stride, pad)
    cols = cols.reshape(C, k, k, N, OH, OW)
    dx = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride] = cols[:, i, j].transpose(1, 0, 2, 3)
    return dx[:, :, pad:pad + H, pad:pad + W] if pad else dx


class OverwritingConv2D(Conv2D):
    def backward_numpy(self, dout):
        x_shape = self.x_shape
        return col2im_overwriting(self.multiply_backward(dout), x_shape, self.kernel_size, self.stride, self.pad)


def exercise_3():
    """col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>, which is why Conv2D's
    gradient check passes. Change col2im's += into = and watch the check fail where patches
    overlap (stride 2 < kernel 3) and still pass where they do not (stride 3)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 6, 6))
    cols = im2col(x, 3, 2, 1)
    c = rng.standard_normal(cols.shape)
    assert abs(np.sum(cols * c) - np.sum(x * col2im(c, x.shape, 3, 2, 1))) < 1e-10
    g = rng.standard_normal((2, 3, 3, 3))
    conv = Conv2D(2, 3, 3, stride=2, pad=1, rng=rng, dtype="float64", weight_std=0.5)
    assert layer_input_error(conv, x, g) < 1e-7
    # the weight gradient too, by the same central differences
    conv.forward(x)
    conv.backward(g)
    numeric = numerical_gradient(lambda: float(np.sum(conv.forward(x) * g)), conv.weight)
    assert rel_error(conv.dweight, numeric) < 1e-7
    overwriting = OverwritingConv2D(2, 3, 3, stride=2, pad=1, rng=rng, dtype="float64", weight_std=0.5)
    assert layer_input_error(overwriting, x, g) > 0.1
    apart = OverwritingConv2D(2, 3, 3, stride=3, rng=rng, dtype="float64", weight_std=0.5)
    assert layer_input_error(apart, x, rng.standard_normal((2, 3, 2, 2))) < 1e-7


if __name__ == "__main__":
    from gradient_check import run
    run(sys.modules[__name__])
