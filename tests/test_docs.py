"""Every output printed in docs/ comes from code that runs here, so the docs cannot drift.

Each script in docs/snippets/ starts with a line naming the page that shows its output:

    # shown in: docs/introduction.md

The test runs the script and checks that what it prints appears in that page, verbatim.
A script may print several blocks, separated by blank lines, for several places in the
page: each block must appear as it is (trailing spaces aside), in any order. A second line
``# needs: c++`` (or ``nvcc``) names a program the script runs; without it, it is skipped.

Not covered: measured timings (docs/benchmarks.md, the speeds in docs/training.md and
docs/data.md) and the results of training runs (docs/results.md, the built-in run in
docs/training.md). They depend on the machine, its load and its BLAS library's threads,
and take minutes, so no test could reproduce them; each is given with the command that
measured it and the hardware it ran on instead.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = sorted((ROOT / "docs" / "snippets").glob("*.py"))
HEADER = re.compile(r"^# shown in: (\S+\.md)$")
NEEDS = re.compile(r"^# needs: (\S+)$")


def page_of(snippet):
    first_line = snippet.read_text().splitlines()[0]
    match = HEADER.match(first_line)
    assert match, f"{snippet.name}: the first line must be '# shown in: docs/<page>.md', got {first_line!r}"
    return ROOT / match.group(1)


def blocks(text):
    """The blank-line-separated blocks of ``text``, trailing spaces removed from each line."""
    lines = [line.rstrip() for line in text.splitlines()]
    return [block.strip("\n") for block in "\n".join(lines).split("\n\n") if block.strip()]


def test_there_are_snippets():
    # a moved or renamed folder would otherwise leave nothing to check, and pass
    assert SNIPPETS, "no scripts found in docs/snippets/"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.stem for s in SNIPPETS])
def test_snippet_output_is_in_its_page(snippet):
    page = page_of(snippet)
    assert page.exists(), f"{snippet.name} names {page}, which does not exist"
    needs = NEEDS.match(snippet.read_text().splitlines()[1])
    if needs and shutil.which(needs.group(1)) is None:
        pytest.skip(f"{snippet.name} needs {needs.group(1)}, which is not on the PATH")
    result = subprocess.run([sys.executable, str(snippet)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"{snippet.name} failed:\n{result.stderr}"
    printed = blocks(result.stdout)
    assert printed, f"{snippet.name} printed nothing"
    shown = "\n".join(line.rstrip() for line in page.read_text().splitlines())
    for block in printed:
        assert block in shown, (f"{page.relative_to(ROOT)} does not show this output of "
                                f"docs/snippets/{snippet.name} (run it and paste its output):\n{block}")


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.stem for s in SNIPPETS])
def test_page_links_its_snippet(snippet):
    # a reader of the page should find the code behind the numbers
    assert f"snippets/{snippet.name}" in page_of(snippet).read_text()
