"""The non-linearities of the paper's Figure 1 (section 3.1).

ReLU, f(x) = max(0, x), does not saturate: its gradient is 1 wherever the unit is active.
The paper reports that a four-layer network on CIFAR-10 reaches 25% training error six
times faster with ReLUs than with tanh, f(x) = tanh(x). Both are here so that the
comparison can be rerun.
"""

from ..backend import get_array_module
from .base import Layer


class ReLU(Layer):
    """out = max(0, x), elementwise; any shape."""

    def __init__(self):
        self.active = None

    def forward(self, x, train=True):
        self.active = (x > 0) if train else None
        return get_array_module(x).maximum(x, 0)

    def backward(self, dout):
        self.check_saved(self.active)
        # forward: out = max(0, x); the gradient passes only where x > 0
        return dout * self.active


class Tanh(Layer):
    """out = tanh(x), elementwise; any shape."""

    def __init__(self):
        self.out = None

    def forward(self, x, train=True):
        out = get_array_module(x).tanh(x)
        self.out = out if train else None
        return out

    def backward(self, dout):
        self.check_saved(self.out)
        # forward: out = tanh(x), and d tanh(x)/dx = 1 - tanh(x)^2
        return dout * (1 - self.out * self.out)
