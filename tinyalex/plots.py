"""Pictures of a trained AlexNet, the way the paper shows its results (section 6.1).

Each function draws one PNG, writes it, and returns its path:

* :func:`plot_curves` -- the loss (left) and the top-1 / top-5 error (right) after every
  epoch, for the training images (as seen while training: augmented, dropout on) and the
  validation images (centre crop, and ten crops when measured). Dashed vertical lines mark
  the epochs after which the learning rate was divided (by 10, section 5). The paper has no
  such figure; it is what tells you whether a run is on its way.
* :func:`plot_conv1_kernels` -- the paper's **Figure 3**: every conv1 kernel (11 x 11 x 3)
  as a small colour image, column a's kernels in the upper block, column b's in the lower
  one. On ImageNet, one column learns mostly colour-agnostic kernels (edges, gratings) and
  the other mostly colour-specific ones (blobs, colour edges).
* :func:`plot_predictions` -- the paper's **Figure 4, left**: validation images with the
  five most probable classes as bars, the true class's bar in red when it is among them.
* :func:`plot_neighbours` -- the paper's **Figure 4, right**: for a few validation images,
  the training images whose fc7 activations (the 4096 numbers fed to fc8) are nearest in
  Euclidean distance. Images the network considers alike can differ pixel by pixel.
* :func:`plot_confusion_matrix` -- not in the paper: for every true class (a row), the share
  of its validation images given each class (a column), from the centre crop. The diagonal
  is each class's accuracy; a bright cell off it names the classes the network mixes up.
* :func:`draw_all` -- all five into one folder; ``examples/train_imagenet.py`` redraws the
  curves after every epoch and calls it once, at the end.

The drawing goes through matplotlib's ``Figure`` and its Agg canvas directly, never through
``pyplot``: no global state, no window, and a program that already set up pyplot with
another backend keeps it. Each PNG has a fixed size in pixels (given in each docstring),
because ``bbox_inches="tight"`` is not used.
"""

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from .backend import to_numpy
from .data import center_position
from .layers.loss import softmax

DPI = 100                 # so that a size in pixels is a size in inches times 100
KERNELS_PER_ROW = 16      # the paper's Figure 3 shows its 48 kernels per column in rows of 16
KERNEL_CELL = 60          # pixels per kernel in plot_conv1_kernels
PREDICTIONS_PER_ROW = 4
PREDICTION_CELL = (260, 400)      # width, height in pixels of one image with its bars
NEIGHBOUR_CELL = (150, 170)       # width, height in pixels of one image with its title
TRUE_CLASS = "#de2d26"            # the paper draws the correct label's bar in red
OTHER_CLASS = "#9ecae1"
SAME_CLASS = "#238b45"            # a neighbour of the query's own class


# Figures -----------------------------------------------------------------------------------

