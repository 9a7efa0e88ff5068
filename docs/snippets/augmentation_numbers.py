# shown in: docs/augmentation.md
"""The numbers of docs/augmentation.md: crops counted, the ten test crops, colour shifts measured."""

import sys
from pathlib import Path

import numpy as np

from tinyalex.data import CROP, PCA_NOISE_STD, Augmenter, ten_crop_positions

SIZE = 256

# How many different training inputs one image gives: crop positions times two (mirrored or not).
paper = SIZE - 224
print(f"the paper's count, 224 crops: (256 - 224)^2 * 2 = {paper} * {paper} * 2 = {paper * paper * 2}")
print(f"  offsets 0 .. {paper} are {paper + 1} positions per axis: {paper + 1} * {paper + 1} * 2 = "
      f"{(paper + 1) ** 2 * 2} distinct crops")
ours = SIZE - CROP + 1
print(f"tinyalex, {CROP} crops: offsets 0 .. {ours - 1}, {ours} positions per axis: "
      f"{ours} * {ours} * 2 = {ours * ours * 2} distinct crops")
shared = (CROP - 1) * CROP / CROP**2
print(f"two crops one pixel apart share {CROP - 1} * {CROP} / {CROP}^2 = {shared:.1%} of their pixels")
print()

print("the ten test crops (top, left, mirrored):")
for top, left, flip in ten_crop_positions(SIZE, CROP):
    print(f"  ({top:2d}, {left:2d}, {flip})")
print()

# ImageNet's RGB statistics as reproductions publish them, on the [0, 1] scale, and on the
# 0..255 scale of tinyalex's prepared files (what datasets/stats.py would store).
values_01 = np.array([0.2175, 0.0188, 0.0045])
vectors = np.linalg.qr(np.array([[-0.5675, 0.7192, 0.4009],
                                 [-0.5808, -0.0045, -0.8140],
                                 [-0.5836, -0.6948, 0.4203]]))[0]
values_255 = values_01 * 255 ** 2
print("ImageNet eigenvalues, [0, 1] scale:", ", ".join(f"{v:.4f}" for v in values_01))
print("the same on the 0..255 scale:      ", ", ".join(f"{v:,.0f}" for v in values_255))
print(f"standard deviation of the shift along p1, p2, p3, in levels ({PCA_NOISE_STD} * l / 255):",
      ", ".join(f"{PCA_NOISE_STD * v / 255:.2f}" for v in values_255))
print(f"  with the 0..255 eigenvalues used as they are ({PCA_NOISE_STD} * l):",
      ", ".join(f"{PCA_NOISE_STD * v:,.1f}" for v in values_255))


def describe(label, values, vectors):
    augmenter = Augmenter(np.zeros((SIZE, SIZE, 3)), values, vectors)
    shifts = augmenter.colour_shift(np.random.default_rng(0), 100_000)   # (100000, 3) levels
    length = np.linalg.norm(shifts, axis=1)
    largest = np.abs(shifts).max(axis=1)
    print(f"{label}: 100,000 shifts, length median {np.median(length):.1f} levels, "
          f"largest channel change: median {np.median(largest):.1f}, 99th percentile "
          f"{np.percentile(largest, 99):.1f} levels")


print()
describe("ImageNet", values_255, vectors)

# the built-in data set: the same sample of images the figure script takes its statistics from
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "img"))
from make_augmentation_figure import colour_statistics  # noqa: E402

values, vectors = colour_statistics()
print()
print("built-in data set, eigenvalues:", ", ".join(f"{v:,.0f}" for v in values))
describe("built-in data set", values, vectors)
