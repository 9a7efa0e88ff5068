"""The two-column AlexNet: structure, the merged state_dict, gradients, and learning."""

import threading
import time

import numpy as np
import pytest
from gradcheck import numerical_gradient, rel_error, sample
from numpy.lib.stride_tricks import sliding_window_view

from tinyalex import SGD, AlexNet, SoftmaxCrossEntropy, engines, to_numpy
from tinyalex.kernels.native import find_compiler
from tinyalex.layers import LRN, Conv2D, MaxPool2D, Tanh
from tinyalex.model import PAPER_LAYERS, LRNSpec, architecture, fan_ins, paper_gain_weight_std, walk

SMALL = dict(image_size=67, channels=(8, 8, 12, 12, 8), hidden=16)  # conv1 15x15, pool5 1x1


def small_model(**kwargs):
    return AlexNet(**{"num_classes": 5, "devices": "cpu", **SMALL, **kwargs})


@pytest.fixture(scope="module")
def full_model():
    return AlexNet(devices="cpu")


def test_parameter_count(full_model):
    assert full_model.num_parameters() == 60_965_224
    sizes = {k: v.size for k, v in full_model.state_dict().items()}
    per_layer = {name: sizes[f"{name}.weight"] + sizes[f"{name}.bias"]
                 for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")}
    assert per_layer == {"conv1": 34_944, "conv2": 307_456, "conv3": 885_120, "conv4": 663_936,
                         "conv5": 442_624, "fc6": 37_752_832, "fc7": 16_781_312, "fc8": 4_097_000}


def test_state_dict_has_the_grouped_shapes(full_model):
    shapes = {k: v.shape for k, v in full_model.state_dict().items()}
    assert shapes["conv1.weight"] == (96, 3, 11, 11)
    assert shapes["conv2.weight"] == (256, 48, 5, 5)
    assert shapes["conv3.weight"] == (384, 256, 3, 3)
    assert shapes["conv4.weight"] == (384, 192, 3, 3)
    assert shapes["conv5.weight"] == (256, 192, 3, 3)
    assert shapes["fc6.weight"] == (4096, 9216)
    assert shapes["fc7.weight"] == (4096, 4096)
    assert shapes["fc8.weight"] == (1000, 4096)


def test_activation_shapes(full_model):
    x = np.zeros((1, 3, 227, 227), dtype=np.float32)
    assert full_model.forward(x, train=False).shape == (1, 1000)
    for column in ("column_a", "column_b"):
        shapes = full_model.activation_shapes()[column]
        assert shapes["conv1"] == (1, 48, 55, 55)
        assert shapes["pool1"] == (1, 48, 27, 27)
        assert shapes["pool2"] == (1, 128, 13, 13)
        assert shapes["conv3"] == (1, 192, 13, 13)
        assert shapes["pool5"] == (1, 128, 6, 6)
        assert shapes["fc7"] == (1, 2048)


def test_paper_initialisation(full_model):
    state = full_model.state_dict()
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        expected_bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        assert np.all(state[f"{name}.bias"] == expected_bias), name
    assert abs(state["fc6.weight"].std() - 0.01) < 1e-4 and abs(state["fc6.weight"].mean()) < 1e-5


def test_same_seed_same_model_other_seed_other_model():
    a, b, c = small_model(seed=3), small_model(seed=3), small_model(seed=4)
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key])
    assert not np.array_equal(a.state_dict()["conv3.weight"], c.state_dict()["conv3.weight"])


def test_state_dict_round_trip():
    source, target = small_model(seed=1), small_model(seed=2)
    target.load_state_dict(source.state_dict())
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[key], value)
    x = np.random.default_rng(0).standard_normal((2, 3, 67, 67)).astype(np.float32)
    np.testing.assert_array_equal(target.forward(x, train=False), source.forward(x, train=False))


def test_load_state_dict_rejects_wrong_keys_and_shapes():
    model, state = small_model(), small_model().state_dict()
    with pytest.raises(KeyError, match="fc8.bias"):
        model.load_state_dict({k: v for k, v in state.items() if k != "fc8.bias"})
    state["conv2.weight"] = state["conv2.weight"][:, :2]
    with pytest.raises(ValueError, match="conv2.weight"):
        model.load_state_dict(state)