def new_figure(width, height):
    """An empty figure of ``width`` x ``height`` pixels, drawn by Agg (no pyplot)."""
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save(figure, path):
    """Write ``figure`` as a PNG at ``path`` -> the path.

    The picture goes to a temporary name first and is then renamed, so that an image viewer
    that reloads the file while training runs never sees half of it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".writing")
    figure.savefig(scratch, format="png", dpi=DPI)
    os.replace(scratch, path)
    return path


def short_name(name, length=22):
    """The first synonym of an ImageNet class name ("tench, Tinca tinca" -> "tench"), cut to fit."""
    name = name.split(",")[0].strip()
    return name if len(name) <= length else name[:length - 1] + "\u2026"


# Training curves ---------------------------------------------------------------------------

# (history key, legend label, colour, line style): training in blue, validation on the
# centre crop in orange, ten crops in green; top-1 solid, top-5 dashed.
LOSS_SERIES = [
    ("train_loss", "training (augmented, dropout on)", "C0", "-"),
    ("val_loss", "validation (centre crop)", "C1", "-"),
]
ERROR_SERIES = [
    ("train_top1_error", "training top-1 (augmented, dropout on)", "C0", "-"),
    ("val_top1_error", "validation top-1, centre crop", "C1", "-"),
    ("val_top5_error", "validation top-5, centre crop", "C1", "--"),
    ("val_top1_error_10crop", "validation top-1, ten crops", "C2", "-"),
    ("val_top5_error_10crop", "validation top-5, ten crops", "C2", "--"),
]


def plot_curves(history, path):
    """Loss and error per epoch, from ``Trainer.history`` -> ``path`` (1200 x 500 pixels).

    history: one dict per epoch with ``epoch``, ``lr``, ``lr_next``, ``train_loss``,
        ``train_top1_error``, ``val_loss``, ``val_top1_error``, ``val_top5_error``, and
        ``val_top1_error_10crop`` / ``val_top5_error_10crop`` for the epochs that measured
        them. Errors are in percent.
    """
    if not history:
        raise ValueError("the history is empty: there is nothing to plot before the first epoch ends")
    figure = new_figure(1200, 500)
    loss_axes, error_axes = figure.subplots(1, 2)
    for axes, series in ((loss_axes, LOSS_SERIES), (error_axes, ERROR_SERIES)):
        for key, label, colour, style in series:
            points = [(m["epoch"], m[key]) for m in history if key in m]
            if points:
                x, y = zip(*points)
                axes.plot(x, y, color=colour, linestyle=style, marker="o", markersize=3, label=label,
                          clip_on=False)  # an error of 0 sits on the frame, half hidden otherwise

    epochs = [m["epoch"] for m in history]
    # the new rate holds from the next epoch on: the line sits on the last epoch of the old one
    drops = [(m["epoch"], m["lr_next"]) for m in history if m.get("lr_next", m["lr"]) < m["lr"]]
    for axes in (loss_axes, error_axes):
        for epoch, _ in drops:
            axes.axvline(epoch, color="grey", linestyle="--", linewidth=1)
        if drops:  # the new rates as tick labels above the panel, where they cover no curve
            top = axes.secondary_xaxis("top")
            top.set_xticks([epoch for epoch, _ in drops], labels=[f"lr {lr:g}" for _, lr in drops])
            top.tick_params(labelsize=8, labelcolor="dimgrey", color="grey")
        axes.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
        if len(epochs) <= 12:
            axes.set_xticks(epochs)
        else:
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        # below the panel, where no curve can hide behind it
        axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    highest_loss = max(m[key] for m in history for key, *_ in LOSS_SERIES if key in m)
    loss_axes.set_ylim(0, 1.1 * highest_loss if math.isfinite(highest_loss) and highest_loss > 0 else 1)
    error_axes.set_ylim(0, 100)
    error_axes.set_ylabel("error (%)")
    loss_axes.set_title("loss (softmax cross-entropy)")
    error_axes.set_title("top-1 and top-5 error")
    figure.suptitle(f"Learning rate {history[0]['lr']:g} at the start"
                    + ("; dashed lines: divided after that epoch, the new rate written above" if drops else ""),
                    fontsize=10)
    return save(figure, path)


# Figure 3: the conv1 kernels ---------------------------------------------------------------

def conv1_weights(state_dict_or_model):
    """conv1's kernels (K, 3, 11, 11) as NumPy, column a's first, from a state dict or an AlexNet."""
    if isinstance(state_dict_or_model, Mapping):
        return np.asarray(state_dict_or_model["conv1.weight"])
    model = state_dict_or_model  # only conv1 is copied off the device, not the whole state dict
    return np.concatenate([to_numpy(column.layer("conv1").weight) for column in model.columns])


def colour_shares(kernels):
    """(K, 3, h, w) kernels -> (K,): the share of each kernel's variation that differs between
    its colour channels, ||w - grey||^2 / ||w - mean||^2, where grey is the mean of the three
    channels at each pixel and mean the kernel's one mean. 0 for a colour-agnostic kernel (the
    same pattern in R, G and B: grey in the picture), near 1 for one that only tells colours
    apart; the paper's Figure 3 has one column of each kind."""
    kernels = kernels.astype(np.float64)
    grey = kernels.mean(axis=1, keepdims=True)
    spread = ((kernels - kernels.mean(axis=(1, 2, 3), keepdims=True)) ** 2).sum(axis=(1, 2, 3))
    return ((kernels - grey) ** 2).sum(axis=(1, 2, 3)) / np.maximum(spread, 1e-30)


