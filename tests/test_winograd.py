"""Winograd's F(2x2, 3x3) (tinyalex/engines/winograd.py) against the direct convolution.

The transforms' kernels are checked against their NumPy twins in test_kernels.py; here the
algorithm itself: the same outputs and gradients as the loops of test_layers.py and as
im2col, in float64 to rounding, on even and odd output sizes.
"""

import numpy as np
import pytest
from gradcheck import check_layer, rel_error
from test_layers import conv_reference

from tinyalex import AlexNet
from tinyalex.engines import WinogradConv2D, winograd
from tinyalex.layers import Conv2D

GEOMETRIES = [(7, 7, 1), (13, 13, 1), (8, 5, 1), (6, 9, 0), (5, 6, 2), (1, 1, 1), (3, 3, 0)]   # H, W, pad
PATHS = ["numpy", "native"]   # the transforms as NumPy formulas, or as compiled kernels


@pytest.fixture
def rng():
    return np.random.default_rng(5)


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    """Run the transforms as the NumPy formulas (the layer as constructed) or the native kernels."""
    if request.param == "native":
        request.getfixturevalue("cxx")
    return request.param


def winograd_conv(in_channels, out_channels, pad, rng, path="numpy", **kwargs):
    conv = WinogradConv2D(in_channels, out_channels, 3, 1, pad, weight_std=1.0, rng=rng, dtype="float64", **kwargs)
    conv.bias[:] = rng.standard_normal(out_channels)
    if path == "native":
        conv.cpu_kernels = ("forward", "evaluation", "backward")
    return conv


@pytest.mark.parametrize("height,width,pad", GEOMETRIES)
def test_winograd_forward_matches_loops(height, width, pad, path, rng):
    conv = winograd_conv(3, 4, pad, rng, path)
    x = rng.standard_normal((2, 3, height, width))
    assert rel_error(conv.forward(x), conv_reference(x, conv.weight, conv.bias, 1, pad)) < 1e-12


@pytest.mark.parametrize("height,width,pad", [(7, 7, 1), (6, 5, 0), (4, 5, 2)])
def test_winograd_gradients(height, width, pad, path, rng):
    conv = winograd_conv(3, 4, pad, rng, path)
    errors = check_layer(conv, rng.standard_normal((2, 3, height, width)), rng)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("input_grad", [True, False])
def test_winograd_and_im2col_give_the_same_gradients(input_grad, path, rng):
    fast = winograd_conv(5, 6, 1, rng, path, input_grad=input_grad)
    direct = Conv2D(5, 6, 3, 1, 1, input_grad=input_grad, dtype="float64")
    direct.weight, direct.bias = fast.weight, fast.bias
    x = rng.standard_normal((3, 5, 13, 11))
    out = fast.forward(x)
    assert fast.cols.shape == (16, 5, 3 * 7 * 6)      # the transformed input, kept for backward
    assert rel_error(out, direct.forward(x)) < 1e-12
    g = rng.standard_normal(out.shape)
    dx_fast, dx_direct = fast.backward(g), direct.backward(g)
    assert (dx_fast is None) == (not input_grad)
    if input_grad:
        assert rel_error(dx_fast, dx_direct) < 1e-12
    assert rel_error(fast.dweight, direct.dweight) < 1e-12 and rel_error(fast.dbias, direct.dbias) < 1e-12
    assert fast.cols is None      # nothing held after backward


def test_winograd_in_float32_stays_close_to_float64_at_alexnets_sizes(rng):
    # conv3 of one column at a small batch: the transforms add rounding of their own
    conv = WinogradConv2D(256, 192, 3, 1, 1, weight_std=0.01, rng=rng, dtype="float64")
    x = np.maximum(rng.standard_normal((2, 256, 13, 13)), 0)
    exact = Conv2D(256, 192, 3, 1, 1, dtype="float64")
    exact.weight, exact.bias = conv.weight, conv.bias
    single = WinogradConv2D(256, 192, 3, 1, 1)
    single.weight, single.bias = conv.weight.astype(np.float32), conv.bias.astype(np.float32)
    assert rel_error(single.forward(x.astype(np.float32)), exact.forward(x)) < 1e-5


def test_the_transforms_are_the_adjoints_their_backward_uses(rng):
    # <T(x), c> == <x, T*(c)>: what makes backward's algebra exact
    x = rng.standard_normal((2, 3, 7, 6))
    V = winograd.transform_input(x, 1)
    c = rng.standard_normal(V.shape)
    assert abs(np.sum(V * c) - np.sum(x * winograd.transform_input_adjoint(c, x.shape, 1))) < 1e-10
    M = rng.standard_normal((16, 4, 2 * 4 * 3))
    dy = rng.standard_normal((2, 4, 7, 6))
    y = winograd.transform_output(M, np.zeros(4), dy.shape)
    assert abs(np.sum(y * dy) - np.sum(M * winograd.transform_output_adjoint(dy))) < 1e-10
    w = rng.standard_normal((4, 3, 3, 3))
    dU = rng.standard_normal((16, 4, 3))
    assert abs(np.sum(winograd.transform_weight(w) * dU) - np.sum(w * winograd.transform_weight_adjoint(dU))) < 1e-10


def convs(engine):
    model = AlexNet(num_classes=5, devices="cpu", image_size=67, channels=(8, 8, 12, 12, 8), hidden=16, engine=engine)
    return {name.split(".")[-1]: type(layer).__name__ for name, layer in model.column_a.named_layers()
            if isinstance(layer, Conv2D)}


def test_the_fast_engine_runs_winograd_where_it_applies_and_is_compiled(cxx, monkeypatch):
    assert convs("fast") == {"conv1": "RebuildingConv2D", "conv2": "Conv2D", "conv3": "WinogradConv2D",
                             "conv4": "WinogradConv2D", "conv5": "WinogradConv2D"}   # 11x11/4 and 5x5: im2col
    assert set(convs("plain").values()) == {"Conv2D"}
    monkeypatch.setattr("tinyalex.kernels.native.find_compiler", lambda: None)   # NumPy's transforms: slower
    assert "WinogradConv2D" not in convs("fast").values()


def test_winograd_refuses_a_convolution_it_cannot_run():
    with pytest.raises(ValueError, match="3 x 3 kernels with stride 1"):
        WinogradConv2D(3, 4, 5, 1, 2)
    with pytest.raises(ValueError, match="3 x 3 kernels with stride 1"):
        WinogradConv2D(3, 4, 3, 2, 1)
