"""Frozen Lake's transition model as arrays, shared by the single and the batched env.

Why arrays: gymnasium stores the model as a dict ``P[s][a] -> [(p, s', r, done)]``.
The same facts as three small arrays (where each slip direction leads, what the
tile there is, how likely each slip is) let one NumPy expression step a
thousand lakes at once, and let tests compare our model with gymnasium's entry
by entry.
"""

from __future__ import annotations

import numpy as np

from icrl_course.envs.lake_map import LakeMap

FROZEN, START, HOLE, GOAL = 0, 1, 2, 3
TILE_CODES = {"F": FROZEN, "S": START, "H": HOLE, "G": GOAL}


def tile_codes(lake_map: LakeMap) -> np.ndarray:
    """The map's tiles as ints (``FROZEN``, ``START``, ``HOLE``, ``GOAL``), in observation order."""
    return np.array([TILE_CODES[c] for c in lake_map.flat], dtype=np.int8)


def move_table(lake_map: LakeMap) -> np.ndarray:
    """``(n_states, 4)`` array: the state each action leads to when it does not slip."""
    return np.array([[lake_map.next_state(s, a) for a in range(4)] for s in range(lake_map.n_states)], dtype=np.int64)


def slip_directions(actions: np.ndarray | int) -> np.ndarray:
    """For each intended action, the three directions it may take on ice, in gymnasium's order.

    Gymnasium lists ``(a - 1) % 4, a, (a + 1) % 4``: a slip turns the move 90
    degrees either way, never backwards.
    """
    actions = np.asarray(actions)
    return np.stack([(actions - 1) % 4, actions, (actions + 1) % 4], axis=-1)


def slip_probabilities(is_slippery: bool, success_rate: float) -> np.ndarray:
    """Probabilities of the three ``slip_directions``: ``[fail, success, fail]`` on ice, else ``[0, 1, 0]``."""
    if not is_slippery:
        return np.array([0.0, 1.0, 0.0])
    fail = (1.0 - success_rate) / 2.0
    return np.array([fail, success_rate, fail])


def reward_of_tiles(codes: np.ndarray, reward_schedule: tuple[float, float, float]) -> np.ndarray:
    """Reward for landing on each tile: ``reward_schedule`` is (goal, hole, frozen-or-start), as in gymnasium."""
    goal, hole, frozen = reward_schedule
    return np.where(codes == GOAL, goal, np.where(codes == HOLE, hole, frozen)).astype(np.float64)


def validate_dynamics(is_slippery, success_rate, max_episode_steps, reward_schedule) -> None:
    """Raise ``ValueError`` naming the field when a dynamics parameter is impossible."""
    if not isinstance(is_slippery, (bool, np.bool_)):
        raise ValueError(f"is_slippery={is_slippery!r} must be True or False")
    if not _is_real(success_rate) or not 0.0 <= success_rate <= 1.0:
        raise ValueError(f"success_rate={success_rate!r} is a probability: it must be a number in [0, 1]")
    if max_episode_steps is not None and (
        isinstance(max_episode_steps, (bool, np.bool_)) or not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1
    ):
        raise ValueError(f"max_episode_steps={max_episode_steps!r} must be a positive int or None (no limit)")
    try:
        schedule = tuple(reward_schedule)
    except TypeError:
        schedule = ()
    if len(schedule) != 3 or not all(_is_real(r) and np.isfinite(r) for r in schedule):
        raise ValueError(f"reward_schedule={reward_schedule!r} must be 3 finite numbers: (goal, hole, frozen)")


def _is_real(value) -> bool:
    """A real number (int or float, NumPy's too), not a bool or a string."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