def test_bad_image_size_is_explained():
    with pytest.raises(ValueError, match="does not tile an input of size 224"):
        AlexNet(devices="cpu", image_size=224)


# One table drives the geometry ----------------------------------------------------------------

def test_the_table_gives_the_papers_sizes_and_fan_ins():
    shapes = walk(PAPER_LAYERS, 227, columns=2)
    assert [shapes[f"conv{i}"].out_size for i in range(1, 6)] == [27, 13, 13, 13, 6]  # after pooling
    # fan-ins by hand from the paper's Figure 2: 11*11*3, 5*5*48, 3*3*256, 3*3*192, 3*3*192, 6*6*256, 4096, 4096
    assert fan_ins(PAPER_LAYERS, 227, 2) == {"conv1": 363, "conv2": 1200, "conv3": 2304, "conv4": 1728,
                                             "conv5": 1728, "fc6": 9216, "fc7": 4096, "fc8": 4096}


def test_named_layers_follow_the_table(full_model):
    names = [name for name, _ in full_model.named_layers()]
    assert names[:9] == ["column_a.conv1", "column_a.relu1", "column_a.lrn1", "column_a.pool1",
                         "column_a.conv2", "column_a.relu2", "column_a.lrn2", "column_a.pool2", "column_a.conv3"]
    assert names[-1] == "fc8" and names.count("column_b.drop7") == 1 and len(names) == 2 * 22 + 1
    assert [name for name, _ in full_model.dropout_layers()] == [
        "column_a.drop6", "column_a.drop7", "column_b.drop6", "column_b.drop7"]


def test_hooks_see_every_step_in_order():
    model = small_model()
    events = []
    model.hooks.append(lambda event, name, value: events.append((event, name)))
    x = np.zeros((2, 3, 67, 67), dtype=np.float32)
    loss = SoftmaxCrossEntropy()
    loss.forward(model.forward(x), np.array([0, 1]))
    model.backward(loss.backward())
    forward = [name for event, name in events if event == "after_forward"]
    backward = [name for event, name in events if event == "after_backward"]
    layers = [name for name, _ in model.named_layers()]
    assert sorted(set(forward)) == sorted(set(layers) | {"cross3", "cross6", "cross7", "cross8"})
    assert forward.index("column_a.pool2") < forward.index("cross3") < forward.index("column_b.conv3")
    assert backward[0] == "fc8" and backward[-1] == "column_b.conv1"
    assert sum(1 for event, _ in events if event.startswith("before")) == len(events) // 2
    model.hooks.clear()
    events.clear()
    model.forward(x)
    assert events == []


# The ablation switches change the table ------------------------------------------------------

def test_switches_change_the_layers():
    model = small_model(activation="tanh", lrn=False, pool=(2, 2))
    names = [name for name, _ in model.named_layers()]
    assert not any(".lrn" in name or ".relu" in name for name in names)
    assert isinstance(model.column_a.layer("tanh1"), Tanh)
    assert (model.column_a.layer("pool1").size, model.column_a.layer("pool1").stride) == (2, 2)
    assert model.forward(np.zeros((1, 3, 67, 67), dtype=np.float32)).shape == (1, 5)
    assert [spec.lrn for spec in architecture(lrn=False)] == [False] * len(PAPER_LAYERS)
    with pytest.raises(ValueError, match="activation"):
        architecture(activation="sigmoid")


def test_pooling_two_by_two_keeps_the_papers_sizes():
    # section 3.4: s = z = 2 against s = 2, z = 3, "which produces output of equivalent dimensions"
    model = AlexNet(devices="cpu", pool=(2, 2), num_classes=10)
    model.forward(np.zeros((1, 3, 227, 227), dtype=np.float32), train=False)
    shapes = model.activation_shapes()["column_a"]
    assert (shapes["pool1"], shapes["pool2"], shapes["pool5"]) == ((1, 48, 27, 27), (1, 128, 13, 13),
                                                                   (1, 128, 6, 6))


