"""Fully-connected layers fc6, fc7 and fc8, and the flattening in front of them."""

from ..backend import get_array_module
from .base import Layer, check_dtype, initial_parameters


class Linear(Layer):
    """out = x @ weight.T + bias.

    x (N, in_features) -> out (N, out_features); ``weight`` (out_features, in_features),
    ``bias`` (out_features,), initialised as the paper does (section 5).
    """

    param_names = ("weight", "bias")

    def __init__(self, in_features, out_features, *, weight_std=0.01, bias=0.0, rng=None,
                 device="cpu", dtype="float32"):
        self.in_features, self.out_features = in_features, out_features
        self.weight, self.bias = initial_parameters(
            (out_features, in_features), out_features, weight_std, bias, rng, device, dtype)
        self.dweight = self.dbias = None
        self.x = None

    def forward(self, x, train=True):
        check_dtype(x, self.weight, self)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self!r} expects input of shape (N, {self.in_features}), got {x.shape}")
        self.x = x if train else None
        out = x @ self.weight.T
        out += self.bias
        return out

    def backward(self, dout):
        self.check_saved(self.x)
        # forward: out = x @ W.T + b
        self.dweight = dout.T @ self.x
        self.dbias = dout.sum(axis=0)
        dx = dout @ self.weight
        self.x = None
        return dx

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), channel-major, as Caffe and PyTorch flatten."""

    def __init__(self):
        self.x_shape = None

    def forward(self, x, train=True):
        self.x_shape = x.shape if train else None
        return get_array_module(x).ascontiguousarray(x).reshape(x.shape[0], -1)

    def backward(self, dout):
        self.check_saved(self.x_shape)
        return dout.reshape(self.x_shape)
