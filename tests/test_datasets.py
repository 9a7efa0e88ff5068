"""Tests of the data preparation (tinyalex/datasets/ and the datasets/ programs) on small
folders made here.

What they check: odd and broken files are converted or skipped and reported;
the HDF5 layout; the colour statistics against a direct NumPy computation; flat
validation folders with each labels format, and the errors for labels that do
not match; that a killed preparation resumes to exactly the file an
uninterrupted run writes; and that the synthetic data set is deterministic and
cannot be classified by colour alone.
"""

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from tinyalex.datasets import DatasetError, IncompleteFileError, is_complete, open_prepared, prepare
from tinyalex.datasets.images import to_rgb
from tinyalex.datasets.prepare import prepare_imagenet, prepare_split
from tinyalex.datasets.stats import rgb_eigen_of
from tinyalex.datasets import synthetic
from tinyalex.datasets.synthetic import CLASSES, ensure_builtin_dataset, make_synthetic_imagenet, save_montage

REPO = Path(__file__).resolve().parent.parent
WNIDS = ["n00000001", "n00000002", "n00000003"]


# ---------------------------------------------------------------------------
# Helpers that write small image folders.


def save(image, path, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)


def plain_jpeg(path, colour, size=(300, 200)):
    save(Image.new("RGB", size, colour), path, quality=95)


def jpeg_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def striped(size, seed):
    """An RGB image with random vertical stripes, so that images differ."""
    rng = np.random.default_rng(seed)
    columns = rng.integers(0, 256, size=(size[0], 3), dtype=np.uint8)
    return Image.fromarray(np.broadcast_to(columns, (size[1], size[0], 3)).copy())


def transparent_palette_image():
    """Left half palette index 0, transparent; right half index 1, blue."""
    indices = np.zeros((200, 300), dtype=np.uint8)
    indices[:, 150:] = 1
    image = Image.fromarray(indices, mode="P")
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.info["transparency"] = 0
    return image


def make_odd_folder(src):
    """A train/ folder with one file of each awkward kind in class n00000002."""
    for i in range(3):
        save(striped((320, 240), seed=i), src / "train" / WNIDS[0] / f"normal_{i}.JPEG", quality=95)
        save(striped((240, 360), seed=10 + i), src / "train" / WNIDS[2] / f"normal_{i}.JPEG", quality=95)
    odd = src / "train" / WNIDS[1]
    odd.mkdir(parents=True)
    (odd / "corrupt.JPEG").write_bytes(jpeg_bytes(striped((300, 300), seed=5))[:2000])
    save(Image.new("CMYK", (300, 240), (0, 255, 255, 0)), odd / "cmyk.JPEG", quality=95)  # red
    save(Image.new("L", (260, 300), 100), odd / "grey.png")
    save(Image.new("RGBA", (300, 260), (255, 0, 0, 128)), odd / "rgba.png")
    save(transparent_palette_image(), odd / "palette.png")
    save(Image.fromarray(np.full((260, 300), 128 * 257, dtype=np.uint16)), odd / "grey16.png")
    tiny = np.zeros((16, 16, 3), dtype=np.uint8)
    tiny[:, 8:] = 255
    save(Image.fromarray(tiny), odd / "tiny.png")
    (odd / "notes.txt").write_text("not an image")
    (src / "words.txt").write_text("n00000001\tfirst class\nn00000002\tsecond class\n")


def read_all(path):
    """Every dataset of a prepared file, as arrays (strings as str)."""
    with open_prepared(path) as file:
        return {name: file[name].asstr()[...] if file[name].dtype == object else file[name][...] for name in file}


def row_of(data, name):
    return list(data["filenames"]).index(name)


@pytest.fixture(scope="module")
def odd_prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd")
    make_odd_folder(root / "src")
    path = prepare_split(root / "src", root / "out", "train", workers=1)
    return root, read_all(path)


# ---------------------------------------------------------------------------
# Odd files, layout and statistics.


def test_broken_and_non_image_files_are_skipped_and_reported(odd_prepared):
    root, data = odd_prepared
    report = (root / "out" / "train_skipped.txt").read_text().splitlines()
    assert len(report) == 2
    by_name = {Path(line.split("\t")[0]).name: line.split("\t")[1] for line in report}
    assert "truncated" in by_name["corrupt.JPEG"]
    assert "not an image file" in by_name["notes.txt"]
    assert str(root / "src" / "train" / WNIDS[1] / "corrupt.JPEG") in "\n".join(report)
    skipped_names = sorted(line.split("\t")[0] for line in data["skipped"])
    assert skipped_names == [f"{WNIDS[1]}/corrupt.JPEG", f"{WNIDS[1]}/notes.txt"]


