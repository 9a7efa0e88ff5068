"""Stochastic gradient descent with momentum and weight decay, exactly as in the paper
(section 5), and its learning-rate schedule.

The update of every parameter w, with velocity v (zero at the start)::

    v <- momentum * v - weight_decay * lr * w - lr * dL/dw
    w <- w + v

with momentum 0.9 and weight decay 0.0005. The decay term applies to every parameter,
biases included, as the paper's rule is written. Updates happen in place, on the device
that holds the parameter.

:func:`update_numpy` writes the rule as four whole-array operations, a pass over memory
each (and two temporary arrays). With 61 million parameters the update is bound by memory,
so :func:`update_kernel` does the same in one pass with the kernel of ``sgd.cu``: always on a
GPU, and on a CPU where the engine says so (:mod:`tinyalex.engines`: "fast", with a C++
compiler).
"""

import numpy as np

from . import engines
from .backend import device_of, get_array_module, is_gpu_array, on_device, to_device, to_numpy
from .kernels import compiled_kernels, cuda
from .recipe import PAPER

KERNEL_FILE = "sgd.cu"


def update_numpy(w, v, grad, lr, momentum, weight_decay):
    """The paper's rule, in place, as written: v <- m v - wd lr w - lr grad; w <- w + v."""
    real = w.dtype.type
    lr = real(lr)
    v *= real(momentum)
    v -= real(weight_decay) * lr * w
    v -= lr * grad
    w += v


def update_kernel(w, v, grad, lr, momentum, weight_decay, kernels):
    """:func:`update_numpy` in one pass, by the kernel ``sgd_update`` of sgd.cu."""
    xp = get_array_module(w)
    real = w.dtype.type
    cuda.launch(kernels.sgd_update, w.size, w, v, xp.ascontiguousarray(grad), np.int32(w.size),
                real(lr), real(momentum), real(weight_decay))


class SGD:
    """The paper's update for every parameter, with its velocity; ``engine`` says whether a
    CPU runs the update as the compiled kernel (:mod:`tinyalex.engines`)."""

    def __init__(self, lr=PAPER.learning_rate, momentum=PAPER.momentum, weight_decay=PAPER.weight_decay, *,
                 engine=None):
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity = {}  # parameter name -> v, on the parameter's device
        self.cpu_kernels = engines.cpu_kernels(engines.resolve(engine), type(self))

    def step(self, parameters):
        """Update in place every ``(name, w, dL/dw)`` of ``parameters``."""
        for name, w, grad in parameters:
            if grad is None:
                raise ValueError(f"{name} has no gradient: run backward before the optimizer step")
            with on_device(device_of(w)):
                xp = get_array_module(w)
                if name not in self.velocity:
                    self.velocity[name] = xp.zeros_like(w)
                v = self.velocity[name]
                kernels = (compiled_kernels(KERNEL_FILE, w) if is_gpu_array(w) or "update" in self.cpu_kernels
                           else None)
                if kernels is None or not (w.flags.c_contiguous and v.flags.c_contiguous):
                    update_numpy(w, v, grad, self.lr, self.momentum, self.weight_decay)
                else:
                    update_kernel(w, v, grad, self.lr, self.momentum, self.weight_decay, kernels)

    def state_dict(self):
        """Everything needed to resume: settings and velocities (as NumPy copies)."""
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "velocity": {name: np.array(to_numpy(v)) for name, v in self.velocity.items()}}

    def load_state_dict(self, state, parameters):
        """Restore :meth:`state_dict`; velocities go to the devices of ``parameters``."""
        self.lr, self.momentum, self.weight_decay = state["lr"], state["momentum"], state["weight_decay"]
        devices = {name: device_of(w) for name, w, _ in parameters}
        self.velocity = {name: to_device(np.array(v), devices[name]) for name, v in state["velocity"].items()}


class PlateauSchedule:
    """Divide the learning rate by 10 when the validation error stops improving.

    "Stopped improving" is a decision the paper leaves open: here it means ``patience``
    epochs in a row without a new best validation error. After ``max_drops`` divisions
    (the paper: three), the next plateau ends training.

    Call :meth:`step` once per epoch with the validation error; it returns the learning
    rate for the next epoch and sets ``finished`` when training should stop.
    """

    def __init__(self, lr=PAPER.learning_rate, factor=PAPER.lr_drop_factor, patience=PAPER.patience,
                 max_drops=PAPER.max_lr_drops):
        self.lr, self.factor, self.patience, self.max_drops = lr, factor, patience, max_drops
        self.best = float("inf")
        self.epochs_without_improvement = 0
        self.drops = []       # epochs (1-based) after which the learning rate was divided
        self.epoch = 0
        self.finished = False

    def step(self, validation_error):
        self.epoch += 1
        if validation_error < self.best:
            self.best = validation_error
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        if self.epochs_without_improvement >= self.patience:
            if len(self.drops) == self.max_drops:
                self.finished = True
            else:
                self.lr /= self.factor
                self.drops.append(self.epoch)
                self.epochs_without_improvement = 0
        return self.lr

    def state_dict(self):
        return {**vars(self), "drops": list(self.drops)}

    def load_state_dict(self, state):
        vars(self).update(state)
