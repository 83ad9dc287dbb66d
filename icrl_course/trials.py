"""Multi-episode trials: the unit of experience an in-context learner reads.

A *trial* is K episodes on one map that the agent does not know in advance.
Everything downstream consumes the ``Trial`` record defined here: the
tokenizers turn it into model inputs, the datasets store it, the evaluation
tables summarise it. The agent protocol (``Agent``) is what every agent, from
the random baseline to the Llama Q-network, implements to be run by
``run_trials``.

``run_trials`` runs one agent on a batch of maps (one trial per map, every
lake stepped together by ``BatchFrozenLake``), replaces the agent's actions by
random ones as an exploration ``Schedule`` says, and returns ``TrialResults``:
the ``Trial`` records and a tidy table (one row per map x episode) with helpers
for per-episode means and bootstrap confidence intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from icrl_course.envs import BatchFrozenLake, LakeMap
from icrl_course.envs.frozen_lake import as_lake_map
from icrl_course.runtime import as_rng


@dataclass(frozen=True)
class Trial:
    """Every step of one multi-episode trial on one map, in order (T steps).

    ``obs[t]`` is the observation at which ``actions[t]`` was taken (the action
    actually executed, after any exploration replacement); ``next_obs[t]`` is
    where that step landed (the hole or goal tile on an ending step, before any
    reset), ``rewards[t]`` its reward. ``terminated[t]`` is True when the step
    reached a hole or goal; ``truncated[t]`` when the step limit cut the episode
    (it can be True together with ``terminated``, as with gymnasium's
    ``TimeLimit``). ``episode[t]`` numbers the episodes from 0.
    """

    lake_map: LakeMap
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.obs)
        for name in ("actions", "rewards", "next_obs", "terminated", "truncated", "episode"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Trial.{name} has {len(getattr(self, name))} steps but obs has {n}: all arrays need one entry per step")
        if n and (self.actions.min() < 0 or self.actions.max() > 3):
            bad = self.actions[(self.actions < 0) | (self.actions > 3)][0]
            raise ValueError(f"Trial.actions contains {bad}: actions must be 0 (left), 1 (down), 2 (right) or 3 (up)")
        limit = self.lake_map.n_states
        for name in ("obs", "next_obs"):
            values = getattr(self, name)
            if n and (values.min() < 0 or values.max() >= limit):
                raise ValueError(f"Trial.{name} has a state outside 0..{limit - 1} for a {self.lake_map.nrow}x{self.lake_map.ncol} map")

    def __len__(self) -> int:
        return len(self.obs)

    @property
    def num_episodes(self) -> int:
        return int(self.episode.max()) + 1 if len(self) else 0

    @property
    def episode_ends(self) -> np.ndarray:
        """True on the last step of every episode (terminated or truncated)."""
        return self.terminated | self.truncated

    def episode_slice(self, k: int) -> "Trial":
        """The steps of episode ``k`` alone, as a one-episode trial."""
        keep = self.episode == k
        return Trial(self.lake_map, self.obs[keep], self.actions[keep], self.rewards[keep], self.next_obs[keep],
                     self.terminated[keep], self.truncated[keep], np.zeros(int(keep.sum()), dtype=np.int64))

    @classmethod
    def from_steps(cls, lake_map: LakeMap, steps: Sequence[tuple]) -> "Trial":
        """Build a trial by hand from ``(obs, action, reward, next_obs, terminated, truncated)`` tuples.

        Episodes are numbered by counting the ending steps; handy for tests and lessons.
        """
        columns = list(zip(*steps)) if steps else [[]] * 6
        obs, actions, rewards, next_obs, terminated, truncated = (np.asarray(c) for c in columns)
        ends = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
        episode = np.concatenate([[0], np.cumsum(ends)[:-1]]) if len(ends) else np.zeros(0)
        return cls(lake_map, obs.astype(np.int64), actions.astype(np.int64), rewards.astype(np.float64),
                   next_obs.astype(np.int64), ends & np.asarray(terminated, dtype=bool), np.asarray(truncated, dtype=bool),
                   episode.astype(np.int64))


@dataclass(frozen=True)
class Transition:
    """One step of a batch of B trials, as ``run_trials`` hands it to agents; every field is ``(B,)``.

    ``active`` is False for lakes whose trial already finished its K episodes:
    their entries are padding and agents must ignore them.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    active: np.ndarray


