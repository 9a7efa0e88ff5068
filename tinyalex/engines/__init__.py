"""Engines: faster ways to run the same network, chosen once, when a model is built.

The layers in :mod:`tinyalex.layers` are the paper, written to be read: on a CPU they run
NumPy, on a GPU their CUDA kernels, and a convolution is im2col and one matrix product.
An engine changes how some of them run, never what they compute (up to rounding), in the
way Caffe's layer factory picks ``CuDNNConvolutionLayer`` for ``ConvolutionLayer`` when a
net is built. There are two:

* ``"plain"``: the layers as written. On a CPU everything is NumPy and im2col, which is
  what you want for stepping through with a debugger or reading a profile.
* ``"fast"`` (the default): the choices of :data:`FAST`, each measured
  (``bench/cpu_paths.py``, ``bench/benchmark.py``, docs/benchmarks.md):

  - on a CPU with a C++ compiler, the passes where a layer's ``.cu`` kernels, compiled as
    native multi-threaded code (:mod:`tinyalex.kernels.native`), beat NumPy;
  - Winograd's F(2x2, 3x3) (:mod:`.winograd`) for the 3 x 3 layers conv3-conv5 on such a
    CPU (on a GPU it measured slower and larger than im2col, and without compiled
    kernels its NumPy transforms are 4 to 7 times slower);
  - conv layers that rebuild their im2col matrix in backward (:mod:`.memory`): every one
    on a GPU, conv1 everywhere; on one device the two columns' conv1 build one matrix;
  - on a CPU with two or more cores, the two columns side by side, a thread each
    (:mod:`.columns`), as the paper's two GPUs run them.

``AlexNet(engine=...)`` and ``SGD(engine=...)`` take a name or an :class:`Engine`; without
one they take the environment variable ``TINYALEX_ENGINE`` ("plain" or "fast"), read once
when tinyalex is imported, or "fast". A process-wide setting that speeds up a CPU program
is separate, and explicit: :func:`tune_process`.
"""

import os
from dataclasses import dataclass, field, replace

from ..kernels import native
from ..layers import Conv2D
from .columns import ColumnThreads, column_runner, in_turn
from .memory import RebuildingConv2D, SharedImageCols
from .process import BlasThreads, openblas_idle, tune_process
from .winograd import WinogradConv2D, fits as winograd_fits


@dataclass(frozen=True)
class Engine:
    """How a model's layers run; every field is one decision.

    cpu_kernels: {class name: passes} that run compiled kernels on a CPU ("forward",
        "evaluation", "backward"; "update" for SGD); any other pass on a CPU runs NumPy.
        A subclass without an entry of its own takes its parent's.
    winograd: where 3 x 3, stride-1 conv layers use Winograd's F(2x2, 3x3): a subset of
        ("cpu", "gpu"); on a CPU only with compiled kernels.
    rebuild: which conv layers rebuild their im2col matrix in backward instead of keeping
        it: a subset of ("cpu", "gpu", "image"): every layer on a CPU, every layer on a
        GPU, the layers that read the image.
    share_image_cols: the two columns' conv1 on one device build one im2col matrix; with
        ``column_threads``, each builds half of it, and it is kept for backward.
    column_threads: the two columns on one CPU run side by side, each in a thread of its
        own with one BLAS thread (:mod:`.columns`), instead of one after the other with
        every thread in each matrix product.
    """

    name: str
    cpu_kernels: dict = field(default_factory=dict)
    winograd: tuple = ()
    rebuild: tuple = ()
    share_image_cols: bool = False
    column_threads: bool = False


PLAIN = Engine("plain")

# Measured with bench/cpu_paths.py at one thread, as each column's thread runs them
# (docs/benchmarks.md gives the times and the CPUs): the max-pool's training forward kernel
# (one pass) beats NumPy's size * size passes and argmax bookkeeping, NumPy wins its
# evaluation pass and backward (add.at); NumPy's im2col (one reshape copy) and col2im
# (k * k strided adds) beat the kernels' one thread per element; LRN's NumPy power beats
# the kernels' pow() per element; Winograd's transforms need their kernels; SGD's update
# in one pass beats NumPy's four.
FAST = Engine("fast",
              cpu_kernels={"MaxPool2D": ("forward",),
                           "WinogradConv2D": ("forward", "evaluation", "backward"), "SGD": ("update",)},
              winograd=("cpu",), rebuild=("gpu", "image"), share_image_cols=True, column_threads=True)

