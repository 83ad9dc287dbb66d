"""The yardsticks on held-out maps: success per episode of every baseline, with wall times.

Why: every in-context learning curve in the course is read against these
numbers. On held-out maps of the paper's in-distribution preset
(non-slippery 3-5 x 3-5 lakes, test split by digest), each baseline runs one
trial of ``--episodes`` episodes per map and the script prints the mean success
in chosen episodes with 95% bootstrap confidence intervals over maps.

Expected shape: the oracle is at 1.0 throughout; the explorer reaches about
1.0 within a few episodes (it falls into each hole it meets once); Q-learning
climbs slowly; random stays low. With ``--schedule paper`` every agent's
actions are replaced at random as in the paper's evaluation (agent prob 0,
0.1, ..., 0.9 for two episodes each, then 1.0), the setting in-context
learners are evaluated in.

Speed: the agents are vectorised over the batch of lakes. The wall time of
each agent's whole evaluation is printed, and its time per map next to the
time per map of the same work done one lake at a time (``run_trials`` on each
of the first ``--loop-maps`` maps alone), with their ratio.

Run: ``python benchmarks/baselines.py`` (``--help`` for sizes and seeds).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import pandas as pd

from icrl_course.baselines import ExplorerAgent, OracleAgent, QLearningAgent, RandomAgent
from icrl_course.envs import MapDistribution
from icrl_course.trials import Schedule, episode_table, run_trials

SCHEDULES = {"greedy": Schedule.greedy, "paper": Schedule.paper}


def evaluate(agents, maps, episodes: int, schedule: Schedule, seed: int, loop_maps: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every agent on all maps together, and on the first ``loop_maps`` one at a time; tables and times."""
    tables, times = [], []
    for agent in agents:
        start = time.perf_counter()
        results = run_trials(agent, maps, episodes=episodes, schedule=schedule, seed=seed)
        batched = time.perf_counter() - start
        row = {"agent": agent.name, "all maps batched (s)": batched, "lake-steps": int(results.table["length"].sum()),
               "ms/map batched": 1000 * batched / len(maps)}
        if loop_maps:
            start = time.perf_counter()
            for i, lake_map in enumerate(maps[:loop_maps]):
                run_trials(agent, [lake_map], episodes=episodes, schedule=schedule, seed=seed + i)
            row["ms/map one at a time"] = 1000 * (time.perf_counter() - start) / loop_maps
            row["speed-up"] = row["ms/map one at a time"] / row["ms/map batched"]
        tables.append(results.table)
        times.append(row)
    return pd.concat(tables, ignore_index=True), pd.DataFrame(times).set_index("agent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--maps", type=int, default=200, help="held-out maps, one trial each")
    parser.add_argument("--episodes", type=int, default=30, help="episodes per trial")
    parser.add_argument("--map-seed", type=int, default=0, help="seed of MapDistribution.paper().sample_many(split='test')")
    parser.add_argument("--seed", type=int, default=0, help="seed of the runs (starts, agents' draws, replacements)")
    parser.add_argument("--schedule", choices=[*SCHEDULES, "both"], default="both", help="exploration schedule(s)")
    parser.add_argument("--numbers", type=int, nargs="+", default=[1, 2, 5, 10, 30], help="episodes to tabulate (from 1)")
    parser.add_argument("--loop-maps", type=int, default=20, help="maps timed one at a time for the speed-up (0 skips)")
    args = parser.parse_args()

    numbers = [k for k in args.numbers if k <= args.episodes]
    maps = MapDistribution.paper().sample_many(args.maps, seed=args.map_seed, split="test")
    print(f"{args.maps} held-out maps (MapDistribution.paper().sample_many(..., seed={args.map_seed}, split='test')), "
          f"{args.episodes} episodes each, non-slippery, 100-step episodes, run seed {args.seed}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    for name in SCHEDULES if args.schedule == "both" else [args.schedule]:
        agents = [OracleAgent(), ExplorerAgent(), QLearningAgent(), RandomAgent()]
        table, times = evaluate(agents, maps, args.episodes, SCHEDULES[name](), args.seed, min(args.loop_maps, args.maps))
        print(f"\n== schedule: {name} == mean success per episode [95% bootstrap CI over maps]")
        print(episode_table(table, numbers=numbers).to_string())
        print(f"\nwall time per agent (one lake at a time: the first {min(args.loop_maps, args.maps)} maps, each alone):")
        print(times.round(3).to_string())


if __name__ == "__main__":
    main()
