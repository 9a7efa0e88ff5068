"""Faults during data preparation: kill -9 at any moment, orphaned workers, two writers, a
full disk, odd images. Kills are real: separate processes ended with SIGKILL.

Every source here is small (tiny JPEGs prepared at 32 x 32), so each test takes seconds.
"""

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinyalex.datasets import DatasetError, open_prepared
from tinyalex.datasets.images import load_image
from tinyalex.datasets.prepare import prepare_split

REPO = Path(__file__).resolve().parent.parent
SIZE = 32


def make_source(root, classes=3, per_class=12, side=(64, 48)):
    """SRC/train/<wnid>/ with random-noise JPEGs (every image differs) and one broken file."""
    rng = np.random.default_rng(0)
    for k in range(classes):
        folder = root / "train" / f"n{k:08d}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(side[1], side[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"img_{i:03d}.JPEG", quality=90)
    if classes > 1:
        (root / "train" / "n00000001" / "img_005b.JPEG").write_bytes(b"\xff\xd8 not a whole JPEG")
    return root


def make_slow_source(root, classes=2, per_class=60):
    """Large JPEGs (2000 x 1500, one image copied), slow to decode, quick to make."""
    y, x = np.mgrid[0:1500, 0:2000]
    pixels = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    root.mkdir(parents=True)
    Image.fromarray(pixels).save(root / "big.jpg", quality=80)
    data = (root / "big.jpg").read_bytes()
    for k in range(classes):
        folder = root / "train" / f"n{k:08d}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            (folder / f"img_{i:03d}.JPEG").write_bytes(data)
    (root / "big.jpg").unlink()
    return root


def read_all(path):
    with open_prepared(path) as file:
        return {name: file[name].asstr()[...] if file[name].dtype == object else file[name][...] for name in file}


def assert_same_prepared_file(path, reference):
    a, b = read_all(path), read_all(reference)
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def program(*args):
    """The command line of datasets/prepare.py, as the README shows it."""
    return [sys.executable, str(REPO / "datasets" / "prepare.py"), *map(str, args)]


