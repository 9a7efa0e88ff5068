"""Draw docs/img/pooling.png: overlapping (z = 3, s = 2) against non-overlapping (z = s = 2)
max-pooling windows on the same 7 x 7 input.

Run from the repository root (the picture goes to docs/img/, or to FOLDER):

    python docs/img/make_pooling_figure.py [FOLDER]

The outputs and the circled winners come from tinyalex.MaxPool2D (``out`` and ``argmax``);
the input is tie-free (tinyalex.testing.tie_free, scaled to whole numbers), so every window
has one winner.
"""


import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle, Rectangle

from figure_folder import parse_folder, save
from tinyalex import MaxPool2D
from tinyalex.testing import tie_free

plt.switch_backend("Agg")  # a file, never a window

NAME = "pooling.png"
H = 7
COLOURS = ["#c0392b", "#2b6ca3", "#27ae60"]


def cells(ax, values, x0, y0, size=1.0):
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            ax.add_patch(Rectangle((x0 + c * size, y0 - (r + 1) * size), size, size, facecolor="white",
                                   edgecolor="grey", linewidth=0.8))
            ax.text(x0 + (c + 0.5) * size, y0 - (r + 0.5) * size, f"{values[r, c]:g}", ha="center",
                    va="center", fontsize=9)


def panel(ax, x, size, stride, title):
    pool = MaxPool2D(size, stride)
    out = pool.forward(x.reshape(1, 1, H, H))[0, 0]
    argmax = pool.argmax[0, 0]
    cells(ax, x, 0, H)
    # the first row of windows, each in its colour, with its winner circled
    for ox, colour in enumerate(COLOURS):
        inset = 0.05 + 0.06 * ox
        ax.add_patch(Rectangle((ox * stride + inset, H - size + inset), size - 2 * inset, size - 2 * inset,
                               fill=False, edgecolor=colour, linewidth=2.5))
        wy, wx = divmod(int(argmax[0, ox]), H)
        ax.add_patch(Circle((wx + 0.5, H - wy - 0.5), 0.44 - 0.09 * ox, fill=False, edgecolor=colour, linewidth=2))
    cells(ax, out, 9, H - 2)
    for ox, colour in enumerate(COLOURS):
        ax.add_patch(Rectangle((9 + ox, H - 3), 1, 1, fill=False, edgecolor=colour, linewidth=2.5))
    ax.text(10.5, H - 1.5, f"out {out.shape[0]} x {out.shape[1]}", ha="center", fontsize=10)
    ax.annotate("", xy=(8.7, H - 3.5), xytext=(7.3, H - 3.5), arrowprops={"arrowstyle": "-|>", "linewidth": 2})
    for c in range(out.shape[1] - 1):
        if argmax[0, c] == argmax[0, c + 1]:   # one input won two neighbouring windows
            ax.text(10.5, -0.1, f"{out[0, c]:g} wins two windows:\nbackward adds both gradients", ha="center",
                    fontsize=9)
    ax.set_title(title, fontsize=10.5)
    ax.set_xlim(-0.3, 12.5)
    ax.set_ylim(-0.3, H + 0.3)
    ax.set_aspect("equal")
    ax.axis("off")


def main(folder):
    x = tie_free((H, H), np.random.default_rng(3)) * 100 + 100   # whole numbers 0..48, all different
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    panel(left, x, 3, 2, "overlapping, the paper's z = 3, s = 2:\nneighbouring windows share a column")
    panel(right, x, 2, 2, "non-overlapping, z = s = 2: windows tile the input,\nthe last row and column are never read")
    fig.suptitle("Max-pooling (section 3.4): the first row of windows and their winners (circled), "
                 "tinyalex.MaxPool2D", fontsize=11)
    save(fig, folder, NAME)


if __name__ == "__main__":
    main(parse_folder(__doc__.splitlines()[0]))
