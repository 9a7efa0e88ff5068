"""The scripts that measure the paper's findings, end to end on tiny settings:
examples/ablations.py (every ablation variant), examples/figure1.py (ReLU against tanh),
and the training program's ablation switches."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import example

ROOT = Path(__file__).resolve().parents[1]


def test_ablations_end_to_end_and_resumed_without_rerunning(tmp_path):
    ablations = example("ablations")
    args = ["--seeds", "1", "--epochs", "1", "--data-scale", "0.04", "--data-out", str(tmp_path / "data"),
            "--out", str(tmp_path / "out"), "--devices", "cpu"]
    results = ablations.main(args)
    assert sorted(r["variant"] for r in results) == sorted(ablations.VARIANTS)
    table = (tmp_path / "out" / "ablations.md").read_text()
    for variant in ablations.VARIANTS:
        assert f"| {variant} |" in table
    assert (tmp_path / "out" / "ablations.png").stat().st_size > 0
    # the one-column variant is the paper's one-GPU net: one column, half the kernels of conv1-conv4
    one = next(r for r in results if r["variant"] == "one-column")
    paper = next(r for r in results if r["variant"] == "paper")
    assert one["parameters"] != paper["parameters"]
    config = ablations.model_config("one-column", 10, 0)
    assert config["columns"] == 1 and config["channels"][0] * 2 == ablations.builtin.MODEL["channels"][0]
    # the no-conv4 variant is the built-in net without conv4: 3x3 kernels over its own column's conv3 maps
    shallower = next(r for r in results if r["variant"] == "no-conv4")
    _, _, conv3, conv4, _ = ablations.builtin.MODEL["channels"]
    assert paper["parameters"] - shallower["parameters"] == conv4 * (conv3 // 2) * 3 * 3 + conv4
    # a second call finds every run done and repeats none of them
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    again = ablations.main(args)
    assert sorted(json.dumps(r, sort_keys=True) for r in again) == sorted(json.dumps(r, sort_keys=True) for r in saved)


def test_a_run_the_schedule_ended_early_counts_as_done(tmp_path):
    """Three drops of the learning rate end a run before --epochs (section 5): the study neither
    trains it again nor leaves it out of the table."""
    ablations = example("ablations")
    out = tmp_path / "out"
    out.mkdir()
    ended_early = {"variant": "paper", "seed": 0, "epochs": 3, "max_epochs": 5, "val_top1_error": 12.5,
                   "val_top5_error": 1.5, "val_top1_error_10crop": None, "train_top1_error": 11.0,
                   "val_loss": 0.4, "train_loss": 0.3, "seconds": 1.0, "parameters": 1}
    (out / "results.json").write_text(json.dumps([ended_early]))
    args = ["--variants", "paper", "--seeds", "1", "--epochs", "5", "--data-scale", "0.04",
            "--data-out", str(tmp_path / "data"), "--out", str(out), "--devices", "cpu"]
    assert ablations.main(args) == [ended_early]
    assert not (out / "paper-seed0").exists()         # nothing was trained
    assert "| paper |" in (out / "ablations.md").read_text()


def test_mean_and_spread_in_the_table():
    ablations = example("ablations")
    results = [{"variant": "paper", "seed": s, "val_top1_error": e1, "val_top5_error": e5, "train_top1_error": 1.0}
               for s, (e1, e5) in enumerate([(10.0, 2.0), (14.0, 4.0)])]
    results.append({"variant": "no-lrn", "seed": 0, "val_top1_error": 15.0, "val_top5_error": 3.0,
                    "train_top1_error": 2.0})
    table = ablations.table(results, ["paper", "no-lrn"])
    assert "| paper | - | 2 | 12.0 ± 2.8 | 3.0 ± 1.4 | - |" in table      # std of (10, 14) is 2.83
    assert "| +3.0 / +0.0 |" in table


def test_figure1_counts_epochs_to_the_threshold_and_the_ratio():
    figure1 = example("figure1")
    assert figure1.epochs_to_reach([80, 50, 26, 25, 10], 25) == 4
    assert figure1.epochs_to_reach([80, 50, 30], 25) is None
    runs = [{"unit": "relu", "seed": 0, "errors": [60, 20, 10]}, {"unit": "tanh", "seed": 0, "errors": [80, 50, 24]},
            {"unit": "relu", "seed": 1, "errors": [60, 24, 10]}, {"unit": "tanh", "seed": 1, "errors": [90, 80, 70]}]
    lines, ratios = figure1.summarise(runs, 25)
    assert ratios == [1.5]
    assert "more than 1.5x" in lines[1]


def test_figure1_end_to_end(tmp_path):
    figure1 = example("figure1")
    result = figure1.main(["--seeds", "1", "--epochs", "2", "--per-class", "6", "--classes", "3", "--size", "16",
                           "--batch-size", "6",
                           "--out", str(tmp_path)])
    assert [run["unit"] for run in result["runs"]] == ["relu", "tanh"]
    assert all(len(run["errors"]) == 2 and all(0 <= e <= 100 for e in run["errors"]) for run in result["runs"])
    assert (tmp_path / "figure1.png").stat().st_size > 0
    assert json.loads((tmp_path / "figure1.json").read_text())["runs"][0]["unit"] == "relu"


def train(*args):
    command = [sys.executable, str(ROOT / "examples" / "train_imagenet.py"), "--devices", "cpu", "--batch-size", "4",
               "--epochs", "1", "--ten-crop-every", "0", "--no-plots", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_training_program_takes_the_ablation_switches(data, tmp_path):
    result = train("--data", data, "--out", tmp_path, "--activation", "tanh", "--no-lrn", "--pool", "2,2",
                   "--columns", "1", "--no-pca", "--no-dropout", "--drop-conv", "conv4")
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("ablation: activation=tanh, lrn=False, pool=(2, 2), columns=1, dropout=0.0, drop_conv=conv4, "
            "no PCA colour noise" in result.stdout)
    with np.load(tmp_path / "checkpoint.npz") as checkpoint:
        meta = json.loads(str(checkpoint["meta"]))
    assert meta["model"]["activation"] == "tanh" and meta["model"]["columns"] == 1
    assert meta["model"]["pool"] == [2, 2] and meta["pca_std"] == 0.0 and meta["model"]["drop_conv"] == "conv4"
    names = checkpoint_names(tmp_path)
    assert "conv2.weight" in names and "conv5.weight" in names and "conv4.weight" not in names


def checkpoint_names(folder):
    with np.load(folder / "checkpoint.npz") as checkpoint:
        return {name[len("model/"):] for name in checkpoint.files if name.startswith("model/")}


def test_bad_ablation_values_are_refused(tmp_path):
    for option, value in (("--pool", "3"), ("--pool", "0,2"), ("--columns", "3"), ("--activation", "sigmoid"),
                          ("--drop-conv", "conv3"), ("--drop-conv", "conv5")):
        result = train("--out", tmp_path / "never", option, value)
        assert result.returncode == 2 and option in result.stderr, (option, value, result.stderr[-500:])
        assert not (tmp_path / "never").exists()
    # a refused layer is refused with the reason
    assert "the only crossing between conv layers" in train("--out", tmp_path / "never", "--drop-conv", "conv3").stderr


def test_the_overfitting_regime_keeps_its_learning_rate_and_reports_the_gap(tmp_path):
    ablations = example("ablations")
    args = ["--regime", "overfit", "--variants", "no-dropout", "--seeds", "1", "--epochs", "3", "--data-scale", "0.2",
            "--data-out", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--devices", "cpu"]
    results = ablations.main(args)
    assert sorted(r["variant"] for r in results) == ["no-dropout", "paper"]
    run = tmp_path / "out" / "paper-seed0"
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(epochs) == 3 and {m["lr_next"] for m in epochs} == {ablations.builtin.RECIPE["learning_rate"]}
    assert (tmp_path / "out" / "curves.png").stat().st_size > 0
    assert "| gap (val - train) |" in (tmp_path / "out" / "ablations.md").read_text()


def test_the_overfitting_regime_never_divides_the_learning_rate():
    from tinyalex.sgd import PlateauSchedule

    ablations = example("ablations")
    args = ablations.parse_args(["--regime", "overfit", "--devices", "cpu"])
    assert args.epochs == ablations.builtin.OVERFIT["epochs"] and args.out.name == "ablations-overfit"
    recipe = ablations.recipe_for(args)
    schedule = PlateauSchedule(recipe.learning_rate, recipe.lr_drop_factor, recipe.patience, recipe.max_lr_drops)
    rates = [schedule.step(50.0) for _ in range(args.epochs)]   # never a new best after the first epoch
    assert set(rates) == {recipe.learning_rate} and not schedule.finished
    builtin_run = ablations.recipe_for(ablations.parse_args(["--devices", "cpu"]))
    assert builtin_run.patience == ablations.builtin.RECIPE["patience"]


def test_the_convergence_table_from_curves():
    ablations = example("ablations")
    assert ablations.first_epoch_at_or_below([50.0, 20.0, 9.0, 12.0], 10.0) == 3
    assert ablations.first_epoch_at_or_below([50.0, 20.0], 10.0) is None
    curves = {("paper", 0): {"train": [80.0, 30.0, 8.0], "val": [85.0, 40.0, 30.0]},
              ("paper", 1): {"train": [70.0, 9.0, 4.0], "val": [80.0, 35.0, 36.0]},
              ("no-dropout", 0): {"train": [60.0, 20.0, 15.0], "val": [70.0, 50.0, 55.0]}}
    table = ablations.convergence_table(curves, ["paper", "no-dropout"])
    # paper: ends 8 and 4 (mean 6.0, std 2.8), 30 and 36 (33.0 ± 4.2), gaps 22 and 32 (27.0 ± 7.1);
    # 10% training error at epochs 3 and 2; best validation at epochs 3 and 2
    assert "| paper | 2 | 6.0 ± 2.8 | 33.0 ± 4.2 | 27.0 ± 7.1 | 2 ± 1 | 2 ± 1 |" in table
    assert "| no-dropout | 1 | 15.0 ± 0.0 | 55.0 ± 0.0 | 40.0 ± 0.0 | not reached in 1 of 1 runs | 2 ± 0 |" in table
