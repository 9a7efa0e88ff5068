"""Central-difference gradient checks in float64, one relative-error number per check."""

import numpy as np

from tinyalex.testing import numerical_gradient, rel_error  # noqa: F401  (the tests import them from here)


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
