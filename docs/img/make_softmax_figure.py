"""Draw docs/img/softmax.png: logits, their softmax, and the gradient of the cross-entropy.

Run from the repository root (the picture goes to docs/img/, or to FOLDER):

    python docs/img/make_softmax_figure.py [FOLDER]

One image, six classes, label 2: the probabilities come from tinyalex.layers.loss.softmax,
the loss and the gradient from tinyalex.SoftmaxCrossEntropy (``forward``, ``backward``).
"""


import matplotlib.pyplot as plt
import numpy as np

from figure_folder import parse_folder, save
from tinyalex import SoftmaxCrossEntropy
from tinyalex.layers.loss import softmax

plt.switch_backend("Agg")  # a file, never a window

NAME = "softmax.png"
LABEL = 2


def main(folder):
    logits = np.array([[1.0, 2.5, 1.5, -0.5, 0.0, -1.0]])
    probs = softmax(logits)[0]
    loss_layer = SoftmaxCrossEntropy()
    loss = loss_layer.forward(logits, np.array([LABEL]))
    grad = loss_layer.backward()[0]
    classes = np.arange(logits.shape[1])
    colours = ["#c0392b" if k == LABEL else "#7f8c8d" for k in classes]

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].bar(classes, logits[0], color=colours)
    axes[0].set_title("logits z (fc8's outputs)", fontsize=10)
    axes[1].bar(classes, probs, color=colours)
    axes[1].set_title(f"p = softmax(z): positive, sum 1\nloss = -log p[{LABEL}], about {loss:.1f}", fontsize=10)
    axes[2].bar(classes, grad, color=colours)
    axes[2].set_title(f"d loss / d z = p - onehot({LABEL}): every wrong class\npushed down by its p, "
                      f"the label pulled up by 1 - p[{LABEL}]", fontsize=10)
    for ax in axes:
        ax.axhline(0, color="black", linewidth=0.7)
        ax.set_xticks(classes)
        ax.set_xlabel("class (red: the label)")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Softmax and cross-entropy (section 3.5), one image, from tinyalex.SoftmaxCrossEntropy",
                 fontsize=11)
    save(fig, folder, NAME)


if __name__ == "__main__":
    main(parse_folder(__doc__.splitlines()[0]))
