"""Loading Caffe's bvlc_alexnet: caffemodels of random weights, written here in both of
Caffe's field styles with the same message definitions, are loaded and run; their logits
are checked against a forward pass written below with Caffe's conventions (BGR input, LRN
over the whole stack with alpha divided by n, grouped convolutions, pooling that rounds
up), which uses none of tinyalex's layers."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_split
from gradcheck import rel_error
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from tinyalex import caffe, plots
from tinyalex.caffe import CaffeModelError, load_caffemodel

# widths small enough for a quick forward pass at the paper's 227 x 227 geometry
CHANNELS, HIDDEN, CLASSES = (6, 8, 8, 8, 4), 10, 7
# Exaggerated LRN constants (Caffe's alpha, divided by n when applied): with bvlc_alexnet's
# 1e-4 a window's mistakes would change the logits by less than rounding.
LRN = dict(local_size=5, alpha=2.5, beta=0.75, k=2.0)
GEOMETRY = {"conv1": (11, 4, 0, 1), "conv2": (5, 1, 2, 2), "conv3": (3, 1, 1, 1), "conv4": (3, 1, 1, 2),
            "conv5": (3, 1, 1, 2)}   # kernel, stride, pad, group: bvlc_alexnet's deploy.prototxt


def random_weights(seed=0):
    """{layer: (weight, bias)} in Caffe's shapes, with spreads that keep every layer's
    output near 1 so that the LRN and the ReLUs matter."""
    rng = np.random.default_rng(seed)
    weights, inputs = {}, 3
    for name, width in zip(GEOMETRY, CHANNELS):
        kernel, _, _, group = GEOMETRY[name]
        fan_in = inputs // group * kernel * kernel
        weights[name] = (rng.standard_normal((width, inputs // group, kernel, kernel)) / np.sqrt(fan_in),
                         rng.standard_normal(width) * 0.1)
        inputs = width
    for name, (n_in, n_out) in {"fc6": (CHANNELS[-1] * 36, HIDDEN), "fc7": (HIDDEN, HIDDEN),
                                "fc8": (HIDDEN, CLASSES)}.items():
        weights[name] = (rng.standard_normal((n_out, n_in)) * 2 / np.sqrt(n_in), rng.standard_normal(n_out) * 0.1)
    return {name: (w.astype(np.float32), b.astype(np.float32)) for name, (w, b) in weights.items()}


# Writing caffemodels -------------------------------------------------------------------------

# bvlc_alexnet's layers in order (the training net's, as its released file holds them)
LAYERS = [("data", "Data"), ("conv1", "Convolution"), ("relu1", "ReLU"), ("norm1", "LRN"), ("pool1", "Pooling"),
          ("conv2", "Convolution"), ("relu2", "ReLU"), ("norm2", "LRN"), ("pool2", "Pooling"),
          ("conv3", "Convolution"), ("relu3", "ReLU"), ("conv4", "Convolution"), ("relu4", "ReLU"),
          ("conv5", "Convolution"), ("relu5", "ReLU"), ("pool5", "Pooling"), ("fc6", "InnerProduct"),
          ("relu6", "ReLU"), ("drop6", "Dropout"), ("fc7", "InnerProduct"), ("relu7", "ReLU"), ("drop7", "Dropout"),
          ("fc8", "InnerProduct"), ("loss", "SoftmaxWithLoss")]
V1_NAMES = {"Data": "DATA", "Convolution": "CONVOLUTION", "ReLU": "RELU", "LRN": "LRN", "Pooling": "POOLING",
            "InnerProduct": "INNER_PRODUCT", "Dropout": "DROPOUT", "SoftmaxWithLoss": "SOFTMAX_LOSS"}


def fill_blob(blob, array, legacy):
    if legacy:  # Caffe's old files: always four numbers, a matrix as (1, 1, out, in), a vector (1, 1, 1, n)
        shape = (1,) * (4 - array.ndim) + array.shape
        blob.num, blob.channels, blob.height, blob.width = shape
    else:
        blob.shape.dim.extend(array.shape)
    blob.data.extend(array.reshape(-1).tolist())


def write_caffemodel(path, weights, style="layer", layers=LAYERS, lrn=LRN, conv_change=None):
    """A NetParameter with ``weights``: current ``layer`` fields and ``shape`` blobs, or the
    V1 ``layers`` fields and legacy 4-number blobs of the released files (style="v1")."""
    m = caffe.messages()
    net = m["NetParameter"](name="AlexNet")
    v1_types = caffe.ENUMS["V1LayerParameter.LayerType"]
    for name, kind in layers:
        if style == "v1":
            layer = net.layers.add(name=name, type=v1_types[V1_NAMES[kind]])
        else:
            layer = net.layer.add(name=name, type=kind)
        if kind == "Convolution":
            kernel, stride, pad, group = (conv_change or {}).get(name, GEOMETRY[name])
            p = layer.convolution_param
            p.num_output, p.group = weights[name][0].shape[0], group
            p.kernel_size.append(kernel)
            if stride != 1:
                p.stride.append(stride)
            if pad:
                p.pad.append(pad)
        elif kind == "InnerProduct":
            layer.inner_product_param.num_output = weights[name][0].shape[0]
        elif kind == "LRN":
            for key, value in lrn.items():
                setattr(layer.lrn_param, key, value)
        elif kind == "Pooling":
            layer.pooling_param.kernel_size, layer.pooling_param.stride = 3, 2
        if name in weights:
            for array in weights[name]:
                fill_blob(layer.blobs.add(), array, legacy=style == "v1")
    path.write_bytes(net.SerializeToString())
    return path


# Caffe's forward pass, written independently ---------------------------------------------

def caffe_conv(x, w, b, stride, pad, group):
    """Caffe's grouped convolution (cross-correlation): group g's outputs read group g's inputs."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    windows = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]   # N, C, H', W', k, k
    per_in, per_out = x.shape[1] // group, w.shape[0] // group
    outs = [np.einsum("nchwij,ocij->nohw", windows[:, g * per_in:(g + 1) * per_in], w[g * per_out:(g + 1) * per_out])
            for g in range(group)]
    return np.concatenate(outs, axis=1) + b[None, :, None, None]


