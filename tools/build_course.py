"""Build the course's notebooks from their one source each.

Why: a lesson, its exercise and its solution must never drift apart, and a
reviewer should read plain Python diffs, not notebook JSON. So every notebook is
generated from a jupytext percent-format source (see course/README.md):

    course/lessons/NN_slug.py    -> notebooks/NN_slug.ipynb
    course/exercises/NN_slug.py  -> solutions/NN_slug.ipynb  (marker lines removed)
                                 -> exercises/NN_slug.ipynb  (solution blocks replaced
                                    by a TODO and ``raise NotImplementedError``)
    every lesson's title         -> index.ipynb, the landing page JupyterLab opens
                                    at the repository root (links to every lesson,
                                    exercise and solution)

Usage (from the repository root):

    python tools/build_course.py                 # write notebooks whose cells changed
    python tools/build_course.py --execute       # also run notebooks/ and solutions/, full size
    python tools/build_course.py --only 03 --execute
    python tools/build_course.py --execute --smoke   # a quick look; never commit these outputs
    python tools/build_course.py --check         # exit 1 if a committed notebook is stale

``--execute`` runs each generated lesson and solution in a fresh kernel (working
directory: the notebook's folder) at full size, the size committed notebooks
show, or with ``ICRL_COURSE_SMOKE=1`` under ``--smoke``, and stores the outputs
with the mode in the notebook's metadata (``metadata.icrl_course.build``), so a
test can refuse smoke-sized results in a committed notebook. Progress bars are
dropped from stored outputs: a saved widget shows its first frame ("0/4") for
ever. Exercises are always stored without outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
DEFAULT_TODO = "# TODO: your code here"
CELL_TIMEOUT_S = 600
# The display name ipykernel installs; any other makes Jupyter rewrite the metadata, so a notebook shows
# as modified the moment it is opened.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
BUILD_KEY = "icrl_course"
"""Notebook metadata section the build writes: ``{"build": "full" | "smoke"}`` for executed notebooks."""
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Cell metadata jupytext adds to round-trip blank lines; meaningless in a notebook.
_JUPYTEXT_CELL_KEYS = ("lines_to_next_cell", "lines_to_end_of_cell_marker", "cell_marker")


class SourceError(ValueError):
    """A course source breaks the authoring rules in course/README.md."""


@dataclass(frozen=True)
class Target:
    """One generated notebook: where it comes from, where it goes and what kind it is."""

    source: Path
    output: Path
    kind: str  # "lesson", "solution", "exercise" or "index" (source: the lessons' folder)

    @property
    def executed(self) -> bool:
        """Lessons and solutions are stored with outputs; exercises and the index never are."""
        return self.kind in ("lesson", "solution")


def targets(root: Path = ROOT, only: str | None = None) -> list[Target]:
    """Every notebook the sources under ``root/course`` generate, lessons first.

    ``only`` keeps the sources whose file name starts with ``f"{only}_"`` (e.g. "03").
    """
    found = []
    for source in sorted((root / "course" / "lessons").glob("[0-9][0-9]_*.py")):
        found.append(Target(source, root / "notebooks" / f"{source.stem}.ipynb", "lesson"))
    for source in sorted((root / "course" / "exercises").glob("[0-9][0-9]_*.py")):
        found.append(Target(source, root / "solutions" / f"{source.stem}.ipynb", "solution"))
        found.append(Target(source, root / "exercises" / f"{source.stem}.ipynb", "exercise"))
    if only is not None:
        found = [t for t in found if t.source.name.startswith(f"{only}_")]
    elif found:
        found.append(Target(root / "course" / "lessons", root / "index.ipynb", "index"))
    return found


INDEX_INTRO = """# icrl-course: start here

In-Context Reinforcement Learning, built from scratch: read a lesson in `notebooks/`, then do the
exercise of the same number in `exercises/` (each check cell tells you what differs and why); the
completed exercises are in `solutions/`. The README has the set-up and the command line.
"""


def _title(source: Path) -> str:
    """A lesson's title: its first markdown heading without the "Lesson N —" prefix."""
    for cell in jupytext.read(source, fmt="py:percent").cells:
        if cell.cell_type == "markdown":
            first = cell.source.lstrip().split("\n", 1)[0].lstrip("#").strip()
            return first.split("—", 1)[1].strip() if "—" in first else first
    return source.stem


