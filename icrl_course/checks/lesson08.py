"""Checks for lesson 8's exercise: a clicked episode (a list of tiles) as the steps a prefix records.

``check_recorded_steps`` compares the learner's ``recorded_steps(lake_map,
tiles)`` with the steps ``envs.scenarios.StitchingCase.prefix`` records for
the same tiles (what the stitching lab hands ``run_trials`` as a prefix).
Edge cases first: every direction, an episode that ends in a hole, at the
goal, or on frozen ice (cut off: truncated, not terminated), the shortest
episode (one move); then the paper's two episodes.
"""

from __future__ import annotations

from icrl_course.checks.core import Case, CheckResult, run_check
from icrl_course.envs import LakeMap
from icrl_course.envs.scenarios import StitchingCase, paper_stitching_case


def reference_recorded_steps(lake_map: LakeMap, tiles) -> list[tuple]:
    """``(obs, action, reward, next_obs, terminated, truncated)`` per move, as the prefix records them."""
    trial = StitchingCase(lake_map, int(tiles[0]), (tuple(tiles),), ()).prefix()
    return [(int(o), int(a), float(r), int(n), bool(te), bool(tr)) for o, a, r, n, te, tr in
            zip(trial.obs, trial.actions, trial.rewards, trial.next_obs, trial.terminated, trial.truncated)]


def _as_plain(steps) -> list[tuple]:
    """The learner's steps with NumPy scalars turned into Python ones, so only values are compared."""
    return [tuple(int(v) if i in (0, 1, 3) else float(v) if i == 2 else bool(v) for i, v in enumerate(step))
            for step in steps]


def recorded_steps_cases() -> list[Case]:
    square = LakeMap.from_rows(["SFF", "FHF", "FFG"])
    paper = paper_stitching_case()
    end_hint = ("only the last move can end the episode: terminated when it lands on a hole or the goal, "
                "truncated (cut off) when it lands on frozen ice")
    return [
        Case("one move right, ending on frozen ice (cut off: truncated)", (square, [0, 1]), hint=end_hint),
        Case("one move down", (square, [0, 3]), hint="action numbers: 0 left, 1 down, 2 right, 3 up"),
        Case("left twice, back to the start", (square, [2, 1, 0]), hint=end_hint),
        Case("down then up", (square, [0, 3, 0]), hint="action numbers: 0 left, 1 down, 2 right, 3 up"),
        Case("into the hole: terminated, reward 0", (square, [0, 1, 4]), hint=end_hint),
        Case("to the goal: terminated, reward 1", (square, [0, 1, 2, 5, 8]),
             hint="the goal pays 1.0 on the move that lands on it; every other move pays 0.0"),
        Case("the paper's episode to the goal (6 x 4 map)", (paper.lake_map, list(paper.episodes[0]))),
        Case("the paper's episode into the hole", (paper.lake_map, list(paper.episodes[1]))),
    ]


def check_recorded_steps(recorded_steps) -> CheckResult:
    return run_check("recorded_steps", lambda m, t: _as_plain(recorded_steps(m, t)), reference_recorded_steps,
                     recorded_steps_cases())
