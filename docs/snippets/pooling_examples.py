# shown in: docs/pooling.md
"""The printed examples of docs/pooling.md, run with the real MaxPool2D (NumPy path)."""

import numpy as np

from tinyalex import MaxPool2D


def indented(array):
    return " " + str(array).replace("\n", "\n ")


# An 8 x 11 plane: the two rounding rules differ along the rows, not along the columns.
x = np.arange(88, dtype=np.float32).reshape(1, 1, 8, 11)
floor, ceil = MaxPool2D(3, 2), MaxPool2D(3, 2, ceil_mode=True)
out = floor.forward(x, train=False)
print(f"{'MaxPool2D(3, 2)':33} out {out.shape}       windows start at rows 0, 2, 4: row 7 is never read")
print(out[0, 0].astype(int))
out = ceil.forward(x, train=False)
print(f"{'MaxPool2D(3, 2, ceil_mode=True)':33} out {out.shape}       a fourth window starts at row 6 "
      "and covers rows 6 and 7")
print(out[0, 0].astype(int))
print()

# One 5 x 5 plane, 2 x 2 overlapping windows.
x = np.array([[0, 1, 2, 0, 3],
              [4, 9, 1, 2, 0],
              [3, 2, 8, 1, 7],
              [0, 5, 1, 6, 2],
              [1, 0, 4, 2, 3]], dtype=np.float64).reshape(1, 1, 5, 5)
pool = MaxPool2D(3, 2)
out = pool.forward(x, train=True)
left = ("x[0, 0] =\n" + indented(x[0, 0].astype(int))).split("\n")
middle = ("out =\n" + str(out[0, 0])).split("\n")
right = ("argmax =\n" + str(pool.argmax[0, 0])).split("\n")
for i, line in enumerate(left):
    row = f"{line:26}"
    if i < len(middle):
        row += f"{middle[i]:17}{right[i]}"
    print(row.rstrip())
print()

# dout = [[1, 10], [100, 1000]]: the 8 that won three windows gets the sum of their gradients.
dx = pool.backward(np.array([[1, 10], [100, 1000]], dtype=np.float64).reshape(1, 1, 2, 2))
print("dx[0, 0] =")
print(indented(dx[0, 0].astype(int)))
print()

# An all-zero input: every window is a tie, won by its first (top-left) pixel.
tied = MaxPool2D(3, 2)
tied.forward(np.zeros((1, 1, 5, 5)), train=True)
print("argmax =")
print(indented(tied.argmax[0, 0]))
print()


# Which windows cover each row of a 13-pixel input (pool5): the CUDA kernel's formulas,
# written with C's integer division (both operands are non-negative where it is used).
def first_window(y, size, stride):
    return 0 if y < size else (y - size) // stride + 1


def last_window(y, stride, out_height):
    return min(y // stride, out_height - 1)


size, stride, height = 3, 2, 13
out_height = (height - size) // stride + 1
cells_y, cells_w = [], []
for y in range(height):
    brute = [oy for oy in range(out_height) if oy * stride <= y <= oy * stride + size - 1]
    assert brute == list(range(first_window(y, size, stride), last_window(y, stride, out_height) + 1))
    text = ",".join(str(w) for w in brute)
    width = max(len(text), len(str(y)))
    cells_y.append(f"{y:<{width}}")
    cells_w.append(f"{text:<{width}}")
print("y          " + "  ".join(cells_y))
print("windows    " + "  ".join(cells_w))
