# shown in: docs/lrn.md
"""Why LRN is tested with exaggerated constants: with the paper's, a wrong window hardly shows."""

import numpy as np

from tinyalex import LRN
from tinyalex.testing import rel_error


def loop_lrn(x, k, alpha, beta, low, high):
    """b[c] = a[c] / (k + alpha * sum of a[j]^2 for j from c - low to c + high) ^ beta, by loops."""
    out = np.empty_like(x)
    channels = x.shape[1]
    for c in range(channels):
        window = range(max(0, c - low), min(channels - 1, c + high) + 1)
        out[:, c] = x[:, c] / (k + alpha * sum(x[:, j] ** 2 for j in window)) ** beta
    return out


x = np.random.default_rng(0).standard_normal((2, 8, 3, 4))
print(f"{'constants':26}{'correct loop':16}{'window [c-2, c+1] (off by one)':34}window of 3")
ranges = []
for k, alpha, label in ((2, 1e-4, "k = 2, alpha = 1e-4"), (1, 1, "k = 1, alpha = 1")):
    layer = LRN(5, k=k, alpha=alpha, beta=0.75)
    out = layer.forward(x, train=True)
    errors = [rel_error(out, loop_lrn(x, k, alpha, 0.75, low, high)) for low, high in ((2, 2), (2, 1), (1, 1))]
    rounding = "below 1e-14" if errors[0] < 1e-14 else f"{errors[0]:.1e}"   # its digits vary with the CPU
    print(f"{label:27}{rounding:<16}{errors[1]:<34.1e}{errors[2]:.1e}")
    ranges.append(f"{label}: scale from {float(layer.scale.min()):.5f} to {float(layer.scale.max()):.5f}")
print()
print("\n".join(ranges))
