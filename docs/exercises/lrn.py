"""Solutions to the exercises of docs/lrn.md. Run: python docs/exercises/lrn.py"""

import sys

import numpy as np

from gradient_check import layer_input_error
from tinyalex import LRN
from tinyalex.layers.lrn import window_sum


def exercise_1():
    """Only channel 3 of 8 is active. Predict which channels' windows (size 5) see it."""
    x = np.zeros((1, 8, 1, 1))
    x[0, 3] = 1.0
    seen = window_sum(x * x, 5)[0, :, 0, 0]
    assert np.flatnonzero(seen).tolist() == [1, 2, 3, 4, 5]       # channels 3 - 2 .. 3 + 2
    # at the edge the window is clipped: channel 0 sums channels 0, 1 and 2 only
    ones = np.ones((1, 8, 1, 1))
    assert window_sum(ones, 5)[0, :, 0, 0].tolist() == [3, 4, 5, 5, 5, 5, 4, 3]


def exercise_2():
    """With the paper's constants and small activities, LRN is almost a constant scale,
    2^-0.75: this is why a window bug can hide behind the paper's constants."""
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 16, 3, 3))
    out = LRN().forward(x, train=False)
    assert np.allclose(out / x, 2 ** -0.75, rtol=1e-3)
    # with exaggerated constants (k = 1, alpha = 1) the neighbours matter: far from a constant scale
    out = LRN(k=1.0, alpha=1.0).forward(x, train=False)
    ratio = out / x
    assert ratio.max() - ratio.min() > 0.3


def exercise_3():
    """Gradient-check LRN with exaggerated constants, then with a wrong window (size 3 in backward,
    5 in forward) and watch the check fail."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 3, 3))
    g = rng.standard_normal(x.shape)
    lrn = LRN(size=5, k=1.0, alpha=1.0, beta=0.75)
    assert layer_input_error(lrn, x, g) < 1e-7

    class NarrowBackward(LRN):
        def backward_numpy(self, dout):
            size, self.size = self.size, 3
            try:
                return super().backward_numpy(dout)
            finally:
                self.size = size

    assert layer_input_error(NarrowBackward(size=5, k=1.0, alpha=1.0, beta=0.75), x, g) > 1e-2


if __name__ == "__main__":
    from gradient_check import run
    run(sys.modules[__name__])
