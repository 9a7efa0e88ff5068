"""tinyalex: AlexNet (Krizhevsky, Sutskever and Hinton, 2012) rebuilt from scratch.

Layers are plain classes with ``forward`` and ``backward`` written against NumPy or CuPy;
the model is the paper's two columns; the optimizer is the paper's update rule.
"""

from . import engines
from .backend import default_device, gpu_available, to_device, to_numpy
from .datasets.errors import DatasetError, IncompleteFileError
from .layers import (LRN, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU, SoftmaxCrossEntropy, Tanh)
from .model import AlexNet
from .recipe import PAPER, Recipe
from .sgd import SGD, PlateauSchedule

__version__ = "0.1.0"

__all__ = ["AlexNet", "engines", "Conv2D", "DatasetError", "Dropout", "Flatten", "IncompleteFileError", "LRN", "Linear",
           "MaxPool2D", "PAPER", "PlateauSchedule", "ReLU", "Recipe", "SGD", "SoftmaxCrossEntropy", "Tanh",
           "default_device", "gpu_available", "to_device", "to_numpy"]