def test_one_column_is_the_one_gpu_net_without_groups():
    model = AlexNet(devices="cpu", columns=1, num_classes=10)
    assert model.column_b is None and len(model.columns) == 1
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes["conv2.weight"] == (256, 96, 5, 5)       # reads all 96 conv1 maps: no groups
    assert shapes["conv4.weight"] == (384, 384, 3, 3)
    assert shapes["fc6.weight"] == (4096, 9216)
    assert not any(name.startswith("column_b") for name, _ in model.named_layers())
    assert isinstance(model.column_a.layer("lrn1"), LRN) and model.column_a.layer("conv1").out_channels == 96


def test_one_column_equals_the_ungrouped_loops():
    model = small_model(dtype="float64", weight_std=0.2, image_size=99, columns=1)
    x = np.random.default_rng(5).standard_normal((2, 3, 99, 99))
    s = model.state_dict()
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    h = pool(lrn(relu(grouped_conv(x, s["conv1.weight"], s["conv1.bias"], 4, 0, 1))))
    h = pool(lrn(relu(grouped_conv(h, s["conv2.weight"], s["conv2.bias"], 1, 2, 1))))
    h = relu(grouped_conv(h, s["conv3.weight"], s["conv3.bias"], 1, 1, 1))
    h = relu(grouped_conv(h, s["conv4.weight"], s["conv4.bias"], 1, 1, 1))
    h = pool(relu(grouped_conv(h, s["conv5.weight"], s["conv5.bias"], 1, 1, 1))).reshape(2, -1)
    h = relu(relu(h @ s["fc6.weight"].T + s["fc6.bias"]) @ s["fc7.weight"].T + s["fc7.bias"])
    assert rel_error(model.forward(x, train=False), h @ s["fc8.weight"].T + s["fc8.bias"]) < 1e-12


def test_the_papers_one_gpu_baseline_has_about_as_many_parameters():
    # section 3.2, footnote: half the kernels in conv1-conv4, conv5 and the fc layers whole
    baseline = AlexNet(devices="cpu", columns=1, channels=(48, 128, 192, 192, 256))
    two = AlexNet(devices="cpu")
    assert abs(baseline.num_parameters() - two.num_parameters()) < 0.02 * two.num_parameters()
    assert isinstance(baseline.column_a.layer("conv3"), Conv2D)
    assert isinstance(baseline.column_a.layer("pool5"), MaxPool2D)


def test_dropping_conv4_removes_its_row_and_nothing_else(full_model):
    # section 7: the net one middle layer shallower. conv5 reads conv3's 384 maps, 192 per
    # column, as it read conv4's: every other layer keeps its shape, and the crossings stay
    shallower = AlexNet(devices="cpu", drop_conv="conv4")
    assert [spec.name for spec in shallower.layers] == [s.name for s in PAPER_LAYERS if s.name != "conv4"]
    assert shallower.crossings == full_model.crossings == ["cross3", "cross6", "cross7", "cross8"]
    shapes = {k: v.shape for k, v in shallower.state_dict().items()}
    assert shapes == {k: v.shape for k, v in full_model.state_dict().items() if not k.startswith("conv4.")}
    conv4 = 384 * 192 * 3 * 3 + 384    # the paper's Figure 2: 384 kernels of 3x3x192, and their biases
    assert full_model.num_parameters() - shallower.num_parameters() == conv4
    assert fan_ins(shallower.layers, 227, 2)["conv5"] == 3 * 3 * 192
    assert repr(shallower).endswith("drop_conv='conv4')") and "drop_conv" not in repr(full_model)
    assert not any("conv4" in name or "relu4" in name for name, _ in shallower.named_layers())


def test_dropping_conv4_keeps_the_sizes_of_the_small_net():
    model, paper = small_model(drop_conv="conv4"), small_model()
    x = np.zeros((2, 3, 67, 67), dtype=np.float32)
    assert model.forward(x).shape == paper.forward(x).shape == (2, 5)
    shapes, paper_shapes = model.activation_shapes()["column_b"], paper.activation_shapes()["column_b"]
    assert shapes == {k: v for k, v in paper_shapes.items() if k not in ("conv4", "relu4")}
    # a narrower net's initial spreads follow the fan-ins of the net it is: conv5 reads conv3
    spreads = paper_gain_weight_std(67, (8, 8, 12, 16, 8), 16, drop_conv="conv4")
    assert "conv4" not in spreads
    assert spreads["conv5"] == paper_gain_weight_std(67, (8, 8, 12, 12, 8), 16)["conv5"]


