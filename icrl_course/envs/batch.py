"""``BatchFrozenLake``: many lakes, of possibly different sizes, stepped by one NumPy expression.

Why: an in-context learner is trained and evaluated on thousands of trials of
dozens of episodes. Stepping gymnasium environments one by one in Python makes
the environment the bottleneck; here every step of every lake is a few array
lookups (``benchmarks/env_throughput.py`` measures the difference).

Reset semantics (``autoreset=True``, the default): when a lake's episode ends
in a step (``terminated`` or ``truncated``), that lake is reset *within the
same call*. The returned ``obs`` is then the first observation of its next
episode, and ``info["final_obs"]`` holds where the ending step really landed
(the hole or goal tile, or the tile where time ran out). With
``autoreset=False`` finished lakes stay put: stepping them again behaves as
gymnasium does on a terminal tile (same state, reward 0, ``terminated``), and
``reset_lakes(mask)`` restarts chosen lakes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from icrl_course.envs import dynamics
from icrl_course.envs.frozen_lake import as_lake_map
from icrl_course.envs.lake_map import ACTION_DELTAS, LakeMap
from icrl_course.runtime import as_rng


class BatchFrozenLake:
    """B Frozen Lakes with FrozenLake-v1's per-lake dynamics, stepped together.

    Args:
        maps: the B maps (``LakeMap`` or row lists); sizes may differ.
        is_slippery, success_rate, max_episode_steps, reward_schedule: as in
            ``FrozenLakeEnv``, shared by all lakes.
        seed: seed or generator for starts and slips.
        autoreset: reset lakes whose episode ended in the same ``step`` call.

    Observations are each lake's own ``row * ncol + col``. Tables are padded to
    the largest lake; padded states are never reached.
    """

    def __init__(
        self,
        maps: Sequence[LakeMap | Sequence[str]],
        is_slippery: bool = False,
        success_rate: float = 1.0 / 3.0,
        max_episode_steps: int | None = 100,
        reward_schedule: tuple[float, float, float] = (1, 0, 0),
        seed: int | np.random.Generator | None = None,
        autoreset: bool = True,
    ):
        dynamics.validate_dynamics(is_slippery, success_rate, max_episode_steps, reward_schedule)
        if len(maps) == 0:
            raise ValueError("maps is empty: BatchFrozenLake needs at least one map")
        self.maps = [as_lake_map(m) for m in maps]
        self.is_slippery = bool(is_slippery)
        self.success_rate = float(success_rate)
        self.max_episode_steps = max_episode_steps
        self.reward_schedule = tuple(reward_schedule)
        self.autoreset = autoreset
        self.rng = as_rng(seed)
        self._build_tables()
        self.state = np.zeros(self.num_lakes, dtype=np.int64)
        self.elapsed = np.zeros(self.num_lakes, dtype=np.int64)
        self.reset()

    @property
    def num_lakes(self) -> int:
        return len(self.maps)

    def _build_tables(self) -> None:
        """Padded ``(B, S, 4)`` move table, ``(B, S)`` tile codes and start distributions."""
        self.nrow = np.array([m.nrow for m in self.maps])
        self.ncol = np.array([m.ncol for m in self.maps])
        self.n_states = self.nrow * self.ncol
        max_states = int(self.n_states.max())
        s = np.arange(max_states)
        row, col = s[None, :] // self.ncol[:, None], s[None, :] % self.ncol[:, None]  # (B, S)
        new_row = np.clip(row[..., None] + ACTION_DELTAS[:, 0], 0, self.nrow[:, None, None] - 1)
        new_col = np.clip(col[..., None] + ACTION_DELTAS[:, 1], 0, self.ncol[:, None, None] - 1)
        valid = s[None, :] < self.n_states[:, None]
        self.moves = np.where(valid[..., None], new_row * self.ncol[:, None, None] + new_col, s[None, :, None])
        self.codes = np.full((self.num_lakes, max_states), dynamics.HOLE, dtype=np.int8)
        for i, m in enumerate(self.maps):
            self.codes[i, : m.n_states] = dynamics.tile_codes(m)
        self.rewards = dynamics.reward_of_tiles(self.codes, self.reward_schedule)
        starts = (self.codes == dynamics.START).astype(np.float64)
        self.start_cdf = np.cumsum(starts / starts.sum(axis=1, keepdims=True), axis=1)
        self.slip_cdf = np.cumsum(dynamics.slip_probabilities(self.is_slippery, self.success_rate))

    def _sample_starts(self, count: int, rows: np.ndarray) -> np.ndarray:
        u = self.rng.random(count)
        return (self.start_cdf[rows] <= u[:, None]).sum(axis=1)

    def reset(self, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Start a new episode on every lake; returns the ``(B,)`` start observations."""
        if seed is not None:
            self.rng = as_rng(seed)
        self.state = self._sample_starts(self.num_lakes, np.arange(self.num_lakes))
        self.elapsed[:] = 0
        return self.state.copy()

    def reset_lakes(self, mask: np.ndarray) -> np.ndarray:
        """Start a new episode on the lakes where ``mask`` is True; returns all observations."""
        rows = np.flatnonzero(mask)
        self.state[rows] = self._sample_starts(len(rows), rows)
        self.elapsed[rows] = 0
        return self.state.copy()

    def step(self, actions: np.ndarray):
        """Step every lake once.

        Returns ``(obs, reward, terminated, truncated, info)``, each ``(B,)``;
        ``info["final_obs"]`` is where each step landed before any auto-reset.
        """
        actions = np.asarray(actions)
        if actions.shape != (self.num_lakes,):
            raise ValueError(f"actions has shape {actions.shape}; expected ({self.num_lakes},), one action per lake")
        if not np.issubdtype(actions.dtype, np.integer) or actions.min() < 0 or actions.max() > 3:
            raise ValueError("actions must be integers in 0..3 (0 left, 1 down, 2 right, 3 up)")
        lakes = np.arange(self.num_lakes)
        if self.is_slippery:
            slip = (self.slip_cdf[None, :-1] <= self.rng.random(self.num_lakes)[:, None]).sum(axis=1)
            direction = dynamics.slip_directions(actions)[lakes, slip]
        else:
            direction = actions
        here = self.codes[lakes, self.state]
        on_terminal = (here == dynamics.HOLE) | (here == dynamics.GOAL)
        landed = np.where(on_terminal, self.state, self.moves[lakes, self.state, direction])
        code = self.codes[lakes, landed]
        reward = np.where(on_terminal, 0.0, self.rewards[lakes, landed])
        terminated = (code == dynamics.HOLE) | (code == dynamics.GOAL)
        self.elapsed += 1
        if self.max_episode_steps is None:
            truncated = np.zeros(self.num_lakes, dtype=bool)
        else:
            truncated = self.elapsed >= self.max_episode_steps
        self.state = landed
        info = {"final_obs": landed.copy()}
        if self.autoreset:
            done = terminated | truncated
            if done.any():
                self.reset_lakes(done)
        return self.state.copy(), reward, terminated, truncated, info
