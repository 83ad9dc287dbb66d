"""Hand-made and generated test cases for two of the paper's claims: stitching and non-stationarity.

Why: "it stitches behaviour from its context" and "it adapts when the map
changes" are only testable on cases built for them. A *stitching case* is a
map and a context of recorded episodes in which no episode goes from the start
to the goal, but the first part of one joined to the last part of another
is a shortest route from the start: an agent that solves the map in its first
greedy episode, at the shortest length, has put the two together.
``paper_stitching_case`` is Rentschler & Roberts' hand-made case;
``stitching_cases`` generates many on the training shapes (3-5 x 3-5), and
``stitching_problems`` checks the property of any case by breadth-first
search, whoever built it (a test, a learner, the generator).

A *switch* (``switched_map``) is what the non-stationary protocol
(``run_trials(..., switch=(k, new_maps))``) changes: a new map of the same
shape, the goal moved, or a hole placed on the shortest route that worked.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from icrl_course.envs.distribution import MapDistribution
from icrl_course.envs.lake_map import LakeMap
from icrl_course.runtime import as_rng

SWITCH_KINDS = ("new map", "goal moved", "hole on route")
"""The three ways the non-stationary protocol changes a map."""


@dataclass(frozen=True)
class StitchingCase:
    """A map, the start the test episode begins on, and the context: recorded episodes as lists of tiles.

    ``episodes[i]`` is the tiles one recorded episode visited, from its first
    tile to where its last move landed (a goal, a hole, or wherever it was cut
    off). ``stitched`` is the route the case is built around: a shortest route
    from ``start`` to a goal made of the start of one episode and the end of
    another.
    """

    lake_map: LakeMap
    start: int
    episodes: tuple[tuple[int, ...], ...]
    stitched: tuple[int, ...]

    def prefix(self):
        """The context as a ``Trial`` for ``run_trials(..., prefix=[case.prefix()])``."""
        from icrl_course.trials import Trial  # envs sit below trials: import at use

        steps = []
        for tiles in self.episodes:
            for i, (here, there) in enumerate(zip(tiles[:-1], tiles[1:])):
                last = i == len(tiles) - 2
                tile = self.lake_map.flat[there]
                steps.append((here, move_between(self.lake_map, here, there), float(tile == "G"), there,
                              last and tile in "HG", last and tile not in "HG"))
        return Trial.from_steps(self.lake_map, steps)


def move_between(lake_map: LakeMap, here: int, there: int) -> int:
    """The action that moves from tile ``here`` to the neighbouring tile ``there``."""
    for action in range(4):
        if lake_map.next_state(here, action) == there and here != there:
            return action
    raise ValueError(f"tiles {here} and {there} are not neighbours on the {lake_map.nrow}x{lake_map.ncol} map: "
                     "an episode moves one tile at a time")


def paper_stitching_case() -> StitchingCase:
    """Rentschler & Roberts' stitching map: 6 x 4, start 8, goal 22; one episode 2 -> 22, one 8 -> hole 11.

    The stitched route 8 -> 9 -> 10 -> 14 -> 18 -> 22 (5 moves) is the shortest.
    Note the map has 6 rows, outside the 3-5 rows the paper's models trained on.
    """
    lake_map = LakeMap.from_rows(["HHFF", "FFFF", "SFFH", "HFFF", "HFFF", "HFGF"])
    return StitchingCase(lake_map, start=8, episodes=((2, 6, 10, 14, 18, 22), (8, 9, 10, 11)),
                         stitched=(8, 9, 10, 14, 18, 22))


# ------------------------------------------------------------------------------- checking
def _distances_from(lake_map: LakeMap, start: int) -> np.ndarray:
    """Fewest moves from ``start`` to every tile, not passing through holes or goals (-1: unreachable)."""
    dist = np.full(lake_map.n_states, -1)
    dist[start] = 0
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if lake_map.flat[here] in "HG" and here != start:
            continue  # an episode ends there
        for action in range(4):
            there = lake_map.next_state(here, action)
            if dist[there] == -1:
                dist[there] = dist[here] + 1
                queue.append(there)
    return dist


def stitching_problems(case: StitchingCase) -> list[str]:
    """Everything that keeps ``case`` from being a stitching case; empty when it is one.

    Checked by breadth-first search from the start, not by trusting how the
    case was made: every episode moves one tile at a time, crosses no hole or
    goal before its last tile; no episode starting on ``start`` reaches a goal;
    some episode's start (from ``start``) joined to another's end (at a goal)
    is a route whose length equals the shortest distance from ``start`` to a goal.
    """
    m, flat = case.lake_map, case.lake_map.flat
    problems = []
    if m.starts != (case.start,):
        return [f"the map's start tiles are {list(m.starts)}: play must begin on start={case.start}, so it must be the only 'S'"]
    for i, tiles in enumerate(case.episodes):
        if len(tiles) < 2:
            problems.append(f"episode {i} has {len(tiles)} tile(s): an episode needs at least one move")
            continue
        for here, there in zip(tiles[:-1], tiles[1:]):
            if there not in {m.next_state(here, a) for a in range(4)} or here == there:
                problems.append(f"episode {i} jumps from tile {here} to {there}, which is not a neighbour")
                break
        if any(flat[t] in "HG" for t in tiles[:-1]):
            problems.append(f"episode {i} passes through a hole or goal before its last tile: the episode would have ended there")
        if tiles[0] == case.start and flat[tiles[-1]] == "G":
            problems.append(f"episode {i} already goes from the start to the goal: nothing is left to stitch")
    if problems:
        return problems
    dist = _distances_from(m, case.start)
    goals = [g for g in m.goals if dist[g] >= 0]
    if not goals:
        return [f"no goal is reachable from start {case.start}"]
    shortest = min(dist[g] for g in goals)
    for a in case.episodes:
        if a[0] != case.start:
            continue
        for b in case.episodes:
            if b is a or flat[b[-1]] != "G":
                continue
            for i, tile in enumerate(a):
                for j in (j for j, t in enumerate(b) if t == tile):
                    if i + len(b) - 1 - j == shortest:
                        return []
    return [f"no episode from the start joined to an episode ending at a goal gives a route of the shortest "
            f"length ({shortest} moves) from tile {case.start}"]


# ------------------------------------------------------------------------------- generating
def _shortest_route(lake_map: LakeMap, start: int, rng: np.random.Generator) -> list[int] | None:
    """One shortest route from ``start`` to the nearest goal, ties broken at random; None if cut off."""
    to_goal = lake_map.distances_to_goal()
    if to_goal[start] < 0:
        return None
    route = [start]
    while lake_map.flat[route[-1]] != "G":
        here = route[-1]
        steps = [lake_map.next_state(here, a) for a in range(4)]
        closer = [t for t in steps if to_goal[t] == to_goal[here] - 1]
        route.append(int(rng.choice(closer)))
    return route


def _random_map(rng: np.random.Generator, p_hole: float) -> LakeMap:
    nrow, ncol = (int(v) for v in rng.integers(3, 6, size=2))
    flat = np.where(rng.random(nrow * ncol) < p_hole, "H", "F")
    start, goal = rng.choice(nrow * ncol, size=2, replace=False)
    flat[start], flat[goal] = "S", "G"
    return LakeMap.from_rows(["".join(flat[r * ncol:(r + 1) * ncol]) for r in range(nrow)])


def _stitch(lake_map: LakeMap, rng: np.random.Generator, min_moves: int) -> StitchingCase | None:
    """Try to build a case on ``lake_map`` around one shortest route; None when this map offers none."""
    start = lake_map.starts[0]
    route = _shortest_route(lake_map, start, rng)
    if route is None or len(route) - 1 < min_moves:
        return None
    flat = lake_map.flat
    for j in rng.permutation(np.arange(1, len(route) - 1)):
        junction = route[j]
        neighbours = sorted({lake_map.next_state(junction, a) for a in range(4)} - {junction})
        holes = [t for t in neighbours if flat[t] == "H"]
        entries = [t for t in neighbours if flat[t] == "F" and t not in route]
        if holes and entries:
            failed = tuple(route[:j + 1]) + (int(rng.choice(holes)),)  # from the start, into a hole
            reached = (int(rng.choice(entries)),) + tuple(route[j:])  # from elsewhere, to the goal
            return StitchingCase(lake_map, start, (reached, failed), tuple(route))
    return None


def stitching_cases(n: int, seed: int | np.random.Generator | None = 0, p_hole: float = 0.3,
                    min_moves: int = 3) -> list[StitchingCase]:
    """``n`` stitching cases on random 3-5 x 3-5 maps with one start and one goal, each checked.

    Each case: a shortest route from the start (at least ``min_moves`` moves)
    is cut at a junction tile; the context holds one episode that follows the
    route from the start to the junction and then steps into a hole beside it,
    and one that enters the junction from a frozen tile off the route and
    follows the route to the goal. ``stitching_problems`` must find nothing
    wrong with a case before it is kept.
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n={n!r} must be an int >= 0")
    rng = as_rng(seed)
    cases: list[StitchingCase] = []
    while len(cases) < n:
        case = _stitch(_random_map(rng, p_hole), rng, min_moves)
        if case is not None and not stitching_problems(case):
            cases.append(case)
    return cases