def test_only_a_middle_layer_that_keeps_the_crossings_can_be_dropped():
    reasons = {"conv3": "only crossing between conv layers", "conv2": "LRN and max-pooling after conv2",
               "conv1": "not a middle layer", "conv5": "not a middle layer", "fc6": "not one of the conv layers"}
    for name, reason in reasons.items():
        with pytest.raises(ValueError, match=reason):
            small_model(drop_conv=name)


# The two columns equal the one-device AlexNet with grouped convolutions ----------------------

def grouped_conv(x, w, b, stride, pad, groups):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    windows = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    cin, cout = x.shape[1] // groups, w.shape[0] // groups
    out = [np.einsum("nchwij,ocij->nohw", windows[:, g * cin:(g + 1) * cin], w[g * cout:(g + 1) * cout])
           for g in range(groups)]
    return np.concatenate(out, axis=1) + b[None, :, None, None]


def lrn(x, size=5, k=2.0, alpha=1e-4, beta=0.75):
    C = x.shape[1]
    sums = np.stack([np.sum(x[:, max(0, c - size // 2):c + size // 2 + 1] ** 2, axis=1) for c in range(C)], axis=1)
    return x / (k + alpha * sums) ** beta


def pool(x):
    return sliding_window_view(x, (3, 3), axis=(2, 3))[:, :, ::2, ::2].max(axis=(-1, -2))


def grouped_lrn(x):
    """LRN inside each column's half of the channels, as the two columns of the paper do.

    (Caffe's and PyTorch's one-device AlexNet normalize across the boundary between the
    halves, which changes the channels within size//2 of it: see docs/columns.md.)
    """
    half = x.shape[1] // 2
    return np.concatenate([lrn(x[:, :half]), lrn(x[:, half:])], axis=1)


def one_column_alexnet(state, x, normalize=grouped_lrn):
    """The single-device AlexNet with grouped convolutions, from a merged state_dict.

    normalize: the LRN, within each column's half (the paper's) or ``lrn`` over all channels
    (Caffe's and PyTorch's one-device nets; docs/snippets/columns_merged_view.py compares them).
    """
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    s = state
    x = pool(normalize(relu(grouped_conv(x, s["conv1.weight"], s["conv1.bias"], 4, 0, 1))))
    x = pool(normalize(relu(grouped_conv(x, s["conv2.weight"], s["conv2.bias"], 1, 2, 2))))
    x = relu(grouped_conv(x, s["conv3.weight"], s["conv3.bias"], 1, 1, 1))
    if "conv4.weight" in s:     # not in the net without conv4 (section 7)
        x = relu(grouped_conv(x, s["conv4.weight"], s["conv4.bias"], 1, 1, 2))
    x = pool(relu(grouped_conv(x, s["conv5.weight"], s["conv5.bias"], 1, 1, 2)))
    x = x.reshape(len(x), -1)
    x = relu(x @ s["fc6.weight"].T + s["fc6.bias"])
    x = relu(x @ s["fc7.weight"].T + s["fc7.bias"])
    return x @ s["fc8.weight"].T + s["fc8.bias"]


@pytest.mark.parametrize("switches", [{}, {"drop_conv": "conv4"}], ids=["paper", "no-conv4"])
def test_two_columns_equal_one_grouped_column(switches):
    model = small_model(dtype="float64", weight_std=0.2, image_size=99, **switches)  # pool5 2x2: flatten order matters
    x = np.random.default_rng(5).standard_normal((3, 3, 99, 99))
    expected = one_column_alexnet(model.state_dict(), x)
    assert rel_error(model.forward(x, train=False), expected) < 1e-12


# Gradients of the whole (scaled-down) model ------------------------------------------------

@pytest.mark.parametrize("switches", [{}, {"drop_conv": "conv4"},
                                      {"lrn": LRNSpec(k=1.0, alpha=0.5, reads="both")}],
                         ids=["paper", "no-conv4", "lrn-across-columns"])
def test_model_gradients(switches):
    # weights of 0.1 keep the loss near log(5): at 0.2 the net without conv4 saturates the
    # softmax, and some gradients fall to 1e-7, below what central differences resolve
    model = small_model(dtype="float64", weight_std=0.1, image_size=99, seed=11, **switches)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 99, 99))
    labels = np.array([1, 4])
    loss = SoftmaxCrossEntropy()
    dropouts = [layer for _, layer in model.dropout_layers()]
    assert len(dropouts) == 4   # drop6 and drop7 in each column

    def replay_masks():
        for layer in dropouts:
            layer.calls = 0

    def evaluate():
        replay_masks()
        return loss.forward(model.forward(x, train=True), labels)

    evaluate()
    model.backward(loss.backward())
    analytic = {name: (param, grad.copy()) for name, param, grad in model.parameters()}
    assert len(analytic) == 2 * 2 * (len(model.layers) - 1) + 2   # weight and bias, per column, and fc8's
    errors = {}
    for name, (param, grad) in analytic.items():
        idx = sample(param, 6, rng)
        errors[name] = rel_error(numerical_gradient(evaluate, param, 1e-6, idx), grad.reshape(-1)[idx])
    assert max(errors.values()) < 1e-6, {k: v for k, v in errors.items() if v >= 1e-6}


# Learning ----------------------------------------------------------------------------------

def images_and_labels(n, classes, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, 67, 67)).astype(np.float32), rng.permutation(n) % classes


def test_sgd_steps_reduce_the_loss_on_a_fixed_batch():
    model = small_model(seed=2)
    x, labels = images_and_labels(16, 5)
    loss, sgd = SoftmaxCrossEntropy(), SGD(lr=0.01)
    before = loss.forward(model.forward(x, train=False), labels)
    for _ in range(5):
        loss.forward(model.forward(x), labels)
        model.backward(loss.backward())
        sgd.step(model.parameters())
    assert loss.forward(model.forward(x, train=False), labels) < before


def test_small_model_overfits_eight_images():
    # Wider than SMALL, and initialised with larger weights and Caffe's bias 0.1: a net this
    # small learns slowly from N(0, 0.01^2) weights (seeds 0-3 all reach 100% within 80 steps)
    model = small_model(num_classes=8, seed=0, channels=(16, 32, 48, 48, 32), hidden=64, weight_std=0.1,
                        positive_bias=0.1)
    x, labels = images_and_labels(8, 8)
    loss, sgd = SoftmaxCrossEntropy(), SGD(lr=0.01)
    for step in range(300):
        loss.forward(model.forward(x), labels)
        model.backward(loss.backward())
        sgd.step(model.parameters())
        predictions = model.forward(x, train=False).argmax(axis=1)
        if np.all(predictions == labels):
            break
    np.testing.assert_array_equal(predictions, labels)


# On GPUs -----------------------------------------------------------------------------------

def gradients(model, x, labels):
    # a training pass (backward needs one) with the model built with dropout=0: the same
    # function on every device, since CuPy and NumPy draw different masks
    loss = SoftmaxCrossEntropy()
    value = loss.forward(model.forward(x, train=True), labels)
    model.backward(loss.backward())
    return value, {name: to_numpy(grad) for name, _, grad in model.parameters()}


@pytest.mark.gpu
def test_full_model_on_gpu_matches_cpu():
    # float64, so that no max-pooling window is a near-tie that rounding could break
    # differently on the two devices (in float32 a flipped winner changes a gradient at 1e-3)
    cpu = AlexNet(devices="cpu", dtype="float64", seed=7, dropout=0.0)
    gpu = AlexNet(devices=0, dtype="float64", seed=7, dropout=0.0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 227, 227))
    labels = rng.integers(0, 1000, 4)
    loss_cpu, grads_cpu = gradients(cpu, x, labels)
    loss_gpu, grads_gpu = gradients(gpu, x, labels)
    assert abs(loss_cpu - loss_gpu) < 1e-10 * abs(loss_cpu)
    errors = {name: rel_error(grads_gpu[name], grads_cpu[name]) for name in grads_cpu}
    assert max(errors.values()) < 1e-10, errors


@pytest.mark.gpu
def test_full_model_logits_on_gpu_match_cpu_in_float32():
    cpu, gpu = AlexNet(devices="cpu", seed=7), AlexNet(devices=0, seed=7)
    x = np.random.default_rng(1).standard_normal((4, 3, 227, 227)).astype(np.float32) * 50
    assert rel_error(to_numpy(gpu.forward(x, train=False)), cpu.forward(x, train=False)) < 1e-4


@pytest.mark.gpu
def test_two_gpus_equal_one(two_gpus):
    one = AlexNet(devices=0, dtype="float64", seed=3, dropout=0.0)
    two = AlexNet(devices=(0, 1), dtype="float64", seed=3, dropout=0.0)
    assert two.column_b.layer("conv1").weight.device.id == 1
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 227, 227))
    labels = rng.integers(0, 1000, 4)
    loss_one, grads_one = gradients(one, x, labels)
    loss_two, grads_two = gradients(two, x, labels)
    assert abs(loss_one - loss_two) < 1e-12
    assert max(rel_error(grads_two[k], grads_one[k]) for k in grads_one) < 1e-10