def caffe_lrn(x, local_size, alpha, beta, k):
    """Caffe's across-channel LRN over all C channels: scale = k + alpha / n * (sum of the
    squares of channels c - n//2 .. c + n//2, zero-padded), out = x * scale^-beta."""
    half = local_size // 2
    padded = np.pad(x * x, ((0, 0), (half, half), (0, 0), (0, 0)))
    sums = np.stack([padded[:, c:c + local_size].sum(axis=1) for c in range(x.shape[1])], axis=1)
    return x * (k + alpha / local_size * sums) ** -beta


def caffe_max_pool(x, size=3, stride=2):
    """Caffe's max-pooling: ceil((H - size) / stride) + 1 outputs, windows clipped at the edge."""
    H = x.shape[2]
    out = -(-(H - size) // stride) + 1
    result = np.empty(x.shape[:2] + (out, out))
    for i in range(out):
        for j in range(out):
            result[:, :, i, j] = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size].max(axis=(2, 3))
    return result


def caffe_forward(weights, x_bgr, lrn=LRN):
    x = x_bgr.astype(np.float64)
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    for name in GEOMETRY:
        _, stride, pad, group = GEOMETRY[name]
        w, b = (a.astype(np.float64) for a in weights[name])
        x = relu(caffe_conv(x, w, b, stride, pad, group))
        if name in ("conv1", "conv2"):
            x = caffe_lrn(x, **lrn)
        if name in ("conv1", "conv2", "conv5"):
            x = caffe_max_pool(x)
    x = x.reshape(len(x), -1)
    for name in ("fc6", "fc7", "fc8"):
        w, b = (a.astype(np.float64) for a in weights[name])
        x = x @ w.T + b
        x = relu(x) if name != "fc8" else x
    return x


# The tests ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def weights():
    return random_weights()


@pytest.fixture(scope="module")
def images():
    """Two RGB images on the 0..255 scale minus Caffe's mean, (2, 3, 227, 227)."""
    rng = np.random.default_rng(1)
    pixels = rng.uniform(0, 255, size=(2, 3, 227, 227))
    return (pixels - caffe.caffe_mean()[None, :, None, None]) / 64   # /64: activations near 1


@pytest.mark.parametrize("style", ["layer", "v1"])
def test_load_caffemodel_weights_and_logits(tmp_path, weights, images, style):
    path = write_caffemodel(tmp_path / f"{style}.caffemodel", weights, style)
    model = load_caffemodel(path, engine="plain", dtype="float64")
    assert (model.num_classes, model.channels, model.hidden) == (CLASSES, CHANNELS, HIDDEN)
    state = model.state_dict()
    for name, (w, b) in weights.items():
        # the model takes RGB: conv1's kernels come turned round from Caffe's BGR
        expected = w[:, ::-1] if name == "conv1" else w
        assert np.array_equal(state[f"{name}.weight"], expected), name
        assert np.array_equal(state[f"{name}.bias"], b), name
    expected = caffe_forward(weights, images[:, ::-1])          # Caffe sees BGR
    assert rel_error(model.forward(images, train=False), expected) < 1e-10
    # and the LRN changes these logits a lot, so its constants and window are checked
    assert rel_error(caffe_forward(weights, images[:, ::-1], dict(LRN, alpha=2.5 * 5)), expected) > 1e-2


