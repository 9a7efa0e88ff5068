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

The parameter names (``conv1.weight`` ... ``fc8.bias``) are the keys of tinyalex's
``state_dict()``, so :func:`torch_alexnet_from` copies the weights one to one.
"""

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

PAPER_CHANNELS = (96, 256, 384, 384, 256)
PAPER_HIDDEN = 4096
COLUMNS = 2


class ColumnLRN(nn.Module):
    """LRN applied to each column's half of the channels separately (paper, sections 3.2-3.3).

    x (N, C, H, W) -> (N, C, H, W). The constants are the paper's, with tinyalex's
    convention: alpha multiplies each squared term (PyTorch gets ``alpha * size``).
    """

    def __init__(self, columns=COLUMNS, size=5, alpha=1e-4, beta=0.75, k=2.0):
        super().__init__()
        self.columns = columns
        self.norm = nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)

    def forward(self, x):
        return torch.cat([self.norm(part) for part in x.chunk(self.columns, dim=1)], dim=1)


def conv_output_size(size, kernel_size, stride, pad=0):
    return (size + 2 * pad - kernel_size) // stride + 1


class AlexNetTorch(nn.Sequential):
    """The one-device AlexNet in PyTorch, with tinyalex's geometry arguments.

    x (N, 3, image_size, image_size) -> logits (N, num_classes). The defaults are the
    paper's net (227x227 inputs, see tinyalex's docs on "224 or 227").
    """

    def __init__(self, num_classes=1000, *, image_size=227, channels=PAPER_CHANNELS, hidden=PAPER_HIDDEN,
                 dropout=0.5):
        c1, c2, c3, c4, c5 = channels
        size = conv_output_size(image_size, 11, 4)   # conv1
        for _ in range(3):                           # pool1, pool2, pool5; conv2..conv5 keep the size
            size = conv_output_size(size, 3, 2)
        super().__init__(OrderedDict([
            ("conv1", nn.Conv2d(3, c1, 11, stride=4)), ("relu1", nn.ReLU()), ("lrn1", ColumnLRN()),
            ("pool1", nn.MaxPool2d(3, 2)),
            ("conv2", nn.Conv2d(c1, c2, 5, padding=2, groups=COLUMNS)), ("relu2", nn.ReLU()), ("lrn2", ColumnLRN()),
            ("pool2", nn.MaxPool2d(3, 2)),
            ("conv3", nn.Conv2d(c2, c3, 3, padding=1)), ("relu3", nn.ReLU()),   # the crossing: reads both halves
            ("conv4", nn.Conv2d(c3, c4, 3, padding=1, groups=COLUMNS)), ("relu4", nn.ReLU()),
            ("conv5", nn.Conv2d(c4, c5, 3, padding=1, groups=COLUMNS)), ("relu5", nn.ReLU()),
            ("pool5", nn.MaxPool2d(3, 2)),
            ("flatten", nn.Flatten()),
            ("fc6", nn.Linear(c5 * size * size, hidden)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout(dropout)),
            ("fc7", nn.Linear(hidden, hidden)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout(dropout)),
            ("fc8", nn.Linear(hidden, num_classes)),
        ]))


def torch_device(device):
    """tinyalex's device name ("cpu" or a CUDA id) as a torch.device."""
    return torch.device("cpu") if device == "cpu" else torch.device("cuda", int(device))


def torch_alexnet_from(tinyalex_model, device=None):
    """A PyTorch AlexNet with the same geometry, dtype and weights as ``tinyalex_model``.

    device: tinyalex's name for it ("cpu" or a CUDA id); by default column a's device.
    """
    model = AlexNetTorch(tinyalex_model.num_classes, image_size=tinyalex_model.image_size,
                         channels=tinyalex_model.channels, hidden=tinyalex_model.hidden,
                         dropout=tinyalex_model.column_a.layer("drop6").p)
    dtype = torch.from_numpy(np.zeros(0, dtype=tinyalex_model.dtype)).dtype
    model.to(dtype=dtype)
    model.load_state_dict({name: torch.from_numpy(np.ascontiguousarray(value))
                           for name, value in tinyalex_model.state_dict().items()})
    return model.to(torch_device(tinyalex_model.devices[0] if device is None else device))
