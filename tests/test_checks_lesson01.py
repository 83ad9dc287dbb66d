"""Lesson 1's checks pass a correct learner and catch realistic bugs, naming the case that shows each."""

from __future__ import annotations

from collections import deque

import pytest

from icrl_course.checks.lesson01 import check_is_solvable, check_step

DELTAS = ((0, -1), (1, 0), (0, 1), (-1, 0))  # left, down, right, up as (row, col) changes


# ------------------------------------------------------------------------------------ step
def step(lake_map, state, action):
    """A correct learner: clamp at the walls, then read the tile."""
    row, col = divmod(state, lake_map.ncol)
    dr, dc = DELTAS[action]
    row, col = min(max(row + dr, 0), lake_map.nrow - 1), min(max(col + dc, 0), lake_map.ncol - 1)
    tile = lake_map.rows[row][col]
    return row * lake_map.ncol + col, float(tile == "G"), tile in "HG"


def step_wrapping_at_row_ends(lake_map, state, action):
    """Moves left/right by +-1 on the flat index, so stepping off a row's end lands on the next row."""
    offsets = (-1, lake_map.ncol, 1, -lake_map.ncol)
    next_state = min(max(state + offsets[action], 0), lake_map.n_states - 1)
    tile = lake_map.flat[next_state]
    return next_state, float(tile == "G"), tile in "HG"


def step_clamping_one_too_far(lake_map, state, action):
    row, col = divmod(state, lake_map.ncol)
    dr, dc = DELTAS[action]
    row, col = min(max(row + dr, 0), lake_map.nrow), min(max(col + dc, 0), lake_map.ncol)
    next_state = row * lake_map.ncol + col
    tile = lake_map.flat[next_state] if next_state < lake_map.n_states else "F"
    return next_state, float(tile == "G"), tile in "HG"


def step_swapping_rows_and_cols(lake_map, state, action):
    row, col = divmod(state, lake_map.nrow)
    dr, dc = DELTAS[action]
    row, col = min(max(row + dr, 0), lake_map.ncol - 1), min(max(col + dc, 0), lake_map.nrow - 1)
    next_state = row * lake_map.nrow + col
    tile = lake_map.flat[next_state]
    return next_state, float(tile == "G"), tile in "HG"


def step_walking_through_goals(lake_map, state, action):
    next_state, reward, _ = step(lake_map, state, action)
    return next_state, reward, lake_map.flat[next_state] == "H"


def step_rewarding_holes(lake_map, state, action):
    next_state, _, terminated = step(lake_map, state, action)
    return next_state, float(terminated), terminated


def test_check_step_passes_a_correct_step(capsys):
    assert check_step(step)
    assert capsys.readouterr().out.startswith("✓ step: all")


@pytest.mark.parametrize(
    ("buggy", "case", "mistake"),
    [
        (step_wrapping_at_row_ends, "right into the wall at the top-right corner", "wraps at the end of a row"),
        (step_clamping_one_too_far, "right into the wall at the top-right corner", "an off-by-one clamp"),
        (step_swapping_rows_and_cols, "right into the wall at the top-right corner", "rows and columns swapped"),
        (step_walking_through_goals, "stepping onto the goal", "a goal that does not end the episode"),
        (step_rewarding_holes, "stepping onto a hole", "a reward for falling into a hole"),
    ],
    ids=["wraps-at-row-end", "clamps-one-too-far", "swaps-rows-and-cols", "goal-passable", "reward-on-hole"],
)
def test_check_step_names_the_case_and_the_mistake_a_bug_makes(buggy, case, mistake, capsys):
    result = check_step(buggy)
    assert not result and result.implemented
    assert result.failed_case.startswith(case)
    out = capsys.readouterr().out
    assert f"case '{result.failed_case}'" in out and "looks like" in out and mistake in out, out
    assert "clamp the row" not in out or mistake == "an off-by-one clamp"  # the hint follows the mistake, not the case


def test_check_step_says_not_implemented_yet(capsys):
    def unfinished(lake_map, state, action):
        raise NotImplementedError("clamp at the walls")

    result = check_step(unfinished)
    assert not result and not result.implemented
    assert "not implemented yet" in capsys.readouterr().out


# ---------------------------------------------------------------------------- is_solvable
def moves_to_nearest_goal(lake_map, start, passable="SFG", neighbours=None):
    """Breadth-first search from one start; None when no goal is reachable."""
    neighbours = neighbours or (lambda r, c: [(r + dr, c + dc) for dr, dc in DELTAS])
    dist, queue = {start: 0}, deque([start])
    while queue:
        state = queue.popleft()
        row, col = divmod(state, lake_map.ncol)
        if lake_map.rows[row][col] == "G":
            return dist[state]
        for r, c in neighbours(row, col):
            nxt = r * lake_map.ncol + c
            if 0 <= r < lake_map.nrow and 0 <= c < lake_map.ncol and lake_map.rows[r][c] in passable and nxt not in dist:
                dist[nxt] = dist[state] + 1
                queue.append(nxt)
    return None


def is_solvable(lake_map, min_hops):
    """A correct learner: every start reaches a goal, the nearest start at least min_hops moves away."""
    distances = [moves_to_nearest_goal(lake_map, s) for s in lake_map.starts]
    return all(d is not None for d in distances) and min(distances) >= min_hops


def is_solvable_through_holes(lake_map, min_hops):
    distances = [moves_to_nearest_goal(lake_map, s, passable="SFGH") for s in lake_map.starts]
    return all(d is not None for d in distances) and min(distances) >= min_hops


def is_solvable_if_any_start_reaches(lake_map, min_hops):
    distances = [d for d in (moves_to_nearest_goal(lake_map, s) for s in lake_map.starts) if d is not None]
    return bool(distances) and min(distances) >= min_hops


def is_solvable_off_by_one(lake_map, min_hops):
    distances = [moves_to_nearest_goal(lake_map, s) for s in lake_map.starts]
    return all(d is not None for d in distances) and min(distances) > min_hops


def is_solvable_counting_tiles(lake_map, min_hops):
    distances = [moves_to_nearest_goal(lake_map, s) for s in lake_map.starts]
    return all(d is not None for d in distances) and min(distances) + 1 >= min_hops


def is_solvable_with_farthest_start(lake_map, min_hops):
    distances = [moves_to_nearest_goal(lake_map, s) for s in lake_map.starts]
    return all(d is not None for d in distances) and max(distances) >= min_hops


def test_check_is_solvable_passes_a_correct_search(capsys):
    assert check_is_solvable(is_solvable)
    assert capsys.readouterr().out.startswith("✓ is_solvable: all")


@pytest.mark.parametrize(
    ("buggy", "case"),
    [
        (is_solvable_through_holes, "a hole blocks the only row"),
        (is_solvable_if_any_start_reaches, "one start is cut off while another reaches the goal"),
        (is_solvable_off_by_one, "goal next to the start, min_hops=1"),
        (is_solvable_counting_tiles, "min_hops boundary: 3 moves needed, min_hops=4"),
        (is_solvable_with_farthest_start, "two starts 4 and 6 moves away: the nearest decides, min_hops=5"),
    ],
    ids=["holes-passable", "any-start", "off-by-one", "counts-tiles", "farthest-start"],
)
def test_check_is_solvable_names_the_case_a_bug_fails(buggy, case, capsys):
    result = check_is_solvable(buggy)
    assert not result and result.implemented
    assert result.failed_case == case
    assert f"case '{case}'" in capsys.readouterr().out
