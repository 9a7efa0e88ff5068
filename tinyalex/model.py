"""AlexNet as the paper draws it: two columns, one per GPU (sections 3.2 and 3.5, Figure 2).

Each column holds half of every layer's kernels or neurons, with its parameters and
activations on its own device. The columns work independently except at four places,
where the next layer reads the outputs of *both* columns (the crossings):

    image ──┬──> column a: conv1 > conv2 ──┐   ┌──> conv3 > conv4 > conv5 ──┐   ┌──> fc6 ──┐   ┌──> fc7 ──┐
            │                              ├───┤                            ├───┤          ├───┤          ├──> fc8 (on a)
            └──> column b: conv1 > conv2 ──┘   └──> conv3 > conv4 > conv5 ──┘   └──> fc6 ──┘   └──> fc7 ──┘
                                        crossing 1                       crossing 2    crossing 3  crossing 4

(conv1 and conv2 are followed by ReLU, LRN and max-pooling, conv5 by ReLU and max-pooling,
fc6 and fc7 by ReLU and dropout). fc8, the classifier, is whole and lives on column a's
device: the paper leaves its placement open.

On one device this is the familiar one-column AlexNet with grouped convolutions
(groups=2 at conv2, conv4 and conv5): :meth:`AlexNet.state_dict` gives exactly that
merged view, column a first, so weights can be compared with other frameworks. One
detail differs from Caffe's and PyTorch's one-column nets: as on the paper's two GPUs,
each column's LRN normalizes over its own half of the channels, so the channels next to
the boundary between the halves (within size//2 of it) see a shorter window.
"""

import numpy as np

from .backend import array_module, check_device, default_device, on_device, to_device, to_numpy
from .layers import LRN, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU
from .layers.conv import output_size

PAPER_CHANNELS = (96, 256, 384, 384, 256)  # conv1..conv5 kernels, both columns together
PAPER_HIDDEN = 4096                         # fc6 and fc7 neurons, both columns together
PARAMETER_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
POSITIVE_BIAS_LAYERS = ("conv2", "conv4", "conv5", "fc6", "fc7")  # bias 1 in the paper (section 5)


class Stage:
    """Layers that run one after another inside one column, between two crossings."""

    def __init__(self, device, layers):
        self.device = device
        self.layers = layers            # {name: layer}, in order
        self.output_shapes = {}         # {name: shape} of the last forward pass

    def forward(self, x, train):
        with on_device(self.device):
            for name, layer in self.layers.items():
                x = layer.forward(x, train) if isinstance(layer, Dropout) else layer.forward(x)
                self.output_shapes[name] = x.shape
        return x

    def backward(self, dout):
        with on_device(self.device):
            for layer in reversed(self.layers.values()):
                dout = layer.backward(dout)
        return dout


