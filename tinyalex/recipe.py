"""The training settings of the paper (section 5), in one place, apart from the architecture.

The architecture lives in :mod:`tinyalex.model`; everything about *how* it is trained is
here, so that an experiment changes one object rather than constants scattered in code.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    batch_size: int = 128          # "a batch size of 128 examples"
    learning_rate: float = 0.01    # "initialized at 0.01", equal for all layers
    momentum: float = 0.9          # "momentum of 0.9"
    weight_decay: float = 0.0005   # "weight decay of 0.0005", applied to biases too
    lr_drop_factor: float = 10.0   # "divide the learning rate by 10 when the validation error rate stopped improving with the current learning rate"
    max_lr_drops: int = 3          # "reduced three times prior to termination"
    patience: int = 2              # epochs without improvement that count as "stopped improving" (ours)
    max_epochs: int = 90           # "roughly 90 cycles through the training set"


PAPER = Recipe()
