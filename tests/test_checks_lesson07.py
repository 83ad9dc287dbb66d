"""Lesson 7's checks: a correct solution passes; each realistic mistake fails with a hint that names it."""

from collections import deque

import numpy as np

from icrl_course.checks.lesson07 import (
    check_episodes_to_recover,
    check_my_stitching_case,
    check_paired_ci,
    check_stitching_property,
)
from icrl_course.envs import LakeMap
from icrl_course.envs.scenarios import StitchingCase, paper_stitching_case


def run(check, fn, capsys):
    result = check(fn)
    return result, capsys.readouterr().out


# ------------------------------------------------------------------------------ stitching property
def _bfs_shortest(lake_map, start):
    flat, dist, queue = lake_map.flat, {start: 0}, deque([start])
    while queue:
        here = queue.popleft()
        if flat[here] in "HG":
            continue
        for there in {lake_map.next_state(here, m) for m in range(4)}:
            if there not in dist:
                dist[there] = dist[here] + 1
                queue.append(there)
    return min(d for t, d in dist.items() if lake_map.flat[t] == "G")


def make_is_stitching(check_solved=True, check_length=True, check_holes=True):
    def is_stitching(lake_map, start, episodes):
        flat = lake_map.flat
        for tiles in episodes:
            if any(b not in {lake_map.next_state(a, m) for m in range(4)} for a, b in zip(tiles, tiles[1:])):
                return False
            if check_holes and any(flat[t] in "HG" for t in tiles[:-1]):
                return False
            if check_solved and tiles[0] == start and flat[tiles[-1]] == "G":
                return False
        shortest = _bfs_shortest(lake_map, start)
        for a in episodes:
            for b in episodes:
                if a is b or a[0] != start or flat[b[-1]] != "G":
                    continue
                for x, tile in enumerate(a):
                    for y, other in enumerate(b):
                        if tile == other and (not check_length or x + len(b) - 1 - y == shortest):
                            return True
        return False
    return is_stitching


def test_a_correct_stitching_check_passes(capsys):
    result, out = run(check_stitching_property, make_is_stitching(), capsys)
    assert result.passed and "all 6 cases pass" in out


def test_forgetting_that_an_episode_may_already_solve_the_map_is_named(capsys):
    # the join of the solving episode with itself is excluded, but the case must be rejected anyway
    result, out = run(check_stitching_property, make_is_stitching(check_solved=False), capsys)
    assert not result.passed and "already reaches the goal" in out
    assert "reject a context in which one episode starts on the start tile and ends on a goal" in out


def test_accepting_any_join_however_long_is_named(capsys):
    result, out = run(check_stitching_property, make_is_stitching(check_length=False), capsys)
    assert not result.passed and "breadth-first-search distance" in out


def test_allowing_routes_through_holes_is_named(capsys):
    result, out = run(check_stitching_property, make_is_stitching(check_holes=False), capsys)
    assert not result.passed and "only its last tile may be one" in out


def test_a_built_case_is_checked_and_its_problems_listed(capsys):
    good = StitchingCase(LakeMap.from_rows(["SFFF", "FHFH", "FFFH", "HFFG"]), 0,
                         ((0, 4, 8, 12), (4, 8, 9, 10, 14, 15)), (0, 4, 8, 9, 10, 14, 15))
    assert check_my_stitching_case(good) and "✓" in capsys.readouterr().out
    solved = StitchingCase(good.lake_map, 0, ((0, 4, 8, 9, 10, 14, 15),), ())
    assert not check_my_stitching_case(solved)
    assert "already goes from the start to the goal" in capsys.readouterr().out
    assert not check_my_stitching_case(paper_stitching_case())  # holds, but 6 rows: not a training shape
    assert "3-5 x 3-5" in capsys.readouterr().out


# ------------------------------------------------------------------------------ paired bootstrap
def paired_ci(a, b, n_boot=4000, seed=0):
    diff = np.asarray(a, float) - np.asarray(b, float)
    idx = np.random.default_rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))
    low, high = np.percentile(diff[idx].mean(axis=1), [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def unpaired_ci(a, b, n_boot=4000, seed=0):
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1) - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(a.mean() - b.mean()), float(low), float(high)


def reversed_ci(a, b, n_boot=4000, seed=0):
    return paired_ci(b, a, n_boot, seed)


def test_a_correct_paired_interval_passes(capsys):
    result, out = run(check_paired_ci, paired_ci, capsys)
    assert result.passed, out


def test_resampling_the_agents_separately_is_named(capsys):
    result, out = run(check_paired_ci, unpaired_ci, capsys)
    assert not result.passed and "resample map indices once and use them for both agents" in out


def test_the_difference_the_wrong_way_round_is_named(capsys):
    result, out = run(check_paired_ci, reversed_ci, capsys)
    assert not result.passed and "agent a minus agent b" in out


# ------------------------------------------------------------------------------ episodes to recover
def recover(rows, only_maps_that_succeeded_before=True):
    k = int(rows.loc[rows["switched"], "episode"].min())
    after = int(rows["episode"].max()) + 1 - k
    out = {}
    for lake, part in rows.groupby("lake"):
        if only_maps_that_succeeded_before and part.loc[part["episode"] == k - 1, "success"].iloc[0] <= 0:
            continue
        wins = part.loc[part["switched"] & (part["success"] > 0), "episode"]
        out[int(lake)] = float(wins.min() - k + 1) if len(wins) else float(after + 1)
    return out


def recover_from_zero(rows):
    k = int(rows.loc[rows["switched"], "episode"].min())
    return {lake: value + k - 1 for lake, value in recover(rows).items()}


def recover_keeping_every_map(rows):
    return recover(rows, only_maps_that_succeeded_before=False)


def recover_without_censoring(rows):
    return {lake: value for lake, value in recover(rows).items()
            if value <= int(rows["episode"].max()) + 1 - int(rows.loc[rows["switched"], "episode"].min())}


def test_a_correct_count_passes(capsys):
    result, out = run(check_episodes_to_recover, recover, capsys)
    assert result.passed, out


def test_counting_from_episode_zero_is_named(capsys):
    result, out = run(check_episodes_to_recover, recover_from_zero, capsys)
    assert not result.passed and "count episodes from the switch" in out


def test_keeping_maps_that_had_nothing_to_recover_is_named(capsys):
    result, out = run(check_episodes_to_recover, recover_keeping_every_map, capsys)
    assert not result.passed and "episode k - 1" in out


def test_dropping_maps_that_never_recover_is_named(capsys):
    result, out = run(check_episodes_to_recover, recover_without_censoring, capsys)
    assert not result.passed and "censor" in out
