"""The two CPU paths of every kernel, timed side by side: NumPy against the compiled kernels.

    python bench/cpu_paths.py [--batch N] [--repeats N] [--threads N]

On a CPU the "fast" engine runs, pass by pass, whichever path measured faster: the NumPy
path, or the same ``.cu`` kernels compiled as native code (tinyalex.kernels.native). Its
choices are one table, ``tinyalex.engines.FAST``; this script measures both paths at
AlexNet's sizes (one column, batch 32 by default) so the choices can be checked on any
machine. Every line is the median of --repeats calls; the last column says which path the
engine runs. By default BLAS and the kernels get one thread, as each column's thread has
them when the fast engine runs the columns side by side (tinyalex.engines.columns);
--threads 2 measures them as the columns run one after the other on two cores. No
PyTorch needed.
"""

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from tinyalex.engines import WinogradConv2D, tune_process, winograd
from tinyalex.kernels import native
from tinyalex.layers import LRN, MaxPool2D
from tinyalex.layers.conv import Conv2D, col2im, col2im_kernel, im2col, im2col_kernel
from tinyalex.sgd import update_kernel, update_numpy


def median_ms(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="threads of BLAS and of the kernels (default 1)")
    args = p.parse_args()
    if not native.available():
        raise SystemExit(f"no compiled kernels here: {native.describe()}")
    print("process settings: " + "; ".join(tune_process()))
    threadpool_limits(args.threads, user_api="blas")
    native.set_threads_of_this_thread(args.threads)
    rng = np.random.default_rng(0)
    N, f32 = args.batch, np.dtype(np.float32)
    conv1_out = rng.standard_normal((N, 48, 55, 55), dtype=np.float32)    # one column's conv1 output
    pool1_out = MaxPool2D().forward_numpy(conv1_out, train=False)
    conv2_in = rng.standard_normal((N, 48, 27, 27), dtype=np.float32)
    conv3_in = rng.standard_normal((N, 256, 13, 13), dtype=np.float32)
    image = rng.standard_normal((N, 3, 227, 227), dtype=np.float32)
    print(f"BLAS and the kernels on {args.threads} thread(s); batch {N}, one column; median of {args.repeats} calls, "
          "ms")
    print(f"{'pass':48s} {'NumPy':>8s} {'kernels':>8s}  the library runs")

    def row(name, numpy_call, kernel_call, runs):
        a, b = median_ms(numpy_call, args.repeats), median_ms(kernel_call, args.repeats)
        print(f"{name:48s} {a:8.1f} {b:8.1f}  {runs}")

    pool_kernels = native.load("layers/maxpool.cu", f32)
    pool_numpy, pool_kernel = MaxPool2D(), MaxPool2D()
    row("max-pool forward (training) 32x48x55x55", lambda: pool_numpy.forward_numpy(conv1_out),
        lambda: pool_kernel.forward_kernels(conv1_out, True, pool_kernels), "kernels")
    row("max-pool forward (evaluation)", lambda: pool_numpy.forward_numpy(conv1_out, False),
        lambda: pool_kernel.forward_kernels(conv1_out, False, pool_kernels), "NumPy")
    dpool = np.ones_like(pool1_out)
    pool_numpy.forward_numpy(conv1_out)
    pool_kernel.forward_kernels(conv1_out, True, pool_kernels)
    row("max-pool backward", lambda: pool_numpy.backward_numpy(dpool),
        lambda: pool_kernel.backward_kernels(dpool, pool_kernels), "NumPy")

    lrn_kernels = native.load("layers/lrn.cu", f32)
    lrn_numpy, lrn_kernel = LRN(), LRN()
    row("LRN forward 32x48x55x55", lambda: lrn_numpy.forward_numpy(conv1_out),
        lambda: lrn_kernel.forward_kernels(conv1_out, True, lrn_kernels), "NumPy")
    row("LRN backward", lambda: lrn_numpy.backward_numpy(conv1_out),
        lambda: lrn_kernel.backward_kernels(conv1_out, lrn_kernels), "NumPy")

    conv_kernels = native.load("layers/conv.cu", f32)
    for name, x, k, stride, pad in (("conv1", image, 11, 4, 0), ("conv2", conv2_in, 5, 1, 2),
                                    ("conv3", conv3_in, 3, 1, 1)):
        row(f"im2col, {name} input {'x'.join(map(str, x.shape))}", lambda: im2col(x, k, stride, pad),
            lambda: im2col_kernel(x, k, stride, pad, conv_kernels), "NumPy")
    for name, x, k, stride, pad in (("conv2", conv2_in, 5, 1, 2), ("conv3", conv3_in, 3, 1, 1)):
        cols = im2col(x, k, stride, pad)
        row(f"col2im, {name}", lambda: col2im(cols, x.shape, k, stride, pad),
            lambda: col2im_kernel(cols, x.shape, k, stride, pad, conv_kernels), "NumPy")

    wino_kernels = native.load("engines/winograd.cu", f32)
    V = winograd.transform_input(conv3_in, 1)
    row("Winograd input transform, conv3 input", lambda: winograd.transform_input(conv3_in, 1),
        lambda: winograd.transform_input_kernel(conv3_in, 1, wino_kernels), "kernels")
    row("Winograd input transform's adjoint, conv3", lambda: winograd.transform_input_adjoint(V, conv3_in.shape, 1),
        lambda: winograd.transform_input_adjoint_kernel(V, conv3_in.shape, 1, wino_kernels), "kernels")

    # The 16 matrices a transform writes, a multiple of 4096 bytes apart (conv3's at batch
    # 32 are) or with the gap winograd.planes leaves (the library's layout)
    dy = rng.standard_normal((N, 256, 13, 13), dtype=np.float32)
    gapless = winograd.planes
    winograd.planes = lambda xp, rows, columns, dtype: xp.empty((16, rows, columns), dtype=dtype)
    back_to_back = median_ms(lambda: winograd.transform_output_adjoint_kernel(dy, wino_kernels), args.repeats)
    winograd.planes = gapless
    with_gaps = median_ms(lambda: winograd.transform_output_adjoint_kernel(dy, wino_kernels), args.repeats)
    print(f"{'Winograd output adjoint, 256 channels: matrices':48s} {back_to_back:8.1f} {with_gaps:8.1f}  "
          "(back to back | with gaps: the library's)")

    sgd_kernels = native.load("sgd.cu", f32)
    weights = [Conv2D(48, 128, 5).weight, rng.standard_normal((2048, 9216), dtype=np.float32)]  # conv2, fc6
    state = [(w, np.zeros_like(w), np.ones_like(w)) for w in weights]
    row("SGD update, conv2's and fc6's weights (19 M)",
        lambda: [update_numpy(w, v, g, 0.01, 0.9, 0.0005) for w, v, g in state],
        lambda: [update_kernel(w, v, g, 0.01, 0.9, 0.0005, sgd_kernels) for w, v, g in state], "kernels")

    # The 3 x 3 layers, whole (forward with train=True, then backward), by each algorithm;
    # Winograd with its transforms compiled (the library's default on a CPU) and in NumPy.
    print()
    print(f"{'conv layer, forward + backward, one column':48s} {'im2col':>8s} {'Winograd':>8s} {'(NumPy)':>8s}")
    for name, channels, out_channels in (("conv3", 256, 192), ("conv4", 192, 192), ("conv5", 192, 128)):
        x = np.ascontiguousarray(conv3_in[:, :channels])
        times = []
        for cls, compiled in ((Conv2D, ("backward",)), (WinogradConv2D, ("forward", "backward")),
                              (WinogradConv2D, ())):
            conv = cls(channels, out_channels, 3, 1, 1, rng=rng)
            conv.cpu_kernels = compiled   # as the fast engine sets them, or none: NumPy's transforms
            dout = rng.standard_normal((N, out_channels, 13, 13), dtype=np.float32)

            def step(conv=conv, dout=dout):
                conv.forward(x)
                conv.backward(dout)
            times.append(median_ms(step, args.repeats))
        print(f"{name + ' ' + 'x'.join(map(str, x.shape)) + f' -> {out_channels}':48s} "
              + " ".join(f"{t:8.1f}" for t in times))

    # conv2 (5 x 5) stays with im2col (docs/benchmarks.md says why). The matrix products of
    # one column's forward pass: im2col's one, against the 36 of Winograd's F(2x2, 5x5)
    # (6 x 6 points, 14 x 14 tiles per image), which have only 48 input channels each
    W, cols = (rng.standard_normal(shape, dtype=np.float32) for shape in ((128, 1200), (1200, N * 27 * 27)))
    U, V = (rng.standard_normal(shape, dtype=np.float32) for shape in ((36, 128, 48), (36, 48, N * 14 * 14)))
    print(f"{'conv2 forward products: im2col | F(2x2, 5x5)':48s} {median_ms(lambda: W @ cols, args.repeats):8.1f} "
          f"{median_ms(lambda: np.matmul(U, V), args.repeats):8.1f}")


if __name__ == "__main__":
    main()