@pytest.mark.parametrize("engine", ["plain", "fast"])
def test_the_engine_changes_the_sums_not_the_network(engine):
    # Winograd's algorithm, the compiled kernels, rebuilt matrices: the same logits and
    # gradients, to float64 rounding, as the layers as written
    model = small_model(engine=engine, dtype="float64", weight_std=0.1)
    plain = small_model(engine=engines.PLAIN, dtype="float64", weight_std=0.1)
    x = np.random.default_rng(0).standard_normal((2, 3, 67, 67))
    classes = {name.split(".")[-1]: type(layer).__name__ for name, layer in model.named_layers()
               if isinstance(layer, Conv2D)}
    winograd = "WinogradConv2D" if engine == "fast" and find_compiler() else "Conv2D"
    assert classes == {"conv1": "RebuildingConv2D" if engine == "fast" else "Conv2D", "conv2": "Conv2D",
                       "conv3": winograd, "conv4": winograd, "conv5": winograd}
    assert rel_error(model.forward(x, train=False), plain.forward(x, train=False)) < 1e-12
    labels = np.arange(2) % 5
    loss, grads = gradients(model, x, labels)
    plain_loss, plain_grads = gradients(plain, x, labels)
    assert abs(loss - plain_loss) < 1e-12
    assert max(rel_error(grads[k], plain_grads[k]) for k in grads) < 1e-10


