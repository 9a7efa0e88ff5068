"""The paper's claims against their ablations, measured on the built-in data set.

    python examples/ablations.py --quick        # a first try: 1 seed, short runs (minutes)
    python examples/ablations.py                # 3 seeds of every variant (about an hour on a 2-core CPU)
    python examples/ablations.py --devices 0    # on a GPU: much faster
    python examples/ablations.py --variants paper no-lrn --seeds 5

Each variant is the built-in run (the same data, net and recipe as
``python examples/train_imagenet.py``, shortened to --epochs) with one of the paper's
ingredients taken out or changed:

    variant      what changes                                      the paper's claim (section)
    paper        nothing: ReLU, LRN, pooling 3/2, two columns,     -
                 PCA colour noise, dropout
    no-lrn       no local response normalization                   LRN: -1.4% top-1, -1.2% top-5 (3.3)
    pool-2x2     max-pooling 2/2 instead of 3/2                    overlap: -0.4% top-1, -0.3% top-5 (3.4)
    one-column   one column, half the kernels in conv1-conv4       two columns: -1.7% top-1, -1.2% top-5 (3.2)
                 (the paper's one-GPU baseline)
    no-pca       no PCA colour noise                               over -1% top-1 (4.1)
    no-dropout   no dropout                                        "substantial overfitting" without it (4.2)
    tanh         tanh instead of ReLU                              Figure 1: slower to train (3.1)
    no-conv4     no conv4: conv5 reads conv3's maps                removing a middle conv layer: about +2% top-1 (7)

Every run of every seed is written to OUT/<variant>-seed<k>/ (checkpoint, metrics) and
its final numbers to OUT/results.json as soon as it ends, so a stopped study continues
where it was (runs already finished are not repeated; a run cut short resumes from its
checkpoint). At the end: OUT/ablations.md (a Markdown table: mean +- standard deviation of
the validation top-1 and top-5 error over the seeds, and the change against ``paper``),
OUT/ablations.png, and the same table printed.
"""

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from tinyalex import PAPER, AlexNet, builtin
from tinyalex.backend import parse_devices
from tinyalex.engines import BlasThreads, tune_process
from tinyalex.locking import FolderInUse, folder_lock
from tinyalex.training import Trainer

VARIANTS = {  # name -> (model switches, trainer options, the paper's claim)
    "paper": ({}, {}, "-"),
    "no-lrn": ({"lrn": False}, {}, "LRN: -1.4% top-1, -1.2% top-5 (3.3)"),
    "pool-2x2": ({"pool": (2, 2)}, {}, "overlapping pooling: -0.4% top-1, -0.3% top-5 (3.4)"),
    "one-column": ({"columns": 1, "halve_convs": True}, {}, "two columns: -1.7% top-1, -1.2% top-5 (3.2)"),
    "no-pca": ({}, {"pca_std": 0.0}, "PCA colour noise: over -1% top-1 (4.1)"),
    "no-dropout": ({"dropout": 0.0}, {}, "dropout: without it, substantial overfitting (4.2)"),
    "tanh": ({"activation": "tanh"}, {}, "ReLU: faster training (3.1, Figure 1)"),
    "no-conv4": ({"drop_conv": "conv4"}, {}, "removing a middle conv layer: about +2% top-1 (7)"),
}
PRESETS = {"full": dict(seeds=3, epochs=15), "quick": dict(seeds=1, epochs=4)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 seed and 4 epochs per variant: a first try")
    p.add_argument("--seeds", type=int, help="runs per variant (default 3)")
    p.add_argument("--epochs", type=int, help="epochs per run (default 15)")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help="which variants (default: all); 'paper' is always run, as the reference")
    p.add_argument("--devices", default=None, help='"cpu", a GPU id, or two ids such as 0,1')
    p.add_argument("--data-out", type=Path, default=Path("data"), help="where the built-in data set goes")
    p.add_argument("--out", type=Path, help="default: runs/ablations, or runs/ablations-overfit")
    p.add_argument("--adaptive-threads", action="store_true",
                   help="NumPy's BLAS on one thread while other programs slow the steps (see train_imagenet.py)")
    p.add_argument("--regime", choices=("builtin", "overfit"), default="builtin",
                   help="builtin: the built-in run's data and recipe; overfit: a tenth of its training images, "
                        "a fixed learning rate and long runs, where a net can overfit (tinyalex/builtin.py: "
                        "OVERFIT); default builtin")
    p.add_argument("--data-scale", type=float, default=1.0,
                   help="fraction of the built-in data set's images per class (for tests; default 1)")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = Path("runs/ablations" + ("-overfit" if args.regime == "overfit" else ""))
    if args.regime == "overfit" and args.epochs is None:
        args.epochs = builtin.OVERFIT["epochs"]
    for name, value in PRESETS["quick" if args.quick else "full"].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.seeds < 1 or args.epochs < 1:
        p.error("--seeds and --epochs must be at least 1")
    if not 0 < args.data_scale <= 1:
        p.error("--data-scale must be in (0, 1]")
    if "paper" not in args.variants:
        args.variants.insert(0, "paper")
    try:
        args.devices = parse_devices(args.devices)
    except ValueError as error:
        p.error(f"--devices {error}")
    return args


