"""Why episode 10 fails: a per-map account of each checkpoint's last episode beside the explorer's.

Why: issue 13's goal on 6-7 x 6-7 maps is about episode 10, and a success rate alone does not say which
lever could lift it. A trial can fail its last episode because the goal was never found in the episodes
before it, or because, found, it was not reached again. On the maps where it was found, this splits the
failed last episodes by how they ended: in a hole the trial had **already fallen into** (memory of holes),
in a **new** hole (leaving the tiles already walked on), or cut by the time limit (wandering). It also
counts how many of those failures began on a tile from which the tiles already walked on lead to the goal,
which the explorer, planning over what it has seen, would have followed.

Every agent plays the same maps with the same play seed (``compare_agents``' convention), greedy, with
frozen weights. Model choices are made on the **val** split (the default); ``--split test`` is for the
reported number only.

Run: ``python benchmarks/ood_failures.py`` (the shipped seeds on 300 val 6-7 x 6-7 maps, map seed 12,
play seed 5: the maps and starts lesson 5's failure analysis quotes), or
``python benchmarks/ood_failures.py --checkpoints runs/seed0 --preset paper --maps 200 --map-seed 11``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from icrl_course.baselines import ExplorerAgent
from icrl_course.checkpoints import CheckpointError, load_agent
from icrl_course.envs import LakeMap, MapDistribution
from icrl_course.trials import Trial, run_trials


def walks_to(trial: Trial, start: int, goals: set[int], walked: set[int]) -> bool:
    """Whether ``start`` reaches a cell of ``goals`` over ``walked`` cells alone: the map as the trial has seen it
    (every other tile a hole), searched by ``LakeMap.distances_to_goal``."""
    seen = np.full(trial.lake_map.n_states, "H")
    seen[list(walked)] = "F"
    seen[list(goals)] = "G"
    seen[start] = "S"
    known = LakeMap(tuple("".join(row) for row in seen.reshape(trial.lake_map.shape)))
    return bool(known.distances_to_goal()[start] >= 0)


def last_episode(trial: Trial) -> dict[str, int]:
    """How the last episode of one trial went, given what the episodes before it had seen."""
    last = trial.num_episodes - 1
    before, now = trial.episode < last, trial.episode == last
    won = trial.terminated & (trial.rewards > 0)
    fell = trial.terminated & (trial.rewards <= 0)
    goals = set(trial.next_obs[before & won].tolist())
    row = dict(found=int(bool(goals)), solved=int(bool((now & won).any())))
    if not goals:
        return row
    if row["solved"]:
        return row
    row["failed"] = 1
    walked = set(trial.obs[before].tolist()) | set(trial.next_obs[before & ~trial.terminated].tolist())
    steps = np.flatnonzero(now)
    end = steps[-1]
    row["known_path"] = int(walks_to(trial, int(trial.obs[steps[0]]), goals, walked))
    if fell[end]:
        row["known_hole" if int(trial.next_obs[end]) in set(trial.next_obs[before & fell].tolist()) else "new_hole"] = 1
    else:
        row["timed_out"] = 1
    return row


def account(trials: list[Trial]) -> dict[str, int]:
    """``last_episode`` summed over trials."""
    total = dict(maps=len(trials), found=0, solved=0, failed=0, known_hole=0, new_hole=0, timed_out=0, known_path=0)
    for trial in trials:
        for key, value in last_episode(trial).items():
            total[key] += value
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", nargs="+", default=["paper-small", "paper-small-seed1", "paper-small-seed2"],
                        help="shipped names, run folders or exported model paths (default: the three shipped seeds)")
    parser.add_argument("--preset", choices=["paper", "paper_ood", "gymnasium"], default="paper_ood",
                        help="map distribution (default: paper_ood, 6-7 x 6-7; gymnasium: 8x8, 50-step episodes)")
    parser.add_argument("--split", choices=["val", "test"], default="val", help="map split (default: val)")
    parser.add_argument("--maps", type=int, default=300, help="maps (default: 300)")
    parser.add_argument("--map-seed", type=int, default=12, help="seed of the maps (default: 12)")
    parser.add_argument("--play-seed", type=int, default=5, help="seed of play: the start tiles (default: 5)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per trial (default: 10)")
    args = parser.parse_args()
    if args.maps < 1:
        parser.error(f"--maps must be at least 1, got {args.maps}")
    if args.episodes < 2:
        parser.error(f"--episodes must be at least 2 (the last episode is read against the ones before it), got {args.episodes}")
    try:
        agents = {name: load_agent(name) for name in args.checkpoints}
    except CheckpointError as err:
        parser.error(str(err))
    agents["explorer"] = ExplorerAgent()

    gymnasium = args.preset == "gymnasium"
    distribution = MapDistribution.gymnasium(8) if gymnasium else getattr(MapDistribution, args.preset)()
    maps = distribution.sample_many(args.maps, seed=args.map_seed, split=args.split)
    steps = 50 if gymnasium else 25
    print(f"{len(maps)} {args.split} maps ({args.preset}, map seed {args.map_seed}), play seed {args.play_seed}, greedy, "
          f"{args.episodes} episodes of at most {steps} steps. Of the maps whose goal an earlier episode found: how the "
          f"last episode failed, and how many of those failures started where walked tiles lead to the goal.\n")
    header = ("agent", "last ep.", "found", "then failed", "known hole", "new hole", "timed out", "known path")
    print(f"{header[0]:>40s}" + "".join(f"{h:>12s}" for h in header[1:]))
    for name, agent in agents.items():
        trials = run_trials(agent, maps, args.episodes, seed=args.play_seed, max_episode_steps=steps).trials
        c = account(trials)
        values = (f"{c['solved'] / c['maps']:.3f}", f"{c['found'] / c['maps']:.0%}", c["failed"],
                  c["known_hole"], c["new_hole"], c["timed_out"], c["known_path"])
        label = Path(name).parent.name if name.endswith((".safetensors", ".json")) else name  # a run folder's name
        print(f"{label[-40:]:>40s}" + "".join(f"{v:>12}" for v in values), flush=True)


if __name__ == "__main__":
    main()
