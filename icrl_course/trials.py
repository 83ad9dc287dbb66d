"""Multi-episode trials: the unit of experience an in-context learner reads.

A *trial* is K episodes on one map that the agent does not know in advance.
Everything downstream consumes the ``Trial`` record defined here: the
tokenizers turn it into model inputs, the datasets store it, the evaluation
tables summarise it. The agent protocol (``Agent``) is what every agent, from
the random baseline to the Llama Q-network, implements to be run by
``run_trials``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from icrl_course.envs import LakeMap


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
