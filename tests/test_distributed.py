"""Data-parallel training (tinyalex.distributed): the sharing-out in one process, and
2-process runs under mpirun compared with one process training on the same batches."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from distributed_worker import WORKER_MODEL, final_state, make_trainer
from test_train_example import PICTURES
from test_training import data, write_split  # noqa: F401  (data: the tiny prepared data set, a fixture)

from tinyalex import AlexNet
from tinyalex.data import Augmenter, BatchLoader, batch_rng
from tinyalex.distributed import (Communicator, DropoutShare, ShareOfSplit, batch_share, launched_by_mpirun,
                                  process_devices, share_dropout)
from tinyalex.training import CHECKPOINT

TESTS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MPIEXEC = shutil.which("mpiexec", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


# Sharing out, in one process ---------------------------------------------------------------

@pytest.mark.parametrize("batch_size, size", [(128, 1), (128, 2), (128, 3), (7, 2), (5, 5)])
def test_batch_shares_tile_the_batch(batch_size, size):
    shares = [batch_share(batch_size, rank, size) for rank in range(size)]
    assert shares[0][0] == 0 and shares[-1][1] == batch_size
    assert all(stop == next_start for (_, stop), (next_start, _) in zip(shares, shares[1:]))
    counts = [stop - start for start, stop in shares]
    assert max(counts) - min(counts) <= 1 and min(counts) >= 1


def test_too_many_processes_for_the_batch_are_refused():
    with pytest.raises(ValueError, match="at most 4 processes"):
        batch_share(4, 0, 5)


@pytest.mark.parametrize("size", [2, 3])
def test_loader_shares_are_disjoint_and_make_up_the_batches(data, size):
    train, _ = data
    whole = BatchLoader(train, 8, seed=3)
    shared = [BatchLoader(train, 8, seed=3, rank=rank, size=size) for rank in range(size)]
    for epoch in (0, 1):
        expected = whole.batch_indices(epoch)
        shares = [loader.batch_indices(epoch) for loader in shared]
        for b, batch in enumerate(expected):
            laid_end_to_end = np.concatenate([s[b] for s in shares])
            np.testing.assert_array_equal(laid_end_to_end, np.sort(batch))
        epoch_images = np.concatenate([np.concatenate(s) for s in shares])
        assert len(np.unique(epoch_images)) == len(epoch_images)       # no image read twice in an epoch
    # what the processes read, laid end to end, is what one process reads
    images, labels = next(iter(whole.epoch(1)))[1]
    parts = [next(iter(loader.epoch(1)))[1] for loader in shared]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), images)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), labels)


def test_augmenting_a_share_gives_its_rows_of_the_whole_batch(data):
    train, _ = data
    augmenter = Augmenter(*train.statistics(), crop=67)
    images, _ = train.read(np.arange(7))
    whole = augmenter.train_batch(images, batch_rng(0, 2, 5))
    for start, stop in (batch_share(7, r, 2) for r in range(2)):
        part = augmenter.train_batch(images[start:stop], batch_rng(0, 2, 5), share=(start, 7))
        np.testing.assert_array_equal(part, whole[start:stop])


def test_dropout_share_drops_the_rows_of_the_whole_batch_mask():
    model = AlexNet(devices="cpu", **WORKER_MODEL)
    layer = model.column_a.layer("drop6")
    layer.calls = 4
    x = np.random.default_rng(0).normal(size=(7, 32))
    whole = layer.forward(x)
    for start, stop in (batch_share(7, r, 3) for r in range(3)):
        share = DropoutShare(model.column_a.layer("drop6"), start, stop, 7)
        share.calls = 4
        np.testing.assert_array_equal(share.forward(x[start:stop]), whole[start:stop])
        assert share.calls == 5
        np.testing.assert_array_equal(share.backward(np.ones((stop - start, 32))), layer.mask[start:stop])
    share_dropout(model, 0, 4, 7)
    assert type(model.column_b.layer("drop7")) is DropoutShare
    assert model.column_b.layer("drop7").seed == AlexNet(devices="cpu", **WORKER_MODEL).column_b.layer("drop7").seed


def test_validation_shares_cover_the_split_once(data):
    _, val = data
    shares = [ShareOfSplit(val, rank, 5) for rank in range(5)]
    assert sum(len(s) for s in shares) == len(val)
    np.testing.assert_array_equal(np.concatenate([s.read(np.arange(len(s)))[1] for s in shares]), val.labels)
    with pytest.raises(ValueError, match="fewer than"):
        ShareOfSplit(val, 0, len(val) + 1)


def test_devices_by_local_rank(monkeypatch):
    import tinyalex.distributed as distributed
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert process_devices("cpu", 3) == "cpu"
    assert process_devices(0, 0) == 0 and process_devices((0, 1), 0) == (0, 1)
    monkeypatch.setattr(distributed, "gpu_count", lambda: 8)      # a machine of 8 GPUs
    monkeypatch.setattr(distributed, "gpu_available", lambda: True)
    assert [process_devices(0, rank) for rank in range(8)] == list(range(8))
    assert [process_devices((0, 1), rank) for rank in range(4)] == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert process_devices(None, 5) == 5
    with pytest.raises(ValueError, match="at most 4 processes per machine"):
        process_devices((0, 1), 4)
    # a scheduler showed each process its own GPU(s) only: no shifting
    monkeypatch.setattr(distributed, "gpu_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "6,7")
    assert process_devices((0, 1), 3) == (0, 1)


def test_one_process_communicator_changes_nothing():
    comm = Communicator()
    assert comm.is_root and comm.size == 1
    values = comm.sum_values([1.5, 3])
    assert values.tolist() == [1.5, 3.0]
    means = {"loss": 0.25, "top1_error": 50.0}
    assert comm.combine_means(means, 12) == means
    assert comm.any_true(False) is False and comm.from_root(len, "abc") == 3


class PretendTwoProcesses(Communicator):
    """Process 0 of two, where process 1's parameters hash to ``other`` (None: to the same)."""
    size = 2

    def __init__(self, other=None):
        self.other = other

    def allgather(self, value):
        return [value, value if self.other is None else self.other]