ENGINES = {engine.name: engine for engine in (PLAIN, FAST)}
DEFAULT = os.environ.get("TINYALEX_ENGINE", "fast")


def resolve(engine=None):
    """An :class:`Engine` from a name, an Engine, or None (``TINYALEX_ENGINE``, else "fast")."""
    engine = DEFAULT if engine is None else engine
    if isinstance(engine, Engine):
        return engine
    if engine not in ENGINES:
        source = " (from TINYALEX_ENGINE)" if engine == DEFAULT else ""
        raise ValueError(f"unknown engine {engine!r}{source}: choose one of {sorted(ENGINES)}")
    return ENGINES[engine]


def cpu_kernels(engine, cls):
    """The passes that ``cls`` runs as compiled kernels on a CPU under ``engine``."""
    if not native.available():
        return ()
    for ancestor in cls.__mro__:
        if ancestor.__name__ in engine.cpu_kernels:
            return engine.cpu_kernels[ancestor.__name__]
    return ()


def conv_engine(layer, engine, on_gpu, shared):
    """The conv layer that runs ``layer`` under ``engine``: ``layer`` itself, or one of
    the engine's classes holding the very same parameters."""
    where = "gpu" if on_gpu else "cpu"
    if where in engine.winograd and winograd_fits(layer) and (on_gpu or native.available()):
        return adopt(WinogradConv2D, layer)
    reads_image = not layer.input_grad
    if where in engine.rebuild or (reads_image and "image" in engine.rebuild):
        rebuilding = adopt(RebuildingConv2D, layer)
        rebuilding.shared = shared if reads_image else None
        return rebuilding
    return layer


def adopt(cls, layer):
    """A ``cls`` (a subclass of the layer's class) with ``layer``'s state: its parameters too."""
    new = cls.__new__(cls)
    new.__dict__.update(layer.__dict__)
    return new


def build(model, engine):
    """Put ``engine``'s layers in place in ``model`` (an AlexNet just built): called once,
    by the model's constructor."""
    one_device = len(model.columns) == 2 and model.devices[0] == model.devices[1]
    model.run_columns = column_runner(engine, model.devices)
    shared = None
    if engine.share_image_cols and one_device:
        # in turn, the first column builds it and the second takes it; side by side, each
        # builds half (in slices, so that neither waits long for the other) and it is kept
        # for backward, which would otherwise build it twice more
        side_by_side = isinstance(model.run_columns, ColumnThreads)
        shared = SharedImageCols(parts=8, keep=True) if side_by_side else SharedImageCols()
    for column in model.columns:
        for name, layer in list(column.named_layers()):
            if type(layer) is Conv2D:
                layer = conv_engine(layer, engine, column.device != "cpu", shared)
                model.set_layer(name, layer)
            layer.cpu_kernels = cpu_kernels(engine, type(layer))


def describe(model):
    """One line: the model's engine and what it runs where, for a program's report."""
    convs = ", ".join(f"{name.split('.')[-1]} {type(layer).__name__}" for name, layer in model.column_a.named_layers()
                      if isinstance(layer, Conv2D))
    compiled = native.describe() if "cpu" in model.devices else "CUDA kernels"
    if isinstance(model.run_columns, ColumnThreads):
        compiled += "; the columns side by side, a thread each"
    hint = ""
    if "cpu" in model.devices and openblas_idle() == "spin":
        # measured (docs/benchmarks.md): a step about 1.3x as long while they spin
        hint = "; OpenBLAS's idle threads spin (tinyalex.engines.tune_process() makes them sleep)"
    return f"engine {model.engine.name}: {convs}; {compiled}{hint}"


__all__ = ["BlasThreads", "ColumnThreads", "ENGINES", "Engine", "FAST", "PLAIN", "RebuildingConv2D", "SharedImageCols", "WinogradConv2D",
           "build", "describe", "in_turn", "replace", "resolve", "tune_process"]
