"""Layers on the CPU: forward against plain-loop references, backward against central
differences (float64, one relative error per check, at most 1e-6).

Every test runs twice: on the NumPy path alone (the layers as constructed), and with the
compiled kernels (tinyalex.kernels.native) for every pass of every layer, where a compiler
is there."""

import threading
import time

import numpy as np
import pytest
from gradcheck import check_layer, rel_error

from tinyalex.layers import (LRN, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU, SoftmaxCrossEntropy,
                             Tanh, col2im, im2col)
from tinyalex.engines import RebuildingConv2D, SharedImageCols
from tinyalex.engines.memory import SharedMatrix
from tinyalex.layers.base import Layer
from tinyalex.layers.loss import softmax
from tinyalex.kernels.native import find_compiler
from tinyalex.testing import tie_free

TOLERANCE = 1e-6


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True, params=["numpy", "native"])
def cpu_path(request, monkeypatch):
    if request.param == "native":
        if find_compiler() is None:
            pytest.skip("the compiled CPU kernels need a C++ compiler")
        monkeypatch.setattr(Layer, "cpu_kernels", ("forward", "evaluation", "backward"))
    return request.param


# Plain-loop references, written independently of the layers ---------------------------------

def conv_reference(x, w, b, stride, pad):
    N, C, H, W = x.shape
    O, _, k, _ = w.shape
    xp = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    xp[:, :, pad:pad + H, pad:pad + W] = x
    OH, OW = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    out = np.zeros((N, O, OH, OW))
    for n in range(N):
        for o in range(O):
            for i in range(OH):
                for j in range(OW):
                    patch = xp[n, :, i * stride:i * stride + k, j * stride:j * stride + k]
                    out[n, o, i, j] = np.sum(patch * w[o]) + b[o]
    return out


