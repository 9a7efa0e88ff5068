"""The kernels (tinyalex/**/*.cu) checked against the NumPy path.

Without a GPU the kernels run on the CPU in two builds of the same source, both compiled
by the C++ compiler: tinyalex.kernels.emulation runs every thread of the launch grid the
layer really uses in turn (the GPU's loop, launch arithmetic included),
tinyalex.kernels.native runs the loop on the CPU's threads (the fast engine's CPU path). With a GPU (tests marked ``gpu``)
they run for real through CuPy.
"""

import shutil
import subprocess

import numpy as np
import pytest
from gradcheck import rel_error

from tinyalex import SGD, AlexNet, engines
from tinyalex.engines import WinogradConv2D, winograd
from tinyalex.kernels import cuda, native
from tinyalex.kernels.emulation import EmulatedKernels
from tinyalex.layers import LRN, Conv2D, MaxPool2D, SoftmaxCrossEntropy
from tinyalex.layers.conv import col2im, col2im_kernel, im2col, im2col_kernel
from tinyalex.kernels.native import NativeKernels, kernel_signatures
from tinyalex.sgd import update_kernel, update_numpy
from tinyalex.testing import tie_free

KERNEL_FILES = sorted(str(p.relative_to(cuda.KERNEL_DIR)) for p in cuda.KERNEL_DIR.rglob("*.cu"))
BUILDS = {"emulated": EmulatedKernels, "native": NativeKernels}
DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}
LRN_SETTINGS = [(5, 2.0, 1e-4, 0.75), (5, 1.0, 1.0, 0.75), (3, 1.0, 1.0, 0.5)]


@pytest.fixture
def rng():
    return np.random.default_rng(99)


@pytest.fixture(params=list(BUILDS))
def build(request, cxx):
    """Both CPU builds of a kernel file: ``build(filename, dtype)`` -> kernels."""
    return BUILDS[request.param]


