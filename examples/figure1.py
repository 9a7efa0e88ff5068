"""The paper's Figure 1 at small scale: a four-layer convolutional network learns faster
with ReLUs than with tanh units (section 3.1).

    python examples/figure1.py                  # 3 seeds, both units; about 3 minutes on a 2-core CPU
    python examples/figure1.py --quick          # a first try: 1 seed, fewer images and epochs
    python examples/figure1.py --size 32 --lr 0.02 --lr-tanh 0.005 --out runs/figure1-32
    python examples/figure1.py --init-scale 4 --convs 5   # a wider initial spread, a deeper net
    python examples/figure1.py --cifar10 cifar-10-python.tar.gz     # the paper's data, if you have it

The paper trained a four-layer convolutional network on CIFAR-10 (32x32 images, 10
classes) and reached 25% training error six times faster with ReLUs than with tanh units;
"no regularization of any kind was employed", and each network had the learning rate that
trained it fastest. By default the images are tinyalex's built-in shapes and textures,
drawn at 24x24 pixels (``--size 32`` for CIFAR's size); ``--cifar10 PATH`` trains on
CIFAR-10 itself, read from the python archive that its page publishes (nothing is
downloaded: docs/results.md says where to get it). The network is three convolutional
layers and one fully-connected layer built from tinyalex's layers, the same for both
units but for the non-linearity; both start from the same weights for a given seed and see
the same batches. Both units get the same learning rate by default (``--lr``);
``--lr-tanh`` gives tanh its own, to try the paper's "fastest learning rate for each".
``--init-scale`` multiplies every layer's initial weight spread and ``--convs`` deepens the
net (see :func:`four_layer_net`); examples/figure1_frontier.py sweeps all three.

Writes OUT/figure1.png (training error against epochs: solid ReLU, dashed tanh, as the
paper draws it), OUT/figure1.json (every epoch's numbers) and prints the epochs each run
needed to reach the threshold, and their ratio.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tinyalex import SGD, Conv2D, Flatten, Linear, MaxPool2D, ReLU, SoftmaxCrossEntropy, Tanh, engines
from tinyalex.datasets import DatasetError
from tinyalex.datasets.cifar10 import read_cifar10
from tinyalex.datasets.images import resize_and_crop
from tinyalex.datasets.synthetic import CLASSES, TRAIN, image_rng, render

UNITS = {"relu": ReLU, "tanh": Tanh}
THRESHOLD = 25.0          # % training error, the paper's dashed line
SETTINGS = {              # images per class, epochs, seeds
    "full": dict(per_class=150, epochs=16, seeds=3),
    "quick": dict(per_class=60, epochs=8, seeds=1),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 seed, 60 images per class, 8 epochs")
    p.add_argument("--seeds", type=int, help="runs per unit, each from its own initial weights (default 3)")
    p.add_argument("--epochs", type=int, help="epochs per run (default 16)")
    p.add_argument("--per-class", type=int, help="training images per class (default 150)")
    p.add_argument("--classes", type=int, default=10, help=f"classes, 2 to {len(CLASSES)} (default 10)")
    p.add_argument("--cifar10", type=Path, metavar="PATH",
                   help="train on CIFAR-10, the paper's data: its python archive (cifar-10-python.tar.gz) or the "
                        "folder it unpacks to; --per-class training images of each class (all: 5000), 32x32")
    p.add_argument("--size", type=int, default=24,
                   help="image side in pixels (default 24: CIFAR-10's 32 costs 1.8 times as long)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01, help="learning rate of both units (default 0.01)")
    p.add_argument("--lr-tanh", type=float, help="a learning rate of its own for tanh (default: --lr)")
    p.add_argument("--init-scale", type=float, default=1.0,
                   help="multiplies every layer's initial weight spread, 1/sqrt(fan-in) (default 1)")
    p.add_argument("--convs", type=int, default=3,
                   help="conv layers (default 3); each one past the third is a 3x3 conv of 64 channels without "
                        "pooling, placed before the last pooling")
    p.add_argument("--threshold", type=float, default=THRESHOLD, help="training error %% to reach (default 25)")
    p.add_argument("--out", type=Path, default=Path("runs/figure1"))
    args = p.parse_args(argv)
    apply_preset(p, args, SETTINGS["quick" if args.quick else "full"],
                 ("seeds", "epochs", "per_class", "batch_size", "size"))
    if args.cifar10 is not None:
        if args.size != 24 and args.size != 32:
            p.error("--size is 32 with --cifar10 (CIFAR-10's images are 32x32)")
        args.size, args.classes = 32, 10
        if args.per_class > 5000:
            p.error("--per-class is at most 5000 with --cifar10 (CIFAR-10 has 5000 training images per class)")
    check_images(p, args)
    if args.convs < 3:
        p.error("--convs must be at least 3: the net has three pooled conv layers")
    for name in ("lr", "lr_tanh", "init_scale"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    return args


def apply_preset(parser, args, preset, counts):
    """Fill the options the user left out from ``preset``; refuse a count below 1."""
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in counts:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")


def check_images(parser, args):
    """Refuse a number of classes, a batch or an image size the four-layer net cannot take."""
    if not 2 <= args.classes <= len(CLASSES):
        parser.error(f"--classes must be from 2 to {len(CLASSES)}")
    if args.batch_size > args.classes * args.per_class:
        parser.error(f"--batch-size {args.batch_size} is more than the {args.classes * args.per_class} "
                     "training images")
    if args.size < 16:
        parser.error("--size must be at least 16: three 3/2 poolings need it")


def builtin_images(classes, per_class, size, seed=0):
    """The built-in shapes and textures at ``size`` x ``size``: float32 (N, 3, size, size)
    with the mean image subtracted and a spread of about 1, and int64 labels (N,)."""
    images, labels = [], []
    for k in range(classes):
        for i in range(per_class):
            images.append(np.asarray(resize_and_crop(render(k, image_rng(seed, TRAIN, k, i)), size)))
            labels.append(k)
    return standardised(np.stack(images)), np.array(labels)


def cifar10_images(path, per_class):
    """The first ``per_class`` training images of each CIFAR-10 class, as
    :func:`builtin_images` gives its images."""
    images, labels, _ = read_cifar10(path)["train"]
    chosen = np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in range(10)])
    return standardised(images[chosen]), labels[chosen]


def standardised(images):
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), the mean image subtracted, spread about 1."""
    x = images.astype(np.float32).transpose(0, 3, 1, 2)
    x -= x.mean(axis=0)
    x /= x.std()
    return x


