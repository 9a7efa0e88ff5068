# shown in: docs/convolution.md
"""The printed examples of docs/convolution.md: the output sizes of AlexNet's convolutions,
im2col, a convolution, col2im, and what cols costs."""

import numpy as np

from tinyalex import AlexNet, Conv2D
from tinyalex.layers.conv import col2im, exact_output_size, im2col
from tinyalex.model import PAPER_LAYERS, walk

# the output size of every conv layer of the table, the rows with the same arithmetic together
print("| layer | input | k | s | p | (H + 2p - k) / s + 1 |")
print("|---|---|---|---|---|---|")
shapes = walk(PAPER_LAYERS, 227, columns=2)
same_arithmetic = {}    # (input size, k, s, p) -> layer names
for spec in PAPER_LAYERS:
    if spec.is_conv:
        key = (shapes[spec.name].in_size, spec.kernel, spec.stride, spec.pad)
        same_arithmetic.setdefault(key, []).append(spec.name)
for (size, k, s, p), names in same_arithmetic.items():
    span = f"{size} + {2 * p} - {k}" if p else f"{size} - {k}"
    arithmetic = f"({span}) / {s} + 1 = {exact_output_size(size, k, s, p)}"
    print(f"| {', '.join(names)} | {size} | {k} | {s} | {p} | {arithmetic} |")
print()

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
# one image, times 128 (cols grows with the batch, one set of columns per image): the
# plain layers, im2col everywhere and every matrix kept (the fast engine changes that:
# benchmarks.md)
model = AlexNet(devices="cpu", engine="plain")
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
print()
conv1 = model.column_a.layer("conv1")
images = N * 3 * model.image_size**2 * 4 / 2**20
conv1_output = N * conv1.out_channels * OH * OH * 4 / 2**20
print(f"both columns: {2 * total:,.1f} MiB")
print(f"for comparison, at batch {N}: the images {images:.1f} MiB, one column's conv1 output {conv1_output:.1f} MiB")
print()

# what input_grad=False skips in conv1's backward: dcols = W.T @ dout, (C*k*k, O) @ (O, N*OH*OW)
rows, columns = C * k * k, N * OH * OH
print(f"{rows} x {conv1.out_channels} x {columns:,} = {rows * conv1.out_channels * columns:,} multiply-adds per column")