def test_every_kernel_file_is_tested():
    assert KERNEL_FILES == ["engines/winograd.cu", "layers/conv.cu", "layers/lrn.cu", "layers/maxpool.cu", "sgd.cu"]


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on the PATH")
@pytest.mark.parametrize("filename", KERNEL_FILES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_compile_with_nvcc(filename, dtype, tmp_path):
    source = tmp_path / "kernels.cu"
    source.write_text(cuda.gpu_source(filename))   # what CuPy compiles: KERNEL_LOOP defined first
    result = subprocess.run(
        ["nvcc", "-ptx", f"-Dscalar_t={cuda.c_type_name(dtype)}", "-x", "cu", str(source),
         "-o", str(tmp_path / "out.ptx")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / "out.ptx").read_text()
    for name in kernel_signatures(cuda.kernel_source(filename)):
        assert f".entry {name}(" in ptx, f"{name} is missing from the PTX (name mangled?)"


# Emulated, and native, on the CPU -----------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,k,alpha,beta", LRN_SETTINGS)
@pytest.mark.parametrize("shape", [(2, 8, 5, 6), (1, 3, 4, 4), (3, 1, 2, 3)])
def test_lrn_kernels_match_numpy(dtype, size, k, alpha, beta, shape, rng, build):
    kernels = build("layers/lrn.cu", dtype)
    x = rng.standard_normal(shape).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    numpy_path, cuda_path = LRN(size, k, alpha, beta), LRN(size, k, alpha, beta)
    out = numpy_path.forward_numpy(x)
    dx = numpy_path.backward_numpy(dout)
    out_cuda = cuda_path.forward_kernels(x, True, kernels)
    assert rel_error(cuda_path.scale, numpy_path.scale) < TOLERANCE[dtype]
    assert rel_error(out_cuda, out) < TOLERANCE[dtype]
    assert rel_error(cuda_path.backward_kernels(dout, kernels), dx) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,stride,width", [(3, 2, 13), (3, 2, 27), (2, 2, 8), (3, 1, 6)])
def test_maxpool_kernels_match_numpy(dtype, size, stride, width, rng, build):
    kernels = build("layers/maxpool.cu", dtype)
    x = tie_free((2, 3, width, width), rng, dtype)
    numpy_path, cuda_path = MaxPool2D(size, stride), MaxPool2D(size, stride)
    out = numpy_path.forward_numpy(x)
    out_cuda = cuda_path.forward_kernels(x, True, kernels)
    np.testing.assert_array_equal(out_cuda, out)
    np.testing.assert_array_equal(cuda_path.argmax, numpy_path.argmax)
    dout = rng.standard_normal(out.shape).astype(dtype)
    assert rel_error(cuda_path.backward_kernels(dout, kernels), numpy_path.backward_numpy(dout)) < TOLERANCE[dtype]


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("height,width", [(8, 11), (9, 12), (6, 6)])
def test_maxpool_kernels_match_numpy_on_sizes_the_window_does_not_tile(height, width, ceil_mode, rng, build):
    kernels = build("layers/maxpool.cu", np.float64)
    x = tie_free((2, 3, height, width), rng)
    numpy_path, cuda_path = MaxPool2D(3, 2, ceil_mode), MaxPool2D(3, 2, ceil_mode)
    out = numpy_path.forward_numpy(x)
    np.testing.assert_array_equal(cuda_path.forward_kernels(x, True, kernels), out)
    np.testing.assert_array_equal(cuda_path.argmax, numpy_path.argmax)
    dout = rng.standard_normal(out.shape)
    assert rel_error(cuda_path.backward_kernels(dout, kernels), numpy_path.backward_numpy(dout)) < 1e-12


def test_maxpool_kernels_break_ties_like_numpy(build):
    x = np.zeros((1, 2, 5, 5), dtype=np.float32)  # every window is one big tie
    numpy_path, cuda_path = MaxPool2D(), MaxPool2D()
    numpy_path.forward_numpy(x)
    cuda_path.forward_kernels(x, True, build("layers/maxpool.cu", np.float32))
    np.testing.assert_array_equal(cuda_path.argmax, numpy_path.argmax)


CONV_GEOMETRIES = [  # (channels, height, width, kernel, stride, pad): odd sizes, padding, overlap, gaps
    (3, 9, 11, 3, 2, 1), (2, 8, 8, 5, 1, 2), (4, 7, 10, 3, 1, 1), (2, 11, 13, 4, 3, 0), (1, 6, 6, 2, 2, 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels,height,width,k,stride,pad", CONV_GEOMETRIES)
def test_im2col_and_col2im_kernels_match_numpy(dtype, channels, height, width, k, stride, pad, rng, build):
    kernels = build("layers/conv.cu", dtype)
    x = rng.standard_normal((2, channels, height, width)).astype(dtype)
    cols = im2col(x, k, stride, pad)
    np.testing.assert_array_equal(im2col_kernel(x, k, stride, pad, kernels), cols)   # a copy: exact
    dcols = rng.standard_normal(cols.shape).astype(dtype)
    assert rel_error(col2im_kernel(dcols, x.shape, k, stride, pad, kernels),
                     col2im(dcols, x.shape, k, stride, pad)) < TOLERANCE[dtype]


WINOGRAD_GEOMETRIES = [  # (channels, height, width, pad): even and odd outputs, no padding, one pixel
    (3, 13, 13, 1), (2, 8, 7, 1), (4, 6, 9, 0), (2, 1, 1, 1), (3, 5, 6, 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels,height,width,pad", WINOGRAD_GEOMETRIES)
def test_winograd_transform_kernels_match_numpy(dtype, channels, height, width, pad, rng, build):
    kernels = build("engines/winograd.cu", dtype)
    x = rng.standard_normal((2, channels, height, width)).astype(dtype)
    V = winograd.transform_input(x, pad)
    assert rel_error(winograd.transform_input_kernel(x, pad, kernels), V) < TOLERANCE[dtype]
    dV = rng.standard_normal(V.shape).astype(dtype)
    assert rel_error(winograd.transform_input_adjoint_kernel(dV, x.shape, pad, kernels),
                     winograd.transform_input_adjoint(dV, x.shape, pad)) < TOLERANCE[dtype]
    out_shape = (2, channels + 1, height + 2 * pad - 2, width + 2 * pad - 2)
    M = rng.standard_normal((16, channels + 1, V.shape[2])).astype(dtype)
    bias = rng.standard_normal(channels + 1).astype(dtype)
    assert rel_error(winograd.transform_output_kernel(M, bias, out_shape, kernels),
                     winograd.transform_output(M, bias, out_shape)) < TOLERANCE[dtype]
    dy = rng.standard_normal(out_shape).astype(dtype)
    assert rel_error(winograd.transform_output_adjoint_kernel(dy, kernels),
                     winograd.transform_output_adjoint(dy)) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_kernel_matches_the_numpy_update(dtype, rng, build):
    kernels = build("sgd.cu", dtype)
    w, v, grad = (rng.standard_normal((7, 13)).astype(dtype) for _ in range(3))
    w_numpy, v_numpy = w.copy(), v.copy()
    for _ in range(3):   # several steps, so the velocity carries over
        update_numpy(w_numpy, v_numpy, grad, 0.01, 0.9, 0.0005)
        update_kernel(w, v, grad, 0.01, 0.9, 0.0005, kernels)
    assert rel_error(w, w_numpy) < TOLERANCE[dtype]
    assert rel_error(v, v_numpy) < TOLERANCE[dtype]


def small_net(engine):
    return engines.resolve(engine), AlexNet(num_classes=5, devices="cpu", image_size=67, channels=(8, 8, 12, 12, 8),
                                            hidden=16, engine=engine)


def test_the_fast_engine_picks_the_native_kernels_for_the_passes_it_names(cxx):
    x = np.zeros((1, 8, 8, 8), dtype=np.float32)
    _, model = small_net("fast")
    layers = dict(model.column_a.named_layers())
    pool, lrn, conv2, conv3 = (layers[f"column_a.{name}"] for name in ("pool1", "lrn1", "conv2", "conv3"))
    assert isinstance(pool.kernels_for(x, "forward"), NativeKernels)
    assert pool.kernels_for(x, "evaluation") is None        # no argmax to find: NumPy is faster
    assert pool.kernels_for(x, "backward") is None          # NumPy's add.at is faster there
    assert lrn.kernels_for(x, "forward") is None and lrn.kernels_for(x, "backward") is None
    # im2col and col2im: NumPy's, faster at the one thread each column's thread gives them
    assert conv2.kernels_for(x, "forward") is None and conv2.kernels_for(x, "backward") is None
    assert isinstance(conv3, WinogradConv2D)                # 3 x 3, stride 1: winograd.cu's kernels
    assert all(isinstance(conv3.kernels_for(x, p), NativeKernels) for p in ("forward", "evaluation", "backward"))
    assert pool.kernels_for(x.astype(np.int32), "forward") is None   # kernels exist for floats only
    assert "compiled kernels" in native.describe()


def test_the_plain_engine_and_a_layer_as_constructed_run_numpy_on_a_cpu(cxx):
    x = np.zeros((1, 8, 8, 8), dtype=np.float32)
    _, model = small_net("plain")
    for name, layer in model.named_layers():
        assert type(layer) in (Conv2D, MaxPool2D, LRN) or layer.kernel_file is None, name
        for direction in ("forward", "evaluation", "backward"):
            assert layer.kernels_for(x, direction) is None, name
    for layer in (MaxPool2D(), LRN(), Conv2D(8, 4, 3)):
        assert layer.kernels_for(x, "forward") is None and layer.kernels_for(x, "backward") is None


def test_a_failed_compile_falls_back_to_numpy_with_a_warning(monkeypatch):
    def failing(filename, dtype):
        raise RuntimeError("compiling layers/maxpool.cu for the CPU failed: (simulated)")
    monkeypatch.setattr(native, "NativeKernels", failing)
    with pytest.warns(RuntimeWarning, match="NumPy path instead"):
        assert native.load.__wrapped__("layers/maxpool.cu", np.dtype(np.float32)) is None



def test_grid_stride_loops_cover_more_elements_than_threads(rng, cxx, monkeypatch):
    # one block of 32 threads for 2*8*5*6 = 480 elements: each thread must loop
    monkeypatch.setattr(cuda, "THREADS_PER_BLOCK", 32)
    monkeypatch.setattr(cuda, "MAX_BLOCKS", 1)
    x = rng.standard_normal((2, 8, 5, 6))
    lrn = LRN(5, 1.0, 1.0, 0.75)
    assert rel_error(lrn.forward_kernels(x, True, EmulatedKernels("layers/lrn.cu", np.float64)),
                     LRN(5, 1.0, 1.0, 0.75).forward_numpy(x)) < 1e-12
    pool = MaxPool2D(3, 1)
    np.testing.assert_array_equal(pool.forward_kernels(x, True, EmulatedKernels("layers/maxpool.cu", np.float64)),
                                  MaxPool2D(3, 1).forward_numpy(x))


def test_emulator_rejects_untyped_scalars(cxx):
    kernels = EmulatedKernels("layers/lrn.cu", np.float32)
    x = np.zeros((1, 2, 2, 2), dtype=np.float32)
    out = np.empty_like(x)
    with pytest.raises(TypeError, match="int32"):
        kernels.lrn_output((1,), (32,), (x, x, out, 8, np.float32(0.75)))       # a Python int
    with pytest.raises(TypeError, match="float32"):
        kernels.lrn_output((1,), (32,), (x, x, out, np.int32(8), 0.75))          # a Python float
    with pytest.raises(TypeError, match="float32"):
        kernels.lrn_output((1,), (32,), (x, x, out.astype(np.float64), np.int32(8), np.float32(0.75)))
    with pytest.raises(TypeError, match="takes 5 arguments"):
        kernels.lrn_output((1,), (32,), (x, x, out, np.int32(8)))


# On a real GPU ----------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,k,alpha,beta", LRN_SETTINGS)
def test_lrn_on_gpu_matches_numpy(dtype, size, k, alpha, beta, rng):
    import cupy
    x = rng.standard_normal((4, 48, 27, 27)).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    cpu, gpu = LRN(size, k, alpha, beta), LRN(size, k, alpha, beta)
    out = gpu.forward(cupy.asarray(x))
    assert rel_error(cupy.asnumpy(out), cpu.forward_numpy(x)) < TOLERANCE[dtype]
    assert rel_error(cupy.asnumpy(gpu.backward(cupy.asarray(dout))), cpu.backward_numpy(dout)) < TOLERANCE[dtype]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_on_gpu_matches_numpy(dtype, rng):
    import cupy
    x = tie_free((4, 48, 55, 55), rng, dtype)
    cpu, gpu = MaxPool2D(), MaxPool2D()
    out = cpu.forward_numpy(x)
    np.testing.assert_array_equal(cupy.asnumpy(gpu.forward(cupy.asarray(x))), out)
    np.testing.assert_array_equal(cupy.asnumpy(gpu.argmax), cpu.argmax)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = cupy.asnumpy(gpu.backward(cupy.asarray(dout)))
    assert rel_error(dx, cpu.backward_numpy(dout)) < TOLERANCE[dtype]


@pytest.mark.gpu
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("height,width", [(8, 11), (9, 12), (6, 6)])
def test_maxpool_on_gpu_matches_numpy_on_sizes_the_window_does_not_tile(height, width, ceil_mode, rng):
    import cupy
    x = tie_free((2, 3, height, width), rng)
    cpu, gpu = MaxPool2D(3, 2, ceil_mode), MaxPool2D(3, 2, ceil_mode)
    out = cpu.forward_numpy(x)
    np.testing.assert_array_equal(cupy.asnumpy(gpu.forward(cupy.asarray(x))), out)
    np.testing.assert_array_equal(cupy.asnumpy(gpu.argmax), cpu.argmax)
    dout = rng.standard_normal(out.shape)
    assert rel_error(cupy.asnumpy(gpu.backward(cupy.asarray(dout))), cpu.backward_numpy(dout)) < 1e-12


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_winograd_conv_on_gpu_matches_numpy(dtype, rng):
    import cupy
    x = rng.standard_normal((4, 64, 13, 13)).astype(dtype)
    dout = rng.standard_normal((4, 48, 13, 13)).astype(dtype)
    cpu = Conv2D(64, 48, 3, 1, 1, weight_std=0.1, rng=rng, dtype=dtype)
    gpu = WinogradConv2D(64, 48, 3, 1, 1, device=0, dtype=dtype)
    gpu.weight, gpu.bias = cupy.asarray(cpu.weight), cupy.asarray(cpu.bias)
    assert rel_error(cupy.asnumpy(gpu.forward(cupy.asarray(x))), cpu.forward(x)) < TOLERANCE[dtype] * 10
    dx = cupy.asnumpy(gpu.backward(cupy.asarray(dout)))
    assert rel_error(dx, cpu.backward(dout)) < TOLERANCE[dtype] * 10
    assert rel_error(cupy.asnumpy(gpu.dweight), cpu.dweight) < TOLERANCE[dtype] * 10
    model = AlexNet(num_classes=5, devices=0, image_size=67, channels=(8, 8, 12, 12, 8), hidden=16)
    assert type(model.column_a.layer("conv3")).__name__ == "RebuildingConv2D"   # the GPU default: im2col


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_and_sgd_kernels_on_gpu_match_numpy(dtype, rng):
    import cupy
    kernels = cuda.load("layers/conv.cu", dtype, 0)
    x = rng.standard_normal((4, 48, 27, 27)).astype(dtype)
    cols = im2col(x, 5, 1, 2)
    np.testing.assert_array_equal(cupy.asnumpy(im2col_kernel(cupy.asarray(x), 5, 1, 2, kernels)), cols)
    dcols = rng.standard_normal(cols.shape).astype(dtype)
    assert rel_error(cupy.asnumpy(col2im_kernel(cupy.asarray(dcols), x.shape, 5, 1, 2, kernels)),
                     col2im(dcols, x.shape, 5, 1, 2)) < TOLERANCE[dtype]
    w, v, grad = (rng.standard_normal(1000).astype(dtype) for _ in range(3))
    w_gpu, v_gpu = cupy.asarray(w), cupy.asarray(v)
    update_numpy(w, v, grad, 0.01, 0.9, 0.0005)
    update_kernel(w_gpu, v_gpu, cupy.asarray(grad), 0.01, 0.9, 0.0005, cuda.load("sgd.cu", dtype, 0))
    assert rel_error(cupy.asnumpy(w_gpu), w) < TOLERANCE[dtype]


def test_a_training_step_with_the_fast_engine_matches_the_plain_one(rng, cxx):
    def step(engine):
        model = AlexNet(num_classes=5, devices="cpu", image_size=67, channels=(8, 8, 12, 12, 8), hidden=16,
                        dtype="float64", dropout=0.0, seed=3, engine=engine)
        images = np.random.default_rng(5).standard_normal((4, 3, 67, 67))
        loss = SoftmaxCrossEntropy()
        value = loss.forward(model.forward(images), np.arange(4) % 5)
        model.backward(loss.backward())
        SGD(lr=0.1, engine=engine).step(model.parameters())
        return value, model.state_dict()

    loss_native, weights_native = step("fast")
    loss_numpy, weights_numpy = step("plain")
    assert abs(loss_native - loss_numpy) < 1e-12
    for name in weights_numpy:
        assert rel_error(weights_native[name], weights_numpy[name]) < 1e-12, name


IMPORT_REPORT = ("import os; before = dict(os.environ); {imports}; from tinyalex.engines import process; "
                 "idle = process.openblas_idle(); {call}"
                 "changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)); "
                 "print(idle, process.openblas_idle(), ','.join(changed) or '-')")


def run_report(imports, call=""):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY")}
    return subprocess.run([sys.executable, "-c", IMPORT_REPORT.format(imports=imports, call=call)], env=env,
                          capture_output=True, text=True, check=True).stdout.split()


def test_importing_tinyalex_changes_nothing_outside_it():
    for imports in ("import tinyalex, numpy", "import numpy, tinyalex"):
        idle, _, changed = run_report(imports + "; tinyalex.AlexNet(num_classes=5, image_size=67, "
                                      "channels=(8, 8, 12, 12, 8), hidden=16, devices='cpu')")
        assert changed == "-", f"{imports} changed the environment: {changed}"
        assert idle in ("spin", "None")                  # OpenBLAS as NumPy loaded it


def test_tune_process_lets_openblas_threads_sleep_after_numpy_was_imported():
    before, after, changed = run_report("import numpy, tinyalex; numpy.ones((64, 64)) @ numpy.ones((64, 64))",
                                        "print(process.tune_process()); ")[-3:]
    if before == "None":
        pytest.skip("NumPy's BLAS here is not an OpenBLAS that tinyalex can find")
    assert (before, after) == ("spin", "sleep")
    assert changed == "OMP_WAIT_POLICY"                  # said so in its report; OpenBLAS's variable is not left set


def test_the_model_report_names_spinning_openblas_threads_until_tune_process():
    import subprocess
    import sys

    code = ("import numpy, tinyalex; from tinyalex import engines; "
            "model = tinyalex.AlexNet(num_classes=5, image_size=67, channels=(8, 8, 12, 12, 8), hidden=16, "
            "devices='cpu'); idle = engines.process.openblas_idle(); print(idle); print(engines.describe(model)); "
            "engines.tune_process(); print(engines.describe(model))")
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    idle, before, after = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                         check=True).stdout.splitlines()
    if idle == "None":
        pytest.skip("NumPy's BLAS here is not an OpenBLAS that tinyalex can find")
    assert "tune_process() makes them sleep" in before
    assert "spin" not in after
