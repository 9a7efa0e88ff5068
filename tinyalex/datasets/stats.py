"""Colour statistics of the training set: the mean image and the PCA of RGB values.

Mean image (paper, section 2): the only preprocessing besides the resize is
"subtracting the mean activity over the training set from each pixel", i.e.
one mean per pixel position and channel, a (256, 256, 3) array.

PCA colour statistics (paper, section 4.1): the 3x3 covariance matrix of the
RGB values of all training pixels, and its eigenvalues l1 >= l2 >= l3 and
eigenvectors p1, p2, p3. The colour augmentation shifts images along p_i by
amounts scaled by l_i.

Scale: pixel values 0..255, so the eigenvalues are variances in (0..255 levels)^2.
Divide them by 255^2 for the 0..1 scale. Eigenvectors are unit length and do
not depend on the scale.

How they are computed: from running sums over the images, never holding more
than one image at a time,

    pixel_sum[y, x, c]   = sum over images of image[y, x, c]
    rgb_sum[c]           = sum over every pixel of every image of its value c
    rgb_outer_sum[c, d]  = sum over every pixel of value_c * value_d
    pixel_count          = images * 256 * 256

    mean_image = pixel_sum / images
    rgb_mean   = rgb_sum / pixel_count
    covariance = rgb_outer_sum / pixel_count - outer(rgb_mean, rgb_mean)

(the population covariance: divided by the count, not count - 1). Every term
of these sums is an integer, and float64 holds integers exactly up to
2^53 ~ 9.0e15; the largest sum for ImageNet, rgb_outer_sum, stays below
1.28e6 images * 65536 pixels * 255^2 ~ 5.5e15. So the sums are exact whatever
the order of additions, and a preparation that was interrupted and resumed
gives bit-for-bit the same statistics as one that ran straight through.
"""

import numpy as np


def rgb_moments(image):
    """One image's share of the RGB sums -> (sum over pixels (3,), sum of outer products (3, 3)).

    Data preparation calls this in the decoding processes, which spreads its
    cost (a 65536x3 matrix product) over all processes.
    """
    rgb = image.reshape(-1, 3).astype(np.float64)
    return rgb.sum(axis=0), rgb.T @ rgb


class ColourStatistics:
    """Running sums over training images, and the statistics made from them."""

    def __init__(self, size=256):
        self.image_count = 0
        self.pixel_sum = np.zeros((size, size, 3), dtype=np.float64)
        self.rgb_sum = np.zeros(3, dtype=np.float64)
        self.rgb_outer_sum = np.zeros((3, 3), dtype=np.float64)

    def add(self, image, moments=None):
        """Adds one uint8 image (size, size, 3); `moments` is rgb_moments(image) if already known."""
        rgb_sum, rgb_outer_sum = moments if moments is not None else rgb_moments(image)
        self.image_count += 1
        self.pixel_sum += image
        self.rgb_sum += rgb_sum
        self.rgb_outer_sum += rgb_outer_sum

    def state(self):
        """The running sums as a dict of arrays, to save in a checkpoint."""
        return {
            "image_count": np.array(self.image_count),
            "pixel_sum": self.pixel_sum,
            "rgb_sum": self.rgb_sum,
            "rgb_outer_sum": self.rgb_outer_sum,
        }

    @classmethod
    def from_state(cls, state):
        """The running sums that state() returned (a dict or a loaded .npz)."""
        stats = cls(size=state["pixel_sum"].shape[0])
        stats.image_count = int(state["image_count"])
        stats.pixel_sum = np.array(state["pixel_sum"], dtype=np.float64)
        stats.rgb_sum = np.array(state["rgb_sum"], dtype=np.float64)
        stats.rgb_outer_sum = np.array(state["rgb_outer_sum"], dtype=np.float64)
        return stats

    def mean_image(self):
        """Mean over images of each pixel and channel -> float32 (size, size, 3), 0..255."""
        return (self.pixel_sum / self.image_count).astype(np.float32)

    def pixel_count(self):
        return self.image_count * self.pixel_sum.shape[0] * self.pixel_sum.shape[1]

    def rgb_mean(self):
        """Mean R, G, B over all pixels -> float64 (3,)."""
        return self.rgb_sum / self.pixel_count()

    def rgb_covariance(self):
        """3x3 covariance of RGB values over all pixels -> float64 (3, 3)."""
        mean = self.rgb_mean()
        return self.rgb_outer_sum / self.pixel_count() - np.outer(mean, mean)

    def rgb_eigen(self):
        """Eigen-decomposition of the covariance -> (eigenvalues (3,), eigenvectors (3, 3)).

        See rgb_eigen_of(); column i of the eigenvectors belongs to eigenvalue i.
        """
        return rgb_eigen_of(self.rgb_covariance())


def rgb_eigen_of(covariance):
    """Eigenvalues, largest first, and unit eigenvectors as columns.

    An eigenvector's sign is arbitrary; this one makes the component of
    largest magnitude of each eigenvector positive, so results are comparable.
    """
    values, vectors = np.linalg.eigh(covariance)  # ascending order
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    largest = vectors[np.argmax(np.abs(vectors), axis=0), np.arange(3)]
    return values, vectors * np.sign(largest)
