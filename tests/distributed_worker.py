"""One process of a small data-parallel training run, started by tests/test_distributed.py
under mpirun (or imported by it, to train the same thing in one process).

    mpirun -n 2 python tests/distributed_worker.py DATA OUT --batch-size 8 --epochs 2

Every process writes what it ended with to OUT/rank<r>.npz: parameters, velocities, and
its position and history as JSON, so the test can compare the processes with each other
and with one process.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from tinyalex import AlexNet
from tinyalex.data import PreparedSplit
from tinyalex.distributed import launch, run_or_abort
from tinyalex.recipe import Recipe
from tinyalex.training import Interrupted, Trainer

from test_training import MODEL

# float64, so that the comparison with one process can be tight: the only differences left
# are the order in which the matrix products and the all-reduce add up the images
WORKER_MODEL = dict(MODEL, dtype="float64")


def make_trainer(data, out, batch_size, epochs, communicator=None, dtype="float64"):
    train, val = PreparedSplit(Path(data) / "train.h5"), PreparedSplit(Path(data) / "val.h5")
    config = dict(WORKER_MODEL, dtype=dtype)
    model = AlexNet(devices="cpu", **config)
    recipe = Recipe(batch_size=batch_size, learning_rate=0.01, patience=2)
    return Trainer(model, config, train, val, out, recipe=recipe, epochs=epochs, communicator=communicator)


def final_state(trainer):
    """Parameters and velocities by name, and the position and history."""
    arrays = {f"model/{k}": v for k, v in trainer.model.state_dict().items()}
    arrays.update({f"velocity/{k}": v for k, v in trainer.sgd.state_dict()["velocity"].items()})
    meta = {"epoch": trainer.epoch, "batch": trainer.batch, "history": trainer.history}
    return arrays, meta


def after_step(trainer, epoch, batch, action):
    """Run ``action`` right after the step that leaves ``trainer`` at (epoch, batch)."""
    step = trainer.step

    def step_then_act(*args):
        result = step(*args)
        if (trainer.epoch, trainer.batch + 1) == (epoch, batch):
            action()
        return result

    trainer.step = step_then_act


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("data", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-after", type=int, nargs=2, metavar=("EPOCH", "BATCH"),
                   help="process 1 alone asks to stop (as Ctrl-C does) after this step (0-based epoch, 1-based batch)")
    p.add_argument("--crash-after", type=int, nargs=2, metavar=("EPOCH", "BATCH"),
                   help="process 1 raises an error after this step")
    args = p.parse_args(argv)

    comm = launch()
    trainer = make_trainer(args.data, args.out, args.batch_size, args.epochs, communicator=comm, dtype=args.dtype)
    if args.resume:
        trainer.resume()
    if comm.rank == 1 and args.stop_after:
        after_step(trainer, *args.stop_after, lambda: setattr(trainer, "stop_requested", True))
    if comm.rank == 1 and args.crash_after:
        def crash():
            raise RuntimeError("an error on purpose, in process 1 only")
        after_step(trainer, *args.crash_after, crash)
    try:
        trainer.train()
    except Interrupted:
        pass
    arrays, meta = final_state(trainer)
    np.savez(args.out / f"rank{comm.rank}.npz", meta=np.array(json.dumps(meta)), **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(run_or_abort(main))
