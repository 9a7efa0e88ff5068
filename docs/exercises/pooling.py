"""Solutions to the exercises of docs/pooling.md. Run: python docs/exercises/pooling.py"""

import sys

import numpy as np

from gradient_check import layer_input_error, numerical_gradient
from tinyalex import MaxPool2D
from tinyalex.testing import rel_error, tie_free


def exercise_1():
    """Predict the output sizes of pool1, pool2 and pool5, overlapping (3, 2) and not (2, 2)."""
    for size, out in ((55, 27), (27, 13), (13, 6)):
        assert MaxPool2D(3, 2).output_shape((1, 96, size, size)) == (1, 96, out, out)
        assert MaxPool2D(2, 2).output_shape((1, 96, size, size)) == (1, 96, out, out)   # the same sizes


def exercise_2():
    """A 5 x 5 input whose maximum sits at the centre: how many 3 x 3 windows at stride 2 does it win,
    and what gradient does it receive from a gradient of ones?"""
    x = tie_free((1, 1, 5, 5), np.random.default_rng(0))
    x[0, 0, 2, 2] = 10.0
    pool = MaxPool2D(3, 2)
    out = pool.forward(x)
    assert out.shape == (1, 1, 2, 2) and np.all(out == 10.0)         # it wins all four windows
    dx = pool.backward(np.ones_like(out))
    assert dx[0, 0, 2, 2] == 4.0 and dx.sum() == 4.0
    # without overlap, (2, 2) windows, the centre pixel lies in one window only
    pool = MaxPool2D(2, 2)
    dx = pool.backward(np.ones_like(pool.forward(x)))
    assert dx[0, 0, 2, 2] == 1.0 and dx.sum() == 4.0    # four windows, four winners, one gradient each


def exercise_3():
    """Gradient-check max-pooling on a tie-free input; then on an input where every value is equal,
    and watch central differences disagree with backward."""
    rng = np.random.default_rng(1)
    x = tie_free((2, 2, 7, 7), rng)
    g = rng.standard_normal((2, 2, 3, 3))
    assert layer_input_error(MaxPool2D(3, 2), x, g) < 1e-8
    ties = np.ones((1, 1, 3, 3))
    pool = MaxPool2D(3, 2)
    pool.forward(ties)
    analytic = pool.backward(np.ones((1, 1, 1, 1)))            # all of it to the first maximum
    numeric = numerical_gradient(lambda: float(pool.forward(ties).sum()), ties)
    assert analytic[0, 0, 0, 0] == 1.0
    assert rel_error(analytic, numeric) > 0.1     # +eps makes a pixel win, -eps makes it lose: no derivative


if __name__ == "__main__":
    from gradient_check import run
    run(sys.modules[__name__])
