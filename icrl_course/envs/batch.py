"""``BatchFrozenLake``: many lakes, of possibly different sizes, stepped by one NumPy expression.

Why: an in-context learner is trained and evaluated on thousands of trials of
dozens of episodes. Stepping gymnasium environments one by one in Python makes
the environment the bottleneck; here every step of every lake is a few array
lookups (``benchmarks/env_throughput.py`` measures the difference).

How: every lake's states are laid end to end in one flat index (lake ``i``'s
state ``s`` is ``offsets[i] + s``), and the whole model is four flat tables
with one row per flat state and one column per move (action, or action plus
slip): where the move lands, the observation there, its reward, whether it
ends the episode. A step is then one random draw, a few additions and four
gathers, whatever mix of map sizes the batch holds.

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

# Tile letter (as a byte) -> tile code, for turning all maps' letters into codes in one lookup.
_CODE_OF_BYTE = np.zeros(256, dtype=np.int8)
for _letter, _code in dynamics.TILE_CODES.items():
    _CODE_OF_BYTE[ord(_letter)] = _code


class BatchFrozenLake:
    """B Frozen Lakes with FrozenLake-v1's per-lake dynamics, stepped together.

    Args:
        maps: the B maps (``LakeMap`` or row lists); sizes may differ.
        is_slippery, success_rate, max_episode_steps, reward_schedule: as in
            ``FrozenLakeEnv``, shared by all lakes.
        seed: seed or generator for starts and slips.
        autoreset: reset lakes whose episode ended in the same ``step`` call.

    Observations are each lake's own ``row * ncol + col``. ``state`` holds
    them (read-only) and ``elapsed`` counts each lake's steps in its episode.
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
        if not isinstance(autoreset, (bool, np.bool_)):
            raise ValueError(f"autoreset={autoreset!r} must be True or False")
        if len(maps) == 0:
            raise ValueError("maps is empty: BatchFrozenLake needs at least one map")
        self.maps = [as_lake_map(m) for m in maps]
        self.is_slippery = bool(is_slippery)
        self.success_rate = float(success_rate)
        self.max_episode_steps = max_episode_steps
        self.reward_schedule = tuple(float(r) for r in reward_schedule)
        self.autoreset = bool(autoreset)
        self.rng = as_rng(seed)
        self._build_tables()
        self._row = np.zeros(self.num_lakes, dtype=np.intp)
        # Steps are counted once for the batch; each lake remembers the count when its episode began.
        self._steps = 0
        self._episode_start = np.zeros(self.num_lakes, dtype=np.int64)
        self.reset()

    @property
    def num_lakes(self) -> int:
        return len(self.maps)

    @property
    def state(self) -> np.ndarray:
        """Every lake's current observation, ``(B,)``; read-only (use ``reset_lakes`` to move lakes)."""
        state = self._local[self._row // self._stride]
        state.flags.writeable = False
        return state

    @property
    def elapsed(self) -> np.ndarray:
        """Steps each lake has taken in its current episode, ``(B,)``."""
        return self._steps - self._episode_start

    def _build_tables(self) -> None:
        """The flat transition tables, start lists and slip thresholds (see the module docstring)."""
        self.nrow = np.array([m.nrow for m in self.maps], dtype=np.intp)
        self.ncol = np.array([m.ncol for m in self.maps], dtype=np.intp)
        self.n_states = self.nrow * self.ncol
        self.offsets = np.concatenate([[0], np.cumsum(self.n_states)[:-1]]).astype(np.intp)
        lake = np.repeat(np.arange(self.num_lakes), self.n_states)  # lake of every flat state
        flat = np.arange(len(lake), dtype=np.intp)
        self._local = flat - self.offsets[lake]  # each flat state's observation in its own lake
        row, col = self._local // self.ncol[lake], self._local % self.ncol[lake]
        new_row = np.clip(row[:, None] + ACTION_DELTAS[:, 0], 0, self.nrow[lake, None] - 1)
        new_col = np.clip(col[:, None] + ACTION_DELTAS[:, 1], 0, self.ncol[lake, None] - 1)
        moves = self.offsets[lake, None] + new_row * self.ncol[lake, None] + new_col  # (total, 4) by direction

        letters = np.frombuffer("".join(m.flat for m in self.maps).encode("ascii"), dtype=np.uint8)
        codes = _CODE_OF_BYTE[letters]
        terminal = (codes == dynamics.HOLE) | (codes == dynamics.GOAL)
        if self.is_slippery:
            # Column j moves in direction (j - 1) % 4, so action a slipping by turn t (0, 1, 2 for
            # gymnasium's a - 1, a, a + 1) is column a + t: no modular arithmetic in ``step``.
            directions = np.array([3, 0, 1, 2, 3, 0])
        else:
            directions = np.arange(4)  # column = action
        self._stride = len(directions)
        # A hole or goal is absorbing, as in gymnasium's P table: stay, reward 0, terminated.
        landed = np.where(terminal[:, None], flat[:, None], moves[:, directions])
        reward = np.where(terminal[:, None], 0.0, dynamics.reward_of_tiles(codes, self.reward_schedule)[landed])
        self._next_row = (self._stride * landed).ravel()  # table row of the landing state
        self._next_obs = self._local[landed].ravel()
        self._reward = reward.ravel()
        self._terminated = terminal[landed].ravel()

        starts = np.flatnonzero(codes == dynamics.START)  # flat start states, grouped by lake
        self._start_row, self._start_obs = self._stride * starts, self._local[starts]
        self._n_starts = np.bincount(lake[starts], minlength=self.num_lakes).astype(np.float64)
        self._first_start = np.concatenate([[0], np.cumsum(self._n_starts)[:-1]]).astype(np.intp)
        # One uniform u picks the turn from (action - 1): 0 if u < fail, 1 if u < fail + success, else 2.
        self._slip_thresholds = tuple(np.cumsum(dynamics.slip_probabilities(self.is_slippery, self.success_rate))[:2])

    def _reset(self, lakes: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Put each of ``lakes`` on one of its ``S`` tiles, picked by the uniforms ``u``; returns their observations.

        floor(u * n) for u in [0, 1) is always below n in floating point, so
        each of a lake's n starts has probability exactly 1/n.
        """
        start = self._first_start[lakes] + (u * self._n_starts[lakes]).astype(np.intp)
        self._row[lakes] = self._start_row[start]
        self._episode_start[lakes] = self._steps
        return self._start_obs[start]

    def reset(self, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Start a new episode on every lake; returns the ``(B,)`` start observations."""
        if seed is not None:
            self.rng = as_rng(seed)
        return self._reset(np.arange(self.num_lakes), self.rng.random(self.num_lakes))

    def reset_lakes(self, mask: np.ndarray) -> np.ndarray:
        """Start a new episode on the lakes where ``mask`` is True; returns all observations."""
        mask = np.asarray(mask)
        if mask.shape != (self.num_lakes,) or mask.dtype != bool:
            raise ValueError(f"mask must be a boolean array of shape ({self.num_lakes},), got {mask.dtype} {mask.shape}")
        lakes = np.flatnonzero(mask)
        self._reset(lakes, self.rng.random(len(lakes)))
        return self.state.copy()

    def step(self, actions: np.ndarray):
        """Step every lake once.

        Returns ``(obs, reward, terminated, truncated, info)``, each ``(B,)``;
        ``info["final_obs"]`` is where each step landed before any auto-reset.
        """
        actions = np.asarray(actions)
        if actions.shape != (self.num_lakes,):
            raise ValueError(f"actions has shape {actions.shape}; expected ({self.num_lakes},), one action per lake")
        if actions.dtype.kind not in "iu":
            raise ValueError(f"actions must be integers in 0..3 (0 left, 1 down, 2 right, 3 up), got dtype {actions.dtype}")
        actions = actions.astype(np.intp, copy=False)
        if actions.view(np.uintp).max() > 3:  # negatives wrap round to huge unsigned numbers
            bad = actions[(actions < 0) | (actions > 3)][0]
            raise ValueError(f"actions contains {bad}: actions must be integers in 0..3 (0 left, 1 down, 2 right, 3 up)")
        if self.is_slippery:
            u = self.rng.random((2, self.num_lakes))  # row 0 slips, row 1 picks starts for lakes that reset
            transition = self._row + actions  # then add the turn: 0, 1 or 2
            transition += u[0] >= self._slip_thresholds[0]
            transition += u[0] >= self._slip_thresholds[1]
        else:
            u = None
            transition = self._row + actions
        self._row = self._next_row[transition]
        final_obs = self._next_obs[transition]
        reward = self._reward[transition]
        terminated = self._terminated[transition]
        self._steps += 1
        if self.max_episode_steps is None:
            truncated = np.zeros(self.num_lakes, dtype=bool)
        else:  # elapsed = steps - episode_start >= max_episode_steps
            truncated = self._episode_start <= self._steps - self.max_episode_steps
        obs = final_obs.copy()
        if self.autoreset:
            lakes = np.flatnonzero(terminated | truncated)
            if len(lakes):
                obs[lakes] = self._reset(lakes, self.rng.random(len(lakes)) if u is None else u[1, lakes])
        return obs, reward, terminated, truncated, {"final_obs": final_obs}
