"""Evaluating in-context learners next to the yardsticks, on maps held out from training.

Why this module: "its success climbs from episode to episode" is only a claim
about in-context learning when (1) the maps were never trained on (they come
from the test split, held out by digest), (2) the weights are frozen while it
plays (they are: agents only act), (3) the same curve with the context wiped
at every episode stays flat (the first-episode-only ablation), and (4) the
curve is put beside agents whose learning we understand: random play (the
floor), tabular Q-learning inside the trial (learning from scratch) and the
map-memorising explorer (about as fast as learning from experience alone can
be). ``compare_agents`` runs all of them on the same maps with the same seed;
``trials.episode_table`` turns the result into the per-episode table with
bootstrap confidence intervals that benchmarks and lessons print.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from icrl_course.baselines import ExplorerAgent, OracleAgent, QLearningAgent, RandomAgent
from icrl_course.envs import LakeMap, MapDistribution
from icrl_course.trials import Agent, run_trials

BASELINES = {"random": RandomAgent, "q-learning": QLearningAgent, "explorer": ExplorerAgent, "oracle": OracleAgent}
"""The yardsticks by name, each built with its documented defaults."""


def held_out_maps(n: int, distribution: MapDistribution | None = None, seed: int = 0) -> list[LakeMap]:
    """``n`` distinct maps from the *test* split of ``distribution`` (the paper's by default)."""
    return (distribution or MapDistribution.paper()).sample_many(n, seed=seed, split="test")


def compare_agents(
    agents: Mapping[str, Agent],
    maps: Sequence[LakeMap],
    episodes: int = 10,
    max_episode_steps: int = 25,
    is_slippery: bool = False,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Run every agent for one trial on every map (greedy: no exploration schedule); one tidy table.

    All agents get the same ``seed``, so the environment's draws (start tiles,
    slips) are the same for all of them as long as they take the same actions.
    The table has ``run_trials``' columns with ``agent`` set to the mapping's keys.
    """
    tables = []
    for name, agent in agents.items():
        result = run_trials(agent, maps, episodes, seed=seed, max_episode_steps=max_episode_steps,
                            is_slippery=is_slippery, agent_name=name, progress=progress)
        tables.append(result.table)
    return pd.concat(tables, ignore_index=True)
