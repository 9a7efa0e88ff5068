"""Central differences for the exercises: the derivative of a scalar function of an array,
one entry at a time, compared with backward by tinyalex.testing.rel_error."""

from pathlib import Path

import numpy as np

from tinyalex.testing import rel_error


def numerical_gradient(loss, array, eps=1e-6):
    """d loss() / d array by central differences; ``array`` is perturbed in place and restored."""
    flat = array.reshape(-1)
    grad = np.zeros(flat.size)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        plus = loss()
        flat[i] = original - eps
        minus = loss()
        flat[i] = original
        grad[i] = (plus - minus) / (2 * eps)
    return grad.reshape(array.shape)


def layer_input_error(layer, x, g, before_forward=lambda: None):
    """rel_error between backward(g) and central differences of sum(forward(x) * g) in x."""
    def loss():
        before_forward()
        return float(np.sum(layer.forward(x) * g))

    before_forward()
    layer.forward(x)
    analytic = layer.backward(g)
    return rel_error(analytic, numerical_gradient(loss, x))


def run(module):
    """Run every exercise_* function of ``module`` in order; each asserts its answer."""
    exercises = sorted(name for name in vars(module) if name.startswith("exercise_"))
    for name in exercises:
        getattr(module, name)()
    print(f"{Path(module.__file__).name}: all {len(exercises)} exercises hold")
