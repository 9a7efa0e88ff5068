"""Which array module runs where.

tinyalex names a device either ``"cpu"`` (NumPy) or an integer CUDA device id (CuPy).
Layer code is written once against an array module ``xp`` and asks this module for it,
so the same lines run on both.

CuPy is optional. ``import tinyalex`` works when CuPy is not installed, and when it is
installed but no GPU can be used (``cupy.is_available()`` is False): then only ``"cpu"``
is a valid device.
"""

import contextlib

import numpy as np

try:
    import cupy
except ImportError:  # CuPy is an optional extra
    cupy = None


def gpu_available():
    """True when CuPy is installed and can reach at least one CUDA device."""
    if cupy is None:
        return False
    try:
        return bool(cupy.is_available())
    except Exception:  # a broken driver or CUDA install counts as "no GPU"
        return False


def gpu_count():
    return cupy.cuda.runtime.getDeviceCount() if gpu_available() else 0


def default_device():
    """The first GPU if there is one, else the CPU."""
    return 0 if gpu_available() else "cpu"


def check_device(device):
    """Return ``device`` if it is usable here, else raise ValueError saying why."""
    if device == "cpu":
        return device
    if isinstance(device, (int, np.integer)) and not isinstance(device, bool):
        if not gpu_available():
            raise ValueError(
                f"device {device} asks for a GPU, but "
                + ("CuPy is not installed" if cupy is None else "CuPy finds no usable GPU")
                + '; use device="cpu"'
            )
        if not 0 <= device < gpu_count():
            raise ValueError(f"device {device} does not exist: this machine has {gpu_count()} GPU(s)")
        return int(device)
    raise ValueError(f'a device is "cpu" or a CUDA device id (int), not {device!r}')


def parse_devices(text):
    """A command line's ``--devices`` -> what ``AlexNet(devices=...)`` takes.

    None -> None (the default: the first GPU, else the CPU); "cpu" -> "cpu"; "0" -> 0;
    "0,1" -> (0, 1), one device per column. Raises ValueError, saying why, for anything
    else or for a device this machine does not have.
    """
    if text is None:
        return None
    try:
        parts = ["cpu" if part.strip() == "cpu" else int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f'{text!r}: give "cpu", a GPU id such as 0, or two ids such as 0,1') from None
    if len(parts) > 2:
        raise ValueError(f"{text!r}: AlexNet has two columns, so at most two devices")
    devices = tuple(check_device(part) for part in parts)
    return devices[0] if len(devices) == 1 else devices


def array_module(device):
    """NumPy for ``"cpu"``, CuPy for a CUDA device id."""
    return np if device == "cpu" else cupy


def get_array_module(array):
    """The module (numpy or cupy) that owns ``array``."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy
    return np


def is_gpu_array(array):
    return cupy is not None and isinstance(array, cupy.ndarray)


def device_of(array):
    """``"cpu"`` for a NumPy array, the CUDA device id for a CuPy array."""
    return array.device.id if is_gpu_array(array) else "cpu"


def on_device(device):
    """Context manager that makes ``device`` current, so CuPy allocates there."""
    if device == "cpu":
        return contextlib.nullcontext()
    return cupy.cuda.Device(device)


def to_device(array, device):
    """Copy ``array`` to ``device``; return it unchanged if it already lives there.

    GPU-to-GPU copies go directly between the cards (peer copy) where the hardware
    allows it; this is how the two AlexNet columns exchange activations. The source GPU
    is synchronized first, because the copy is queued on the destination GPU, which does
    not otherwise wait for the source's work in flight.
    """
    source = device_of(array)
    if source == device:
        return array
    if device == "cpu":
        return cupy.asnumpy(array)
    if source != "cpu":
        cupy.cuda.Device(source).synchronize()
    with cupy.cuda.Device(device):
        return cupy.copy(array) if source != "cpu" else cupy.asarray(array)


def to_numpy(array):
    return cupy.asnumpy(array) if is_gpu_array(array) else np.asarray(array)
