"""Draw docs/img/sgd.png: the paper's update rule on a small 2-D surface, without and with
momentum, and with a (deliberately large) weight decay.

Run from the repository root (the picture goes to docs/img/, or to FOLDER):

    python docs/img/make_sgd_figure.py [FOLDER]

Every step is tinyalex.sgd.update_numpy, the rule of section 5, on two weights w with the
loss L(w) = 0.5 * (4 (w1 - 1)^2 + 0.5 (w2 - 2)^2): steep along w1, shallow along w2.
The weight decay is 2, not the paper's 0.0005, so that its pull towards 0 can be seen:
it moves the minimum to that of L(w) + |w|^2 (in general L(w) + wd/2 |w|^2).
"""


import matplotlib.pyplot as plt
import numpy as np

from figure_folder import parse_folder, save
from tinyalex.sgd import update_numpy

plt.switch_backend("Agg")  # a file, never a window

NAME = "sgd.png"
CURVATURE = np.array([4.0, 0.5])
MINIMUM = np.array([1.0, 2.0])
START = np.array([-1.5, -1.0])
LR, STEPS = 0.02, 80
DECAY = 2.0


def loss(w1, w2):
    return 0.5 * (CURVATURE[0] * (w1 - MINIMUM[0]) ** 2 + CURVATURE[1] * (w2 - MINIMUM[1]) ** 2)


def path_of(momentum, weight_decay):
    w, v = START.copy(), np.zeros(2)
    path = [w.copy()]
    for _ in range(STEPS):
        update_numpy(w, v, CURVATURE * (w - MINIMUM), LR, momentum, weight_decay)
        path.append(w.copy())
    return np.array(path)


def main(folder):
    runs = [("no momentum, no decay", 0.0, 0.0, "#7f8c8d"),
            ("momentum 0.9", 0.9, 0.0, "#2b6ca3"),
            (f"momentum 0.9, weight decay {DECAY:g}", 0.9, DECAY, "#c0392b")]
    w1, w2 = np.meshgrid(np.linspace(-2, 2.5, 200), np.linspace(-1.5, 3, 200))
    fig, ax = plt.subplots(figsize=(7.5, 6.2))
    ax.contour(w1, w2, loss(w1, w2), levels=np.geomspace(0.05, 40, 12), colors="#bbbbbb", linewidths=0.8)
    for label, momentum, decay, colour in runs:
        path = path_of(momentum, decay)
        ax.plot(path[:, 0], path[:, 1], "-o", color=colour, markersize=3, linewidth=1.3,
                label=f"{label}: ends at ({path[-1, 0]:.2f}, {path[-1, 1]:.2f})")
    decayed = CURVATURE * MINIMUM / (CURVATURE + DECAY)   # where the gradient of L + wd/2 |w|^2 is zero
    ax.plot(*MINIMUM, "*", color="black", markersize=14, label="minimum of L")
    ax.plot(*decayed, "*", color="#c0392b", markersize=14, markeredgecolor="black",
            label=f"minimum of L + {DECAY / 2:g} |w|^2 (the decay's pull)")
    ax.plot(*START, "s", color="black", markersize=7, label="start")
    ax.set_xlabel("w1 (steep direction)")
    ax.set_ylabel("w2 (shallow direction)")
    ax.set_aspect("equal")
    ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    ax.set_title(f"v <- m v - wd lr w - lr dL/dw;  w <- w + v   ({STEPS} steps, lr {LR}, "
                 "tinyalex.sgd.update_numpy)", fontsize=9.5)
    save(fig, folder, NAME)


if __name__ == "__main__":
    main(parse_folder(__doc__.splitlines()[0]))
