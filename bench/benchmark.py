"""Benchmark tinyalex against PyTorch's equivalent AlexNet, in one process, on one device.

    python bench/benchmark.py [--device cpu|0] [--batch N] [--steps N] [--warmup N] [--threads N] [--engine plain|fast]
                              [--rebuild-cols on|off] [--conv-algorithm im2col|winograd] [--no-torch] [--tf32 on|off]
                              [--json OUT] [--plot OUT.png]

What it measures, in this order:

1. peak memory of two training steps of each framework, in separate phases;
2. full training steps (forward with dropout, softmax cross-entropy, backward, SGD step with
   momentum 0.9 and weight decay 0.0005) of the full-size net, 227x227 images and 1000
   classes, after warm-up, alternating tinyalex and PyTorch step by step so that both see
   the same machine load;
3. forward passes only (evaluation: no dropout, and no autograd in PyTorch), alternating;
4. tinyalex layer by layer: one training step, with each layer of each column run and
   timed on its own, summed over the two columns (so the columns run one after the other
   here, with every thread in each layer, even where the step of 2. runs them side by
   side, a thread each);
5. LRN, max-pooling, im2col and col2im alone against PyTorch's own ops, on the shapes of
   conv1's output (LRN, pooling), conv1's input and conv2's input (im2col, col2im).

Both nets start from the same weights (``torch_alexnet_from``) and train on the same
batch of random images. PyTorch is optional: without it only tinyalex's figures are
printed. To run each framework in a fresh process of its own, as users run them (NumPy
imported first, no shared allocator or thread pool), and under a competing load, use
``bench/separate_processes.py``.
"""

import argparse
import contextlib
import ctypes
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

DEFAULTS = {  # batch, timed steps, warm-up steps, repeats per layer timing, repeats per single op
    "cpu": {"batch": 32, "steps": 8, "warmup": 1, "layer_steps": 2, "op_repeats": 3},
    "gpu": {"batch": 128, "steps": 20, "warmup": 5, "layer_steps": 10, "op_repeats": 20},
}
MEMORY_STEPS = 2          # per framework; they also serve as the first warm-up steps
PIXEL_STD = 60.0          # random images at the scale of mean-subtracted 0..255 pixels
MIB = 2**20


