"""Solutions to the exercises of docs/data.md. Run: python docs/exercises/data.py"""

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from tinyalex.data import PreparedSplit
from tinyalex.datasets import write_prepared
from tinyalex.datasets.images import resize_and_crop
from tinyalex.datasets.stats import ColourStatistics


def exercise_1():
    """A 400 x 300 photo with a 40-pixel blue band down its left edge: what does preparation keep?"""
    pixels = np.zeros((300, 400, 3), dtype=np.uint8)
    pixels[:, :, 0] = 200                 # red
    pixels[:, :40] = (0, 0, 255)          # blue band
    kept = np.asarray(resize_and_crop(Image.fromarray(pixels), 256))
    assert kept.shape == (256, 256, 3)
    # the shorter side becomes 256 (400 x 300 -> 341 x 256), then the central square is cut out,
    # 42 columns from the left: the band, 34 columns wide after scaling, is gone
    assert kept[:, :, 2].max() < 50


def exercise_2():
    """Write six images to a prepared file and read images 4 and 1: in which order do they come back?"""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 0, 1, 2])
    with tempfile.TemporaryDirectory() as folder:
        path = write_prepared(Path(folder) / "train.h5", images, labels, [f"{i}.jpg" for i in range(6)],
                              ["n0", "n1", "n2"], ["zero", "one", "two"], split="train")
        split = PreparedSplit(path)
        try:
            got, got_labels = split.read([4, 1])
            assert len(split) == 6 and split.num_classes == 3 and split.stored_size == 32
            assert got.dtype == np.uint8 and got.shape == (2, 32, 32, 3)
            assert np.array_equal(got, images[[1, 4]]) and got_labels.tolist() == [1, 1]   # sorted: 1, then 4
        finally:
            split.close()


def exercise_3():
    """Compute the mean image and the RGB covariance of a few images by hand and compare them with
    ColourStatistics; check that the eigenvectors are orthonormal and the eigenvalues sum to the trace."""
    images = np.random.default_rng(1).integers(0, 256, size=(5, 16, 16, 3), dtype=np.uint8)
    stats = ColourStatistics(size=16)
    for image in images:
        stats.add(image)
    assert np.allclose(stats.mean_image(), images.mean(axis=0), atol=1e-4)
    pixels = images.reshape(-1, 3).astype(np.float64)
    assert np.allclose(stats.rgb_covariance(), np.cov(pixels, rowvar=False, bias=True))
    values, vectors = stats.rgb_eigen()
    assert np.allclose(vectors.T @ vectors, np.eye(3))
    assert abs(values.sum() - np.trace(stats.rgb_covariance())) < 1e-6 * values.sum()
    assert values[0] >= values[1] >= values[2]


if __name__ == "__main__":
    from gradient_check import run
    run(sys.modules[__name__])
