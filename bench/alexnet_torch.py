"""PyTorch's equivalent of tinyalex's AlexNet, for checking and benchmarking tinyalex.

On one device, tinyalex's two columns are the one-column AlexNet with grouped
convolutions (groups=2 at conv2, conv4 and conv5), and :meth:`tinyalex.AlexNet.state_dict`
gives its weights in exactly that layout. Two details make the match exact rather than
approximate:

* LRN constants. tinyalex follows the paper (section 3.3): alpha multiplies each squared
  term. ``nn.LocalResponseNorm`` divides alpha by the window size, so it is given
  ``alpha * size``.
* LRN per column. In the paper each GPU normalizes only its own kernel maps, so the
  window never crosses from column a's channels into column b's. :class:`ColumnLRN`
  splits the channels into the two halves and normalizes each on its own; a plain
  ``nn.LocalResponseNorm`` over all 96 (or 256) channels would differ at the two channels
  on each side of the middle.

The network is built from the same table as tinyalex's (``tinyalex.model.PAPER_LAYERS``,
or a model's ``layers``), so a change to the table changes both. The parameter names
(``conv1.weight`` ... ``fc8.bias``) are the keys of tinyalex's ``state_dict()``, so
:func:`torch_alexnet_from` copies the weights one to one.
"""

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from tinyalex.model import PAPER_LAYERS, schedule, walk

TORCH_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class ColumnLRN(nn.Module):
    """LRN applied to each column's share of the channels separately (paper, sections 3.2-3.3).

    x (N, C, H, W) -> (N, C, H, W). The constants are the paper's, with tinyalex's
    convention: alpha multiplies each squared term (PyTorch gets ``alpha * size``).
    """

    def __init__(self, columns=2, size=5, alpha=1e-4, beta=0.75, k=2.0):
        super().__init__()
        self.columns = columns
        self.norm = nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)

    def forward(self, x):
        return torch.cat([self.norm(part) for part in x.chunk(self.columns, dim=1)], dim=1)


class AlexNetTorch(nn.Sequential):
    """The one-device AlexNet in PyTorch, built from tinyalex's architecture table.

    x (N, 3, image_size, image_size) -> logits (N, num_classes). ``layers`` is a table as
    :func:`tinyalex.model.architecture` gives it (by default the paper's net, 227x227
    inputs), walked in :func:`tinyalex.model.schedule`'s order under the same names; a
    row that reads its own column becomes a grouped convolution with ``groups=columns``.
    """

    def __init__(self, layers=PAPER_LAYERS, *, image_size=227, columns=2):
        shapes = walk(layers, image_size, columns)
        modules, channels = OrderedDict(), 3
        for name, kind, spec in schedule(layers):
            if kind == "weights" and spec.is_conv:
                groups = columns if spec.reads == "own" else 1
                modules[name] = nn.Conv2d(channels, spec.width, spec.kernel, stride=spec.stride, padding=spec.pad,
                                          groups=groups)
                channels = spec.width
            elif kind == "weights":
                modules[name] = nn.Linear(shapes[spec.name].in_channels, spec.width)
            elif kind == "activation":
                modules[name] = TORCH_ACTIVATIONS[spec.activation]()
            elif kind == "lrn":
                modules[name] = ColumnLRN(columns)
            elif kind == "pool":
                modules[name] = nn.MaxPool2d(*spec.pool)
            elif kind == "dropout":
                modules[name] = nn.Dropout(spec.dropout)
            else:
                modules[name] = nn.Flatten()
        super().__init__(modules)


def torch_device(device):
    """tinyalex's device name ("cpu" or a CUDA id) as a torch.device."""
    return torch.device("cpu") if device == "cpu" else torch.device("cuda", int(device))


def torch_alexnet_from(tinyalex_model, device=None):
    """A PyTorch AlexNet with the same geometry, dtype and weights as ``tinyalex_model``.

    device: tinyalex's name for it ("cpu" or a CUDA id); by default column a's device.
    """
    model = AlexNetTorch(tinyalex_model.layers, image_size=tinyalex_model.image_size,
                         columns=len(tinyalex_model.columns))
    dtype = torch.from_numpy(np.zeros(0, dtype=tinyalex_model.dtype)).dtype
    model.to(dtype=dtype)
    model.load_state_dict({name: torch.from_numpy(np.ascontiguousarray(value))
                           for name, value in tinyalex_model.state_dict().items()})
    return model.to(torch_device(tinyalex_model.devices[0] if device is None else device))
