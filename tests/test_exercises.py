"""Every chapter that teaches a part of the paper ends with exercises, and each exercise has a
solution in docs/exercises/<chapter>.py: a function ``exercise_<k>`` that asserts its answer
with tinyalex. This test runs every solution and checks that each chapter's "## Exercises"
section, the last of the page, points to every solution of its file and to no other."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "docs" / "exercises"
CHAPTERS = ("relu", "convolution", "lrn", "pooling", "dropout", "softmax", "sgd", "columns", "data",
            "augmentation", "training")


def load(chapter):
    if str(FOLDER) not in sys.path:
        sys.path.insert(0, str(FOLDER))       # the solutions share gradient_check.py, as when run directly
    spec = importlib.util.spec_from_file_location(f"exercises_{chapter}", FOLDER / f"{chapter}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solutions(chapter):
    return sorted(name for name in vars(load(chapter)) if re.fullmatch(r"exercise_\d+", name))


CASES = [(chapter, name) for chapter in CHAPTERS for name in solutions(chapter)]


@pytest.mark.parametrize("chapter, name", CASES, ids=[f"{c}-{n}" for c, n in CASES])
def test_solution_holds(chapter, name):
    getattr(load(chapter), name)()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_ends_with_its_exercises(chapter):
    text = (ROOT / "docs" / f"{chapter}.md").read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings and headings[-1] == "Exercises", f"docs/{chapter}.md must end with a '## Exercises' section"
    section = text.split("\n## Exercises\n", 1)[1]
    names = solutions(chapter)
    assert 3 <= len(names) <= 5, f"docs/exercises/{chapter}.py has {len(names)} exercises"
    items = re.findall(r"^\d+\. ", section, flags=re.MULTILINE)
    assert len(items) == len(names), f"docs/{chapter}.md lists {len(items)} exercises, its file solves {len(names)}"
    assert f"(exercises/{chapter}.py)" in section, f"docs/{chapter}.md does not link exercises/{chapter}.py"
    assert sorted(set(re.findall(r"`(exercise_\d+)`", section))) == names