class Agent(Protocol):
    """What ``run_trials`` needs from an agent.

    ``begin`` starts a fresh trial on each of B maps: an agent forgets all it
    learned in earlier trials (in-context learners keep only their weights).
    Only the oracle may read the tiles; every other agent may use a map's shape
    alone (``nrow``, ``ncol``), since it observes only its cell index.
    ``act`` returns one action per lake for the current observations;
    ``observe`` receives the step that followed, including the action actually
    taken after any exploration replacement.
    """

    def begin(self, maps: Sequence[LakeMap], rng: np.random.Generator) -> None: ...

    def act(self, obs: np.ndarray) -> np.ndarray: ...

    def observe(self, step: Transition) -> None: ...


# --------------------------------------------------------------------------- exploration schedules
@dataclass(frozen=True)
class Schedule:
    """How often the agent's own action is used, episode by episode.

    ``agent_prob(k)`` is the probability that, at any step of episode ``k``
    (counted from 0), the action the agent chose is executed; otherwise a
    uniformly random action (any of the four, the agent's included) replaces
    it. Episode ``k`` uses ``probs[k]`` while ``k < len(probs)`` and ``after``
    from then on. One table covers every schedule the course needs: the
    paper's staircase (``paper``), plain epsilon-greedy with a constant or
    linearly decaying epsilon (``epsilon_greedy``) and no replacement at all
    (``greedy``). The agent still observes the executed action, so a replaced
    step is experience like any other.
    """

    probs: tuple[float, ...] = ()
    """Probability that the agent's action is used in episodes 0, 1, ..., len(probs) - 1."""
    after: float = 1.0
    """Probability used for every later episode."""

    def __post_init__(self) -> None:
        probs = tuple(float(p) for p in self.probs)
        object.__setattr__(self, "probs", probs)
        for k, p in enumerate(probs):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"Schedule.probs[{k}]={p} is a probability: it must lie in [0, 1]")
        if not 0.0 <= self.after <= 1.0:
            raise ValueError(f"Schedule.after={self.after} is a probability: it must lie in [0, 1]")

    def agent_prob(self, episode: int | np.ndarray) -> np.ndarray:
        """Probability that the agent's own action is used in episode(s) ``episode`` (from 0)."""
        episode = np.asarray(episode)
        if np.any(episode < 0):
            raise ValueError("episode indices count from 0; got a negative one")
        table = np.append(np.asarray(self.probs, dtype=np.float64), self.after)
        return table[np.minimum(episode, len(self.probs))]

    @classmethod
    def greedy(cls) -> "Schedule":
        """The agent's action is always used."""
        return cls()

    @classmethod
    def paper(cls) -> "Schedule":
        """Rentschler & Roberts' evaluation: agent prob 0, 0.1, ..., 0.9 for two episodes each, then 1.0.

        Over their 30 evaluation episodes that is 20 episodes of fading
        random exploration followed by 10 where the agent acts alone.
        """
        return cls(tuple(p / 10 for p in range(10) for _ in range(2)), 1.0)

    @classmethod
    def epsilon_greedy(cls, epsilon: float, final_epsilon: float | None = None, decay_episodes: int = 0) -> "Schedule":
        """Random action with probability ``epsilon``; optionally decaying linearly to ``final_epsilon``.

        With ``final_epsilon`` and ``decay_episodes`` given, episode ``k``
        uses ``epsilon + (final_epsilon - epsilon) * k / decay_episodes`` until
        ``k = decay_episodes`` and ``final_epsilon`` afterwards.
        """
        for name, value in (("epsilon", epsilon), ("final_epsilon", final_epsilon)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} is a probability: it must lie in [0, 1]")
        if final_epsilon is None:
            return cls((), 1.0 - epsilon)
        if not isinstance(decay_episodes, (int, np.integer)) or decay_episodes < 1:
            raise ValueError(f"decay_episodes={decay_episodes!r} must be an int >= 1 when final_epsilon is given")
        eps = epsilon + (final_epsilon - epsilon) * np.arange(decay_episodes) / decay_episodes
        return cls(tuple(1.0 - eps), 1.0 - final_epsilon)


