# shown in: docs/dropout.md
"""Inverted dropout keeps the mean: a (1000, 4096) array of uniform values, one training pass."""

import numpy as np

from tinyalex import Dropout

# x from another generator than the masks: Dropout(seed=0)'s first mask comes from
# default_rng([0, 0]), which draws the same numbers as default_rng(0), and a mask equal to
# x would keep exactly the larger half of it
x = np.random.default_rng(1).random((1000, 4096), dtype=np.float32)
layer = Dropout(0.5, seed=0)
out = layer.forward(x, train=True)
print(f"mean of x {x.mean():.4f}   mean of dropout(x) in training {out.mean():.4f}   "
      f"fraction kept {(out != 0).mean():.4f}")
