"""BlasThreads: the training program's choice of NumPy's BLAS threads, made by timing the
steps. The decisions are checked on step times given to it (a quiet machine, load that
comes and goes), and the setting on the real BLAS library through threadpoolctl."""

import numpy as np
import pytest

from tinyalex.engines.process import BlasThreads


def run(threads, seconds_of, steps):
    """Drive ``threads`` for ``steps`` steps whose time is ``seconds_of(step, count)``;
    the thread count of each step."""
    counts = []
    for step in range(steps):
        count = threads.next_count()
        threads.record(count, seconds_of(step, count))
        counts.append(count)
    return counts


def noisy(rng, seconds):
    return seconds * (1 + 0.08 * rng.standard_normal())


def test_a_quiet_machine_stays_on_all_cores_after_one_look():
    rng = np.random.default_rng(0)
    threads = BlasThreads(cores=2)
    counts = run(threads, lambda step, n: noisy(rng, 1.0 if n == 2 else 1.6), 300)
    assert counts[3:3 + threads.probe] == [1] * threads.probe       # the one look, after three steps
    assert counts.count(1) == threads.probe


def test_a_machine_loaded_from_the_start_moves_to_one_thread():
    rng = np.random.default_rng(2)
    threads = BlasThreads(cores=2)
    counts = run(threads, lambda step, n: noisy(rng, 3.0 if n == 2 else 1.2), 100)
    assert counts[3:].count(2) <= 10      # after the first look, only the looks back at all cores


def test_one_slow_step_is_not_load():
    threads = BlasThreads(cores=2)
    counts = run(threads, lambda step, n: 3.0 if step == 40 else (1.0 if n == 2 else 1.6), 100)
    assert counts.count(1) == threads.probe       # the first look only


def test_load_moves_the_steps_to_one_thread_and_back_when_it_goes():
    rng = np.random.default_rng(1)

    def seconds(step, n):   # steps 50 to 249 share the machine with other programs
        loaded = 50 <= step < 250
        return noisy(rng, (3.0 if n == 2 else 1.2) if loaded else (1.0 if n == 2 else 1.6))

    threads = BlasThreads(cores=2)
    counts = run(threads, seconds, 500)
    assert counts[:50].count(1) == threads.probe
    switched = next(step for step in range(50, 250) if counts[step] == 1)
    assert switched <= 55                                     # within a few steps of the load
    # most loaded steps on one thread: the looks at all cores come further apart while the load stays
    assert counts[50:250].count(2) <= 10
    back = next(step for step in range(250, 500) if counts[step:step + 10] == [2] * 10)
    assert back <= 250 + 8 * threads.every + threads.probe    # the load gone: all cores again
    assert counts[back:].count(1) == 0 and sum(threads.history.values()) == 500


def test_the_step_runs_with_the_chosen_count_and_puts_it_back():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return {pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"}

    np.ones((64, 64)) @ np.ones((64, 64))     # BLAS loaded
    before = blas_threads()
    if not before or max(before) < 2:
        pytest.skip("NumPy's BLAS runs one thread here: there is nothing to choose")
    threads = BlasThreads(cores=2)
    threads.current = 1
    with threads.step():
        inside = blas_threads()
    assert inside == {1} and blas_threads() == before and threads.history[1] == 1


def test_the_training_program_chooses_threads_when_asked(data, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def train(out, *extra):
        return subprocess.run([sys.executable, "examples/train_imagenet.py", "--data", str(data), "--epochs", "1",
                               "--batch-size", "4", "--ten-crop-every", "0", "--no-plots", "--out", str(out), *extra],
                              cwd=root, capture_output=True, text=True, timeout=600)

    asked = train(tmp_path / "asked", "--adaptive-threads")
    assert asked.returncode == 0, asked.stderr[-2000:]
    assert "NumPy's BLAS threads:" in asked.stdout     # (test_train_example: not without the option)
