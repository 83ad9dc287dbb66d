"""How CI judges a `# NBVAL_CHECK_OUTPUT` cell: stdout must match the stored output, while stderr
and progress bars (which carry timings) are left out of the comparison (see conftest.py)."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]

PROGRESS_AND_STDERR = """# NBVAL_CHECK_OUTPUT
import sys
from tqdm.auto import tqdm
for _ in tqdm(range(3)):
    pass
print("stdout is compared")
print("stderr is not compared", file=sys.stderr)"""


def stored_cell(source: str, outputs: list, count: int):
    cell = new_code_cell(source, execution_count=count)
    cell.outputs = outputs
    return cell


def test_checked_cells_compare_stdout_but_not_stderr_or_progress_bars(tmp_path: Path):
    old_bar = new_output("display_data", data={
        "text/plain": "100%|██████████| 3/3 [00:09<00:00, 0.33it/s]",
        "application/vnd.jupyter.widget-view+json": {"model_id": "0", "version_major": 2, "version_minor": 0},
    })
    nb = new_notebook(cells=[
        stored_cell(PROGRESS_AND_STDERR, [
            old_bar,
            new_output("stream", name="stdout", text="stdout is compared\n"),
            new_output("stream", name="stderr", text="a warning from another machine\n"),
        ], 1),
        stored_cell("# NBVAL_CHECK_OUTPUT\nprint(1 + 1)", [new_output("stream", name="stdout", text="3\n")], 2),
    ])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, tmp_path / "demo.ipynb")

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "demo.ipynb", "-p", "conftest", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), "-q", "-p", "no:randomly"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    summary = run.stdout.strip().splitlines()[-1]
    assert "1 failed, 1 passed" in summary, run.stdout[-3000:] + run.stderr[-3000:]
    assert "FAILED demo.ipynb::Cell 1 " in run.stdout and "Cell outputs differ" in run.stdout  # the 1 + 1 cell
