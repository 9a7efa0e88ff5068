# shown in: docs/relu.md
"""ReLU against tanh on a few values: forward, and backward with dout = 1; and the size of
what ReLU keeps for backward."""

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

# what a ReLU keeps for backward, for one column's conv1 output at batch 128
x = np.zeros((128, 48, 55, 55), dtype=np.float32)
relu = ReLU()
relu.forward(x, train=True)
print()
print(f"{x.shape}: the mask kept, {relu.active.dtype}, {relu.active.nbytes / 2**20:.1f} MiB; "
      f"the float32 output {x.nbytes / 2**20:.1f} MiB")
