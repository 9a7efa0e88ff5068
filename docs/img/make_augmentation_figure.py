"""Draw docs/img/augmentation_crops.png and docs/img/augmentation_colour.png (section 4.1).

Run from the repository root:

    python docs/img/make_augmentation_figure.py

One image of the built-in data set (datasets/synthetic.py draws it, and preparation's own
resize_and_crop makes it 256 x 256) goes through tinyalex.data.Augmenter, the code the
training program runs: its random training crops and mirror images, its ten test crops,
and its PCA colour shifts, with the colour statistics of a sample of the built-in images.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from tinyalex.data import CROP, Augmenter, ten_crop_positions  # noqa: E402
from tinyalex.datasets.images import resize_and_crop  # noqa: E402
from tinyalex.datasets.synthetic import CLASSES, MONTAGE, image_rng, render  # noqa: E402

HERE = Path(__file__).parent
SIZE = 256
CLASS = 2            # a filled triangle: easy to see which way it points, so a mirror shows
EXAMPLE = 3          # which example of that class
SEED = 7             # of the random training crops and colour shifts
EXAGGERATION = 20    # the colour shifts are drawn this many times larger in the second row


def built_in_image(class_index, index):
    """A 256 x 256 uint8 image of the built-in set, as preparation stores it."""
    return np.asarray(resize_and_crop(render(class_index, image_rng(0, MONTAGE, class_index, index)), SIZE))


def colour_statistics(per_class=6):
    """Eigenvalues (largest first) and eigenvectors (columns) of the RGB covariance of a
    sample of built-in images, on the 0..255 scale, as datasets/stats.py computes them."""
    pixels = np.concatenate([built_in_image(k, i).reshape(-1, 3) for k in range(len(CLASSES))
                             for i in range(per_class)]).astype(np.float64)
    values, vectors = np.linalg.eigh(np.cov(pixels, rowvar=False, bias=True))
    return values[::-1], vectors[:, ::-1]


def coordinate_image():
    """Pixels that hold their own row and column: the crops of it tell where a crop was taken."""
    rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    return np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)


def as_picture(x):
    """One float32 (3, H, W) network input on the 0..255 scale (mean not subtracted) -> RGB in [0, 1]."""
    return np.clip(x.transpose(1, 2, 0) / 255.0, 0, 1)


def show(ax, picture, title):
    ax.imshow(picture, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def crops_figure(image, augmenter):
    count = 4
    fig, axes = plt.subplots(3, 5, figsize=(9, 7.4))
    # the training crops: train_batch on the image, and with the same random numbers on the
    # coordinate image, whose first pixel then reads out where each crop was taken
    images = np.broadcast_to(image, (count, SIZE, SIZE, 3))
    crops = augmenter.train_batch(images, np.random.default_rng(SEED))
    where = augmenter.train_batch(np.broadcast_to(coordinate_image(), (count, SIZE, SIZE, 3)),
                                  np.random.default_rng(SEED))
    show(axes[0, 0], image, "the 256 x 256 image;\nthe square: every crop's\ntop-left corner")
    axes[0, 0].add_patch(plt.Rectangle((-0.5, -0.5), SIZE - CROP + 1, SIZE - CROP + 1, fill=False,
                                       edgecolor="red", linewidth=1.2))
    for i in range(count):
        top, first, second = (int(v) for v in (where[i, 0, 0, 0], where[i, 1, 0, 0], where[i, 1, 0, 1]))
        mirrored = second < first
        left = first - (CROP - 1) if mirrored else first
        show(axes[0, i + 1], as_picture(crops[i]),
             f"training crop\ntop {top}, left {left}" + (",\nmirrored" if mirrored else ""))
    for i, ((top, left, flip), crop) in enumerate(zip(ten_crop_positions(SIZE, CROP),
                                                      augmenter.ten_crops(image[None]))):
        name = ["top left", "top right", "bottom left", "bottom right", "centre"][i % 5]
        show(axes[1 + i // 5, i % 5], as_picture(crop[0]),
             f"test crop {i + 1}: {name}\ntop {top}, left {left}" + (", mirrored" if flip else ""))
    fig.suptitle(f"Section 4.1's crops of one built-in image, {CROP} x {CROP} (tinyalex.data.Augmenter)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def colour_figure(image, values, vectors):
    count = 5
    # the paper's noise, as tinyalex scales it, on a crop with no position noise...
    plain = Augmenter(np.zeros((SIZE, SIZE, 3)), values, vectors, pca_std=0.0).center_crop(image[None])[0]
    augmenter = Augmenter(np.zeros((SIZE, SIZE, 3)), values, vectors)
    shifts = augmenter.colour_shift(np.random.default_rng(SEED), count)
    fig, axes = plt.subplots(2, count + 1, figsize=(10, 4.2))
    for row, scale in enumerate((1, EXAGGERATION)):
        show(axes[row, 0], as_picture(plain), "no shift")
        for i, shift in enumerate(shifts):
            shifted = plain + (scale * shift).astype(np.float32)[:, None, None]
            levels = ", ".join(f"{v:+.1f}" for v in scale * shift)
            show(axes[row, i + 1], as_picture(shifted), f"RGB {levels}")
    axes[0, 0].set_ylabel("as trained", fontsize=9)
    axes[1, 0].set_ylabel(f"shifts x {EXAGGERATION}", fontsize=9)
    fig.suptitle("PCA colour shifts: every pixel moves by the same RGB vector, in levels of 0..255 "
                 f"(second row: {EXAGGERATION} times larger, to be seen)", fontsize=9.5)
    fig.tight_layout()
    return fig


def main():
    image = built_in_image(CLASS, EXAMPLE)
    values, vectors = colour_statistics()
    # no mean subtracted, so that the crops can be shown as pictures; no colour noise on the crops
    augmenter = Augmenter(np.zeros((SIZE, SIZE, 3)), values, vectors, pca_std=0.0)
    for name, fig in (("augmentation_crops.png", crops_figure(image, augmenter)),
                      ("augmentation_colour.png", colour_figure(image, values, vectors))):
        fig.savefig(HERE / name, dpi=80)
        plt.close(fig)
        if name == "augmentation_crops.png":
            # 256 colours are plenty for crops and keep the file small; not for the colour
            # shifts, whose few levels a palette could round away
            Image.open(HERE / name).convert("RGB").quantize(256).save(HERE / name, optimize=True)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
