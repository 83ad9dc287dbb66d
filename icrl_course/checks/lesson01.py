"""Checks for lesson 1's exercises: one non-slippery Frozen Lake step, and solvability by breadth-first search.

``check_step`` compares the learner's ``step(lake_map, state, action)`` with
the single entry of our env's transition table ``FrozenLakeEnv(lake_map).P``
(itself tested equal to gymnasium's). ``check_is_solvable`` compares the
learner's ``is_solvable(lake_map, min_hops)`` with ``LakeMap.is_solvable``.
Edge cases come first: walls at every corner and edge, holes and goals, cut-off
starts, the ``min_hops`` boundary; then non-square and random maps.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from icrl_course.checks.core import Case, CheckResult, Mistake, run_check
from icrl_course.envs import ACTION_NAMES, DOWN, LEFT, RIGHT, UP, FrozenLakeEnv, LakeMap


# ------------------------------------------------------------------------------------ step
def reference_step(lake_map: LakeMap, state: int, action: int) -> tuple[int, float, bool]:
    """The non-slippery move as the env's P table lists it: ``(next_state, reward, terminated)``."""
    ((_, next_state, reward, terminated),) = FrozenLakeEnv(lake_map, is_slippery=False).P[state][action]
    return next_state, float(reward), terminated


_WALLS = LakeMap.from_rows(["SFFF", "FFGF", "FFFF"])
"""3 x 4, so a learner who swaps rows and columns is caught: row * ncol + col needs ncol = 4."""

_DELTAS = ((0, -1), (1, 0), (0, 1), (-1, 0))  # left, down, right, up as (row, col) changes


def _move(lake_map: LakeMap, state: int, action: int, ncol: int, row_limit: int, col_limit: int, passable_goal=False):
    """A step with the bookkeeping choices a learner can get wrong made explicit."""
    row, col = divmod(state, ncol)
    dr, dc = _DELTAS[action]
    row, col = min(max(row + dr, 0), row_limit), min(max(col + dc, 0), col_limit)
    next_state = row * ncol + col
    tile = lake_map.flat[next_state] if 0 <= next_state < lake_map.n_states else "F"  # off the map: read as ice
    return next_state, float(tile == "G"), tile == "H" if passable_goal else tile in "HG"


def _wrap_at_row_end(lake_map, state, action):
    next_state = min(max(state + (-1, lake_map.ncol, 1, -lake_map.ncol)[action], 0), lake_map.n_states - 1)
    tile = lake_map.flat[next_state]
    return next_state, float(tile == "G"), tile in "HG"


def _with_reward_on_holes(lake_map, state, action):
    next_state, _, terminated = reference_step(lake_map, state, action)
    return next_state, float(terminated), terminated


STEP_MISTAKES = (
    Mistake("rows and columns swapped",
            lambda m, s, a: _move(m, s, a, m.nrow, m.ncol - 1, m.nrow - 1),
            "row, col = divmod(state, ncol) and state = row * ncol + col, with ncol the number of columns"),
    Mistake("an off-by-one clamp",
            lambda m, s, a: _move(m, s, a, m.ncol, m.nrow, m.ncol),
            "the last row is nrow - 1 and the last column ncol - 1: clamp to those, not to nrow and ncol"),
    Mistake("a move along the flat index (it wraps at the end of a row)", _wrap_at_row_end,
            "move in (row, col) and clamp each, then convert: left from column 0 must stay in column 0"),
    Mistake("a goal that does not end the episode",
            lambda m, s, a: _move(m, s, a, m.ncol, m.nrow - 1, m.ncol - 1, passable_goal=True),
            "terminated is True on a hole and on a goal"),
    Mistake("a reward for falling into a hole", _with_reward_on_holes, "only a goal pays 1; a hole ends with 0"),
)

WALL_HINT = "a move into the edge of the map leaves the agent where it is: clamp the row to 0..nrow-1 and the column to 0..ncol-1"


