"""How long every course notebook takes to run in smoke mode, as CI runs it.

Why: the course promises that each notebook runs top to bottom in a fresh kernel
in under 3 minutes on a 2-core CPU (ICRL_COURSE_SMOKE=1), and CI has 30 minutes
for everything. This script executes each notebook in notebooks/, solutions/ and
exercises/ (exercises may raise NotImplementedError only from their TODOs) on
an in-memory copy, prints seconds per notebook and the total, and flags any
notebook over 180 s and a total over 900 s (exit status 1 when flagged).

    python benchmarks/notebook_times.py            # everything
    python benchmarks/notebook_times.py --only 03  # one lesson's notebooks
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_course  # noqa: E402  (a script, not a package)

NOTEBOOK_LIMIT_S = 180.0
TOTAL_LIMIT_S = 900.0
FOLDERS = ("notebooks", "solutions", "exercises")


def time_notebook(path: Path) -> tuple[float, str]:
    """Seconds to execute ``path`` in a fresh smoke-mode kernel, and "ok" or what went wrong."""
    nb = nbformat.read(path, as_version=4)
    is_exercise = path.parent.name == "exercises"
    start = time.perf_counter()
    try:
        build_course.execute(nb, path.parent, smoke=True, timeout=int(NOTEBOOK_LIMIT_S) * 2, allow_errors=is_exercise)
    except Exception as error:  # report and keep timing the others
        return time.perf_counter() - start, f"error: {type(error).__name__}"
    seconds = time.perf_counter() - start
    unexpected = [o.ename for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.output_type == "error" and o.ename != "NotImplementedError"]
    return seconds, f"error: {unexpected[0]}" if unexpected else "ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", metavar="NN", help="only notebooks whose name starts with NN_")
    args = parser.parse_args(argv)
    pattern = f"{args.only}_*.ipynb" if args.only else "*.ipynb"
    paths = [p for folder in FOLDERS for p in sorted((ROOT / folder).glob(pattern))]
    if not paths:
        print("no notebooks found")
        return 1

    print(f"{'notebook':<44} {'seconds':>8}  status")
    total, flagged = 0.0, False
    for path in paths:
        seconds, status = time_notebook(path)
        total += seconds
        over = seconds > NOTEBOOK_LIMIT_S
        flagged |= over or status != "ok"
        flag = f"  OVER {NOTEBOOK_LIMIT_S:.0f} s" if over else ""
        print(f"{str(path.relative_to(ROOT)):<44} {seconds:>8.1f}  {status}{flag}", flush=True)
    over_total = total > TOTAL_LIMIT_S
    flagged |= over_total
    print(f"{'total':<44} {total:>8.1f}{f'  OVER {TOTAL_LIMIT_S:.0f} s' if over_total else ''}")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