def test_bgr_keeps_caffes_order_and_the_default_engine_computes_the_same(tmp_path, weights, images):
    path = write_caffemodel(tmp_path / "m.caffemodel", weights)
    expected = caffe_forward(weights, images[:, ::-1])
    bgr = load_caffemodel(path, bgr=True, engine="plain", dtype="float64")
    assert np.array_equal(bgr.state_dict()["conv1.weight"], weights["conv1"][0])
    assert rel_error(bgr.forward(images[:, ::-1].copy(), train=False), expected) < 1e-10
    fast = load_caffemodel(path)   # float32, the default engine
    assert rel_error(fast.forward(images.astype(np.float32), train=False), expected) < 1e-3


def test_the_lrn_runs_across_the_boundary_between_the_columns(tmp_path, weights, images):
    # the same weights with the paper's per-column LRN: the logits differ from Caffe's
    from tinyalex.model import AlexNet, LRNSpec
    model = load_caffemodel(write_caffemodel(tmp_path / "m.caffemodel", weights), engine="plain", dtype="float64")
    own = AlexNet(CLASSES, "cpu", channels=CHANNELS, hidden=HIDDEN, dtype="float64", engine="plain",
                  lrn=LRNSpec(size=5, k=2.0, alpha=2.5 / 5, beta=0.75, reads="own"))
    own.load_state_dict(model.state_dict())
    expected = caffe_forward(weights, images[:, ::-1])
    assert rel_error(own.forward(images, train=False), expected) > 1e-3


@pytest.mark.parametrize("change, message", [
    ("caffenet", "pools before its LRN"),
    ("group", "kernel, stride, pad and groups"),
    ("truncated", "not a caffemodel"),
])
def test_other_files_are_refused_with_the_reason(tmp_path, weights, change, message):
    path = tmp_path / "m.caffemodel"
    if change == "caffenet":   # CaffeNet: pool1 before norm1
        layers = [LAYERS[i] for i in (0, 1, 2, 4, 3)] + LAYERS[5:]
        write_caffemodel(path, weights, layers=layers)
    elif change == "group":
        write_caffemodel(path, weights, conv_change={"conv4": (3, 1, 1, 1)})
    else:
        write_caffemodel(path, weights)
        path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(CaffeModelError, match=message):
        load_caffemodel(path, engine="plain")


def test_match_classes_reorders_the_outputs(tmp_path, weights, images):
    model = load_caffemodel(write_caffemodel(tmp_path / "m.caffemodel", weights), engine="plain", dtype="float64")
    before = model.forward(images, train=False)
    caffe_wnids = [f"n0{k}" for k in range(CLASSES)]          # sorted, as Caffe's ImageNet outputs are
    data_wnids = caffe_wnids[3:] + caffe_wnids[:3]
    caffe.match_classes(model, data_wnids)
    after = model.forward(images, train=False)
    assert np.array_equal(after, before[:, [3, 4, 5, 6, 0, 1, 2]])
    with pytest.raises(CaffeModelError, match="holds 3 of the model's 7 classes"):
        caffe.match_classes(model, data_wnids[:3], caffe_wnids)


# The programs -------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
WNIDS = [f"n0{k:07d}" for k in range(CLASSES)]                 # Caffe's outputs: sorted wnids


def example(name, *args):
    return subprocess.run([sys.executable, str(REPO / "examples" / name), *map(str, args)], capture_output=True,
                          text=True, cwd=REPO)


def caffe_input(images_rgb_uint8):
    """(N, 256, 256, 3) uint8 RGB -> (N, 3, 227, 227) BGR as Caffe's data layer fed bvlc_alexnet
    at test time: the centre crop (offset (256 - 227) // 2 = 14) minus the mean, BGR."""
    crop = images_rgb_uint8[:, 14:241, 14:241, ::-1].astype(np.float64)   # BGR
    return (crop - np.array(caffe.CAFFE_MEAN_BGR)).transpose(0, 3, 1, 2)


