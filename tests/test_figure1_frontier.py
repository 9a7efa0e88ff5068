"""examples/figure1_frontier.py, Figure 1's ratio over sweeps of learning rate, initial
spread and depth: the choice of each unit's best rate and the ratio on hand-made curves,
the nets that examples/figure1.py's --init-scale and --convs build, and a tiny sweep run
twice, the second time finding every run done."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import example

ROOT = Path(__file__).resolve().parents[1]
NAN = math.nan


@pytest.fixture
def frontier(monkeypatch):
    # the script imports figure1 as its neighbour, as it does when run from examples/
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    return example("figure1_frontier")


def test_a_rate_is_scored_by_mean_epochs_then_final_error(frontier):
    # epochs to 25%: 3 and 2; final errors 10 and 10
    assert frontier.rate_score([[60, 30, 20, 10], [70, 24, 20, 10]], 25) == (2.5, 10.0)
    # never reached in 4 epochs: counted as 5
    assert frontier.rate_score([[90, 80, 70, 60], [80, 60, 40, 30]], 25) == (5.0, 45.0)
    assert frontier.rate_score([[20, NAN, NAN, NAN], [20, 10, 5, 1]], 25) is None


def test_the_best_rate_is_the_fastest_ties_to_the_lower_final_error_never_a_diverged_one(frontier):
    curves = {
        0.003: [[90, 80, 70, 60], [80, 60, 40, 30]],     # not reached: 5, 5
        0.01: [[60, 30, 20, 10], [70, 24, 20, 10]],      # 3, 2 -> 2.5, final 10
        0.03: [[50, 20, 10, 5], [40, 30, 22, 5]],        # 2, 3 -> 2.5, final 5: wins the tie
        0.1: [[20, NAN, NAN, NAN], [20, 10, 5, 1]],      # fastest, but one run diverged
    }
    assert frontier.best_rate(curves, 25) == 0.03
    del curves[0.03]
    assert frontier.best_rate(curves, 25) == 0.01
    # a run that does not reach the threshold counts as one epoch more than it ran: 3 and (4 + 1)
    # make 4.0, slower than 3 and 3
    assert frontier.best_rate({0.01: [[30, 20, 20, 20], [30, 30, 30, 30]],
                               0.03: [[30, 30, 20, 20], [30, 30, 20, 20]]}, 25) == 0.03
    assert frontier.best_rate({0.1: [[NAN]]}, 25) is None


def test_a_grid_is_extended_where_the_fastest_rate_is_at_its_end(frontier):
    fast, slow, never, blown = [30, 20, 10], [30, 30, 20], [90, 90, 90], [NAN]
    assert frontier.rate_beyond({0.003: [fast], 0.01: [slow], 0.03: [never]}, 25) == 0.001
    assert frontier.rate_beyond({0.001: [never], 0.003: [slow], 0.01: [fast]}, 25) == 0.03
    assert frontier.rate_beyond({0.003: [slow], 0.01: [fast], 0.03: [slow]}, 25) is None
    # the fastest is the highest rate that did not diverge: it lies below one that did
    assert frontier.rate_beyond({0.01: [slow], 0.03: [fast], 0.1: [blown]}, 25) is None
    assert frontier.rate_beyond({0.01: [blown], 0.03: [blown]}, 25) == 0.003
    assert frontier.rate_beyond({0.0001: [fast], 0.001: [slow]}, 25) is None      # the ladder's end
    assert frontier.rate_beyond({0.02: [fast], 0.05: [slow]}, 25) == 0.01         # off the ladder: the next on it
    # how far it may go: --extend steps from either end of the grid
    assert frontier.ladder_steps([0.003, 0.01, 0.03], 2) == {0.0003, 0.001, 0.1, 0.3}
    assert frontier.ladder_steps([0.0003, 0.3], 1) == {0.0001, 1.0}
    assert frontier.ladder_steps([0.0001, 1.0], 2) == set() == frontier.ladder_steps([0.01], 0)


def test_ratios_per_seed_with_lower_bounds_and_their_mean(frontier):
    ratios = frontier.seed_ratios([2, 4, None, None], [6, None, 8, None], 16)
    # 6/2; tanh not reached: more than 16/4; ReLU not reached: less than 8/16; neither: none
    assert ratios == [(3.0, "="), (4.0, ">"), (0.5, "<"), None]
    assert frontier.mean_ratio(ratios) is None
    assert frontier.mean_ratio(ratios[:2]) == (3.5, ">")
    assert frontier.mean_ratio([ratios[0], ratios[2]]) == (1.75, "<")
    assert frontier.mean_ratio(ratios[1:3]) is None         # bounds both ways bound nothing
    assert frontier.mean_ratio([(3.0, "="), (6.0, "=")]) == (4.5, "=")
    assert [frontier.show_ratio(r) for r in ratios] == ["3.0", "> 4.0", "< 0.5", "n/a"]
    assert frontier.show_epochs([3, None], 16) == "3 >16"
    assert frontier.show_mean_epochs([[30, 20], [30, 30]], 25) == "> 2.0"     # (2 + 2) / 2, one not reached


def test_a_setting_compares_each_unit_at_its_own_best_rate(frontier):
    def run(unit, lr, seed, errors):
        return {"setting": "base", "unit": unit, "lr": lr, "seed": seed, "errors": errors}
    runs = [run("relu", 0.01, 0, [40, 20, 10]), run("relu", 0.01, 1, [30, 24, 10]),     # 2, 2
            run("relu", 0.1, 0, [40, 30, 20]), run("relu", 0.1, 1, [30, 20, 10]),       # 3, 2
            run("tanh", 0.01, 0, [80, 70, 60]), run("tanh", 0.01, 1, [80, 70, 60]),     # never
            run("tanh", 0.1, 0, [50, 40, 20]), run("tanh", 0.1, 1, [50, 40, 30])]       # 3, never
    row = frontier.compare(runs, "base", 25)
    assert row["relu"] == {"lr": 0.01, "epochs": [2, 2]}
    assert row["tanh"] == {"lr": 0.1, "epochs": [3, None]}
    assert row["ratios"] == [(1.5, "="), (1.5, ">")]      # 3/2, and more than 3/2
    assert row["mean"] == (1.5, ">")
    assert "| base | 0.01 | 0.1 | 2 2 | 3 >3 | 1.5, > 1.5 | > 1.5 |" in frontier.table([row], 25)
    # a rate tried for one unit only (beyond its grid) leaves the other's cells empty
    runs += [run("relu", 0.003, 0, [40, 30, 30]), run("relu", 0.003, 1, [30, 30, 20])]
    rates = frontier.rate_table(runs, ["base"], 25)
    assert "| base | 0.003 | > 3.0 | 25 | - | - |" in rates            # (3 + 3) / 2, one not reached
    assert "| base | 0.01 | 2.0 | 10 | > 3.0 | 60 |" in rates


def test_a_wider_initial_spread_saturates_more_tanh_inputs(frontier):
    args = frontier.parse_args(["--classes", "2", "--batch-size", "16"])
    x = np.random.default_rng(0).standard_normal((32, 3, 24, 24)).astype(np.float32)
    narrow, wide = frontier.saturation(x, 0.25, 3, args), frontier.saturation(x, 4.0, 3, args)
    assert len(narrow) == len(wide) == 3 and all(0 <= share <= 100 for share in narrow + wide)
    assert narrow[0] == 0.0 and wide[0] > 10   # inputs of spread 1: at x4, conv1's outputs have a spread near 4


def test_the_default_net_is_the_one_figure1_always_built():
    figure1 = example("figure1")
    layers = figure1.four_layer_net("relu", 24, 10, seed=0)
    assert [name for name, _ in layers] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3",
                                            "pool3", "flatten", "fc4"]
    shapes = [(32, 3, 5, 5), (32, 32, 5, 5), (64, 32, 5, 5), (10, 64 * 2 * 2)]
    weights = [layer.weight for _, layer in layers if hasattr(layer, "weight")]
    assert [w.shape for w in weights] == shapes
    # the same draws as ever: N(0, 1/fan-in) in layer order from default_rng(seed)
    rng = np.random.default_rng(0)
    for shape, weight in zip(shapes, weights):
        fan_in = int(np.prod(shape[1:]))
        expected = rng.standard_normal(shape, dtype=np.float32) * np.float32(fan_in ** -0.5)
        assert np.array_equal(weight, expected)


def test_init_scale_and_convs_build_their_nets():
    figure1 = example("figure1")
    base = dict(figure1.four_layer_net("tanh", 24, 10, seed=0))
    wide = dict(figure1.four_layer_net("tanh", 24, 10, seed=0, init_scale=4.0))
    for name in ("conv1", "conv3", "fc4"):
        np.testing.assert_allclose(wide[name].weight, 4 * base[name].weight, rtol=1e-6)
    deep = figure1.four_layer_net("relu", 24, 10, seed=0, convs=5)
    assert [name for name, _ in deep] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3",
                                          "conv4", "relu4", "conv5", "relu5", "pool5", "flatten", "fc6"]
    layers = dict(deep)
    assert layers["conv4"].weight.shape == layers["conv5"].weight.shape == (64, 64, 3, 3)
    np.testing.assert_array_equal(layers["conv1"].weight, base["conv1"].weight)   # the same first draws
    h = np.zeros((2, 3, 24, 24), dtype=np.float32)
    for name, layer in deep:
        h = layer.forward(h, train=False)
        if name == "relu5":
            assert h.shape == (2, 64, 5, 5)      # the extra 3x3 convs keep conv3's 5x5 maps
    assert h.shape == (2, 10)


@pytest.mark.parametrize("args, message", [(["--convs", "2"], "--convs must be at least 3"),
                                           (["--init-scale", "0"], "--init-scale must be positive")])
def test_figure1_refuses_bad_options(args, message, capsys):
    with pytest.raises(SystemExit):
        example("figure1").parse_args(args)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [(["--depths", "3"], "--depths must all be more than 3"),
                                           (["--spreads", "1"], "--spreads: 1 is the base net"),
                                           (["--lrs", "0"], "--lrs must all be positive")])
def test_frontier_refuses_bad_options(frontier, args, message, capsys):
    with pytest.raises(SystemExit):
        frontier.parse_args(args)
    assert message in capsys.readouterr().err


def test_a_tiny_sweep_and_its_resumption(tmp_path):
    command = [sys.executable, "examples/figure1_frontier.py", "--classes", "2", "--per-class", "8", "--size", "16",
               "--batch-size", "8", "--epochs", "2", "--seeds", "1", "--lrs", "0.01", "0.03", "--other-lrs", "0.01",
               "0.03", "--spreads", "2", "--depths", "--extend", "1", "--out", str(tmp_path)]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    saved = json.loads((tmp_path / "runs.json").read_text())
    made = {(r["setting"], r["unit"], r["lr"], r["seed"]) for r in saved["runs"]}
    grid = {(setting, unit, lr, 0) for setting in ("base", "spread x2") for unit in ("relu", "tanh")
            for lr in (0.01, 0.03)}
    # the grid, and at most one rate beyond it (0.003 or 0.1) per unit and setting
    assert grid <= made and len(made) == len(saved["runs"]) <= 8 + 4
    assert {lr for _, _, lr, _ in made - grid} <= {0.003, 0.1}
    assert all(len(r["errors"]) == 2 for r in saved["runs"])
    assert "8 runs of the grids to do" in first.stdout and "| setting |" in first.stdout
    # and how many of tanh's inputs start beyond +-2: one share per tanh layer, three in each net
    saturated = first.stdout.split("tanh inputs beyond +-2")[1]
    assert all(f"| {setting} |" in saturated for setting in ("base", "spread x2"))
    assert (tmp_path / "frontier.png").stat().st_size > 0
    # again: every run is found, none is trained, runs.json stays as it was
    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "0 runs of the grids to do, 8 found" in second.stdout and "  [" not in second.stdout
    assert json.loads((tmp_path / "runs.json").read_text()) == saved
    # other epochs are another experiment: refused, in one line
    other = subprocess.run(command + ["--epochs", "3"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert other.returncode != 0 and other.stderr.strip().count("\n") == 0 and "give another --out" in other.stderr
