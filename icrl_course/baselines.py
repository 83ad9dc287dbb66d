"""Agents that need no training: the yardsticks every in-context learning curve is judged against.

Why these four: a curve that climbs from episode to episode means little on
its own. ``RandomAgent`` is the floor. ``QLearningAgent`` learns from scratch
inside each trial, the classic way, and shows how slow learning without a
prior is. ``ExplorerAgent`` remembers every tile it has seen and plans over
them: on non-slippery maps it is about as fast as learning from experience
alone can be, so an in-context learner that beats it must be using a prior over
maps (it can in the first episodes; over a whole trial it rarely does).
``OracleAgent`` reads the map and is the ceiling.

All agents follow ``icrl_course.trials.Agent`` and are vectorised over the B
lakes of a batch: their state is NumPy arrays of shape ``(B, S, 4)`` or
``(B, S)`` (S is the largest lake's number of states; smaller lakes are
padded), and no step loops over lakes in Python. Only the oracle reads tiles;
the others use each map's shape alone, as an agent observing only its cell
index would.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from icrl_course.envs import LakeMap
from icrl_course.envs.lake_map import ACTION_DELTAS
from icrl_course.trials import Transition

UNKNOWN, SAFE, HOLE, GOAL = 0, 1, 2, 3
"""What the explorer knows of a tile: never seen, stood on, fallen into, reached."""

KNOWLEDGE_LETTERS = "?FHG"
"""Letters for the knowledge codes, for printing what an explorer knows ('?' is unknown)."""


# ------------------------------------------------------------------------------------- geometry
class LakeGeometry:
    """The shapes of B lakes and what follows from them alone: moves, padding, shortest distances.

    ``moves`` is ``(B, S, 4)``: where each action leads without slipping
    (walls keep you in place); ``valid`` is ``(B, S)``, False for padding
    states beyond a smaller lake (they map to themselves and are never
    reached). Needs no tiles, so any agent may use it.
    """

    def __init__(self, shapes: Sequence[tuple[int, int]]):
        nrow = np.array([r for r, _ in shapes], dtype=np.int64)
        ncol = np.array([c for _, c in shapes], dtype=np.int64)
        if len(nrow) == 0 or nrow.min() < 1 or ncol.min() < 1:
            raise ValueError(f"shapes={list(shapes)!r} must be a non-empty list of (nrow, ncol) with both >= 1")
        self.shapes = [(int(r), int(c)) for r, c in zip(nrow, ncol)]
        s = np.arange(int((nrow * ncol).max()))
        row, col = s[None, :] // ncol[:, None], s[None, :] % ncol[:, None]
        self.valid = s[None, :] < (nrow * ncol)[:, None]
        new_row = np.clip(row[..., None] + ACTION_DELTAS[:, 0], 0, nrow[:, None, None] - 1)
        new_col = np.clip(col[..., None] + ACTION_DELTAS[:, 1], 0, ncol[:, None, None] - 1)
        self.moves = np.where(self.valid[..., None], new_row * ncol[:, None, None] + new_col, s[None, :, None])
        # Every lake drawn on one padded grid with a border of one cell: state -> flat grid cell.
        # Padding states land on the corner cell (0, 0), which is border and never reached.
        self._grid_shape = (len(nrow), int(nrow.max()) + 2, int(ncol.max()) + 2)
        self._cell = np.where(self.valid, (row + 1) * self._grid_shape[2] + col + 1, 0)

    @property
    def num_states(self) -> int:
        """S, the padded number of states (the largest lake's)."""
        return self.valid.shape[1]

    def distances(self, relay: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """``(B, S)`` fewest moves from every tile to a target, passing only through ``relay`` tiles.

        Targets are at distance 0, a relay tile is one more than its best
        neighbour, any other tile is never passed through; unreachable tiles
        get ``S + 1``. Breadth-first search as repeated relaxation of all lakes
        at once, with shifted slices of a padded grid (as
        ``envs.distribution.solvable_mask`` does): round k settles every tile
        k moves away, and it stops when a round changes nothing.
        """
        far = self.num_states + 1
        lakes = np.arange(len(relay))[:, None]
        targets = targets & self.valid
        dist = np.full(self._grid_shape, far, dtype=np.int64)
        dist.reshape(len(relay), -1)[lakes, self._cell] = np.where(targets, 0, far)
        passes = np.zeros(self._grid_shape, dtype=bool)
        passes.reshape(len(relay), -1)[lakes, self._cell] = relay & ~targets & self.valid
        inner, passes = dist[:, 1:-1, 1:-1], passes[:, 1:-1, 1:-1]  # views: updating inner updates dist
        for _ in range(self.num_states):
            best = np.minimum(np.minimum(dist[:, :-2, 1:-1], dist[:, 2:, 1:-1]), np.minimum(dist[:, 1:-1, :-2], dist[:, 1:-1, 2:]))
            new = np.where(passes, np.minimum(inner, best + 1), inner)
            if np.array_equal(new, inner):
                break
            inner[...] = new
        return dist.reshape(len(relay), -1)[lakes, self._cell]


def _gather(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[b, index[b, ...]]`` for every lake b: per-lake lookups in one indexing operation."""
    lakes = np.arange(len(values)).reshape((-1,) + (1,) * (index.ndim - 1))
    return values[lakes, index]


def _random_argmin(costs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise argmin of ``(B, 4)`` integer costs, ties broken uniformly at random (seeded)."""
    return np.argmin(costs + rng.random(costs.shape) * 0.5, axis=1)


# ------------------------------------------------------------------------------------ random
class RandomAgent:
    """Uniformly random actions: the floor every learning curve must clear."""

    name = "random"

    def begin(self, maps: Sequence[LakeMap], rng: np.random.Generator) -> None:
        self.rng = rng
        self.num_lakes = len(maps)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.integers(0, 4, size=self.num_lakes)

    def observe(self, step: Transition) -> None:
        """A random agent learns nothing."""


# ------------------------------------------------------------------------------------ oracle
class OracleAgent:
    """Knows the map and walks a shortest path to the nearest goal from wherever it stands.

    The policy is a ``(B, S)`` table built in ``begin`` from every tile's
    distance to its nearest goal (``LakeGeometry.distances`` through frozen
    and start tiles, which equals ``LakeMap.distances_to_goal`` for all lakes
    at once): from each tile, the action whose next tile is closest to a goal. Ties go to the lowest action number (deterministic).
    On a non-slippery map every episode takes exactly the shortest path from
    its start. On slippery ice it still aims along a shortest path from where
    it lands, which is a good policy but not the optimal one (that would need
    the slip probabilities, i.e. value iteration).
    """

    name = "oracle"

    def begin(self, maps: Sequence[LakeMap], rng: np.random.Generator) -> None:
        geometry = LakeGeometry([m.shape for m in maps])
        width = geometry.num_states
        tiles = np.array([list(m.flat.ljust(width, "H")) for m in maps])  # padding never reached
        dist = geometry.distances(relay=(tiles == "F") | (tiles == "S"), targets=tiles == "G")
        far = width + 1
        cost = np.where(tiles == "H", 2 * far, dist)  # cut off from a goal is bad; a hole is worse
        self.policy = np.argmin(_gather(cost, geometry.moves), axis=2)  # (B, S)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return _gather(self.policy, obs)

    def observe(self, step: Transition) -> None:
        """The oracle already knows everything."""


# -------------------------------------------------------------------------------- Q-learning
def q_learning_update(q: np.ndarray, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
                      terminated: np.ndarray, truncated: np.ndarray, learning_rate: float, gamma: float) -> np.ndarray:
    """One tabular Q-learning step on each of B lakes; returns the updated ``(B, S, 4)`` table (a copy).

    For lake b: ``Q[s, a] += learning_rate * (r + gamma * max_a' Q[s', a'] - Q[s, a])``
    with ``s, a, r, s' = obs[b], actions[b], rewards[b], next_obs[b]``. A
    *terminated* step (hole or goal) has no future: its target is ``r`` alone.
    A *truncated* step was only cut by the step limit; the tile it landed on
    still has a future, so it bootstraps like any other step (time is not part
    of the observation, so the value of a tile cannot depend on it).
    """
    del truncated  # documented above: truncation does not stop bootstrapping
    q = np.array(q, dtype=np.float64, copy=True)
    lakes = np.arange(len(q))
    future = np.where(terminated, 0.0, q[lakes, next_obs].max(axis=1))
    target = rewards + gamma * future
    q[lakes, obs, actions] += learning_rate * (target - q[lakes, obs, actions])
    return q


class QLearningAgent:
    """Tabular Q-learning from scratch inside each trial; tables are reset in ``begin``, never carried over.

    Defaults (documented choices): ``learning_rate=0.5`` (deterministic
    dynamics allow a large step), ``gamma=0.9`` (the paper's discount),
    ``epsilon=0.1`` (its own epsilon-greedy, on top of any ``Schedule``) and
    ``q_init=1.0``, optimism: every untried action looks as good as the goal,
    so the agent tries actions systematically instead of by chance. On 200 test
    maps of the paper's distribution (``benchmarks/baselines.py``) its success
    climbs from about 0.1 in episode 1 to about 0.6 by episode 10 and above 0.9
    by episode 30: visibly learning, but needing tens of episodes where the
    explorer needs a few. With ``q_init=0.0`` it only learns after stumbling on a
    goal by chance and reaches about 0.4 by episode 30.
    Ties between equal Q-values are broken at random (seeded).
    """

    name = "q-learning"

    def __init__(self, learning_rate: float = 0.5, gamma: float = 0.9, epsilon: float = 0.1, q_init: float = 1.0):
        for name, value in (("learning_rate", learning_rate), ("gamma", gamma), ("epsilon", epsilon)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} must lie in [0, 1]")
        self.learning_rate, self.gamma, self.epsilon, self.q_init = learning_rate, gamma, epsilon, float(q_init)

    def begin(self, maps: Sequence[LakeMap], rng: np.random.Generator) -> None:
        self.rng = rng
        self.q = np.full(LakeGeometry([m.shape for m in maps]).moves.shape, self.q_init)

    def act(self, obs: np.ndarray) -> np.ndarray:
        values = _gather(self.q, obs)  # (B, 4)
        greedy = _random_argmin(-(values == values.max(axis=1, keepdims=True)).astype(np.int64), self.rng)
        explore = self.rng.random(len(obs)) < self.epsilon
        return np.where(explore, self.rng.integers(0, 4, size=len(obs)), greedy)

    def observe(self, step: Transition) -> None:
        rows = np.flatnonzero(step.active)
        self.q[rows] = q_learning_update(self.q[rows], step.obs[rows], step.actions[rows], step.rewards[rows],
                                         step.next_obs[rows], step.terminated[rows], step.truncated[rows],
                                         self.learning_rate, self.gamma)


# ---------------------------------------------------------------------------------- explorer
def explorer_distances(knowledge: np.ndarray, geometry: LakeGeometry) -> tuple[np.ndarray, np.ndarray]:
    """``(B, S)`` distances to a known goal and to the nearest unknown tile, through known-safe tiles only.

    ``knowledge`` is ``(B, S)`` codes (``UNKNOWN``, ``SAFE``, ``HOLE``,
    ``GOAL``); a path may end on an unknown tile next to a known-safe one
    (stepping there is what exploring is) but never passes through one.
    Unreachable tiles get ``S + 1``.
    """
    safe = knowledge == SAFE
    return geometry.distances(safe, knowledge == GOAL), geometry.distances(safe, knowledge == UNKNOWN)


def explorer_action_costs(knowledge: np.ndarray, geometry: LakeGeometry, position: np.ndarray,
                          distances: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``(B, 4)``: how far each action leaves the explorer from its target; it takes a cheapest one.

    The target is a known goal when one is reachable through known-safe tiles
    from ``position``, otherwise the nearest unknown tile. A move's cost is the
    target distance of the tile it leads to; a move into a known hole costs
    more than anything else, and one towards no target costs ``S + 1``.
    ``distances`` are ``explorer_distances(knowledge, geometry)`` when the
    caller already has them.
    """
    far = geometry.num_states + 1
    to_goal, to_unknown = explorer_distances(knowledge, geometry) if distances is None else distances
    goal_known = _gather(to_goal, position) < far
    dist = np.where(goal_known[:, None], to_goal, to_unknown)
    nxt = _gather(geometry.moves, position)  # (B, 4)
    return np.where(_gather(knowledge, nxt) == HOLE, 2 * far, _gather(dist, nxt))


def knowledge_from_rows(rows: Sequence[str]) -> np.ndarray:
    """A ``(1, S)`` knowledge array from rows of ``?``/``F``/``H``/``G`` letters (see ``KNOWLEDGE_LETTERS``)."""
    flat = "".join(rows)
    bad = sorted(set(flat) - set(KNOWLEDGE_LETTERS))
    if bad:
        raise ValueError(f"knowledge rows use {bad}: letters are '?' unknown, 'F' safe, 'H' hole, 'G' goal")
    return np.array([[KNOWLEDGE_LETTERS.index(c) for c in flat]], dtype=np.int8)


def explorer_choices(rows: Sequence[str], position: int) -> tuple[int, ...]:
    """Every action the explorer may take from ``position`` on one lake whose knowledge is ``rows``.

    ``rows`` uses ``KNOWLEDGE_LETTERS`` ('?' unknown, 'F' known safe, 'H'
    known hole, 'G' known goal). All actions returned are equally good (the
    agent picks one of them at random); a readable one-lake view of
    ``explorer_action_costs``, used by the lessons and their checks.
    """
    knowledge = knowledge_from_rows(rows)
    if not 0 <= position < knowledge.shape[1]:
        raise ValueError(f"position={position} lies outside the {len(rows)}x{len(rows[0])} map (0..{knowledge.shape[1] - 1})")
    costs = explorer_action_costs(knowledge, LakeGeometry([(len(rows), len(rows[0]))]), np.array([position]))[0]
    return tuple(int(a) for a in np.flatnonzero(costs == costs.min()))


class ExplorerAgent:
    """Remembers every tile it has seen in the trial and plans over that memory.

    Knowledge per lake (``knowledge``, ``(B, S)``): ``UNKNOWN`` until seen;
    ``SAFE`` once stood on (every start it is placed on, every tile a step
    landed on without ending the episode); ``HOLE`` once fallen into (an
    episode-ending step without reward); ``GOAL`` once reached (an
    episode-ending step with positive reward). Each step it takes a first move
    of a shortest path through known-safe tiles to a known goal; without a
    reachable known goal, to the nearest unknown tile. It never *chooses* a
    move into a known hole. Ties are broken at random (seeded). It needs each
    map's shape only, never its tiles.

    On non-slippery maps this is close to the fastest anyone can learn a map
    from experience alone: exploration stops the moment a goal is found. It
    does not go on looking for a shorter route, so its episodes may be longer
    than the oracle's. On slippery maps its knowledge stays correct (it records
    where it actually landed) and it replans every step from where it is, but
    the plan assumes moves go where intended: a slip can still carry it into
    an unknown tile or a known hole next to its path.
    """

    name = "explorer"

    def begin(self, maps: Sequence[LakeMap], rng: np.random.Generator) -> None:
        self.rng = rng
        self.geometry = LakeGeometry([m.shape for m in maps])
        self.knowledge = np.full(self.geometry.valid.shape, UNKNOWN, dtype=np.int8)
        self._distances = None  # explorer_distances of the current knowledge; None when it changed

    def act(self, obs: np.ndarray) -> np.ndarray:
        self._learn(np.arange(len(obs)), obs, SAFE)  # the tile it stands on (a start, after a reset) is safe
        if self._distances is None:
            self._distances = explorer_distances(self.knowledge, self.geometry)
        costs = explorer_action_costs(self.knowledge, self.geometry, obs, self._distances)
        return _random_argmin(costs, self.rng)

    def observe(self, step: Transition) -> None:
        rows = np.flatnonzero(step.active)
        ending = step.terminated[rows]
        landed = np.where(ending, np.where(step.rewards[rows] > 0, GOAL, HOLE), SAFE)
        self._learn(rows, step.obs[rows], SAFE)
        self._learn(rows, step.next_obs[rows], landed)

    def _learn(self, rows: np.ndarray, states: np.ndarray, codes) -> None:
        if np.any(self.knowledge[rows, states] != codes):
            self.knowledge[rows, states] = codes
            self._distances = None

    def knowledge_rows(self, lake: int) -> list[str]:
        """What the explorer knows of lake ``lake``, as rows of ``?``/``F``/``H``/``G`` letters."""
        nrow, ncol = self.geometry.shapes[lake]
        flat = "".join(KNOWLEDGE_LETTERS[c] for c in self.knowledge[lake, : nrow * ncol])
        return [flat[r * ncol:(r + 1) * ncol] for r in range(nrow)]


class ForgetfulExplorer(ExplorerAgent):
    """The explorer, except that it forgets all it knew of a map the moment the map contradicts its memory.

    Why: after a map changes under it (the non-stationary protocol), the plain
    explorer's memory is wrong and it trusts it anyway: it keeps walking to a
    goal that moved, and a tile it remembers as safe is never explored again.
    A step *surprises* this explorer when where it landed (or stands) has a
    known code that the step contradicts: a remembered safe tile that ended
    the episode, a remembered goal that did not pay, a remembered hole or goal
    it stands on. Then it wipes that lake's memory and starts exploring again
    from what this step showed. On a map that never changes it is never
    surprised, so it plays exactly like ``ExplorerAgent``.
    """

    name = "forgetful explorer"

    def act(self, obs: np.ndarray) -> np.ndarray:
        standing = self.knowledge[np.arange(len(obs)), obs]
        self._forget(np.flatnonzero((standing == HOLE) | (standing == GOAL)))
        return super().act(obs)

    def observe(self, step: Transition) -> None:
        rows = np.flatnonzero(step.active)
        landed = np.where(step.terminated[rows], np.where(step.rewards[rows] > 0, GOAL, HOLE), SAFE)
        known = self.knowledge[rows, step.next_obs[rows]]
        self._forget(rows[(known != UNKNOWN) & (known != landed)])
        super().observe(step)

    def _forget(self, lakes: np.ndarray) -> None:
        if len(lakes):
            self.knowledge[lakes] = UNKNOWN
            self._distances = None