def softmax_rows(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def caffe_files(tmp_path_factory, weights):
    """A caffemodel, its synset words, and prepared val.h5 / train.h5 whose classes are the
    model's, listed in another order than Caffe's."""
    root = tmp_path_factory.mktemp("caffe")
    model = write_caffemodel(root / "m.caffemodel", weights)
    words = root / "synset_words.txt"
    words.write_text("".join(f"{wnid} thing {k}, object {k}\n" for k, wnid in enumerate(WNIDS)))
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(3)
    data_wnids = WNIDS[::-1]
    labels = np.arange(CLASSES)
    images = rng.integers(0, 256, size=(CLASSES, 256, 256, 3)).astype(np.uint8)
    write_split(data / "val.h5", images, labels, wnids=data_wnids, class_names=data_wnids)
    write_split(data / "train.h5", images, labels, wnids=data_wnids, class_names=data_wnids)
    return dict(model=model, words=words, data=data, images=images, labels=labels, data_wnids=data_wnids)


def test_evaluate_caffemodel_reports_caffes_centre_crop_errors(caffe_files, weights, tmp_path):
    report = tmp_path / "result.json"
    done = example("evaluate.py", "--caffemodel", caffe_files["model"], caffe_files["data"], "--devices", "cpu",
                   "--no-ten-crop", "--json", report)
    assert done.returncode == 0, done.stderr
    p = softmax_rows(caffe_forward(weights, caffe_input(caffe_files["images"]).astype(np.float32)))
    # data label l is wnid data_wnids[l], which is Caffe's output WNIDS.index(wnid)
    truth = np.array([WNIDS.index(caffe_files["data_wnids"][label]) for label in caffe_files["labels"]])
    ranks = (p > p[np.arange(len(truth)), truth][:, None]).sum(axis=1)
    result = json.loads(report.read_text())
    assert result["top1_error"] == pytest.approx(100 * np.mean(ranks >= 1))
    assert result["top5_error"] == pytest.approx(100 * np.mean(ranks >= 5))
    # random weights give every image nearly the same top class, so the errors alone may not
    # see a wrong class order; the loss, from each image's true class, does
    assert result["loss"] == pytest.approx(-np.mean(np.log(p[np.arange(len(truth)), truth])), rel=1e-4)
    assert "42.9%" in done.stdout and "19.8%" in done.stdout   # the published errors beside them


def test_evaluate_caffemodel_refuses_a_subset_of_the_classes(caffe_files, tmp_path):
    write_split(tmp_path / "val.h5", caffe_files["images"][:3], np.arange(3), wnids=WNIDS[:3])
    done = example("evaluate.py", "--caffemodel", caffe_files["model"], tmp_path, "--devices", "cpu")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: the data holds 3 classes, the model 7: give Caffe's synset words file to say which output is "
        "which class"]


def test_predict_caffemodel_names_the_top_five(caffe_files, weights, tmp_path):
    image = caffe_files["images"][2]
    path = tmp_path / "photo.png"
    Image.fromarray(image).save(path)          # already 256 x 256: the resize leaves it as it is
    done = example("predict.py", "--caffemodel", caffe_files["model"], "--synset-words", caffe_files["words"],
                   path, "--center-only", "--devices", "cpu")
    assert done.returncode == 0, done.stderr
    p = softmax_rows(caffe_forward(weights, caffe_input(image[None]).astype(np.float32)))[0]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == f"{path} (centre crop)"
    expected = np.argsort(-p, kind="stable")[:5]
    printed = [re.match(r"\s+([\d.]+)%  (.*)$", line).groups() for line in lines[1:]]
    assert [name for _, name in printed] == [f"thing {k}, object {k}" for k in expected]
    assert [float(percent) for percent, _ in printed] == pytest.approx(100 * p[expected], abs=0.006)


def test_pictures_draws_both_columns_and_figure_4(caffe_files, weights, tmp_path):
    grey_and_colour = dict(weights)
    w, b = weights["conv1"]
    w = w.copy()
    w[:3] = w[:3, :1]                              # column a: one pattern in B, G and R: grey
    w[3:] = w[3:] - w[3:].mean(axis=1, keepdims=True)   # column b: no grey part at all
    grey_and_colour["conv1"] = (w, b)
    model = write_caffemodel(tmp_path / "m.caffemodel", grey_and_colour)
    done = example("pictures.py", "--caffemodel", model, "--data", caffe_files["data"], "--out", tmp_path / "out",
                   "--devices", "cpu")
    assert done.returncode == 0, done.stderr
    assert "column a: colour share of conv1's kernels, median 0.00" in done.stdout
    assert "column b: colour share of conv1's kernels, median 1.00" in done.stdout
    sizes = {}
    for name in ("conv1_kernels", "predictions", "neighbours"):
        with Image.open(tmp_path / "out" / f"{name}.png") as picture:
            sizes[name] = picture.size
    # plots.py's sizes: 3 kernels per column in one row; 7 images in rows of 4; 5 queries, 6 neighbours
    assert sizes == {"conv1_kernels": (500, 290), "predictions": (1040, 860), "neighbours": (1050, 950)}


