# shown in: docs/sgd.md
"""The outputs of docs/sgd.md: the paper's rule against PyTorch's after a learning-rate drop,
the plateau schedule on a made-up sequence of validation errors, and a changed Recipe."""

import dataclasses

import numpy as np

from tinyalex import PAPER, SGD, PlateauSchedule

# L(w) = 0.5 * w^2, so dL/dw = w. The paper's rule is tinyalex's SGD; PyTorch's
# (v <- m v + g + wd w, w <- w - lr v) is written out by hand.
w = np.array([1.0])
grad = np.zeros(1)
sgd = SGD(lr=0.1)
w_torch, v_torch = 1.0, 0.0
for step in range(1, 9):
    lr = 0.1 if step <= 4 else 0.01
    sgd.lr = lr
    grad[...] = w
    sgd.step([("w", w, grad)])
    v_torch = 0.9 * v_torch + w_torch + 0.0005 * w_torch
    w_torch -= lr * v_torch
    print(f"step {step}  lr {lr:<5} paper w = {w[0]:.6f}   pytorch-style w = {w_torch:.6f}   "
          f"difference {w[0] - w_torch:+.1e}")
print()

schedule = PlateauSchedule()
errors = [0.60, 0.50, 0.45, 0.46, 0.45, 0.40, 0.41, 0.42, 0.38, 0.39, 0.39, 0.37, 0.38, 0.37]
for epoch, error in enumerate(errors, start=1):
    lr = schedule.step(error)
    print(f"epoch {epoch:2d}  val error {error:.2f}  best {schedule.best:.2f}  lr for next epoch {lr:g}  "
          f"drops {schedule.drops}  finished {schedule.finished}")
print()

print(">>> import dataclasses")
print(">>> dataclasses.replace(PAPER, patience=5)")
print(dataclasses.replace(PAPER, patience=5))
