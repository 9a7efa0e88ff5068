"""The CUDA kernels (tinyalex/layers/*.cu) checked against the NumPy path.

Without a GPU the kernels run in tinyalex.cuda_emulation: the same source, compiled by
the C++ compiler, every thread of the launch grid the layer really uses run in turn.
With a GPU (tests marked ``gpu``) they run for real through CuPy.
"""

import shutil
import subprocess

import numpy as np
import pytest
from gradcheck import rel_error

from tinyalex import cuda
from tinyalex.cuda_emulation import EmulatedKernels, kernel_signatures
from tinyalex.layers import LRN, MaxPool2D
from tinyalex.testing import tie_free

KERNEL_FILES = sorted(p.name for p in cuda.KERNEL_DIR.glob("*.cu"))
DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}
LRN_SETTINGS = [(5, 2.0, 1e-4, 0.75), (5, 1.0, 1.0, 0.75), (3, 1.0, 1.0, 0.5)]


@pytest.fixture
def rng():
    return np.random.default_rng(99)


def test_every_kernel_file_is_tested():
    assert KERNEL_FILES == ["lrn.cu", "maxpool.cu"]


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on the PATH")
@pytest.mark.parametrize("filename", KERNEL_FILES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_compile_with_nvcc(filename, dtype, tmp_path):
    result = subprocess.run(
        ["nvcc", "-ptx", f"-Dscalar_t={cuda.c_type_name(dtype)}", "-x", "cu", str(cuda.KERNEL_DIR / filename),
         "-o", str(tmp_path / "out.ptx")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / "out.ptx").read_text()
    for name in kernel_signatures(cuda.kernel_source(filename)):
        assert f".entry {name}(" in ptx, f"{name} is missing from the PTX (name mangled?)"


# Emulated on the CPU ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,k,alpha,beta", LRN_SETTINGS)
@pytest.mark.parametrize("shape", [(2, 8, 5, 6), (1, 3, 4, 4), (3, 1, 2, 3)])
def test_lrn_kernels_match_numpy(dtype, size, k, alpha, beta, shape, rng, cxx):
    kernels = EmulatedKernels("lrn.cu", dtype)
    x = rng.standard_normal(shape).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    numpy_path, cuda_path = LRN(size, k, alpha, beta), LRN(size, k, alpha, beta)
    out = numpy_path.forward_numpy(x)
    dx = numpy_path.backward_numpy(dout)
    out_cuda = cuda_path.forward_cuda(x, True, kernels)
    assert rel_error(cuda_path.scale, numpy_path.scale) < TOLERANCE[dtype]
    assert rel_error(out_cuda, out) < TOLERANCE[dtype]
    assert rel_error(cuda_path.backward_cuda(dout, kernels), dx) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,stride,width", [(3, 2, 13), (3, 2, 27), (2, 2, 8), (3, 1, 6)])
def test_maxpool_kernels_match_numpy(dtype, size, stride, width, rng, cxx):
    kernels = EmulatedKernels("maxpool.cu", dtype)
    x = tie_free((2, 3, width, width), rng, dtype)
    numpy_path, cuda_path = MaxPool2D(size, stride), MaxPool2D(size, stride)
    out = numpy_path.forward_numpy(x)
    out_cuda = cuda_path.forward_cuda(x, True, kernels)
    np.testing.assert_array_equal(out_cuda, out)
    np.testing.assert_array_equal(cuda_path.argmax, numpy_path.argmax)
    dout = rng.standard_normal(out.shape).astype(dtype)
    assert rel_error(cuda_path.backward_cuda(dout, kernels), numpy_path.backward_numpy(dout)) < TOLERANCE[dtype]


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("height,width", [(8, 11), (9, 12), (6, 6)])
def test_maxpool_kernels_match_numpy_on_sizes_the_window_does_not_tile(height, width, ceil_mode, rng, cxx):
    kernels = EmulatedKernels("maxpool.cu", np.float64)
    x = tie_free((2, 3, height, width), rng)
    numpy_path, cuda_path = MaxPool2D(3, 2, ceil_mode), MaxPool2D(3, 2, ceil_mode)
    out = numpy_path.forward_numpy(x)
    np.testing.assert_array_equal(cuda_path.forward_cuda(x, True, kernels), out)
    np.testing.assert_array_equal(cuda_path.argmax, numpy_path.argmax)
    dout = rng.standard_normal(out.shape)
    assert rel_error(cuda_path.backward_cuda(dout, kernels), numpy_path.backward_numpy(dout)) < 1e-12


def test_maxpool_kernels_break_ties_like_numpy(cxx):
    x = np.zeros((1, 2, 5, 5), dtype=np.float32)  # every window is one big tie
    numpy_path, cuda_path = MaxPool2D(), MaxPool2D()
    numpy_path.forward_numpy(x)
    cuda_path.forward_cuda(x, True, EmulatedKernels("maxpool.cu", np.float32))
    np.testing.assert_array_equal(cuda_path.argmax, numpy_path.argmax)


def test_grid_stride_loops_cover_more_elements_than_threads(rng, cxx, monkeypatch):
    # one block of 32 threads for 2*8*5*6 = 480 elements: each thread must loop
    monkeypatch.setattr(cuda, "THREADS_PER_BLOCK", 32)
    monkeypatch.setattr(cuda, "MAX_BLOCKS", 1)
    x = rng.standard_normal((2, 8, 5, 6))
    lrn = LRN(5, 1.0, 1.0, 0.75)
    assert rel_error(lrn.forward_cuda(x, True, EmulatedKernels("lrn.cu", np.float64)),
                     LRN(5, 1.0, 1.0, 0.75).forward_numpy(x)) < 1e-12
    pool = MaxPool2D(3, 1)
    np.testing.assert_array_equal(pool.forward_cuda(x, True, EmulatedKernels("maxpool.cu", np.float64)),
                                  MaxPool2D(3, 1).forward_numpy(x))


def test_emulator_rejects_untyped_scalars(cxx):
    kernels = EmulatedKernels("lrn.cu", np.float32)
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
    assert rel_error(cupy.asnumpy(out), cpu.forward(x)) < TOLERANCE[dtype]
    assert rel_error(cupy.asnumpy(gpu.backward(cupy.asarray(dout))), cpu.backward(dout)) < TOLERANCE[dtype]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_on_gpu_matches_numpy(dtype, rng):
    import cupy
    x = tie_free((4, 48, 55, 55), rng, dtype)
    cpu, gpu = MaxPool2D(), MaxPool2D()
    out = cpu.forward(x)
    np.testing.assert_array_equal(cupy.asnumpy(gpu.forward(cupy.asarray(x))), out)
    np.testing.assert_array_equal(cupy.asnumpy(gpu.argmax), cpu.argmax)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = cupy.asnumpy(gpu.backward(cupy.asarray(dout)))
    assert rel_error(dx, cpu.backward(dout)) < TOLERANCE[dtype]