def test_colour_shares():
    rng = np.random.default_rng(0)
    pattern = rng.standard_normal((1, 1, 11, 11))
    pattern -= pattern.mean()
    grey = np.repeat(pattern, 3, axis=1)                                  # energy 3 |p|^2, all grey
    colour = np.concatenate([pattern, -pattern, 0 * pattern], axis=1)     # energy 2 |p|^2, no grey part
    half = grey + colour * np.sqrt(3 / 2)                                 # 3 |p|^2 of each
    assert plots.colour_shares(np.concatenate([grey, colour, half])) == pytest.approx([0, 1, 0.5])


def test_evaluate_caffemodel_with_caffes_mean_image(caffe_files, weights, tmp_path):
    # a mean image of Caffe's file format: a BlobProto (1, 3, 256, 256), BGR, legacy shape
    mean_bgr = np.random.default_rng(4).uniform(80, 160, size=(3, 256, 256)).astype(np.float32)
    blob = caffe.messages()["BlobProto"]()
    fill_blob(blob, mean_bgr[None], legacy=True)
    mean_file = tmp_path / "imagenet_mean.binaryproto"
    mean_file.write_bytes(blob.SerializeToString())
    report = tmp_path / "result.json"
    done = example("evaluate.py", "--caffemodel", caffe_files["model"], caffe_files["data"], "--devices", "cpu",
                   "--no-ten-crop", "--mean", mean_file, "--json", report)
    assert done.returncode == 0, done.stderr
    images = caffe_files["images"]
    x = images[:, 14:241, 14:241, ::-1].transpose(0, 3, 1, 2).astype(np.float64) - mean_bgr[None, :, 14:241, 14:241]
    p = softmax_rows(caffe_forward(weights, x.astype(np.float32)))
    truth = np.array([WNIDS.index(caffe_files["data_wnids"][label]) for label in caffe_files["labels"]])
    assert json.loads(report.read_text())["loss"] == pytest.approx(-np.mean(np.log(p[np.arange(7), truth])), rel=1e-4)

    small = tmp_path / "small.binaryproto"
    blob = caffe.messages()["BlobProto"]()
    fill_blob(blob, mean_bgr[None, :, :250, :250].copy(), legacy=False)
    small.write_bytes(blob.SerializeToString())
    done = example("evaluate.py", "--caffemodel", caffe_files["model"], caffe_files["data"], "--devices", "cpu",
                   "--mean", small)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: a 250-pixel mean image for 256-pixel images"]


def test_bvlc_alexnets_lrn_constants_with_caffes_defaults(tmp_path, weights):
    # bvlc_alexnet's files give local_size, alpha and beta; k is Caffe's default, 1
    path = write_caffemodel(tmp_path / "m.caffemodel", weights, "v1", lrn=dict(local_size=5, alpha=1e-4, beta=0.75))
    _, lrn = caffe.read_caffemodel(path)
    assert (lrn.size, lrn.k, lrn.beta, lrn.reads) == (5, 1.0, 0.75, "both")
    assert lrn.alpha == pytest.approx(2e-5, rel=1e-6)     # Caffe's alpha / n: per squared term


def test_prepare_image_is_caffes_centre_crop_minus_the_mean_pixel(tmp_path):
    image = np.random.default_rng(6).integers(0, 256, size=(256, 256, 3)).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")     # already 256 x 256: nothing resampled
    crop = image[14:241, 14:241].astype(np.float64)         # Caffe's centre: offset (256 - 227) // 2
    rgb = (crop - np.array(caffe.CAFFE_MEAN_BGR)[::-1]).transpose(2, 0, 1)[None]
    assert np.allclose(caffe.prepare_image(tmp_path / "photo.png"), rgb, atol=1e-4)
    assert np.allclose(caffe.prepare_image(tmp_path / "photo.png", bgr=True), rgb[:, ::-1], atol=1e-4)
    # a 512 x 256 ramp from 0 to 255, left to right: squashed to 256 x 256 it is still a ramp
    # from 0 to 255 (the central square would run from 64 to 191)
    ramp = np.repeat(np.repeat(np.arange(256, dtype=np.uint8), 2)[None, :, None], 256, axis=0)
    Image.fromarray(np.repeat(ramp, 3, axis=2)).save(tmp_path / "wide.png")
    squashed = caffe.load_image_like_caffe(tmp_path / "wide.png")
    assert squashed.shape == (256, 256, 3)
    assert np.abs(squashed[128, :, 0].astype(int) - np.arange(256)).max() <= 2
