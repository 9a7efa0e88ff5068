"""The built-in run: the paper's recipe scaled to the built-in data set and a 2-core CPU.

The paper's AlexNet needs days on two GPUs. With no data given, the training program
trains a smaller net of the same structure on the built-in data set
(:mod:`tinyalex.datasets.synthetic`), sized so that a 2-core CPU finishes in about ten
minutes. Every change from the paper is here, once, with its reason (:data:`REASONS`, which
the program prints); ``examples/train_imagenet.py``, ``examples/ablations.py`` and the
tests read them from here.
"""

from .data import PreparedSplit
from .datasets.synthetic import ensure_builtin_dataset
from .model import paper_gain_weight_std

DATA = dict(num_classes=10, train_per_class=300, val_per_class=50, size=144)
MODEL = dict(image_size=131, channels=(24, 64, 96, 96, 64), hidden=512, positive_bias=0.1)
RECIPE = dict(batch_size=32, learning_rate=0.003, patience=4)
EPOCHS = 40
TEN_CROP_EVERY = 10

REASONS = [
    "10 synthetic classes of shapes and textures (300 training, 50 validation images each) instead of ImageNet",
    "their colours vary less than photos' (two colours 120 to 200 levels apart, either side of one near grey): "
    "colours from the whole RGB cube dominated what conv1 learned (colour blobs), and the shapes came late",
    "textures sized by the image (stripes 9 to 18 pixels apart at 144): finer stripes fall below conv1's "
    "stride of 4",
    "144x144 images with 131x131 crops instead of 256/227: a third of the pixels (131 keeps every pooling exact)",
    "a quarter of the kernels (24, 64, 96, 96, 64) and 512 fc neurons instead of 4096: about 1/16 of the work",
    "initial weights 0.01 * sqrt(paper's fan-in / this fan-in) per layer (0.01 to 0.04): the paper's 0.01 is "
    "tuned to its wider layers, and a narrower net would lose its signal layer by layer and learn late",
    "positive biases 0.1 (Caffe's choice) instead of 1, batch 32, 40 epochs, ten crops every 10 epochs",
    "learning rate 0.003 instead of 0.01: at 0.01 the loss jumps up and down and this net learns more slowly "
    "(68% against 54% top-1 error after 5 epochs)",
    "the learning rate divided after 4 epochs without a new best validation error, not 2: with 500 "
    "validation images the error is noisy, and a chance bad epoch would cut the rate too early",
]

# Where the paper's dropout finding can show (section 4.2: without dropout "our network
# exhibits substantial overfitting"). The built-in run cannot overfit: 3,000 images of
# shapes that its net learns as well as it fits them (training error = validation error).
# With a tenth of the images per class, a fixed learning rate (the plateau rule never
# fires: patience = the number of epochs) and a long run, the same net can learn its
# training images by heart. ``python examples/ablations.py --regime overfit``.
OVERFIT = dict(train_per_class=30, val_per_class=50, epochs=120)
OVERFIT_REASONS = [
    "30 training images per class (300 in all) instead of 300: few enough for the net to learn them by heart",
    "50 validation images per class as in the built-in run, so the validation error is as precise",
    "120 epochs at a fixed learning rate of 0.003 (no division): about 1,100 steps, enough to fit 300 images",
]


def weight_std(config):
    """The initial spreads for a model config (its geometry, number of columns and removed
    conv layer, if any): the paper's gain in every layer
    (:func:`~tinyalex.model.paper_gain_weight_std`)."""
    return paper_gain_weight_std(config.get("image_size", 227), config["channels"], config["hidden"],
                                 config.get("columns", 2), config.get("drop_conv"))


def model_settings(**switches):
    """The built-in net's AlexNet settings, with the ablation ``switches`` applied
    (``activation``, ``lrn``, ``pool``, ``columns``, ``dropout``, ``drop_conv``, ``channels``, ...); the
    initial spreads follow the resulting fan-ins."""
    settings = {**MODEL, **switches}
    settings["weight_std"] = weight_std(settings)
    return settings


def data(out_dir, scale=1.0, **sizes):
    """The built-in data set, made and prepared once under ``out_dir`` -> (train, val) splits.

    ``scale`` < 1 takes that share of the images of each class (for quick tries and tests);
    ``sizes`` (``train_per_class``, ``val_per_class``) replace the built-in run's counts.
    """
    settings = {**DATA, **sizes}
    if scale != 1.0:
        settings.update(train_per_class=max(1, round(settings["train_per_class"] * scale)),
                        val_per_class=max(1, round(settings["val_per_class"] * scale)))
    train_path, val_path = ensure_builtin_dataset(out_dir, **settings)
    return PreparedSplit(train_path), PreparedSplit(val_path)
