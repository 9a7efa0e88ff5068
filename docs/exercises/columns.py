"""Solutions to the exercises of docs/columns.md. Run: python docs/exercises/columns.py"""

import sys
from functools import cache

import numpy as np

from tinyalex import AlexNet


@cache
def paper_model():
    """The paper's two columns on the CPU, built once for all three exercises (about 1 s)."""
    return AlexNet(devices="cpu", engine="plain")


def exercise_1():
    """Predict what each column holds after each layer for one 227 x 227 image."""
    model = paper_model()
    model.forward(np.zeros((1, 3, 227, 227), dtype=np.float32), train=False)
    shapes = model.activation_shapes()
    assert shapes["column_a"] == shapes["column_b"]            # the two halves have the same shapes
    a = shapes["column_a"]
    assert a["conv1"] == (1, 48, 55, 55) and a["pool1"] == (1, 48, 27, 27)
    assert a["conv2"] == (1, 128, 27, 27) and a["pool2"] == (1, 128, 13, 13)
    assert a["conv3"] == a["conv4"] == (1, 192, 13, 13) and a["pool5"] == (1, 128, 6, 6)
    assert a["flatten"] == (1, 128 * 6 * 6) and a["fc7"] == (1, 2048)


def exercise_2():
    """Which layers read both columns? Predict the weight shapes of conv3, conv4 and fc6 in column a."""
    model = paper_model()
    layer = model.column_a.layer
    assert layer("conv3").weight.shape == (192, 256, 3, 3)     # both columns' 128 + 128 maps: a crossing
    assert layer("conv4").weight.shape == (192, 192, 3, 3)     # its own column's 192 only
    assert layer("fc6").weight.shape == (2048, 2 * 4608)       # both columns' flattened pool5


def exercise_3():
    """Count the parameters from the table by hand and compare with the model: about 61 million."""
    weights = {"conv1": 96 * 3 * 11 * 11, "conv2": 256 * 48 * 5 * 5, "conv3": 384 * 256 * 3 * 3,
               "conv4": 384 * 192 * 3 * 3, "conv5": 256 * 192 * 3 * 3, "fc6": 4096 * 9216,
               "fc7": 4096 * 4096, "fc8": 1000 * 4096}
    biases = 96 + 256 + 384 + 384 + 256 + 4096 + 4096 + 1000
    assert paper_model().num_parameters() == sum(weights.values()) + biases
    assert 60_000_000 < sum(weights.values()) + biases < 62_000_000
    assert weights["fc6"] / (sum(weights.values()) + biases) > 0.6     # fc6 alone holds most of them


if __name__ == "__main__":
    from gradient_check import run
    run(sys.modules[__name__])