IN_TURN = engines.replace(engines.FAST, column_threads=False)


def test_both_columns_conv1_share_one_im2col_matrix_on_one_device(monkeypatch):
    model = small_model(engine=IN_TURN)
    conv1_a, conv1_b = model.column_a.layer("conv1"), model.column_b.layer("conv1")
    assert conv1_a.shared is conv1_b.shared is not None
    assert (conv1_a.shared.parts, conv1_a.shared.keep) == (1, False)   # in turn: built whole, backward again
    assert not hasattr(model.column_a.layer("conv2"), "shared")
    built = []
    build_cols = type(conv1_a).build_cols
    monkeypatch.setattr(type(conv1_a), "build_cols",
                        lambda self, x, use: built.append(build_cols(self, x, use)) or built[-1])
    model.forward(np.random.default_rng(0).standard_normal((2, 3, 67, 67)).astype(np.float32))
    assert len(built) == 2 and built[0] is built[1]          # one matrix for both columns
    assert small_model(columns=1, engine=IN_TURN).column_a.layer("conv1").shared is None
    assert type(small_model(engine="plain").column_a.layer("conv1")) is Conv2D   # plain: nothing shared
    # side by side, in threads: built in slices by both, and kept for both columns' backward
    monkeypatch.setattr(engines.columns, "usable_cores", lambda: 2)
    threaded = small_model(engine=engines.FAST)
    shared = threaded.column_a.layer("conv1").shared
    assert shared is threaded.column_b.layer("conv1").shared and (shared.parts, shared.keep) == (8, True)
    built.clear()
    x = np.random.default_rng(0).standard_normal((16, 3, 67, 67)).astype(np.float32)
    loss_fn = SoftmaxCrossEntropy()
    loss_fn.forward(threaded.forward(x, train=True), np.arange(16) % 5)
    assert shared.current is not None and shared.current.filled == 8
    threaded.backward(loss_fn.backward())
    assert len(built) == 4 and all(cols is built[0] for cols in built)   # two forward, two backward: one matrix
    assert shared.current is None                            # let go after backward

