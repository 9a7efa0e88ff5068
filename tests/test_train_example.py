"""examples/train_imagenet.py end to end, on a tiny prepared data set of full-size images."""

import json
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PICTURES = ["curves.png", "conv1_kernels.png", "predictions.png", "neighbours.png", "confusion_matrix.png"]


def train(*args):
    command = [sys.executable, str(ROOT / "examples" / "train_imagenet.py"), "--devices", "cpu",
               "--batch-size", "4", "--ten-crop-every", "0", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_train_resume_and_refuse_to_overwrite(data, tmp_path):
    out = tmp_path / "run"
    first = train("--data", data, "--epochs", "1", "--out", out)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "60,965,224 parameters" not in first.stdout      # 3 classes: fc8 is smaller
    assert "NumPy's BLAS threads:" not in first.stdout     # repeatable: BLAS threads left alone unless asked
    for name in ["checkpoint.npz", "metrics.jsonl", "summary.json", *PICTURES]:
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 1 and 0 <= summary["val_top1_error_10crop"] <= 100

    again = train("--data", data, "--epochs", "1", "--out", out)
    assert again.returncode != 0 and "--resume" in again.stderr

    # a new learning rate on resume is applied, said so, and the banner tells the truth
    resumed = train("--data", data, "--epochs", "2", "--out", out, "--resume", "--lr", "0.005")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout
    assert "learning rate set to 0.005 by --lr (the checkpoint's was 0.01)" in resumed.stdout
    assert "recipe: batch 4, lr 0.005," in resumed.stdout
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    assert lines[0]["lr"] == 0.01 and lines[1]["lr"] == 0.005


def test_bad_devices_are_explained(data, tmp_path):
    result = train("--data", data, "--epochs", "1", "--out", tmp_path, "--devices", "gpu")
    assert result.returncode != 0 and "a GPU id such as 0" in result.stderr