def run_killed_at(out, src, hook, checkpoint_every=5):
    """Runs a preparation in a new process that SIGKILLs itself where ``hook`` says."""
    script = textwrap.dedent("""
        import os, signal
        import numpy as np
        import tinyalex.datasets.prepare as prepare
        def die():
            os.kill(os.getpid(), signal.SIGKILL)
    """) + textwrap.dedent(hook) + textwrap.dedent(f"""
        prepare.prepare_split({str(src)!r}, {str(out)!r}, "train", size={SIZE}, workers=1,
                              checkpoint_every={checkpoint_every})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr


KILL_POINTS = {
    # between two checkpoints, after some rows were written
    "decoding": """
        real, count = prepare.SplitWriter.add_image, [0]
        def add_image(self, *args):
            count[0] += 1
            if count[0] == 13:
                die()
            real(self, *args)
        prepare.SplitWriter.add_image = add_image
    """,
    # half-way through writing a checkpoint file
    "checkpoint": """
        real, count = np.savez, [0]
        def savez(file, **arrays):
            count[0] += 1
            if count[0] == 4:
                file.write(b"PK half a checkpoint")
                file.flush()
                die()
            real(file, **arrays)
        prepare.np.savez = savez
    """,
    # half-way through building the HDF5 file from the rows
    "building": """
        real = prepare.write_prepared
        def write_prepared(path, images, *args, **kwargs):
            shape, blocks = images
            def first_block_then_die():
                yield next(iter(blocks))
                die()
            real(path, (shape, first_block_then_die()), *args, **kwargs)
        prepare.write_prepared = write_prepared
    """,
    # after the rename, before the work files are deleted
    "cleaning up": """
        def remove_leftovers(path):
            die()
        prepare.remove_leftovers = remove_leftovers
    """,
}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    src = make_source(root / "src")
    reference = prepare_split(src, root / "reference", "train", size=SIZE, workers=1)
    return src, reference


def test_kill_at_every_stage_resumes_to_the_same_file(source, tmp_path):
    src, reference = source
    out = tmp_path / "out"
    for point, hook in KILL_POINTS.items():
        run_killed_at(out, src, hook)
        assert not (out / "train.h5").exists() or point == "cleaning up", point
    assert (out / "train.h5").exists() and (out / "train.rows.partial").exists()  # killed before cleaning up
    resumed = prepare_split(src, out, "train", size=SIZE, workers=1)
    assert_same_prepared_file(resumed, reference)
    assert sorted(path.name for path in out.iterdir()) == [".lock", "train.h5", "train_skipped.txt"]


def test_kills_at_random_moments_resume_to_the_same_file(tmp_path):
    """The command line killed again and again after random delays, until it finishes."""
    src = make_slow_source(tmp_path / "src", per_class=20)
    reference = prepare_split(src, tmp_path / "reference", "train", size=SIZE, workers=1)
    out = tmp_path / "out"
    command = program(src, out, "--splits", "train", "--size", SIZE, "--workers", 1, "--checkpoint-every", 3)
    delays = iter(np.random.default_rng(1).uniform(0.4, 1.6, size=10))
    kills = 0
    while True:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        delay = next(delays, None)
        try:
            process.wait(timeout=delay if delay is not None else 120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            kills += 1
            continue
        assert process.returncode == 0, process.stderr.read().decode()
        break
    assert kills > 0  # at least one run was cut short
    assert_same_prepared_file(out / "train.h5", reference)


def files_done(out):
    """How many files the checkpoint in ``out`` counts (0 if there is none yet)."""
    try:
        with np.load(out / "train.checkpoint.npz") as checkpoint:
            return int(checkpoint["files_done"])
    except FileNotFoundError:
        return 0


def children_of(pid):
    tasks = Path(f"/proc/{pid}/task")
    return {int(child) for task in tasks.iterdir() for child in (task / "children").read_text().split()}


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has died; only its exit status is left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_second_preparation_is_refused_and_killed_one_takes_its_workers_along(tmp_path):
    src = make_slow_source(tmp_path / "src")  # slow enough to watch
    out = tmp_path / "out"
    first = subprocess.Popen(program(src, out, "--splits", "train", "--size", SIZE, "--workers", 2,
                                     "--checkpoint-every", 4), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while files_done(out) == 0 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = children_of(first.pid)
        assert len(workers) >= 2 and first.poll() is None, "the first preparation did not start its workers"

        second = subprocess.run(program(src, out, "--splits", "train", "--size", SIZE, "--workers", 1),
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert second.stderr.startswith("error: ") and "in use by a preparation" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers), "workers outlived the preparation that started them"

    finished = subprocess.run(program(src, out, "--splits", "train", "--size", SIZE, "--workers", 1),
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert "resuming after" in finished.stdout
    data = read_all(out / "train.h5")
    assert len(data["images"]) == 120 and (data["images"].reshape(120, -1).std(axis=1) > 10).all()  # none left zero


def limit_file_size(size):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return apply


def test_full_disk_gives_one_message_and_resumes(source, tmp_path):
    """A file size limit stands in for a full disk: writes past it fail as they would there."""
    src, reference = source
    out = tmp_path / "out"
    command = program(src, out, "--splits", "train", "--size", SIZE, "--workers", 1, "--checkpoint-every", 4)
    full = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          preexec_fn=limit_file_size(20 * SIZE * SIZE * 3))   # room for 20 rows of 35
    assert full.returncode == 2, full.stderr
    assert full.stderr.count("error:") == 1 and "no space left" in full.stderr
    assert "Traceback" not in full.stderr and "Exception ignored" not in full.stderr
    assert not (out / "train.checkpoint.npz.tmp").exists()

    # room for every decoded row, but not for the HDF5 file built from them
    rows = len(read_all(reference)["labels"])
    full = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          preexec_fn=limit_file_size(rows * SIZE * SIZE * 3 + 2000))
    assert full.returncode == 2, full.stderr
    assert full.stderr.count("error:") == 1 and "building train.h5 needs about" in full.stderr
    assert "Traceback" not in full.stderr and "Exception ignored" not in full.stderr

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after" in resumed.stdout
    assert_same_prepared_file(out / "train.h5", reference)


def test_output_that_is_a_file_is_refused(source, tmp_path):
    src, _ = source
    (tmp_path / "out").write_text("in the way")
    done = subprocess.run(program(src, tmp_path / "out", "--splits", "train"), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "is a file" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "out").read_text() == "in the way"


def test_damaged_checkpoint_is_explained(source, tmp_path):
    src, _ = source
    out = tmp_path / "out"
    run_killed_at(out, src, KILL_POINTS["decoding"])
    (out / "train.checkpoint.npz").write_bytes(os.urandom(300))
    with pytest.raises(DatasetError, match="train.checkpoint.npz is damaged"):
        prepare_split(src, out, "train", size=SIZE, workers=1)


# Images ------------------------------------------------------------------------------------

def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((48, 64, 3), dtype=np.uint8)
    pixels[:, :32] = 255                                  # as stored: left half white
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6                                      # "rotate 90 degrees clockwise to view"
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = load_image(tmp_path / "phone.jpg", SIZE)
    # viewed upright the white half is on top
    assert shown[:12].mean() > 240 and shown[-12:].mean() < 15


def test_float_and_32_bit_images(tmp_path):
    Image.fromarray(np.full((40, 50), 0.25, dtype=np.float32)).save(tmp_path / "float.tif")
    assert load_image(tmp_path / "float.tif", SIZE)[5, 5].tolist() == [64, 64, 64]   # 0.25 * 255, rounded
    Image.fromarray(np.full((40, 50), 7.5, dtype=np.float32)).save(tmp_path / "hdr.tif")
    with pytest.raises(ValueError, match="only 0..1"):
        load_image(tmp_path / "hdr.tif", SIZE)
    Image.fromarray(np.full((40, 50), 3_000_000, dtype=np.int32)).save(tmp_path / "depth.tif")
    with pytest.raises(ValueError, match="unknown range"):
        load_image(tmp_path / "depth.tif", SIZE)


def test_odd_images_are_skipped_with_a_reason(tmp_path):
    src = tmp_path / "src"
    make_source(src, classes=1, per_class=2)
    Image.fromarray(np.full((40, 50), 3_000_000, dtype=np.int32)).save(src / "train" / "n00000000" / "depth.tif")
    path = prepare_split(src, tmp_path / "out", "train", size=SIZE, workers=1)
    skipped = dict(line.split("\t") for line in read_all(path)["skipped"])
    assert "unknown range" in skipped["n00000000/depth.tif"]
