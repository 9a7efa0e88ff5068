"""Data-parallel training on many processes: one model, N copies, one summed gradient.

The paper split one network over two GPUs (model parallelism: the two columns). To train
faster on more GPUs and machines, the field replicates the whole model instead: N
processes each hold a full copy, each computes gradients on its own share of every
global batch, the processes sum their gradients with an *all-reduce*, and every process
applies the same SGD step, so the copies stay identical. docs/distributed.md explains
why this is the same as training on the whole batch in one process.

    mpirun -n 4 python examples/train_imagenet.py --data DIR

The engines are the field's own, not home-made ones:

* MPI (through mpi4py) starts the processes, tells each its rank, and carries the small
  messages: a few numbers per step, the checkpoint at a resume;
* the gradient all-reduce goes through MPI for NumPy arrays (:class:`MpiCommunicator`)
  and through NCCL (``cupy.cuda.nccl``) for CuPy arrays on GPUs
  (:class:`NcclCommunicator`). The two share everything but that one call.

:class:`Communicator` is the single-process case, where every collective operation does
nothing; :class:`~tinyalex.training.Trainer` is written once against it.

How a global batch of B images is split over N processes (:func:`batch_share`): process r
trains on rows ``start:stop`` of the batch, shares as equal as possible (the first
``B % N`` processes get one image more). Each process weights its gradient by its share
of the batch, n_r / B, so that the sum over processes is the gradient of the global
batch's mean loss whether or not N divides B. The random draws of the augmentation and of
dropout are those of the whole global batch, of which each process keeps its own rows
(``Augmenter.train_batch(..., share=...)``, :class:`DropoutShare`): N processes then
compute what one process would compute on the whole batch, image for image.

Devices: process r on a machine (its *local rank* l) uses GPU l, or, when each process
is two columns on two GPUs (``--devices 0,1``), GPUs 2l and 2l + 1
(:func:`process_devices`).
"""

import hashlib
import os
import sys
import threading
import time
import traceback
from contextlib import contextmanager

import numpy as np

from .backend import device_of, get_array_module, gpu_available, gpu_count, on_device, to_device, to_numpy
from .layers import Dropout
from .layers.dropout import uniform

# Set by the launchers in every process they start, to the number of processes: MPICH and
# Intel MPI (PMI_SIZE), Open MPI (OMPI_COMM_WORLD_SIZE), MVAPICH (MV2_COMM_WORLD_SIZE).
LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
ABORT_GRACE_SECONDS = 1.0  # between printing why a process stopped and ending them all
# How long a process waits in one collective call for the others before it ends the job:
# longer than the slowest legitimate wait (rank 0 writing a checkpoint while the others wait
# in the next step), far shorter than a day of a job waiting for nothing
WAIT_LIMIT_SECONDS = 600.0


# Splitting the work ------------------------------------------------------------------------

