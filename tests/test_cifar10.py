"""CIFAR-10 read from files in the published python format, which these tests write.

The real batches are pickles written by Python 2's cPickle (protocol 2): the keys and
strings are Python 2 ``str`` (the opcodes SHORT_BINSTRING and BINSTRING, which Python 3
never writes) and ``data`` is a NumPy array pickled as NumPy 1 did under Python 2. So the
files here are written opcode by opcode, as Python 2 wrote them, not with Python 3's
pickle, which would write bytes another way and test nothing of the real format.
"""

import io
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tinyalex.data import PreparedSplit
from tinyalex.datasets import DatasetError
from tinyalex.datasets.cifar10 import prepare_cifar10, read_cifar10

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# Python 2's pickle opcodes, for the few types a CIFAR batch holds

def py2_str(data):
    data = data.encode() if isinstance(data, str) else data
    return b"U" + bytes([len(data)]) + data if len(data) < 256 else b"T" + struct.pack("<I", len(data)) + data


def py2_int(value):
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    return b"J" + struct.pack("<i", value)


def py2_list(items):
    return b"](" + b"".join(items) + b"e"


def py2_uint8_matrix(array):
    """A 2-D uint8 array as NumPy 1 under Python 2 pickled it."""
    rows, columns = array.shape
    dtype = (b"cnumpy\ndtype\n" + py2_str("u1") + py2_int(0) + py2_int(1) + b"\x87R"
             + b"(" + py2_int(3) + py2_str("|") + b"NNN" + py2_int(-1) + py2_int(-1) + py2_int(0) + b"tb")
    return (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + py2_int(0) + b"\x85" + py2_str("b")
            + b"\x87R" + b"(" + py2_int(1) + py2_int(rows) + py2_int(columns) + b"\x86" + dtype + b"\x89"
            + py2_str(array.tobytes()) + b"tb")


def py2_dict(items):
    return b"\x80\x02}(" + b"".join(py2_str(key) + value for key, value in items) + b"u."


def batch_bytes(rows, labels, name):
    return py2_dict([("data", py2_uint8_matrix(rows)), ("labels", py2_list([py2_int(int(v)) for v in labels])),
                     ("batch_label", py2_str(name)),
                     ("filenames", py2_list([py2_str(f"img_{i:04d}.png") for i in range(len(labels))]))])


def meta_bytes():
    return py2_dict([("label_names", py2_list([py2_str(n) for n in NAMES])), ("num_cases_per_batch", py2_int(4)),
                     ("num_vis", py2_int(3072))])


def make_batches(per_batch=4, test=5, seed=0):
    """{file name: bytes} of a small CIFAR-10, and the rows of each batch."""
    rng = np.random.default_rng(seed)
    files, rows = {}, {}
    for name, count in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        rows[name] = (rng.integers(0, 256, (count, 3072), dtype=np.uint8), rng.integers(0, 10, count))
        files[name] = batch_bytes(*rows[name], name)
    files["batches.meta"] = meta_bytes()
    return files, rows


def write_archive(path, files):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def write_folder(root, files):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def expected_image(row):
    """The image a row holds, pixel by pixel: value [c * 1024 + y * 32 + x] is channel c at (y, x)."""
    image = np.empty((32, 32, 3), np.uint8)
    for c in range(3):
        for y in range(32):
            for x in range(32):
                image[y, x, c] = row[c * 1024 + y * 32 + x]
    return image


@pytest.fixture
def cifar(tmp_path):
    files, rows = make_batches()
    return write_archive(tmp_path / "cifar-10-python.tar.gz", files), files, rows


def test_the_archive_and_its_folder_read_alike_with_the_layout_of_the_format(cifar, tmp_path):
    archive, files, rows = cifar
    folder = write_folder(tmp_path / "unpacked", files)
    for source in (archive, folder, folder.parent):
        data = read_cifar10(source)
        assert data["class_names"] == NAMES
        images, labels, names = data["train"]
        assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8
        train_rows = np.concatenate([rows[f"data_batch_{i}"][0] for i in range(1, 6)])
        assert labels.tolist() == np.concatenate([rows[f"data_batch_{i}"][1] for i in range(1, 6)]).tolist()
        for i in (0, 7, 19):
            assert np.array_equal(images[i], expected_image(train_rows[i]))
        assert names[5] == "data_batch_2/1"
        test_images, test_labels, _ = data["test"]
        assert np.array_equal(test_images[4], expected_image(rows["test_batch"][0][4]))
        assert test_labels.tolist() == rows["test_batch"][1].tolist()