# ------------------------------------------------------------------------------- switches
def _with_tiles(lake_map: LakeMap, changes: dict[int, str]) -> LakeMap:
    flat = list(lake_map.flat)
    for tile, letter in changes.items():
        flat[tile] = letter
    return LakeMap.from_rows(["".join(flat[r * lake_map.ncol:(r + 1) * lake_map.ncol]) for r in range(lake_map.nrow)])


def switched_map(lake_map: LakeMap, kind: Literal["new map", "goal moved", "hole on route"],
                 seed: int | np.random.Generator | None = 0,
                 distribution: MapDistribution | None = None) -> LakeMap | None:
    """The map a trial continues on after a switch of ``kind``; None when ``lake_map`` allows no such switch.

    * ``"new map"``: a different map of the same shape from the test split of
      ``distribution`` (the paper's by default);
    * ``"goal moved"``: every goal becomes frozen and one frozen tile that is
      not a start becomes the goal, still reachable from every start;
    * ``"hole on route"``: a hole on a tile of a shortest route from the first
      start (not the start or the goal), the map staying solvable, so the route
      that worked before now ends in the hole.
    """
    rng = as_rng(seed)
    flat = lake_map.flat
    if kind == "new map":
        shaped = (distribution or MapDistribution.paper()).with_(rows=(lake_map.nrow,) * 2, cols=(lake_map.ncol,) * 2)
        for candidate in shaped.sample_many(2, seed=rng, split="test"):
            if candidate.digest != lake_map.digest:
                return candidate
        return None
    if kind == "goal moved":
        cleared = {g: "F" for g in lake_map.goals}
        for tile in rng.permutation([t for t, c in enumerate(flat) if c == "F"]):
            moved = _with_tiles(lake_map, {**cleared, int(tile): "G"})
            if moved.is_solvable():
                return moved
        return None
    if kind == "hole on route":
        route = _shortest_route(lake_map, lake_map.starts[0], rng)
        for tile in rng.permutation(route[1:-1]) if route else []:
            blocked = _with_tiles(lake_map, {int(tile): "H"})
            if blocked.is_solvable():
                return blocked
        return None
    raise ValueError(f"kind={kind!r} must be one of {SWITCH_KINDS}")


def switch_pairs(maps: Sequence[LakeMap], kind: str, seed: int | np.random.Generator | None = 0,
                 distribution: MapDistribution | None = None) -> tuple[list[LakeMap], list[LakeMap]]:
    """The maps that allow a switch of ``kind`` and, in the same order, the maps they switch to."""
    rng = as_rng(seed)
    kept, new = [], []
    for lake_map in maps:
        switched = switched_map(lake_map, kind, rng, distribution)
        if switched is not None:
            kept.append(lake_map)
            new.append(switched)
    return kept, new
