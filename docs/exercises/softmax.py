"""Solutions to the exercises of docs/softmax.md. Run: python docs/exercises/softmax.py"""

import sys

import numpy as np

from gradient_check import numerical_gradient
from tinyalex import SoftmaxCrossEntropy
from tinyalex.layers.loss import softmax
from tinyalex.testing import rel_error


def exercise_1():
    """Predict the loss of an untrained AlexNet whose 1000 logits are all equal."""
    loss = SoftmaxCrossEntropy().forward(np.zeros((8, 1000)), np.arange(8))
    assert abs(loss - np.log(1000)) < 1e-12          # about 6.9: a curve that starts far above it has a bug


def exercise_2():
    """Shift every logit of a row by the same amount, or make them huge: softmax does not change,
    and nothing overflows."""
    z = np.array([[1.0, 2.0, 3.0]])
    assert rel_error(softmax(z), softmax(z + 1000.0)) < 1e-15
    p = softmax(np.array([[1000.0, 0.0, -1000.0]]))
    assert np.all(np.isfinite(p)) and p[0, 0] == 1.0
    assert np.isfinite(SoftmaxCrossEntropy().forward(np.array([[1e4, -1e4]]), np.array([1])))


def exercise_3():
    """Show that the gradient is (softmax - onehot) / N, that each row sums to 0, and that it passes
    the gradient check; then forget the 1/N and watch the check fail."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 6))
    labels = np.array([0, 5, 2, 2])
    layer = SoftmaxCrossEntropy()
    layer.forward(z, labels)
    grad = layer.backward()
    assert rel_error(grad, (softmax(z) - np.eye(6)[labels]) / 4) < 1e-15
    assert np.allclose(grad.sum(axis=1), 0)
    numeric = numerical_gradient(lambda: layer.forward(z, labels), z)
    assert rel_error(grad, numeric) < 1e-8
    assert rel_error(grad * 4, numeric) > 0.5         # the sum's gradient is not the mean's


if __name__ == "__main__":
    from gradient_check import run
    run(sys.modules[__name__])
