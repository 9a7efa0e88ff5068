"""Central differences for the exercises: the derivative of a scalar function of an array,
one entry at a time, compared with backward by tinyalex.testing.rel_error."""

from pathlib import Path

import numpy as np

from tinyalex.testing import numerical_gradient as central_differences, rel_error


def numerical_gradient(loss, array, eps=1e-6):
    """d loss() / d array by central differences, shaped like ``array`` (perturbed in place
    and restored): tinyalex.testing's, which the tests use too."""
    return central_differences(loss, array, eps).reshape(array.shape)


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
