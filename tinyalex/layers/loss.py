"""Softmax cross-entropy: the loss the network is trained to minimise (paper, section 3.5).

The last layer's 1000 outputs (logits z) go through a softmax, p = exp(z) / sum(exp(z)),
and the loss of one image with label y is -log p[y], averaged over the batch.
"""

from ..backend import get_array_module
from .base import Layer


def softmax(logits):
    """Probabilities (N, K) from logits (N, K), on the logits' device.

    The largest logit of each row is subtracted before exp: that leaves the softmax
    unchanged and keeps exp from overflowing.
    """
    xp = get_array_module(logits)
    e = xp.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class SoftmaxCrossEntropy(Layer):
    """logits (N, K), labels (N,) integers in [0, K) -> mean loss (a Python float).

    ``forward(logits, labels, train=True)`` follows the contract of every layer, with the
    labels as a second input; with ``train=False`` it keeps nothing for backward.
    ``backward()`` returns d(loss)/d(logits) = (p - onehot(y)) / N.
    """

    def __init__(self):
        self.probs = self.labels = None

    def forward(self, logits, labels, train=True):
        xp = get_array_module(logits)
        labels = xp.asarray(labels)
        N, K = logits.shape
        if labels.shape != (N,):
            raise ValueError(f"labels must have shape ({N},), got {labels.shape}")
        if N and (int(labels.min()) < 0 or int(labels.max()) >= K):
            raise ValueError(f"labels must lie in [0, {K}), got values from {int(labels.min())} to {int(labels.max())}")
        # log softmax, stable as in softmax(): shift by the largest logit first
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        self.probs, self.labels = (xp.exp(log_probs), labels) if train else (None, None)
        return float(-log_probs[xp.arange(N), labels].mean())

    def backward(self, dloss=1.0):
        self.check_saved(self.probs)
        # forward: loss = -mean(log p[n, y_n]), p = softmax(logits)
        xp = get_array_module(self.probs)
        N = self.probs.shape[0]
        dlogits = self.probs.copy()
        dlogits[xp.arange(N), self.labels] -= 1
        dlogits *= dlogits.dtype.type(dloss / N)
        return dlogits
