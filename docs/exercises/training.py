"""Solutions to the exercises of docs/training.md. Run: python docs/exercises/training.py"""

import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

from tinyalex import PAPER, SGD, AlexNet, SoftmaxCrossEntropy
from tinyalex.data import BatchLoader, PreparedSplit
from tinyalex.datasets import write_prepared
from tinyalex.training import top_k_errors


def exercise_1():
    """Change the recipe's batch size without touching the paper's; how many steps make one epoch of
    ImageNet's 1,281,167 training images at 128 and at 256?"""
    big = dataclasses.replace(PAPER, batch_size=256)
    assert PAPER.batch_size == 128 and big.batch_size == 256 and big.momentum == PAPER.momentum
    assert 1_281_167 // PAPER.batch_size == 10_009 and 1_281_167 // big.batch_size == 5_004
    # the loader drops the last partial batch in training, and keeps it for evaluation
    with tempfile.TemporaryDirectory() as folder:
        images = np.zeros((10, 8, 8, 3), dtype=np.uint8)
        path = write_prepared(Path(folder) / "train.h5", images, np.zeros(10), [str(i) for i in range(10)],
                              ["n0"], ["zero"], split="train")
        split = PreparedSplit(path)
        try:
            assert len(BatchLoader(split, 4)) == 2 and len(BatchLoader(split, 4, shuffle=False)) == 3
        finally:
            split.close()


def exercise_2():
    """Predict the top-1 and top-5 errors of three images over six classes."""
    probabilities = np.array([[0.5, 0.2, 0.1, 0.1, 0.05, 0.05],     # label 0: first
                              [0.3, 0.25, 0.2, 0.1, 0.1, 0.05],     # label 3: fourth
                              [0.3, 0.25, 0.2, 0.1, 0.1, 0.05]])    # label 5: sixth
    assert top_k_errors(probabilities, np.array([0, 3, 5])) == {1: 2, 5: 1}


def exercise_3():
    """Ten SGD steps on one fixed batch lower the loss of a small AlexNet; with lr = 0 they do not.
    (In a net this narrow the paper's N(0, 0.01^2) weights pass almost no signal; 0.2 does.)"""
    def losses(lr):
        model = AlexNet(num_classes=4, devices="cpu", image_size=67, channels=(8, 8, 12, 12, 8), hidden=16,
                        weight_std=0.2, positive_bias=0.1, seed=0, engine="plain", dropout=0.0)
        x = np.random.default_rng(0).standard_normal((8, 3, 67, 67)).astype(np.float32)
        labels = np.arange(8) % 4
        loss, sgd = SoftmaxCrossEntropy(), SGD(lr=lr, weight_decay=0.0, engine="plain")
        history = []
        for _ in range(10):
            history.append(loss.forward(model.forward(x), labels))
            model.backward(loss.backward())
            sgd.step(model.parameters())
        return history

    learning, frozen = losses(0.01), losses(0.0)
    assert learning[-1] < learning[0] - 0.3
    assert frozen[-1] == frozen[0]


if __name__ == "__main__":
    from gradient_check import run
    run(sys.modules[__name__])
