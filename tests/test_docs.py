"""Every output printed in docs/ comes from code that runs here, and every code excerpt is
checked against the source it names (see "Code excerpts" below), so the docs cannot drift.

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

import ast
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


# Code excerpts. A page that shows code from tinyalex names where it comes from, on the line
# just above the block:
#
#     <!-- excerpt: tinyalex/layers/maxpool.py MaxPool2D.forward_numpy -->
#
# (a dotted name of a function, class or assignment in a .py file; in a .cu file the name of
# a kernel or function, or no name for the whole file). Every line of the block must appear in
# that source, in order, and consecutive lines must be consecutive there (blank lines aside),
# unless a line holding only ``...`` stands between them; a ``...`` inside a line stands for
# any text within that line. A page may add a trailing comment to a line that has none, or
# leave one out, but not change one; it may leave out docstrings and keep them.
# A block that is not taken from the code says what it is instead: ``<!-- usage -->`` (calls a
# reader can type) or ``<!-- sketch -->`` (the outline of code that lives elsewhere, simplified).

EXCERPT = re.compile(r"^<!-- excerpt: (\S+)(?: (\S+))? -->$")
NOT_FROM_CODE = ("<!-- usage -->", "<!-- sketch -->")
CODE_LANGUAGES = {"python", "cuda", "cpp", "c"}
PAGES = sorted((ROOT / "docs").glob("*.md"))
# Pages whose blocks are not marked yet: their test is expected to fail, and fails loudly
# (strict xfail) once they are, so that the page is then taken out of this set.
NOT_YET_MARKED = set()


def code_blocks(text):
    """(marker, language, line number, lines) for every fenced block of ``text``."""
    lines = text.splitlines()
    found, i = [], 0
    while i < len(lines):
        match = re.match(r"^```(\w*)\s*$", lines[i])
        if not match:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        above = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
        found.append((above, match.group(1), i + 1, lines[i + 1:end]))
        i = end + 1
    return found


def python_region(source, dotted):
    """The lines of the function, class or assignment ``dotted`` (e.g. "LRN.forward_numpy"):
    as they are, and without their docstrings (which an excerpt may leave out)."""
    node = ast.parse(source)
    body = node.body
    for part in dotted.split(".") if dotted else ():
        node = next((n for n in body if getattr(n, "name", None) == part
                     or any(getattr(t, "id", None) == part
                            for t in getattr(n, "targets", [getattr(n, "target", None)]))), None)
        assert node is not None, f"no {part!r} in the source (looking for {dotted})"
        body = getattr(node, "body", [])
    lines = source.splitlines()
    if not dotted:
        node.lineno, node.end_lineno = 1, len(lines)
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    while first > 1 and lines[first - 2].lstrip().startswith("#"):   # the comment above it
        first -= 1
    docstrings = {line for n in ast.walk(node) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))
                  and ast.get_docstring(n) is not None
                  for line in range(n.body[0].lineno, n.body[0].end_lineno + 1)}
    return ([lines[i - 1] for i in range(first, node.end_lineno + 1)],
            [lines[i - 1] for i in range(first, node.end_lineno + 1) if i not in docstrings])


def c_region(source, name):
    """The lines of the C function ``name``: from its signature to its closing brace."""
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if re.search(rf"\b{re.escape(name)}\s*\(", line)), None)
    assert start is not None, f"no function {name!r} in the source"
    depth, opened = 0, False
    for end in range(start, len(lines)):
        depth += lines[end].count("{") - lines[end].count("}")
        opened = opened or "{" in lines[end]
        if opened and depth == 0:
            return lines[start:end + 1]
    return lines[start:]


def split_comment(line):
    match = re.search(r"\s{2,}(#|//)", line)
    return (line[:match.start()], True) if match else (line, False)


def line_matches(shown, real):
    if "..." in shown:
        pattern = ".*".join(re.escape(part) for part in shown.split("..."))
        if re.fullmatch(pattern, real):
            return True
    if shown == real:
        return True
    # a trailing comment on one side only: the page added or left out a note
    (shown_code, shown_note), (real_code, real_note) = split_comment(shown), split_comment(real)
    return shown_note != real_note and shown_code.rstrip() == real_code.rstrip()


def excerpt_problem(shown_lines, source_lines):
    """None when ``shown_lines`` appear in ``source_lines`` (see above), else what is wrong."""
    real = [line.strip() for line in source_lines if line.strip()]
    segments = [[]]
    for line in (line.strip() for line in shown_lines if line.strip()):
        if line == "...":
            segments.append([])
        else:
            segments[-1].append(line)
    at = 0
    for segment in filter(None, segments):
        for start in range(at, len(real) - len(segment) + 1):
            if all(line_matches(s, r) for s, r in zip(segment, real[start:])):
                at = start + len(segment)
                break
        else:
            # name the line where the longest run that starts right diverges from the source
            def run(start):
                return next((i for i, (s, r) in enumerate(zip(segment, real[start:])) if not line_matches(s, r)),
                            len(real) - start)
            best = max(range(at, len(real)), key=run, default=at)
            if at >= len(real) or run(best) == 0:
                return f"this line is not in the source (after what comes before it): {segment[0]!r}"
            return (f"after {segment[run(best) - 1]!r} the source has {real[best + run(best)] if best + run(best) < len(real) else 'nothing'!r}"
                    f", the page {segment[run(best)]!r} (mark a gap with a line '...')")
    return None


def check_page(page):
    problems = []
    for marker, language, number, lines in code_blocks(page.read_text()):
        if language not in CODE_LANGUAGES or marker in NOT_FROM_CODE:
            continue
        match = EXCERPT.match(marker)
        if not match:
            problems.append(f"{page.name}:{number}: a {language} block without '<!-- excerpt: FILE NAME -->' "
                            "or <!-- usage --> or <!-- sketch --> on the line above it")
            continue
        path, name = ROOT / match.group(1), match.group(2)
        if not path.exists():
            problems.append(f"{page.name}:{number}: {match.group(1)} does not exist")
            continue
        source = path.read_text()
        try:
            regions = (python_region(source, name) if path.suffix == ".py"
                       else [c_region(source, name) if name else source.splitlines()])
        except AssertionError as error:
            problems.append(f"{page.name}:{number}: {error}")
            continue
        problem = next((problem for problem in map(lambda region: excerpt_problem(lines, region), regions)
                        if problem is None), excerpt_problem(lines, regions[-1]))
        if problem:
            problems.append(f"{page.name}:{number} ({match.group(1)} {name or ''}): {problem}")
    return problems


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.xfail(
    reason="its code blocks are not marked yet", strict=True)) if p.name in NOT_YET_MARKED else p
    for p in PAGES], ids=[p.stem for p in PAGES])
def test_code_excerpts_are_in_their_source(page):
    problems = check_page(page)
    assert not problems, "\n".join(problems)


def test_a_changed_line_is_caught():
    # the checker itself: a real excerpt passes, the same excerpt with one changed line fails
    source = (ROOT / "tinyalex/sgd.py").read_text()
    region = python_region(source, "update_numpy")[0]
    body = [line for line in region if "v -= lr * grad" in line or "w += v" in line]
    assert len(body) == 2 and excerpt_problem(body, region) is None
    assert excerpt_problem(["v -= lr * grad", "w -= v"], region) is not None
    assert excerpt_problem(["w += v", "v -= lr * grad"], region) is not None       # out of order
    assert excerpt_problem(["real = w.dtype.type", "w += v"], region) is not None  # a gap needs ...
    assert excerpt_problem(["real = w.dtype.type", "...", "w += v"], region) is None