def _wall_cases() -> list[Case]:
    """Every corner bumped both ways it can be, and the middle of every edge bumped outwards."""
    bumps = [
        ("the top-left corner", 0, LEFT), ("the top-left corner", 0, UP),
        ("the top-right corner", 3, RIGHT), ("the top-right corner", 3, UP),
        ("the bottom-left corner", 8, LEFT), ("the bottom-left corner", 8, DOWN),
        ("the bottom-right corner", 11, RIGHT), ("the bottom-right corner", 11, DOWN),
        ("the middle of the top edge", 1, UP), ("the middle of the bottom edge", 9, DOWN),
        ("the middle of the left edge", 4, LEFT), ("the middle of the right edge", 7, RIGHT),
    ]
    return [Case(f"{ACTION_NAMES[action]} into the wall at {where} (state {state} of a 3x4 map)",
                 (_WALLS, state, action), hint=WALL_HINT, mistakes=STEP_MISTAKES) for where, state, action in bumps]


def step_cases() -> list[Case]:
    lake = LakeMap.from_rows(["SFH", "FFG", "HFS"])
    hole_hint = "a hole ends the episode (terminated True) with reward 0"
    goal_hint = "reaching a goal ends the episode (terminated True) with reward 1"
    cases = _wall_cases()
    cases += [
        Case("down from the top-left corner (state 0 -> 4)", (_WALLS, 0, DOWN),
             hint="the state is row * ncol + col, and ncol is the number of columns (4 here, with 3 rows)"),
        Case("up from the bottom-left corner (state 8 -> 4)", (_WALLS, 8, UP), hint="up subtracts 1 from the row"),
        Case("right along the top edge (state 1 -> 2)", (_WALLS, 1, RIGHT), hint="right adds 1 to the column"),
        Case("left from the middle of a 3x3 map (state 4 -> 3)", (lake, 4, LEFT)),
        Case("up from the middle of a 3x3 map (state 4 -> 1)", (lake, 4, UP)),
        Case("stepping onto a hole (right from state 1)", (lake, 1, RIGHT), hint=hole_hint),
        Case("stepping onto a hole (down from state 3)", (lake, 3, DOWN), hint=hole_hint),
        Case("stepping onto the goal (right from state 4)", (lake, 4, RIGHT), hint=goal_hint),
        Case("stepping onto a start tile is an ordinary frozen tile (right from state 7)", (lake, 7, RIGHT),
             hint="S is frozen ice like F: reward 0, the episode goes on"),
        Case("a tall map, 5 rows x 2 columns (down from state 6)", (LakeMap.from_rows(["SF", "FF", "FH", "FF", "GF"]), 6, DOWN),
             hint="the number of columns is len(lake_map.rows[0]); the number of rows is len(lake_map.rows)"),
        Case("a wide map, 2 rows x 5 columns (down from state 3)", (LakeMap.from_rows(["SFFFF", "HFFGF"]), 3, DOWN),
             hint=goal_hint),
    ]
    rng = np.random.default_rng(1)
    for lake_map in [LakeMap.from_rows(["SFFFH", "FHFFF", "FFFHG", "HFFFF"]), LakeMap.from_rows(["SFF", "FHF", "FFF", "HFG"])]:
        moves = [(s, a) for s, tile in enumerate(lake_map.flat) if tile in "SF" for a in range(4)]
        for i in rng.choice(len(moves), size=6, replace=False):
            state, action = moves[i]
            cases.append(Case(f"{lake_map.nrow}x{lake_map.ncol} map, {ACTION_NAMES[action]} from state {state}",
                              (lake_map, state, action)))
    return [dataclasses.replace(case, mistakes=STEP_MISTAKES) for case in cases]


def check_step(step) -> CheckResult:
    """Check a learner's ``step(lake_map, state, action) -> (next_state, reward, terminated)``."""
    return run_check("step", step, reference_step, step_cases())


