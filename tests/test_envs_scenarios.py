"""Stitching cases and map switches, checked by a breadth-first search written here, not the library's."""

from collections import deque

import pytest

from icrl_course.envs import LakeMap, MapDistribution
from icrl_course.envs.scenarios import (
    SWITCH_KINDS,
    StitchingCase,
    paper_stitching_case,
    stitching_cases,
    stitching_problems,
    switch_pairs,
)

MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))


def neighbours(rows, tile):
    nrow, ncol = len(rows), len(rows[0])
    r, c = divmod(tile, ncol)
    return {min(max(r + dr, 0), nrow - 1) * ncol + min(max(c + dc, 0), ncol - 1) for dr, dc in MOVES} - {tile}


def bfs(rows, start):
    """Fewest moves from start to every tile; holes and goals end an episode, so paths stop there."""
    flat = "".join(rows)
    dist, queue = {start: 0}, deque([start])
    while queue:
        here = queue.popleft()
        if flat[here] in "HG" and here != start:
            continue
        for there in neighbours(rows, here):
            if there not in dist:
                dist[there] = dist[here] + 1
                queue.append(there)
    return dist


def assert_is_stitching_case(case):
    rows, flat = case.lake_map.rows, case.lake_map.flat
    assert flat[case.start] == "S" and flat.count("S") == 1
    for tiles in case.episodes:
        assert all(b in neighbours(rows, a) for a, b in zip(tiles, tiles[1:]))
        assert not any(flat[t] in "HG" for t in tiles[:-1])
        assert not (tiles[0] == case.start and flat[tiles[-1]] == "G"), "an episode already solves the map"
    route = case.stitched
    dist = bfs(rows, case.start)
    assert len(route) - 1 == min(dist[g] for g in range(len(flat)) if flat[g] == "G" and g in dist)
    assert route[0] == case.start and flat[route[-1]] == "G"
    joins = [(a, b) for a in case.episodes for b in case.episodes if a is not b and a[0] == case.start
             and any(tuple(a[:i + 1]) + tuple(b[j + 1:]) == route
                     for i in range(len(a)) for j in range(len(b)) if a[i] == b[j])]
    assert joins, "the stitched route is not a start of one episode joined to the end of another"


def test_paper_case_is_the_map_and_episodes_of_the_paper():
    case = paper_stitching_case()
    assert case.lake_map.rows == ("HHFF", "FFFF", "SFFH", "HFFF", "HFFF", "HFGF")
    assert (case.start, case.lake_map.goals) == (8, (22,))
    assert case.episodes == ((2, 6, 10, 14, 18, 22), (8, 9, 10, 11))
    assert case.stitched == (8, 9, 10, 14, 18, 22)
    assert_is_stitching_case(case)
    assert stitching_problems(case) == []


def test_paper_case_prefix_is_two_episodes_ending_in_the_goal_then_the_hole():
    prefix = paper_stitching_case().prefix()
    assert list(prefix.obs) == [2, 6, 10, 14, 18, 8, 9, 10]
    assert list(prefix.actions) == [1, 1, 1, 1, 1, 2, 2, 2]
    assert list(prefix.rewards) == [0, 0, 0, 0, 1, 0, 0, 0]
    assert list(prefix.terminated) == [False] * 4 + [True] + [False] * 2 + [True]


def test_every_generated_case_has_the_stitching_property_on_training_shapes():
    cases = stitching_cases(40, seed=0)
    assert len(cases) == 40
    for case in cases:
        assert 3 <= case.lake_map.nrow <= 5 and 3 <= case.lake_map.ncol <= 5
        assert_is_stitching_case(case)


def test_generator_is_seeded():
    assert stitching_cases(5, seed=1) == stitching_cases(5, seed=1)
    assert stitching_cases(5, seed=1) != stitching_cases(5, seed=2)


@pytest.mark.parametrize("episodes, message", [
    (((8, 9, 10, 14, 18, 22),), "already goes from the start"),
    (((2, 6, 10, 14, 18, 22), (8, 9, 10, 11), (8, 12, 13)), "hole or goal before"),
    (((2, 6, 10, 14, 18, 22), (8, 10)), "not a neighbour"),
    (((15, 19, 23, 22), (8, 9, 10, 14, 15, 11)), "shortest"),
])
def test_problems_name_what_breaks_the_property(episodes, message):
    case = paper_stitching_case()
    broken = StitchingCase(case.lake_map, case.start, episodes, case.stitched)
    assert any(message in p for p in stitching_problems(broken))


def test_a_case_on_a_map_with_several_starts_is_refused():
    case = StitchingCase(LakeMap.from_rows(["SFS", "FFG"]), 0, ((0, 1), (1, 4, 5)), (0, 1, 4, 5))
    assert "only 'S'" in stitching_problems(case)[0]


@pytest.mark.parametrize("kind", SWITCH_KINDS)
def test_switched_maps_keep_the_shape_stay_solvable_and_change_what_the_kind_says(kind):
    maps = MapDistribution.paper().sample_many(30, seed=4, split="test")
    kept, new = switch_pairs(maps, kind, seed=0)
    assert len(kept) >= 20
    for old, switched in zip(kept, new):
        assert switched.shape == old.shape and switched.is_solvable() and switched.digest != old.digest
        if kind == "goal moved":
            assert set(switched.goals).isdisjoint(old.goals) and len(switched.goals) == 1
            assert switched.holes == old.holes and switched.starts == old.starts
        if kind == "hole on route":
            added = set(switched.holes) - set(old.holes)
            assert len(added) == 1 and set(switched.goals) == set(old.goals)
            # the new hole sits on a shortest route of the old map: from the first start, via it, at the shortest length
            hole = added.pop()
            dist = bfs(old.rows, old.starts[0])
            to_goal = old.distances_to_goal()
            assert dist[hole] + to_goal[hole] == to_goal[old.starts[0]]
