"""Draw docs/img/columns.png: the two columns of tinyalex.AlexNet and where data crosses.

Run from the repository root:

    python docs/img/make_columns_figure.py

The shapes written in the picture are not typed in by hand: the script runs one image
through AlexNet(devices="cpu") and reads them from model.activation_shapes().
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from tinyalex import AlexNet

plt.switch_backend("Agg")  # a file, never a window

OUTPUT = Path(__file__).with_name("columns.png")

# (x position, width, title, layers inside, name of the layer whose output leaves the stage)
STAGES = [
    (1.3, 2.5, "stage 0", "conv1 relu1 lrn1 pool1\nconv2 relu2 lrn2 pool2", "pool2"),
    (5.0, 2.5, "stage 1", "conv3 relu3 conv4 relu4\nconv5 relu5 pool5 flatten", "flatten"),
    (8.7, 1.5, "stage 2", "fc6 relu6 drop6", "fc6"),
    (11.4, 1.5, "stage 3", "fc7 relu7 drop7", "fc7"),
]
ROW_Y = {"a": 3.0, "b": 0.6}    # centre of each column's row
BOX_H = 1.1
CROSSINGS = ["conv3 input", "fc6 input", "fc7 input", "fc8 input"]
COLOURS = {"a": "#dbe9f6", "b": "#fde4cf"}
EDGES = {"a": "#2b6ca3", "b": "#c0641c"}


def shapes_of_one_image():
    model = AlexNet(devices="cpu")
    model.forward(np.zeros((1, 3, 227, 227), dtype=np.float32), train=False)
    return model.activation_shapes()["column_a"]


def shape_text(shape):
    return "(N, " + ", ".join(str(d) for d in shape[1:]) + ")"


def box(ax, x, y, w, h, text, face, edge, size=8.5, bold_title=None):
    ax.add_patch(FancyBboxPatch((x, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=face, edgecolor=edge, linewidth=1.4))
    if bold_title:
        ax.text(x + w / 2, y + h / 2 - 0.2, bold_title, ha="center", va="center", fontsize=8.5,
                fontweight="bold", color=edge)
        ax.text(x + w / 2, y - 0.1, text, ha="center", va="center", fontsize=size, linespacing=1.4)
    else:
        ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=size, linespacing=1.4)


def arrow(ax, start, end, colour, style="-|>", width=1.3, dashed=False):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11, color=colour,
                                 linewidth=width, linestyle="--" if dashed else "-", shrinkA=0, shrinkB=0))


def main():
    shapes = shapes_of_one_image()
    fig, ax = plt.subplots(figsize=(15, 5.2))
    ax.set_xlim(-0.2, 15.6)
    ax.set_ylim(-0.9, 4.8)
    ax.axis("off")

    # the two devices as bands
    for column, label in (("a", "column a on devices[0]"), ("b", "column b on devices[1]")):
        y = ROW_Y[column]
        ax.add_patch(plt.Rectangle((0.9, y - 0.95), 14.6, 1.9, facecolor=COLOURS[column], alpha=0.35,
                                   edgecolor="none"))
        ax.text(1.0, y + 0.8, label, fontsize=9, color=EDGES[column], fontweight="bold", va="center")

    # the image, seen whole by both columns
    box(ax, -0.15, 1.8, 0.95, 0.9, "image\n(N, 3,\n227, 227)", "white", "black", size=8)
    for column in "ab":
        arrow(ax, (0.8, 1.8), (STAGES[0][0], ROW_Y[column]), "black")

    # the stages of each column
    for x, w, title, layers, _ in STAGES:
        for column in "ab":
            box(ax, x, ROW_Y[column], w, BOX_H, layers, "white", EDGES[column], bold_title=title)

    # the crossings: every column's stage output goes to both columns' next step
    for i, (x, w, _, _, out_name) in enumerate(STAGES):
        end_x = STAGES[i + 1][0] if i + 1 < len(STAGES) else 14.0
        mid = x + w + (end_x - x - w) / 2
        ax.text(mid, 4.45, f"crossing {i + 1}: {CROSSINGS[i]}\neach half " + shape_text(shapes[out_name]),
                ha="center", va="center", fontsize=8.5, linespacing=1.5)
        targets = "ab" if i + 1 < len(STAGES) else "a"
        for source in "ab":
            for target in targets:
                straight = source == target
                arrow(ax, (x + w, ROW_Y[source]), (end_x, ROW_Y[target]), EDGES[source],
                      dashed=not straight, width=1.3 if straight else 1.1)

    # fc8, whole, on column a's device
    box(ax, 14.0, ROW_Y["a"], 1.4, BOX_H, "fc8\n4096 -> 1000\nlogits (N, 1000)", "white", "black", size=8)

    ax.text(7.7, -0.6, "solid: data that stays on its device    dashed: a copy to the other device "
            "(tinyalex.model.cross); the receiving column puts column a's half first",
            ha="center", va="center", fontsize=8, style="italic")
    fig.suptitle("tinyalex.AlexNet: two columns, four crossings (shapes for N images of 227 x 227)",
                 fontsize=11, y=0.98)
    fig.savefig(OUTPUT, dpi=120, bbox_inches="tight")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