def test_copies_that_went_apart_are_caught():
    model = AlexNet(devices="cpu", **WORKER_MODEL)
    PretendTwoProcesses().check_same_parameters(model.parameters())
    with pytest.raises(RuntimeError, match=r"process\(es\) \[1\] differ"):
        PretendTwoProcesses(other="another digest").check_same_parameters(model.parameters())


def test_launcher_detection(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert not launched_by_mpirun()
    monkeypatch.setenv("PMI_SIZE", "1")
    assert not launched_by_mpirun()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert launched_by_mpirun()


# Two processes under mpirun ----------------------------------------------------------------

def mpiexec_or_skip():
    """The mpiexec to start processes with; skips the test where the mpi extra is missing."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip('mpi4py is not installed (pip install -e ".[mpi]")')
    if MPIEXEC is None:
        pytest.skip("no mpiexec found (the mpich wheel of the mpi extra provides one)")
    return MPIEXEC


def mpirun(data_dir, out, *args, processes=2, timeout=120):
    """Run tests/distributed_worker.py on ``processes`` CPU processes; (result, seconds)."""
    mpiexec = mpiexec_or_skip()
    out.mkdir(parents=True, exist_ok=True)
    # one BLAS thread per process: two processes share two cores; and the tinyalex of this
    # checkout, whichever one is installed
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=f"{TESTS}{os.pathsep}{TESTS.parent}")
    command = [mpiexec, "-n", str(processes), sys.executable, str(TESTS / "distributed_worker.py"),
               str(data_dir), str(out), *map(str, args)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    return result, time.perf_counter() - start


def load_rank(out, rank):
    with np.load(out / f"rank{rank}.npz") as f:
        arrays = {k: f[k] for k in f.files if k != "meta"}
        meta = json.loads(str(f["meta"]))
    return arrays, meta


def without_timings(history):
    return [{k: v for k, v in m.items() if "seconds" not in k and "per_second" not in k} for m in history]


# float64 leaves only the order of the additions as a difference, so the tolerance can be
# tight; float32 is what training uses. A wrong weighting, dropout mask or crop of one
# share moves the weights by about 5e-3 here.
TOLERANCE = {"float64": dict(rtol=1e-9, atol=1e-12), "float32": dict(rtol=1e-4, atol=1e-6)}


@pytest.mark.parametrize("batch_size, dtype", [(8, "float64"), (7, "float64"), (8, "float32")])  # 7: 4 + 3 images
def test_two_processes_equal_one_process(data, tmp_path, batch_size, dtype):
    train, _ = data
    data_dir = Path(train.path).parent
    result, _ = mpirun(data_dir, tmp_path / "two", "--batch-size", batch_size, "--epochs", 2, "--dtype", dtype)
    assert result.returncode == 0, result.stderr[-3000:]
    (rank0, meta0), (rank1, meta1) = load_rank(tmp_path / "two", 0), load_rank(tmp_path / "two", 1)

    # the two copies are the same model, bit for bit, and have the same history
    for key in rank0:
        np.testing.assert_array_equal(rank1[key], rank0[key], err_msg=key)
    assert without_timings(meta0["history"]) == without_timings(meta1["history"]) and (meta0["epoch"], meta0["batch"]) == (2, 0)

    # ... and that model is the one of one process training on the whole batches: the
    # same up to the order in which the images' gradients are added up
    one = make_trainer(data_dir, tmp_path / "one", batch_size, epochs=2, dtype=dtype)
    initial = {f"model/{k}": v.copy() for k, v in one.model.state_dict().items()}
    one.train()
    arrays, meta = final_state(one)
    assert arrays.keys() == rank0.keys()
    for key in arrays:
        np.testing.assert_allclose(rank0[key], arrays[key], **TOLERANCE[dtype], err_msg=key)
    # the weights moved a long way compared with that tolerance: the test would see a wrong step
    assert max(np.abs(arrays[k] - initial[k]).max() for k in initial) > 1e-3
    for mine, theirs in zip(without_timings(meta0["history"]), without_timings(meta["history"])):
        assert mine.keys() == theirs.keys()
        for k in mine:
            assert mine[k] == pytest.approx(theirs[k], rel=1e-6, abs=1e-6), k

    # only rank 0 wrote: one metrics line per epoch, one checkpoint
    lines = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert (tmp_path / "two" / CHECKPOINT).exists()


def test_two_processes_stop_together_and_resume_exactly(data, tmp_path):
    train, _ = data
    data_dir = Path(train.path).parent
    whole, _ = mpirun(data_dir, tmp_path / "whole", "--epochs", 2)
    assert whole.returncode == 0, whole.stderr[-3000:]

    # process 1 alone asks to stop after batch 2 of epoch 2 (as Ctrl-C would): both stop there
    stopped, _ = mpirun(data_dir, tmp_path / "stopped", "--epochs", 2, "--stop-after", 1, 2)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    for rank in (0, 1):
        _, meta = load_rank(tmp_path / "stopped", rank)
        assert (meta["epoch"], meta["batch"]) == (1, 2), rank

    resumed, _ = mpirun(data_dir, tmp_path / "stopped", "--epochs", 2, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, expected_meta = load_rank(tmp_path / "whole", 0)
    for rank in (0, 1):
        arrays, meta = load_rank(tmp_path / "stopped", rank)
        for key in expected:
            np.testing.assert_array_equal(arrays[key], expected[key], err_msg=f"rank {rank}: {key}")
        assert without_timings(meta["history"]) == without_timings(expected_meta["history"])


def test_an_error_in_one_process_ends_the_run(data, tmp_path):
    train, _ = data
    result, seconds = mpirun(Path(train.path).parent, tmp_path, "--epochs", 2, "--crash-after", 0, 2, timeout=60)
    assert result.returncode != 0, result.stderr[-3000:]
    assert "process 1 of 2 stopped" in result.stderr and "an error on purpose" in result.stderr, result.stderr[-3000:]
    assert seconds < 60
    assert not (tmp_path / "rank0.npz").exists()   # process 0 did not go on training alone


def test_train_imagenet_under_mpirun(tmp_path):
    """The example program on 2 processes: one model, one voice, one set of files."""
    mpiexec = mpiexec_or_skip()
    rng = np.random.default_rng(0)
    for split, n, statistics in (("train", 8, True), ("val", 3, False)):
        images = rng.integers(0, 256, size=(n, 256, 256, 3), dtype=np.uint8)
        write_split(tmp_path / f"{split}.h5", images, np.arange(n) % 3, statistics=statistics)
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [mpiexec, "-n", "2", sys.executable, str(TESTS.parent / "examples" / "train_imagenet.py"),
               "--data", str(tmp_path), "--devices", "cpu", "--batch-size", "4", "--ten-crop-every", "0",
               "--epochs", "1", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("2 processes (MPI all-reduce), each training on 2 images of every batch of 4") == 1
    assert result.stdout.count("done in") == 1                      # only rank 0 speaks
    for name in ["checkpoint.npz", "metrics.jsonl", "summary.json", *PICTURES]:
        assert (out / name).stat().st_size > 0, name
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["val_top1_error_10crop"] <= 100           # the final ten-crop validation, combined


@pytest.mark.gpu
def test_nccl_all_reduce_of_one_process_on_a_gpu():
    """NCCL's side on a real GPU: a communicator of one process (started without mpirun,
    MPI's world is this process alone) sums the gradient buffer in place to itself, and
    allreduce_gradients packs, sums and unpacks the gradients of a model on the GPU."""
    pytest.importorskip("mpi4py", reason='mpi4py is not installed (pip install -e ".[mpi]")')
    import cupy
    from mpi4py import MPI

    from tinyalex.distributed import NcclCommunicator

    comm = NcclCommunicator(0, MPI.COMM_WORLD)
    assert comm.size == 1 and comm.gpu_comm is not None
    for dtype in (np.float32, np.float64):
        with cupy.cuda.Device(0):
            buffer = cupy.arange(1000, dtype=dtype)
        comm.sum_in_place(buffer)
        cupy.cuda.Device(0).synchronize()
        np.testing.assert_array_equal(cupy.asnumpy(buffer), np.arange(1000, dtype=dtype))
    model = AlexNet(devices=0, **WORKER_MODEL)
    x = np.random.default_rng(0).normal(size=(2, 3, 67, 67))
    model.forward(x)
    model.backward(cupy.ones((2, 3), dtype=np.float64))
    before = {name: cupy.asnumpy(grad) for name, _, grad in model.parameters()}
    comm.size = 2                     # pretend there is a second process: the packing path runs
    comm.allreduce_gradients(model.parameters())
    for name, _, grad in model.parameters():
        np.testing.assert_array_equal(cupy.asnumpy(grad), before[name], err_msg=name)
