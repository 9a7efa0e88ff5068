# shown in: docs/dropout.md
"""The masks of one Dropout layer, call by call, and replaying them by resetting ``calls``."""

import numpy as np

from tinyalex import Dropout

# float32, the training dtype: the uniform numbers are drawn in the dtype of x, and NumPy's
# generator gives other numbers in float64, so a float64 array gets other masks.
x = np.ones((2, 8), dtype=np.float32)
layer = Dropout(0.5, seed=42)
first = layer.forward(x, train=True)
second = layer.forward(x, train=True)
print("call 0:")
print(first)
print("call 1:")
print(second)
print("calls =", layer.calls)
layer.calls = 0
print("after setting calls = 0, the next call equals call 0:",
      bool((layer.forward(x, train=True) == first).all()))
fresh = Dropout(0.5, seed=42)
fresh.calls = 1
print("a fresh Dropout(0.5, seed=42) with calls = 1 equals call 1:",
      bool((fresh.forward(x, train=True) == second).all()))
print("the same layer on float64 ones, call 0:")
layer.calls = 0
print(layer.forward(x.astype(np.float64), train=True))