# --------------------------------------------------------------------------------- running trials
TABLE_COLUMNS = ("agent", "lake", "digest", "episode", "return", "length", "success", "fell_in_hole",
                 "timed_out", "agent_prob", "seed")
"""Columns of ``TrialResults.table``; ``episode`` counts from 0 like ``Trial.episode``."""


@dataclass(frozen=True)
class TrialResults:
    """What ``run_trials`` returns: one ``Trial`` per map and a tidy per-episode table.

    ``table`` has one row per map x episode (``TABLE_COLUMNS``): ``return``
    (sum of rewards), ``length`` (steps), ``success`` (reached a goal),
    ``fell_in_hole``, ``timed_out`` (cut by the step limit before reaching a
    hole or goal), ``agent_prob`` (the schedule's probability for that
    episode) and the run's ``seed`` (missing when a generator was passed).
    """

    trials: list[Trial]
    table: pd.DataFrame

    def per_episode(self, metric: str = "success", confidence: float = 0.95, n_boot: int = 2000,
                    seed: int | np.random.Generator | None = 0) -> pd.DataFrame:
        """Mean of ``metric`` per episode with a bootstrap confidence interval (see ``per_episode``)."""
        return per_episode(self.table, metric, confidence, n_boot, seed)


def run_trials(
    agent: Agent,
    maps: Sequence[LakeMap | Sequence[str]],
    episodes: int = 30,
    schedule: Schedule | None = None,
    seed: int | np.random.Generator | None = None,
    max_episode_steps: int = 100,
    is_slippery: bool = False,
    agent_name: str | None = None,
    progress: bool = False,
) -> TrialResults:
    """Run ``agent`` for one trial of ``episodes`` episodes on every map, all lakes stepped together.

    Each step the agent chooses actions for all B lakes; with probability
    ``1 - schedule.agent_prob(episode)`` (per lake, per step) a uniformly
    random action replaces a lake's action; the lakes step; the agent observes
    the ``Transition`` with the executed actions. A lake whose trial finished
    keeps being stepped as padding with ``active`` False (lakes finish at
    different times) and nothing of it is recorded.

    Args:
        agent: anything with ``begin``/``act``/``observe`` (``Agent``).
        maps: the B maps, one trial each.
        episodes: K, the episodes per trial.
        schedule: exploration schedule; None means the agent always acts.
        seed: one seed for everything random here (starts, slips, replacements,
            the agent's own draws): the same seed gives the same results.
        max_episode_steps: step limit per episode (the paper's is 100).
        is_slippery: FrozenLake's slippery ice (passed to ``BatchFrozenLake``).
        agent_name: the ``agent`` column; defaults to ``agent.name`` or the class name.
        progress: show a progress bar counting finished episodes.
    """
    if not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes={episodes!r} must be an int >= 1")
    if max_episode_steps is None:
        raise ValueError("max_episode_steps=None: a trial needs a step limit, or an agent that never ends an episode runs forever")
    schedule = Schedule.greedy() if schedule is None else schedule
    maps = [as_lake_map(m) for m in maps]
    rng = as_rng(seed)
    env_rng, agent_rng, explore_rng = rng.spawn(3)
    env = BatchFrozenLake(maps, is_slippery=is_slippery, max_episode_steps=max_episode_steps, seed=env_rng)
    num_lakes = len(maps)
    agent.begin(maps, agent_rng)

    obs = env.reset()
    episode = np.zeros(num_lakes, dtype=np.int64)
    active = np.ones(num_lakes, dtype=bool)
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "episode", "active")}
    with tqdm(total=num_lakes * episodes, desc="episodes", disable=not progress) as bar:
        while active.any():
            chosen = np.asarray(agent.act(obs))
            if chosen.shape != (num_lakes,):
                raise ValueError(f"agent.act returned shape {chosen.shape}; expected ({num_lakes},), one action per lake")
            use_agent = explore_rng.random(num_lakes) < schedule.agent_prob(episode)
            actions = np.where(use_agent, chosen, explore_rng.integers(0, 4, size=num_lakes)).astype(np.int64)
            next_obs, rewards, terminated, truncated, info = env.step(actions)
            step = Transition(obs, actions, rewards, info["final_obs"], terminated, truncated, active.copy())
            agent.observe(step)
            for name, value in (("obs", obs), ("actions", actions), ("rewards", rewards), ("next_obs", step.next_obs),
                                ("terminated", terminated), ("truncated", truncated), ("episode", episode.copy()),
                                ("active", step.active)):
                columns[name].append(value)
            ended = (terminated | truncated) & active
            episode += ended
            active &= episode < episodes
            bar.update(int(ended.sum()))
            obs = next_obs
    arrays = {name: np.stack(values) for name, values in columns.items()}  # each (T, B)
    name = agent_name or getattr(agent, "name", type(agent).__name__)
    return TrialResults(_trials_of(maps, arrays), _table_of(maps, arrays, episodes, schedule, seed, name))