def batch_share(batch_size, rank, size):
    """(start, stop): the rows of a global batch of ``batch_size`` images that process
    ``rank`` of ``size`` trains on. Shares differ by at most one image: with 128 images on
    3 processes, rows 0:43, 43:86 and 86:128."""
    if not 0 <= rank < size:
        raise ValueError(f"rank {rank} is not one of {size} processes")
    if size > batch_size:
        raise ValueError(f"{size} processes cannot share a batch of {batch_size} images: each needs at least "
                         f"one. Use at most {batch_size} processes, or a larger --batch-size")
    base, extra = divmod(batch_size, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class ShareOfSplit:
    """The images ``start:stop`` of a prepared split, for process ``rank`` of ``size``:
    what :func:`~tinyalex.training.evaluate` reads when validation is shared out. Each
    process gets one contiguous block, so each reads forward through the file."""

    def __init__(self, split, rank, size):
        if len(split) < size:
            raise ValueError(f"{split.path} holds {len(split)} images, fewer than the {size} processes "
                             "that share its evaluation")
        self.split, self.path = split, split.path
        self.indices = np.array_split(np.arange(len(split)), size)[rank]

    def __len__(self):
        return len(self.indices)

    def read(self, indices):
        return self.split.read(self.indices[np.asarray(indices)])


class DropoutShare(Dropout):
    """Dropout on rows ``start:stop`` of a global batch of ``batch_size`` images.

    :class:`~tinyalex.layers.Dropout` draws the mask of its t-th call from the stream
    (seed, t), shaped like its input. Each process sees only its share of the batch, so
    it draws the mask of the whole global batch and keeps its own rows: the same neurons
    are dropped for each image as in one process training on the whole batch.
    (Drawing B x 4096 numbers where B / N would do costs about a millisecond on a CPU.)
    """

    def __init__(self, layer, start, stop, batch_size):
        super().__init__(layer.p, seed=layer.seed)
        self.calls = layer.calls
        self.start, self.stop, self.batch_size = start, stop, batch_size

    def forward(self, x, train=True):
        if not train or self.p == 0:
            return super().forward(x, train)
        if len(x) != self.stop - self.start:
            raise ValueError(f"this process trains on {self.stop - self.start} images of each batch, got {len(x)}")
        xp = get_array_module(x)
        whole_batch = xp.empty((self.batch_size,) + x.shape[1:], dtype=x.dtype)  # only its shape is used
        keep = uniform(whole_batch, self.seed, self.calls)[self.start:self.stop] >= self.p
        self.calls += 1
        # from here on as in Dropout.forward: inverted dropout, kept outputs times 1 / (1 - p)
        self.mask = keep.astype(x.dtype) * xp.asarray(1 / (1 - self.p), dtype=x.dtype)
        return x * self.mask


def share_dropout(model, start, stop, batch_size):
    """Replace every dropout layer of ``model`` by a :class:`DropoutShare` for rows start:stop."""
    for name, layer in model.dropout_layers():
        if type(layer) is Dropout:   # not yet a share
            model.set_layer(name, DropoutShare(layer, start, stop, batch_size))


def process_devices(devices, local_rank):
    """The devices of the process with ``local_rank`` on its machine.

    ``devices`` is what :func:`~tinyalex.backend.parse_devices` gives for the first
    process of a machine: None (the default), "cpu", a GPU id d, or a pair (d, e) for
    the two columns. Process l gets the GPU(s) l places further on: d + l, or
    (d + 2l, e + 2l) when every process runs two columns. "cpu" stays "cpu", and None
    means GPU l when there are GPUs, else the CPU.

    One exception: when CUDA_VISIBLE_DEVICES shows each process only the GPU(s) it needs
    (as schedulers such as Slurm set it, one set of GPUs per process), there is nothing to
    shift, and every process uses ``devices`` as given.
    """
    if devices is None:
        if not gpu_available():
            return "cpu"
        devices = 0
    if devices == "cpu" or local_rank == 0:
        return devices
    pair = isinstance(devices, tuple)
    step = 2 if pair else 1
    if os.environ.get("CUDA_VISIBLE_DEVICES") and gpu_count() == step:
        return devices
    shifted = tuple(d + step * local_rank for d in devices) if pair else devices + local_rank
    highest = max(shifted) if pair else shifted
    if highest >= gpu_count():
        raise ValueError(f"process {local_rank} on this machine would use GPU {highest}, but the machine has "
                         f"{gpu_count()}: start at most {gpu_count() // step} processes per machine "
                         f"with these --devices")
    return shifted


# Communicators -----------------------------------------------------------------------------

class Communicator:
    """One process alone: rank 0 of 1, and every collective operation returns at once.

    The subclasses talk to other processes; the trainer calls the same methods either way.
    """

    rank, size, local_rank = 0, 1, 0
    name = "one process"

    @property
    def is_root(self):
        """Rank 0 prints, writes the metrics, the checkpoints and the pictures."""
        return self.rank == 0

    def allreduce_gradients(self, parameters):
        """Sum the gradients of ``parameters`` ((name, w, dL/dw) triples) over all
        processes, in place.

        The gradients are packed into one contiguous buffer on the device of the first
        parameter (column a's), summed there by one all-reduce call, and unpacked: one
        large message costs one latency instead of one for each of the 30 parameter
        arrays, and both columns travel together even when they live on two GPUs.
        """
        if self.size == 1:
            return
        gradients = [grad for _, _, grad in parameters]
        device = device_of(gradients[0])
        xp = get_array_module(gradients[0])
        with on_device(device):
            buffer = self._buffer(xp, sum(g.size for g in gradients), gradients[0].dtype)
            offset = 0
            for grad in gradients:
                buffer[offset:offset + grad.size] = to_device(grad, device).ravel()
                offset += grad.size
            self.sum_in_place(buffer)
            offset = 0
            for grad in gradients:
                grad[...] = to_device(buffer[offset:offset + grad.size].reshape(grad.shape), device_of(grad))
                offset += grad.size

    def _buffer(self, xp, count, dtype):
        # kept from step to step (as gradient_buffer): the same hundreds of megabytes every time
        cached = getattr(self, "gradient_buffer", None)
        if cached is None or cached.size != count or cached.dtype != dtype or get_array_module(cached) is not xp:
            self.gradient_buffer = cached = xp.empty(count, dtype=dtype)
        return cached

    def sum_in_place(self, buffer):
        """The all-reduce itself: every process's ``buffer`` becomes the sum of all of them."""

    def sum_values(self, values):
        """A few numbers (losses, counts) summed over the processes, as float64; every
        process gets exactly rank 0's result."""
        return np.asarray(values, dtype=np.float64)

    def combine_means(self, means, count):
        """Means over ``count`` images on each process -> means over all the images.

        ``means`` is a dict of numbers that are each a mean (or a percentage) over this
        process's ``count`` images, e.g. what ``evaluate`` returns on a share of the
        validation split; the result is the same dict over the whole split.
        """
        if self.size == 1:
            return dict(means)
        keys = sorted(means)
        totals = self.sum_values([means[k] * count for k in keys] + [count])
        return {k: float(total / totals[-1]) for k, total in zip(keys, totals)}

    def any_true(self, flag):
        """True on every process if ``flag`` is true on any: a stop that all agree on."""
        return bool(flag)

    def broadcast(self, value):
        """Rank 0's ``value`` (any picklable object), on every process."""
        return value

    def from_root(self, function, *args):
        """``function(*args)`` run on rank 0 only, its result sent to every process (reading
        the checkpoint: rank 0 wrote it, and other machines may not see its disk)."""
        return self.broadcast(function(*args) if self.is_root else None)

    def barrier(self, limit=True):
        """Wait until every process gets here."""

    def check_same_parameters(self, parameters):
        """Raise on every process if the processes' parameters are not bit for bit the same.

        They should be: all start from the same weights and apply the same update. A
        difference means a bug (or an all-reduce that gives processes different roundings),
        and training on would silently average gradients of different models.
        """
        if self.size == 1:
            return
        digest = hashlib.sha256()
        for name, w, _ in parameters:
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(to_numpy(w)).tobytes())
        digests = self.allgather(digest.hexdigest())
        if len(set(digests)) > 1:
            different = [rank for rank, d in enumerate(digests) if d != digests[0]]
            raise RuntimeError(f"the parameters of process(es) {different} differ from those of process 0: "
                               "the copies of the model went apart")

    def allgather(self, value):
        """Every process's ``value``, in rank order, on every process."""
        return [value]

    def check_same_data(self, train, val):
        """None if every process reads the same prepared ``train`` and ``val`` splits, else
        one line saying how they differ, the same on every process.

        Processes with different data would split their epochs into different numbers of
        steps, and the one that finishes first would wait forever for the others. Compared:
        the image counts and a digest of what describes the images (stored size, labels,
        classes, file names, mean image), not the pixels themselves: about 5 s for ImageNet's
        1.28 million file names on a 2-core CPU, where reading every pixel would take an hour.
        """
        if self.size == 1:
            return None
        described = self.allgather((len(train), len(val), data_digest(train, val), str(train.path)))
        n_train, n_val, digest, path = described[0]
        for rank, (n_train_r, n_val_r, digest_r, path_r) in enumerate(described):
            if (n_train_r, n_val_r) != (n_train, n_val):
                return (f"the processes read different data: process {rank} has {n_train_r} training and {n_val_r} "
                        f"validation images ({path_r}), process 0 {n_train} and {n_val} ({path}); give every "
                        "process the same --data")
            if digest_r != digest:
                return (f"the processes read different data: process {rank}'s files ({path_r}) hold as many images "
                        f"as process 0's ({path}) but other labels, classes, file names or mean image; give "
                        "every process the same --data")
        return None


