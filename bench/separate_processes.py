"""tinyalex against PyTorch on the CPU as users run them: each framework in a fresh process
of its own, NumPy imported first, rounds alternating; optionally under a competing load.

    python bench/separate_processes.py [--rounds 3] [--steps 4] [--batch 32] [--load N]
                                       [--runs tinyalex,tinyalex-tuned,pytorch]

The three runs:

* ``tinyalex``: a user's own loop (as in ``bench/user_loop.py``): ``import numpy``, then
  tinyalex, an ``AlexNet`` with the default engine, forward, loss, backward, ``SGD.step``;
  no process-wide setting made.
* ``tinyalex-tuned``: the same after the training program's one explicit call,
  ``tinyalex.engines.tune_process()``.
* ``tinyalex-in-turn``: the tuned loop with the two columns run one after the other, every
  thread in each matrix product (the fast engine without its column threads,
  ``tinyalex.engines.columns``). Not in the default --runs.
* ``tinyalex-adaptive``: the tuned loop with ``tinyalex.engines.BlasThreads`` choosing
  NumPy's BLAS threads step by step (``--adaptive-threads`` of the training program): one
  while other programs slow the steps, every core otherwise. Not in the default --runs.
* ``pytorch``: PyTorch's equivalent AlexNet (``alexnet_torch.py``) with ``torch.optim.SGD``,
  nothing set either.

Each round starts one process per run, in a rotating order, and each process times
``--steps`` training steps and then ``--steps`` forward passes (evaluation) after one
untimed step of each. The medians over all rounds are compared: no run shares a process,
an allocator or a thread pool with another, which is what the in-process
``bench/benchmark.py`` cannot show. ``--load N`` starts N CPU-bound processes (a busy
Python loop each) for the whole benchmark, as a machine shared with other work.
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from user_loop import cpu_name   # bench/, beside this file, is on the path of a script run as a file

RUNS = ("tinyalex", "tinyalex-tuned", "tinyalex-in-turn", "tinyalex-adaptive", "pytorch")



# One run, in its own process ---------------------------------------------------------------

def worker(run, steps, batch):
    """Time ``steps`` training steps and forward passes of one run; print them as JSON."""
    import numpy as np   # first, as a user's program does

    rng = np.random.default_rng(0)
    images = (rng.standard_normal((batch, 3, 227, 227)) * 60).astype(np.float32)
    labels = rng.integers(0, 1000, batch)
    settings = []
    if run == "pytorch":
        import torch
        import torch.nn.functional as F

        from alexnet_torch import AlexNetTorch
        from tinyalex import PAPER

        model = AlexNetTorch()
        optimizer = torch.optim.SGD(model.parameters(), lr=PAPER.learning_rate, momentum=PAPER.momentum,
                                    weight_decay=PAPER.weight_decay)
        x, y = torch.from_numpy(images), torch.from_numpy(labels)

        def train():
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

        def forward():
            model.eval()
            with torch.no_grad():
                model(x)
            model.train()
    else:
        from tinyalex import SGD, AlexNet, engines
        from tinyalex.layers import SoftmaxCrossEntropy

        if run in ("tinyalex-tuned", "tinyalex-in-turn", "tinyalex-adaptive"):
            settings = engines.tune_process()
        threads = engines.BlasThreads() if run == "tinyalex-adaptive" else None
        engine = engines.replace(engines.FAST, column_threads=False) if run == "tinyalex-in-turn" else None
        model = AlexNet(devices="cpu", engine=engine)
        optimizer, loss = SGD(engine=model.engine), SoftmaxCrossEntropy()
        settings.append(engines.describe(model))

        def train():
            with threads.step() if threads else contextlib.nullcontext():
                loss.forward(model.forward(images, train=True), labels)
                model.backward(loss.backward())
                optimizer.step(model.parameters())

        def forward():
            model.forward(images, train=False)

    times = {}
    for name, step in (("train", train), ("forward", forward)):
        step()   # untimed: first touches, compiling, the allocator's pool
        times[name] = []
        for _ in range(steps):
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    print(json.dumps({"run": run, "times": times, "settings": settings}))


# The rounds --------------------------------------------------------------------------------

def start_load(count):
    """``count`` CPU-bound processes that run until they are ended."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def run_once(run, args):
    command = [sys.executable, __file__, "--worker", run, "--steps", str(args.steps), "--batch", str(args.batch)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"separate_processes.py: the {run} process failed:\n{result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def images_per_second(seconds, batch):
    return batch / statistics.median(seconds)


def report(results, args):
    print(f"\nmedian over {args.rounds} rounds x {args.steps} steps (images/s; ms per step)")
    print(f"  {'run':16} {'train img/s':>12} {'train ms':>9} {'forward img/s':>14} {'forward ms':>11}")
    speed = {}
    for run, times in results.items():
        speed[run] = {kind: images_per_second(times[kind], args.batch) for kind in ("train", "forward")}
        print(f"  {run:16} {speed[run]['train']:12.1f} {1e3 * statistics.median(times['train']):9.0f} "
              f"{speed[run]['forward']:14.1f} {1e3 * statistics.median(times['forward']):11.0f}")
    pairs = [("tinyalex", "pytorch"), ("tinyalex-tuned", "pytorch"), ("tinyalex-in-turn", "pytorch"),
             ("tinyalex-adaptive", "pytorch"), ("tinyalex", "tinyalex-tuned"), ("tinyalex-in-turn", "tinyalex-tuned")]
    for mine, reference in pairs:
        if mine in speed and reference in speed:
            print(f"  {mine} / {reference}: train {speed[mine]['train'] / speed[reference]['train']:.2f}, "
                  f"forward {speed[mine]['forward'] / speed[reference]['forward']:.2f}")
    return speed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="timed steps of each kind per process")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--load", type=int, default=0, help="CPU-bound processes running alongside")
    parser.add_argument("--runs", default="tinyalex,tinyalex-tuned,pytorch",
                        help=f"comma-separated, of {', '.join(RUNS)} (default: all but tinyalex-adaptive)")
    parser.add_argument("--json", metavar="OUT", help="write every time to this JSON file")
    parser.add_argument("--worker", choices=RUNS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("rounds", "steps", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.load < 0:
        parser.error("--load must not be negative")
    if args.worker:
        return worker(args.worker, args.steps, args.batch)
    runs = [run.strip() for run in args.runs.split(",") if run.strip()]
    unknown = sorted(set(runs) - set(RUNS))
    if unknown or not runs:
        parser.error(f"--runs takes {', '.join(RUNS)}; got {args.runs!r}")
    if "pytorch" in runs:
        try:
            import torch  # noqa: F401
        except ImportError:
            sys.exit("separate_processes.py: PyTorch is not installed (pip install torch), or leave pytorch out "
                     "of --runs")

    print(f"tinyalex and PyTorch in separate processes, CPU {cpu_name()} ({os.cpu_count()} logical CPUs), "
          f"batch {args.batch}, {args.load} competing CPU-bound process(es)")
    load = start_load(args.load)
    results = {run: {"train": [], "forward": []} for run in runs}
    try:
        for round_ in range(args.rounds):
            order = runs[round_ % len(runs):] + runs[:round_ % len(runs)]
            for run in order:
                figures = run_once(run, args)
                for kind in ("train", "forward"):
                    results[run][kind] += figures["times"][kind]
                if round_ == 0 and figures["settings"]:
                    print(f"  {run}: " + "; ".join(figures["settings"]))
                print(f"  round {round_ + 1} {run:15} train {1e3 * statistics.median(figures['times']['train']):6.0f} ms"
                      f"  forward {1e3 * statistics.median(figures['times']['forward']):6.0f} ms", flush=True)
    finally:
        for process in load:
            process.kill()
    speed = report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_name(), "load": args.load, "batch": args.batch,
                                               "times": results, "images_per_second": speed}, indent=1) + "\n")


if __name__ == "__main__":
    main()