def lrn_reference(x, size, k, alpha, beta):
    N, C, H, W = x.shape
    out = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for y in range(H):
                for z in range(W):
                    total = 0.0
                    for j in range(max(0, c - size // 2), min(C - 1, c + size // 2) + 1):
                        total += x[n, j, y, z] ** 2
                    out[n, c, y, z] = x[n, c, y, z] / (k + alpha * total) ** beta
    return out


def maxpool_reference(x, size, stride, ceil_mode=False):
    """PyTorch's documented rule: floor((H - size) / stride) + 1 windows, or ceil(...) + 1
    with ceil_mode as long as the last window starts inside the input; a window that runs
    past the edge takes the maximum of what it covers."""
    N, C, H, W = x.shape

    def count(n):
        windows = (-(-(n - size) // stride) if ceil_mode else (n - size) // stride) + 1
        return windows - 1 if (windows - 1) * stride >= n else windows

    out = np.zeros((N, C, count(H), count(W)))
    for n in range(N):
        for c in range(C):
            for i in range(count(H)):
                for j in range(count(W)):
                    out[n, c, i, j] = x[n, c, i * stride:i * stride + size, j * stride:j * stride + size].max()
    return out


# Convolution -------------------------------------------------------------------------------

@pytest.mark.parametrize("kernel_size,stride,pad", [(3, 1, 0), (3, 2, 1), (5, 1, 2), (11, 4, 0)])
def test_conv_forward_matches_loops(kernel_size, stride, pad, rng):
    size = 19 if kernel_size == 11 else 7
    conv = Conv2D(3, 4, kernel_size, stride, pad, weight_std=1.0, bias=0.5, rng=rng, dtype="float64")
    conv.bias[:] = rng.standard_normal(4)
    x = rng.standard_normal((2, 3, size, size))
    expected = conv_reference(x, conv.weight, conv.bias, stride, pad)
    assert rel_error(conv.forward(x), expected) < 1e-12


def test_col2im_is_the_adjoint_of_im2col(rng):
    # <im2col(x), c> == <x, col2im(c)> for every x and c: the defining property of an adjoint
    x = rng.standard_normal((2, 3, 9, 9))
    cols = im2col(x, 3, 2, 1)
    c = rng.standard_normal(cols.shape)
    assert abs(np.sum(cols * c) - np.sum(x * col2im(c, x.shape, 3, 2, 1))) < 1e-10


@pytest.mark.parametrize("kernel_size,stride,pad", [(3, 1, 1), (3, 2, 1), (5, 1, 2), (4, 3, 0)])
def test_conv_gradients(kernel_size, stride, pad, rng):
    conv = Conv2D(3, 4, kernel_size, stride, pad, weight_std=1.0, rng=rng, dtype="float64")
    conv.bias[:] = rng.standard_normal(4)
    x = rng.standard_normal((2, 3, 7, 7))
    errors = check_layer(conv, x, rng)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < TOLERANCE, errors


@pytest.mark.parametrize("input_grad", [True, False])
def test_conv_rebuilding_its_im2col_matrix_gives_the_same_gradients(input_grad, rng):
    kept = Conv2D(3, 4, 3, 2, 1, input_grad=input_grad, weight_std=1.0, rng=rng, dtype="float64")
    rebuilt = RebuildingConv2D(3, 4, 3, 2, 1, input_grad=input_grad, dtype="float64")
    rebuilt.weight, rebuilt.bias = kept.weight, kept.bias
    x = rng.standard_normal((5, 3, 9, 9))
    g = rng.standard_normal(kept.forward(x).shape)
    rebuilt.forward(x)
    assert kept.cols is not None and rebuilt.cols is None    # one keeps the matrix, the other only x
    dx_kept, dx_rebuilt = kept.backward(g), rebuilt.backward(g)
    if input_grad:
        assert rel_error(dx_kept, dx_rebuilt) == 0
    assert rel_error(kept.dweight, rebuilt.dweight) == 0 and rel_error(kept.dbias, rebuilt.dbias) == 0


def test_conv_without_input_gradient_still_fills_parameter_gradients(rng):
    conv = Conv2D(3, 4, 3, weight_std=1.0, rng=rng, dtype="float64")
    x = rng.standard_normal((2, 3, 5, 5))
    g = rng.standard_normal(conv.forward(x).shape)
    expected = conv.backward(g), conv.dweight.copy()
    conv.input_grad = False
    conv.forward(x)
    assert conv.backward(g) is None
    assert rel_error(conv.dweight, expected[1]) == 0


def test_conv_on_a_size_the_window_does_not_tile_drops_the_last_rows(rng):
    # 6x6, k=3, s=2: windows start at 0 and 2 (PyTorch's floor rule), the last row and
    # column are never read
    conv = Conv2D(3, 4, 3, stride=2, weight_std=1.0, rng=rng, dtype="float64")
    x = rng.standard_normal((1, 3, 6, 6))
    out = conv.forward(x)
    assert out.shape == (1, 4, 2, 2)
    assert rel_error(out, conv_reference(x, conv.weight, conv.bias, 2, 0)) < 1e-12
    errors = check_layer(conv, x, rng)
    assert max(errors.values()) < TOLERANCE, errors


def test_conv_rejects_bad_geometry_and_dtype(rng):
    conv = Conv2D(3, 4, 3, stride=2, dtype="float64")
    with pytest.raises(ValueError, match="does not fit"):
        conv.forward(np.zeros((1, 3, 2, 2)))
    with pytest.raises(ValueError, match="input channels"):
        conv.forward(np.zeros((1, 2, 7, 7)))
    with pytest.raises(TypeError, match="float32"):
        conv.forward(np.zeros((1, 3, 7, 7), dtype=np.float32))


# ReLU and tanh -----------------------------------------------------------------------------

@pytest.mark.parametrize("layer", [ReLU(), Tanh()], ids=["relu", "tanh"])
def test_activation_gradients(layer, rng):
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the ReLU kink, where no derivative exists
    errors = check_layer(layer, x, rng)
    assert errors["x"] < TOLERANCE


def test_activation_values():
    x = np.array([-2.0, -0.0, 0.0, 3.0])
    np.testing.assert_array_equal(ReLU().forward(x), [0, 0, 0, 3])
    np.testing.assert_allclose(Tanh().forward(x), np.tanh(x))


# Local response normalization --------------------------------------------------------------

@pytest.mark.parametrize("size,k,alpha,beta", [(5, 2.0, 1e-4, 0.75), (5, 1.0, 1.0, 0.75), (3, 1.0, 1.0, 0.5),
                                               (7, 0.5, 2.0, 1.0)])
@pytest.mark.parametrize("channels", [1, 3, 8])
def test_lrn_forward_matches_loops(size, k, alpha, beta, channels, rng):
    # alpha = 1, k = 1 make every term of the window matter: with the paper's constants a
    # wrong window changes the output by less than a part in 1e4 and would pass unnoticed
    x = rng.standard_normal((2, channels, 3, 4))
    lrn = LRN(size, k, alpha, beta)
    assert rel_error(lrn.forward(x), lrn_reference(x, size, k, alpha, beta)) < 1e-12


def test_lrn_window_is_centred_and_clipped():
    # one large channel among ones: with alpha = 1, k = 1 and beta = 1, out = x / scale
    # shows which channels each window covered
    x = np.ones((1, 7, 1, 1))
    x[0, 3] = 4.0
    out = LRN(size=5, k=1.0, alpha=1.0, beta=1.0).forward(x)
    scale = (x / out).ravel()
    # channel c sums the squares over channels [c-2, c+2] clipped to [0, 6]: the ones add 1
    # each, channel 3 adds 16; so scale = k + (channels in the window) + 15 if 3 is among them.
    # Channels 0 and 6 are 3 away from channel 3: their windows must not reach it.
    expected = [1 + 3, 1 + 4 + 15, 1 + 5 + 15, 1 + 5 + 15, 1 + 5 + 15, 1 + 4 + 15, 1 + 3]
    np.testing.assert_allclose(scale, expected)
    x[0, 3] = 1.0
    x[0, 0] = 4.0  # now only channels 0, 1 and 2 see the large value
    scale = (x / LRN(size=5, k=1.0, alpha=1.0, beta=1.0).forward(x)).ravel()
    np.testing.assert_allclose(scale, [1 + 3 + 15, 1 + 4 + 15, 1 + 5 + 15, 1 + 5, 1 + 5, 1 + 4, 1 + 3])


@pytest.mark.parametrize("size,k,alpha,beta", [(5, 2.0, 1e-4, 0.75), (5, 1.0, 1.0, 0.75), (3, 0.5, 2.0, 1.0)])
def test_lrn_gradients(size, k, alpha, beta, rng):
    lrn = LRN(size, k, alpha, beta)
    errors = check_layer(lrn, rng.standard_normal((2, 7, 3, 3)), rng)
    assert errors["x"] < TOLERANCE


def test_lrn_rejects_even_window():
    with pytest.raises(ValueError, match="odd"):
        LRN(size=4)


# Max-pooling -------------------------------------------------------------------------------

POOLINGS = [(3, 2, 9), (2, 2, 8), (3, 1, 7)]  # size, stride, input size


@pytest.mark.parametrize("size,stride,width", POOLINGS)
def test_maxpool_forward_matches_loops(size, stride, width, rng):
    x = tie_free((2, 3, width, width), rng)
    pool = MaxPool2D(size, stride)
    out = pool.forward(x)
    np.testing.assert_array_equal(out, maxpool_reference(x, size, stride))
    # argmax points at the winner inside its plane
    planes = x.reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(planes, pool.argmax.reshape(2, 3, -1), axis=2),
                                  out.reshape(2, 3, -1))


@pytest.mark.parametrize("size,stride,width", POOLINGS)
def test_maxpool_gradients(size, stride, width, rng):
    x = tie_free((2, 3, width, width), rng)
    errors = check_layer(MaxPool2D(size, stride), x, rng, eps=1e-4)
    assert errors["x"] < TOLERANCE


@pytest.mark.parametrize("ceil_mode,expected_shape", [(False, (3, 5)), (True, (4, 5))])
def test_maxpool_of_a_size_the_window_does_not_tile(ceil_mode, expected_shape, rng):
    # 8x11 with 3/2: PyTorch gives 3x5, and 4x5 with ceil_mode (the last row window covers
    # rows 6..7 only)
    x = tie_free((2, 3, 8, 11), rng)
    pool = MaxPool2D(3, 2, ceil_mode=ceil_mode)
    out = pool.forward(x)
    assert out.shape[2:] == expected_shape
    np.testing.assert_array_equal(out, maxpool_reference(x, 3, 2, ceil_mode))
    errors = check_layer(MaxPool2D(3, 2, ceil_mode=ceil_mode), x, rng, eps=1e-4)
    assert errors["x"] < TOLERANCE


def test_maxpool_ceil_mode_on_integers():
    # the edge windows of ceil_mode must not need a float -inf
    x = np.arange(2 * 8 * 11).reshape(1, 2, 8, 11)
    out = MaxPool2D(3, 2, ceil_mode=True).forward(x)
    np.testing.assert_array_equal(out, maxpool_reference(x, 3, 2, ceil_mode=True))


def test_maxpool_overlap_accumulates():
    # a single large value at (2, 2) wins all four overlapping 3x3 windows of a 5x5 input
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    pool = MaxPool2D(3, 2)
    pool.forward(x)
    dx = pool.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    assert dx[0, 0, 2, 2] == 10.0 and dx.sum() == 10.0


def test_maxpool_shapes_of_alexnet():
    sizes = [MaxPool2D().forward(np.zeros((1, 1, s, s))).shape[-1] for s in (55, 27, 13)]
    assert sizes == [27, 13, 6]


# Fully connected, flatten ------------------------------------------------------------------

def test_linear_forward_and_gradients(rng):
    fc = Linear(6, 4, weight_std=1.0, rng=rng, dtype="float64")
    fc.bias[:] = rng.standard_normal(4)
    x = rng.standard_normal((3, 6))
    np.testing.assert_allclose(fc.forward(x), np.einsum("ni,oi->no", x, fc.weight) + fc.bias)
    errors = check_layer(fc, x, rng)
    assert max(errors.values()) < TOLERANCE, errors


def test_flatten_is_channel_major(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    flat = Flatten().forward(x)
    assert flat.shape == (2, 12) and flat[1, 4] == x[1, 1, 0, 0]


# Dropout -----------------------------------------------------------------------------------

def test_dropout_statistics_and_evaluation(rng):
    drop = Dropout(0.5, seed=7)
    x = np.ones((200, 500))
    out = drop.forward(x)
    assert set(np.unique(out)) == {0.0, 2.0}          # inverted dropout: kept units are doubled
    assert abs((out == 0).mean() - 0.5) < 0.01         # 100,000 draws: the std of the mean is 0.0016
    assert drop.forward(x, train=False) is x           # evaluation is the identity
    np.testing.assert_array_equal(drop.backward(x), x)


def test_dropout_masks_are_reproducible_and_change_every_call():
    x = np.ones((10, 100))
    first, second = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    a1, a2 = first.forward(x), first.forward(x)
    b1 = second.forward(x)
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a1, a2)
    assert not np.array_equal(a1, Dropout(0.5, seed=4).forward(x))


def test_dropout_gradients(rng):
    drop = Dropout(0.5, seed=1)

    def replay_mask():
        drop.calls = 0

    errors = check_layer(drop, rng.standard_normal((4, 10)), rng, before_forward=replay_mask)
    assert errors["x"] < TOLERANCE


# Softmax cross-entropy ---------------------------------------------------------------------

def test_softmax_cross_entropy_value_and_stability(rng):
    logits = rng.standard_normal((5, 7))
    labels = np.array([0, 6, 3, 3, 1])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(probs[np.arange(5), labels]))
    assert abs(SoftmaxCrossEntropy().forward(logits, labels) - expected) < 1e-12
    # shifting all logits by a huge constant changes nothing and does not overflow
    assert abs(SoftmaxCrossEntropy().forward(logits + 1e4, labels) - expected) < 1e-9
    assert np.isfinite(SoftmaxCrossEntropy().forward(np.array([[1e4, -1e4]]), np.array([1])))


def test_softmax_cross_entropy_gradient(rng):
    loss = SoftmaxCrossEntropy()
    logits = rng.standard_normal((4, 6))
    labels = np.array([5, 0, 2, 2])
    loss.forward(logits, labels)
    analytic = loss.backward()
    from gradcheck import numerical_gradient
    numeric = numerical_gradient(lambda: loss.forward(logits, labels), logits)
    assert rel_error(numeric, analytic) < TOLERANCE


def test_softmax_sums_to_one_and_survives_huge_logits(rng):
    logits = rng.standard_normal((3, 5)) * 1e3
    probs = softmax(logits)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs, softmax(logits - 7.0), rtol=1e-12)
    # the loss is -log of the same probabilities
    assert abs(SoftmaxCrossEntropy().forward(logits[:1], np.array([4])) + np.log(probs[0, 4])) < 1e-9


def test_softmax_cross_entropy_rejects_bad_labels():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="shape"):
        SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0]))


