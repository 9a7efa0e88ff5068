"""Solutions to the exercises of docs/sgd.md. Run: python docs/exercises/sgd.py"""

import math
import sys

import numpy as np

from tinyalex import SGD, PlateauSchedule
from tinyalex.sgd import update_numpy


def exercise_1():
    """Predict one step of the paper's rule from w = 1, v = 0, dL/dw = 0.5, lr = 0.01."""
    w, v = np.array([1.0]), np.array([0.0])
    update_numpy(w, v, np.array([0.5]), lr=0.01, momentum=0.9, weight_decay=0.0005)
    expected_v = 0.9 * 0 - 0.0005 * 0.01 * 1.0 - 0.01 * 0.5          # -0.005005
    assert abs(v[0] - expected_v) < 1e-15 and abs(w[0] - (1.0 + expected_v)) < 1e-15


def exercise_2():
    """With no gradient and no momentum, what does weight decay alone do in t steps?"""
    w, v = np.array([2.0]), np.array([0.0])
    for _ in range(100):
        update_numpy(w, v, np.zeros(1), lr=0.01, momentum=0.0, weight_decay=0.0005)
    assert abs(w[0] - 2.0 * (1 - 0.0005 * 0.01) ** 100) < 1e-12      # a shrink by 5e-6 a step


def exercise_3():
    """On the shallow quadratic L = 0.05 w^2 (dL/dw = 0.1 w), count the steps to reach |w| < 0.01
    from w = 1 with lr 0.1, without momentum and with the paper's 0.9."""
    def steps_to_converge(momentum):
        w = np.array([1.0])
        sgd = SGD(lr=0.1, momentum=momentum, weight_decay=0.0, engine="plain")
        for step in range(1, 2000):
            sgd.step([("w", w, 0.1 * w)])
            if abs(w[0]) < 0.01:
                return step
        return None

    plain, momentum = steps_to_converge(0.0), steps_to_converge(0.9)
    assert plain is not None and momentum is not None
    assert plain == math.ceil(math.log(0.01) / math.log(1 - 0.1 * 0.1))   # w shrinks by 1 - lr * 0.1 a step
    assert momentum * 3 < plain


def exercise_4():
    """Validation errors 50, 40, 40, 40: after which epoch does the learning rate drop (patience 2)?"""
    schedule = PlateauSchedule(lr=0.01, patience=2)
    rates = [schedule.step(error) for error in (50, 40, 40, 40)]
    assert rates[:3] == [0.01, 0.01, 0.01]
    assert abs(rates[3] - 0.001) < 1e-15 and schedule.drops == [4]


if __name__ == "__main__":
    from gradient_check import run
    run(sys.modules[__name__])
