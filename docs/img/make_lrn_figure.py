"""Draw docs/img/lrn.png: local response normalization across neighbouring channels.

Run from the repository root (the picture goes to docs/img/, or to FOLDER):

    python docs/img/make_lrn_figure.py [FOLDER]

One pixel of 16 channels goes through tinyalex.LRN with the paper's constants (size 5,
k = 2, alpha = 1e-4, beta = 0.75). The activities are chosen large (tens to 150), as
conv1's are on raw pixels, so that alpha * sum(a^2) is not small next to k and the
inhibition shows: equal inputs come out smaller next to the strong channel.
"""


import matplotlib.pyplot as plt
import numpy as np

from figure_folder import parse_folder, save
from tinyalex import LRN

plt.switch_backend("Agg")  # a file, never a window

NAME = "lrn.png"
STRONG = 6                     # the channel with the large activity
SHOWN = 8                      # the channel whose window is drawn


def main(folder):
    a = np.full(16, 40.0)
    a[STRONG] = 150.0
    lrn = LRN(size=5, k=2.0, alpha=1e-4, beta=0.75)
    b = lrn.forward(a.reshape(1, 16, 1, 1), train=False).ravel()
    channels = np.arange(16)
    half = lrn.size // 2
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.5, 5.6), sharex=True)
    for ax in (top, bottom):
        ax.axvspan(SHOWN - half - 0.5, SHOWN + half + 0.5, color="#fde4cf", zorder=0)
        ax.grid(axis="y", alpha=0.3)
    top.bar(channels, a, color=["#c0392b" if c == STRONG else "#7f8c8d" for c in channels])
    top.set_ylabel("input a[c]")
    top.set_title(f"input at one pixel: channel {STRONG} strong, every other channel 40", fontsize=10)
    top.text(SHOWN + half + 0.6, 100, f"window of channel {SHOWN}:\nchannels {SHOWN - half}..{SHOWN + half}",
             fontsize=9, va="center")
    bottom.bar(channels, b, color=["#c0392b" if c == STRONG else
                                   "#2b6ca3" if abs(c - STRONG) <= half else "#7f8c8d" for c in channels])
    bottom.set_ylabel("output b[c]")
    bottom.set_xlabel("channel c (kernel map)")
    bottom.set_xticks(channels)
    far = b[12]
    bottom.axhline(far, color="black", linewidth=0.8, linestyle="--")
    bottom.text(15.6, far, " channels far\n from channel 6", fontsize=8.5, va="center")
    for edge in (0, 15):   # fewer than 5 channels in their window: a smaller sum
        bottom.text(edge, b[edge] + 1, "clipped\nwindow", fontsize=7.5, ha="center", va="bottom")
    bottom.set_title(f"LRN(size=5, k=2, alpha=1e-4, beta=0.75): the blue channels, within {half} of channel "
                     f"{STRONG}, are inhibited", fontsize=10)
    fig.suptitle("b[c] = a[c] / (k + alpha * sum of a[j]^2 over the 5 channels around c) ^ beta", fontsize=11)
    save(fig, folder, NAME)


if __name__ == "__main__":
    main(parse_folder(__doc__.splitlines()[0]))
