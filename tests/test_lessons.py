"""The lessons run: every ``lessons/NN_*.py`` executes top to bottom in a real kernel.

For each lesson (jupytext percent format, converted in memory):
- it executes with nbclient + ipykernel ("python3", 120 s per cell) without an error,
- without a warning (a first cell turns warnings raised inside toyfdiv into errors, and
  every stderr output is scanned for "...Warning"),
- (its wall time is printed, not asserted: speed is a benchmark's job, and a
  shared 2-core machine makes a timed test flaky),
- and shows at least one figure (an image output);
its paired ``.ipynb`` has the same cells and no outputs or execution counts; and every
solution script ``lessons/solutions/NN_*.py`` runs to the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ipykernel  # noqa: F401  (the kernel the lessons run in; required, never skipped)
import jupytext
import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]
LESSONS_DIR = ROOT / "lessons"
SOLUTIONS_DIR = LESSONS_DIR / "solutions"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.py"))
NOTEBOOKS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted(SOLUTIONS_DIR.glob("[0-9][0-9]_*.py"))

CELL_TIMEOUT = 120  # per cell
WARNING_RE = re.compile(r"\b\w*Warning\b")

# Injected before the lesson's first cell: warnings raised from toyfdiv's own code become
# errors (the cell fails and names the line). Warnings that toyfdiv attributes to its caller
# (stacklevel=2), and those the lesson's own code triggers, are shown on stderr by Python's
# default filters, where the scan below finds them.
PRELUDE = (
    f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"  # the checkout under test, not an installed copy
    "import warnings\n"
    "warnings.filterwarnings('error', module=r'toyfdiv(\\.|$)')\n"
)


def _ids(paths):
    return [p.stem for p in paths]


def _run_notebook(path: Path):
    nb = jupytext.read(path)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PRELUDE))
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start


def test_lessons_are_found():
    assert LESSONS, f"no lessons/NN_*.py found in {LESSONS_DIR}"


@pytest.mark.parametrize("path", LESSONS, ids=_ids(LESSONS))
def test_lesson_runs_cleanly(path: Path):
    try:
        nb, seconds = _run_notebook(path)
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed to execute:\n{exc}")
    problems, images = [], 0
    for k, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {k}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr" and WARNING_RE.search(out.text):
                problems.append(f"cell {k} printed a warning:\n{out.text.strip()}")
            elif out.output_type in ("display_data", "execute_result") and "image/png" in out.get("data", {}):
                images += 1
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
    assert images >= 1, f"{path.name} shows no figure; show one from toyfdiv.plots"
    print(f"{path.name}: {seconds:.1f} s")


@pytest.mark.parametrize("path", LESSONS, ids=_ids(LESSONS))
def test_notebook_is_in_sync_with_its_source(path: Path):
    ipynb = path.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `jupytext --to ipynb {path.relative_to(ROOT)}`"
    regenerated = jupytext.read(path)
    committed = nbformat.read(ipynb, as_version=4)
    want = [(c.cell_type, c.source) for c in regenerated.cells]
    have = [(c.cell_type, c.source) for c in committed.cells]
    assert have == want, (f"{ipynb.name} is out of sync with {path.name}: "
                          f"run `jupytext --to ipynb {path.relative_to(ROOT)}`")
    for k, cell in enumerate(committed.cells):
        if cell.cell_type == "code":
            assert cell.get("outputs") == [], f"{ipynb.name} cell {k} has committed outputs; clear them"
            assert cell.get("execution_count") is None, f"{ipynb.name} cell {k} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_notebook_has_a_source(path: Path):
    assert path.with_suffix(".py").exists(), f"{path.name} has no paired .py source (the .py is the source)"


def test_solutions_are_found():
    assert SOLUTIONS, f"no solutions/NN_*.py found in {SOLUTIONS_DIR}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_solution_script_runs(path: Path):
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(path)], cwd=path.parent, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert not WARNING_RE.search(proc.stderr), f"{path.name} printed a warning:\n{proc.stderr[-3000:]}"
