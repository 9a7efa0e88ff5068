"""Solutions to the exercises of docs/augmentation.md. Run: python docs/exercises/augmentation.py"""

import sys

import numpy as np

from tinyalex.data import Augmenter, batch_rng, ten_crop_positions

S, CROP = 256, 227


def position_images(count):
    """uint8 (count, S, S, 3) whose red channel is the row and green channel the column of each
    pixel: a crop then tells where it was cut and whether it was mirrored."""
    rows, cols = np.indices((S, S))
    one = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    return np.repeat(one[None], count, axis=0)


def plain_augmenter(pca_std=0.1, eigenvalues=(0.0, 0.0, 0.0)):
    """An Augmenter with a zero mean image, so its output is the crop itself (plus any colour shift)."""
    return Augmenter(np.zeros((S, S, 3)), np.array(eigenvalues), np.eye(3), pca_std=pca_std)


def exercise_1():
    """Predict the ten test crops of a 256 x 256 image: offsets (top, left) and mirroring."""
    positions = ten_crop_positions(S, CROP)
    far = S - CROP                                                  # 29
    corners = [(0, 0), (0, far), (far, 0), (far, far), (14, 14)]
    assert positions == [(t, l, False) for t, l in corners] + [(t, l, True) for t, l in corners]
    crops = list(plain_augmenter().ten_crops(position_images(1)))
    assert len(crops) == 10 and crops[0].shape == (1, 3, CROP, CROP)
    assert crops[1][0, 1, 0, 0] == far                              # top-right crop starts at column 29
    assert crops[5][0, 1, 0, 0] == CROP - 1                         # its mirror starts with column 226


def exercise_2():
    """Each training crop is a 227 x 227 window at offsets 0..29, mirrored about half the time:
    read the offsets back from the pixels of a batch of 400."""
    x = plain_augmenter(pca_std=0.0).train_batch(position_images(400), batch_rng(0, 0, 0))
    tops = x[:, 0, 0, 0]
    row_steps, col_steps = np.diff(x[:, 0, :, 0], axis=1), np.diff(x[:, 1, 0, :], axis=1)
    assert np.all(row_steps == 1)                                   # rows are never flipped
    mirrored = np.all(col_steps == -1, axis=1)
    assert np.all(mirrored | np.all(col_steps == 1, axis=1))        # columns run one way or the other
    lefts = np.where(mirrored, x[:, 1, 0, -1], x[:, 1, 0, 0])
    assert tops.min() == 0 and tops.max() == S - CROP and lefts.min() == 0 and lefts.max() == S - CROP
    assert 0.4 < mirrored.mean() < 0.6


def exercise_3():
    """The PCA colour noise adds one RGB shift to every pixel of an image: check it by drawing the same
    batch with and without the noise (the same generator draws the same crops)."""
    images = position_images(8)
    noisy = plain_augmenter(pca_std=0.1, eigenvalues=(5000.0, 500.0, 50.0))
    quiet = plain_augmenter(pca_std=0.0, eigenvalues=(5000.0, 500.0, 50.0))
    shift = noisy.train_batch(images, batch_rng(0, 1, 2)) - quiet.train_batch(images, batch_rng(0, 1, 2))
    per_image = shift[:, :, :1, :1]
    assert np.allclose(shift, per_image, atol=1e-3)                 # the same at every pixel
    assert np.abs(per_image).max() > 0.1                            # and not nothing


if __name__ == "__main__":
    from gradient_check import run
    run(sys.modules[__name__])
