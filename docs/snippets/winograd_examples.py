# shown in: docs/winograd.md
"""The printed examples of docs/winograd.md: one tile by hand, then the multiplications,
the memory and the rounding of Winograd's F(2x2, 3x3) at the sizes of conv3-conv5."""

import numpy as np

from tinyalex import Conv2D
from tinyalex.engines import WinogradConv2D, winograd
from tinyalex.engines.winograd import AT, BT, G
from tinyalex.testing import rel_error

# Multiply-accumulates of one image's forward pass, layer by layer (both columns)
macs = {"conv1": 55 * 55 * 96 * 3 * 11 * 11, "conv2": 27 * 27 * 256 * 48 * 5 * 5,
        "conv3": 13 * 13 * 384 * 256 * 9, "conv4": 13 * 13 * 384 * 192 * 9, "conv5": 13 * 13 * 256 * 192 * 9,
        "fc6": 9216 * 4096, "fc7": 4096 * 4096, "fc8": 4096 * 1000}
small = macs["conv3"] + macs["conv4"] + macs["conv5"]
print(f"conv3-conv5: {small / 1e6:.1f} of {sum(macs.values()) / 1e6:.1f} million multiply-accumulates per image "
      f"({small / sum(macs.values()):.0%})")
print()

# One tile of one channel: the 2 x 2 outputs of a 3 x 3 kernel g over a 4 x 4 patch d,
# directly (36 multiplications) and as AT [(G g GT) * (BT d B)] A (16)
rng = np.random.default_rng(0)
d = rng.integers(-3, 4, (4, 4)).astype(float)
g = rng.integers(-2, 3, (3, 3)).astype(float)
direct = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(2)] for i in range(2)])
U, V = G @ g @ G.T, BT @ d @ BT.T
print("d =", d.astype(int).tolist())
print("g =", g.astype(int).tolist())
print("direct:       ", direct.tolist())
print("AT (U * V) A: ", (AT @ (U * V) @ AT.T).tolist())
print()

# The three 3 x 3 layers of one column at the paper's batch of 128: multiplications of
# one forward pass, and the buffer backward needs (im2col's matrix, Winograd's V)
N, size = 128, 13
tiles_h, tiles_w = winograd.tile_counts(size, size, 1)        # 7 x 7 tiles cover 13 x 13
tiles = tiles_h * tiles_w
print("| layer | multiplications, im2col | Winograd | ratio | im2col matrix, MiB | Winograd's V, MiB |")
print("|---|---|---|---|---|---|")
for name, C, O in (("conv3", 256, 192), ("conv4", 192, 192), ("conv5", 192, 128)):
    direct_mults = O * C * 9 * N * size * size
    winograd_mults = 16 * O * C * N * tiles
    cols_mib, v_mib = 4 * 9 * C * N * size * size / 2**20, 4 * 16 * C * N * tiles / 2**20
    print(f"| {name} | {direct_mults / 1e9:.2f} G | {winograd_mults / 1e9:.2f} G | "
          f"{winograd_mults / direct_mults:.3f} | {cols_mib:.1f} | {v_mib:.1f} |")
print()

# Rounding: conv3 of one column (2 images) in float32, by each algorithm, against float64
x = np.maximum(rng.standard_normal((2, 256, 13, 13)), 0)
exact = Conv2D(256, 192, 3, 1, 1, rng=rng, dtype="float64")
reference = exact.forward(x)
for algorithm, layer in (("im2col", Conv2D), ("winograd", WinogradConv2D)):
    single = layer(256, 192, 3, 1, 1)
    single.weight, single.bias = exact.weight.astype(np.float32), exact.bias.astype(np.float32)
    error = rel_error(single.forward(x.astype(np.float32)), reference)
    # float32 keeps about 7 digits: the error's own digits depend on the BLAS library, its bound does not
    print(f"float32 {algorithm:8s} against float64: rel_error {'below 1e-6' if error < 1e-6 else f'{error:.1e}'}")