def _trials_of(maps: list[LakeMap], arrays: dict[str, np.ndarray]) -> list[Trial]:
    """Cut the (T, B) step arrays into one ``Trial`` per lake, keeping its active steps."""
    trials = []
    for b, lake_map in enumerate(maps):
        keep = arrays["active"][:, b]
        trials.append(Trial(lake_map, *(arrays[k][keep, b] for k in
                                        ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "episode"))))
    return trials


def _table_of(maps: list[LakeMap], arrays: dict[str, np.ndarray], episodes: int, schedule: Schedule,
              seed, agent_name: str) -> pd.DataFrame:
    """One row per lake x episode, summed from the active steps in one pass of bincounts."""
    t_idx, lake = np.nonzero(arrays["active"])
    cell = lake * episodes + arrays["episode"][t_idx, lake]
    size = len(maps) * episodes
    returns = np.bincount(cell, weights=arrays["rewards"][t_idx, lake], minlength=size)
    lengths = np.bincount(cell, minlength=size)
    terminated, truncated = arrays["terminated"][t_idx, lake], arrays["truncated"][t_idx, lake]
    landed = arrays["next_obs"][t_idx, lake]
    width = max(m.n_states for m in maps)
    is_goal, is_hole = np.zeros((len(maps), width), dtype=bool), np.zeros((len(maps), width), dtype=bool)
    for b, m in enumerate(maps):  # once per run, not per step
        is_goal[b, list(m.goals)] = True
        is_hole[b, list(m.holes)] = True
    success = np.bincount(cell, weights=terminated & is_goal[lake, landed], minlength=size) > 0
    hole = np.bincount(cell, weights=terminated & is_hole[lake, landed], minlength=size) > 0
    timed_out = np.bincount(cell, weights=truncated & ~terminated, minlength=size) > 0
    lake_of_cell, episode_of_cell = np.divmod(np.arange(size), episodes)
    seed_value = int(seed) if isinstance(seed, (int, np.integer)) else pd.NA
    return pd.DataFrame({
        "agent": agent_name,
        "lake": lake_of_cell,
        "digest": np.array([m.digest for m in maps])[lake_of_cell],
        "episode": episode_of_cell,
        "return": returns,
        "length": lengths,
        "success": success,
        "fell_in_hole": hole,
        "timed_out": timed_out,
        "agent_prob": schedule.agent_prob(episode_of_cell),
        "seed": pd.array([seed_value] * size, dtype="Int64"),
    }, columns=list(TABLE_COLUMNS))