# ---------------------------------------------------------------------------- is_solvable
def reference_is_solvable(lake_map: LakeMap, min_hops: int) -> bool:
    """Every start reaches a goal, the nearest in at least ``min_hops`` moves (``LakeMap.is_solvable``)."""
    return lake_map.is_solvable(min_hops)


def is_solvable_cases() -> list[Case]:
    hole_hint = "holes end the episode: a path may not pass through an H tile"
    every_start_hint = "an episode may begin on any S tile: the map is solvable only if every start reaches a goal"
    min_hops_hint = "count moves, not tiles; the map is kept when the nearest goal is at least min_hops moves away"
    cases = [
        Case("goal next to the start, min_hops=1", (LakeMap.from_rows(["SG"]), 1), hint=min_hops_hint),
        Case("min_hops boundary: 3 moves needed, min_hops=3", (LakeMap.from_rows(["SFFG"]), 3), hint=min_hops_hint),
        Case("min_hops boundary: 3 moves needed, min_hops=4", (LakeMap.from_rows(["SFFG"]), 4), hint=min_hops_hint),
        Case("a hole blocks the only row", (LakeMap.from_rows(["SHG"]), 1), hint=hole_hint),
        Case("holes wall the start in", (LakeMap.from_rows(["SHF", "HFF", "FFG"]), 1), hint=hole_hint),
        Case("the goal is only reachable around a hole (6 moves), min_hops=6",
             (LakeMap.from_rows(["SFF", "HHF", "GFF"]), 6), hint=hole_hint),
        Case("the goal is only reachable around a hole (6 moves), min_hops=7",
             (LakeMap.from_rows(["SFF", "HHF", "GFF"]), 7), hint=hole_hint),
        Case("one start is cut off while another reaches the goal", (LakeMap.from_rows(["SHS", "HFG"]), 1),
             hint=every_start_hint),
        Case("two starts 4 and 6 moves away: the nearest decides, min_hops=4",
             (LakeMap.from_rows(["SFFFG", "HHHHF", "SFFFF"]), 4), hint=min_hops_hint),
        Case("two starts 4 and 6 moves away: the nearest decides, min_hops=5",
             (LakeMap.from_rows(["SFFFG", "HHHHF", "SFFFF"]), 5),
             hint="min_hops applies to the nearest start: one start 4 moves away is already too close"),
        Case("two goals: the nearest counts, min_hops=3", (LakeMap.from_rows(["GFSFFFG"]), 3), hint=min_hops_hint),
        Case("a wide map, 2 rows x 6 columns (6 moves), min_hops=6", (LakeMap.from_rows(["SFFHFF", "FHFFFG"]), 6),
             hint="neighbours of (row, col) are (row +- 1, col) and (row, col +- 1) inside nrow x ncol"),
        Case("a tall map, 6 rows x 2 columns (8 moves), min_hops=8", (LakeMap.from_rows(["SF", "HF", "FF", "FH", "FF", "HG"]), 8)),
        Case("a path that winds through the whole map (16 moves), min_hops=16",
             (LakeMap.from_rows(["SFFFF", "HHHHF", "FFFFF", "FHHHH", "FFFFG"]), 16)),
    ]
    rng = np.random.default_rng(0)
    boards = 0
    while boards < 16:
        rows, cols = rng.integers(3, 6, size=2)
        letters = np.array(list("SFHG"))[rng.choice(4, size=(rows, cols), p=[0.1, 0.55, 0.25, 0.1])]
        text = ["".join(r) for r in letters]
        if "S" in "".join(text) and "G" in "".join(text):
            boards += 1
            cases.append(Case(f"random {rows}x{cols} map #{boards}, min_hops={boards % 4 + 1}",
                              (LakeMap.from_rows(text), boards % 4 + 1)))
    return cases


def check_is_solvable(is_solvable) -> CheckResult:
    """Check a learner's ``is_solvable(lake_map, min_hops) -> bool``."""
    return run_check("is_solvable", is_solvable, reference_is_solvable, is_solvable_cases())
