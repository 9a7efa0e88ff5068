"""Draw docs/img/im2col.png: every 3 x 3 patch of a 4 x 4 input becomes one column.

Run from the repository root (the picture goes to docs/img/, or to FOLDER):

    python docs/img/make_im2col_figure.py [FOLDER]

The matrix on the right is what tinyalex.layers.conv.im2col returns for the input on the
left (one image, one channel, kernel 3, stride 1, no padding); the colours only mark which
patch went where.
"""


import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from figure_folder import parse_folder, save
from tinyalex.layers.conv import im2col

plt.switch_backend("Agg")  # a file, never a window

NAME = "im2col.png"
K, STRIDE = 3, 1
COLOURS = ["#c0392b", "#2b6ca3", "#27ae60", "#d68910"]


def grid(ax, values, x0, y0, faces=None):
    """Draw ``values`` as a table of cells whose top-left corner is (x0, y0)."""
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            face = "white" if faces is None else faces[r][c]
            ax.add_patch(Rectangle((x0 + c, y0 - r - 1), 1, 1, facecolor=face, edgecolor="grey", linewidth=0.8))
            ax.text(x0 + c + 0.5, y0 - r - 0.5, f"{values[r, c]:g}", ha="center", va="center", fontsize=10)


def main(folder):
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    cols = im2col(x, K, STRIDE, 0)          # (C*k*k, N*OH*OW) = (9, 4)
    OW = 4 - K + 1
    fig, ax = plt.subplots(figsize=(9, 5))
    grid(ax, x[0, 0], 0, 7)
    ax.text(2, 7.4, "input x (1, 1, 4, 4)", ha="center", fontsize=11)
    # one outline per patch, shifted a little so that overlapping outlines stay visible
    for p, colour in enumerate(COLOURS):
        oy, ox = divmod(p, OW)
        inset = 0.06 + 0.07 * p
        ax.add_patch(Rectangle((ox * STRIDE + inset, 7 - oy * STRIDE - K + inset), K - 2 * inset, K - 2 * inset,
                               fill=False, edgecolor=colour, linewidth=2.5))
    faces = [[COLOURS[c] + "40" for c in range(cols.shape[1])] for _ in range(cols.shape[0])]
    grid(ax, cols, 8, 9.5, faces)
    ax.text(10, 9.9, "im2col(x, 3, 1, 0): cols (9, 4)", ha="center", fontsize=11)
    for p, colour in enumerate(COLOURS):
        oy, ox = divmod(p, OW)
        ax.text(8 + p + 0.5, 0.15, f"({oy},{ox})", ha="center", fontsize=9, color=colour)
    ax.text(10, -0.45, "column = output pixel (oy, ox)", ha="center", fontsize=9)
    for r in range(cols.shape[0]):
        ax.text(7.8, 9.5 - r - 0.5, f"c,i,j = 0,{r // K},{r % K}", ha="right", va="center", fontsize=8, color="dimgrey")
    ax.annotate("", xy=(5.6, 5.5), xytext=(4.3, 5.5), arrowprops={"arrowstyle": "-|>", "linewidth": 2})
    ax.text(2, 1.6, "each coloured 3 x 3 patch\nis read row by row\ninto the column of its colour;\n"
            "out = W (O, 9) @ cols (9, 4)\nis then the whole convolution", ha="center", va="center", fontsize=10)
    ax.set_xlim(-0.5, 12.5)
    ax.set_ylim(-1, 10.5)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.suptitle("Convolution as one matrix product: patches become columns", fontsize=12)
    save(fig, folder, NAME)


if __name__ == "__main__":
    main(parse_folder(__doc__.splitlines()[0]))
