"""Tests of tinyalex/progress.py: what the tqdm bars print, on a terminal and in a log."""

import io
import re

import numpy as np
from tqdm import tqdm

from tinyalex.progress import LogLines, progress_bar


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_log_output_is_a_few_plain_lines():
    stream = io.StringIO()
    with progress_bar(total=1000, desc="train", unit="img", file=stream) as bar:
        for _ in range(1000):
            bar.set_postfix(loss=2.3141592, refresh=False)
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert 10 <= len(lines) <= 12  # the start, every 10%, and the end once
    assert "\r" not in stream.getvalue()
    assert lines[-1].startswith("train: 1000/1000 (100.0%)")
    assert "img/s" in lines[-1] and "ETA 00:00" in lines[-1] and "loss=2.31" in lines[-1]
    percents = [float(re.search(r"\((\d+\.\d)%\)", line).group(1)) for line in lines]
    assert percents == sorted(percents) and len(set(percents)) == len(percents)  # no line twice


def test_log_output_also_comes_every_log_seconds():
    stream = io.StringIO()
    with progress_bar(total=1000, file=stream, log_seconds=0.0) as bar:
        for _ in range(5):
            bar.update()
    assert len(stream.getvalue().splitlines()) == 6  # the start, then one line per update


def test_terminal_output_is_tqdm_redrawing_one_line():
    stream = FakeTerminal()
    with progress_bar(total=3, desc="val", file=stream) as bar:
        assert type(bar) is tqdm
        for _ in range(3):
            bar.update()
    text = stream.getvalue()
    assert text.startswith("\r") and text.endswith("\n")
    assert text.count("\n") == 1
    assert "val: 100%" in text and "3/3" in text


def test_rate_and_time_left_count_only_this_run():
    stream = io.StringIO()
    bar = progress_bar(total=100, desc="train", initial=20, file=stream)
    bar.update(40)
    bar.set_postfix(acc=np.float32(0.5), step=7, refresh=False)
    # 40 units in this run over 10 s: 4 per second, 40 left -> 10 s.
    line = " ".join(tqdm.format_meter(**{**bar.format_dict, "elapsed": 10.0}).split())  # tqdm pads the rate
    assert line == "train: 60/100 (60.0%) 4.00it/s ETA 00:10, acc=0.5, step=7"
    bar.close()


def test_unknown_total_shows_count_and_rate_only():
    bar = progress_bar(file=io.StringIO())
    bar.update(5)
    assert tqdm.format_meter(**{**bar.format_dict, "elapsed": 2.0}).split() == ["5", "2.50it/s"]
    bar.close()


def test_iterable_yields_every_item_and_counts_it():
    stream = io.StringIO()
    bar = progress_bar(iterable="abcd", desc="files", file=stream)
    assert isinstance(bar, LogLines)
    assert list(bar) == list("abcd")
    assert bar.n == 4
    assert stream.getvalue().splitlines()[-1].startswith("files: 4/4 (100.0%)")
