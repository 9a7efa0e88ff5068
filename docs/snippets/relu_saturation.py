# shown in: docs/relu.md
"""ReLU against tanh on a few values: forward, and backward with dout = 1."""

import numpy as np

from tinyalex import ReLU, Tanh

x = np.array([-3.0, -1.0, 0.0, 0.5, 2.0, 3.0])
relu, tanh = ReLU(), Tanh()
rows = [("x", x),
        ("ReLU out", relu.forward(x, train=True)), ("ReLU gradient", relu.backward(np.ones_like(x))),
        ("tanh out", tanh.forward(x, train=True)), ("tanh gradient", tanh.backward(np.ones_like(x)))]
for name, values in rows:
    if name == "ReLU gradient":
        cells = [f"{int(v):<8d}" for v in values]
    else:
        cells = [f"{float(np.round(v, 4))!s:<8}" for v in values]
    print(f"{name:<20}" + " ".join(cells).rstrip())