def kernel_mosaic(kernels, per_row):
    """(K, 3, h, w) kernels -> one RGB image (rows * (h+1) + 1, per_row * (w+1) + 1, 3) with white
    lines between them; each kernel is stretched to 0..1 on its own (min -> 0, max -> 1)."""
    count, _, h, w = kernels.shape
    rows = math.ceil(count / per_row)
    mosaic = np.ones((rows * (h + 1) + 1, per_row * (w + 1) + 1, 3))
    for i, kernel in enumerate(kernels.astype(np.float64)):
        low, high = kernel.min(), kernel.max()
        image = (kernel - low) / (high - low) if high > low else np.full_like(kernel, 0.5)
        row, col = divmod(i, per_row)
        top, left = 1 + row * (h + 1), 1 + col * (w + 1)
        mosaic[top:top + h, left:left + w] = image.transpose(1, 2, 0)
    return mosaic


def plot_conv1_kernels(state_dict_or_model, path):
    """The conv1 kernels as colour images, column a above column b (paper, Figure 3) -> ``path``.

    state_dict_or_model: an :class:`~tinyalex.model.AlexNet`, or a state dict holding
        ``conv1.weight`` (K, 3, 11, 11) with column a's K/2 kernels first.

    Each column's title gives the median of its kernels' :func:`colour_shares`. Each
    column's K/2 kernels fill rows of ``n = min(16, K/2)``; with ``r = ceil(K/2 / n)``
    rows per column the picture is ``max(60 n + 40, 500)`` x ``2 (60 r + 50) + 70`` pixels
    (96 kernels: 1000 x 530; 24 kernels: 760 x 290).
    """
    kernels = conv1_weights(state_dict_or_model)
    count, _, h, w = kernels.shape
    half = count // 2
    per_row = min(KERNELS_PER_ROW, half)
    rows = math.ceil(half / per_row)
    # at least 500 pixels wide, so that the title fits above a few kernels
    figure = new_figure(max(KERNEL_CELL * per_row + 40, 500), 2 * (KERNEL_CELL * rows + 50) + 70)
    figure.suptitle(f"conv1: {count} kernels of {h}x{w}x3 (paper, Figure 3)\n"
                    "each kernel stretched to 0..1 from its own min..max", fontsize=10)
    blocks = ((kernels[:half], f"column a: the first {half} kernels"),
              (kernels[half:], f"column b: the last {count - half} kernels"))
    # how colourful each column is, in one number (colour_shares: 0 grey, 1 pure colour)
    blocks = [(block, f"{title}; median colour share {np.median(colour_shares(block)):.2f}")
              for block, title in blocks]
    for axes, (block, title) in zip(figure.subplots(2, 1), blocks):
        axes.imshow(kernel_mosaic(block, per_row), interpolation="nearest")
        axes.set_title(title, fontsize=9)
        axes.set_axis_off()
    return save(figure, path)


# Figure 4, left: top-5 predictions ---------------------------------------------------------

def plot_predictions(model, split, augmenter, path, count=8, seed=0):
    """Validation images with their five most probable classes (paper, Figure 4 left) -> ``path``.

    ``count`` images of ``split`` (a :class:`~tinyalex.data.PreparedSplit`), the same ones for
    the same ``seed``, are classified from their centre crop (drawn as a dashed square on
    the stored image). Under each image, bars show the probabilities of the top five classes;
    the true class, named above the image, has a red bar when it is among them.

    With ``n = min(4, count)`` images per row and ``r = ceil(count / n)`` rows the picture is
    ``max(260 n, 520)`` x ``400 r + 60`` pixels (count=8: 1040 x 860).
    """
    count = min(count, len(split))
    indices = np.sort(np.random.default_rng(seed).choice(len(split), size=count, replace=False))
    images, labels = split.read(indices)
    probabilities = softmax(to_numpy(model.forward(augmenter.center_crop(images), train=False)).astype(np.float64))
    top = min(5, probabilities.shape[1])
    size = images.shape[1]
    crop_top, crop_left, _ = center_position(size, augmenter.crop)

    per_row = min(PREDICTIONS_PER_ROW, count)
    rows = math.ceil(count / per_row)
    width, height = PREDICTION_CELL
    figure = new_figure(max(width * per_row, 520), height * rows + 60)  # wide enough for the title
    figure.suptitle("Top-5 predictions (paper, Figure 4 left)\n"
                    "from the centre crop (dashed); true class above, its bar in red", fontsize=10)
    grid = figure.add_gridspec(2 * rows, per_row, height_ratios=[3, 2] * rows)
    for i, (image, label, p) in enumerate(zip(images, labels, probabilities)):
        row, col = divmod(i, per_row)
        picture = figure.add_subplot(grid[2 * row, col])
        picture.imshow(image)
        picture.add_patch(Rectangle((crop_left - 0.5, crop_top - 0.5), augmenter.crop, augmenter.crop,
                                    fill=False, edgecolor="yellow", linestyle="--", linewidth=1))
        picture.set_title(short_name(split.class_names[label], 30), fontsize=9)
        picture.set_axis_off()

        bars = figure.add_subplot(grid[2 * row + 1, col])
        best = np.argsort(-p, kind="stable")[:top]
        colours = [TRUE_CLASS if k == label else OTHER_CLASS for k in best]
        bars.barh(np.arange(top), p[best], height=0.8, color=colours)
        for y, k in enumerate(best):
            bars.text(0.02, y, short_name(split.class_names[k]), va="center", ha="left", fontsize=8)
            bars.text(0.98, y, f"{p[k]:.0%}", va="center", ha="right", fontsize=8)
        bars.set_xlim(0, 1)
        bars.set_ylim(top - 0.5, -0.5)  # the most probable class on top
        bars.set_xticks([])
        bars.set_yticks([])
    return save(figure, path)