# One contract for every layer -----------------------------------------------------------------

def every_layer(rng):
    """One of each layer, with an input it accepts, and whether its backward needs a
    training pass (dropout's evaluation is the identity, and so is its gradient)."""
    image = rng.standard_normal((2, 3, 9, 9))
    return [
        (Conv2D(3, 4, 3, weight_std=1.0, rng=rng, dtype="float64"), image, True),
        (ReLU(), image, True), (Tanh(), image, True), (LRN(), image, True), (MaxPool2D(), image, True),
        (Flatten(), image, True), (Linear(6, 4, rng=rng, dtype="float64"), rng.standard_normal((2, 6)), True),
        (Dropout(0.5), image, False),
    ]


def test_every_layer_takes_train_and_keeps_nothing_in_evaluation(rng):
    for layer, x, backward_needs_training in every_layer(rng):
        trained = layer.forward(x, train=True)
        kept = {name: value for name, value in vars(layer).items() if isinstance(value, (np.ndarray, tuple))
                and name not in layer.param_names and not name.startswith("d")}
        layer.forward(x, train=False)
        still_kept = [name for name in kept if getattr(layer, name) is not None]
        assert still_kept == [], f"{layer!r} keeps {still_kept} after an evaluation pass"
        if backward_needs_training:
            with pytest.raises(RuntimeError, match="train=True"):
                layer.backward(np.ones_like(trained))
        else:
            np.testing.assert_array_equal(layer.backward(np.ones_like(trained)), np.ones_like(trained))