def test_layout_shapes_and_types(odd_prepared):
    _, data = odd_prepared
    n = 6 + 6  # six normal images, six readable odd ones
    assert data["images"].shape == (n, 256, 256, 3) and data["images"].dtype == np.uint8
    assert data["labels"].shape == (n,) and data["labels"].dtype == np.int64
    assert list(data["labels"]) == [0] * 3 + [1] * 6 + [2] * 3
    assert list(data["wnids"]) == WNIDS
    assert list(data["class_names"]) == ["first class", "second class", WNIDS[2]]
    assert data["mean_image"].shape == (256, 256, 3) and data["mean_image"].dtype == np.float32
    assert data["rgb_eigenvalues"].shape == (3,) and data["rgb_eigenvectors"].shape == (3, 3)
    with h5py.File(odd_prepared[0] / "out" / "train.h5") as file:
        assert file["images"].chunks == (1, 256, 256, 3) and file["images"].compression is None
        assert file.attrs["complete"] and file.attrs["split"] == "train" and file.attrs["num_classes"] == 3


def test_colour_modes_come_out_as_the_expected_rgb(odd_prepared):
    _, data = odd_prepared

    def pixel(name, y=128, x=128):
        return data["images"][row_of(data, f"{WNIDS[1]}/{name}")][y, x].astype(int)

    assert np.abs(pixel("cmyk.JPEG") - [255, 0, 0]).max() <= 6
    assert list(pixel("grey.png")) == [100, 100, 100]
    assert list(pixel("grey16.png")) == [128, 128, 128]  # not clipped to 255
    assert np.abs(pixel("rgba.png") - [255, 127, 127]).max() <= 1  # half red over white
    assert list(pixel("palette.png", x=40)) == [255, 255, 255]  # transparent -> white
    assert list(pixel("palette.png", x=220)) == [0, 0, 255]


def test_tiny_image_is_scaled_up(odd_prepared):
    _, data = odd_prepared
    tiny = data["images"][row_of(data, f"{WNIDS[1]}/tiny.png")]
    assert tiny[:, :100].max() <= 3 and tiny[:, 156:].min() >= 252  # black left half, white right half


def test_other_image_sizes(tmp_path):
    make_val_source(tmp_path / "src")
    data = read_all(prepare_split(tmp_path / "src", tmp_path / "out", "train", size=64, workers=1))
    assert data["images"].shape == (3, 64, 64, 3) and data["mean_image"].shape == (64, 64, 3)


@pytest.mark.parametrize("mode, value, expected", [
    ("1", 1, (255, 255, 255)),
    ("L", 37, (37, 37, 37)),
    ("LA", (37, 0), (255, 255, 255)),
    ("LA", (37, 255), (37, 37, 37)),
    ("I;16", 65535, (255, 255, 255)),
    ("I;16", 257 * 37, (37, 37, 37)),
    ("I", 257 * 200, (200, 200, 200)),
    ("RGBA", (10, 20, 30, 255), (10, 20, 30)),
    ("CMYK", (0, 0, 0, 255), (0, 0, 0)),
])
def test_to_rgb(mode, value, expected):
    rgb = to_rgb(Image.new(mode, (4, 4), value))
    assert rgb.mode == "RGB" and rgb.getpixel((1, 1)) == expected


def test_statistics_match_a_direct_numpy_computation(odd_prepared):
    _, data = odd_prepared
    images = data["images"]
    pixels = images.reshape(-1, 3).astype(np.float64)
    covariance = np.cov(pixels, rowvar=False, bias=True)
    values, vectors = np.linalg.eigh(covariance)
    assert np.allclose(data["mean_image"], images.mean(axis=0), rtol=1e-6, atol=1e-4)
    assert np.allclose(data["rgb_mean"], pixels.mean(axis=0), rtol=1e-12)
    assert np.allclose(data["rgb_covariance"], covariance, rtol=1e-9)
    assert np.allclose(data["rgb_eigenvalues"], values[::-1], rtol=1e-9)
    # Same eigenvectors up to sign: |p_file . p_direct| = 1 for matching pairs.
    assert np.allclose(np.abs(data["rgb_eigenvectors"].T @ vectors[:, ::-1]), np.eye(3), atol=1e-9)
    assert np.allclose(covariance @ data["rgb_eigenvectors"], data["rgb_eigenvectors"] * data["rgb_eigenvalues"])


