"""``FrozenLakeEnv``: a gymnasium environment with exactly FrozenLake-v1's dynamics on any ``LakeMap``.

Why our own: gymnasium's class takes a ``desc`` but no time limit of its own,
no map object and no plotly rendering. Ours keeps gymnasium's names (``desc``,
``P``, ``render_mode``, ``is_slippery``, ``success_rate``, ``reward_schedule``)
so learners can move between the two, and the test suite checks the two
``P`` tables agree on every map it draws.
"""

from __future__ import annotations

from io import StringIO
from typing import Any, Sequence

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.envs.toy_text.frozen_lake import MAPS
from gymnasium.envs.toy_text.utils import categorical_sample

from icrl_course.envs import dynamics
from icrl_course.envs.distribution import MapDistribution
from icrl_course.envs.lake_map import ACTION_NAMES, LakeMap


def as_lake_map(lake_map: LakeMap | Sequence[str]) -> LakeMap:
    """Accept a ``LakeMap`` or its rows."""
    return lake_map if isinstance(lake_map, LakeMap) else LakeMap.from_rows(lake_map)


class FrozenLakeEnv(gymnasium.Env):
    """Frozen Lake on a given map, with FrozenLake-v1's dynamics and time limit built in.

    Args:
        lake_map: the map (a ``LakeMap`` or a list of row strings); ``desc`` is
            gymnasium's name for the same argument and ``map_name`` picks one
            of gymnasium's maps (``"4x4"``, ``"8x8"``). Give at most one.
        is_slippery: if True, a move goes the intended way with probability
            ``success_rate`` and 90 degrees to either side otherwise.
        success_rate: probability of moving as intended on ice.
        max_episode_steps: the episode is truncated after this many steps, as
            ``gymnasium.make("FrozenLake-v1")``'s ``TimeLimit`` does (100 there);
            None for no limit.
        reward_schedule: rewards for reaching (goal, hole, frozen).
        render_mode: ``"ansi"`` (text, like gymnasium's) or ``"plotly"`` (a figure).
        distribution: with no map given, maps come from here (the paper's, 3-5 x 3-5,
            by default): every ``reset`` given a seed draws a new map from that seed,
            and resets without one keep the map, so the episodes of a trial share it
            (the first reset draws one either way). The observation space then
            covers the largest map the distribution makes.

    Several ``S`` tiles: each episode starts on one of them uniformly at random.
    Starts and slips are drawn exactly as gymnasium draws them, so with the same
    seed and actions this env and gymnasium's ``FrozenLakeEnv(desc=...)`` walk
    the same trajectory.

    Unlike gymnasium's, the default is ``is_slippery=False``: the paper's
    maps are not slippery. Like gymnasium's, it can be made with no arguments
    (``gymnasium.make(ENV_ID)``); gymnasium's default is its 4x4 map, ours a
    map from the paper's distribution.
    """

    metadata = {"render_modes": ["ansi", "plotly"], "render_fps": 4}

    def __init__(
        self,
        lake_map: LakeMap | Sequence[str] | None = None,
        is_slippery: bool = False,
        success_rate: float = 1.0 / 3.0,
        max_episode_steps: int | None = 100,
        reward_schedule: tuple[float, float, float] = (1, 0, 0),
        render_mode: str | None = None,
        desc: Sequence[str] | np.ndarray | None = None,
        map_name: str | None = None,
        distribution: MapDistribution | None = None,
    ):
        dynamics.validate_dynamics(is_slippery, success_rate, max_episode_steps, reward_schedule)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} must be one of {self.metadata['render_modes']} or None")
        given = {k: v for k, v in (("lake_map", lake_map), ("desc", desc), ("map_name", map_name)) if v is not None}
        if len(given) > 1:
            raise ValueError(f"{' and '.join(given)} both name a map: give only one of lake_map, desc, map_name")
        if map_name is not None and map_name not in MAPS:
            raise ValueError(f"map_name={map_name!r} is not one of gymnasium's maps {sorted(MAPS)}: "
                             "pass the rows as lake_map (or desc) instead")
        if given and distribution is not None:
            raise ValueError("distribution is only read when no map is given: drop it, or drop the map")
        if distribution is not None and not isinstance(distribution, MapDistribution):
            raise ValueError(f"distribution must be a MapDistribution, got {type(distribution).__name__}")
        self.is_slippery = bool(is_slippery)
        self.success_rate = float(success_rate)
        self.max_episode_steps = max_episode_steps
        self.reward_schedule = tuple(reward_schedule)
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(4)

        fixed = MAPS[map_name] if map_name is not None else lake_map if lake_map is not None else desc
        self.distribution = None if fixed is not None else distribution or MapDistribution.paper()
        if self.distribution is None:
            self._use_map(as_lake_map(fixed))
            self.observation_space = spaces.Discrete(self.lake_map.n_states)
        else:
            # Until the first reset draws one, the map is the distribution's draw for seed 0,
            # so that desc, P and render work on a fresh env.
            self._use_map(self.distribution.sample(seed=0))
            self.observation_space = spaces.Discrete(self.distribution.rows[1] * self.distribution.cols[1])
        self._drawn = False

    def _use_map(self, lake_map: LakeMap) -> None:
        """Make ``lake_map`` the one played: its gymnasium attributes, transition table and start tile."""
        self.lake_map = lake_map
        self.desc = self.lake_map.desc
        self.nrow, self.ncol = self.lake_map.shape
        self.initial_state_distrib = np.array(self.desc == b"S", dtype=np.float64).ravel()
        self.initial_state_distrib /= self.initial_state_distrib.sum()
        self.P = self._transition_table()
        self.s = int(self.lake_map.starts[0])
        self.lastaction: int | None = None
        self.elapsed_steps = 0

    def _transition_table(self) -> dict[int, dict[int, list[tuple[float, int, float, bool]]]]:
        """Gymnasium's ``P[s][a] = [(prob, next_state, reward, terminated), ...]``, built the same way."""
        codes = dynamics.tile_codes(self.lake_map)
        moves = dynamics.move_table(self.lake_map)
        rewards = dynamics.reward_of_tiles(codes, self.reward_schedule)
        probs = dynamics.slip_probabilities(self.is_slippery, self.success_rate)
        table: dict[int, dict[int, list]] = {}
        for s in range(self.lake_map.n_states):
            table[s] = {}
            for a in range(4):
                if codes[s] in (dynamics.HOLE, dynamics.GOAL):
                    table[s][a] = [(1.0, s, 0, True)]
                    continue
                directions = dynamics.slip_directions(a) if self.is_slippery else [a]
                weights = probs if self.is_slippery else [1.0]
                table[s][a] = [
                    (float(p), int(moves[s, b]), rewards[moves[s, b]].item(), bool(codes[moves[s, b]] in (dynamics.HOLE, dynamics.GOAL)))
                    for p, b in zip(weights, directions)
                ]
        return table

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self.distribution is not None and (seed is not None or not self._drawn):
            self._use_map(self.distribution.sample(self.np_random))
            self._drawn = True
        self.s = int(categorical_sample(self.initial_state_distrib, self.np_random))
        self.lastaction = None
        self.elapsed_steps = 0
        return self.s, {"prob": 1}

    def step(self, action: int):
        if not self.action_space.contains(action):
            raise ValueError(f"action={action!r} is not one of 0 (left), 1 (down), 2 (right), 3 (up)")
        transitions = self.P[self.s][int(action)]
        i = int(categorical_sample([t[0] for t in transitions], self.np_random))
        prob, next_state, reward, terminated = transitions[i]
        self.s, self.lastaction = next_state, int(action)
        self.elapsed_steps += 1
        # Like gymnasium's TimeLimit wrapper: truncated once the limit is reached, even on the terminal step.
        truncated = self.max_episode_steps is not None and self.elapsed_steps >= self.max_episode_steps
        return int(next_state), reward, terminated, truncated, {"prob": prob}

    def render(self):
        if self.render_mode == "ansi":
            return self._render_text()
        if self.render_mode == "plotly":
            from icrl_course.envs.render import map_figure

            return map_figure(self.lake_map, position=self.s)
        return None

    def _render_text(self) -> str:
        """Gymnasium's text rendering: the last action, then the map with the agent's tile highlighted."""
        rows = [list(row) for row in self.lake_map.rows]
        row, col = divmod(self.s, self.ncol)
        rows[row][col] = gymnasium.utils.colorize(rows[row][col], "red", highlight=True)
        out = StringIO()
        out.write(f"  ({ACTION_NAMES[self.lastaction].capitalize()})\n" if self.lastaction is not None else "\n")
        out.write("\n".join("".join(line) for line in rows) + "\n")
        return out.getvalue()


ENV_ID = "icrl_course/FrozenLake-v0"


def register() -> None:
    """Register ``icrl_course/FrozenLake-v0`` with gymnasium (idempotent).

    As for ``FrozenLake-v1``, ``gymnasium.make`` adds a ``TimeLimit`` wrapper of
    100 steps (change it with ``gymnasium.make(ENV_ID, lake_map=..., max_episode_steps=n)``)
    and the env inside gets no limit of its own, so the two never disagree.
    ``gymnasium.make(ENV_ID)`` with no map plays maps drawn from the paper's distribution.
    """
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(
            id=ENV_ID,
            entry_point="icrl_course.envs.frozen_lake:FrozenLakeEnv",
            max_episode_steps=100,
            kwargs={"max_episode_steps": None},
        )