def test_twin_paths_are_named_and_agree(rng, cpu_path):
    # the CUDA paths are checked against these in test_kernels.py
    x = tie_free((2, 6, 7, 7), rng)
    for layer in (LRN(5, 1.0, 1.0, 0.75), MaxPool2D()):
        out = layer.forward(x)   # dispatched: the NumPy path for NumPy arrays, unless kernels are named
        dout = rng.standard_normal(out.shape)
        dx = layer.backward(dout)
        if cpu_path == "numpy":
            np.testing.assert_array_equal(layer.forward_numpy(x), out)
            np.testing.assert_array_equal(dx, layer.backward_numpy(dout))
        else:
            assert rel_error(layer.forward_numpy(x), out) < 1e-12
            assert rel_error(dx, layer.backward_numpy(dout)) < 1e-12


def test_shared_image_cols_hand_one_matrix_to_the_second_layer_once(rng):
    shared = SharedImageCols()
    first = RebuildingConv2D(3, 4, 3, 2, 1, dtype="float64")
    second = RebuildingConv2D(3, 2, 3, 2, 1, rng=rng, dtype="float64")
    first.shared = second.shared = shared
    x = rng.standard_normal((2, 3, 9, 9))
    built = first.build_cols(x, "train")
    assert second.build_cols(x, "train") is built          # borrowed, not built again
    assert shared.current is None                           # and forgotten at once
    np.testing.assert_array_equal(built, im2col(x, 3, 2, 1))
    alone = Conv2D(3, 2, 3, 2, 1, dtype="float64")
    alone.weight, alone.bias = second.weight, second.bias
    first.forward(x)
    assert rel_error(second.forward(x), alone.forward(x)) == 0
    # another array of the same shape while a matrix is pending: built afresh from it
    other = x + 1.0
    pending = first.build_cols(x, "train")
    assert shared.current.cols is pending
    np.testing.assert_array_equal(second.build_cols(other, "train"), im2col(other, 3, 2, 1))
    wider = RebuildingConv2D(3, 4, 3, 1, 1, dtype="float64")
    wider.shared = shared
    first.build_cols(x, "train")
    assert wider.build_cols(x, "train").shape == (27, 2 * 9 * 9)    # another geometry: its own matrix