def test_eigenvector_signs_are_fixed():
    values, vectors = rgb_eigen_of(np.diag([1.0, 3.0, 2.0]))
    assert list(values) == [3.0, 2.0, 1.0]
    assert np.allclose(vectors, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    _, flipped = rgb_eigen_of(-np.diag([-1.0, -3.0, -2.0]))
    assert np.allclose(flipped, vectors)


# ---------------------------------------------------------------------------
# Validation folders and labels files.


def make_val_source(src):
    """train/ with three classes; val/ flat with six images of known classes."""
    for label, wnid in enumerate(WNIDS):
        plain_jpeg(src / "train" / wnid / "a.JPEG", (label * 100, 0, 0))
    val_labels = [2, 0, 1, 1, 0, 2]
    for i, label in enumerate(val_labels):
        plain_jpeg(src / "val" / f"val_{i:04d}.JPEG", (label * 100, 50, 50))
    return val_labels


def test_flat_val_with_ground_truth_file(tmp_path):
    val_labels = make_val_source(tmp_path / "src")
    labels_file = tmp_path / "ground_truth.txt"
    labels_file.write_text("".join(f"{label + 1}\n" for label in val_labels))
    paths = prepare_imagenet(tmp_path / "src", tmp_path / "out", val_labels=labels_file, workers=1)
    data = read_all(paths["val"])
    assert list(data["filenames"]) == [f"val_{i:04d}.JPEG" for i in range(6)]
    assert list(data["labels"]) == val_labels
    assert "mean_image" not in data
    assert list(read_all(paths["train"])["labels"]) == [0, 1, 2]


def test_ground_truth_file_with_its_own_class_order(tmp_path):
    val_labels = make_val_source(tmp_path / "src")
    synsets = [WNIDS[2], WNIDS[0], WNIDS[1]]  # index 1 means n00000003, ...
    (tmp_path / "synsets.txt").write_text("".join(f"{wnid} some name\n" for wnid in synsets))
    (tmp_path / "gt.txt").write_text("".join(f"{synsets.index(WNIDS[label]) + 1}\n" for label in val_labels))
    path = prepare_split(tmp_path / "src", tmp_path / "out", "val", val_labels=tmp_path / "gt.txt",
                         val_synsets=tmp_path / "synsets.txt", workers=1)
    assert list(read_all(path)["labels"]) == val_labels


@pytest.mark.parametrize("header", ["", "ImageId,PredictionString\n"])
def test_flat_val_with_csv(tmp_path, header):
    val_labels = make_val_source(tmp_path / "src")
    # Shuffled rows; some names without extension, a wnid followed by box numbers.
    rows = [f"val_{i:04d}{'.JPEG' if i % 2 else ''},{WNIDS[label]} 1 2 3 4" for i, label in enumerate(val_labels)]
    (tmp_path / "labels.csv").write_text(header + "\n".join(rows[::-1]) + "\n")
    path = prepare_split(tmp_path / "src", tmp_path / "out", "val", val_labels=tmp_path / "labels.csv", workers=1)
    assert list(read_all(path)["labels"]) == val_labels


@pytest.mark.parametrize("labels_text, message", [
    ("1\n2\n3\n", "3 labels for 6 image files"),
    ("1\n2\n3\n1\n2\n9\n", "line 6: '9' is not a class index from 1 to 3"),
    ("1\n2\n3\n1\n2\nx\n", "line 6: 'x' is not a class index"),
    ("val_0000.JPEG,n00000001\nval_0001.JPEG,n09999999\n", "has class 'n09999999'"),
    ("val_0000.JPEG,n00000001\nmissing.JPEG,n00000001\n", "lists 'missing.JPEG', which is not an image file"),
    ("val_0000.JPEG,n00000001\nval_0001.JPEG,n00000001\n", "4 of 6 image files have no label"),
    ("val_0000.JPEG,n00000001\nval_0000.JPEG,n00000002\n", "listed twice"),
])
def test_labels_that_do_not_match_the_images(tmp_path, labels_text, message):
    make_val_source(tmp_path / "src")
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text(labels_text)
    with pytest.raises(DatasetError, match=message) as error:
        prepare_split(tmp_path / "src", tmp_path / "out", "val", val_labels=labels_file, workers=1)
    assert str(labels_file) in str(error.value)


def test_folder_errors_name_the_folder(tmp_path):
    make_val_source(tmp_path / "src")
    with pytest.raises(DatasetError, match="labels file"):
        prepare_split(tmp_path / "src", tmp_path / "out", "val")
    with pytest.raises(DatasetError, match="labels.txt: labels file not found"):
        prepare_split(tmp_path / "src", tmp_path / "out", "val", val_labels=tmp_path / "labels.txt")
    with pytest.raises(DatasetError, match="nowhere.*train.*not found"):
        prepare_split(tmp_path / "nowhere", tmp_path / "out", "train")
    (tmp_path / "src" / "train" / "n00000004").mkdir()
    (tmp_path / "src" / "train" / "n00000004" / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="n00000004: class folder holds no image files"):
        prepare_split(tmp_path / "src", tmp_path / "out", "train")
    plain_jpeg(tmp_path / "src" / "val" / "n00000009" / "a.JPEG", (0, 0, 0))
    with pytest.raises(DatasetError, match="class n00000009 is not among the train/ class folders"):
        prepare_split(tmp_path / "src", tmp_path / "out", "val")


def test_val_is_checked_before_train_is_decoded(tmp_path):
    make_val_source(tmp_path / "src")
    with pytest.raises(DatasetError, match="give its labels file"):
        prepare_imagenet(tmp_path / "src", tmp_path / "out", workers=1)
    assert not (tmp_path / "out" / "train.h5.partial").exists() and not (tmp_path / "out" / "train.h5").exists()


def run_program(name, *args):
    """Runs datasets/<name>.py the way the README shows."""
    return subprocess.run([sys.executable, str(REPO / "datasets" / f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_command_line_reports_errors_without_a_traceback(tmp_path):
    done = run_program("prepare", tmp_path / "nowhere", tmp_path / "out")
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr


# ---------------------------------------------------------------------------
# Completion and resuming.


def resume_source(root):
    """Three synthetic classes plus a corrupt file in the middle of class 2."""
    src = make_synthetic_imagenet(root / "src", num_classes=3, train_per_class=6, val_per_class=1, seed=3)
    (src / "train" / "n00000001" / "n00000001_2b.JPEG").write_bytes(b"\xff\xd8 broken")
    return src


def assert_same_prepared_file(path_a, path_b):
    a, b = read_all(path_a), read_all(path_b)
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name  # exactly equal, statistics included


def test_killed_preparation_resumes_to_the_same_file(tmp_path, capsys):
    src = resume_source(tmp_path)
    reference = prepare_split(src, tmp_path / "reference", "train", workers=1)
    # A separate process that kills itself (SIGKILL: no clean-up at all) while
    # decoding its 9th file; checkpoints come every 4 files.
    script = textwrap.dedent(f"""
        import os, signal
        import tinyalex.datasets.prepare as prepare
        real_load_image, calls = prepare.load_image, []
        def load_image_then_die(path, size):
            calls.append(path)
            if len(calls) == 9:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_load_image(path, size)
        prepare.load_image = load_image_then_die
        prepare.prepare_split({str(src)!r}, {str(tmp_path / "out")!r}, "train", workers=1, checkpoint_every=4)
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()

    out = tmp_path / "out"
    assert not (out / "train.h5").exists() and (out / "train.rows.partial").exists()
    assert not is_complete(out / "train.rows.partial")
    with pytest.raises(IncompleteFileError, match="interrupted"):
        open_prepared(out / "train.h5")
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        open_prepared(out / "train.rows.partial")

    capsys.readouterr()
    resumed = prepare_split(src, out, "train", workers=1, checkpoint_every=4)
    assert "resuming after 8 of 19 files" in capsys.readouterr().out
    assert_same_prepared_file(resumed, reference)
    assert not (out / "train.checkpoint.npz").exists() and not (out / "train.h5.partial").exists()
    assert not (out / "train.rows.partial").exists()
    assert (out / "train_skipped.txt").read_text() == (tmp_path / "reference" / "train_skipped.txt").read_text()


def test_interrupted_parallel_preparation_resumes(tmp_path, monkeypatch, capsys):
    src = resume_source(tmp_path)
    reference = prepare_split(src, tmp_path / "reference", "train", workers=1)
    real_add_image, added = prepare.SplitWriter.add_image, []

    def add_image_then_stop(self, *args):
        added.append(1)
        if len(added) == 11:
            raise KeyboardInterrupt
        real_add_image(self, *args)

    monkeypatch.setattr(prepare, "CHUNKSIZE", 2)  # use worker processes even for 19 files
    monkeypatch.setattr(prepare.SplitWriter, "add_image", add_image_then_stop)
    with pytest.raises(KeyboardInterrupt):
        prepare_split(src, tmp_path / "out", "train", workers=2, checkpoint_every=5)
    monkeypatch.setattr(prepare.SplitWriter, "add_image", real_add_image)
    capsys.readouterr()
    resumed = prepare_split(src, tmp_path / "out", "train", workers=2, checkpoint_every=5)
    assert "resuming after 10 of 19 files" in capsys.readouterr().out
    assert_same_prepared_file(resumed, reference)


def test_changed_folder_is_not_resumed(tmp_path, monkeypatch):
    src = resume_source(tmp_path)

    def stop_before_finishing(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare.SplitWriter, "finish", stop_before_finishing)
    with pytest.raises(KeyboardInterrupt):
        prepare_split(src, tmp_path / "out", "train", workers=1)
    monkeypatch.undo()
    (src / "train" / "n00000000" / "n00000000_0.JPEG").unlink()
    with pytest.raises(DatasetError, match="train.checkpoint.npz belongs to a preparation of other files"):
        prepare_split(src, tmp_path / "out", "train", workers=1)


def test_complete_file_is_not_prepared_again(tmp_path, capsys):
    make_val_source(tmp_path / "src")
    path = prepare_split(tmp_path / "src", tmp_path / "out", "train", workers=1)
    modified = path.stat().st_mtime_ns
    capsys.readouterr()
    assert prepare_split(tmp_path / "src", tmp_path / "out", "train", workers=1) == path
    assert "already complete" in capsys.readouterr().out
    assert path.stat().st_mtime_ns == modified


def test_file_not_marked_complete_is_refused(tmp_path):
    with h5py.File(tmp_path / "train.h5", "w") as file:
        file["labels"] = np.zeros(3)
    assert not is_complete(tmp_path / "train.h5")
    with pytest.raises(IncompleteFileError, match="not a complete prepared file"):
        open_prepared(tmp_path / "train.h5")
    with pytest.raises(DatasetError, match="no such prepared file"):
        open_prepared(tmp_path / "val.h5")


# ---------------------------------------------------------------------------
# The synthetic data set.


def all_files(root):
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_synthetic_layout_and_determinism(tmp_path):
    def make(folder, seed):
        return all_files(make_synthetic_imagenet(tmp_path / folder, 4, train_per_class=3, val_per_class=2, seed=seed))

    first, again, other = make("a", seed=7), make("b", seed=7), make("c", seed=8)
    assert first == again
    assert first.keys() == other.keys() and first != other
    train = sorted(name for name in first if name.startswith("train/"))
    assert train[:3] == [f"train/n00000000/n00000000_{i}.JPEG" for i in range(3)] and len(train) == 12
    val = sorted(name for name in first if name.startswith("val/"))
    assert val == [f"val/synthetic_val_{j:08d}.JPEG" for j in range(1, 9)]
    truth = [int(line) for line in first["val_ground_truth.txt"].decode().split()]
    assert sorted(truth) == [1, 1, 2, 2, 3, 3, 4, 4]
    assert first["words.txt"].decode().splitlines()[3] == "n00000003\tplus cross"
    sizes = {Image.open(tmp_path / "a" / name).size for name in train}
    assert len(sizes) > 3 and all(180 <= side <= 400 for size in sizes for side in size)
    with pytest.raises(DatasetError, match="not empty"):
        make_synthetic_imagenet(tmp_path / "a")


# a small built-in data set; docs/snippets/data_features.py prints what these tests measure on it
SMALL_BUILTIN = dict(num_classes=10, train_per_class=30, val_per_class=20, seed=1)


@pytest.fixture(scope="module")
def builtin(tmp_path_factory):
    root = tmp_path_factory.mktemp("builtin")
    paths = ensure_builtin_dataset(root, **SMALL_BUILTIN, workers=2)
    return root, paths, read_all(paths[0]), read_all(paths[1])


def nearest_class_mean_accuracy(train_features, train_labels, val_features, val_labels):
    classes = np.unique(train_labels)
    means = np.stack([train_features[train_labels == k].mean(axis=0) for k in classes])
    distances = ((val_features[:, None, :] - means[None, :, :]) ** 2).sum(axis=-1)
    return np.mean(classes[distances.argmin(axis=1)] == val_labels)


def mean_colour(images):
    return images.reshape(len(images), -1, 3).mean(axis=1)


def colour_histogram(images):
    """Share of pixels in each of 4x4x4 colour bins."""
    bins = (images // 64).reshape(len(images), -1, 3).astype(np.int64) @ [16, 4, 1]
    return np.stack([np.bincount(b, minlength=64) for b in bins]) / bins.shape[1]


def edge_orientations(images):
    """Share of strong edges in each of 8 orientation bins: a spatial feature blind to colour."""
    grey = images.astype(np.float64).mean(axis=-1)
    dx, dy = np.diff(grey, axis=2)[:, :-1], np.diff(grey, axis=1)[:, :, :-1]
    angle = np.minimum((np.arctan2(dy, dx) % np.pi) / np.pi * 8, 7).astype(np.int64)
    strong = np.hypot(dx, dy) > 20
    counts = np.stack([np.bincount(a[s], minlength=8) for a, s in zip(angle, strong)])
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def test_builtin_dataset_is_prepared_once(builtin, capsys):
    root, paths, train, val = builtin
    assert train["images"].shape == (300, 256, 256, 3) and val["images"].shape == (200, 256, 256, 3)
    assert list(train["class_names"]) == [name for name, _ in CLASSES]
    assert np.bincount(val["labels"]).tolist() == [20] * 10
    modified = [path.stat().st_mtime_ns for path in paths]
    assert ensure_builtin_dataset(root, **SMALL_BUILTIN) == paths
    assert [path.stat().st_mtime_ns for path in paths] == modified


def test_colour_alone_does_not_tell_the_classes_apart(builtin):
    _, _, train, val = builtin
    chance = 1 / 10
    for feature in (mean_colour, colour_histogram):
        accuracy = nearest_class_mean_accuracy(feature(train["images"]), train["labels"],
                                               feature(val["images"]), val["labels"])
        assert accuracy < 2 * chance, feature.__name__
    # ... while a crude spatial feature does, so the labels match what is drawn.
    accuracy = nearest_class_mean_accuracy(edge_orientations(train["images"]), train["labels"],
                                           edge_orientations(val["images"]), val["labels"])
    assert accuracy > 2 * chance


def test_colours_differ_by_the_contrast_around_a_middle_colour():
    rng = np.random.default_rng(0)
    pairs = np.array([synthetic.contrasting_colours(rng) for _ in range(500)])  # (500, 2, 3)
    distance = np.linalg.norm(pairs[:, 0] - pairs[:, 1], axis=1)
    middle = pairs.mean(axis=1)
    assert synthetic.CONTRAST[0] <= distance.min() and distance.max() <= synthetic.CONTRAST[1]
    assert synthetic.MIDDLE[0] <= middle.min() and middle.max() <= synthetic.MIDDLE[1]
    assert pairs.min() >= 0 and pairs.max() <= 255
    # background and foreground follow one distribution: neither is the brighter one
    assert 0.45 < np.mean(pairs[:, 0].sum(axis=1) > pairs[:, 1].sum(axis=1)) < 0.55


def stripe_period(mask):
    """The period in pixels of horizontal stripes in a mask, from the peak of the row profile's spectrum."""
    rows = mask.any(axis=1)
    profile = mask[rows].mean(axis=1) - mask[rows].mean()
    spectrum = np.abs(np.fft.rfft(profile, n=4096))
    return 4096 / (1 + np.argmax(spectrum[1:]))


@pytest.mark.parametrize("side", [180, 400])
def test_texture_scale_follows_the_central_square(side):
    # preparation shrinks the central square to the prepared size, so stripes drawn as a
    # share of it end up the same number of pixels apart in every prepared image
    low, high = synthetic.STRIPE_PERIOD
    for seed in range(5):
        period = stripe_period(synthetic.horizontal_stripes(np.random.default_rng(seed), side, side, (0, 0, side)))
        assert 0.9 * low * side <= period <= 1.1 * high * side, (seed, period)


def test_montage(tmp_path):
    save_montage(tmp_path / "montage.png", num_classes=3, per_class=2, tile=40)
    assert Image.open(tmp_path / "montage.png").size == (140 + 2 * 40, 3 * 40)
