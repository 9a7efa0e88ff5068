"""Figure 1's ratio over a sweep: how many times fewer epochs ReLU needs than tanh to reach
25% training error, at each unit's fastest learning rate, as the initial weight spread and
the depth change.

    python examples/figure1_frontier.py --out runs/figure1-frontier    # the sweep: about 70 minutes on one core
    python examples/figure1_frontier.py --quick                        # a first try: about a minute
    python examples/figure1_frontier.py --spreads 4 --depths           # the base net and one spread only

The paper (section 3.1) gave each unit of its four-layer CIFAR-10 net the learning rate
"chosen to make training as fast as possible" and found ReLU six times faster.
examples/figure1.py measures one point, both units at one rate; this script measures the
frontier. The settings: the base net (figure1.py's), the same net with every layer's
initial weight spread multiplied by each of ``--spreads``, and the net deepened to each of
``--depths`` conv layers (figure1.four_layer_net says how), trained in that order, the
spreads and the depths in the order given. At each setting both units train at every
learning rate of a grid (``--lrs`` for the base net, ``--other-lrs`` for the others) from
``--seeds`` seeds; seed k gives both units the same initial weights and the same batches
at every rate.

Each unit's best rate at a setting is the one with the fewest mean epochs to the
threshold over the seeds, a run that never reaches it counted as one epoch more than it
ran; ties go to the lower mean final error, and a rate at which a run diverged is never
chosen. A grid may miss a unit's fastest rate: where the best is the grid's lowest (or
highest) rate, that unit also trains one step further down (or up) the ladder 0.0001,
0.0003, 0.001, ..., 0.3, 1, and again, up to ``--extend`` steps, until the best lies
between two rates tried. The ratio is tanh's epochs over ReLU's, each at its best rate, seed by seed, and
their mean. Where tanh did not reach the threshold the ratio is a lower bound, printed
"> x" (x: the epochs run over ReLU's); where ReLU did not, an upper bound, "< x"; where
neither did, there is none ("n/a").

Every finished run is added to OUT/runs.json at once, so a sweep that was stopped continues
where it was, the same command skipping the runs it finds there (a run is known by its
setting, unit, learning rate and seed); the same command without the settings left to do
cuts it there and reports what was done. At the end, printed and written to
OUT/frontier.md: the ratios, every rate's mean epochs and final error, and the share of
each tanh layer's inputs that start beyond +-2, where tanh's slope is below 0.08 (seed 0's
net, its first batch); and OUT/frontier.png, the ratio against each sweep with the paper's
six drawn as a line.
"""

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
from figure1 import THRESHOLD, apply_preset, builtin_images, check_images, epochs_to_reach, four_layer_net, train

from tinyalex import Tanh, engines
from tinyalex.datasets.synthetic import CLASSES

