"""Solutions to the exercises of docs/relu.md. Run: python docs/exercises/relu.py"""

import sys

import numpy as np

from gradient_check import layer_input_error, numerical_gradient
from tinyalex import ReLU, Tanh
from tinyalex.testing import rel_error


def exercise_1():
    """Predict ReLU's output and gradient at x = [-2, -0.0, 0, 3]."""
    relu = ReLU()
    x = np.array([-2.0, -0.0, 0.0, 3.0])
    assert np.array_equal(relu.forward(x), [0, 0, 0, 3])
    # the gradient passes only where x > 0: at exactly 0 the unit counts as inactive
    assert np.array_equal(relu.backward(np.ones(4)), [0, 0, 0, 1])


def exercise_2():
    """How much gradient does a unit pass at x = 5? tanh almost none, ReLU all of it."""
    x = np.array([5.0])
    tanh, relu = Tanh(), ReLU()
    tanh.forward(x)
    relu.forward(x)
    assert tanh.backward(np.ones(1))[0] < 1e-3        # 1 - tanh(5)^2, about 1.8e-4
    assert relu.backward(np.ones(1))[0] == 1.0
    # five tanh layers in a row at that point multiply the gradient by less than 1e-15
    assert float(tanh.backward(np.ones(1))[0]) ** 5 < 1e-15


def exercise_3():
    """Gradient-check both layers, then move one input onto ReLU's kink at 0 and watch the check fail."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, size=(4, 5)) * rng.choice([-1, 1], size=(4, 5))   # away from 0
    g = rng.standard_normal(x.shape)
    assert layer_input_error(ReLU(), x, g) < 1e-8
    assert layer_input_error(Tanh(), x, g) < 1e-8
    x[0, 0] = 0.0                       # on the kink: the central difference sees half a slope
    relu = ReLU()
    relu.forward(x)
    numeric = numerical_gradient(lambda: float(np.sum(relu.forward(x) * g)), x)
    relu.forward(x)
    assert abs(numeric[0, 0] - 0.5 * g[0, 0]) < 1e-6
    assert relu.backward(g)[0, 0] == 0.0
    assert rel_error(relu.backward(g), numeric) > 1e-3


if __name__ == "__main__":
    from gradient_check import run
    run(sys.modules[__name__])
