"""What every layer shares: one forward/backward contract, the dispatch between a layer's
NumPy and kernel paths, parameters with their gradients, and the paper's initialisation."""

import numpy as np

from ..backend import array_module, check_device, is_gpu_array, on_device
from ..kernels import compiled_kernels


class Layer:
    """A layer is a plain object with ``forward(x, train=True)`` and ``backward(dout)``.

    Every layer takes the same arguments, so no caller ever needs to ask which kind of
    layer it holds (as cuda-convnet2 hands every layer its pass type, and Caffe gives every
    layer its phase):

    * ``forward(x, train=True)`` returns the output. With ``train=True`` it keeps on
      ``self`` what backward needs; with ``train=False`` (evaluation) it keeps nothing, and
      the layers that behave differently in training (dropout) act as at test time.
    * ``backward(dout)`` takes the gradient of the loss with respect to the layer's output
      and returns the gradient with respect to its input, filling ``d<name>`` for each
      parameter ``<name>`` on the way. It needs a ``train=True`` forward pass before it.

    A layer written once against the array module ``xp`` overrides ``forward`` and
    ``backward`` directly. A layer with kernels of its own names its ``.cu`` file in
    ``kernel_file`` and writes two twin paths: ``forward_numpy`` / ``backward_numpy``,
    the reference, and ``forward_kernels`` / ``backward_kernels``, which launch the
    file's kernels. ``forward`` and ``backward`` below pick one, here and nowhere else:

    * GPU arrays: the kernels, compiled by CuPy;
    * NumPy arrays: the NumPy path, except for the passes named in ``cpu_kernels``
      ("forward": a training forward pass, "evaluation": a forward pass with train=False,
      "backward"), which run the same kernels compiled as native CPU code where a C++
      compiler can build them. A layer as you construct it names none: the NumPy path is
      what you read and step through. The compiled-kernel engine names the passes where
      the kernels measured faster when it builds a model (:mod:`tinyalex.engines`).

    Tests call each path by name.
    """

    param_names = ()
    kernel_file = None   # e.g. "layers/lrn.cu": the layer has a kernel path
    cpu_kernels = ()     # the passes that run the compiled kernels on a CPU

    def kernels_for(self, array, direction):
        """The compiled kernels of ``kernel_file`` for a pass on ``array`` ("forward",
        "evaluation" or "backward"), or None for the NumPy path."""
        if self.kernel_file is None:
            return None
        if not is_gpu_array(array) and direction not in self.cpu_kernels:
            return None
        return compiled_kernels(self.kernel_file, array)

    def forward(self, x, train=True):
        kernels = self.kernels_for(x, "forward" if train else "evaluation")
        if kernels is None:
            return self.forward_numpy(x, train)
        return self.forward_kernels(x, train, kernels)

    def backward(self, dout):
        kernels = self.kernels_for(dout, "backward")
        if kernels is None:
            return self.backward_numpy(dout)
        return self.backward_kernels(dout, kernels)

    def parameters(self):
        """Yield ``(name, parameter, gradient)`` for each parameter of this layer."""
        for name in self.param_names:
            yield name, getattr(self, name), getattr(self, "d" + name)

    def check_saved(self, *buffers):
        """Refuse a backward pass that has no ``train=True`` forward pass to work from."""
        if any(buffer is None for buffer in buffers):
            raise RuntimeError(f"{self!r}.backward needs what a forward pass with train=True keeps; "
                               "the last forward pass was an evaluation one (train=False), or there was none")

    def __repr__(self):
        return f"{type(self).__name__}()"


def initial_parameters(weight_shape, bias_size, weight_std, bias, rng, device, dtype):
    """Weights drawn from N(0, weight_std^2) and a constant bias (paper, section 5).

    The draws are made by NumPy on the CPU and then copied, so the same ``rng`` gives the
    same weights on every device.
    """
    rng = np.random.default_rng() if rng is None else rng
    weight = rng.standard_normal(weight_shape, dtype=np.dtype(dtype)) * np.dtype(dtype).type(weight_std)
    bias = np.full(bias_size, bias, dtype=dtype)
    device = check_device(device)
    xp = array_module(device)
    with on_device(device):
        return xp.asarray(weight), xp.asarray(bias)


def check_dtype(x, parameter, layer):
    """Refuse an input whose dtype differs from the parameters' (a silent upcast is slow)."""
    if x.dtype != parameter.dtype:
        raise TypeError(f"{layer!r} holds {parameter.dtype} parameters but got a {x.dtype} input; "
                        f"convert the input with .astype({parameter.dtype.name})")
