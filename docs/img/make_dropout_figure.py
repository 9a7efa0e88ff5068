"""Draw docs/img/dropout.png: one dropout mask on a layer of 20 neurons, and why evaluation
can keep every neuron unscaled (tinyalex uses inverted dropout).

Run from the repository root (the picture goes to docs/img/, or to FOLDER):

    python docs/img/make_dropout_figure.py [FOLDER]

Every bar comes from tinyalex.Dropout(p=0.5): one training pass, the average of 2,000
training passes, and an evaluation pass (``train=False``).
"""


import matplotlib.pyplot as plt
import numpy as np

from figure_folder import parse_folder, save
from tinyalex import Dropout

plt.switch_backend("Agg")  # a file, never a window

NAME = "dropout.png"
PASSES = 2000


def main(folder):
    x = np.random.default_rng(0).uniform(0.2, 1.0, size=(1, 20))   # a layer's activities after the ReLU
    layer = Dropout(p=0.5, seed=0)
    one_pass = layer.forward(x)
    dropped = one_pass[0] == 0
    average = np.mean([layer.forward(x)[0] for _ in range(PASSES)], axis=0)
    evaluation = layer.forward(x, train=False)[0]
    neurons = np.arange(x.shape[1])

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    axes[0].bar(neurons, x[0], color="#7f8c8d", label="input x")
    axes[0].bar(neurons, one_pass[0], color="#2b6ca3", alpha=0.8, label="out = x * mask")
    axes[0].scatter(neurons[dropped], np.zeros(dropped.sum()) + 0.05, marker="x", color="#c0392b", s=40,
                    zorder=3, label="dropped (mask 0)")
    axes[0].set_title(f"one training pass: {int(dropped.sum())} of {x.shape[1]} dropped,\n"
                      "the kept ones doubled (mask 1 / (1 - p) = 2)", fontsize=10)
    axes[1].bar(neurons, x[0], color="#7f8c8d", label="input x")
    axes[1].plot(neurons, average, "o", color="#d68910", label=f"mean of {PASSES} passes")
    axes[1].set_title("averaged over many masks,\nthe training output is x again", fontsize=10)
    axes[2].bar(neurons, evaluation, color="#27ae60", label="out = x (train=False)")
    axes[2].set_title("evaluation keeps every neuron, unscaled:\nthe paper's x 0.5 at test time, moved to training",
                      fontsize=10)
    for ax in axes:
        ax.set_xlabel("neuron")
        ax.legend(fontsize=8.5, loc="upper left")
        ax.set_ylim(0, 2.6)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("activity")
    fig.suptitle("Dropout, p = 0.5 (section 4.2), as tinyalex.Dropout computes it", fontsize=11)
    save(fig, folder, NAME)


if __name__ == "__main__":
    main(parse_folder(__doc__.splitlines()[0]))