def data_digest(*splits):
    """SHA-256 of what describes the images of prepared ``splits``: stored size, labels,
    classes, file names and, where there is one, the mean image (not the pixels)."""
    digest = hashlib.sha256()
    for split in splits:
        digest.update(np.int64([len(split), split.stored_size]).tobytes())
        digest.update(np.ascontiguousarray(split.labels, dtype=np.int64).tobytes())
        for name in ("wnids", "filenames"):
            if name in split.file:
                digest.update("\n".join(split.file[name].asstr()[...]).encode())
        if "mean_image" in split.file:
            digest.update(np.ascontiguousarray(split.file["mean_image"][...]).tobytes())
    return digest.hexdigest()


class WaitLimit:
    """Ends the whole job when this process waits longer than ``seconds`` in one collective
    call: a process that waits for others that never come (they hang, or took another way
    through the program) must not hold its machines for nothing.

    A watching thread checks the time of the call in progress; past the limit it prints one
    line on the real stderr and calls ``abort`` (MPI_Abort, which makes mpirun end every
    process), as :func:`run_or_abort` does.
    """

    def __init__(self, seconds, rank, size, abort):
        self.seconds, self.rank, self.size, self.abort = seconds, rank, size, abort
        self.waiting = None                      # (what, since) of the call in progress
        threading.Thread(target=self._watch, name="wait-limit", daemon=True).start()

    @contextmanager
    def __call__(self, what):
        self.waiting = (what, time.monotonic())
        try:
            yield
        finally:
            self.waiting = None

    def _watch(self):
        while True:
            time.sleep(min(1.0, self.seconds / 4))
            waiting = self.waiting
            if waiting is not None and time.monotonic() - waiting[1] > self.seconds:
                sys.__stderr__.write(f"error: process {self.rank} of {self.size} waited more than {self.seconds:g} s "
                                     f"for the others in {waiting[0]}; ending all of them (--wait-limit)\n")
                sys.__stderr__.flush()
                time.sleep(ABORT_GRACE_SECONDS)
                self.abort(1)
                os._exit(1)   # in case the abort itself could not be made


