"""The paper's five capability claims, each as one experiment beside the yardsticks, over several training seeds.

Why one function per claim: Rentschler & Roberts show each capability on one
seed, a few dozen maps and no baselines. Here every claim is an experiment
that anyone can rerun: the same held-out maps (test split) and the same play
seed for every agent, a tidy table with one row per training seed x agent x
map x episode, and a summary whose intervals are 95% bootstrap CIs over maps
(``icrl_course.stats``), with each ICRL model's difference to the explorer as
a *paired* interval (same maps, same play seed).

* ``in_distribution``: unseen maps of the training distribution, greedy and
  with the paper's 30-episode exploration schedule;
* ``out_of_distribution``: one condition per axis (larger maps, more holes,
  gymnasium's 8x8, slippery ice);
* ``data_quality``: models trained offline on data of controlled quality,
  against the success of the behaviour that made their data;
* ``stitching``: solve a map in the first greedy episode from a context of
  two partial episodes (``envs.scenarios``);
* ``non_stationary``: the map changes after ``k`` episodes.

ICRL models come in as ``QNetwork``s by name (``load_networks`` reads shipped
checkpoints, a test builds tiny ones); every function takes its sizes and a
seed, so a smoke version runs in seconds and the full one in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from icrl_course.baselines import ExplorerAgent, ForgetfulExplorer, OracleAgent, QLearningAgent, RandomAgent
from icrl_course.data import POLICIES, Behaviour, parse_behaviours
from icrl_course.envs import LakeMap, MapDistribution
from icrl_course.envs.scenarios import SWITCH_KINDS, paper_stitching_case, stitching_cases, switch_pairs
from icrl_course.stats import mean_ci, paired_difference
from icrl_course.trials import Agent, Schedule, TrialResults, run_trials

SEEDS = ("paper-small", "paper-small-seed1", "paper-small-seed2")
"""The shipped ICRL models: the same config trained with training seeds 0, 1 and 2."""
DATA_QUALITY = {
    "offline-oracle": "oracle",
    "offline-explorer": "explorer",
    "offline-explorer-eps30": "explorer:0.3",
    "offline-explorer-eps60": "explorer:0.6",
    "offline-random": "random",
    "offline-blend": "oracle*0.5,random*0.5",
}
"""Shipped offline models and the behaviour (``data.parse_behaviours`` spec) whose trials each was trained on."""
EXPLORER = "explorer"
"""The yardstick every ICRL model's paired difference is taken against."""
CONFIDENCE = 0.95
N_BOOT = 2000

TIDY_COLUMNS = ("experiment", "condition", "agent", "model", "lake", "digest", "switched", "episode", "success",
                "length", "shortest", "fell_in_hole", "timed_out", "play_seed")
"""One row per condition x agent x model (training seed) x map x episode; ``model`` is empty for baselines."""
SUMMARY_COLUMNS = ("experiment", "condition", "agent", "model", "metric", "mean", "low", "high", "n_maps",
                   "versus", "diff", "diff_low", "diff_high")
"""One row per condition x agent x model x metric; ``diff*`` is the paired difference to the agent named in
``versus`` (ICRL models only: the explorer, or the behaviour that made the data)."""


@dataclass(frozen=True)
class Experiment:
    """What an experiment returns: the tidy per-episode table and its summary (``TIDY_COLUMNS``, ``SUMMARY_COLUMNS``)."""

    table: pd.DataFrame
    summary: pd.DataFrame


def load_networks(names: Iterable[str]) -> dict:
    """``{name: QNetwork}`` for shipped checkpoint names (or run folders); the experiments' way in."""
    from icrl_course.checkpoints import load_network

    return {name: load_network(name)[0] for name in names}


# --------------------------------------------------------------------------------- playing
@dataclass(frozen=True)
class Player:
    """One agent as it appears in the table: a label, the checkpoint it comes from ("" for baselines), a factory."""

    agent: str
    model: str
    make: Callable[[], Agent]


def icrl_players(networks: Mapping, ablation: bool = False) -> list[Player]:
    """``icrl`` for every network, and with ``ablation`` its context-reset twin (nothing carries over between episodes)."""
    players = [Player("icrl", name, lambda n=net: n.agent(name="icrl")) for name, net in networks.items()]
    if ablation:
        players += [Player("icrl, context reset", name,
                           lambda n=net: n.agent(reset_context_every_episode=True, name="icrl, context reset"))
                    for name, net in networks.items()]
    return players


BASELINE_PLAYERS = {
    "random": Player("random", "", RandomAgent),
    "q-learning": Player("q-learning", "", QLearningAgent),
    "explorer": Player("explorer", "", ExplorerAgent),
    "forgetful explorer": Player("forgetful explorer", "", ForgetfulExplorer),
    "oracle": Player("oracle", "", OracleAgent),
}
"""The yardsticks, by the name they carry in tables."""


