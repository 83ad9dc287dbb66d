"""Replaying one trial step by step with what the agent computed at each step: the trial player's data.

Why a module of its own: the lab's trial player (``icrl_course.widgets``)
shows, at any step t of a trial, where the agent stood, the Q-values it acted
on and the context it had read. Those must be the agent's own numbers, not a
re-computation that could drift from what it did, so they are recorded while
``run_trials`` plays: ``Recording`` wraps any agent, passes every call
through unchanged and keeps a copy of the values the agent exposes after
each ``act``. Nothing here decides an action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from icrl_course.envs import LakeMap
from icrl_course.trials import Agent, Schedule, Transition, Trial, TrialResults, run_trials


def acted_values(agent: Agent, obs: np.ndarray) -> np.ndarray | None:
    """The ``(B, 4)`` action values ``agent`` just acted on at ``obs``, or None for an agent that has none.

    A Q-network agent keeps them as ``last_q`` (set by ``act``); the tabular
    Q-learner holds its table ``q`` (``(B, S, 4)``), read at the observed cells.
    The explorer and the random agent compute no values.
    """
    if getattr(agent, "last_q", None) is not None:
        return np.array(agent.last_q, dtype=np.float64)
    table = getattr(agent, "q", None)
    if isinstance(table, np.ndarray) and table.ndim == 3:
        return table[np.arange(len(obs)), obs].astype(np.float64)
    return None


class Recording:
    """An agent that plays exactly as ``agent`` does and records the values it acted on at every step.

    ``values[t]`` is ``(B, 4)`` (or None) for the t-th call of ``act``;
    ``run_trials`` calls ``act`` once per step of the batch, so for a single
    map step t of the trial is call t. The table value read *before* the
    Q-learner's own update of that step is recorded, as it is what the action
    was chosen from.
    """

    def __init__(self, agent: Agent):
        self.agent = agent
        self.name = getattr(agent, "name", type(agent).__name__)
        self.values: list[np.ndarray | None] = []

    def begin(self, maps: Sequence[LakeMap], rng: np.random.Generator) -> None:
        self.values = []
        self.agent.begin(maps, rng)

    def act(self, obs: np.ndarray) -> np.ndarray:
        actions = self.agent.act(obs)
        self.values.append(acted_values(self.agent, np.asarray(obs)))
        return actions

    def observe(self, step: Transition) -> None:
        self.agent.observe(step)

    def __getattr__(self, name: str):
        """Anything else (``q_values``, ``tokenizer``, a protocol's hooks) is the wrapped agent's own."""
        if name == "agent":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.agent, name)


def trial_head(trial: Trial, steps: int) -> Trial:
    """The first ``steps`` steps of ``trial`` as a trial of their own (the history up to a point)."""
    return Trial(trial.lake_map, trial.obs[:steps], trial.actions[:steps], trial.rewards[:steps],
                 trial.next_obs[:steps], trial.terminated[:steps], trial.truncated[:steps], trial.episode[:steps])


@dataclass(frozen=True)
class Playback:
    """One agent's trial on one map, with the values it acted on at every step (``values[t]``, or None).

    ``results`` is ``run_trials``' output for the one map (its table gives
    success per episode); ``tokenizer`` is the agent's own tokenizer when it
    has one, used by ``context`` to show what the model read.
    """

    results: TrialResults
    values: np.ndarray | None
    tokenizer: object | None = None
    context_resets: bool = False

    @property
    def trial(self) -> Trial:
        return self.results.trials[0]

    def __len__(self) -> int:
        return len(self.trial)

    def first_step(self, episode: int) -> int:
        """Index of the first step of ``episode`` (from 0)."""
        steps = np.flatnonzero(self.trial.episode == episode)
        if not len(steps):
            raise ValueError(f"the trial has no episode {episode}: it holds episodes 0..{self.trial.num_episodes - 1}")
        return int(steps[0])

    def success(self) -> np.ndarray:
        """Success (reached a goal) of every episode, in order."""
        return self.results.table["success"].to_numpy(dtype=bool)

    def context(self, t: int) -> pd.DataFrame | None:
        """What the model had read when it chose action ``t``: one readable row per token, most recent last.

        Token t is the step where action t is chosen; with the context-reset
        ablation only the tokens of the current episode are kept, as the agent
        saw them. None for agents without a tokenizer.
        """
        if self.tokenizer is None or not hasattr(self.tokenizer, "explain"):
            return None
        trial = self.trial
        if not 0 <= t < len(trial):
            raise ValueError(f"step {t} lies outside the trial's steps 0..{len(trial) - 1}")
        start = self.first_step(int(trial.episode[t])) if self.context_resets else 0
        head = trial_head(trial, t + 1)
        if start:
            head = Trial(trial.lake_map, *(getattr(head, k)[start:] for k in
                                           ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")),
                         head.episode[start:] - head.episode[start])
        tokens = self.tokenizer.encode(head).tokens[: len(head)]  # drop the closing token: it comes after step t
        return self.tokenizer.explain(tokens, trial.lake_map).drop(columns=["token", "q_read"])


def play(agent: Agent, lake_map: LakeMap, episodes: int = 10, seed: int = 0, max_episode_steps: int = 25,
         is_slippery: bool = False, schedule: Schedule | None = None) -> Playback:
    """Run ``agent`` for one trial on ``lake_map`` with ``run_trials`` and record the values it acted on."""
    recording = Recording(agent)
    results = run_trials(recording, [lake_map], episodes, schedule=schedule, seed=seed,
                         max_episode_steps=max_episode_steps, is_slippery=is_slippery, agent_name=recording.name)
    values = recording.values
    stacked = None if not values or values[0] is None else np.stack([v[0] for v in values])
    if stacked is not None and len(stacked) != len(results.trials[0]):
        raise RuntimeError(f"recorded {len(stacked)} steps for a trial of {len(results.trials[0])}")
    return Playback(results, stacked, getattr(agent, "tokenizer", None),
                    bool(getattr(agent, "reset_context_every_episode", False)))