@contextmanager
def _no_limit(what):
    yield


class MpiCommunicator(Communicator):
    """Processes started by mpirun; gradients (NumPy arrays) summed by MPI's Allreduce.

    ``wait_limit``: the longest a process waits in one collective call before it ends the
    job with a message (None: no limit).
    """

    name = "MPI"

    def __init__(self, mpi_comm=None, wait_limit=WAIT_LIMIT_SECONDS):
        from mpi4py import MPI
        self.MPI = MPI
        self.mpi = MPI.COMM_WORLD if mpi_comm is None else mpi_comm
        self.rank, self.size = self.mpi.Get_rank(), self.mpi.Get_size()
        # the processes that share this machine (its memory) are numbered 0, 1, ... by local rank
        self.local_rank = self.mpi.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank).Get_rank()
        self.wait_limit = wait_limit
        self.waiting = _no_limit if not wait_limit else WaitLimit(wait_limit, self.rank, self.size, self.mpi.Abort)

    def sum_in_place(self, buffer):
        with self.waiting("the all-reduce of the gradients"):
            self.mpi.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)

    def sum_values(self, values):
        values = np.array(values, dtype=np.float64)
        with self.waiting("the sum of the losses"):
            self.mpi.Allreduce(self.MPI.IN_PLACE, values, op=self.MPI.SUM)
            # MPI does not promise every process the same roundings of a sum of floats; these
            # numbers steer the learning-rate schedule, so all take rank 0's
            self.mpi.Bcast(values, root=0)
        return values

    def any_true(self, flag):
        with self.waiting("the agreement on stopping"):
            return bool(self.mpi.allreduce(bool(flag), op=self.MPI.LOR))

    def broadcast(self, value):
        with self.waiting("a broadcast from process 0"):
            return self.mpi.bcast(value, root=0)

    def barrier(self, limit=True):
        """``limit=False`` for the one wait that may rightly take hours: process 0 preparing the data."""
        with (self.waiting if limit else _no_limit)("a barrier"):
            self.mpi.Barrier()

    def allgather(self, value):
        with self.waiting("an exchange of checks"):
            return self.mpi.allgather(value)