def model_config(variant, num_classes, seed):
    """What AlexNet is built with for ``variant``: the built-in net, changed as the variant says."""
    switches = dict(VARIANTS[variant][0])
    if switches.pop("halve_convs", False):
        # the paper's one-GPU net (section 3.2 and its footnote): half the kernels of conv1 to
        # conv4, conv5 and the fc layers whole
        c1, c2, c3, c4, c5 = builtin.MODEL["channels"]
        switches["channels"] = (c1 // 2, c2 // 2, c3 // 2, c4 // 2, c5)
    return {"num_classes": num_classes, "seed": seed, **builtin.model_settings(**switches)}


def recipe_for(args):
    """The built-in run's recipe; in the overfitting regime with a fixed learning rate (the
    plateau rule then needs more epochs without a new best than the run has)."""
    recipe = replace(PAPER, **builtin.RECIPE)
    return replace(recipe, patience=args.epochs + 1) if args.regime == "overfit" else recipe


def run_one(variant, seed, args, train, val):
    """Train one variant with one seed (resuming if it was cut short) -> its final metrics."""
    _, trainer_options, _ = VARIANTS[variant]
    out = args.out / f"{variant}-seed{seed}"
    config = model_config(variant, train.num_classes, seed)
    model = AlexNet(devices=args.devices, **config)
    recipe = recipe_for(args)
    trainer = Trainer(model, config, train, val, out, recipe=recipe, epochs=args.epochs, seed=seed,
                      ten_crop_every=args.epochs, blas_threads=BlasThreads() if args.adaptive_threads else None,
                      **trainer_options)
    if (out / "checkpoint.npz").exists():
        trainer.resume()
    started = time.perf_counter()
    history = trainer.train()
    last = history[-1]
    # "epochs" is how many ran: fewer than asked when the schedule ended the run (section 5:
    # the learning rate divided three times); "max_epochs" is how many were asked
    return {"variant": variant, "seed": seed, "epochs": len(history), "max_epochs": args.epochs,
            "val_top1_error": last["val_top1_error"], "val_top5_error": last["val_top5_error"],
            "val_top1_error_10crop": last.get("val_top1_error_10crop"),
            "train_top1_error": last["train_top1_error"], "val_loss": last["val_loss"],
            "train_loss": last["train_loss"], "seconds": time.perf_counter() - started,
            "parameters": model.num_parameters()}


def asked(result):
    """The epochs a run was asked for (results written before "max_epochs" was kept ran them all)."""
    return result.get("max_epochs", result["epochs"])


def mean_std(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def table(results, variants):
    """The Markdown table: one row per variant, mean +- std over its seeds."""
    rows = ["| variant | the paper's claim | seeds | val top-1 error (%) | val top-5 error (%) | "
            "change in top-1 / top-5 vs paper | train top-1 error (%) |",
            "|---|---|---|---|---|---|---|"]
    reference = {k: mean_std([r[k] for r in results if r["variant"] == "paper"])[0]
                 for k in ("val_top1_error", "val_top5_error")}
    for variant in variants:
        runs = [r for r in results if r["variant"] == variant]
        if not runs:
            continue
        (top1, top1_std), (top5, top5_std) = (mean_std([r[k] for r in runs])
                                              for k in ("val_top1_error", "val_top5_error"))
        train_error, train_std = mean_std([r["train_top1_error"] for r in runs])
        change = ("-" if variant == "paper" else
                  f"{top1 - reference['val_top1_error']:+.1f} / {top5 - reference['val_top5_error']:+.1f}")
        rows.append(f"| {variant} | {VARIANTS[variant][2]} | {len(runs)} | {top1:.1f} ± {top1_std:.1f} | "
                    f"{top5:.1f} ± {top5_std:.1f} | {change} | {train_error:.1f} ± {train_std:.1f} |")
    return "\n".join(rows)


def draw(path, results, variants):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [v for v in variants if any(r["variant"] == v for r in results)]
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 4))
    for offset, key, label in ((-0.2, "val_top1_error", "val top-1 error"),
                               (0.2, "val_top5_error", "val top-5 error")):
        means, stds = zip(*(mean_std([r[key] for r in results if r["variant"] == v]) for v in names))
        ax.bar([i + offset for i in range(len(names))], means, width=0.4, yerr=stds, capsize=3, label=label)
        for i, v in enumerate(names):  # every seed as a dot, so the spread is visible
            ax.plot([i + offset] * sum(r["variant"] == v for r in results),
                    [r[key] for r in results if r["variant"] == v], "k.", markersize=4)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("error on the built-in validation set (%)")
    ax.set_title("the paper's ingredients, one taken out at a time (mean ± std over seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    print("process settings: " + "; ".join(tune_process()))
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with folder_lock(args.out, "an ablation study"):
            return study(args)
    except FolderInUse as error:
        raise SystemExit(f"error: {error}")


def study(args):
    started = time.perf_counter()
    sizes = {k: v for k, v in builtin.OVERFIT.items() if k != "epochs"} if args.regime == "overfit" else {}
    train, val = builtin.data(args.data_out, scale=args.data_scale, **sizes)
    if args.regime == "overfit":
        print("The overfitting regime, because")
        for reason in builtin.OVERFIT_REASONS:
            print(f"  - {reason}")
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else []
    done = {(r["variant"], r["seed"], asked(r)) for r in results}
    print(f"Ablations on the built-in data set: {len(args.variants)} variants x {args.seeds} seed(s), "
          f"{args.epochs} epochs each; results in {args.out}", flush=True)
    for seed in range(args.seeds):
        for variant in args.variants:
            if (variant, seed, args.epochs) in done:
                continue
            print(f"\n== {variant}, seed {seed}", flush=True)
            result = run_one(variant, seed, args, train, val)
            results = [r for r in results if (r["variant"], r["seed"]) != (variant, seed)] + [result]
            results_path.write_text(json.dumps(results, indent=1) + "\n")
    results = [r for r in results if asked(r) == args.epochs and r["variant"] in args.variants
               and r["seed"] < args.seeds]
    text = table(results, args.variants)
    minutes = (time.perf_counter() - started) / 60
    (args.out / "ablations.md").write_text(
        f"Validation error on the built-in data set after {args.epochs} epochs (fewer where the schedule "
        f"ended a run: three drops of the learning rate), mean ± standard deviation "
        f"over {args.seeds} seed(s) (`python examples/ablations.py"
        + (f" --seeds {args.seeds} --epochs {args.epochs}" if not args.quick else " --quick") + "`).\n\n"
        + text + "\n")
    draw(args.out / "ablations.png", results, args.variants)
    print("\n" + text)
    if args.regime == "overfit":
        curves = {(r["variant"], r["seed"]): read_curve(args.out / f"{r['variant']}-seed{r['seed']}") for r in results}
        lines = convergence_table(curves, args.variants)
        with open(args.out / "ablations.md", "a") as file:
            file.write("\n" + lines + "\n")
        print("\n" + lines)
        draw_curves(args.out / "curves.png", curves, args.variants)
        print(f"training and validation error by epoch: {args.out / 'curves.png'}")
    print(f"\nwrote {args.out / 'ablations.md'} and {args.out / 'ablations.png'}; this call took {minutes:.1f} min")
    return results


def read_curve(run_folder):
    """A run's training and validation top-1 error (%) by epoch, from its metrics.jsonl."""
    epochs = [json.loads(line) for line in (run_folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {"train": [m["train_top1_error"] for m in epochs], "val": [m["val_top1_error"] for m in epochs]}


def first_epoch_at_or_below(errors, threshold):
    """The first epoch (1-based) whose error is at most ``threshold``, or None."""
    return next((epoch for epoch, error in enumerate(errors, start=1) if error <= threshold), None)


def convergence_table(curves, variants, threshold=10.0):
    """Per variant, mean ± std over seeds: the errors at the end, their gap, and how soon the
    run learned its training images (epochs to <= ``threshold``% training error) and reached
    its best validation error."""
    rows = ["| variant | seeds | train top-1 error at the end (%) | val top-1 error at the end (%) | gap (val - train) "
            f"| epochs to {threshold:g}% training error | epoch of the best val error |", "|---|---|---|---|---|---|---|"]
    for variant in variants:
        runs = [curve for (name, _), curve in sorted(curves.items()) if name == variant]
        if not runs:
            continue
        train_end, val_end = mean_std([c["train"][-1] for c in runs]), mean_std([c["val"][-1] for c in runs])
        gap = mean_std([c["val"][-1] - c["train"][-1] for c in runs])
        reached = [first_epoch_at_or_below(c["train"], threshold) for c in runs]
        best = mean_std([1 + min(range(len(c["val"])), key=c["val"].__getitem__) for c in runs])
        reach_text = (f"{mean_std(reached)[0]:.0f} ± {mean_std(reached)[1]:.0f}" if None not in reached
                      else f"not reached in {sum(r is None for r in reached)} of {len(runs)} runs")
        rows.append(f"| {variant} | {len(runs)} | {train_end[0]:.1f} ± {train_end[1]:.1f} | {val_end[0]:.1f} ± "
                    f"{val_end[1]:.1f} | {gap[0]:.1f} ± {gap[1]:.1f} | {reach_text} | {best[0]:.0f} ± {best[1]:.0f} |")
    return "\n".join(rows)


def draw_curves(path, curves, variants):
    """Training (dashed) and validation (solid) error by epoch, one colour per variant, one
    line per seed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for colour, variant in zip(("tab:blue", "tab:red", "tab:green", "tab:purple"), variants):
        for index, ((name, seed), curve) in enumerate(sorted(curves.items())):
            if name != variant:
                continue
            epochs = range(1, len(curve["val"]) + 1)
            first = not any(n == variant for n, s in curves if s < seed)
            ax.plot(epochs, curve["val"], "-", color=colour, linewidth=1, label=f"{variant}: validation" if first else None)
            ax.plot(epochs, curve["train"], "--", color=colour, linewidth=1, label=f"{variant}: training" if first else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("top-1 error (%)")
    ax.set_ylim(0, 100)
    ax.set_title("few images, long runs: training (dashed) and validation (solid) error, one line per seed")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