def four_layer_net(unit, size, classes, seed, init_scale=1.0, convs=3):
    """conv 5x5 (32) > pool > conv 5x5 (32) > pool > conv 5x5 (64) > pool > fc: the layers
    of the paper's CIFAR-10 nets, each conv followed by ``unit`` and a 3/2 max-pooling.

    Weights from N(0, (init_scale^2)/fan-in), the same draws for both units with the same
    seed. ``convs`` above 3 deepens the net the way AlexNet stacks conv3 to conv5: each
    extra layer is a 3x3 conv of 64 channels with pad 1, followed by ``unit`` and no
    pooling, placed after conv3's unit and before the last pooling, so every spatial size
    stays what it was. The defaults give the same layers and weights as without them."""
    rng = np.random.default_rng(seed)
    after_pools = size
    for _ in range(3):
        after_pools = (after_pools - 3) // 2 + 1
    # (kernel, channels, pooled after it)
    table = [(5, 32, True), (5, 32, True), (5, 64, convs == 3)]
    table += [(3, 64, i == convs) for i in range(4, convs + 1)]
    layers = []
    channels = 3
    for i, (kernel, width, pooled) in enumerate(table, start=1):
        fan_in = channels * kernel * kernel
        layers += [(f"conv{i}", Conv2D(channels, width, kernel, pad=kernel // 2, input_grad=i > 1,
                                       weight_std=init_scale * fan_in ** -0.5, rng=rng)),
                   (f"{unit}{i}", UNITS[unit]())]
        if pooled:
            layers.append((f"pool{i}", MaxPool2D(3, 2)))
        channels = width
    features = channels * after_pools**2
    layers += [("flatten", Flatten()),
               (f"fc{convs + 1}", Linear(features, classes, weight_std=init_scale * features ** -0.5, rng=rng))]
    return layers


def train(layers, x, labels, epochs, lr, batch_size, seed):
    """SGD with momentum 0.9 and no regularisation -> training error (%) of each epoch,
    counted on the batches as they are trained (as a running training error)."""
    loss_fn, sgd = SoftmaxCrossEntropy(), SGD(lr, momentum=0.9, weight_decay=0.0)
    errors = []
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(x))
        wrong = seen = 0
        for start in range(0, len(x) - batch_size + 1, batch_size):
            batch = order[start:start + batch_size]
            h = x[batch]
            for _, layer in layers:
                h = layer.forward(h, train=True)
            loss = loss_fn.forward(h, labels[batch])
            wrong += int((h.argmax(axis=1) != labels[batch]).sum())
            seen += len(batch)
            d = loss_fn.backward()
            for _, layer in reversed(layers):
                d = layer.backward(d)
                if d is None:
                    break
            sgd.step((f"{name}.{p}", w, grad) for name, layer in layers for p, w, grad in layer.parameters())
        errors.append(100.0 * wrong / seen)
        if not np.isfinite(loss):  # diverged: the rest of the curve would be noise
            errors += [float("nan")] * (epochs - epoch - 1)
            break
    return errors


