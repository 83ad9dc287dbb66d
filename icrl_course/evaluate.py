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
``icl_summary`` turns the result into the per-episode table with bootstrap
confidence intervals that benchmarks and lessons print.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from icrl_course.baselines import ExplorerAgent, OracleAgent, QLearningAgent, RandomAgent
from icrl_course.envs import LakeMap, MapDistribution
from icrl_course.runtime import as_rng
from icrl_course.trials import Agent, per_episode, run_trials

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


def mean_over_episodes(table: pd.DataFrame, metric: str = "success", confidence: float = 0.95, n_boot: int = 2000,
                       seed: int | np.random.Generator | None = 0) -> pd.DataFrame:
    """Per agent: ``metric`` averaged over all episodes and maps, with a bootstrap CI over maps.

    Returns columns ``agent``, ``mean``, ``low``, ``high``, ``n_maps``.
    """
    rng = as_rng(seed)
    rows = []
    for name, part in table.groupby("agent", sort=False):
        per_map = part.groupby("lake")[metric].mean().to_numpy(dtype=np.float64)
        n = len(per_map)
        boot = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot) @ per_map / n
        tail = (1.0 - confidence) / 2 * 100
        low, high = np.percentile(boot, [tail, 100 - tail])
        rows.append({"agent": name, "mean": per_map.mean(), "low": low, "high": high, "n_maps": n})
    return pd.DataFrame(rows)


def icl_summary(table: pd.DataFrame, confidence: float = 0.95, n_boot: int = 2000, digits: int = 2,
                seed: int = 0) -> pd.DataFrame:
    """Agent x episode table of success ``mean [low, high]``, plus the mean over all episodes.

    Episodes are numbered from 1, as people count them.
    """
    curve = per_episode(table, "success", confidence, n_boot, seed)
    overall = mean_over_episodes(table, "success", confidence, n_boot, seed)

    def fmt(r) -> str:
        return f"{r['mean']:.{digits}f} [{r['low']:.{digits}f}, {r['high']:.{digits}f}]"

    wide = curve.assign(text=curve.apply(fmt, axis=1), column=[f"ep {e + 1}" for e in curve["episode"]]).pivot(
        index="agent", columns="column", values="text")
    wide = wide[[f"ep {k + 1}" for k in sorted(curve["episode"].unique())]]
    wide["mean"] = overall.set_index("agent").apply(fmt, axis=1)
    wide.columns.name = None
    return wide.loc[list(dict.fromkeys(table["agent"]))]
