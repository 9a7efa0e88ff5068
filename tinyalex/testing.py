"""Helpers that the tests and the benchmarks share: one error number for every check, and
inputs on which max-pooling has no near-ties."""

import numpy as np

from .backend import to_numpy


def rel_error(a, b):
    """||a - b|| / max(||a||, ||b||): 0 for equal arrays, about 1 for unrelated ones.

    ``a`` and ``b`` may live on any device; the error is computed in float64 on the CPU.
    """
    a = np.asarray(to_numpy(a), dtype=np.float64).ravel()
    b = np.asarray(to_numpy(b), dtype=np.float64).ravel()
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def tie_free(shape, rng, dtype=np.float64):
    """Values that differ pairwise by at least 0.01: no max-pool window has a near-tie, so
    every framework and every path picks the same winner."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01 - 1.0).astype(dtype)


def numerical_gradient(loss, array, eps=1e-6, indices=None):
    """d loss() / d array at ``indices`` (all entries by default) by central differences.

    ``array`` is perturbed in place and restored, so it may be a layer's parameter.
    """
    flat = array.reshape(-1)
    assert np.shares_memory(flat, array), "the array must be contiguous to be perturbed in place"
    indices = range(flat.size) if indices is None else indices
    grad = []
    for i in indices:
        original = flat[i]
        flat[i] = original + eps
        plus = loss()
        flat[i] = original - eps
        minus = loss()
        flat[i] = original
        grad.append((plus - minus) / (2 * eps))
    return np.array(grad)