UNITS = ("relu", "tanh")
NAMES = {"relu": "ReLU", "tanh": "tanh"}
PAPER_RATIO = 6.0
LADDER = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)   # the rates a grid is extended along
SATURATED = 2.0           # |x| beyond which tanh's slope, 1 - tanh(x)^2, is below 0.08
PRESETS = {
    "full": dict(seeds=3, epochs=16, per_class=150, lrs=[0.003, 0.01, 0.03, 0.1], other_lrs=[0.003, 0.01, 0.03],
                 spreads=[0.5, 2.0, 4.0], depths=[5, 7], extend=2),
    "quick": dict(seeds=1, epochs=4, per_class=30, lrs=[0.01, 0.03], other_lrs=[0.01, 0.03], spreads=[2.0],
                  depths=[5], extend=0),
}
# what every run of one runs.json shares: a run made with other values is another experiment
DATA_KEYS = ("classes", "per_class", "size", "epochs", "batch_size")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="1 seed, 30 images per class, 4 epochs, two rates, one spread and one depth")
    p.add_argument("--seeds", type=int, help="runs per unit and rate (default 3)")
    p.add_argument("--epochs", type=int, help="epochs per run (default 16)")
    p.add_argument("--per-class", type=int, help="training images per class (default 150)")
    p.add_argument("--classes", type=int, default=10, help=f"classes, 2 to {len(CLASSES)} (default 10)")
    p.add_argument("--size", type=int, default=24, help="image side in pixels (default 24)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lrs", type=float, nargs="+", help="the base net's learning rates (default 0.003 0.01 0.03 0.1)")
    p.add_argument("--other-lrs", type=float, nargs="+",
                   help="the learning rates of every other setting (default 0.003 0.01 0.03)")
    p.add_argument("--spreads", type=float, nargs="*", help="initial spreads, times the base's (default 0.5 2 4)")
    p.add_argument("--depths", type=int, nargs="*", help="conv layers of the deeper nets (default 5 7)")
    p.add_argument("--extend", type=int,
                   help="rates to try, at most, beyond either end of a unit's grid when its fastest rate is at that "
                        "end (default 2; 0: the grids only)")
    p.add_argument("--threshold", type=float, default=THRESHOLD, help="training error %% to reach (default 25)")
    p.add_argument("--out", type=Path, default=Path("runs/figure1-frontier"))
    args = p.parse_args(argv)
    apply_preset(p, args, PRESETS["quick" if args.quick else "full"], ("seeds", "epochs", "per_class", "batch_size"))
    if args.extend < 0:
        p.error("--extend must be 0 or more")
    check_images(p, args)
    for name in ("lrs", "other_lrs", "spreads"):
        if any(value <= 0 for value in getattr(args, name)):
            p.error(f"--{name.replace('_', '-')} must all be positive")
    if 1.0 in args.spreads:
        p.error("--spreads: 1 is the base net, which is always trained")
    if any(depth <= 3 for depth in args.depths):
        p.error("--depths must all be more than 3 (3 conv layers is the base net, which is always trained)")
    return args


def settings(spreads, depths):
    """name -> (init_scale, convs) of every setting: the base net first, then the spreads,
    then the depths."""
    table = {"base": (1.0, 3)}
    table.update({f"spread x{s:g}": (s, 3) for s in spreads})
    table.update({f"{d} convs": (1.0, d) for d in depths})
    return table


# ---- the choice of the best rate and the ratio: pure functions of the curves ----

def diverged(errors):
    return not all(math.isfinite(e) for e in errors)


def rate_score(curves, threshold):
    """The curves of one unit at one rate (one per seed) -> (mean epochs to the threshold,
    a run that never reached it counted as one epoch more than it ran; mean final error),
    or None if a run diverged. The lower the better, compared in that order."""
    if any(diverged(errors) for errors in curves):
        return None
    epochs = [epochs_to_reach(errors, threshold) or len(errors) + 1 for errors in curves]
    return float(np.mean(epochs)), float(np.mean([errors[-1] for errors in curves]))


def best_rate(curves_by_lr, threshold):
    """{lr: [curve per seed]} of one unit -> the fastest learning rate, or None if every rate
    had a run that diverged."""
    scored = {lr: rate_score(curves, threshold) for lr, curves in curves_by_lr.items()}
    eligible = [lr for lr, score in scored.items() if score is not None]
    if not eligible:
        return None
    return min(eligible, key=lambda lr: scored[lr])


def rate_beyond(curves_by_lr, threshold):
    """The next rate to try for a unit whose fastest rate is at an end of those it tried:
    one step down LADDER from the lowest if the fastest is there (or if every rate had a run
    that diverged), one step up from the highest if it is there. None if the fastest lies
    between two rates tried, or the ladder ends."""
    tried = sorted(curves_by_lr)
    best = best_rate(curves_by_lr, threshold)
    if best is None or best == tried[0]:
        lower = [lr for lr in LADDER if lr < tried[0] / 1.5]
        return lower[-1] if lower else None
    if best == tried[-1]:
        higher = [lr for lr in LADDER if lr > tried[-1] * 1.5]
        return higher[0] if higher else None
    return None


