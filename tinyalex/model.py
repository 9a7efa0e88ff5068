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

The whole architecture is one table, :data:`PAPER_LAYERS`: one row per layer with
weights, saying its kernel, stride and padding, which outputs it reads, and what follows
it. The columns, the fan-ins, the output sizes and PyTorch's equivalent in ``bench/`` are
all read from it; the ablations of the paper (tanh for ReLU, no LRN, pooling 2/2, one
column, a middle conv layer removed) are changes to its entries, made by
:func:`architecture`.

On one device this is the familiar one-column AlexNet with grouped convolutions
(groups=2 at conv2, conv4 and conv5): :meth:`AlexNet.state_dict` gives exactly that
merged view, column a first, so weights can be compared with other frameworks. One
detail differs from Caffe's and PyTorch's one-column nets: as on the paper's two GPUs,
each column's LRN normalizes over its own half of the channels, so the channels next to
the boundary between the halves (within size//2 of it) see a shorter window. An
:class:`LRNSpec` with ``reads="both"`` gives the one-column nets' LRN instead, over the
whole stack of channels: a crossing in front of each LRN (:mod:`tinyalex.caffe` builds
Caffe's ``bvlc_alexnet`` so).
"""

from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from . import engines
from .backend import array_module, check_device, default_device, on_device, to_device, to_numpy
from .layers import LRN, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU, Tanh
from .layers.lrn import WholeStackLRN
from .layers.conv import exact_output_size, output_size


@dataclass(frozen=True)
class LRNSpec:
    """The constants of a local response normalization (section 3.3) and the channels it sees.

    ``alpha`` multiplies each squared term, as the paper writes it (Caffe's and PyTorch's
    alpha is ``size`` times larger). ``reads``: "own", each column normalizes its own
    channels, as on the paper's two GPUs; "both", the window runs across the boundary
    between the columns, as in a one-device net (Caffe's ``bvlc_alexnet``).
    """

    size: int = 5
    k: float = 2.0
    alpha: float = 1e-4
    beta: float = 0.75
    reads: str = "own"

    def __post_init__(self):
        if self.reads not in ("own", "both"):
            raise ValueError(f"an LRN reads its 'own' column's channels or 'both' columns', not {self.reads!r}")


PAPER_LRN = LRNSpec()   # k = 2, n = 5, alpha = 1e-4, beta = 0.75, per column


@dataclass(frozen=True)
class LayerSpec:
    """One row of the architecture table: a layer with weights, and what follows it.

    name: "conv1" ... "fc8"; the layers after it are named with its number ("relu1", ...).
    width: kernels (conv) or neurons (fc), all columns together.
    kernel, stride, pad: a convolution's k x k window; kernel 0 makes a fully-connected layer.
    reads: where the input comes from: "image"; "own", the layer's own column only (a
        grouped convolution on one device); or "both", every column's output (a crossing).
    activation: "relu", "tanh", or None (the classifier).
    lrn: the :class:`LRNSpec` of the local response normalization after the activation
        (section 3.3), or False for none.
    pool: (size, stride) of the max-pooling after it, or None (section 3.4).
    dropout: the probability of dropping an output, 0 for none (section 4.2).
    positive_bias: starts with the positive bias (the paper's 1) rather than 0 (section 5).
    """

    name: str
    width: int
    kernel: int = 0
    stride: int = 1
    pad: int = 0
    reads: str = "own"
    activation: str | None = "relu"
    lrn: LRNSpec | bool = False
    pool: tuple | None = None
    dropout: float = 0.0
    positive_bias: bool = False

    @property
    def is_conv(self):
        return self.kernel > 0

    @property
    def number(self):
        """"conv1" -> "1": the suffix of the names of the layers that follow it."""
        return "".join(filter(str.isdigit, self.name))


# The paper's network (section 3.5, Figure 2). Widths are both columns together; the last
# row is the classifier, which is not split between the columns.
PAPER_LAYERS = (
    #          name    width kernel stride pad  reads    what follows it
    LayerSpec("conv1",    96,  11,    4,    0, "image", lrn=PAPER_LRN, pool=(3, 2)),
    LayerSpec("conv2",   256,   5,    1,    2, "own",   lrn=PAPER_LRN, pool=(3, 2), positive_bias=True),
    LayerSpec("conv3",   384,   3,    1,    1, "both"),
    LayerSpec("conv4",   384,   3,    1,    1, "own",   positive_bias=True),
    LayerSpec("conv5",   256,   3,    1,    1, "own",   pool=(3, 2), positive_bias=True),
    LayerSpec("fc6",    4096,                  reads="both", dropout=0.5, positive_bias=True),
    LayerSpec("fc7",    4096,                  reads="both", dropout=0.5, positive_bias=True),
    LayerSpec("fc8",    1000,                  reads="both", activation=None),
)
PAPER_CHANNELS = tuple(spec.width for spec in PAPER_LAYERS if spec.is_conv)   # conv1..conv5 kernels
PAPER_HIDDEN = PAPER_LAYERS[-2].width                                         # fc6 and fc7 neurons
PARAMETER_LAYERS = tuple(spec.name for spec in PAPER_LAYERS)
ACTIVATIONS = {"relu": ReLU, "tanh": Tanh}


def removal_refused(name):
    """Why the paper's net cannot lose the conv layer ``name`` and stay itself with one layer
    fewer, or None for a middle layer it can lose (section 7, :data:`DROPPABLE_CONVS`)."""
    convs = [spec.name for spec in PAPER_LAYERS if spec.is_conv]
    if name not in convs:
        return f"{name!r} is not one of the conv layers {convs}"
    spec = next(spec for spec in PAPER_LAYERS if spec.name == name)
    if name in (convs[0], convs[-1]):
        return f"{name} is not a middle layer: section 7 removes one of the layers between {convs[0]} and {convs[-1]}"
    if spec.reads == "both":
        return (f"{name} reads both columns, the only crossing between conv layers: without it the columns "
                "would not meet before fc6, a change to more than the depth")
    if spec.lrn or spec.pool:
        return (f"the LRN and max-pooling after {name} would go with it and change the size of every later "
                "layer, not only the depth")
    return None


# The middle conv layers whose removal leaves every crossing, size and normalization of the
# paper's net as it was: conv4 alone (conv3 is a crossing; conv2 carries LRN and pooling).
DROPPABLE_CONVS = tuple(spec.name for spec in PAPER_LAYERS if spec.is_conv and removal_refused(spec.name) is None)


def architecture(num_classes=1000, channels=PAPER_CHANNELS, hidden=PAPER_HIDDEN, *, activation="relu",
                 lrn=True, pool=(3, 2), dropout=0.5, drop_conv=None):
    """The table with these widths and switches; every default is the paper's.

    Each switch changes entries of :data:`PAPER_LAYERS` rather than adding a branch to the
    model: ``activation`` every activation, ``lrn=False`` removes both LRN layers and an
    :class:`LRNSpec` gives both its constants (True keeps the paper's),
    ``pool`` sets every max-pooling's (size, stride), ``dropout`` both dropout layers.
    ``drop_conv`` removes the row of one middle conv layer (section 7: "removing any of the
    middle layers results in a loss of about 2% for the top-1 performance"); ``channels``
    still gives all five conv widths, the removed layer's unused. Only "conv4" is accepted:
    conv5 then reads conv3's maps, own column only, as it read conv4's, and every crossing
    stays. Removing conv3 would also remove the only crossing between conv layers (it reads
    both columns), and removing conv2 would take its LRN and pooling and change every later
    size; :func:`removal_refused` says so when asked for them.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation is one of {sorted(ACTIVATIONS)}, not {activation!r}")
    pool = tuple(pool)
    if len(pool) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in pool):
        raise ValueError(f"pool is (size, stride) of positive integers, e.g. (3, 2), not {pool!r}")
    convs = [spec for spec in PAPER_LAYERS if spec.is_conv]
    if len(channels) != len(convs):
        raise ValueError(f"channels gives the kernels of the {len(convs)} conv layers, got {len(channels)} numbers")
    widths = {spec.name: width for spec, width in zip(convs, channels)}
    widths.update({spec.name: hidden for spec in PAPER_LAYERS[len(convs):-1]})
    widths[PAPER_LAYERS[-1].name] = num_classes
    if drop_conv is not None and removal_refused(drop_conv):
        raise ValueError(f"drop_conv={drop_conv!r} is refused: {removal_refused(drop_conv)}")
    table = []
    for spec in PAPER_LAYERS:
        if spec.name == drop_conv:
            continue
        table.append(replace(spec, width=widths[spec.name],
                             activation=spec.activation and activation,
                             lrn=spec.lrn and (spec.lrn if lrn is True else lrn),
                             pool=spec.pool and pool,
                             dropout=spec.dropout and dropout))
    return tuple(table)


@dataclass(frozen=True)
class Shape:
    """What the walk through the table finds for one row (per column where it says so)."""

    in_channels: int    # conv: input channels one kernel sees; fc: input features of one neuron
    in_size: int        # conv: the input's height (= width); fc: 0
    out_size: int       # after the layer and its pooling; fc: 0
    fan_in: int         # inputs per neuron


def walk(layers, image_size, columns):
    """{row name: :class:`Shape`} for a table on ``image_size`` images with ``columns`` columns.

    A convolution must tile its input exactly (as 227 does and the paper's 224 does not),
    so an image size that would quietly leave pixels out is refused, with the reason.
    Pooling rounds down, as in the paper's s = z = 2 comparison (55 -> 27 leaves the last
    row and column out).
    """
    shapes, channels, size = {}, 3, image_size
    for spec in layers:
        if spec.reads == "own" and channels % columns:
            raise ValueError(f"{spec.name} reads its own column's {channels} inputs, which do not split "
                             f"into {columns} columns")
        seen = channels // columns if spec.reads == "own" else channels
        if spec.is_conv:
            out = exact_output_size(size, spec.kernel, spec.stride, spec.pad)
            if spec.pool:
                out = output_size(out, *spec.pool)
            shapes[spec.name] = Shape(seen, size, out, seen * spec.kernel**2)
            size = out
        else:
            features = seen * size * size   # the first fc layer reads the flattened maps
            shapes[spec.name] = Shape(features, 0, 0, features)
            size = 1
        channels = spec.width
    return shapes


def schedule(layers):
    """Yield ``(name, kind, spec)`` for every layer a table makes, in the order they run.

    ``kind`` is "weights" (the row's conv or fc layer), "activation", "lrn", "pool",
    "dropout" or "flatten" (between the last conv and the first fc layer); the layers that
    follow a row are named with its number: conv1, relu1, lrn1, pool1, conv2, ...
    """
    for i, spec in enumerate(layers):
        n = spec.number
        yield spec.name, "weights", spec
        if spec.activation:
            yield f"{spec.activation}{n}", "activation", spec
        if spec.lrn:
            yield f"lrn{n}", "lrn", spec
        if spec.pool:
            yield f"pool{n}", "pool", spec
        if spec.dropout:
            yield f"drop{n}", "dropout", spec
        if spec.is_conv and i + 1 < len(layers) and not layers[i + 1].is_conv:
            yield "flatten", "flatten", spec


def crosses(kind, spec):
    """Whether the step ``(kind, spec)`` of :func:`schedule` reads every column's output, so
    that a new stage of each column begins there, behind a crossing."""
    if kind == "weights":
        return spec.reads == "both"
    return kind == "lrn" and spec.lrn.reads == "both"


def fan_ins(layers, image_size, columns):
    """Inputs per neuron of each layer (both columns' inputs where a layer reads both)."""
    return {name: shape.fan_in for name, shape in walk(layers, image_size, columns).items()}


def paper_gain_weight_std(image_size, channels, hidden, columns=2, drop_conv=None):
    """Initial weight spreads that give a narrower net the paper's gain in every layer.

    A neuron's output spread grows like std * sqrt(fan-in). The paper's N(0, 0.01^2) suits
    its fan-ins (1200 to 9216); a net with fewer kernels would lose signal at every layer
    and take long to start learning. std = 0.01 * sqrt(paper fan-in / fan-in) keeps each
    layer's gain as in the paper; for the paper's own geometry it is 0.01 everywhere.
    ``drop_conv`` names a removed layer (:func:`architecture`), whose successor reads the
    maps of the layer before it.
    """
    paper = fan_ins(PAPER_LAYERS, 227, 2)
    ours = fan_ins(architecture(channels=channels, hidden=hidden, drop_conv=drop_conv), image_size, columns)
    return {layer: 0.01 * (paper[layer] / ours[layer]) ** 0.5 for layer in ours}


def std_of(weight_std, layer):
    """The initial weight spread of ``layer``: one number for all, or a dict by layer name."""
    return weight_std[layer] if isinstance(weight_std, dict) else weight_std


# The crossings ---------------------------------------------------------------------------

def cross(outputs, device):
    """A crossing: the columns' outputs side by side (column a first) on ``device``."""
    if len(outputs) == 1:
        return to_device(outputs[0], device)
    with on_device(device):
        return array_module(device).concatenate([to_device(x, device) for x in outputs], axis=1)


def uncross(d, devices):
    """Backward of :func:`cross`: d(side by side) -> each column's part, on its own device."""
    width = d.shape[1] // len(devices)
    return [to_device(d[:, i * width:(i + 1) * width], device) for i, device in enumerate(devices)]


def sum_crossed_gradients(dxs, devices):
    """Backward of a crossing between stages. Each column's output fed every column's next
    stage, so its gradient is the sum of its parts of all of ``dxs`` (the gradients of the
    stages' inputs, one per column) -> [gradient for each column's output]."""
    parts = [uncross(dx, devices) for dx in dxs]          # parts[reader][owner]
    sums = []
    for owner, device in enumerate(devices):
        with on_device(device):
            total = parts[0][owner]
            for reader in parts[1:]:
                total = total + reader[owner]
        sums.append(total)
    return sums


# Hooks -----------------------------------------------------------------------------------

class Hooks(list):
    """Functions called around every step of a forward and a backward pass.

    A hook is ``hook(event, name, value)``: ``event`` is "before_forward",
    "after_forward", "before_backward" or "after_backward"; ``name`` the step's name, a
    layer's ("column_a.conv1", "fc8") or a crossing's ("cross3": the crossing in front of
    conv3); ``value`` the step's arguments before it and its result after. Tools look
    inside the real schedule this way (timing, recording activations) instead of copying
    it, as pycaffe's before/after-forward callbacks do.
    """

    def run(self, name, direction, fn, *args):
        for hook in self:
            hook(f"before_{direction}", name, args)
        result = fn(*args)
        for hook in self:
            hook(f"after_{direction}", name, result)
        return result


class Stage:
    """Layers that run one after another inside one column, between two crossings."""

    def __init__(self, column, device, layers, hooks):
        self.column, self.device = column, device
        self.layers = layers            # {name: layer}, in order
        self.hooks = hooks
        self.output_shapes = {}         # {name: shape} of the last forward pass

    def forward(self, x, train):
        with on_device(self.device):
            for name, layer in self.layers.items():
                x = self.hooks.run(f"{self.column}.{name}", "forward", layer.forward, x, train)
                self.output_shapes[name] = x.shape
        return x

    def backward(self, dout):
        with on_device(self.device):
            for name, layer in reversed(self.layers.items()):
                dout = self.hooks.run(f"{self.column}.{name}", "backward", layer.backward, dout)
        return dout


class Column:
    """One column ("tower"): its share of every row of the table but the classifier, on one device.

    ``stages[0]`` reads the image; each later stage begins at a row that reads "both" (a
    crossing) and reads every column's output of the stage before.
    """

    def __init__(self, name, device, layers, shapes, columns, rng, weight_std, positive_bias, dtype, hooks):
        self.name, self.device = name, device
        self.index = "ab".index(name)
        stages = []
        for layer_name, kind, spec in schedule(layers):
            if not stages or crosses(kind, spec):
                stages.append({})
            stages[-1][layer_name] = self.make_layer(kind, spec, shapes[spec.name], columns, rng, weight_std,
                                                     positive_bias, dtype)
        self.stages = [Stage(f"column_{name}", device, layers, hooks) for layers in stages]

    def make_layer(self, kind, spec, shape, columns, rng, weight_std, positive_bias, dtype):
        """This column's layer of one ``schedule`` entry: its share of the row's kernels or neurons."""
        if kind == "weights":
            width, std = spec.width // columns, std_of(weight_std, spec.name)
            bias = positive_bias if spec.positive_bias else 0.0
            if spec.is_conv:
                return Conv2D(shape.in_channels, width, spec.kernel, spec.stride, spec.pad,
                              input_grad=spec.reads != "image", weight_std=std, bias=bias, rng=rng,
                              device=self.device, dtype=dtype)
            return Linear(shape.in_channels, width, weight_std=std, bias=bias, rng=rng, device=self.device,
                          dtype=dtype)
        if kind == "activation":
            return ACTIVATIONS[spec.activation]()
        if kind == "lrn":
            lrn = spec.lrn
            if lrn.reads == "both":
                return WholeStackLRN(self.index, columns, lrn.size, lrn.k, lrn.alpha, lrn.beta)
            return LRN(lrn.size, lrn.k, lrn.alpha, lrn.beta)
        if kind == "pool":
            return MaxPool2D(*spec.pool)
        if kind == "dropout":
            return Dropout(spec.dropout, seed=int(rng.integers(2**63)))
        return Flatten()

    def named_layers(self):
        for stage in self.stages:
            for name, layer in stage.layers.items():
                yield f"{stage.column}.{name}", layer

    def layer(self, name):
        for stage in self.stages:
            if name in stage.layers:
                return stage.layers[name]
        raise KeyError(name)


class AlexNet:
    """The two-column AlexNet. x (N, 3, 227, 227) -> logits (N, num_classes).

    devices: one device for every column ("cpu" or a CUDA id), or one per column, e.g.
        (0, 1) for two GPUs. By default the first GPU if there is one, else the CPU.
    image_size, channels, hidden: the geometry; the defaults are the paper's. A smaller
        net with the same structure (for tests or a laptop) changes these.
    activation, lrn, pool, columns: the paper's ablations, each a change to the table
        (:func:`architecture`): "relu" or "tanh"; LRN or not (or an :class:`LRNSpec`:
        other constants, or Caffe's LRN across the columns); the max-pooling's
        (size, stride), (3, 2) overlapping or (2, 2) not; 2 columns, or 1 column holding
        all of ``channels`` and ``hidden`` with no crossings and no groups (the one-GPU net;
        the paper's one-GPU baseline of section 3.2 is ``columns=1`` with half the kernels
        of conv1-conv4: ``channels=(48, 128, 192, 192, 256)``).
    drop_conv: None, or "conv4": the net one middle conv layer shallower (section 7), conv5
        reading conv3's maps; the other layers keep their names. conv3 and conv2 are
        refused, with the reason (:func:`architecture`).
    weight_std, positive_bias: the paper's initialisation, N(0, 0.01^2) weights and bias 1
        in conv2, conv4, conv5, fc6 and fc7 (0 elsewhere); Caffe's port used 0.1.
        weight_std may also be a dict {layer name: std}, for nets narrower than the paper's.
    seed: makes the initial weights (the same on every device) and the dropout masks reproducible.
    engine: how the layers run, never what they compute: "plain" (the layers as written:
        NumPy and im2col on a CPU), "fast", or an :class:`~tinyalex.engines.Engine`; None
        takes ``TINYALEX_ENGINE``, else "fast" (:mod:`tinyalex.engines`). It is applied
        once, here: the layers it chose are the model's layers.
    """

    def __init__(self, num_classes=1000, devices=None, *, image_size=227, channels=PAPER_CHANNELS,
                 hidden=PAPER_HIDDEN, dropout=0.5, weight_std=0.01, positive_bias=1.0, seed=0,
                 dtype="float32", activation="relu", lrn=True, pool=(3, 2), columns=2, drop_conv=None,
                 engine=None):
        if columns not in (1, 2):
            raise ValueError(f"AlexNet has one column or two, not {columns}")
        if devices is None:
            devices = default_device()
        if not isinstance(devices, (tuple, list)):
            devices = (devices,) * columns
        if len(devices) != columns:
            raise ValueError(f"this AlexNet has {columns} column(s): give one device, or one per column, "
                             f"not {len(devices)}")
        self.devices = tuple(check_device(d) for d in devices)
        self.engine = engines.resolve(engine)
        if any(c % columns for c in channels) or hidden % columns:
            raise ValueError(f"the channels and hidden sizes are split between {columns} columns, so they must "
                             f"be multiples of {columns}")
        self.num_classes, self.image_size = num_classes, image_size
        self.channels, self.hidden = tuple(channels), hidden
        self.switches = {"activation": activation, "lrn": lrn, "pool": tuple(pool), "columns": columns,
                         "drop_conv": drop_conv}
        self.dtype = np.dtype(dtype)
        self.layers = architecture(num_classes, channels, hidden, activation=activation, lrn=lrn, pool=pool,
                                   dropout=dropout, drop_conv=drop_conv)
        shapes = walk(self.layers, image_size, columns)
        self.hooks = Hooks()

        rng = np.random.default_rng(seed)
        *column_rows, classifier = self.layers
        self.columns = [Column(name, device, column_rows, shapes, columns, rng, weight_std, positive_bias,
                               self.dtype, self.hooks)
                        for name, device in zip("ab", self.devices)]
        self.column_a = self.columns[0]
        self.column_b = self.columns[1] if columns == 2 else None
        self.classifier_name = classifier.name
        self.fc8 = Linear(shapes[classifier.name].in_channels, num_classes,
                          weight_std=std_of(weight_std, classifier.name), rng=rng, device=self.devices[0],
                          dtype=self.dtype)
        # the crossing in front of each later stage, and in front of the classifier, by
        # the layer that reads it: "cross3", "cross6", "cross7", "cross8" (and "cross_lrn1",
        # "cross_lrn2" where the LRN reads both columns)
        self.crossings = [f"cross{spec.number}" if kind == "weights" else f"cross_{name}"
                          for name, kind, spec in schedule(self.layers) if crosses(kind, spec)]
        engines.build(self, self.engine)

    # Forward and backward ----------------------------------------------------------------

    def forward(self, x, train=True):
        """Images (N, 3, H, W), on any device -> logits (N, num_classes) on column a's device.

        train=False is evaluation: dropout off, and no layer keeps anything for backward.
        """
        features = self.features(x, train)
        with on_device(self.column_a.device):
            return self.hooks.run(self.classifier_name, "forward", self.fc8.forward, features, train)

    def features(self, x, train=True):
        """The fc7 activations of every column, (N, hidden), on column a's device: the input
        of fc8, and the 4096-dimensional image codes of the paper's Figure 4 (take those
        with train=False, without dropout)."""
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        # Every column sees the whole image.
        outputs = self.stage_of_each_column(0, "forward", [to_device(x, column.device) for column in self.columns],
                                            train)
        for stage, crossing in enumerate(self.crossings[:-1], start=1):
            # every column's input is gathered before any column's stage is queued, so that
            # the copies wait only for the previous stage and the columns go on side by side
            inputs = [self.hooks.run(crossing, "forward", cross, outputs, column.device) for column in self.columns]
            outputs = self.stage_of_each_column(stage, "forward", inputs, train)
        return self.hooks.run(self.crossings[-1], "forward", cross, outputs, self.column_a.device)

    def backward(self, dlogits):
        """d(loss)/d(logits) -> fills the gradient of every parameter."""
        with on_device(self.column_a.device):
            dx = self.hooks.run(self.classifier_name, "backward", self.fc8.backward, dlogits)
        grads = self.hooks.run(self.crossings[-1], "backward", uncross, dx, self.devices)
        for stage in reversed(range(1, len(self.column_a.stages))):
            dxs = self.stage_of_each_column(stage, "backward", grads)
            grads = self.hooks.run(self.crossings[stage - 1], "backward", sum_crossed_gradients, dxs, self.devices)
        self.stage_of_each_column(0, "backward", grads)

    def stage_of_each_column(self, stage, direction, inputs, *args):
        """Stage ``stage`` of every column, "forward" or "backward", each on its own input
        -> the columns' results. Each column's work is issued before anything waits for
        another, so on two GPUs the columns run at the same time; on one CPU the engine
        may run each in a thread of its own (:mod:`tinyalex.engines.columns`)."""
        calls = [partial(getattr(column.stages[stage], direction), x, *args) for column, x in zip(self.columns, inputs)]
        # hooks (timing, recording) see one layer at a time, in order
        run = engines.in_turn if self.hooks else self.run_columns
        return run(calls)

    # Names -------------------------------------------------------------------------------

    def named_layers(self):
        """Yield ``(name, layer)`` for every layer, column a's first, then the classifier:
        ``("column_a.conv1", Conv2D(...))``, ..., ``("fc8", Linear(...))``."""
        for column in self.columns:
            yield from column.named_layers()
        yield self.classifier_name, self.fc8

    def dropout_layers(self):
        """``(name, layer)`` of the dropout layers: their random streams go into checkpoints."""
        dropouts = {name for name, kind, _ in schedule(self.layers) if kind == "dropout"}
        return [(name, layer) for name, layer in self.named_layers() if name.split(".")[-1] in dropouts]

    def set_layer(self, name, layer):
        """Put ``layer`` in the place of the layer called ``name`` (e.g. "column_a.drop6"),
        for tools that change how one step works (distributed training shares dropout)."""
        column_name, _, short = name.rpartition(".")
        for column in self.columns:
            for stage in column.stages:
                if stage.column == column_name and short in stage.layers:
                    stage.layers[short] = layer
                    return
        raise KeyError(f"{name}: no such layer; named_layers() lists them")

    # Parameters --------------------------------------------------------------------------

    def layers_with_parameters(self):
        """Yield ``(name, layer)`` for every layer that has parameters, column a first."""
        return ((name, layer) for name, layer in self.named_layers() if layer.param_names)

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
        ``conv2.weight`` (256, 48, 5, 5), ..., ``fc8.bias`` (1000,); column a's part first.

        With two columns, conv2, conv4 and conv5 come out as grouped convolutions
        (groups=2); conv3 and the fc layers as ordinary ones, because they read both columns.
        """
        state = {}
        for spec in self.layers[:-1]:
            for param in ("weight", "bias"):
                parts = [to_numpy(getattr(column.layer(spec.name), param)) for column in self.columns]
                state[f"{spec.name}.{param}"] = np.concatenate(parts, axis=0)
        for param in ("weight", "bias"):
            state[f"{self.classifier_name}.{param}"] = np.array(to_numpy(getattr(self.fc8, param)))
        return state

    def load_state_dict(self, state):
        """Copy a merged view (as :meth:`state_dict` gives) into the columns, in place."""
        expected = {k: v.shape for k, v in self.state_dict().items()}
        missing, unexpected = expected.keys() - state.keys(), state.keys() - expected.keys()
        if missing or unexpected:
            raise KeyError(f"state_dict mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        for key, shape in expected.items():
            if tuple(state[key].shape) != shape:
                raise ValueError(f"{key}: expected shape {shape}, got {tuple(state[key].shape)}")
        for spec in self.layers[:-1]:
            for param in ("weight", "bias"):
                value = np.asarray(state[f"{spec.name}.{param}"], dtype=self.dtype)
                part = value.shape[0] // len(self.columns)
                for i, column in enumerate(self.columns):
                    getattr(column.layer(spec.name), param)[...] = to_device(
                        np.ascontiguousarray(value[i * part:(i + 1) * part]), column.device)
        for param in ("weight", "bias"):
            getattr(self.fc8, param)[...] = to_device(
                np.asarray(state[f"{self.classifier_name}.{param}"], dtype=self.dtype), self.devices[0])

    def activation_shapes(self):
        """``{column: {layer: output shape}}`` of the last forward pass."""
        return {f"column_{c.name}": {k: v for s in c.stages for k, v in s.output_shapes.items()}
                for c in self.columns}

    def __repr__(self):
        paper = {"activation": "relu", "lrn": True, "pool": (3, 2), "columns": 2, "drop_conv": None}
        ablations = "".join(f", {key}={value!r}" for key, value in self.switches.items() if value != paper[key])
        return (f"AlexNet(num_classes={self.num_classes}, devices={self.devices}, image_size={self.image_size}, "
                f"channels={self.channels}, hidden={self.hidden}{ablations})")
