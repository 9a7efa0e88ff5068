"""The pictures of the layer chapters are made by scripts in docs/img/, so they can be
remade after a change to the code they draw. Each script runs here into a temporary
folder; the test checks that it writes a readable PNG of a sensible size (pixels are not
compared: fonts differ between machines) and that the chapter shows the picture and
links its script."""

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

# chapter -> (script, picture)
FIGURES = {
    "relu.md": ("make_relu_figure.py", "relu.png"),
    "convolution.md": ("make_im2col_figure.py", "im2col.png"),
    "lrn.md": ("make_lrn_figure.py", "lrn.png"),
    "pooling.md": ("make_pooling_figure.py", "pooling.png"),
    "dropout.md": ("make_dropout_figure.py", "dropout.png"),
    "softmax.md": ("make_softmax_figure.py", "softmax.png"),
    "sgd.md": ("make_sgd_figure.py", "sgd.png"),
}
MAX_BYTES = 150_000


@pytest.mark.parametrize("chapter", FIGURES, ids=[page[:-3] for page in FIGURES])
def test_script_makes_its_picture(chapter, tmp_path):
    script, picture = FIGURES[chapter]
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "img" / script), str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{script} failed:\n{result.stderr}"
    made = tmp_path / picture
    assert made.exists(), f"{script} did not write {picture} into the folder it was given"
    with Image.open(made) as image:
        assert image.format == "PNG"
        image.verify()            # a truncated or corrupt file raises here
    with Image.open(made) as image:
        width, height = image.size
    assert 400 <= width <= 2000 and 250 <= height <= 1500, f"{picture} is {width} x {height} pixels"
    assert made.stat().st_size <= MAX_BYTES, f"{picture} is {made.stat().st_size} bytes"


@pytest.mark.parametrize("chapter", FIGURES, ids=[page[:-3] for page in FIGURES])
def test_chapter_shows_its_picture(chapter):
    script, picture = FIGURES[chapter]
    text = (ROOT / "docs" / chapter).read_text()
    assert f"](img/{picture})" in text, f"docs/{chapter} does not show img/{picture}"
    assert f"img/{script}" in text, f"docs/{chapter} does not name the script that draws its picture"
    committed = ROOT / "docs" / "img" / picture
    assert committed.exists() and committed.stat().st_size <= MAX_BYTES


def test_bad_folder_is_one_line_error(tmp_path):
    script = ROOT / "docs" / "img" / "make_relu_figure.py"
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "missing")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "is not a folder" in result.stderr
