"""Checks for lesson 3's exercises: a cell's wall distances and the compact encoder's fields.

Both compare the learner's function with ``icrl_course.tokenize.compact``:
``check_wall_distances`` with ``CompactTokenizer(edge_cap=cap).cell_fields``,
``check_encode_fields`` with ``CompactTokenizer().encode_fields`` on
hand-made trials, edge cases first (one step into a hole, a step that does
not end the episode, truncation, a slip, a 7 x 7 map), then a real trial.
"""

from __future__ import annotations

import numpy as np

from icrl_course.checks.core import Case, CheckResult, run_check
from icrl_course.envs import LakeMap
from icrl_course.tokenize.compact import CompactTokenizer
from icrl_course.trials import Trial


# ------------------------------------------------------------------------ wall distances
def reference_wall_distances(obs: np.ndarray, nrow: int, ncol: int, cap: int = 4) -> np.ndarray:
    """``(n, 4)`` distances (up, down, left, right) of each cell to the walls, capped at ``cap``."""
    return CompactTokenizer(edge_cap=cap).cell_fields(obs, nrow, ncol)


def wall_distance_cases() -> list[Case]:
    cap_hint = "cap every distance: up = min(row, cap), down = min(nrow - 1 - row, cap), and the same for columns"
    return [
        Case("the top-left corner of a 3x3 map", (np.array([0]), 3, 3),
             hint="row, col = divmod(obs, ncol); up = row, down = nrow - 1 - row, left = col, right = ncol - 1 - col"),
        Case("every cell of a 2x4 map (rows and columns differ)", (np.arange(8), 2, 4),
             hint="the row is obs // ncol with ncol the number of columns (4 here)"),
        Case("a one-row corridor", (np.arange(5), 1, 5), hint="with one row both up and down are 0"),
        Case("every cell of a 7x7 map: distances capped at 4", (np.arange(49), 7, 7), hint=cap_hint),
        Case("a 5x5 map with cap 2", (np.arange(25), 5, 5, 2), hint=cap_hint),
    ]


def check_wall_distances(wall_distances) -> CheckResult:
    """Check a learner's ``wall_distances(obs, nrow, ncol, cap=4) -> (n, 4)``."""
    return run_check("wall_distances", wall_distances, reference_wall_distances, wall_distance_cases())


# ------------------------------------------------------------------------ encoder
def reference_encode_fields(trial: Trial) -> np.ndarray:
    """The ``(T + 1, 11)`` fields of the library's compact encoding."""
    return CompactTokenizer().encode_fields(trial)


LAKE = LakeMap.from_rows(["SFF", "FHF", "FFG"])
_STEP = "(obs, action, reward, next_obs, terminated, truncated)"


def _trial(steps, lake: LakeMap = LAKE) -> Trial:
    return Trial.from_steps(lake, steps)


def _explorer_trial() -> Trial:
    from icrl_course.baselines import ExplorerAgent
    from icrl_course.trials import run_trials

    return run_trials(ExplorerAgent(), [LakeMap.from_rows(["SFFH", "FHFF", "FFHF", "HFFG"])], episodes=4, seed=0).trials[0]


def encode_cases() -> list[Case]:
    closing = ("a trial of T steps has T + 1 tokens: the last one closes the trial with the last step's action, "
               "reward and ending; its own cell fields are none (cap + 1) when that step ended an episode")
    ending = ("the first token of an episode after the first carries where the previous episode ENDED: next_obs of the "
              "ending step (the hole or goal), not the new start")
    return [
        Case("one step straight into the hole", (_trial([(1, 1, 0.0, 4, True, False)]),), hint=closing),
        Case("one step that does not end the episode: the closing token holds the cell landed on",
             (_trial([(0, 2, 0.0, 1, False, False)]),),
             hint="if the last step did not end the episode, the closing token is an ordinary step token at next_obs"),
        Case("two episodes: into the hole, then to the goal", (_trial([
            (0, 2, 0.0, 1, False, False), (1, 1, 0.0, 4, True, False),
            (0, 2, 0.0, 1, False, False), (1, 2, 0.0, 2, False, False), (2, 1, 0.0, 5, False, False),
            (5, 1, 1.0, 8, True, False)]),), hint=ending),
        Case("an episode cut by the time limit (truncated)", (_trial([
            (0, 3, 0.0, 0, False, False), (0, 0, 0.0, 0, False, True), (0, 2, 0.0, 1, False, False)]),),
             hint="kind is AFTER_TRUNCATED after a step cut by the time limit, and the ending tile is where it stopped"),
        Case("terminated and truncated on the same step", (_trial([
            (1, 1, 0.0, 4, True, True), (0, 1, 0.0, 3, False, False)]),),
             hint="kind is AFTER_BOTH when both flags are set"),
        Case("a slip: the ending tile is where the agent landed, not where it aimed", (_trial([
            (0, 2, 0.0, 1, False, False), (1, 2, 0.0, 4, True, False), (0, 1, 0.0, 3, False, False)]),), hint=ending),
        Case("a 7x7 map: wall distances capped at 4", (_trial([
            (24, 2, 0.0, 25, False, False), (25, 1, 0.0, 32, True, False), (0, 2, 0.0, 1, False, False)],
            LakeMap.from_rows(["SFFFFFF", "FFFFFFF", "FFFFFFF", "FFFFFFF", "FFFFHFF", "FFFFFFF", "FFFFFFG"])),),
             hint="use your wall_distances with cap 4 for the cell and for the ending tile"),
        Case("an explorer's trial of 4 episodes on a 4x4 map", (_explorer_trial(),),
             hint="check the steps right after each episode end: they carry the ending tile, action and reward"),
    ]


def check_encode_fields(encode_fields) -> CheckResult:
    """Check a learner's ``encode_fields(trial) -> (T + 1, 11)`` integer array of token fields."""
    return run_check("encode_fields", encode_fields, reference_encode_fields, encode_cases())