def _tidy(results: TrialResults, experiment: str, condition: str, player: Player, play_seed: int) -> pd.DataFrame:
    """``run_trials``' table in the experiments' columns, with each episode's shortest possible length."""
    table = results.table
    shortest = np.concatenate([_shortest_lengths(trial) for trial in results.trials])
    return pd.DataFrame({
        "experiment": experiment, "condition": condition, "agent": player.agent, "model": player.model,
        "lake": table["lake"], "digest": table["digest"], "switched": table["switched"], "episode": table["episode"],
        "success": table["success"].astype(float), "length": table["length"], "shortest": shortest,
        "fell_in_hole": table["fell_in_hole"], "timed_out": table["timed_out"], "play_seed": play_seed,
    }, columns=list(TIDY_COLUMNS))


def _shortest_lengths(trial) -> np.ndarray:
    """Per episode of ``trial``: the fewest moves from the tile it started on to a goal (NaN if cut off)."""
    dist = trial.lake_map.distances_to_goal().astype(float)
    dist[dist < 0] = np.nan
    first = np.flatnonzero(np.diff(np.concatenate([[-1], trial.episode])) != 0)
    return dist[trial.obs[first]]


def play(players: Sequence[Player], maps: Sequence[LakeMap], experiment: str, condition: str, episodes: int,
         seed: int, max_episode_steps: int = 25, schedule: Schedule | None = None, is_slippery: bool = False,
         prefix=None, switch=None, progress=None) -> pd.DataFrame:
    """Every player on the same maps with the same play seed; one tidy table."""
    parts = []
    for player in players:
        results = run_trials(player.make(), maps, episodes, schedule=schedule, seed=seed,
                             max_episode_steps=max_episode_steps, is_slippery=is_slippery, prefix=prefix, switch=switch)
        parts.append(_tidy(results, experiment, condition, player, seed))
        if progress is not None:
            progress.update(1)
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------- summarising
METRICS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {}
"""Per-map metrics by name: each maps one agent's rows of one condition to one value per lake."""


def metric(name: str):
    def register(function):
        METRICS[name] = function
        return function
    return register


@metric("success")
def mean_success(rows: pd.DataFrame) -> pd.Series:
    """Share of episodes that reached a goal."""
    return rows.groupby("lake")["success"].mean()


@metric("success, last episode")
def last_success(rows: pd.DataFrame) -> pd.Series:
    """Whether the trial's last episode reached a goal."""
    return rows[rows["episode"] == rows["episode"].max()].groupby("lake")["success"].mean()


@metric("episodes to first success")
def episodes_to_first_success(rows: pd.DataFrame) -> pd.Series:
    """Episode number (from 1) of the first success; trials without one count as one more than their episodes."""
    episodes = rows["episode"].max() + 1
    first = rows[rows["success"] > 0].groupby("lake")["episode"].min() + 1
    return first.reindex(rows["lake"].unique(), fill_value=episodes + 1).sort_index().astype(float)


@metric("length / shortest after first success")
def path_ratio(rows: pd.DataFrame) -> pd.Series:
    """Mean of steps / shortest path over successful episodes after the first success (maps without such an episode dropped)."""
    first = rows[rows["success"] > 0].groupby("lake")["episode"].min()
    later = rows[(rows["success"] > 0) & (rows["episode"] > rows["lake"].map(first))]
    return (later["length"] / later["shortest"]).groupby(later["lake"]).mean()


@metric("length / shortest, first episode")
def first_path_ratio(rows: pd.DataFrame) -> pd.Series:
    """Steps / shortest path of the first episode, on maps where it succeeded."""
    first = rows[(rows["episode"] == 0) & (rows["success"] > 0)]
    return (first["length"] / first["shortest"]).groupby(first["lake"]).mean()


@metric("success after switch")
def success_after_switch(rows: pd.DataFrame) -> pd.Series:
    """Share of the episodes played on the new map that reached a goal."""
    return rows[rows["switched"]].groupby("lake")["success"].mean()


@metric("episodes to recover")
def recovery(rows: pd.DataFrame) -> pd.Series:
    """``episodes_to_recover`` over the maps whose last episode before the switch succeeded."""
    return episodes_to_recover(rows)