def render_index(root: Path) -> nbformat.NotebookNode:
    """The landing page: one row per lesson source, linking the lesson and, where it has one, its exercise."""
    rows = ["| # | lesson | exercise | solution |", "| --- | --- | --- | --- |"]
    for source in sorted((root / "course" / "lessons").glob("[0-9][0-9]_*.py")):
        name = source.stem
        has_exercise = (root / "course" / "exercises" / source.name).exists()
        exercise = f"[exercise](exercises/{name}.ipynb)" if has_exercise else ""
        solution = f"[solution](solutions/{name}.ipynb)" if has_exercise else ""
        rows.append(f"| {name[:2]} | [{_title(source)}](notebooks/{name}.ipynb) | {exercise} | {solution} |")
    cell = nbformat.v4.new_markdown_cell(INDEX_INTRO + "\n" + "\n".join(rows))
    cell.id = "cell-000"
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return notebook


def _solution_blocks(lines: list[str], where: str) -> list[tuple[int, int]]:
    """(begin, end) line indices of each marked block; rejects unbalanced or top-level markers."""
    blocks, begin = [], None
    for i, line in enumerate(lines):
        marker = line.strip()
        if marker == BEGIN:
            if begin is not None:
                raise SourceError(f"{where}: line {i + 1}: '{BEGIN}' inside another solution block")
            if not line[: len(line) - len(line.lstrip())]:
                raise SourceError(
                    f"{where}: line {i + 1}: solution blocks must sit inside a function body "
                    "(indented), so the exercise notebook still runs to its check cells"
                )
            begin = i
        elif marker == END:
            if begin is None:
                raise SourceError(f"{where}: line {i + 1}: '{END}' without a '{BEGIN}'")
            blocks.append((begin, i))
            begin = None
    if begin is not None:
        raise SourceError(f"{where}: line {begin + 1}: '{BEGIN}' is never closed by '{END}'")
    return blocks


def _hint(lines: list[str], begin: int, end: int) -> str | None:
    """The block's first line when it is a ``# TODO: ...`` hint, else None."""
    if begin + 1 < end and lines[begin + 1].strip().startswith("# TODO"):
        return lines[begin + 1].strip()
    return None


def solution_code(source: str, where: str = "cell") -> str:
    """The complete code: marker lines and ``# TODO`` hint lines removed."""
    lines = source.split("\n")
    drop = set()
    for begin, end in _solution_blocks(lines, where):
        drop |= {begin, end}
        if _hint(lines, begin, end):
            drop.add(begin + 1)
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


def exercise_code(source: str, where: str = "cell") -> str:
    """The learner's code: each solution block becomes a TODO line and a NotImplementedError."""
    lines = source.split("\n")
    out, last = [], 0
    for begin, end in _solution_blocks(lines, where):
        out.extend(lines[last:begin])
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        todo = _hint(lines, begin, end) or DEFAULT_TODO
        message = todo.removeprefix("#").strip().removeprefix("TODO").lstrip(":").strip()
        out.append(indent + todo)
        out.append(indent + f"raise NotImplementedError({message!r})")
        last = end + 1
    out.extend(lines[last:])
    return "\n".join(out)


def render(target: Target) -> nbformat.NotebookNode:
    """The unexecuted notebook ``target``'s source generates now (deterministic ids and metadata)."""
    if target.kind == "index":
        return render_index(target.output.parent)
    nb = jupytext.read(target.source, fmt="py:percent")
    cells = []
    for index, cell in enumerate(nb.cells):
        where = f"{target.source.name} cell {index + 1}"
        source = cell.source
        if cell.cell_type == "code":
            has_markers = any(line.strip() in (BEGIN, END) for line in source.split("\n"))
            if has_markers and target.kind == "lesson":
                raise SourceError(f"{where}: solution markers belong in course/exercises/, not lessons")
            if target.kind == "solution":
                source = solution_code(source, where)
            elif target.kind == "exercise":
                source = exercise_code(source, where)
            if not source.strip():
                continue  # an empty code cell would be skipped by the kernel and break the counts
        metadata = {k: v for k, v in cell.metadata.items() if k not in _JUPYTEXT_CELL_KEYS}
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(source, metadata=metadata)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(source, metadata=metadata)
        else:
            new = nbformat.v4.new_raw_cell(source, metadata=metadata)
        new.id = f"cell-{len(cells):03d}"
        cells.append(new)
    if target.kind == "exercise" and not any(
        BEGIN in line for c in nb.cells if c.cell_type == "code" for line in c.source.split("\n")
    ):
        raise SourceError(f"{target.source.name}: an exercise source needs at least one '{BEGIN}' block")
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return notebook


