# shown in: docs/convolution.md
"""The printed examples of docs/convolution.md: im2col, a convolution, col2im, and what cols costs."""

import numpy as np

from tinyalex import AlexNet, Conv2D
from tinyalex.layers.conv import col2im, im2col

x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
cols = im2col(x, 3, 1, 0)
print("x[0, 0] =")
print(" " + str(x[0, 0]))
print(f"cols.shape = {cols.shape}")
print(cols)
print()

conv = Conv2D(1, 1, 3)
conv.weight[...] = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
conv.bias[...] = 0
out = conv.forward(x, train=False)
print(f"out.shape = {out.shape}")
print(out[0, 0])
print()

# how many patches cover each pixel: col2im of a matrix of ones
print(col2im(np.ones_like(cols), x.shape, 3, 1, 0)[0, 0])
print()

# conv1's cols at the paper's batch of 128, per column
C, k, N, OH = 3, 11, 128, 55
rows, columns = C * k * k, N * OH * OH
print(f"rows    = C*k*k    = {C} * {k} * {k}     = {rows}")
print(f"columns = N*OH*OW  = {N} * {OH} * {OH}   = {columns:,}")
print(f"cols    = {rows} x {columns:,}              = {rows * columns:,} floats")
print(f"        = {4 * rows * columns:,} bytes in float32 ({4 * rows * columns / 2**20:.1f} MiB)")
print()

# All five layers: the cols each layer of column a holds after a training forward pass of
# one image, times 128 (cols grows with the batch, one set of columns per image).
model = AlexNet(devices="cpu")
model.forward(np.zeros((1, 3, 227, 227), dtype=np.float32), train=True)
print("| layer | rows C*k*k | columns N*OH*OW | MiB |")
print("|---|---|---|---|")
total = 0.0
for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
    rows, columns = model.column_a.layer(name).cols.shape
    mib = 4 * rows * columns * N / 2**20
    total += mib
    print(f"| {name} | {rows:,} | {columns * N:,} | {mib:.1f} |")
print(f"| total | | | {total:,.1f} |")
