# shown in: docs/kernels.md
"""The launch grids of LRN and max-pooling at AlexNet's sizes (batch 128, one column), from
the launch arithmetic the kernels use (grid_size) and conv1's row of the table."""

import math

from tinyalex.kernels.cuda import MAX_BLOCKS, THREADS_PER_BLOCK, grid_size
from tinyalex.layers.conv import exact_output_size
from tinyalex.model import PAPER_LAYERS, walk

N = 128
conv1 = PAPER_LAYERS[0]
size = exact_output_size(227, conv1.kernel, conv1.stride, conv1.pad)   # conv1's maps, before pooling
pooled = walk(PAPER_LAYERS, 227, columns=2)["conv1"].out_size          # after pool1
channels = conv1.width // 2                                            # one column's kernels
launches = [("`lrn_fill_scale` after conv1: pixels", (N, size, size)),
            ("`lrn_output` after conv1: elements", (N, channels, size, size)),
            ("`maxpool_forward` pool1: outputs", (N, channels, pooled, pooled)),
            ("`maxpool_backward` pool1: inputs", (N, channels, size, size))]

print("| launch | n | blocks | loop trips per thread, at most |")
print("|---|---|---|---|")
for label, dims in launches:
    n = math.prod(dims)
    blocks = grid_size(n)
    capped = " (capped)" if blocks == MAX_BLOCKS else ""
    print(f"| {label} {'*'.join(map(str, dims))} | {n:,} | {blocks:,}{capped} | "
          f"{-(-n // (blocks * THREADS_PER_BLOCK))} |")
print()
print(f"{MAX_BLOCKS:,} blocks of {THREADS_PER_BLOCK} threads: {MAX_BLOCKS * THREADS_PER_BLOCK:,} threads")
