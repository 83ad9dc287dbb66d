"""How fast the course's in-context learner trains on this machine: time to 70% and 90% of the explorer.

Why: lesson 5 promises a learner that a laptop CPU trains in minutes. This
script reads the metrics of training runs (``metrics.jsonl``: periodic greedy
evaluations on held-out maps, with the explorer's mean success on the same
maps) and prints, per run, the time until the learner's mean success over the
trial first reached 70% and 90% of the explorer's (resolution: the run's
``eval_every``), as wall-clock time and as the process's CPU time (on a
machine shared with other work, the CPU time is closer to what the run costs
on a free one), plus environment steps per second while playing and DQN
updates per second while learning.

Run on finished runs: ``python benchmarks/train_icrl.py runs/paper-small-seed0 ...``.
Train afresh and measure: ``python benchmarks/train_icrl.py --train --minutes 20`` trains
``icrl_course/configs/paper-small.json`` (``--config``) in slices of ``eval_every``
iterations until it reaches 90% of the explorer or the time is up.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from icrl_course.train.config import TrainConfig
from icrl_course.train.log import read_metrics
from icrl_course.train.loop import train

LEVELS = (0.7, 0.9)
"""Shares of the explorer's mean success whose first crossing is timed."""


def summarise(run_dir: Path) -> dict:
    """One row of timings from a run's metrics."""
    metrics = read_metrics(run_dir)
    evals = metrics[metrics.kind == "eval"]
    last = metrics[metrics.kind == "train"].iloc[-1]
    row = {"run": str(run_dir), "iterations": int(last.iteration) + 1}
    for level in LEVELS:
        hit = evals[evals.ratio_to_explorer >= level]
        first = hit.iloc[0] if len(hit) else None
        row[f"{level:.0%}: wall min"] = round(first.wall_seconds / 60, 1) if first is not None else None
        row[f"{level:.0%}: CPU min"] = round(first.cpu_seconds / 60, 1) if first is not None else None
        row[f"{level:.0%}: iteration"] = int(first.iteration) + 1 if first is not None else None
    best = evals.loc[evals.ratio_to_explorer.idxmax()] if len(evals) else None
    row["best ratio"] = round(float(best.ratio_to_explorer), 3) if best is not None else None
    row["final ratio"] = round(float(evals.iloc[-1].ratio_to_explorer), 3) if len(evals) else None
    row["env steps/s (playing)"] = round(last.env_steps / last.play_seconds) if last.play_seconds else None
    row["updates/s (learning)"] = round(last.updates / last.update_seconds, 2) if last.update_seconds else None
    row["total wall min"] = round(last.wall_seconds / 60, 1)
    row["total CPU min"] = round(last.cpu_seconds / 60, 1)
    return row


def train_for(config: TrainConfig, run_dir: Path, minutes: float) -> None:
    """Train in slices of ``eval_every`` iterations until 90% of the explorer, the budget, or the end."""
    shutil.rmtree(run_dir, ignore_errors=True)
    started = time.perf_counter()
    done = 0
    while done < config.iterations and time.perf_counter() - started < 60 * minutes:
        result = train(config, run_dir, stop_at=done + config.eval_every)
        done = result.iterations
        if result.last_eval and result.last_eval["ratio_to_explorer"] >= LEVELS[-1]:
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run folders to summarise (default: runs/paper-small-seed*)")
    parser.add_argument("--train", action="store_true", help="train a fresh run first and summarise it")
    parser.add_argument("--config", default="paper-small", help="config name in icrl_course/configs (default: paper-small)")
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget of --train (default: 20)")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/benchmark-train"), help="folder of the --train run")
    args = parser.parse_args()

    runs = list(args.runs)
    if args.train:
        train_for(TrainConfig.named(args.config).replace(progress=False), args.run_dir, args.minutes)
        runs.append(args.run_dir)
    if not runs:
        runs = sorted(Path("runs").glob("paper-small-seed*"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.1f} now (wall times depend on what else ran)")
    table = pd.DataFrame([summarise(r) for r in runs if (r / "metrics.jsonl").exists()]).set_index("run")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.astype(object).T.to_string(na_rep="not reached"))


if __name__ == "__main__":
    main()