def test_a_pickle_that_asks_for_a_function_is_refused_and_never_run(cifar, tmp_path):
    _, files, _ = cifar
    marker = tmp_path / "ran"
    files["data_batch_3"] = (b"\x80\x02cos\nsystem\n" + py2_str(f"touch {marker}") + b"\x85R.")
    with pytest.raises(DatasetError, match=r"data_batch_3: not a CIFAR-10 python batch.*os\.system"):
        read_cifar10(write_archive(tmp_path / "planted.tar.gz", files))
    assert not marker.exists()


def test_bad_input_is_one_message_naming_the_file(cifar, tmp_path):
    _, files, _ = cifar
    with pytest.raises(DatasetError, match="does not exist"):
        read_cifar10(tmp_path / "nowhere.tar.gz")
    (tmp_path / "not-an-archive.tar.gz").write_bytes(b"hello")
    with pytest.raises(DatasetError, match="not a readable tar archive"):
        read_cifar10(tmp_path / "not-an-archive.tar.gz")
    partial = dict(files)
    del partial["test_batch"]
    with pytest.raises(DatasetError, match="lacks cifar-10-batches-py/test_batch"):
        read_cifar10(write_archive(tmp_path / "partial.tar.gz", partial))
    with pytest.raises(DatasetError, match="lacks test_batch"):
        read_cifar10(write_folder(tmp_path / "partial", partial))
    wrong = dict(files)
    wrong["data_batch_1"] = batch_bytes(np.zeros((2, 3072), np.uint8), [3, 10], "data_batch_1")
    with pytest.raises(DatasetError, match=r"data_batch_1: labels must be 0\.\.9, found 3\.\.10"):
        read_cifar10(write_archive(tmp_path / "wrong.tar.gz", wrong))
    short = dict(files)
    short["data_batch_1"] = batch_bytes(np.zeros((2, 1024), np.uint8), [3, 1], "data_batch_1")
    with pytest.raises(DatasetError, match="uint8 rows of 3072 values"):
        read_cifar10(write_archive(tmp_path / "short.tar.gz", short))


def test_prepared_files_hold_the_images_their_labels_and_the_mean_image(cifar, tmp_path):
    archive, _, rows = cifar
    train_path, val_path = prepare_cifar10(archive, tmp_path / "prepared")
    train, val = PreparedSplit(train_path), PreparedSplit(val_path)
    assert (len(train), len(val), train.stored_size) == (20, 5, 32)
    assert train.wnids == NAMES == val.wnids
    train_rows = np.concatenate([rows[f"data_batch_{i}"][0] for i in range(1, 6)])
    expected = np.stack([expected_image(row) for row in train_rows]).astype(np.float64)
    assert np.allclose(train.statistics()[0], expected.mean(axis=0), atol=1e-4)
    images, labels = train.read(np.arange(20))
    assert np.array_equal(images, expected.astype(np.uint8))
    assert labels.tolist() == np.concatenate([rows[f"data_batch_{i}"][1] for i in range(1, 6)]).tolist()
    # scaled up for a net that needs larger inputs
    big_train, _ = prepare_cifar10(archive, tmp_path / "prepared-48", size=48)
    assert PreparedSplit(big_train).stored_size == 48


def test_figure1_trains_on_cifar10(cifar, tmp_path):
    archive, _, _ = cifar
    result = subprocess.run([sys.executable, "examples/figure1.py", "--cifar10", str(archive), "--seeds", "1",
                             "--epochs", "1", "--per-class", "2", "--batch-size", "4", "--out", str(tmp_path / "f1")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "10 CIFAR-10" in result.stdout and (tmp_path / "f1" / "figure1.png").stat().st_size > 0
    refused = subprocess.run([sys.executable, "examples/figure1.py", "--cifar10", str(tmp_path / "none.tar.gz")],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr and "does not exist" in refused.stderr


def test_the_training_program_trains_the_builtin_net_on_prepared_cifar10(tmp_path):
    files, _ = make_batches(per_batch=8, test=8)
    archive = write_archive(tmp_path / "cifar-10-python.tar.gz", files)
    prepared = tmp_path / "cifar10"
    made = subprocess.run([sys.executable, "datasets/cifar10.py", str(archive), str(prepared), "--size", "144"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    run = subprocess.run([sys.executable, "examples/train_imagenet.py", "--data", str(prepared), "--net", "builtin",
                          "--epochs", "1", "--batch-size", "8", "--no-plots", "--out", str(tmp_path / "run")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 1
    # the paper's net needs 227-pixel crops, which 144-pixel images cannot give: refused in one line
    paper = subprocess.run([sys.executable, "examples/train_imagenet.py", "--data", str(prepared), "--epochs", "1",
                            "--out", str(tmp_path / "paper")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert paper.returncode != 0 and "smaller than the 227-pixel crops" in paper.stderr
