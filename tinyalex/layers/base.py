"""What every layer shares: parameters with their gradients, and the paper's initialisation."""

import numpy as np

from ..backend import array_module, check_device, on_device


class Layer:
    """A layer is a plain object with ``forward`` and ``backward``.

    ``forward`` keeps what ``backward`` needs on ``self``; ``backward`` takes the gradient
    of the loss with respect to the layer's output and returns the gradient with respect
    to its input, filling ``d<name>`` for each parameter ``<name>`` on the way.
    """

    param_names = ()

    def parameters(self):
        """Yield ``(name, parameter, gradient)`` for each parameter of this layer."""
        for name in self.param_names:
            yield name, getattr(self, name), getattr(self, "d" + name)

    def __repr__(self):
        return f"{type(self).__name__}()"


def initial_parameters(weight_shape, bias_size, weight_std, bias, rng, device, dtype):
    """Weights drawn from N(0, weight_std^2) and a constant bias (paper, section 5).

    The draws are made by NumPy on the CPU and then copied, so the same ``rng`` gives the
    same weights on every device.
    """
    rng = np.random.default_rng() if rng is None else rng
    weight = rng.standard_normal(weight_shape, dtype=np.dtype(dtype)) * np.dtype(dtype).type(weight_std)
    bias = np.full(bias_size, bias, dtype=dtype)
    device = check_device(device)
    xp = array_module(device)
    with on_device(device):
        return xp.asarray(weight), xp.asarray(bias)


def check_dtype(x, parameter, layer):
    """Refuse an input whose dtype differs from the parameters' (a silent upcast is slow)."""
    if x.dtype != parameter.dtype:
        raise TypeError(f"{layer!r} holds {parameter.dtype} parameters but got a {x.dtype} input; "
                        f"convert the input with .astype({parameter.dtype.name})")