def cell_signature(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """What ``--check`` compares: each cell's type and source, never outputs."""
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def is_stale(target: Target) -> bool:
    """True when the file is missing or its cells differ from what its source generates now."""
    if not target.output.exists():
        return True
    current = nbformat.read(target.output, as_version=4)
    return cell_signature(current) != cell_signature(render(target))


def orphans(root: Path = ROOT) -> list[Path]:
    """Generated notebooks whose source no longer exists."""
    expected = {t.output for t in targets(root)}
    found = [p for folder in ("notebooks", "solutions", "exercises") for p in (root / folder).glob("*.ipynb")]
    return sorted(p for p in found if p not in expected)


def stale_files(root: Path = ROOT, only: str | None = None) -> list[Path]:
    """Generated notebooks that are missing, out of date with their source, or orphaned."""
    stale = [t.output for t in targets(root, only) if is_stale(t)]
    return stale + ([] if only else orphans(root))


@contextlib.contextmanager
def _environment(**values: str):
    """Set environment variables for kernels started inside the block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute(
    nb: nbformat.NotebookNode, cwd: Path, smoke: bool = True, timeout: int = CELL_TIMEOUT_S,
    allow_errors: bool = False,
) -> nbformat.NotebookNode:
    """Run ``nb`` top to bottom in a fresh kernel in ``cwd``; outputs are stored in ``nb``.

    Smoke mode (the CI switch ``ICRL_COURSE_SMOKE``) is on unless ``smoke=False``.
    A cell that raises stops the run with nbclient's ``CellExecutionError``,
    unless ``allow_errors`` (used for exercises, whose TODOs raise).
    """
    env = {"ICRL_COURSE_SMOKE": "1" if smoke else "0", "TOKENIZERS_PARALLELISM": "false"}
    with _environment(**env):
        client = NotebookClient(
            nb, timeout=timeout, kernel_name=KERNELSPEC["name"], record_timing=False,
            coalesce_streams=True, allow_errors=allow_errors, resources={"metadata": {"path": str(cwd)}},
        )
        client.execute()
    return nb


def drop_progress_bars(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove widget outputs (tqdm's bars in Jupyter) and the saved widget state.

    A stored widget is frozen at the frame it was first displayed with, its
    ``text/plain`` says "0/4" however far the run went; the numbers a reader
    needs are printed by the cells themselves.
    """
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    nb.metadata.pop("widgets", None)
    return nb


def build_mode(nb: nbformat.NotebookNode) -> str | None:
    """The mode this build executed ``nb`` in, "full" or "smoke"; None when it was not executed by it."""
    return nb.metadata.get(BUILD_KEY, {}).get("build")


def build(target: Target, run: bool = False, smoke: bool = False) -> float:
    """Write ``target``'s notebook (executed when ``run`` and the kind keeps outputs); returns seconds.

    Full size unless ``smoke``; the mode goes into the notebook's metadata.
    """
    nb = render(target)
    start = time.perf_counter()
    if run and target.executed:
        execute(nb, target.output.parent, smoke=smoke)
        drop_progress_bars(nb)
        nb.metadata[BUILD_KEY] = {"build": "smoke" if smoke else "full"}
    target.output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target.output)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--execute", action="store_true", help="run notebooks/ and solutions/ and store outputs")
    parser.add_argument("--smoke", action="store_true",
                        help="with --execute: smoke mode (ICRL_COURSE_SMOKE=1), for a quick look, not for committing")
    parser.add_argument("--only", metavar="NN", help="only the sources whose name starts with NN_")
    parser.add_argument("--check", action="store_true", help="exit 1 listing generated files that are stale")
    args = parser.parse_args(argv)

    if args.check:
        stale = stale_files(ROOT, args.only)
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}")
        if stale:
            print("Regenerate with: python tools/build_course.py --execute")
            return 1
        print("course notebooks are up to date with their sources")
        return 0

    chosen = targets(ROOT, args.only)
    if not chosen:
        print(f"no course sources match --only {args.only!r}", file=sys.stderr)
        return 1
    for target in chosen:
        if not args.execute and not is_stale(target):
            continue  # keeps the stored outputs of an up-to-date notebook
        seconds = build(target, run=args.execute, smoke=args.smoke)
        mode = "smoke mode" if args.smoke else "full size"
        note = f"executed ({mode}) in {seconds:.1f} s" if args.execute and target.executed else "written"
        if not args.execute and target.executed:
            note += " without outputs; run with --execute before committing"
        print(f"{target.output.relative_to(ROOT)}: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