def parse_args():
    parser = argparse.ArgumentParser(description="Benchmark tinyalex against PyTorch's equivalent AlexNet.")
    parser.add_argument("--device", default="cpu", help='"cpu" (default) or a CUDA device id, e.g. 0')
    parser.add_argument("--batch", type=int, help="images per step (default: 32 on the CPU, 128 on a GPU)")
    parser.add_argument("--steps", type=int, help="timed steps per framework (default: 8 on the CPU, 20 on a GPU)")
    parser.add_argument("--warmup", type=int, help="untimed steps per framework after the memory phases "
                                                   "(default: 1 on the CPU, 5 on a GPU)")
    parser.add_argument("--threads", type=int, help="CPU threads for both frameworks' matrix products and "
                                                    "PyTorch's other ops (default: one per CPU)")
    parser.add_argument("--no-torch", action="store_true", help="tinyalex's figures only")
    parser.add_argument("--engine", choices=("plain", "fast"), default="fast",
                        help="tinyalex's engine (tinyalex.engines; default: fast)")
    parser.add_argument("--rebuild-cols", choices=("on", "off"),
                        help="every conv layer rebuilds its im2col matrix in backward (on) or keeps it from "
                             "forward (off); default: the engine's choice (fast: rebuild on a GPU; on a CPU "
                             "conv1 rebuilds, the others keep)")
    parser.add_argument("--conv-algorithm", choices=("im2col", "winograd"),
                        help="im2col for every conv layer, or Winograd's F(2x2, 3x3) for conv3-conv5 on any "
                             "device; default: the engine's choice (fast: Winograd on a CPU with compiled "
                             "kernels, im2col on a GPU)")
    parser.add_argument("--tf32", choices=("on", "off"), default="off",
                        help="TensorFloat-32 matrix products on the GPU, in both frameworks (default: off)")
    parser.add_argument("--json", metavar="OUT", help="write every number to this JSON file")
    parser.add_argument("--plot", metavar="OUT.png", help="draw tinyalex's per-layer times")
    args = parser.parse_args()
    for name in ("batch", "steps", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup is not None and args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.device != "cpu" and not args.device.isdigit():
        parser.error(f'--device is "cpu" or a CUDA device id, not {args.device!r}')
    args.device = "cpu" if args.device == "cpu" else int(args.device)
    defaults = DEFAULTS["cpu" if args.device == "cpu" else "gpu"]
    for name in ("batch", "steps", "warmup"):
        if getattr(args, name) is None:
            setattr(args, name, defaults[name])
    args.layer_steps, args.op_repeats = defaults["layer_steps"], defaults["op_repeats"]
    args.threads = args.threads or os.cpu_count()
    return args


# CuPy reads CUPY_TF32, and NumPy's BLAS its thread count, once, when they are imported:
# so the options come first.
ARGS = parse_args()
os.environ["CUPY_TF32"] = "1" if ARGS.tf32 == "on" else "0"
if ARGS.device == "cpu":
    for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[variable] = str(ARGS.threads)
    # Both frameworks run loops on OpenMP threads (PyTorch's ops, tinyalex's compiled
    # kernels). By default idle OpenMP threads spin for a while, and since the steps
    # alternate, one framework's spinning threads would take the cores of the other's
    # next step. Passive threads sleep as soon as they are idle, in both frameworks.
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import numpy as np  # noqa: E402

import tinyalex  # noqa: E402
from tinyalex import PAPER  # noqa: E402
from tinyalex.backend import check_device, on_device, to_device  # noqa: E402
from tinyalex.layers import conv as conv_module  # noqa: E402

from layer_timing import layer_by_layer_step  # noqa: E402

try:
    check_device(ARGS.device)
except ValueError as error:
    sys.exit(f"benchmark.py: {error}")
if ARGS.device != "cpu":
    import cupy

torch = None
if not ARGS.no_torch:
    try:
        import torch
        import torch.nn.functional as F

        from alexnet_torch import torch_alexnet_from, torch_device
    except ImportError as error:
        print(f"PyTorch is not available ({error}): tinyalex's figures only. "
              "To compare, pip install torch (the CPU build is enough on a CPU machine).\n")
        torch = None


# Timing ----------------------------------------------------------------------------------

def timed(fn, sync):
    """Seconds taken by fn(), with the device idle before and finished after."""
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def alternate(runners, method, steps):
    """Run ``runner.<method>`` of each runner in turn, ``steps`` rounds; {name: [seconds]}."""
    times = {runner.name: [] for runner in runners}
    for _ in range(steps):
        for runner in runners:
            times[runner.name].append(timed(getattr(runner, method), runner.sync))
    return times


def throughput(seconds, batch):
    """Images per second: median step, and the slowest and fastest steps."""
    return {"median": batch / statistics.median(seconds), "min": batch / max(seconds),
            "max": batch / min(seconds), "seconds": seconds}


def median_time(fn, sync, repeats):
    fn()  # warm-up: kernel compilation, allocator growth
    return statistics.median(timed(fn, sync) for _ in range(repeats))


# Peak memory -----------------------------------------------------------------------------

def release_free_heap():
    """Give freed heap memory back to the OS (glibc), so that the next phase starts clean
    and cannot reuse what the previous one freed without it showing in its own peak."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def cpu_peak_memory(run):
    """Peak resident memory while ``run()`` runs, above the resident memory at its start."""
    status = Path("/proc/self/status")
    if not status.exists():  # not Linux: the process's peak can only grow, never be reset
        import resource
        unit = 1 if sys.platform == "darwin" else 1024
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
        run()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
        return {"bytes": after - before, "method": "growth of ru_maxrss (a lower bound)"}

    def read(field):
        for line in status.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    release_free_heap()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
        method = "VmHWM - VmRSS at the start"
    except OSError:
        method = "VmHWM - VmRSS at the start (VmHWM could not be reset: an upper bound)"
    base = read("VmRSS")
    run()
    return {"bytes": read("VmHWM") - base, "method": method}


# The two frameworks ----------------------------------------------------------------------

class TinyalexRunner:
    name = "tinyalex"

    def __init__(self, model, images, labels, device, engine):
        self.model, self.device = model, device
        self.x, self.y = to_device(images, device), to_device(labels, device)
        self.loss_fn = tinyalex.SoftmaxCrossEntropy()
        self.optimizer = tinyalex.SGD(PAPER.learning_rate, PAPER.momentum, PAPER.weight_decay, engine=engine)
        self.loss = None

    def sync(self):
        if self.device != "cpu":
            cupy.cuda.Device(self.device).synchronize()

    def train_step(self):
        self.loss = self.loss_fn.forward(self.model.forward(self.x, train=True), self.y)
        self.model.backward(self.loss_fn.backward())
        self.optimizer.step(self.model.parameters())

    def last_loss(self):
        return self.loss

    def forward_step(self):
        self.model.forward(self.x, train=False)

    def peak_memory(self, run):
        if self.device == "cpu":
            return cpu_peak_memory(run)
        pool = cupy.get_default_memory_pool()
        self.sync()
        pool.free_all_blocks()
        base = pool.used_bytes()
        run()
        self.sync()
        # The pool keeps every block it has allocated until free_all_blocks, so what it
        # holds at the end is the most it held during the phase.
        return {"bytes": pool.total_bytes() - base,
                "method": "CuPy memory pool: total_bytes at the end - used_bytes at the start"}


class TorchRunner:
    name = "PyTorch"

    def __init__(self, model, images, labels, device):
        self.model, self.device = model, device
        self.x, self.y = torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=PAPER.learning_rate, momentum=PAPER.momentum,
                                         weight_decay=PAPER.weight_decay)
        self.loss = None

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def train_step(self):
        self.optimizer.zero_grad(set_to_none=True)
        self.loss = F.cross_entropy(self.model(self.x), self.y)
        self.loss.backward()
        self.optimizer.step()

    def last_loss(self):
        return self.loss.item()

    def forward_step(self):
        self.model.eval()
        with torch.no_grad():
            self.model(self.x)
        self.model.train()

    def peak_memory(self, run):
        if self.device.type != "cuda":
            return cpu_peak_memory(run)
        self.sync()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.device)
        base, base_reserved = torch.cuda.memory_allocated(self.device), torch.cuda.memory_reserved(self.device)
        run()
        self.sync()
        return {"bytes": torch.cuda.max_memory_allocated(self.device) - base,
                "reserved_bytes": torch.cuda.max_memory_reserved(self.device) - base_reserved,
                "method": "torch.cuda.max_memory_allocated - memory_allocated at the start"}


# tinyalex layer by layer -----------------------------------------------------------------

def layer_times(runner, steps):
    """Median over ``steps`` layer-by-layer training steps, per layer and direction."""
    samples = []
    for _ in range(steps):
        runner.loss, times = layer_by_layer_step(runner.model, runner.x, runner.y, runner.loss_fn,
                                                 runner.optimizer, runner.sync)
        samples.append(times)
    return {name: {direction: statistics.median(sample[name][direction] for sample in samples)
                   for direction in ("forward", "backward")}
            for name in samples[0]}


# Single ops ------------------------------------------------------------------------------

def op_times(runner, trunner, batch, repeats, rng):
    """LRN, max-pool, im2col and col2im alone, tinyalex against PyTorch, same shapes and device."""
    device, sync = runner.device, runner.sync
    results = {}

    def both(name, tiny_fn, torch_fn):
        results[name] = {"tinyalex": median_time(tiny_fn, sync, repeats),
                         "PyTorch": median_time(torch_fn, trunner.sync, repeats) if trunner else None}

    def inputs(shape):
        array = rng.standard_normal(shape, dtype=np.float32)
        tensor = torch.from_numpy(array).to(trunner.device) if trunner else None
        return to_device(array, device), tensor

    # conv1's output after ReLU: LRN and pool1 read it
    shape = (batch, 96, 55, 55)
    x, tx = inputs(shape)
    x, tx = (x * (x > 0)), (tx.clamp(min=0).requires_grad_() if trunner else None)
    lrn, pool = tinyalex.LRN(), tinyalex.MaxPool2D()
    engine = runner.model.engine   # the passes the model's engine runs as compiled kernels on a CPU
    for layer in (lrn, pool):
        layer.cpu_kernels = tinyalex.engines.cpu_kernels(engine, type(layer))
    lrn_torch = (lambda t: F.local_response_norm(t, lrn.size, alpha=lrn.alpha * lrn.size, beta=lrn.beta, k=lrn.k))
    lrn_out, pool_out = lrn.forward(x), pool.forward(x)
    dlrn, dpool = to_device(rng.standard_normal(lrn_out.shape, dtype=np.float32), device), \
        to_device(rng.standard_normal(pool_out.shape, dtype=np.float32), device)
    if trunner:
        # PyTorch's forward is timed with autograd recording, as in training: tinyalex's
        # forward always keeps what backward needs.
        tlrn_out, tpool_out = lrn_torch(tx), F.max_pool2d(tx, 3, 2)
        tdlrn, tdpool = torch.randn_like(tlrn_out), torch.randn_like(tpool_out)
    label = "x".join(map(str, shape))
    both(f"lrn forward {label}", lambda: lrn.forward(x), trunner and (lambda: lrn_torch(tx)))
    both(f"lrn backward {label}", lambda: lrn.backward(dlrn),
         trunner and (lambda: torch.autograd.grad(tlrn_out, tx, tdlrn, retain_graph=True)))
    both(f"max-pool forward {label}", lambda: pool.forward(x), trunner and (lambda: F.max_pool2d(tx, 3, 2)))
    both(f"max-pool backward {label}", lambda: pool.backward(dpool),
         trunner and (lambda: torch.autograd.grad(tpool_out, tx, tdpool, retain_graph=True)))
    del x, tx, lrn, pool, lrn_out, pool_out, dlrn, dpool
    if trunner:
        del tlrn_out, tpool_out, tdlrn, tdpool

    for layer, shape, k, stride, pad in (("conv1", (batch, 3, 227, 227), 11, 4, 0),
                                         ("conv2", (batch, 96, 27, 27), 5, 1, 2)):
        x, tx = inputs(shape)
        # the conv layer's own im2col and col2im: the path the library runs on this device
        conv = tinyalex.layers.Conv2D(shape[1], 1, k, stride, pad, device=device)
        conv.cpu_kernels = tinyalex.engines.cpu_kernels(engine, tinyalex.layers.Conv2D)
        label = f"{layer} input {'x'.join(map(str, shape))}, k={k}, s={stride}, pad={pad}"
        both(f"im2col / unfold, {label}", lambda: im2col_as_run(conv, x),
             trunner and (lambda: F.unfold(tx, k, padding=pad, stride=stride)))
        cols = im2col_as_run(conv, x)
        tcols = F.unfold(tx, k, padding=pad, stride=stride) if trunner else None
        both(f"col2im / fold, {label}", lambda: col2im_as_run(conv, cols, shape),
             trunner and (lambda: F.fold(tcols, shape[2:], k, padding=pad, stride=stride)))
        del x, tx, cols, tcols, conv
    return results


def im2col_as_run(conv, x):
    """The conv layer's im2col by the path its forward pass takes here (NumPy or kernel)."""
    kernels = conv.kernels_for(x, "forward")
    if kernels is None:
        return conv_module.im2col(x, conv.kernel_size, conv.stride, conv.pad)
    return conv_module.im2col_kernel(x, conv.kernel_size, conv.stride, conv.pad, kernels)


def col2im_as_run(conv, cols, shape):
    """The conv layer's col2im by the path its backward pass takes here (NumPy or kernel)."""
    kernels = conv.kernels_for(cols, "backward")
    if kernels is None:
        return conv_module.col2im(cols, shape, conv.kernel_size, conv.stride, conv.pad)
    return conv_module.col2im_kernel(cols, shape, conv.kernel_size, conv.stride, conv.pad, kernels)


# Reporting -------------------------------------------------------------------------------

def machine_description(device):
    info = {"python": platform.python_version(), "numpy": np.__version__, "tinyalex": tinyalex.__version__,
            "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(Exception):
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
        info["numpy_blas"] = f"{blas['name']} {blas.get('version', '')}".strip()
    if device != "cpu":
        info["cupy"] = cupy.__version__
        name = cupy.cuda.runtime.getDeviceProperties(device)["name"]
        info["gpu"] = name.decode() if isinstance(name, bytes) else name
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    if torch is not None:
        info["torch"] = torch.__version__
        if device != "cpu":
            info["torch_cuda"] = torch.version.cuda
            info["cudnn"] = torch.backends.cudnn.version()
    return info


def set_threads(device):
    """Give both frameworks the same number of CPU threads; report what each uses."""
    threads = {"requested": ARGS.threads, "cpu_count": os.cpu_count()}
    if device != "cpu":
        return threads
    if torch is not None:
        torch.set_num_threads(ARGS.threads)
        threads["torch"] = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threads["numpy_blas"] = f"{ARGS.threads} (OPENBLAS_NUM_THREADS and MKL_NUM_THREADS set before importing NumPy)"
        return threads
    threads["numpy_blas"] = ", ".join(f"{Path(pool['filepath']).name}: {pool['num_threads']}"
                                      for pool in threadpool_info() if pool["user_api"] == "blas")
    return threads


def tf32_description(device):
    if device == "cpu":
        return f"{ARGS.tf32} (irrelevant on the CPU)"
    parts = [f"CuPy CUPY_TF32={os.environ['CUPY_TF32']}"]
    if torch is not None:
        parts.append(f"PyTorch matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}, "
                     f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, "
                     f"cudnn.benchmark={torch.backends.cudnn.benchmark}")
    return f"{ARGS.tf32} ({'; '.join(parts)})"


def print_throughput(title, results, batch):
    print(f"\n{title}")
    print(f"  {'':10} {'images/s median':>16} {'(min - max)':>18} {'ms/step median':>16}")
    for name, figures in results.items():
        print(f"  {name:10} {figures['median']:16.1f} {figures['min']:>8.1f} - {figures['max']:<8.1f} "
              f"{1000 * batch / figures['median']:16.1f}")


def ratio(results):
    if "PyTorch" not in results:
        return None
    return results["tinyalex"]["median"] / results["PyTorch"]["median"]


def print_ratio(value):
    if value is None:
        print("  tinyalex / PyTorch: n/a")
    else:
        faster = f"PyTorch is {1 / value:.1f}x as fast" if value < 1 else f"tinyalex is {value:.1f}x as fast"
        print(f"  tinyalex / PyTorch: {value:.3f}  ({faster})")


def plot_layers(layers, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(layers)
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(names) + 1.5))
    ax.barh(y - 0.2, [1000 * layers[n]["forward"] for n in names], height=0.4, label="forward")
    ax.barh(y + 0.2, [1000 * layers[n]["backward"] for n in names], height=0.4, label="backward (sgd: update)")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("ms per training step, both columns")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def chosen_engine():
    """The engine of the options: --engine, changed by --rebuild-cols and --conv-algorithm."""
    engine = tinyalex.engines.resolve(ARGS.engine)
    if ARGS.rebuild_cols is not None:
        engine = replace(engine, rebuild=("cpu", "gpu", "image") if ARGS.rebuild_cols == "on" else ())
    if ARGS.conv_algorithm is not None:
        engine = replace(engine, winograd=("cpu", "gpu") if ARGS.conv_algorithm == "winograd" else ())
    return engine


def print_header(device, machine, threads, kept, batch):
    print(f"tinyalex benchmark: training steps of the full AlexNet (227x227 images, 1000 classes), "
          f"float32, batch {batch}, device {device}")
    print(f"  machine:  {machine.get('gpu', '')}{' / ' if device != 'cpu' else ''}CPU {machine['cpu']} "
          f"({machine['cpu_count']} logical CPUs)")
    print("  versions: " + ", ".join(f"{key} {machine[key]}" for key in
                                     ("python", "tinyalex", "numpy", "numpy_blas", "cupy", "cuda_runtime", "torch",
                                      "torch_cuda", "cudnn") if key in machine))
    if device == "cpu":
        print(f"  threads:  PyTorch {threads.get('torch', 'n/a')}; NumPy's BLAS {threads['numpy_blas']}; "
              f"NumPy's other ops 1")
    print(f"  TF32:     {tf32_description(device)}")
    if device == "cpu":
        print("  OpenMP:   OMP_WAIT_POLICY=PASSIVE for both frameworks")
    print("  process:  tinyalex.engines.tune_process(), for both frameworks: " + "; ".join(kept))
    if device == "cpu":
        print(f"  OpenBLAS: OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset: chosen for this CPU)')}")
    if machine.get("load_average") is not None:
        busy = machine["load_average"] >= 0.5
        print(f"  load:     1-minute load average {machine['load_average']:.1f} on {machine['cpu_count']} CPUs"
              + (" -- other programs are running: timings will be noisy, and with every CPU busy"
                 " fewer threads (--threads 1) can be much faster" if busy and device == "cpu" else ""))
    print(f"  steps:    {MEMORY_STEPS} per framework for memory, then {ARGS.warmup} warm-up and {ARGS.steps} timed, "
          f"alternating tinyalex / PyTorch")


def measure_memory(runners, weights):
    print(f"\npeak memory during {MEMORY_STEPS} training steps, above the memory in use before them "
          f"(weights, {weights / MIB:.0f} MiB per framework, already there; optimizer state not yet)")
    memory = {}
    for runner in runners:
        memory[runner.name] = runner.peak_memory(lambda: [runner.train_step() for _ in range(MEMORY_STEPS)])
        figures = memory[runner.name]
        reserved = (f", {figures['reserved_bytes'] / MIB:.0f} MiB reserved by the caching allocator"
                    if "reserved_bytes" in figures else "")
        print(f"  {runner.name:10} {figures['bytes'] / MIB:8.0f} MiB{reserved}   [{figures['method']}]")
    return memory


def measure_steps(runners, batch):
    """Training steps, then forward passes, alternating the frameworks -> (train, forward) figures."""
    alternate(runners, "train_step", ARGS.warmup)
    train = {name: throughput(seconds, batch) for name, seconds in
             alternate(runners, "train_step", ARGS.steps).items()}
    print_throughput("training step (forward, loss, backward, SGD step)", train, batch)
    print_ratio(ratio(train))
    print("  loss on the (fixed) batch after these steps: "
          + ", ".join(f"{runner.name} {runner.last_loss():.3f}" for runner in runners))
    forward = {name: throughput(seconds, batch) for name, seconds in
               alternate(runners, "forward_step", ARGS.steps).items()}
    print_throughput("forward only (evaluation: no dropout; PyTorch under no_grad)", forward, batch)
    print_ratio(ratio(forward))
    return {**train, "ratio": ratio(train)}, {**forward, "ratio": ratio(forward)}


def print_layers(layers, step_seconds):
    total = sum(entry["forward"] + entry["backward"] for entry in layers.values())
    print(f"\ntinyalex layer by layer: one training step with every layer timed alone, both columns summed, "
          f"median of {ARGS.layer_steps} steps (crossN: the crossings; sgd: the update)")
    print(f"  {'layer':10} {'forward ms':>11} {'backward ms':>12} {'total ms':>9} {'share':>6}")
    for name, entry in layers.items():
        both = entry["forward"] + entry["backward"]
        print(f"  {name:10} {1000 * entry['forward']:11.1f} {1000 * entry['backward']:12.1f} "
              f"{1000 * both:9.1f} {100 * both / total:5.1f}%")
    print(f"  {'sum':10} {1000 * sum(e['forward'] for e in layers.values()):11.1f} "
          f"{1000 * sum(e['backward'] for e in layers.values()):12.1f} {1000 * total:9.1f}   "
          f"(a whole training step above: {1000 * step_seconds:.1f} ms)")
    print("  (timed alone, the columns run one after the other; the step above may run them side by side)")


def print_ops(ops):
    print(f"\nsingle ops, median of {ARGS.op_repeats} calls (PyTorch's forward with autograd recording)")
    print(f"  {'':62} {'tinyalex ms':>11} {'PyTorch ms':>11} {'tinyalex/PyTorch':>17}")
    for name, entry in ops.items():
        theirs = entry["PyTorch"]
        print(f"  {name:62} {1000 * entry['tinyalex']:11.2f} "
              + (f"{1000 * theirs:11.2f} {theirs / entry['tinyalex']:17.2f}" if theirs else f"{'n/a':>11}"))
    print("  (the last column is a speed ratio, as above: below 1 means tinyalex is slower)")


def main():
    device = ARGS.device
    started = time.perf_counter()
    global torch
    if torch is not None and device != "cpu" and not torch.cuda.is_available():
        print("This PyTorch has no CUDA (a CPU build?): tinyalex's figures only.\n")
        torch = None
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = ARGS.tf32 == "on"
        torch.backends.cudnn.allow_tf32 = ARGS.tf32 == "on"

    machine = machine_description(device)
    threads = set_threads(device)
    kept = tinyalex.engines.tune_process()   # what the training program does
    batch = ARGS.batch
    print_header(device, machine, threads, kept, batch)

    rng = np.random.default_rng(0)
    images = (rng.standard_normal((batch, 3, 227, 227), dtype=np.float32) * np.float32(PIXEL_STD))
    labels = rng.integers(0, 1000, batch)
    results = {"machine": machine, "threads": threads, "settings": {
        "process_settings": kept, "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "device": device,
        "batch": batch, "steps": ARGS.steps, "warmup": ARGS.warmup, "memory_steps": MEMORY_STEPS,
        "layer_steps": ARGS.layer_steps, "op_repeats": ARGS.op_repeats, "tf32": ARGS.tf32,
        "engine": ARGS.engine, "rebuild_cols": ARGS.rebuild_cols, "conv_algorithm": ARGS.conv_algorithm,
        "lr": PAPER.learning_rate, "momentum": PAPER.momentum, "weight_decay": PAPER.weight_decay}}

    with on_device(device):
        engine = chosen_engine()
        model = tinyalex.AlexNet(devices=device, seed=0, engine=engine)
        runners = [TinyalexRunner(model, images, labels, device, engine)]
        if torch is not None:
            runners.append(TorchRunner(torch_alexnet_from(model, device), images, labels, torch_device(device)))
        trunner = runners[1] if torch is not None else None
        weights = sum(param.nbytes for _, param, _ in model.parameters())
        results["engine"] = tinyalex.engines.describe(model)
        print(f"  tinyalex: {results['engine']}")

        results["memory"] = measure_memory(runners, weights)
        results["train"], results["forward"] = measure_steps(runners, batch)
        results["layers"] = layer_times(runners[0], ARGS.layer_steps)
        print_layers(results["layers"], statistics.median(results["train"]["tinyalex"]["seconds"]))
        results["ops"] = op_times(runners[0], trunner, batch, ARGS.op_repeats, rng)
        print_ops(results["ops"])

    results["seconds_total"] = time.perf_counter() - started
    print(f"\nbenchmark took {results['seconds_total']:.0f} s")
    if ARGS.json:
        Path(ARGS.json).write_text(json.dumps(results, indent=2, default=float) + "\n")
        print(f"numbers written to {ARGS.json}")
    if ARGS.plot:
        plot_layers(results["layers"], ARGS.plot, f"tinyalex training step per layer, batch {batch}, device {device}")
        print(f"per-layer plot written to {ARGS.plot}")


if __name__ == "__main__":
    main()