def epochs_to_reach(errors, threshold):
    """The first epoch (1-based) whose training error is at or below ``threshold``, or None."""
    for epoch, error in enumerate(errors, start=1):
        if error <= threshold:
            return epoch
    return None


def draw(path, runs, threshold, data="built-in data"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for unit, style, colour in (("relu", "-", "tab:blue"), ("tanh", "--", "tab:red")):
        curves = [run["errors"] for run in runs if run["unit"] == unit]
        epochs = np.arange(1, len(curves[0]) + 1)
        for curve in curves:
            ax.plot(epochs, curve, style, color=colour, alpha=0.3, linewidth=1)
        ax.plot(epochs, np.mean(curves, axis=0), style, color=colour, linewidth=2,
                label=f"{'ReLU' if unit == 'relu' else 'tanh'} (mean of {len(curves)})")
    ax.axhline(threshold, color="black", linewidth=0.8, linestyle=":")
    ax.set_xlabel("epochs")
    ax.set_ylabel("training error rate (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Figure 1 at small scale: four-layer CNN, {data}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summarise(runs, threshold):
    """Epochs to the threshold per unit and seed, and the ratio tanh / ReLU per seed."""
    reached = {(run["unit"], run["seed"]): epochs_to_reach(run["errors"], threshold) for run in runs}
    seeds = sorted({run["seed"] for run in runs})
    lines, ratios = [], []
    for seed in seeds:
        relu, tanh = reached["relu", seed], reached["tanh", seed]
        epochs = len(runs[0]["errors"])
        if relu is not None and tanh is not None:
            ratios.append(tanh / relu)
            ratio = f"{tanh / relu:.1f}x"
        elif relu is not None:
            ratio = f"more than {epochs / relu:.1f}x (tanh did not reach it in {epochs} epochs)"
        else:
            ratio = "n/a (ReLU did not reach it)"
        lines.append(f"  seed {seed}: ReLU {relu or '-'} epochs, tanh {tanh or '-'} epochs: {ratio}")
    return lines, ratios


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print("process settings: " + "; ".join(engines.tune_process()))
    source = f"CIFAR-10 ({args.cifar10})" if args.cifar10 else "built-in"
    print(f"Figure 1 at small scale: {args.classes} {source} classes, {args.per_class} training images each, "
          f"{args.size}x{args.size} pixels; {args.convs} conv layers, initial spread x{args.init_scale:g}; "
          f"{args.seeds} seed(s) x (ReLU, tanh), {args.epochs} epochs, batch {args.batch_size}, SGD momentum 0.9, "
          f"no weight decay, no dropout, no augmentation; learning rate {args.lr} for ReLU and "
          f"{args.lr_tanh or args.lr} for tanh", flush=True)
    try:
        x, labels = (cifar10_images(args.cifar10, args.per_class) if args.cifar10
                     else builtin_images(args.classes, args.per_class, args.size))
    except DatasetError as error:
        raise SystemExit(f"error: {error}")
    runs = []
    for seed in range(args.seeds):
        for unit in ("relu", "tanh"):
            lr = args.lr_tanh if unit == "tanh" and args.lr_tanh else args.lr
            run_start = time.perf_counter()
            net = four_layer_net(unit, args.size, args.classes, seed, args.init_scale, args.convs)
            errors = train(net, x, labels, args.epochs, lr, args.batch_size, seed)
            runs.append({"unit": unit, "seed": seed, "lr": lr, "errors": errors,
                         "seconds": time.perf_counter() - run_start})
            print(f"  {unit:4} seed {seed}: training error by epoch "
                  + " ".join(f"{e:.0f}" for e in errors) + f"  ({runs[-1]['seconds']:.0f} s)", flush=True)
    lines, ratios = summarise(runs, args.threshold)
    print(f"\nepochs to {args.threshold:g}% training error (the paper: six times fewer with ReLU):")
    print("\n".join(lines))
    if ratios:
        print(f"  tanh / ReLU: mean {np.mean(ratios):.1f}x over {len(ratios)} seed(s) where both reached it "
              f"(min {min(ratios):.1f}x, max {max(ratios):.1f}x)")
    draw(args.out / "figure1.png", runs, args.threshold, "CIFAR-10" if args.cifar10 else "built-in data")
    seconds = time.perf_counter() - started
    (args.out / "figure1.json").write_text(json.dumps(
        {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
         "runs": runs, "ratios": ratios, "seconds": seconds}, indent=1) + "\n")
    print(f"wrote {args.out / 'figure1.png'} and {args.out / 'figure1.json'} in {seconds:.0f} s")
    return {"runs": runs, "ratios": ratios}


if __name__ == "__main__":
    main()
