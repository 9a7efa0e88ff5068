"""Tests of tinyalex/progress.py: what it prints, on a terminal and in a log."""

import io

import numpy as np

from tinyalex.progress import Progress, format_seconds, format_value


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_log_output_is_a_few_plain_lines():
    stream = io.StringIO()
    with Progress(total=1000, desc="train", unit="img", stream=stream) as bar:
        for _ in range(1000):
            bar.update(1, loss=2.3141592)
    lines = stream.getvalue().splitlines()
    assert 10 <= len(lines) <= 11  # every 10%, and the end once
    assert "\r" not in stream.getvalue()
    assert lines[-1].startswith("train: 1000/1000 (100.0%)")
    assert "img/s" in lines[-1] and "ETA 0:00:00" in lines[-1] and "loss=2.314" in lines[-1]


def test_log_output_also_comes_every_log_seconds():
    stream = io.StringIO()
    with Progress(total=1000, stream=stream, log_seconds=0.0) as bar:
        for _ in range(5):
            bar.update()
    assert len(stream.getvalue().splitlines()) == 5


def test_terminal_output_redraws_one_line():
    stream = FakeTerminal()
    with Progress(total=3, desc="val", stream=stream) as bar:
        for _ in bar.wrap(range(3)):
            pass
    text = stream.getvalue()
    assert text.startswith("\r") and text.endswith("\n")
    assert text.count("\n") == 1
    assert "val: 3/3 (100.0%)" in text


def test_rate_and_time_left_count_only_this_run():
    bar = Progress(total=100, desc="train", initial=20, stream=io.StringIO())
    bar.update(40, acc=np.float32(0.5), step=7)
    # 40 units in this run over 10 s: 4 per second, 40 left -> 10 s.
    assert bar.format_line(10.0) == "train: 60/100 (60.0%) 4.0 it/s ETA 0:00:10 acc=0.5 step=7"


def test_unknown_total_shows_count_and_rate_only():
    bar = Progress(stream=io.StringIO())
    bar.update(5)
    assert bar.format_line(2.0) == "5 2.5 it/s"


def test_wrap_yields_every_item_and_counts_it():
    bar = Progress(total=4, stream=io.StringIO())
    assert list(bar.wrap("abcd")) == list("abcd")
    assert bar.count == 4


def test_formatting_helpers():
    assert format_seconds(3725.2) == "1:02:05"
    assert format_seconds(-3) == "0:00:00"
    assert format_value(np.float64(0.123456)) == "0.1235"
    assert format_value(np.int64(12345)) == "12345"
    assert format_value("sgd") == "sgd"
