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
for per-episode means and bootstrap confidence intervals (``icrl_course.stats``).
Two play protocols are open to every agent, so that comparisons stay fair: a
recorded ``prefix`` played back to the agent before play (stitching), and a
``switch`` of maps at episode ``k`` with the agent's state kept (non-stationarity).
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
from icrl_course.stats import mean_ci


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
    taken after any exploration replacement. A recorded prefix reaches the
    agent the same way (``act``, whose choice is dropped, then ``observe``), so
    an agent needs nothing extra to read one.
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
TABLE_COLUMNS = ("agent", "lake", "digest", "switched", "episode", "return", "length", "success", "fell_in_hole",
                 "timed_out", "agent_prob", "seed")
"""Columns of ``TrialResults.table``; ``episode`` counts from 0 like ``Trial.episode``."""

STEP_FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")
"""The per-step arrays a ``Transition`` and a ``Trial`` share."""


@dataclass(frozen=True)
class TrialResults:
    """What ``run_trials`` returns: one ``Trial`` per map and a tidy per-episode table.

    ``table`` has one row per map x episode (``TABLE_COLUMNS``): ``lake``
    (the trial's index in ``maps``), ``digest`` (the map that episode was
    played on: it changes at a ``switch``), ``switched`` (played after the
    switch), ``return`` (sum of rewards), ``length`` (steps), ``success``
    (reached a goal), ``fell_in_hole``, ``timed_out`` (cut by the step limit
    before reaching a hole or goal), ``agent_prob`` (the schedule's
    probability for that episode) and the run's ``seed`` (missing when a
    generator was passed). A prefix's episodes are not in it.
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
    prefix: Sequence[Trial] | None = None,
    switch: tuple[int, Sequence[LakeMap | Sequence[str]]] | None = None,
) -> TrialResults:
    """Run ``agent`` for one trial of ``episodes`` episodes on every map, all lakes stepped together.

    Each step the agent chooses actions for all B lakes; with probability
    ``1 - schedule.agent_prob(episode)`` (per lake, per step) a uniformly
    random action replaces a lake's action; the lakes step; the agent observes
    the ``Transition`` with the executed actions. A lake whose trial finished
    keeps being stepped as padding with ``active`` False (lakes finish at
    different times) and nothing of it is recorded.

    Two play protocols, open to every agent so that comparisons stay fair:

    * ``prefix``: one recorded ``Trial`` per map (``Trial.from_steps`` makes
      one by hand; its episodes may start on any tile) is played back to the
      agent before play starts, exactly as a step whose action was replaced:
      the agent acts (its choice is dropped) and then observes the recorded
      step. An in-context learner reads the prefix as context, the explorer
      and the Q-learner learn from it. Prefixes of different lengths end
      together (shorter ones are padded in front with inactive steps, which an
      agent ignores or, like the transformer, starts its context afresh after);
      each must end with an episode end. Its episodes are not counted.
    * ``switch=(k, new_maps)``: when a lake's episode ``k`` (from 0) starts,
      its trial continues on ``new_maps[b]`` (same shape) with the agent's
      state untouched: the agent is not told, and its context or memory stays.
      ``1 <= k < episodes``. The table's ``digest`` and ``switched`` columns say
      which map each episode was played on; ``trials[b].lake_map`` stays the
      first map.

    Args:
        agent: anything with ``begin``/``act``/``observe`` (``Agent``).
        maps: the B maps, one trial each.
        episodes: K, the episodes per trial (the prefix's not counted).
        schedule: exploration schedule; None means the agent always acts.
        seed: one seed for everything random here (starts, slips, replacements,
            the agent's own draws): the same seed gives the same results.
        max_episode_steps: step limit per episode (the paper's is 100).
        is_slippery: FrozenLake's slippery ice (passed to ``BatchFrozenLake``).
        agent_name: the ``agent`` column; defaults to ``agent.name`` or the class name.
        progress: show a progress bar counting finished episodes.
        prefix: recorded trials fed to the agent before play, one per map.
        switch: ``(k, new_maps)``, the non-stationary protocol.
    """
    if not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes={episodes!r} must be an int >= 1")
    if max_episode_steps is None:
        raise ValueError("max_episode_steps=None: a trial needs a step limit, or an agent that never ends an episode runs forever")
    schedule = Schedule.greedy() if schedule is None else schedule
    maps = [as_lake_map(m) for m in maps]
    switch_at, new_maps = _check_switch(switch, maps, episodes)
    rng = as_rng(seed)
    env_rng, agent_rng, explore_rng, switch_rng = rng.spawn(4)
    env = BatchFrozenLake(maps, is_slippery=is_slippery, max_episode_steps=max_episode_steps, seed=env_rng)
    num_lakes = len(maps)
    agent.begin(maps, agent_rng)
    if prefix is not None:
        _play_back(agent, _padded_prefix(prefix, maps))

    obs = env.reset()
    if new_maps is not None:
        new_env = BatchFrozenLake(new_maps, is_slippery=is_slippery, max_episode_steps=max_episode_steps, seed=switch_rng)
        new_env.reset()
    on_new = np.zeros(num_lakes, dtype=bool)
    episode = np.zeros(num_lakes, dtype=np.int64)
    active = np.ones(num_lakes, dtype=bool)
    columns: dict[str, list[np.ndarray]] = {k: [] for k in STEP_FIELDS + ("episode", "active")}
    with tqdm(total=num_lakes * episodes, desc="episodes", disable=not progress) as bar:
        while active.any():
            chosen = np.asarray(agent.act(obs))
            if chosen.shape != (num_lakes,):
                raise ValueError(f"agent.act returned shape {chosen.shape}; expected ({num_lakes},), one action per lake")
            use_agent = explore_rng.random(num_lakes) < schedule.agent_prob(episode)
            actions = np.where(use_agent, chosen, explore_rng.integers(0, 4, size=num_lakes)).astype(np.int64)
            next_obs, rewards, terminated, truncated, info = env.step(actions)
            final_obs = info["final_obs"]
            if new_maps is not None:  # both lakes step; a lake reads the one its trial is on now
                new_step = new_env.step(actions)
                next_obs, rewards, terminated, truncated, final_obs = (
                    np.where(on_new, new, old) for new, old in
                    zip(new_step[:4] + (new_step[4]["final_obs"],), (next_obs, rewards, terminated, truncated, final_obs)))
            step = Transition(obs, actions, rewards, final_obs, terminated, truncated, active.copy())
            agent.observe(step)
            for name, value in zip(STEP_FIELDS + ("episode", "active"),
                                   (obs, actions, rewards, final_obs, terminated, truncated, episode.copy(), step.active)):
                columns[name].append(value)
            ended = (terminated | truncated) & active
            episode += ended
            active &= episode < episodes
            bar.update(int(ended.sum()))
            if new_maps is not None:
                switching = ended & active & (episode == switch_at)
                if switching.any():  # the next episode starts on the new map
                    next_obs = np.where(switching, new_env.reset_lakes(switching), next_obs)
                    on_new |= switching
            obs = next_obs
    arrays = {name: np.stack(values) for name, values in columns.items()}  # each (T, B)
    name = agent_name or getattr(agent, "name", type(agent).__name__)
    table = _table_of(maps, new_maps, switch_at, arrays, episodes, schedule, seed, name)
    return TrialResults(_trials_of(maps, arrays), table)


def _check_switch(switch, maps: list[LakeMap], episodes: int) -> tuple[int, list[LakeMap] | None]:
    """``(k, new_maps)`` checked against the run, or ``(episodes, None)`` without a switch."""
    if switch is None:
        return episodes, None
    k, new_maps = switch
    if not isinstance(k, (int, np.integer)) or not 1 <= k < episodes:
        raise ValueError(f"switch=({k!r}, ...): the switch episode must be an int in 1..{episodes - 1} "
                         f"(episode k, counted from 0, is the first on the new map)")
    new_maps = [as_lake_map(m) for m in new_maps]
    if len(new_maps) != len(maps):
        raise ValueError(f"switch has {len(new_maps)} new maps for {len(maps)} maps: give one new map per map")
    for b, (old, new) in enumerate(zip(maps, new_maps)):
        if old.shape != new.shape:
            raise ValueError(f"new map {b} is {new.nrow}x{new.ncol} but map {b} is {old.nrow}x{old.ncol}: "
                             "a switch keeps the shape (agents know only the shape of their map)")
    return int(k), new_maps


def _padded_prefix(prefix: Sequence[Trial], maps: list[LakeMap]) -> dict[str, np.ndarray]:
    """The prefixes as ``(T, B)`` step arrays that end together, shorter ones padded in front (``active`` False)."""
    prefix = list(prefix)
    if len(prefix) != len(maps):
        raise ValueError(f"prefix has {len(prefix)} trials for {len(maps)} maps: give one recorded trial per map")
    for b, (trial, lake_map) in enumerate(zip(prefix, maps)):
        if not isinstance(trial, Trial):
            raise ValueError(f"prefix[{b}] is a {type(trial).__name__}; it must be a Trial (Trial.from_steps builds one)")
        if trial.lake_map.shape != lake_map.shape:
            raise ValueError(f"prefix[{b}] was recorded on a {trial.lake_map.nrow}x{trial.lake_map.ncol} map but map {b} "
                             f"is {lake_map.nrow}x{lake_map.ncol}: a prefix must come from a map of the same shape")
        if len(trial) == 0 or not trial.episode_ends[-1]:
            raise ValueError(f"prefix[{b}] does not end with an episode end (terminated or truncated): play starts a "
                             "new episode, so a prefix must hold whole episodes")
    longest = max(len(t) for t in prefix)
    padded = {name: np.zeros((longest, len(maps)), dtype=getattr(prefix[0], name).dtype) for name in STEP_FIELDS}
    padded["active"] = np.zeros((longest, len(maps)), dtype=bool)
    for b, trial in enumerate(prefix):
        start = longest - len(trial)
        for name in ("obs", "next_obs"):  # padding stands on the prefix's first tile, which the agent sees anyway
            padded[name][:start, b] = trial.obs[0]
        for name in STEP_FIELDS:
            padded[name][start:, b] = getattr(trial, name)
        padded["active"][start:, b] = True
    return padded


def _play_back(agent: Agent, steps: dict[str, np.ndarray]) -> None:
    """Feed recorded ``(T, B)`` steps to the agent: it acts on each observation (the choice is dropped), then observes."""
    for t in range(len(steps["obs"])):
        agent.act(steps["obs"][t])
        agent.observe(Transition(*(steps[name][t] for name in STEP_FIELDS + ("active",))))


def _trials_of(maps: list[LakeMap], arrays: dict[str, np.ndarray]) -> list[Trial]:
    """Cut the (T, B) step arrays into one ``Trial`` per lake, keeping its active steps."""
    trials = []
    for b, lake_map in enumerate(maps):
        keep = arrays["active"][:, b]
        trials.append(Trial(lake_map, *(arrays[k][keep, b] for k in STEP_FIELDS + ("episode",))))
    return trials


def _table_of(maps: list[LakeMap], new_maps: list[LakeMap] | None, switch_at: int, arrays: dict[str, np.ndarray],
              episodes: int, schedule: Schedule, seed, agent_name: str) -> pd.DataFrame:
    """One row per lake x episode, summed from the active steps in one pass of bincounts."""
    t_idx, lake = np.nonzero(arrays["active"])
    step_episode = arrays["episode"][t_idx, lake]
    cell = lake * episodes + step_episode
    size = len(maps) * episodes
    returns = np.bincount(cell, weights=arrays["rewards"][t_idx, lake], minlength=size)
    lengths = np.bincount(cell, minlength=size)
    terminated, truncated = arrays["terminated"][t_idx, lake], arrays["truncated"][t_idx, lake]
    landed = arrays["next_obs"][t_idx, lake]
    played = maps + (new_maps or [])  # map b before the switch, map len(maps) + b after it
    width = max(m.n_states for m in played)
    is_goal, is_hole = np.zeros((len(played), width), dtype=bool), np.zeros((len(played), width), dtype=bool)
    for b, m in enumerate(played):  # once per run, not per step
        is_goal[b, list(m.goals)] = True
        is_hole[b, list(m.holes)] = True
    step_map = lake + len(maps) * (step_episode >= switch_at)
    success = np.bincount(cell, weights=terminated & is_goal[step_map, landed], minlength=size) > 0
    hole = np.bincount(cell, weights=terminated & is_hole[step_map, landed], minlength=size) > 0
    timed_out = np.bincount(cell, weights=truncated & ~terminated, minlength=size) > 0
    lake_of_cell, episode_of_cell = np.divmod(np.arange(size), episodes)
    switched = episode_of_cell >= switch_at
    seed_value = int(seed) if isinstance(seed, (int, np.integer)) else pd.NA
    return pd.DataFrame({
        "agent": agent_name,
        "lake": lake_of_cell,
        "digest": np.array([m.digest for m in played])[lake_of_cell + len(maps) * switched],
        "switched": switched,
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
def _per_map(rows: pd.DataFrame, metric: str, name) -> np.ndarray:
    """``(maps, episodes)`` values of ``metric`` for one agent's rows."""
    if rows.duplicated(["lake", "episode"]).any():
        raise ValueError(f"agent {name!r} has several rows for the same lake and episode: give each run its own agent name")
    return rows.pivot(index="lake", columns="episode", values=metric).to_numpy(dtype=np.float64)


def _by_agent(table: pd.DataFrame, metric: str, confidence: float):
    if metric not in table.columns:
        raise ValueError(f"metric={metric!r} is not a column of the table; pick one of {list(table.columns)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie strictly between 0 and 1 (0.95 for a 95% interval)")
    agents = table["agent"] if "agent" in table.columns else pd.Series("agent", index=table.index)
    return table.groupby(agents, sort=False)


def per_episode(table: pd.DataFrame, metric: str = "success", confidence: float = 0.95, n_boot: int = 2000,
                seed: int | np.random.Generator | None = 0) -> pd.DataFrame:
    """Per agent and episode: the mean of ``metric`` over maps and a bootstrap confidence interval.

    The bootstrap (``icrl_course.stats``) resamples *maps* and keeps each
    resampled map's whole trial, so the intervals of different episodes come
    from the same resamples. With an int seed every agent is resampled the
    same way (paired across agents that ran on the same maps). Returns columns
    ``agent``, ``episode`` (from 0), ``mean``, ``low``, ``high``, ``n_maps``.
    """
    parts = []
    for name, rows in _by_agent(table, metric, confidence):
        values = _per_map(rows, metric, name)  # (n, K)
        ci = mean_ci(values, confidence, n_boot, seed)
        parts.append(pd.DataFrame({"agent": name, "episode": np.arange(values.shape[1]), "mean": ci.mean,
                                   "low": ci.low, "high": ci.high, "n_maps": len(values)}))
    return pd.concat(parts, ignore_index=True)


def mean_over_episodes(table: pd.DataFrame, metric: str = "success", confidence: float = 0.95, n_boot: int = 2000,
                       seed: int | np.random.Generator | None = 0) -> pd.DataFrame:
    """Per agent: ``metric`` averaged over all episodes and maps, with a bootstrap CI over maps.

    Returns columns ``agent``, ``mean``, ``low``, ``high``, ``n_maps``.
    """
    rows_out = []
    for name, rows in _by_agent(table, metric, confidence):
        per_map = _per_map(rows, metric, name).mean(axis=1)
        ci = mean_ci(per_map, confidence, n_boot, seed)
        rows_out.append({"agent": name, "mean": ci.mean, "low": ci.low, "high": ci.high, "n_maps": len(per_map)})
    return pd.DataFrame(rows_out)


def episode_table(table: pd.DataFrame, numbers: Iterable[int] | None = (1, 2, 5, 10, 30), metric: str = "success",
                  confidence: float = 0.95, n_boot: int = 2000, seed: int | np.random.Generator | None = 0,
                  digits: int = 2, mean: bool = False) -> pd.DataFrame:
    """The readable summary of a results table: agent x episode ``mean [low, high]`` strings.

    ``numbers`` are episode numbers as people say them, counted from 1 ("the
    first episode"); they are ``episode + 1`` in the tidy table. None shows
    every episode. ``mean=True`` adds a ``mean`` column: ``metric`` averaged
    over all episodes of the trial, with its interval over maps.
    """
    summary = per_episode(table, metric, confidence, n_boot, seed)
    last = int(summary["episode"].max()) + 1
    numbers = list(range(1, last + 1)) if numbers is None else list(numbers)
    if any(k < 1 or k > last for k in numbers):
        raise ValueError(f"episode numbers {numbers} must lie in 1..{last} (the trials have {last} episodes)")

    def fmt(r) -> str:
        return f"{r['mean']:.{digits}f} [{r['low']:.{digits}f}, {r['high']:.{digits}f}]"

    chosen = summary[summary["episode"].isin([k - 1 for k in numbers])]
    wide = chosen.assign(text=chosen.apply(fmt, axis=1), column=[f"ep {e + 1}" for e in chosen["episode"]]).pivot(
        index="agent", columns="column", values="text")
    wide = wide[[f"ep {k}" for k in numbers]]
    if mean:
        wide["mean"] = mean_over_episodes(table, metric, confidence, n_boot, seed).set_index("agent").apply(fmt, axis=1)
    wide.columns.name = None
    return wide.loc[list(dict.fromkeys(chosen["agent"]))]