class Column:
    """One column ("tower"): half of conv1..fc7, on one device.

    ``stages[0]`` reads the image; ``stages[1..3]`` read both columns' outputs of the stage
    before (the crossings).
    """

    def __init__(self, name, device, channels, hidden, pool5_size, rng, weight_std, positive_bias,
                 dropout, dtype):
        self.name, self.device = name, device
        c1, c2, c3, c4, c5 = (c // 2 for c in channels)
        h = hidden // 2

        def conv(layer, *args, **kwargs):
            bias = positive_bias if layer in POSITIVE_BIAS_LAYERS else 0.0
            return Conv2D(*args, **kwargs, weight_std=std_of(weight_std, layer), bias=bias, rng=rng, device=device,
                          dtype=dtype)

        def fc(layer, *args):
            bias = positive_bias if layer in POSITIVE_BIAS_LAYERS else 0.0
            return Linear(*args, weight_std=std_of(weight_std, layer), bias=bias, rng=rng, device=device, dtype=dtype)

        def drop():
            return Dropout(dropout, seed=int(rng.integers(2**63)))

        self.stages = [
            Stage(device, {
                "conv1": conv("conv1", 3, c1, 11, stride=4), "relu1": ReLU(), "lrn1": LRN(), "pool1": MaxPool2D(),
                "conv2": conv("conv2", c1, c2, 5, pad=2), "relu2": ReLU(), "lrn2": LRN(), "pool2": MaxPool2D(),
            }),
            Stage(device, {  # conv3 reads both columns' pool2 outputs
                "conv3": conv("conv3", 2 * c2, c3, 3, pad=1), "relu3": ReLU(),
                "conv4": conv("conv4", c3, c4, 3, pad=1), "relu4": ReLU(),
                "conv5": conv("conv5", c4, c5, 3, pad=1), "relu5": ReLU(), "pool5": MaxPool2D(),
                "flatten": Flatten(),
            }),
            Stage(device, {"fc6": fc("fc6", 2 * c5 * pool5_size**2, h), "relu6": ReLU(), "drop6": drop()}),
            Stage(device, {"fc7": fc("fc7", 2 * h, h), "relu7": ReLU(), "drop7": drop()}),
        ]
        self.layer("conv1").input_grad = False  # nobody needs the gradient of the image

    def layer(self, name):
        for stage in self.stages:
            if name in stage.layers:
                return stage.layers[name]
        raise KeyError(name)


def fan_ins(channels, hidden, pool5_size):
    """Inputs per neuron of each layer (both columns' inputs where a layer reads both)."""
    c1, c2, c3, c4, c5 = channels
    return {"conv1": 3 * 11 * 11, "conv2": c1 // 2 * 5 * 5, "conv3": c2 * 3 * 3, "conv4": c3 // 2 * 3 * 3,
            "conv5": c4 // 2 * 3 * 3, "fc6": c5 * pool5_size**2, "fc7": hidden, "fc8": hidden}


def pool5_size(image_size):
    size = output_size(image_size, 11, 4, 0)        # conv1
    for _ in range(3):                              # pool1, pool2, pool5 (conv2..5 keep the size)
        size = output_size(size, 3, 2, 0)
    return size


def paper_gain_weight_std(image_size, channels, hidden):
    """Initial weight spreads that give a narrower net the paper's gain in every layer.

    A neuron's output spread grows like std * sqrt(fan-in). The paper's N(0, 0.01^2) suits
    its fan-ins (1200 to 9216); a net with fewer kernels would lose signal at every layer
    and take long to start learning. std = 0.01 * sqrt(paper fan-in / fan-in) keeps each
    layer's gain as in the paper; for the paper's own geometry it is 0.01 everywhere.
    """
    paper = fan_ins(PAPER_CHANNELS, PAPER_HIDDEN, 6)
    ours = fan_ins(channels, hidden, pool5_size(image_size))
    return {layer: 0.01 * (paper[layer] / ours[layer]) ** 0.5 for layer in paper}


def std_of(weight_std, layer):
    """The initial weight spread of ``layer``: one number for all, or a dict by layer name."""
    return weight_std[layer] if isinstance(weight_std, dict) else weight_std


def cross(xa, xb, device):
    """A crossing: both columns' outputs side by side (a first) on ``device``."""
    xp = array_module(device)
    with on_device(device):
        return xp.concatenate([to_device(xa, device), to_device(xb, device)], axis=1)


def uncross(d, device_a, device_b):
    """Backward of the crossings: d(concatenation) -> (d for column a's part, d for b's part)."""
    half = d.shape[1] // 2
    return to_device(d[:, :half], device_a), to_device(d[:, half:], device_b)


def sum_crossed_gradients(dxa, dxb, device_a, device_b):
    """Backward of a crossing between stages. Each column's output fed both columns' next
    stage, so its gradient is the sum of its parts of dxa and dxb (the gradients of the two
    stages' inputs) -> (gradient for column a's output, for column b's output)."""
    da_from_a, db_from_a = uncross(dxa, device_a, device_b)
    da_from_b, db_from_b = uncross(dxb, device_a, device_b)
    with on_device(device_a):
        da = da_from_a + da_from_b
    with on_device(device_b):
        db = db_from_a + db_from_b
    return da, db


class AlexNet:
    """The two-column AlexNet. x (N, 3, 227, 227) -> logits (N, num_classes).

    devices: one device for both columns ("cpu" or a CUDA id), or a pair, e.g. (0, 1) for
        two GPUs. By default the first GPU if there is one, else the CPU.
    image_size, channels, hidden: the geometry; the defaults are the paper's. A smaller
        net with the same structure (for tests or a laptop) changes these.
    weight_std, positive_bias: the paper's initialisation, N(0, 0.01^2) weights and bias 1
        in conv2, conv4, conv5, fc6 and fc7 (0 elsewhere); Caffe's port used 0.1.
        weight_std may also be a dict {layer name: std}, for nets narrower than the paper's.
    seed: makes the initial weights (the same on every device) and the dropout masks reproducible.
    """

    def __init__(self, num_classes=1000, devices=None, *, image_size=227, channels=PAPER_CHANNELS,
                 hidden=PAPER_HIDDEN, dropout=0.5, weight_std=0.01, positive_bias=1.0, seed=0,
                 dtype="float32"):
        if devices is None:
            devices = default_device()
        if not isinstance(devices, (tuple, list)):
            devices = (devices, devices)
        self.devices = tuple(check_device(d) for d in devices)
        if len(self.devices) != 2:
            raise ValueError(f"AlexNet has two columns: give one device or two, not {len(devices)}")
        if any(c % 2 for c in channels) or hidden % 2:
            raise ValueError("the channels and hidden sizes are split between two columns, so they must be even")
        self.num_classes, self.image_size = num_classes, image_size
        self.channels, self.hidden = tuple(channels), hidden
        self.dtype = np.dtype(dtype)

        size = pool5_size(image_size)
        rng = np.random.default_rng(seed)
        self.column_a, self.column_b = (
            Column(name, device, self.channels, hidden, size, rng, weight_std, positive_bias, dropout, self.dtype)
            for name, device in zip("ab", self.devices))
        self.fc8 = Linear(hidden, num_classes, weight_std=std_of(weight_std, "fc8"), rng=rng, device=self.devices[0],
                          dtype=self.dtype)

    # Forward and backward ----------------------------------------------------------------

    def forward(self, x, train=True):
        """Images (N, 3, H, W), on any device -> logits (N, num_classes) on column a's device.

        train=False turns dropout off (evaluation).
        """
        features = self.features(x, train)
        with on_device(self.column_a.device):
            return self.fc8.forward(features)

    def features(self, x, train=False):
        """The fc7 activations of both columns, (N, hidden), on column a's device: the input
        of fc8, and the 4096-dimensional image codes of the paper's Figure 4."""
        a, b = self.column_a, self.column_b
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        # Both columns see the whole image. Each column's work is issued before anything
        # waits for the other, so on two GPUs the columns run at the same time.
        xa = a.stages[0].forward(to_device(x, a.device), train)
        xb = b.stages[0].forward(to_device(x, b.device), train)
        for stage in (1, 2, 3):  # the crossings: conv3, fc6 and fc7 read both columns
            # both inputs are gathered before either column's stage is queued, so that the
            # copies wait only for the previous stage and the columns go on side by side
            input_a, input_b = cross(xa, xb, a.device), cross(xa, xb, b.device)
            xa = a.stages[stage].forward(input_a, train)
            xb = b.stages[stage].forward(input_b, train)
        return cross(xa, xb, a.device)

    def backward(self, dlogits):
        """d(loss)/d(logits) -> fills the gradient of every parameter."""
        a, b = self.column_a, self.column_b
        with on_device(a.device):
            dx = self.fc8.backward(dlogits)
        da, db = uncross(dx, a.device, b.device)
        for stage in (3, 2, 1):
            dxa = a.stages[stage].backward(da)
            dxb = b.stages[stage].backward(db)
            da, db = sum_crossed_gradients(dxa, dxb, a.device, b.device)
        a.stages[0].backward(da)
        b.stages[0].backward(db)

    # Parameters --------------------------------------------------------------------------

    def layers_with_parameters(self):
        """Yield ``(prefix, layer)`` for every layer that has parameters, column a first."""
        for column in (self.column_a, self.column_b):
            for name in PARAMETER_LAYERS[:-1]:
                yield f"column_{column.name}.{name}", column.layer(name)
        yield "fc8", self.fc8

    def parameters(self):
        """Yield ``(name, parameter, gradient)`` on the parameter's own device, e.g.
        ``("column_b.conv2.weight", w, dw)``. The optimizer updates them in place."""
        for prefix, layer in self.layers_with_parameters():
            for name, param, grad in layer.parameters():
                yield f"{prefix}.{name}", param, grad

    def num_parameters(self):
        return sum(int(param.size) for _, param, _ in self.parameters())

    def state_dict(self):
        """The merged one-device view as NumPy arrays: ``conv1.weight`` (96, 3, 11, 11),
        ``conv2.weight`` (256, 48, 5, 5), ..., ``fc8.bias`` (1000,); column a's half first.

        conv2, conv4 and conv5 come out as grouped convolutions (groups=2); conv3 and the
        fc layers as ordinary ones, because they read both columns.
        """
        state = {}
        for name in PARAMETER_LAYERS[:-1]:
            for param in ("weight", "bias"):
                halves = [to_numpy(getattr(column.layer(name), param)) for column in (self.column_a, self.column_b)]
                state[f"{name}.{param}"] = np.concatenate(halves, axis=0)
        state["fc8.weight"], state["fc8.bias"] = np.array(to_numpy(self.fc8.weight)), np.array(to_numpy(self.fc8.bias))
        return state

    def load_state_dict(self, state):
        """Copy a merged view (as :meth:`state_dict` gives) into the two columns, in place."""
        expected = {k: v.shape for k, v in self.state_dict().items()}
        missing, unexpected = expected.keys() - state.keys(), state.keys() - expected.keys()
        if missing or unexpected:
            raise KeyError(f"state_dict mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        for key, shape in expected.items():
            if tuple(state[key].shape) != shape:
                raise ValueError(f"{key}: expected shape {shape}, got {tuple(state[key].shape)}")
        for name in PARAMETER_LAYERS[:-1]:
            for param in ("weight", "bias"):
                value = np.asarray(state[f"{name}.{param}"], dtype=self.dtype)
                half = value.shape[0] // 2
                for column, part in ((self.column_a, value[:half]), (self.column_b, value[half:])):
                    getattr(column.layer(name), param)[...] = to_device(np.ascontiguousarray(part), column.device)
        self.fc8.weight[...] = to_device(np.asarray(state["fc8.weight"], dtype=self.dtype), self.devices[0])
        self.fc8.bias[...] = to_device(np.asarray(state["fc8.bias"], dtype=self.dtype), self.devices[0])

    def activation_shapes(self):
        """``{column: {layer: output shape}}`` of the last forward pass."""
        return {f"column_{c.name}": {k: v for s in c.stages for k, v in s.output_shapes.items()}
                for c in (self.column_a, self.column_b)}

    def __repr__(self):
        return (f"AlexNet(num_classes={self.num_classes}, devices={self.devices}, image_size={self.image_size}, "
                f"channels={self.channels}, hidden={self.hidden})")