class NcclCommunicator(MpiCommunicator):
    """Processes on GPUs: MPI for everything but the gradient all-reduce, which NCCL does
    on the GPU, without a copy to the host.

    NCCL needs one identifier shared by all processes to build its communicator: rank 0
    makes it and MPI broadcasts it. The all-reduce is queued on the current CUDA stream
    of ``device``, after the backward pass that filled the buffer.
    """

    name = "NCCL"

    def __init__(self, device, mpi_comm=None, wait_limit=WAIT_LIMIT_SECONDS):
        super().__init__(mpi_comm, wait_limit)
        from cupy.cuda import nccl
        if not nccl.available:
            raise RuntimeError("CuPy finds no NCCL library on this machine: install NCCL for your CUDA version "
                               "(for example pip install nvidia-nccl-cu12), or train on the CPU with --devices cpu")
        self.nccl, self.device = nccl, device
        unique_id = self.broadcast(nccl.get_unique_id() if self.is_root else None)
        with on_device(device):
            self.gpu_comm = nccl.NcclCommunicator(self.size, unique_id, self.rank)

    def sum_in_place(self, buffer):
        import cupy
        types = {np.dtype(np.float32): self.nccl.NCCL_FLOAT32, np.dtype(np.float64): self.nccl.NCCL_FLOAT64}
        if buffer.dtype not in types:
            raise TypeError(f"NCCL all-reduce of {buffer.dtype} gradients: only float32 and float64 are set up")
        if device_of(buffer) != self.device:
            raise ValueError(f"the gradients are on GPU {device_of(buffer)}, NCCL was set up on GPU {self.device}")
        with on_device(self.device):
            stream = cupy.cuda.get_current_stream()
            self.gpu_comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, types[buffer.dtype],
                                    self.nccl.NCCL_SUM, stream.ptr)


# Starting and stopping ---------------------------------------------------------------------

def launched_by_mpirun():
    """True in a process that mpirun started as one of several."""
    return any(os.environ.get(name, "1") not in ("", "1") for name in LAUNCHER_VARIABLES)


def launch(wait_limit=WAIT_LIMIT_SECONDS):
    """The communicator of this process: MPI's when mpirun started it, else one process alone.

    mpi4py is imported only under mpirun: importing it starts MPI, which a single-process
    run does not need. ``wait_limit``: see :class:`MpiCommunicator`.
    """
    if not launched_by_mpirun():
        return Communicator()
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise SystemExit("this program was started by mpirun, but mpi4py is not installed: "
                         'pip install -e ".[mpi]"') from None
    return MpiCommunicator(wait_limit=wait_limit)


def for_devices(comm, devices):
    """``comm``, or an NCCL communicator when this process's model is on GPUs."""
    first = devices[0] if isinstance(devices, tuple) else devices
    if comm.size == 1 or first == "cpu":
        return comm
    return NcclCommunicator(first, comm.mpi, comm.wait_limit)


def quiet_unless_root(comm):
    """On every process but rank 0, send stdout and stderr to nowhere, so that one process
    speaks for all; errors still reach the terminal through :func:`run_or_abort`."""
    if not comm.is_root:
        sys.stdout = sys.stderr = open(os.devnull, "w")


def run_or_abort(main, *args):
    """``main(*args)``; if it raises in one process of several, say so and end them all.

    Without this, one process dying leaves the others waiting forever in their next
    all-reduce. MPI_Abort makes mpirun stop every process of the run at once. The message
    goes to the original stderr, which :func:`quiet_unless_root` leaves open.
    """
    try:
        return main(*args)
    except BaseException as error:
        comm = _running_mpi()
        if comm is None or comm.Get_size() == 1:
            raise
        if isinstance(error, SystemExit):
            if error.code in (None, 0):
                raise
            code, text = (error.code if isinstance(error.code, int) else 1), str(error.code)
        else:
            code, text = 1, "".join(traceback.format_exception(error)).rstrip()
        sys.__stderr__.write(f"process {comm.Get_rank()} of {comm.Get_size()} stopped, ending all of them: "
                             f"{text}\n")
        sys.__stderr__.flush()
        # mpirun forwards each process's output through a pipe; the abort tears that down,
        # and without a moment's grace it lost this message in about 1 run of 40
        time.sleep(ABORT_GRACE_SECONDS)
        comm.Abort(code)


def _running_mpi():
    """MPI's world communicator if this process has started MPI, else None."""
    mpi4py = sys.modules.get("mpi4py.MPI")
    if mpi4py is None or not mpi4py.Is_initialized() or mpi4py.Is_finalized():
        return None
    return mpi4py.COMM_WORLD