# Figure 4, right: nearest neighbours in fc7 space ------------------------------------------

def spread_indices(total, count):
    """``count`` indices spread evenly over 0..total-1, increasing. The prepared files store
    training images class by class, so an even spread holds every class about equally."""
    count = min(count, total)
    return np.arange(count) * total // count


def fc7_features(model, split, indices, augmenter, batch_size):
    """fc7 activations (len(indices), hidden) of the centre crops of ``split``'s images at the
    increasing ``indices``, as NumPy float64."""
    features = []
    for start in range(0, len(indices), batch_size):
        images, _ = split.read(indices[start:start + batch_size])
        features.append(to_numpy(model.features(augmenter.center_crop(images), train=False)))
    return np.concatenate(features).astype(np.float64)


def euclidean_distances(queries, gallery):
    """(Q, D) and (G, D) -> (Q, G) distances, from ||q - g||^2 = ||q||^2 + ||g||^2 - 2 q.g."""
    squared = (queries ** 2).sum(axis=1)[:, None] + (gallery ** 2).sum(axis=1)[None, :] - 2 * queries @ gallery.T
    return np.sqrt(np.maximum(squared, 0))  # rounding can leave tiny negative numbers


def plot_neighbours(model, query_split, gallery_split, augmenter, path, queries=5, neighbours=6,
                    gallery_limit=2000, batch_size=64):
    """Training images whose fc7 activations are nearest to a validation image's (paper,
    Figure 4 right) -> ``path``.

    ``queries`` images of ``query_split`` (validation) and up to ``gallery_limit`` images of
    ``gallery_split`` (training), both spread evenly over the file, go through the network
    (centre crop, no dropout); each query row then shows the ``neighbours`` gallery images
    with the smallest Euclidean distance between fc7 vectors. The paper searched its training
    set; a subset keeps this cheap. Neighbours of the query's own class have a green title.

    The picture is ``max(150 (neighbours + 1), 600)`` x ``170 q + 100`` pixels for ``q``
    queries (5 queries, 6 neighbours: 1050 x 950).
    """
    query_indices = spread_indices(len(query_split), queries)
    gallery_indices = spread_indices(len(gallery_split), gallery_limit)
    query_features = fc7_features(model, query_split, query_indices, augmenter, batch_size)
    gallery_features = fc7_features(model, gallery_split, gallery_indices, augmenter, batch_size)
    distances = euclidean_distances(query_features, gallery_features)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :neighbours]
    neighbours = nearest.shape[1]

    width, height = NEIGHBOUR_CELL
    figure = new_figure(max(width * (neighbours + 1), 600), height * len(query_indices) + 100)
    figure.suptitle("Nearest training images in fc7 space (paper, Figure 4 right)\n"
                    f"d: Euclidean, {query_features.shape[1]}-d; among {len(gallery_indices)} of "
                    f"{len(gallery_split)} training images\n"
                    "green: the class of the validation image on the left", fontsize=10)
    grid = figure.subplots(len(query_indices), neighbours + 1, squeeze=False)
    query_images, query_labels = query_split.read(query_indices)
    for row, (image, label) in enumerate(zip(query_images, query_labels)):
        grid[row, 0].imshow(image)
        grid[row, 0].set_title(f"validation:\n{short_name(query_split.class_names[label], 18)}",
                               fontsize=8, fontweight="bold")
        # the neighbours one by one: h5py reads need increasing indices, and these are in distance order
        for col, g in enumerate(nearest[row], start=1):
            neighbour, neighbour_label = gallery_split.read([gallery_indices[g]])
            name = short_name(gallery_split.class_names[neighbour_label[0]], 18)
            colour = SAME_CLASS if gallery_split.wnids[neighbour_label[0]] == query_split.wnids[label] else "black"
            grid[row, col].imshow(neighbour[0])
            grid[row, col].set_title(f"{name}\nd = {distances[row, g]:.3g}", fontsize=8, color=colour)
    for axes in grid.flat:
        axes.set_axis_off()
    return save(figure, path)