def build_in_two_threads(layers, x, use):
    """Each layer's build_cols(x, use) in a thread of its own -> their matrices."""
    results, threads = [None, None], []
    for i, layer in enumerate(layers):
        threads.append(threading.Thread(target=lambda i=i, layer=layer: results.__setitem__(
            i, layer.build_cols(x, use))))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()                        # no column waits for ever
    return results


def test_shared_image_cols_in_slices_and_kept_for_backward(rng, monkeypatch):
    """Side by side, two columns build the one matrix in slices of the batch and read it
    again in backward; an evaluation's is let go at once."""
    shared = SharedImageCols(parts=4, keep=True)
    layers = [RebuildingConv2D(3, 4, 3, 2, 1, input_grad=False, dtype="float64") for _ in range(2)]
    for layer in layers:
        layer.shared = shared
    filled = []
    fill = SharedMatrix.fill
    monkeypatch.setattr(SharedMatrix, "fill", lambda self, part, layer: filled.append(part) or fill(self, part, layer))
    x = rng.standard_normal((6, 3, 9, 9))                   # 6 images in 4 slices: 1, 2, 1, 2
    a, b = build_in_two_threads(layers, x, "train")
    assert a is b and sorted(filled) == [0, 1, 2, 3]        # each slice built once, by one of them
    np.testing.assert_array_equal(a, im2col(x, 3, 2, 1))
    assert shared.current.cols is a                         # held for backward
    assert build_in_two_threads(layers, x, "backward") == [a, a] and len(filled) == 4   # backward reads it
    assert shared.current is None                           # and then lets it go
    build_in_two_threads(layers, x, "evaluation")
    assert shared.current is None and len(filled) == 8      # an evaluation's: let go at once
    # a column alone (or the columns in turn) builds every slice itself
    assert layers[0].build_cols(x, "train") is layers[1].build_cols(x, "train")
    # the layers' passes give what Conv2D gives
    plain = Conv2D(3, 4, 3, 2, 1, input_grad=False, rng=rng, dtype="float64")
    for layer in layers:
        layer.weight, layer.bias = plain.weight, plain.bias
    dout = rng.standard_normal(plain.forward(x).shape)
    plain.backward(dout)
    for layer in layers:
        assert rel_error(layer.forward(x), plain.forward(x)) == 0
    for layer in layers:
        layer.backward(dout)
        assert rel_error(layer.dweight, plain.dweight) == 0


