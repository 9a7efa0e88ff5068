# shown in: docs/columns.md
"""The two columns against a one-column net written from state_dict() with plain NumPy loops
(one_column_alexnet of tests/test_model.py): with LRN within each column's half of the
channels, as the paper's GPUs did, and with one LRN over all channels, as Caffe and PyTorch do."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from test_model import grouped_lrn, lrn, one_column_alexnet  # noqa: E402

from tinyalex import AlexNet  # noqa: E402
from tinyalex.testing import rel_error  # noqa: E402

# float64, and weights large enough that the logits are not tiny
model = AlexNet(devices="cpu", dtype="float64", weight_std=0.05)
x = np.random.default_rng(0).standard_normal((2, 3, 227, 227))
logits = model.forward(x, train=False)
print(f"two standard normal images: largest |logit| {np.abs(logits).max():.1f}")


def within(value, low, high):
    """A bound a BLAS library's rounding cannot change: the digits of ``value`` can."""
    if not low <= value < high:
        return f"{value:.1e} (outside the bounds!)"
    return f"below {high:.0e}" if low == 0 else f"between {low:.0e} and {high:.0e}"


# The same network, summed in another order: differences of rounding alone. With one LRN
# over all channels the nets differ, by far more than rounding
bounds = {"LRN per group": ((0, 1e-10), (0, 1e-13)), "LRN over all channels": ((1e-3, 1e-2), (1e-6, 1e-4))}
for label, normalize in (("LRN per group", grouped_lrn), ("LRN over all channels", lrn)):
    theirs = one_column_alexnet(model.state_dict(), x, normalize)
    difference, error = bounds[label]
    print(f"one-column net with grouped conv2/4/5 and {label:21} max |difference| "
          f"{within(np.abs(logits - theirs).max(), *difference)}, rel_error {within(rel_error(logits, theirs), *error)}")
