"""Dropout (paper, section 4.2).

During training each output of fc6 and fc7 is set to zero with probability p = 0.5, so
that a neuron cannot rely on the presence of particular other neurons. The paper keeps
all neurons at test time and multiplies their outputs by 0.5. tinyalex uses *inverted*
dropout, which is equivalent: the kept outputs are multiplied by 1 / (1 - p) = 2 during
training, and evaluation is the identity.

Each Dropout layer has its own seed. The mask of the t-th training call is drawn from a
generator seeded with (seed, t), so the masks are reproducible, a resumed run draws the
masks an uninterrupted one would (only ``calls`` needs saving), and a gradient check can
replay a mask by resetting ``calls``.
"""

import numpy as np

from ..backend import get_array_module, is_gpu_array
from .base import Layer


def uniform(x, seed, counter):
    """Uniform [0, 1) numbers shaped like ``x``, on its device, from the stream (seed, counter)."""
    if is_gpu_array(x):
        import cupy
        state = int(np.random.SeedSequence([seed, counter]).generate_state(1, np.uint64)[0])
        return cupy.random.RandomState(state).random_sample(x.shape, dtype=x.dtype)
    return np.random.default_rng([seed, counter]).random(x.shape, dtype=x.dtype)


class Dropout(Layer):
    """out = x * mask, mask = (u >= p) / (1 - p) with u uniform; identity in evaluation. Any shape."""

    def __init__(self, p=0.5, seed=0):
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p, self.seed, self.calls = p, seed, 0
        self.mask = None

    def forward(self, x, train=True):
        self.mask = None
        if not train or self.p == 0:
            return x
        xp = get_array_module(x)
        keep = uniform(x, self.seed, self.calls) >= self.p
        self.calls += 1
        self.mask = keep.astype(x.dtype) * xp.asarray(1 / (1 - self.p), dtype=x.dtype)
        return x * self.mask

    def backward(self, dout):
        # forward: out = x * mask in training; out = x in evaluation (and with p = 0), which
        # needs nothing kept: its gradient passes unchanged
        return dout if self.mask is None else dout * self.mask

    def __repr__(self):
        return f"Dropout(p={self.p})"
