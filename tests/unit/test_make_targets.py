"""What `make test` and `make test-gpu` select: the marker expressions of the
Makefile's pytest lines, given to pytest's own collection (nothing runs).

The gpu suite fails on a host without a GPU by design (tests/gpu/conftest.py),
and the conda suite needs a conda channel: `make test` must leave both out,
and `make test-gpu` must select every gpu test."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def marker_expression(target: str) -> tuple[str, list[str]]:
    """The -m expression and the paths of the pytest line in ``target``'s recipe."""
    recipe = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    [line] = [line for line in recipe.splitlines() if "-m pytest" in line]
    expression = re.search(r'-m "([^"]+)"|-m (\S+)', line.split("-m pytest", 1)[1])
    paths = [word for word in line.split() if word.startswith("tests/")]
    return expression.group(1) or expression.group(2), paths


def collected(expression: str, *paths: str) -> tuple[int, int]:
    """(selected, deselected) test counts under ``paths``."""
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", expression, *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = r.stdout.strip().splitlines()[-1]
    selected = re.search(r"(\d+)(?:/\d+)? tests? collected", summary)
    deselected = re.search(r"(\d+) deselected", summary)
    return (int(selected.group(1)) if selected else 0, int(deselected.group(1)) if deselected else 0)


def test_make_test_selects_neither_the_gpu_nor_the_conda_suite():
    expression, paths = marker_expression("test")
    assert paths == []  # every test path (pyproject's testpaths)
    selected, deselected = collected(expression, "tests/gpu", "tests/conda")
    assert selected == 0 and deselected > 0
    assert collected(expression, "tests/integration/test_gpus.py")[0] > 0  # the GPU seam tests do run


def test_make_test_gpu_selects_every_gpu_test():
    expression, paths = marker_expression("test-gpu")
    assert paths == ["tests/gpu"]
    selected, deselected = collected(expression, *paths)
    assert selected > 0 and deselected == 0
