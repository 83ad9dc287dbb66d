"""Committed notebooks are clean: executed in order, without errors or machine paths, and shaped
like a lesson (goals, prerequisites and time up front, a recap at the end; see course/README.md)."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(root|home|tmp|work)(?=/|\b)")
OPENING_PHRASES = ("You will be able to", "Prerequisites", "Time")


def ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def load(path: Path):
    return nbformat.read(path, as_version=4)


def output_texts(output) -> list[str]:
    """Every piece of text an output shows: stream text, text-like MIME data, tracebacks."""
    texts = [output.get("text", "")] + list(output.get("traceback", []))
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") or mime.endswith("json"):
            texts.append(value if isinstance(value, str) else str(value))
    return texts


@pytest.mark.parametrize("path", EXECUTED, ids=ids(EXECUTED))
def test_executed_notebook_has_execution_counts_1_to_n_in_order(path: Path):
    counts = [c.execution_count for c in load(path).cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: counts {counts}; rebuild with `python tools/build_course.py --only {path.name[:2]} --execute`")


@pytest.mark.parametrize("path", EXECUTED, ids=ids(EXECUTED))
def test_executed_notebook_has_no_error_outputs(path: Path):
    errors = [(i, o.get("ename")) for i, c in enumerate(load(path).cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert errors == []


@pytest.mark.parametrize("path", EXECUTED, ids=ids(EXECUTED))
def test_executed_notebook_outputs_show_no_machine_paths(path: Path):
    leaks = [(i, MACHINE_PATH.search(text).group(0)) for i, c in enumerate(load(path).cells)
             if c.cell_type == "code" for o in c.outputs for text in output_texts(o) if MACHINE_PATH.search(text)]
    assert leaks == [], f"cell index and path found: {leaks}; print relative paths, silence path-printing warnings"


@pytest.mark.parametrize("path", EXERCISES, ids=ids(EXERCISES))
def test_exercise_notebook_is_stored_without_outputs(path: Path):
    cells = [c for c in load(path).cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in cells)


ALL = EXECUTED + EXERCISES


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_first_markdown_cell_states_goals_prerequisites_and_time(path: Path):
    markdown = [c.source for c in load(path).cells if c.cell_type == "markdown"]
    assert markdown, f"{path.name} has no markdown cell"
    missing = [phrase for phrase in OPENING_PHRASES if phrase not in markdown[0]]
    assert missing == [], f"{path.name}: the first markdown cell lacks {missing}"


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_last_markdown_cell_is_a_recap(path: Path):
    markdown = [c.source for c in load(path).cells if c.cell_type == "markdown"]
    first_line = markdown[-1].lstrip().split("\n", 1)[0] if markdown else ""
    assert first_line.startswith("#") and "Recap" in first_line, f"{path.name}: last markdown cell starts {first_line!r}"