def episodes_to_recover(rows: pd.DataFrame) -> pd.Series:
    """Per map: episodes on the new map until the first success (1: at once), for maps that succeeded just before.

    The pre-switch success is that of the last episode before the switch;
    maps that had not succeeded then have nothing to recover and are left
    out. A map that never succeeds after the switch counts as one more than
    the episodes played after it (censored, so the mean is a lower bound).
    """
    if not rows["switched"].any():
        raise ValueError("the rows hold no episode after a switch: run_trials(..., switch=(k, new_maps)) makes them")
    k = int(rows.loc[rows["switched"], "episode"].min())
    after = int(rows["episode"].max()) + 1 - k
    before = rows[rows["episode"] == k - 1].set_index("lake")["success"] > 0
    post = rows[rows["switched"] & (rows["success"] > 0)]
    first = post.groupby("lake")["episode"].min() - k + 1
    lakes = before.index[before.to_numpy()]
    return first.reindex(lakes, fill_value=after + 1).astype(float).sort_index()


def summarise(table: pd.DataFrame, metrics: Sequence[str], baseline: str = EXPLORER,
              confidence: float = CONFIDENCE, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Mean and bootstrap CI over maps of each metric, per condition x agent x model, with paired differences.

    The difference is taken for every row whose ``model`` is not empty (the
    ICRL models) against ``baseline`` in the same condition, over the maps
    both have a value for, resampling the maps jointly.
    """
    rows = []
    keys = ["experiment", "condition", "agent", "model"]
    for (experiment, condition, agent, model), part in table.groupby(keys, sort=False):
        reference = table[(table["condition"] == condition) & (table["agent"] == baseline) & (table["experiment"] == experiment)]
        for name in metrics:
            values = METRICS[name](part)
            row = {"experiment": experiment, "condition": condition, "agent": agent, "model": model, "metric": name,
                   "n_maps": len(values)}
            ci = mean_ci(values.to_numpy(), confidence, n_boot, seed) if len(values) else None
            row.update(mean=ci.mean if ci else np.nan, low=ci.low if ci else np.nan, high=ci.high if ci else np.nan)
            if model and len(reference):
                other = METRICS[name](reference)
                both = values.index.intersection(other.index)
                row["versus"] = baseline
                if len(both):
                    diff = paired_difference(values[both].to_numpy(), other[both].to_numpy(), confidence, n_boot, seed)
                    row.update(diff=diff.mean, diff_low=diff.low, diff_high=diff.high)
            rows.append(row)
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


# --------------------------------------------------------------------------------- the five experiments
def in_distribution(networks: Mapping, maps: int = 200, episodes: int = 10, paper_episodes: int = 30,
                    seed: int = 0, progress=None) -> Experiment:
    """Unseen maps of the training distribution (test split): greedy play, and the paper's exploration schedule.

    Greedy: ``episodes`` episodes of at most 25 steps (the shipped models'
    training setting). Paper: ``paper_episodes`` episodes of at most 100 steps
    with ``Schedule.paper()`` (random actions fading out over the first 20).
    Agents: every ICRL model and its context-reset ablation, random, Q-learning,
    explorer, oracle.
    """
    lake_maps = MapDistribution.paper().sample_many(maps, seed=seed, split="test")
    players = icrl_players(networks, ablation=True) + [BASELINE_PLAYERS[n] for n in ("random", "q-learning", "explorer", "oracle")]
    table = pd.concat([
        play(players, lake_maps, "in-distribution", "greedy", episodes, seed, 25, progress=progress),
        play(players, lake_maps, "in-distribution", "paper schedule", paper_episodes, seed, 100, Schedule.paper(),
             progress=progress),
    ], ignore_index=True)
    metrics = ["success", "success, last episode", "episodes to first success", "length / shortest after first success"]
    return Experiment(table, summarise(table, metrics, seed=seed))


OOD_AXES = {
    "3-5 x 3-5 (training)": (MapDistribution.paper(), False, 25),
    "6-7 x 6-7": (MapDistribution.paper_ood(), False, 50),
    "hole density 0.3": (MapDistribution.paper(p_hole=0.3), False, 25),
    "gymnasium 8x8": (MapDistribution.gymnasium(8), False, 50),
    "slippery": (MapDistribution.paper(), True, 50),
}
"""Condition -> (maps, slippery ice, step limit). The first is the in-distribution reference; larger maps get longer episodes."""


def out_of_distribution(networks: Mapping, maps: int = 100, episodes: int = 10, seed: int = 0,
                        axes: Sequence[str] | None = None, progress=None) -> Experiment:
    """One condition per axis of ``OOD_AXES``: ICRL models, explorer and random on ``maps`` test-split maps each."""
    parts = []
    for axis in axes or list(OOD_AXES):
        distribution, slippery, steps = OOD_AXES[axis]
        lake_maps = distribution.sample_many(maps, seed=seed, split="test")
        players = icrl_players(networks) + [BASELINE_PLAYERS["explorer"], BASELINE_PLAYERS["random"]]
        parts.append(play(players, lake_maps, "out-of-distribution", axis, episodes, seed, steps, is_slippery=slippery,
                          progress=progress))
    table = pd.concat(parts, ignore_index=True)
    return Experiment(table, summarise(table, ["success", "success, last episode"], seed=seed))


def behaviour_player(spec: str) -> list[tuple[Player, float, float]]:
    """The behaviour of a ``data.parse_behaviours`` spec as ``(player, epsilon, share)`` parts."""
    parts = parse_behaviours(spec)
    total = sum(b.weight for b in parts)
    return [(Player("behaviour", "", POLICIES[b.policy]), b.epsilon, b.weight / total) for b in parts]


def data_quality(networks: Mapping, behaviours: Mapping[str, str] | None = None, maps: int = 100, episodes: int = 10,
                 seed: int = 0, progress=None) -> Experiment:
    """Each offline-trained model against the behaviour that made its data, on the same test-split maps.

    ``networks`` maps a checkpoint name to its network; ``behaviours`` (default
    ``DATA_QUALITY``) maps the same name to its behaviour spec. The
    behaviour's success is played like the data was (its epsilon in every
    episode); for a mixture, the share-weighted mean of its parts' success on
    each map, which is the mixture's expected success there. Condition = checkpoint name.
    """
    behaviours = DATA_QUALITY if behaviours is None else behaviours
    lake_maps = MapDistribution.paper().sample_many(maps, seed=seed, split="test")
    parts = []
    for name, network in networks.items():
        if name not in behaviours:
            raise ValueError(f"no behaviour is known for {name!r}: pass behaviours={{'{name}': 'explorer:0.3'}} (a data spec)")
        parts.append(play([Player("icrl", name, lambda n=network: n.agent(name="icrl"))], lake_maps, "data quality",
                          name, episodes, seed, 25, progress=progress))
        mixture = []
        for player, epsilon, share in behaviour_player(behaviours[name]):
            played = play([player], lake_maps, "data quality", name, episodes, seed, 25, Schedule.epsilon_greedy(epsilon),
                          progress=progress)
            mixture.append(played.assign(success=played["success"] * share))
        behaviour = mixture[0].copy()
        behaviour["success"] = sum(m["success"].to_numpy() for m in mixture)
        parts.append(behaviour)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(TIDY_COLUMNS))
    return Experiment(table, summarise(table, ["success", "success, last episode"], baseline="behaviour", seed=seed))


def stitching(networks: Mapping, cases: int = 200, seed: int = 0, max_episode_steps: int = 25, progress=None) -> Experiment:
    """First greedy episode after a stitching context: the paper's map, and ``cases`` generated ones.

    Every agent gets the same prefix: ICRL reads it, the explorer remembers it,
    and the context-reset ablation wipes it at the first episode start (so it
    plays as if it had seen nothing).
    """
    players = icrl_players(networks, ablation=True) + [BASELINE_PLAYERS["explorer"]]
    paper = paper_stitching_case()
    generated = stitching_cases(cases, seed=seed)
    table = pd.concat([
        play(players, [paper.lake_map], "stitching", "paper map (6 x 4)", 1, seed, max_episode_steps,
             prefix=[paper.prefix()], progress=progress),
        play(players, [c.lake_map for c in generated], "stitching", "generated 3-5 x 3-5", 1, seed, max_episode_steps,
             prefix=[c.prefix() for c in generated], progress=progress),
    ], ignore_index=True)
    return Experiment(table, summarise(table, ["success", "length / shortest, first episode"], seed=seed))


def non_stationary(networks: Mapping, maps: int = 100, before: int = 8, after: int = 8, seed: int = 0,
                   kinds: Sequence[str] = SWITCH_KINDS, progress=None) -> Experiment:
    """The map changes after ``before`` episodes, for ``after`` more: one condition per kind of switch.

    Agents: ICRL models, the explorer (its memory is now wrong and it never
    doubts it), the forgetful explorer (forgets a map when surprised) and
    Q-learning. Maps that allow no switch of a kind are left out of that condition.
    """
    lake_maps = MapDistribution.paper().sample_many(maps, seed=seed, split="test")
    players = icrl_players(networks) + [BASELINE_PLAYERS[n] for n in ("explorer", "forgetful explorer", "q-learning")]
    parts = []
    for kind in kinds:
        kept, new = switch_pairs(lake_maps, kind, seed=seed)
        parts.append(play(players, kept, "non-stationary", kind, before + after, seed, 25, switch=(before, new),
                          progress=progress))
    table = pd.concat(parts, ignore_index=True)
    return Experiment(table, summarise(table, ["success after switch", "episodes to recover"], seed=seed))