def ladder_steps(grid, steps):
    """The rates of LADDER up to ``steps`` steps below a grid's lowest rate and above its
    highest: where :func:`rate_beyond` may lead."""
    lower = [lr for lr in LADDER if lr < min(grid) / 1.5]
    higher = [lr for lr in LADDER if lr > max(grid) * 1.5]
    return set(lower[len(lower) - steps:] if steps else []) | set(higher[:steps])


def seed_ratios(relu_epochs, tanh_epochs, epochs):
    """Epochs to the threshold per seed (None: not reached in ``epochs``) -> per seed the
    ratio tanh / ReLU as (value, kind): kind "=" where both reached it, ">" (a lower bound)
    where only ReLU did, "<" (an upper bound) where only tanh did; None where neither did."""
    ratios = []
    for relu, tanh in zip(relu_epochs, tanh_epochs, strict=True):
        if relu is None and tanh is None:
            ratios.append(None)
        elif relu is None:
            ratios.append((tanh / epochs, "<"))
        elif tanh is None:
            ratios.append((epochs / relu, ">"))
        else:
            ratios.append((tanh / relu, "="))
    return ratios


def mean_ratio(ratios):
    """The mean of :func:`seed_ratios`' values as (value, kind): a bound if any of them is
    one; None if a seed has no ratio or the seeds hold bounds both ways."""
    if not ratios or any(r is None for r in ratios):
        return None
    kinds = {kind for _, kind in ratios} - {"="}
    if len(kinds) > 1:
        return None
    return float(np.mean([value for value, _ in ratios])), kinds.pop() if kinds else "="


def show_ratio(ratio):
    if ratio is None:
        return "n/a"
    value, kind = ratio
    return f"{value:.1f}" if kind == "=" else f"{kind} {value:.1f}"


def show_epochs(epochs, ran):
    return " ".join(f">{ran}" if e is None else str(e) for e in epochs)


def show_mean_epochs(curves, threshold):
    """The mean epochs to the threshold; where a run did not reach it, its epochs run count
    and the mean is a lower bound, "> x"."""
    reached = [epochs_to_reach(errors, threshold) for errors in curves]
    mean = np.mean([len(errors) if e is None else e for e, errors in zip(reached, curves)])
    return f"> {mean:.1f}" if None in reached else f"{mean:.1f}"


def unit_curves(runs, setting, unit):
    """{lr: [curve of each seed]} of one unit at one setting, for the rates run with every
    seed of the setting."""
    seeds = sorted({run["seed"] for run in runs if run["setting"] == setting})
    by_lr = {}
    for run in runs:
        if run["setting"] == setting and run["unit"] == unit:
            by_lr.setdefault(run["lr"], {})[run["seed"]] = run["errors"]
    return {lr: [curves[s] for s in seeds] for lr, curves in sorted(by_lr.items()) if len(curves) == len(seeds)}


def compare(runs, setting, threshold):
    """The runs of one setting -> a row: per unit its best rate and
    epochs per seed, the ratios per seed and their mean. None if every rate of a unit had a
    run that diverged."""
    row = {"setting": setting}
    for unit in UNITS:
        curves_by_lr = unit_curves(runs, setting, unit)
        lr = best_rate(curves_by_lr, threshold)
        if lr is None:
            return None
        row[unit] = {"lr": lr, "epochs": [epochs_to_reach(c, threshold) for c in curves_by_lr[lr]]}
    ran = len(next(run["errors"] for run in runs if run["setting"] == setting))
    row["ran"] = ran
    row["ratios"] = seed_ratios(row["relu"]["epochs"], row["tanh"]["epochs"], ran)
    row["mean"] = mean_ratio(row["ratios"])
    return row


