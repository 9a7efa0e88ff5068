import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tinyalex.backend import gpu_available, gpu_count
from tinyalex.kernels.native import find_compiler
from tinyalex.datasets import write_prepared


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


WNIDS = ("n00000000", "n00000001", "n00000002")


def write_split(path, images, labels, *, split=None, wnids=WNIDS, class_names=None, statistics=None,
                complete=True):
    """Writes ``images`` (N, S, S, 3) uint8 and ``labels`` (N,) as a prepared file -> its path.

    The one helper of the tests for a prepared split: it goes through the library's own
    writer (tinyalex.datasets.write_prepared), so the tests read the format the library
    writes. ``split`` defaults to the file name ("train.h5" -> "train"); the colour
    statistics, computed here with plain NumPy, are stored for the train split unless
    ``statistics`` says otherwise. ``complete=False`` writes a file readers must refuse.
    """
    split = split or Path(path).stem
    if statistics is None:
        statistics = split == "train"
    stored = None
    if statistics:
        pixels = images.reshape(-1, 3).astype(np.float64)
        covariance = np.cov(pixels, rowvar=False)
        values, vectors = np.linalg.eigh(covariance)           # ascending: turned to largest first
        stored = dict(mean_image=images.mean(axis=0).astype(np.float32), rgb_mean=pixels.mean(axis=0),
                      rgb_covariance=covariance, rgb_eigenvalues=values[::-1], rgb_eigenvectors=vectors[:, ::-1])
    return write_prepared(path, images, labels, [f"{split}_{i}.JPEG" for i in range(len(labels))], wnids,
                          class_names or wnids, split=split, source="made by the tests", statistics=stored,
                          complete=complete)


ROOT = Path(__file__).resolve().parents[1]


def example(name):
    """examples/<name>.py as a module, so that its main() and functions run in this process."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """train.h5 and val.h5 of full-size (256 x 256) noise images in 3 classes (8 and 3 images):
    the smallest data set the training program's full-size net runs on."""
    folder = tmp_path_factory.mktemp("data256")
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 3)):
        images = rng.integers(0, 256, size=(n, 256, 256, 3), dtype=np.uint8)
        write_split(folder / f"{split}.h5", images, np.arange(n) % 3)
    return folder
