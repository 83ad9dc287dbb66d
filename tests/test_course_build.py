"""The one-source course build: generated notebooks match their sources, and drift is caught."""

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_course  # noqa: E402  (a script, not a package)

DEMO_EXERCISE = '''# %% [markdown]
# # Demo
#
# **You will be able to** add one. **Prerequisites**: none. **Time**: 1 minute.

# %%
def add_one(x):
    """x + 1."""
    ### BEGIN SOLUTION
    # TODO: add one to x
    return x + 1
    ### END SOLUTION


# %%
def add_two(x):
    y = x
    for _ in range(2):
        ### BEGIN SOLUTION
        y = y + 1
        ### END SOLUTION
    return y

# %%
from icrl_course.checks.core import Case, run_check
run_check("add_one", add_one, lambda x: x + 1, [Case("zero", args=(0,))])

# %% [markdown]
# ## Recap
#
# Done.
'''


def build_all(root: Path) -> None:
    for target in build_course.targets(root):
        build_course.build(target, run=False)


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A throwaway course tree with one exercise source, built."""
    (tmp_path / "course" / "exercises").mkdir(parents=True)
    (tmp_path / "course" / "exercises" / "01_demo.py").write_text(DEMO_EXERCISE)
    build_all(tmp_path)
    return tmp_path


def code_cells(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


AWAITING_FULL_BUILD: set[str] = set()
"""Committed notebooks whose outputs still come from smoke mode, by "folder/NN" (any slug); none now. A
notebook that cannot yet be rebuilt full size goes here until it is (`python tools/build_course.py --only NN
--execute`), so the test below names it instead of failing silently."""
EXECUTED = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def awaiting_key(path: Path) -> str:
    return f"{path.parent.name}/{path.name[:2]}"


@pytest.mark.parametrize("path", EXECUTED, ids=[awaiting_key(p) for p in EXECUTED])
def test_committed_notebooks_show_full_size_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    mode = build_course.build_mode(nb)
    if awaiting_key(path) in AWAITING_FULL_BUILD:
        assert mode != "full", f"{path.name} is built full size now: remove {awaiting_key(path)!r} from AWAITING_FULL_BUILD"
    else:
        assert mode == "full", (f"{path.relative_to(ROOT)} was built in {mode or 'an unknown'} mode: a learner would read "
                                f"smoke-sized numbers as results; rebuild with `python tools/build_course.py "
                                f"--only {path.name[:2]} --execute`")


@pytest.mark.parametrize("path", EXECUTED, ids=[awaiting_key(p) for p in EXECUTED])
def test_committed_notebooks_open_unmodified_and_show_no_frozen_progress_bars(path: Path):
    import ipykernel.kernelspec

    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec["display_name"] == ipykernel.kernelspec.get_kernel_dict()["display_name"]
    widgets = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
               for o in c.outputs if build_course.WIDGET_VIEW in o.get("data", {})]
    assert widgets == [] and "widgets" not in nb.metadata, f"progress-bar widgets stored in cells {widgets}"


def test_committed_notebooks_match_what_their_sources_generate_now():
    stale = build_course.stale_files(ROOT)
    assert stale == [], f"regenerate with `python tools/build_course.py --execute`: {stale}"


def test_editing_a_solution_without_regenerating_is_reported_and_regenerating_fixes_it(course: Path):
    assert build_course.stale_files(course) == []
    source = course / "course" / "exercises" / "01_demo.py"
    source.write_text(source.read_text().replace("return x + 1", "return 1 + x"))

    stale = build_course.stale_files(course)
    assert stale == [course / "solutions" / "01_demo.ipynb"]  # the exercise hides the block: unchanged

    source.write_text(source.read_text().replace("# TODO: add one to x", "# TODO: add 1 to x"))
    assert set(build_course.stale_files(course)) == {course / "solutions" / "01_demo.ipynb",
                                                     course / "exercises" / "01_demo.ipynb"}
    build_all(course)
    assert build_course.stale_files(course) == []


def test_a_generated_notebook_without_a_source_is_reported(course: Path):
    (course / "course" / "exercises" / "01_demo.py").unlink()
    assert set(build_course.stale_files(course)) == {course / "solutions" / "01_demo.ipynb",
                                                     course / "exercises" / "01_demo.ipynb"}


def test_the_exercise_keeps_the_hint_and_raises_at_the_block_indentation(course: Path):
    cells = code_cells(course / "exercises" / "01_demo.ipynb")
    assert cells[0] == ('def add_one(x):\n    """x + 1."""\n    # TODO: add one to x\n'
                        "    raise NotImplementedError('add one to x')")
    assert "        # TODO: your code here\n        raise NotImplementedError('your code here')\n    return y" in cells[1]


def test_the_solution_is_the_source_without_markers_or_hint(course: Path):
    cells = code_cells(course / "solutions" / "01_demo.ipynb")
    assert cells[0] == 'def add_one(x):\n    """x + 1."""\n    return x + 1'
    namespace = {}
    exec("\n".join(cells), namespace)
    assert namespace["add_one"](1) == 2 and namespace["add_two"](1) == 3


def test_generated_notebooks_are_deterministic(course: Path):
    first = (course / "exercises" / "01_demo.ipynb").read_text()
    build_all(course)
    assert (course / "exercises" / "01_demo.ipynb").read_text() == first


@pytest.mark.parametrize("code, message", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", "without a"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "inside a function body"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n", "inside another"),
])
def test_malformed_solution_blocks_are_build_errors_naming_the_line(tmp_path: Path, code: str, message: str):
    (tmp_path / "course" / "exercises").mkdir(parents=True)
    (tmp_path / "course" / "exercises" / "02_bad.py").write_text(f"# %%\n{code}")
    target = build_course.targets(tmp_path)[0]
    with pytest.raises(build_course.SourceError, match=message) as error:
        build_course.render(target)
    assert "02_bad.py cell 1: line" in str(error.value)


def test_solution_markers_in_a_lesson_are_a_build_error(tmp_path: Path):
    (tmp_path / "course" / "lessons").mkdir(parents=True)
    (tmp_path / "course" / "lessons" / "03_x.py").write_text("# %%\ndef f():\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n")
    with pytest.raises(build_course.SourceError, match="belong in course/exercises"):
        build_course.render(build_course.targets(tmp_path)[0])


def test_only_selects_sources_by_number(course: Path):
    (course / "course" / "lessons").mkdir()
    (course / "course" / "lessons" / "00_intro.py").write_text("# %%\nx = 1\n")
    assert [t.kind for t in build_course.targets(course, only="01")] == ["solution", "exercise"]
    assert [t.output.name for t in build_course.targets(course, only="00")] == ["00_intro.ipynb"]


def test_the_built_exercise_runs_to_a_not_implemented_verdict_and_the_solution_passes(course: Path):
    def run(folder: str) -> tuple[list, str]:
        nb = build_course.execute(nbformat.read(course / folder / "01_demo.ipynb", as_version=4),
                                  course / folder, allow_errors=True)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        errors = [o.ename for o in outputs if o.output_type == "error"]
        assert [o.output_type for o in outputs] == ["stream"]  # the verdict, and no Out[] line after it
        return errors, "".join(o.get("text", "") for o in outputs)

    errors, text = run("exercises")
    assert errors == [] and "not implemented yet: add_one" in text
    errors, text = run("solutions")
    assert errors == [] and text == "✓ add_one: all 1 cases pass.\n"


def test_the_build_records_its_mode_and_stores_no_progress_bar(course: Path):
    source = course / "course" / "exercises" / "01_demo.py"
    source.write_text(source.read_text().replace(
        "# %%\nfrom icrl_course", "# %%\nfrom tqdm.auto import tqdm\nfor _ in tqdm(range(2)):\n    pass\n\n# %%\nfrom icrl_course"))
    solution = build_course.targets(course)[0]
    executed = build_course.execute(build_course.render(solution), course / "solutions")
    assert any(build_course.WIDGET_VIEW in o.get("data", {}) for c in executed.cells for o in c.get("outputs", []))
    for smoke, mode in ((True, "smoke"), (False, "full")):
        build_course.build(solution, run=True, smoke=smoke)
        nb = nbformat.read(solution.output, as_version=4)
        assert build_course.build_mode(nb) == mode
        bars = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if build_course.WIDGET_VIEW in o.get("data", {})]
        assert bars == [] and "widgets" not in nb.metadata