def test_a_new_forward_pass_never_reads_the_last_ones_matrix(rng):
    """A training forward that no backward followed leaves its matrix held; a program that
    then refills the same array with the next batch must get that batch's matrix."""
    shared = SharedImageCols(parts=2, keep=True)
    layers = [RebuildingConv2D(3, 4, 3, 2, 1, input_grad=False, dtype="float64") for _ in range(2)]
    for layer in layers:
        layer.shared = shared
    batch = rng.standard_normal((4, 3, 9, 9))
    for layer in layers:
        layer.build_cols(batch, "train")                    # a forward without backward
    batch[...] = rng.standard_normal(batch.shape)           # the next batch, in the same array
    for use in ("train", "evaluation"):
        for layer in layers:
            np.testing.assert_array_equal(layer.build_cols(batch, use), im2col(batch, 3, 2, 1))
    # a backward reads only a matrix its own layer's forward read
    other = RebuildingConv2D(3, 4, 3, 2, 1, input_grad=False, dtype="float64")
    other.shared = shared
    kept = layers[0].build_cols(batch, "train")
    assert other.build_cols(batch, "backward") is not kept


def test_a_column_that_fails_to_build_its_slice_does_not_leave_the_other_waiting(rng, monkeypatch):
    shared = SharedImageCols(parts=8, keep=True)
    layers = [RebuildingConv2D(3, 4, 3, 2, 1, dtype="float64") for _ in range(2)]
    for layer in layers:
        layer.shared = shared
    fill = SharedMatrix.fill

    def fail_on_slice_5(self, part, layer):
        if part == 5:
            raise MemoryError("no room for slice 5")
        time.sleep(0.01)
        fill(self, part, layer)
    monkeypatch.setattr(SharedMatrix, "fill", fail_on_slice_5)
    errors = []

    def build(layer):
        try:
            layer.build_cols(x, "train")
        except BaseException as error:
            errors.append(error)
    x = rng.standard_normal((8, 3, 9, 9))
    threads = [threading.Thread(target=build, args=(layer,)) for layer in layers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert any(isinstance(e, MemoryError) for e in errors) and len(errors) == 2
    assert all(isinstance(e, MemoryError) or isinstance(e.__cause__, MemoryError) for e in errors)
    assert shared.current is None                           # nothing half-built is handed out later
    monkeypatch.setattr(SharedMatrix, "fill", fill)
    np.testing.assert_array_equal(layers[0].build_cols(x, "evaluation"), im2col(x, 3, 2, 1))


def test_a_rebuilding_layer_keeps_only_its_input(rng):
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    first, middle = RebuildingConv2D(3, 4, 3, 2, 1, input_grad=False), Conv2D(3, 4, 3, 2, 1)
    first.forward(x)
    middle.forward(x)
    assert first.cols is None and first.x is x              # conv1: only the image is kept
    assert middle.cols is not None                          # the plain layer keeps its matrix
