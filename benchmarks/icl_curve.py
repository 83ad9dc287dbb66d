"""The in-context learning curve of trained checkpoints on held-out maps, beside the baselines.

Why: this is the course's central claim, measured. On ``--maps`` maps from the
test split of the paper's in-distribution preset (3-5 x 3-5, non-slippery,
held out from training by digest), every agent plays one greedy trial of
``--episodes`` episodes per map with frozen weights. Printed: success per
episode with 95% bootstrap confidence intervals over maps for the first
checkpoint, the same checkpoint with its context wiped at every episode start
(the first-episode-only ablation, which must stay flat), random play, tabular
Q-learning and the explorer; then one line per checkpoint (e.g. one per
training seed) with its mean over episodes and episode-``K`` success against
the course's goals: mean at least 90% of the explorer's, and at least 0.95 in
the last episode.

``--preset paper_ood`` (6-7 x 6-7) or ``gymnasium`` measures the same out of distribution; the
ratio to the explorer per checkpoint is the number issue 13's goals are stated in.

Run: ``python benchmarks/icl_curve.py`` (the shipped seeds ``paper-small``, ``paper-small-seed1``,
``paper-small-seed2`` on in-distribution maps), ``python benchmarks/icl_curve.py --preset paper_ood``, or
``python benchmarks/icl_curve.py --checkpoints runs/paper-small-seed0 runs/paper-small-seed1``.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from icrl_course.baselines import ExplorerAgent, QLearningAgent, RandomAgent
from icrl_course.checkpoints import load_agent, read_model, resolve
from icrl_course.envs import MapDistribution
from icrl_course.evaluate import compare_agents, held_out_maps
from icrl_course.trials import episode_table, mean_over_episodes, per_episode

MEAN_GOAL = 0.90
"""Goal: a checkpoint's mean success over the trial is at least this share of the explorer's."""
LAST_GOAL = 0.95
"""Goal: a checkpoint's success in the last episode is at least this."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", nargs="+", default=["paper-small", "paper-small-seed1", "paper-small-seed2"],
                        help="shipped names, run folders or exported model paths (default: the three shipped seeds)")
    parser.add_argument("--preset", choices=["paper", "paper_ood", "gymnasium"], default="paper",
                        help="map distribution of the test maps (default: paper, 3-5 x 3-5; paper_ood: 6-7 x 6-7; "
                             "gymnasium: 8x8, use --max-episode-steps 50)")
    parser.add_argument("--maps", type=int, default=200, help="held-out maps (default: 200)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per trial (default: 10)")
    parser.add_argument("--max-episode-steps", type=int, default=25, help="episode time limit (default: 25)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the maps and of play (default: 0)")
    parser.add_argument("--mean-goal", type=float, default=MEAN_GOAL,
                        help=f"goal for the mean as a share of the explorer's (default: {MEAN_GOAL})")
    parser.add_argument("--last-goal", type=float, default=LAST_GOAL,
                        help=f"goal for the last episode's success (default: {LAST_GOAL})")
    args = parser.parse_args()

    distribution = MapDistribution.gymnasium(8) if args.preset == "gymnasium" else getattr(MapDistribution, args.preset)()
    maps = held_out_maps(args.maps, distribution, seed=args.seed)
    started = time.perf_counter()
    first = args.checkpoints[0]
    agents = {first: load_agent(first),
              f"{first}, context reset every episode": load_agent(first, reset_context_every_episode=True),
              "random": RandomAgent(), "q-learning": QLearningAgent(), "explorer": ExplorerAgent()}
    table = compare_agents(agents, maps, args.episodes, args.max_episode_steps, seed=args.seed)
    print(f"{len(maps)} held-out maps ({args.preset} preset, test split, seed {args.seed}), greedy, {args.episodes} episodes "
          f"of at most {args.max_episode_steps} steps; success with 95% bootstrap CI over maps; checkpoint: {first}\n")
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 30):
        summary = episode_table(table, numbers=None, mean=True)
        print(summary.T.to_string())
    explorer_mean = float(table[table.agent == "explorer"].groupby("lake")["success"].mean().mean())

    print(f"\ngoals: mean over episodes >= {args.mean_goal:.0%} of the explorer's ({args.mean_goal * explorer_mean:.3f}); "
          f"episode {args.episodes} >= {args.last_goal}")
    for name in args.checkpoints:
        part = table[table.agent == first] if name == first else compare_agents(
            {name: load_agent(name)}, maps, args.episodes, args.max_episode_steps, seed=args.seed)
        mean = mean_over_episodes(part).iloc[0]
        last = per_episode(part).iloc[-1]
        trained = read_model(resolve(name))[1]["trained"]
        ok_mean, ok_last = mean["mean"] >= args.mean_goal * explorer_mean, last["mean"] >= args.last_goal
        print(f"  {name}: mean {mean['mean']:.3f} [{mean['low']:.3f}, {mean['high']:.3f}] = "
              f"{mean['mean'] / explorer_mean:.0%} of the explorer's ({'met' if ok_mean else 'NOT met'}); "
              f"episode {args.episodes} {last['mean']:.3f} [{last['low']:.3f}, {last['high']:.3f}] "
              f"({'met' if ok_last else 'NOT met'}); trained {trained['iterations']} iterations, "
              f"{trained['cpu_seconds'] / 60:.0f} CPU-min, {trained['wall_seconds'] / 60:.0f} wall-min")
    print(f"\nevaluation wall time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
