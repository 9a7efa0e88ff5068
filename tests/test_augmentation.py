"""The training augmentation (paper, section 4.1) checked by its distribution.

A crop, a flip and a colour shift each look right one at a time even when their random
draws are wrong: a crop range that never reaches the last offset, or flips that never
happen, still give valid crops. These tests draw thousands of augmentations through
``Augmenter.train_batch`` and compare what comes out with the distribution it should have.
Every bound is a number of binomial (or sampling) standard deviations, so a correct
augmenter fails with a probability far below one in a million, and the seeds are fixed.

docs/augmentation.md explains the augmentation these tests check.
"""

import numpy as np
import pytest

from tinyalex.data import Augmenter

# 30 offsets on each axis, 0 .. 29, as with tinyalex's 227 crops of 256 images, but on
# small images: the code does not depend on the sizes, and 3000 full-size crops take seconds.
SIZE, CROP = 64, 35
OFFSETS = SIZE - CROP + 1      # 30
DRAWS = 3000                   # 100 per offset expected
BATCH = 250
SIGMAS = 5                     # a correct augmenter leaves a 5-sigma band with p < 6e-7


def coordinate_image():
    """One image whose pixels say where they are: channel 0 the row, channel 1 the column.

    The first pixel of a crop then reads out the crop's top and left offsets, and whether
    it was mirrored (a mirrored crop starts at its right-hand column, left + CROP - 1).
    """
    rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    return np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)


