"""The gradient all-reduce of data-parallel training against the training step it serves.

    OMP_NUM_THREADS=1 mpirun -n 2 python bench/allreduce.py                  # the paper's AlexNet
    OMP_NUM_THREADS=1 mpirun -n 2 python bench/allreduce.py --model builtin  # the built-in run's net
    python bench/allreduce.py                # one process, the whole batch: the step alone, to compare

Every process builds the same model and times, on its own device (the CPU unless
--devices says otherwise):

* one training step on its share of a batch (forward, backward, SGD update), without the
  all-reduce;
* ``allreduce_gradients`` as the trainer calls it: pack the gradients into one buffer, sum
  it over the processes, unpack;
* the all-reduce call alone, on the packed buffer.

A barrier before each timed all-reduce keeps one process's late arrival out of the time.
Rank 0 prints the medians, the gradient bytes, the bytes a ring all-reduce moves per
process, 2 (N - 1) / N of them, and the bandwidth that makes. With OMP_NUM_THREADS=1 each
process uses one core, so N processes on N cores do not fight over them.
"""

import argparse
import statistics
import sys
import time

import numpy as np

from tinyalex import AlexNet, distributed
from tinyalex.backend import parse_devices, to_device
from tinyalex.engines import tune_process
from tinyalex.layers import SoftmaxCrossEntropy
from tinyalex.sgd import SGD

MODELS = {
    "paper": dict(),                                                         # 227 x 227, 60.9 M parameters
    "builtin": dict(image_size=131, channels=(24, 64, 96, 96, 64), hidden=512),  # examples/train_imagenet.py's
}


def synchronize(devices):
    """Wait for the GPU(s) to finish, so that a timer measures the work and not its queueing."""
    for device in set(devices):
        if device != "cpu":
            import cupy
            cupy.cuda.Device(device).synchronize()


def median_seconds(function, repeats, before=None):
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=MODELS, default="paper")
    p.add_argument("--batch-size", type=int, default=128, help="the global batch (default: the paper's 128)")
    p.add_argument("--devices", default="cpu", help='as train_imagenet.py: "cpu" (default), 0, or 0,1')
    p.add_argument("--steps", type=int, default=3, help="timed training steps (after one warm-up step)")
    p.add_argument("--repeats", type=int, default=10, help="timed all-reduces")
    args = p.parse_args()

    comm = distributed.launch()
    devices = distributed.process_devices(parse_devices(args.devices), comm.local_rank)
    comm = distributed.for_devices(comm, devices)
    tune_process()
    start, stop = distributed.batch_share(args.batch_size, comm.rank, comm.size)
    model = AlexNet(num_classes=1000, devices=devices, **MODELS[args.model])
    rng = np.random.default_rng(comm.rank)
    x = rng.normal(size=(stop - start, 3, model.image_size, model.image_size)).astype(np.float32)
    labels = rng.integers(0, 1000, size=stop - start)
    loss, sgd = SoftmaxCrossEntropy(), SGD()

    def step():
        logits = model.forward(to_device(x, model.devices[0]), train=True)
        loss.forward(logits, labels)
        model.backward(loss.backward((stop - start) / args.batch_size))
        sgd.step(model.parameters())
        synchronize(model.devices)

    def allreduce():
        comm.allreduce_gradients(model.parameters())
        synchronize(model.devices)

    def allreduce_call_only():
        comm.sum_in_place(comm.gradient_buffer)
        synchronize(model.devices)

    def wait_for_all():
        synchronize(model.devices)
        comm.barrier()

    step()                                              # warm-up: allocations, BLAS start-up
    step_seconds = median_seconds(step, args.steps, before=wait_for_all)
    allreduce_seconds = call_seconds = 0.0              # one process alone has nothing to sum
    if comm.size > 1:
        allreduce()                                     # warm-up: the buffer, MPI's connections
        allreduce_seconds = median_seconds(allreduce, args.repeats, before=wait_for_all)
        call_seconds = median_seconds(allreduce_call_only, args.repeats, before=wait_for_all)

    times = comm.allgather((step_seconds, allreduce_seconds, call_seconds))
    if not comm.is_root:
        return
    parameters = model.num_parameters()
    gradient_bytes = parameters * model.dtype.itemsize
    ring_bytes = 2 * (comm.size - 1) / comm.size * gradient_bytes
    step_seconds = max(t[0] for t in times)             # the slowest process sets the pace
    allreduce_seconds = statistics.median(t[1] for t in times)
    call_seconds = statistics.median(t[2] for t in times)
    print(f"{comm.size} process(es), {comm.name} all-reduce, devices {model.devices}; {args.model} AlexNet, "
          f"{parameters:,} parameters = {gradient_bytes / 1e6:.1f} MB of {model.dtype} gradients")
    print(f"global batch {args.batch_size}: {stop - start} images per process (rank 0)")
    print(f"training step without the all-reduce (median of {args.steps}, slowest process): "
          f"{1e3 * step_seconds:8.1f} ms")
    if comm.size > 1:
        print(f"allreduce_gradients: pack, all-reduce, unpack (median of {args.repeats}):  "
              f"{1e3 * allreduce_seconds:8.1f} ms = {100 * allreduce_seconds / step_seconds:.1f}% of the step")
        print(f"  of which the all-reduce call alone:                     {1e3 * call_seconds:8.1f} ms")
        print(f"ring all-reduce traffic per process, 2 (N-1)/N x {gradient_bytes / 1e6:.1f} MB = "
              f"{ring_bytes / 1e6:.1f} MB: {ring_bytes / call_seconds / 1e9:.2f} GB/s over the call alone")


if __name__ == "__main__":
    sys.exit(distributed.run_or_abort(main))
