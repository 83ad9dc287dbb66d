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
``icrl_course/configs/paper-small.json`` (``--config``) in slices of ``--eval-every`` iterations (default
10, finer than the config's 20) until it reaches 90% of the explorer or the time is up. The extra
evaluations play their own maps with their own seed, so the run trains as the config's does, bit for
bit; their CPU time (about 3 s each) is counted in the times.
Where an iteration's time goes: ``python benchmarks/train_icrl.py --profile 4`` fills the
replay for a few iterations, then runs 4 iterations (one with an evaluation) under cProfile
and prints the CPU time of each phase (play, tokenize, replay sampling, forward/backward and
optimiser step, evaluation, checkpoint) and the functions that take the most time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import platform
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from icrl_course.train.config import ConfigError, TrainConfig
from icrl_course.train.log import read_metrics
from icrl_course.train.loop import train

LEVELS = (0.7, 0.9)
"""Shares of the explorer's mean success whose first crossing is timed."""


def summarise(run_dir: Path) -> dict:
    """One row of timings from a run's metrics."""
    metrics = read_metrics(run_dir)
    if "kind" not in metrics or not (metrics.kind == "train").any():
        raise ValueError(f"{run_dir / 'metrics.jsonl'} holds no training record (damaged, or the run never finished "
                         "an iteration): train it further or give another run folder")
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


PHASES = {
    "play (acting with the KV cache, env steps)": ("loop.py", "play"),
    "tokenize (encoding played trials)": ("replay.py", "add"),
    "replay sampling and packing": ("replay.py", "sample_batch"),
    "forward, backward, optimiser, Polyak": ("loop.py", "dqn_update"),
    "evaluation on val maps": ("loop.py", "_evaluate"),
    "checkpoint": ("loop.py", "save"),
}
"""Phases of an iteration, each named by the function (file, name) whose cumulative time it is."""


def profile(config: TrainConfig, run_dir: Path, iterations: int) -> None:
    """Profile ``iterations`` iterations after a warm-up that fills the replay; print phases and top functions."""
    shutil.rmtree(run_dir, ignore_errors=True)
    warm = max(2, -(-config.warmup_trials // config.trials_per_iteration) + 1)
    config = config.replace(progress=False, eval_every=iterations, checkpoint_every=iterations,
                            iterations=max(config.iterations, warm + iterations))
    train(config, run_dir, stop_at=warm)
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    train(config, run_dir, stop_at=warm + iterations)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    cumulative = {(Path(file).name, name): entry[3] for (file, _, name), entry in stats.stats.items()}
    print(f"{iterations} iterations of {config.trials_per_iteration} trials and {config.updates_per_iteration} updates "
          f"(one evaluation on {config.eval_maps} val maps, one checkpoint): {total:.1f} CPU-s")
    for phase, key in PHASES.items():
        seconds = cumulative.get(key, 0.0)
        print(f"  {phase:45s} {seconds:7.2f} s  {seconds / total:6.1%}")
    print("top functions by own CPU time:")
    stats.sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run folders to summarise (default: runs/paper-small-seed*)")
    parser.add_argument("--train", action="store_true", help="train a fresh run first and summarise it")
    parser.add_argument("--config", default="paper-small", help="config name in icrl_course/configs or a JSON path (default: paper-small)")
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget of --train (default: 20)")
    parser.add_argument("--eval-every", type=int, default=10, metavar="N",
                        help="evaluate every N iterations in --train: the resolution of the times (default: 10)")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/benchmark-train"), help="folder of the --train run")
    parser.add_argument("--profile", type=int, metavar="N", help="profile N iterations of a fresh run instead")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    args = parser.parse_args()
    try:
        config = TrainConfig.named(args.config).with_overrides(args.set)
    except ConfigError as err:
        parser.error(str(err))
    if args.eval_every < 1:
        parser.error(f"--eval-every {args.eval_every}: the times need evaluations, give 1 or more iterations")
    if args.profile:
        torch.set_num_threads(config.threads or torch.get_num_threads())
        profile(config, args.run_dir, args.profile)
        return

    runs = list(args.runs)
    missing = [str(r) for r in runs if not (r / "metrics.jsonl").is_file()]
    if missing:
        parser.error(f"no metrics.jsonl in {', '.join(missing)}: give run folders that icrl-course train wrote")
    if args.train:
        train_for(config.replace(progress=False, eval_every=args.eval_every), args.run_dir, args.minutes)
        runs.append(args.run_dir)
    if not runs:
        runs = sorted(Path("runs").glob("paper-small-seed*"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.1f} now (wall times depend on what else ran)")
    runs = [r for r in runs if (r / "metrics.jsonl").exists()]
    if not runs:
        parser.error("no run folders to summarise: give some, or train one with --train")
    try:
        table = pd.DataFrame([summarise(r) for r in runs]).set_index("run")
    except ValueError as err:
        parser.error(str(err))
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.astype(object).T.fillna("not reached").to_string())


if __name__ == "__main__":
    main()
