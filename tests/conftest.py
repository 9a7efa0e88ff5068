import pytest

from tinyalex.backend import gpu_available, gpu_count
from tinyalex.cuda_emulation import find_compiler


def pytest_collection_modifyitems(config, items):
    if gpu_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and CuPy (none found on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def two_gpus():
    if gpu_count() < 2:
        pytest.skip("needs two CUDA GPUs")


@pytest.fixture(scope="session")
def cxx():
    compiler = find_compiler()
    if compiler is None:
        pytest.skip("the CUDA emulation needs a C++ compiler")
    return compiler
