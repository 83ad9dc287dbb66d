"""Metrics of a training run: one JSON line per record in ``metrics.jsonl``, and TensorBoard when installed.

Why JSON lines: a record is appended and flushed as soon as it exists, so a
run killed at any moment leaves a readable log; any tool (pandas, jq, a text
editor) reads it. On resume, records written after the checkpoint the run
resumes from are dropped, so the log describes exactly one history; so are a
torn last line (a kill mid-write) and any line that is not a record (a
damaged file), with a warning that says which.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from icrl_course.train.lock import RunFolderWarning

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Appends ``{"iteration": i, "kind": ..., ...}`` records to ``run_dir/metrics.jsonl``.

    ``resume_iteration``: when resuming from a checkpoint taken after that
    iteration, records of later iterations (written before the run was killed)
    are removed first. ``tensorboard``: also write scalars to
    ``run_dir/tensorboard`` when the ``tensorboard`` package is installed.
    """

    def __init__(self, run_dir: str | Path, resume_iteration: int | None = None, tensorboard: bool = True):
        self.path = Path(run_dir) / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_iteration is None:
            self.path.write_text("")
        else:
            self._drop_after(resume_iteration)
        self.handle = open(self.path, "a")
        self.writer = None
        if tensorboard and importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_iteration is None else resume_iteration + 1
            self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=purge)

    def _drop_after(self, iteration: int) -> None:
        records, problems = _records(self.path)
        kept = [line for record, line in records if record["iteration"] <= iteration]
        if problems:
            warnings.warn(RunFolderWarning(f"{self.path}: dropped {'; '.join(problems)} while resuming after "
                                           f"iteration {iteration}"), stacklevel=3)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, self.path)

    def write(self, iteration: int, kind: str, **values: Any) -> None:
        """Append one record; non-finite floats are written as null (JSON has no NaN)."""
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}
        self.handle.write(json.dumps({"iteration": iteration, "kind": kind, **clean}) + "\n")
        self.handle.flush()
        if self.writer is not None:
            for key, value in clean.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and value is not None:
                    self.writer.add_scalar(f"{kind}/{key}", value, iteration)

    def close(self) -> None:
        self.handle.close()
        if self.writer is not None:
            self.writer.close()


def _records(path: Path) -> tuple[list[tuple[dict[str, Any], str]], list[str]]:
    """The file's records in order, each with its line, and what was left out: a torn last line, lines that
    are not records."""
    if not path.exists():
        return [], []
    *lines, last = path.read_bytes().split(b"\n")
    problems = [f"a torn last line (line {len(lines) + 1}, {len(last)} bytes without a newline)"] if last.strip() else []
    records, damaged = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = None
        if isinstance(record, dict) and isinstance(record.get("iteration"), int) and not isinstance(record["iteration"], bool):
            records.append((record, line.decode()))
        else:
            damaged.append(number)
    if damaged:
        problems.append(f"{len(damaged)} line(s) that are not records (line {', '.join(map(str, damaged[:5]))}"
                        f"{', ...' if len(damaged) > 5 else ''})")
    return records, problems


def read_metrics(run_dir: str | Path, kind: str | None = None) -> pd.DataFrame:
    """A run's metrics as a table (one row per record), optionally only records of one ``kind``.

    A torn last line or a damaged line is left out, with a warning.
    """
    path = Path(run_dir) / METRICS_FILE
    records, problems = _records(path)
    rows = [record for record, _ in records]
    if problems:
        warnings.warn(RunFolderWarning(f"{path}: left out {'; '.join(problems)}"), stacklevel=2)
    table = pd.DataFrame(rows)
    if kind is not None and len(table):
        table = table[table["kind"] == kind].dropna(axis=1, how="all").reset_index(drop=True)
    return table
