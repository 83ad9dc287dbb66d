"""Environment throughput: ``BatchFrozenLake`` against gymnasium's ``FrozenLake-v1``, in one run.

Why: the course trains and evaluates on thousands of multi-episode trials, so
the environment must not be the bottleneck. This script backs the claim in
``icrl_course.envs.batch`` that stepping many lakes as one NumPy expression
beats stepping gymnasium environments one by one in Python, with numbers
measured side by side on the same machine in the same process.

What is timed, for each slipperiness:

* gymnasium: ``gymnasium.make("FrozenLake-v1", desc=...)`` (with its default
  wrappers) stepped in a Python loop with pre-drawn random actions, resetting
  whenever an episode ends;
* gymnasium vector: ``gymnasium.vector.SyncVectorEnv`` over a few such envs
  on one map (gymnasium's own batching, which still loops in Python);
* ``BatchFrozenLake`` on B lakes of paper maps (3-5 x 3-5), stepped with
  pre-drawn ``(B,)`` random action arrays and autoreset.

Run: ``python benchmarks/env_throughput.py`` (``--help`` for sizes). Each
figure is the median of ``--repeats`` timings; the ratio is lake-steps per
second over gymnasium's single-env steps per second, measured in the same run.
Times are the process's CPU time (``time.process_time``), so that other jobs
on a shared machine slow neither side by taking the CPU away; both sides are
single-threaded, so on an idle machine CPU time equals wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import gymnasium
import numpy as np

from icrl_course.envs import PAPER_IN_DISTRIBUTION, BatchFrozenLake, LakeMap


def time_gymnasium_loop(lake_map: LakeMap, is_slippery: bool, steps: int, seed: int) -> float:
    """Steps per second of one ``gymnasium.make`` env stepped in Python, resetting at episode ends."""
    env = gymnasium.make("FrozenLake-v1", desc=list(lake_map.rows), is_slippery=is_slippery)
    actions = np.random.default_rng(seed).integers(0, 4, size=steps).tolist()
    env.reset(seed=seed)
    start = time.process_time()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    elapsed = time.process_time() - start
    env.close()
    return steps / elapsed


def time_gymnasium_vector(lake_map: LakeMap, num_envs: int, is_slippery: bool, steps: int, seed: int) -> float:
    """Env-steps per second of gymnasium's ``SyncVectorEnv`` (it autoresets by itself).

    All copies share one map: gymnasium's vector envs need equal observation spaces.
    """
    env = gymnasium.vector.SyncVectorEnv(
        [lambda: gymnasium.make("FrozenLake-v1", desc=list(lake_map.rows), is_slippery=is_slippery)] * num_envs
    )
    rounds = max(1, steps // num_envs)
    actions = np.random.default_rng(seed).integers(0, 4, size=(rounds, num_envs))
    env.reset(seed=seed)
    start = time.process_time()
    for row in actions:
        env.step(row)
    elapsed = time.process_time() - start
    env.close()
    return rounds * num_envs / elapsed


def time_batch(maps: list[LakeMap], num_lakes: int, is_slippery: bool, rounds: int, seed: int) -> float:
    """Lake-steps per second of ``BatchFrozenLake`` on ``num_lakes`` lakes (maps reused cyclically)."""
    lakes = [maps[i % len(maps)] for i in range(num_lakes)]
    env = BatchFrozenLake(lakes, is_slippery=is_slippery, seed=seed)
    actions = np.random.default_rng(seed).integers(0, 4, size=(rounds, num_lakes))
    start = time.process_time()
    for row in actions:
        env.step(row)
    elapsed = time.process_time() - start
    return rounds * num_lakes / elapsed


def median_of(repeats: int, measure) -> float:
    return statistics.median(measure(seed) for seed in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lakes", type=int, nargs="+", default=[1024, 4096], help="batch sizes B to time")
    parser.add_argument("--rounds", type=int, default=500, help="BatchFrozenLake.step calls per timing")
    parser.add_argument("--gym-steps", type=int, default=30_000, help="gymnasium steps per timing")
    parser.add_argument("--vector-envs", type=int, default=16, help="envs in the gymnasium SyncVectorEnv row (0 skips it)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per row; the median is reported")
    parser.add_argument("--maps", type=int, default=256, help="distinct paper maps the lakes cycle through")
    args = parser.parse_args()

    maps = PAPER_IN_DISTRIBUTION.sample_many(args.maps, seed=0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"numpy {np.__version__}, gymnasium {gymnasium.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average {load:.2f}; median of {args.repeats} timings")
    header = f"{'implementation':<34}{'lakes':>7}{'slippery':>10}{'steps/s':>16}{'vs gymnasium':>15}"
    print(header)
    print("-" * len(header))
    for is_slippery in (False, True):
        reference = median_of(args.repeats, lambda s: time_gymnasium_loop(maps[0], is_slippery, args.gym_steps, s))
        print(f"{'gymnasium.make loop':<34}{1:>7}{str(is_slippery):>10}{reference:>16,.0f}{1.0:>14.1f}x")
        if args.vector_envs:
            vector = median_of(args.repeats, lambda s: time_gymnasium_vector(maps[0], args.vector_envs, is_slippery, args.gym_steps, s))
            print(f"{'gymnasium SyncVectorEnv':<34}{args.vector_envs:>7}{str(is_slippery):>10}{vector:>16,.0f}{vector / reference:>14.1f}x")
        for num_lakes in args.lakes:
            batch = median_of(args.repeats, lambda s: time_batch(maps, num_lakes, is_slippery, args.rounds, s))
            print(f"{'BatchFrozenLake':<34}{num_lakes:>7}{str(is_slippery):>10}{batch:>16,.0f}{batch / reference:>14.1f}x")


if __name__ == "__main__":
    main()