def blas_threads():
    from threadpoolctl import threadpool_info
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_columns_side_by_side_in_threads_compute_what_they_compute_in_turn(monkeypatch):
    monkeypatch.setattr(engines.columns, "usable_cores", lambda: 2)
    threaded, in_turn = small_model(engine=engines.FAST), small_model(engine=IN_TURN)
    assert isinstance(threaded.run_columns, engines.ColumnThreads) and in_turn.run_columns is engines.in_turn
    assert small_model(engine="plain").run_columns is engines.in_turn
    assert small_model(columns=1).run_columns is engines.in_turn
    monkeypatch.setattr(engines.columns, "usable_cores", lambda: 1)
    assert small_model(engine=engines.FAST).run_columns is engines.in_turn      # one core: nothing to gain
    monkeypatch.setattr(engines.columns, "usable_cores", lambda: 2)
    x = np.random.default_rng(1).standard_normal((3, 3, 67, 67)).astype(np.float32)
    labels = np.array([0, 3, 4])
    before = blas_threads()
    for model in (threaded, in_turn):
        loss_fn = SoftmaxCrossEntropy()
        model.loss = loss_fn.forward(model.forward(x, train=True), labels)
        model.backward(loss_fn.backward())
    assert blas_threads() == before                    # BLAS's thread count is put back
    assert abs(threaded.loss - in_turn.loss) < 1e-5 * abs(in_turn.loss)
    grads = {name: to_numpy(g) for name, _, g in in_turn.parameters()}
    for name, _, g in threaded.parameters():
        assert rel_error(to_numpy(g), grads[name]) < 1e-4, name
    seen = set()
    threaded.hooks.append(lambda event, name, value: seen.add(threading.current_thread().name))
    threaded.forward(x, train=False)
    assert seen == {threading.current_thread().name}  # hooks see the layers in turn, in the caller's thread


def test_an_error_in_one_column_thread_reaches_the_caller_after_both_are_done(monkeypatch):
    monkeypatch.setattr(engines.columns, "usable_cores", lambda: 2)
    model = small_model(engine=engines.FAST)
    done = []

    def slow_b(*args):
        time.sleep(0.2)
        done.append("b")
    monkeypatch.setattr(model.column_a.stages[0], "forward", lambda *args: 1 / 0)
    monkeypatch.setattr(model.column_b.stages[0], "forward", slow_b)
    with pytest.raises(ZeroDivisionError):
        model.forward(np.zeros((1, 3, 67, 67), np.float32))
    assert done == ["b"]


def forward_in_child(model, x, queue):
    queue.put(model.forward(x, train=False))


def test_a_forked_child_runs_the_columns_in_threads_of_its_own(monkeypatch):
    import multiprocessing
    monkeypatch.setattr(engines.columns, "usable_cores", lambda: 2)
    model = small_model(engine=engines.FAST)
    x = np.random.default_rng(2).standard_normal((2, 3, 67, 67)).astype(np.float32)
    expected = model.forward(x, train=False)          # the parent's pool is running now
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=forward_in_child, args=(model, x, queue), daemon=True)
    child.start()
    got = queue.get(timeout=60)                       # the parent's threads are not in the child: without a
    child.join(timeout=60)                            # pool of its own it would wait for them for ever
    assert child.exitcode == 0 and np.array_equal(got, expected)
