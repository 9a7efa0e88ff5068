"""Central-difference gradient checks in float64, one relative-error number per check."""

import numpy as np

from tinyalex.testing import rel_error  # noqa: F401  (the tests import it from here, beside the checks)


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


def sample(array, count, rng):
    """At most ``count`` distinct flat indices of ``array``."""
    return rng.choice(array.size, size=min(count, array.size), replace=False)


def check_layer(layer, x, rng, samples=None, eps=1e-6, before_forward=lambda: None):
    """Largest relative error between backward and central differences, over the input
    and every parameter of ``layer``, for the loss sum(forward(x) * g) with a random g.

    ``before_forward`` runs before every forward pass (to replay a dropout mask).
    """
    before_forward()
    out = layer.forward(x)
    g = rng.standard_normal(out.shape)

    def loss():
        before_forward()
        return float(np.sum(layer.forward(x) * g))

    before_forward()
    layer.forward(x)
    dx = layer.backward(g)
    analytic = {"x": (x, dx)}
    for name, param, grad in layer.parameters():
        analytic[name] = (param, grad.copy())
    errors = {}
    for name, (array, grad) in analytic.items():
        idx = None if samples is None else sample(array, samples, rng)
        numeric = numerical_gradient(loss, array, eps, idx)
        errors[name] = rel_error(numeric, grad.reshape(-1) if idx is None else grad.reshape(-1)[idx])
    return errors
