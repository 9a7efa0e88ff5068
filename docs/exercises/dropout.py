"""Solutions to the exercises of docs/dropout.md. Run: python docs/exercises/dropout.py"""

import sys

import numpy as np

from gradient_check import layer_input_error
from tinyalex import Dropout


def exercise_1():
    """Predict a training pass and an evaluation pass of Dropout(p=0.5) on a vector of 3s."""
    x = np.full((4, 2048), 3.0)
    layer = Dropout(p=0.5, seed=0)
    out = layer.forward(x)
    assert set(np.unique(out)) == {0.0, 6.0}             # dropped, or kept and doubled
    assert 0.45 < np.mean(out == 0) < 0.55
    assert layer.forward(x, train=False) is x            # evaluation: the input itself, unscaled


def exercise_2():
    """Show that the paper's rule (keep every neuron, multiply by 0.5 at test time) and tinyalex's
    inverted dropout give the same ratio of test output to mean training output."""
    x = np.random.default_rng(0).uniform(0, 1, size=(1, 1000))
    layer = Dropout(p=0.5, seed=1)
    mean_training = np.mean([layer.forward(x) for _ in range(400)], axis=0)
    # inverted: E[x * mask] = x, and evaluation returns x
    assert abs(mean_training.sum() / layer.forward(x, train=False).sum() - 1) < 0.01
    # the paper's: training output x * keep (mean 0.5 x), test output 0.5 x; the same ratio
    keep = mean_training / 2
    assert abs(keep.sum() / (0.5 * x).sum() - 1) < 0.01


def exercise_3():
    """Gradient-check a dropout layer with its mask replayed (reset ``calls`` before each forward);
    then forget to reset it and watch the check fail."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 10))
    g = rng.standard_normal(x.shape)
    layer = Dropout(p=0.5, seed=3)

    def replay():
        layer.calls = 0

    assert layer_input_error(layer, x, g, before_forward=replay) < 1e-8
    assert layer_input_error(Dropout(p=0.5, seed=3), x, g) > 0.1   # a new mask for every forward


if __name__ == "__main__":
    from gradient_check import run
    run(sys.modules[__name__])
