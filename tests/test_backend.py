"""tinyalex imports and runs on the CPU where CuPy is missing or finds no GPU."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tinyalex import backend

ROOT = Path(__file__).resolve().parents[1]


def run_python(code, extra_path=None):
    path = [str(ROOT)] + ([str(extra_path)] if extra_path else [])
    env = {"PYTHONPATH": ":".join(path), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)


def test_import_without_cupy():
    result = run_python("""
        import sys
        sys.modules["cupy"] = None          # makes "import cupy" raise ImportError
        import tinyalex
        assert not tinyalex.gpu_available() and tinyalex.default_device() == "cpu"
        print(tinyalex.AlexNet(num_classes=3, image_size=67, channels=(4, 4, 4, 4, 4), hidden=4).devices)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('cpu', 'cpu')"


def test_import_with_cupy_but_no_gpu(tmp_path):
    # a stand-in for a CuPy install on a machine without a usable GPU
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("def is_available():\n    return False\n")
    result = run_python("""
        import tinyalex
        from tinyalex.backend import check_device
        assert not tinyalex.gpu_available() and tinyalex.default_device() == "cpu"
        try:
            check_device(0)
        except ValueError as error:
            print(error)
    """, extra_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CuPy finds no usable GPU" in result.stdout


def test_devices_are_checked():
    assert backend.check_device("cpu") == "cpu"
    with pytest.raises(ValueError, match='"cpu" or a CUDA device id'):
        backend.check_device("gpu")
    if not backend.gpu_available():
        with pytest.raises(ValueError, match="GPU"):
            backend.check_device(0)


def test_numpy_arrays_stay_on_the_cpu():
    x = np.ones(3)
    assert backend.device_of(x) == "cpu" and backend.to_device(x, "cpu") is x
    assert backend.get_array_module(x) is np and backend.array_module("cpu") is np


def test_tune_process_keeps_freed_memory_on_glibc():
    result = run_python("""
        import platform
        from tinyalex.engines import tune_process
        memory = [line for line in tune_process() if line.startswith("memory")][0]
        print("kept" if "kept" in memory else "not", platform.libc_ver()[0])
    """)
    assert result.returncode == 0, result.stderr
    kept, libc = result.stdout.split()
    assert kept == ("kept" if libc == "glibc" else "not")


def test_parse_devices():
    assert backend.parse_devices(None) is None
    assert backend.parse_devices("cpu") == "cpu"
    assert backend.parse_devices("cpu,cpu") == ("cpu", "cpu")
    with pytest.raises(ValueError, match="a GPU id such as 0"):
        backend.parse_devices("gpu0")
    with pytest.raises(ValueError, match="at most two"):
        backend.parse_devices("cpu,cpu,cpu")