# ------------------------------------------------------------------------------------ summaries
def per_episode(table: pd.DataFrame, metric: str = "success", confidence: float = 0.95, n_boot: int = 2000,
                seed: int | np.random.Generator | None = 0) -> pd.DataFrame:
    """Per agent and episode: the mean of ``metric`` over maps and a bootstrap confidence interval.

    The bootstrap resamples *maps* (with replacement, ``n_boot`` times) and
    keeps each resampled map's whole trial, so the intervals of different
    episodes come from the same resamples; the interval is the central
    ``confidence`` share of the resampled means (percentile bootstrap). Seeded:
    the same ``seed`` gives the same intervals, and with an int seed every
    agent is resampled the same way (paired across agents that ran on the same
    maps). Returns columns ``agent``, ``episode`` (from 0), ``mean``, ``low``,
    ``high``, ``n_maps``.
    """
    if metric not in table.columns:
        raise ValueError(f"metric={metric!r} is not a column of the table; pick one of {list(table.columns)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie strictly between 0 and 1 (0.95 for a 95% interval)")
    parts = []
    agents = table["agent"] if "agent" in table.columns else pd.Series("agent", index=table.index)
    for name, rows in table.groupby(agents, sort=False):
        if rows.duplicated(["lake", "episode"]).any():
            raise ValueError(f"agent {name!r} has several rows for the same lake and episode: give each run its own agent name")
        values = rows.pivot(index="lake", columns="episode", values=metric).to_numpy(dtype=np.float64)  # (n, K)
        n = len(values)
        rng = as_rng(seed)  # an int seed gives every agent the same resamples: equal data, equal intervals
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)  # (n_boot, n): how often each map is drawn
        boot = counts @ values / n
        tail = (1.0 - confidence) / 2 * 100
        low, high = np.percentile(boot, [tail, 100 - tail], axis=0)
        parts.append(pd.DataFrame({"agent": name, "episode": np.arange(values.shape[1]), "mean": values.mean(axis=0),
                                   "low": low, "high": high, "n_maps": n}))
    return pd.concat(parts, ignore_index=True)


def episode_table(table: pd.DataFrame, numbers: Iterable[int] = (1, 2, 5, 10, 30), metric: str = "success",
                  confidence: float = 0.95, n_boot: int = 2000, seed: int | np.random.Generator | None = 0,
                  digits: int = 2) -> pd.DataFrame:
    """A readable agent x episode table of ``mean [low, high]`` strings.

    ``numbers`` are episode numbers as people say them, counted from 1 ("the
    first episode"); they are ``episode + 1`` in the tidy table.
    """
    summary = per_episode(table, metric, confidence, n_boot, seed)
    numbers = list(numbers)
    last = int(summary["episode"].max()) + 1
    if any(k < 1 or k > last for k in numbers):
        raise ValueError(f"episode numbers {numbers} must lie in 1..{last} (the trials have {last} episodes)")
    chosen = summary[summary["episode"].isin([k - 1 for k in numbers])]
    text = chosen.apply(lambda r: f"{r['mean']:.{digits}f} [{r['low']:.{digits}f}, {r['high']:.{digits}f}]", axis=1)
    wide = chosen.assign(text=text, column=[f"ep {e + 1}" for e in chosen["episode"]]).pivot(
        index="agent", columns="column", values="text")
    wide = wide[[f"ep {k}" for k in numbers]]
    wide.columns.name = None
    return wide.loc[list(dict.fromkeys(chosen["agent"]))]
