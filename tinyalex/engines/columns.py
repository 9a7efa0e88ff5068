"""The two columns side by side on one CPU, each in a thread of its own.

The paper splits AlexNet between two GPUs: each runs one column, and the two exchange
maps only at the crossings (section 3.2). :meth:`AlexNet.forward` already issues both
columns' work of a stage before it waits for either, so on two GPUs the columns run at
the same time. On one CPU the same split pays too: with one thread per column, each on
its own core, the columns need each other only at the four crossings of a pass, where a
multi-threaded matrix product makes its threads wait for each other at every product and
runs the element-wise layers (ReLU, LRN, pooling, NumPy's im2col) on one core.

:class:`ColumnThreads` is that schedule. While it runs a stage, NumPy's BLAS and the
compiled kernels use one thread in each column's thread, and BLAS's thread count is put
back when the stage is done, so nothing outside tinyalex sees a change. What each layer
computes is the same; only the rounding of BLAS's sums may differ.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

from ..kernels import native
from .process import usable_cores


class ColumnThreads:
    """Runs one call per column, each in its own thread: ``runner(calls)`` -> their results.

    The threads are the same from one call to the next (starting two threads costs more
    than a small stage) and are shared by every model of the process; each sets its
    compiled kernels to one thread when it starts.
    """

    def __init__(self, columns=2):
        self.columns = columns
        self.blas = one_blas_thread()

    def __call__(self, calls):
        pool = thread_pool(len(calls))
        with self.blas():
            futures = [pool.submit(call) for call in calls]
            wait(futures)        # both columns are done before anything is raised or used
        return [future.result() for future in futures]

    def __repr__(self):
        return f"ColumnThreads({self.columns})"


_pool, _pool_size = None, 0
_pool_lock = threading.Lock()


def thread_pool(workers):
    """The process's pool of at least ``workers`` column threads, started on first use."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool_size < workers:
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="tinyalex-column",
                                       initializer=native.set_threads_of_this_thread, initargs=(1,))
            _pool_size = workers
        return _pool


def forget_pool():
    """A forked child has none of its parent's threads: it starts a pool of its own."""
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=forget_pool)


def column_runner(engine, devices):
    """How a model on ``devices`` runs its columns' stages under ``engine``:
    :class:`ColumnThreads` for two columns on one CPU with more than one core, if the
    engine asks for it; else :func:`in_turn`."""
    two_on_one_cpu = len(devices) == 2 and devices[0] == devices[1] == "cpu"
    if engine.column_threads and two_on_one_cpu and usable_cores() > 1:
        return ColumnThreads(len(devices))
    return in_turn


def in_turn(calls):
    """One column after the other, in the caller's thread: a GPU's columns (each queued on
    its own device), or a CPU's without :class:`ColumnThreads`."""
    return [call() for call in calls]


def one_blas_thread():
    """A context manager that holds NumPy's BLAS at one thread and then puts back what was
    there (through threadpoolctl); without threadpoolctl, one that does nothing."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        from contextlib import nullcontext
        return nullcontext
    controller = ThreadpoolController().select(user_api="blas")
    return lambda: controller.limit(limits=1)