# Confusion matrix ---------------------------------------------------------------------------

def confusion_matrix(model, split, augmenter, batch_size=64):
    """(classes, classes) counts: entry [t, p] is the number of ``split``'s images of true class
    t whose centre crop the model gives class p (its most probable class)."""
    counts = np.zeros((split.num_classes, split.num_classes), dtype=np.int64)
    for start in range(0, len(split), batch_size):
        images, labels = split.read(np.arange(start, min(start + batch_size, len(split))))
        predicted = to_numpy(model.forward(augmenter.center_crop(images), train=False)).argmax(axis=1)
        np.add.at(counts, (labels, predicted), 1)
    return counts


def plot_confusion_matrix(counts, class_names, path):
    """The confusion matrix ``counts`` (true class by row, predicted class by column) -> ``path``.

    Each row is divided by its sum, so a cell is the share of the true class's images given
    the column's class; every cell is written as a percentage, and each row is labelled
    with its class's accuracy (the diagonal cell) and its number of images. The title
    names the worst class. For ``n`` classes the picture is ``max(60 n + 300, 600)`` x
    ``max(60 n + 200, 500)`` pixels (10 classes: 900 x 800); above 30 classes the cells
    carry no numbers.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = len(counts)
    if counts.shape != (n, n) or len(class_names) != n:
        raise ValueError(f"a {counts.shape} matrix for {len(class_names)} class names: expected one row "
                         "and one column per class")
    totals = counts.sum(axis=1)
    shares = counts / np.maximum(totals, 1)[:, None]
    accuracy = np.diag(shares)
    names = [short_name(name) for name in class_names]
    worst = int(np.argmin(np.where(totals > 0, accuracy, np.inf)))

    figure = new_figure(max(60 * n + 300, 600), max(60 * n + 200, 500))
    axes = figure.add_subplot()
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        for t in range(n):
            for q in range(n):
                if counts[t, q]:
                    axes.text(q, t, f"{100 * shares[t, q]:.0f}", ha="center", va="center", fontsize=8,
                              color="white" if shares[t, q] > 0.5 else "black")
    axes.set_xticks(range(n), labels=names, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(n), labels=[f"{name} ({100 * a:.0f}% of {m})" for name, a, m in
                                      zip(names, accuracy, totals)], fontsize=8)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class (its accuracy, of how many images)")
    axes.set_title(f"Confusion matrix, % of each true class; accuracy {100 * np.trace(counts) / counts.sum():.1f}%,"
                   f" worst class: {names[worst]} ({100 * accuracy[worst]:.0f}%)", fontsize=10)
    return save(figure, path)


# After every epoch -------------------------------------------------------------------------

def draw_all(model, history, train, val, augmenter, out_dir):
    """All five pictures into ``out_dir`` -> {name: path}.

    curves.png (the whole history), conv1_kernels.png, predictions.png (8 validation
    images), neighbours.png (4 validation images, 6 neighbours each, searched among an
    even subset of at most 500 training images, not the whole training set) and
    confusion_matrix.png (every validation image).
    """
    out_dir = Path(out_dir)
    paths = {}
    if history:
        paths["curves"] = plot_curves(history, out_dir / "curves.png")
    paths["conv1_kernels"] = plot_conv1_kernels(model, out_dir / "conv1_kernels.png")
    paths["predictions"] = plot_predictions(model, val, augmenter, out_dir / "predictions.png", count=8)
    paths["neighbours"] = plot_neighbours(model, val, train, augmenter, out_dir / "neighbours.png",
                                          queries=4, neighbours=6, gallery_limit=500)
    paths["confusion_matrix"] = plot_confusion_matrix(confusion_matrix(model, val, augmenter), val.class_names,
                                                      out_dir / "confusion_matrix.png")
    return paths