def table(rows, threshold):
    lines = [f"| setting | ReLU's best lr | tanh's best lr | ReLU epochs to {threshold:g}% | tanh epochs "
             f"| ratio per seed | mean ratio |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        relu, tanh = row["relu"], row["tanh"]
        lines.append(f"| {row['setting']} | {relu['lr']:g} | {tanh['lr']:g} "
                     f"| {show_epochs(relu['epochs'], row['ran'])} | {show_epochs(tanh['epochs'], row['ran'])} "
                     f"| {', '.join(map(show_ratio, row['ratios']))} | {show_ratio(row['mean'])} |")
    return "\n".join(lines)


def rate_table(runs, setting_names, threshold):
    """Every rate of every setting: mean epochs to the threshold (with '>' where a run did
    not reach it) and mean final error, per unit; 'diverged' where a run did, '-' where the
    unit did not run at that rate."""
    lines = ["| setting | lr | ReLU epochs | ReLU final error (%) | tanh epochs | tanh final error (%) |",
             "|---|---|---|---|---|---|"]
    for setting in setting_names:
        lrs = sorted({run["lr"] for run in runs if run["setting"] == setting})
        for lr in lrs:
            cells = []
            for unit in UNITS:
                curves = [run["errors"] for run in runs
                          if (run["setting"], run["unit"], run["lr"]) == (setting, unit, lr)]
                score = rate_score(curves, threshold) if curves else None
                if not curves:      # a rate tried beyond the grid for the other unit only
                    cells += ["-", "-"]
                elif score is None:
                    cells += ["diverged", "-"]
                else:
                    cells += [show_mean_epochs(curves, threshold), f"{score[1]:.0f}"]
            lines.append(f"| {setting} | {lr:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def saturation(x, init_scale, convs, args):
    """The share (%) of each tanh layer's inputs beyond +-2, where tanh passes on less than
    8% of the gradient, in seed 0's net before training, on the first batch it trains on."""
    first = np.random.default_rng([0, 0]).permutation(len(x))[:args.batch_size]   # as train() draws it
    h, shares = x[first], []
    for name, layer in four_layer_net("tanh", args.size, args.classes, 0, init_scale, convs):
        if isinstance(layer, Tanh):
            shares.append(100.0 * float(np.mean(np.abs(h) > SATURATED)))
        h = layer.forward(h, train=False)
    return shares


def saturation_table(x, names, args):
    lines = [f"| setting | tanh inputs beyond +-{SATURATED:g} before training, layer by layer (%) |", "|---|---|"]
    for setting, (init_scale, convs) in names.items():
        shares = saturation(x, init_scale, convs, args)
        lines.append(f"| {setting} | {', '.join(f'{share:.0f}' for share in shares)} |")
    return "\n".join(lines)


# ---- the runs, kept in OUT/runs.json ----

def load_runs(path, data):
    """The runs already in ``path`` (none if it does not exist); SystemExit if they were
    made with other data or epochs."""
    if not path.exists():
        return []
    saved = json.loads(path.read_text())
    if saved["data"] != data:
        raise SystemExit(f"error: {path} holds runs made with {saved['data']}, not {data}: give another --out")
    return saved["runs"]


def save_runs(path, data, runs):
    # written whole to a side file, then renamed over the old one: a stop mid-write loses nothing
    side = path.with_suffix(".json.part")
    side.write_text(json.dumps({"data": data, "runs": runs}, indent=1) + "\n")
    os.replace(side, path)


def key(run):
    return run["setting"], run["unit"], run["lr"], run["seed"]


def planned(args):
    """Every run of the sweep, in order: setting by setting, so a sweep cut short has
    whole settings."""
    plan = []
    for setting, (init_scale, convs) in settings(args.spreads, args.depths).items():
        for lr in args.lrs if setting == "base" else args.other_lrs:
            for seed in range(args.seeds):
                for unit in UNITS:
                    plan.append({"setting": setting, "init_scale": init_scale, "convs": convs, "unit": unit,
                                 "lr": lr, "seed": seed})
    return plan


# ---- the picture ----

def draw(path, rows, runs, args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_setting = {row["setting"]: row for row in rows}
    names = settings(args.spreads, args.depths)
    sweeps = [("initial spread (x 1/sqrt(fan-in))",
               [(scale, name) for name, (scale, convs) in names.items() if convs == 3], True),
              ("conv layers", [(convs, name) for name, (scale, convs) in names.items() if scale == 1.0], False)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, (label, points, log) in zip(axes, sweeps):
        points = sorted((x, by_setting[name]) for x, name in points if name in by_setting)
        plot_ratios(ax, [(x, row["ratios"], row["mean"]) for x, row in points], "tab:blue",
                    "tanh / ReLU, each at its best rate")
        ax.set_xlabel(label)
        if log:
            ax.set_xscale("log")
        ax.set_xticks([x for x, _ in points], [f"{x:g}" for x, _ in points])
        ax.minorticks_off()
    # the base net: tanh at each rate against ReLU at its best, and both at the same rate
    ax = axes[2]
    base = by_setting.get("base")
    if base is not None:
        curves = {(unit, lr): seeds for unit in UNITS for lr, seeds in unit_curves(runs, "base", unit).items()}
        lrs = sorted(lr for unit, lr in curves if unit == "tanh")

        def epochs(unit, lr):
            return [epochs_to_reach(errors, args.threshold) for errors in curves[unit, lr]]
        against_best, same_rate = [], []
        for lr in lrs:
            if any(diverged(errors) for errors in curves["tanh", lr]):
                continue
            ratios = seed_ratios(base["relu"]["epochs"], epochs("tanh", lr), args.epochs)
            against_best.append((lr, ratios, mean_ratio(ratios)))
            if ("relu", lr) in curves and not any(diverged(errors) for errors in curves["relu", lr]):
                ratios = seed_ratios(epochs("relu", lr), epochs("tanh", lr), args.epochs)
                same_rate.append((lr, ratios, mean_ratio(ratios)))
        plot_ratios(ax, against_best, "tab:red", f"tanh at this rate / ReLU at its best ({base['relu']['lr']:g})")
        plot_ratios(ax, same_rate, "tab:green", "both at this rate")
        ax.set_xscale("log")
        ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs])
        ax.minorticks_off()
    ax.set_xlabel("tanh's learning rate, base net")
    for ax in axes:
        ax.axhline(PAPER_RATIO, color="black", linestyle="--", linewidth=1, label="the paper: 6")
        ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.set_ylim(0, max(PAPER_RATIO + 1, ax.get_ylim()[1]))
        ax.legend(fontsize=8, loc="best")
    axes[0].set_ylabel(f"epochs to {args.threshold:g}% training error,\ntanh / ReLU")
    fig.suptitle(f"Figure 1's ratio over the sweeps ({args.seeds} seeds: dots; mean: line; "
                 f"open triangles: bounds, where one unit did not reach {args.threshold:g}% in {args.epochs} epochs)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_ratios(ax, points, colour, label):
    """points: (x, per-seed ratios, mean ratio) -> the seeds as dots, the mean as a line,
    bounds as open triangles pointing the way the ratio may go."""
    xs, means = [], []
    marker = {"=": "o", ">": "^", "<": "v"}
    for x, ratios, mean in points:
        for ratio in ratios:
            if ratio is not None:
                ax.plot(x, ratio[0], marker[ratio[1]], color=colour, alpha=0.4, markersize=4,
                        markerfacecolor=colour if ratio[1] == "=" else "none")
        if mean is not None:
            xs.append(x)
            means.append(mean[0])
            ax.plot(x, mean[0], marker[mean[1]], color=colour, markersize=7,
                    markerfacecolor=colour if mean[1] == "=" else "none")
    ax.plot(xs, means, "-", color=colour, linewidth=1.5, label=label)


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print("process settings: " + "; ".join(engines.tune_process()))
    data = {name: getattr(args, name) for name in DATA_KEYS}
    path = args.out / "runs.json"
    runs = load_runs(path, data)
    done = {key(run) for run in runs}
    plan = [run for run in planned(args) if key(run) not in done]
    names = settings(args.spreads, args.depths)
    print(f"Figure 1's frontier: {args.classes} built-in classes, {args.per_class} training images each, "
          f"{args.size}x{args.size} pixels, {args.epochs} epochs, batch {args.batch_size}, SGD momentum 0.9, no "
          f"regularisation; {len(names)} settings ({', '.join(names)}), learning rates {args.lrs} (base) and "
          f"{args.other_lrs} (the others), {args.seeds} seed(s); {len(plan)} runs of the grids to do, "
          f"{len(planned(args)) - len(plan)} found in {path}; up to {args.extend} rate(s) beyond a grid's end for "
          f"a unit whose fastest rate is there", flush=True)
    x, labels = builtin_images(args.classes, args.per_class, args.size)
    counter = iter(range(1, len(plan) + 1))

    def train_missing(todo, where):
        for run in todo:
            if key(run) in done:
                continue
            run_start = time.perf_counter()
            net = four_layer_net(run["unit"], args.size, args.classes, run["seed"], run["init_scale"], run["convs"])
            run["errors"] = train(net, x, labels, args.epochs, run["lr"], args.batch_size, run["seed"])
            run["seconds"] = time.perf_counter() - run_start
            runs.append(run)
            done.add(key(run))
            save_runs(path, data, runs)
            reached = epochs_to_reach(run["errors"], args.threshold)
            outcome = ("diverged" if diverged(run["errors"]) else
                       f"{args.threshold:g}% at epoch {reached}" if reached else f"{args.threshold:g}% not reached")
            print(f"  [{where()}] {run['setting']:>10} {run['unit']:4} lr {run['lr']:<6g} seed {run['seed']}: "
                  f"final error {run['errors'][-1]:.0f}%, {outcome}  ({run['seconds']:.0f} s)", flush=True)

    for setting in names:
        train_missing([run for run in plan if run["setting"] == setting], lambda: f"{next(counter)}/{len(plan)}")
        allowed = ladder_steps(args.lrs if setting == "base" else args.other_lrs, args.extend)
        for unit in UNITS:
            while True:
                lr = rate_beyond(unit_curves(runs, setting, unit), args.threshold)
                if lr not in allowed:
                    break
                init_scale, convs = names[setting]
                train_missing([{"setting": setting, "init_scale": init_scale, "convs": convs, "unit": unit, "lr": lr,
                                "seed": seed} for seed in range(args.seeds)], lambda: "beyond the grid")
    mine = [run for run in runs if run["setting"] in names]
    rows = [row for row in (compare(mine, setting, args.threshold) for setting in names) if row is not None]
    ratios, rates = table(rows, args.threshold), rate_table(mine, names, args.threshold)
    saturated = saturation_table(x, names, args)
    trained = sum(run["seconds"] for run in mine)
    report = (f"epochs to {args.threshold:g}% training error at each unit's best learning rate (the paper: ReLU "
              f"six times faster):\n\n{ratios}\n\nevery rate (mean over seeds):\n\n{rates}\n\n{saturated}\n")
    print("\n" + report)
    (args.out / "frontier.md").write_text(f"{report}\n{len(mine)} runs, {trained:.0f} s of training\n")
    draw(args.out / "frontier.png", rows, mine, args)
    print(f"{len(mine)} runs, {trained:.0f} s of training in all ({time.perf_counter() - started:.0f} s in this "
          f"call); wrote {path}, {args.out / 'frontier.md'} and {args.out / 'frontier.png'}")
    return rows


if __name__ == "__main__":
    main()
