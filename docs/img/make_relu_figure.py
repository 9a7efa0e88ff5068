"""Draw docs/img/relu.png: ReLU against tanh (section 3.1), their values and their gradients.

Run from the repository root (the picture goes to docs/img/, or to FOLDER):

    python docs/img/make_relu_figure.py [FOLDER]

Both curves come from tinyalex's own layers: the values from ``forward``, the gradients
from ``backward`` of a gradient of ones, so the picture shows what the code computes.
"""


import matplotlib.pyplot as plt
import numpy as np

from figure_folder import parse_folder, save
from tinyalex import ReLU, Tanh

plt.switch_backend("Agg")  # a file, never a window

NAME = "relu.png"


def values_and_gradients(layer, x):
    out = layer.forward(x)
    return out, layer.backward(np.ones_like(x))


def main(folder):
    x = np.linspace(-4, 4, 801)
    curves = {"ReLU  max(0, x)": (ReLU(), "#c0392b"), "tanh(x)": (Tanh(), "#2b6ca3")}
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for label, (layer, colour) in curves.items():
        out, grad = values_and_gradients(layer, x)
        left.plot(x, out, color=colour, linewidth=2, label=label)
        right.plot(x, grad, color=colour, linewidth=2, label=label)
    left.set_title("value (forward)")
    right.set_title("gradient (backward of ones)")
    right.annotate("tanh saturates:\nslope near 0", xy=(3, 0.01), xytext=(2.0, 0.3), fontsize=9,
                   arrowprops={"arrowstyle": "->"})
    right.annotate("ReLU: slope exactly 1\nwherever the unit is active", xy=(2.5, 1), xytext=(1.0, 0.7),
                   fontsize=9, arrowprops={"arrowstyle": "->"})
    for ax in (left, right):
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.axvline(0, color="grey", linewidth=0.6)
        ax.set_xlabel("x")
        ax.legend(loc="upper left", fontsize=9)
        ax.grid(alpha=0.3)
    right.set_ylim(-0.1, 1.15)
    fig.suptitle("Section 3.1: ReLU does not saturate, tanh does (tinyalex.ReLU and tinyalex.Tanh)", fontsize=11)
    save(fig, folder, NAME)


if __name__ == "__main__":
    main(parse_folder(__doc__.splitlines()[0]))
