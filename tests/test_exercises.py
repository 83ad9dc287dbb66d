"""Every unsolved exercise notebook runs to its checks: the TODOs raise NotImplementedError, nothing
else fails, and the first check cell tells the learner the exercise is not implemented yet."""

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_course  # noqa: E402  (a script, not a package)

EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
CELL_TIMEOUT_S = 180


def is_check_cell(cell) -> bool:
    """A check cell imports from ``icrl_course.checks`` (the rule in course/README.md)."""
    return cell.cell_type == "code" and "icrl_course.checks" in cell.source


def stdout_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


@pytest.mark.parametrize("path", EXERCISES, ids=[p.name for p in EXERCISES])
def test_unsolved_exercise_runs_and_its_first_check_says_not_implemented_yet(path: Path):
    nb = build_course.execute(nbformat.read(path, as_version=4), path.parent, smoke=True,
                              timeout=CELL_TIMEOUT_S, allow_errors=True)
    errors = [(i, o.ename, o.evalue) for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert [e for e in errors if e[1] != "NotImplementedError"] == [], "only the TODOs may raise"

    checks = [c for c in nb.cells if is_check_cell(c)]
    assert checks, f"{path.name} has no check cell (a code cell importing from icrl_course.checks)"
    assert "not implemented yet" in stdout_of(checks[0]), stdout_of(checks[0]) or checks[0].outputs
