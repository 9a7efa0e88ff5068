"""The layers of AlexNet, one concept per file, each with ``forward`` and ``backward``."""

from .activation import ReLU, Tanh
from .base import Layer
from .conv import Conv2D, col2im, im2col
from .dropout import Dropout
from .linear import Flatten, Linear
from .loss import SoftmaxCrossEntropy
from .lrn import LRN
from .maxpool import MaxPool2D

__all__ = ["Conv2D", "Dropout", "Flatten", "Layer", "Linear", "LRN", "MaxPool2D", "ReLU",
           "SoftmaxCrossEntropy", "Tanh", "col2im", "im2col"]
