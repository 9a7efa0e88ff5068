"""The paper's update rule and the plateau schedule."""

import numpy as np
import pytest

from tinyalex import PAPER, SGD, PlateauSchedule


def test_update_is_the_papers_rule():
    rng = np.random.default_rng(0)
    w = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(3)]
    sgd = SGD(lr=0.1, momentum=0.9, weight_decay=0.0005)
    expected_w, v = w.copy(), np.zeros(5)
    for g in grads:
        sgd.step([("w", w, g)])
        v = 0.9 * v - 0.0005 * 0.1 * expected_w - 0.1 * g
        expected_w = expected_w + v
        np.testing.assert_allclose(w, expected_w, rtol=1e-14)
        np.testing.assert_allclose(sgd.velocity["w"], v, rtol=1e-14)


def test_defaults_are_the_papers():
    sgd = SGD()
    assert (sgd.lr, sgd.momentum, sgd.weight_decay) == (0.01, 0.9, 0.0005)
    assert (PAPER.batch_size, PAPER.max_lr_drops, PAPER.max_epochs) == (128, 3, 90)


def test_update_keeps_float32():
    w = np.ones(3, dtype=np.float32)
    SGD().step([("w", w, np.ones(3, dtype=np.float32))])
    assert w.dtype == np.float32 and SGD().lr == 0.01


def test_missing_gradient_is_explained():
    with pytest.raises(ValueError, match="run backward"):
        SGD().step([("conv1.weight", np.ones(3), None)])


def test_state_dict_round_trip():
    w, g = np.ones(4), np.full(4, 0.5)
    sgd = SGD(lr=0.05)
    sgd.step([("w", w, g)])
    resumed = SGD()
    resumed.load_state_dict(sgd.state_dict(), [("w", w, g)])
    w2 = w.copy()
    sgd.step([("w", w, g)])
    resumed.step([("w", w2, g)])
    np.testing.assert_array_equal(w, w2)


def test_plateau_schedule_divides_by_ten_three_times_then_stops():
    schedule = PlateauSchedule(lr=0.01, patience=2, max_drops=3)
    errors = [0.9, 0.8, 0.7, 0.7, 0.71,    # two epochs without a new best: drop after epoch 5
              0.6, 0.6, 0.6,               # drop after epoch 8
              0.5, 0.55, 0.5,              # drop after epoch 11
              0.4, 0.45, 0.41]             # fourth plateau: finished after epoch 14
    rates = []
    for error in errors:
        rates.append(schedule.step(error))
        if schedule.finished:
            break
    assert schedule.drops == [5, 8, 11]
    assert schedule.finished and schedule.epoch == 14
    np.testing.assert_allclose(rates[4:6], [0.001, 0.001])
    np.testing.assert_allclose(rates[-1], 1e-5)


def test_plateau_schedule_state_round_trip():
    schedule = PlateauSchedule()
    for error in (0.5, 0.5, 0.5):
        schedule.step(error)
    restored = PlateauSchedule()
    restored.load_state_dict(schedule.state_dict())
    assert restored.state_dict() == schedule.state_dict()
    assert restored.step(0.5) == schedule.step(0.5)


def test_plateau_schedule_counts_afresh_after_each_drop():
    """The counter of epochs without a new best starts again at a drop: a plateau that goes
    on drops the rate every `patience` epochs, not after every epoch once the first drop came."""
    schedule = PlateauSchedule(lr=0.01, patience=2, max_drops=3)
    rates = [schedule.step(error) for error in (0.5, 0.6, 0.6, 0.6, 0.6, 0.6)]
    assert schedule.drops == [3, 5]              # after epoch 3 (two without a best), then 5
    assert not schedule.finished                 # one drop is left: training goes on
    np.testing.assert_allclose(rates, [0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001])