def draw_offsets_and_flips(seed=0):
    """(top, left, flipped) of DRAWS training crops, read from their first pixels."""
    # no mean to subtract and no colour noise, so the output holds the image's own values
    augmenter = Augmenter(np.zeros((SIZE, SIZE, 3)), np.ones(3), np.eye(3), crop=CROP, pca_std=0.0)
    # the same image BATCH times, without copying it BATCH times
    images = np.broadcast_to(coordinate_image(), (BATCH, SIZE, SIZE, 3))
    rng = np.random.default_rng(seed)
    tops, lefts, flips = [], [], []
    for _ in range(DRAWS // BATCH):
        x = augmenter.train_batch(images, rng)               # (BATCH, 3, CROP, CROP)
        first, second = x[:, 1, 0, 0], x[:, 1, 0, 1]          # column numbers of the first two pixels
        flipped = second < first
        tops.append(x[:, 0, 0, 0])
        lefts.append(np.where(flipped, first - (CROP - 1), first))
        flips.append(flipped)
    return (np.concatenate(tops).astype(int), np.concatenate(lefts).astype(int), np.concatenate(flips))


@pytest.fixture(scope="module")
def drawn():
    return draw_offsets_and_flips()


@pytest.mark.parametrize("axis", ["top", "left"])
def test_every_crop_offset_is_drawn_equally_often(drawn, axis):
    offsets = drawn[0] if axis == "top" else drawn[1]
    assert offsets.min() >= 0 and offsets.max() <= SIZE - CROP, "a crop outside the image"
    counts = np.bincount(offsets, minlength=OFFSETS)
    # Each offset's count is binomial(DRAWS, 1/30): mean 100, standard deviation 9.8. An
    # offset never drawn (say the last, from rng.integers(0, SIZE - CROP)) is 10 sigma off.
    expected = DRAWS / OFFSETS
    std = np.sqrt(DRAWS * (1 / OFFSETS) * (1 - 1 / OFFSETS))
    worst = np.argmax(np.abs(counts - expected))
    assert np.all(np.abs(counts - expected) < SIGMAS * std), (
        f"{axis} offset {worst} drawn {counts[worst]} times in {DRAWS}, expected {expected:.0f} +- {std:.1f}")
    # All 30 counts together: Pearson's chi-square has 29 degrees of freedom, mean 29 and
    # standard deviation sqrt(2 * 29) = 7.6; 29 + 6 * 7.6 = 75 is passed with p < 1e-5.
    chi_square = np.sum((counts - expected) ** 2 / expected)
    df = OFFSETS - 1
    assert chi_square < df + 6 * np.sqrt(2 * df), f"{axis} offsets not uniform: chi-square {chi_square:.1f}"


def test_top_and_left_are_drawn_independently(drawn):
    # a crop that always moved along the diagonal would pass both uniformity tests
    tops, lefts, _ = drawn
    correlation = np.corrcoef(tops, lefts)[0, 1]
    # the sample correlation of independent variables has standard deviation 1 / sqrt(DRAWS)
    assert abs(correlation) < SIGMAS / np.sqrt(DRAWS), f"top and left correlated: {correlation:.3f}"


def test_half_of_the_crops_are_mirrored(drawn):
    flips = drawn[2]
    # binomial(3000, 1/2): mean 1500, standard deviation 27.4
    std = np.sqrt(DRAWS * 0.25)
    assert abs(flips.sum() - DRAWS / 2) < SIGMAS * std, f"{flips.sum()} of {DRAWS} crops mirrored"
    # and mirroring does not depend on the offset: about half mirrored on each side of the image
    _, lefts, _ = drawn
    for side in (lefts < OFFSETS // 2, lefts >= OFFSETS // 2):
        n = side.sum()
        assert abs(flips[side].sum() - n / 2) < SIGMAS * np.sqrt(n * 0.25)


# Colour statistics like ImageNet's, on the 0..255 scale of the prepared files: the
# eigenvalues 0.2175, 0.0188, 0.0045 that reproductions report on the [0, 1] scale, times
# 255^2, and their eigenvectors (as columns), made exactly orthonormal.
IMAGENET_EIGENVALUES = np.array([0.2175, 0.0188, 0.0045]) * 255 ** 2
IMAGENET_EIGENVECTORS = np.linalg.qr(np.array([[-0.5675, 0.7192, 0.4009],
                                               [-0.5808, -0.0045, -0.8140],
                                               [-0.5836, -0.6948, 0.4203]]))[0]
COLOUR_DRAWS = 20_000


def colour_shifts(seed=0):
    """The RGB shift of COLOUR_DRAWS augmented constant images: output minus input."""
    size, crop, batch, level = 8, 4, 2000, 100   # geometry does not matter here: small is fast
    constant = np.full((batch, size, size, 3), level, dtype=np.uint8)
    # the mean image equal to the input, so that what is left is the colour shift alone
    augmenter = Augmenter(np.full((size, size, 3), level), IMAGENET_EIGENVALUES, IMAGENET_EIGENVECTORS,
                          crop=crop)
    rng = np.random.default_rng(seed)
    shifts = []
    for _ in range(COLOUR_DRAWS // batch):
        x = augmenter.train_batch(constant, rng).astype(np.float64)      # (batch, 3, crop, crop)
        # one shift per image: every pixel of an image moves by the same RGB vector
        np.testing.assert_allclose(x, x[:, :, :1, :1] * np.ones_like(x), atol=1e-5)
        shifts.append(x[:, :, 0, 0])
    return np.concatenate(shifts)


def test_colour_shift_covariance_matches_the_eigen_decomposition():
    shifts = colour_shifts()
    values, vectors = IMAGENET_EIGENVALUES, IMAGENET_EIGENVECTORS
    # shift = P (a * l) / 255 with a_i ~ N(0, 0.1) (the eigenvalues taken on the [0, 1]
    # scale, the shift brought back to levels): covariance P diag((0.1 l / 255)^2) P^T
    variances = (0.1 * values / 255) ** 2
    expected = vectors @ np.diag(variances) @ vectors.T
    n = len(shifts)
    sample = shifts.T @ shifts / n               # the mean is known to be 0
    # For Gaussian shifts, entry (i, j) of the sample covariance has variance
    # (C_ii C_jj + C_ij^2) / n: with n = 20,000 about 1% of the diagonal.
    std = np.sqrt((np.outer(np.diag(expected), np.diag(expected)) + expected ** 2) / n)
    assert np.all(np.abs(sample - expected) < SIGMAS * std), (
        f"sample covariance\n{sample}\nexpected\n{expected}\n+- {SIGMAS} x\n{std}")
    # In the eigenvector basis the three components are independent, each with its own
    # variance (0.1 l_i / 255)^2: 5.5, 0.47 and 0.11 levels of standard deviation.
    components = shifts @ vectors
    sample_variances = (components ** 2).mean(axis=0)
    # a sample variance of n Gaussian values is off by sqrt(2 / n) = 1% of itself (1 sigma)
    np.testing.assert_array_less(np.abs(sample_variances / variances - 1), SIGMAS * np.sqrt(2 / n))
    np.testing.assert_array_less(np.abs(shifts.mean(axis=0)), SIGMAS * np.sqrt(np.diag(expected) / n))
