"""Checks for lesson 7's exercises: the stitching property, a paired bootstrap CI, episodes to recover after a switch.

The stitching property is compared with ``envs.scenarios.stitching_problems``
(empty means the case is one) on cases that each break one rule; a case the
learner builds is checked by the same function, which names what is wrong.
A bootstrap interval depends on the random draws, so the learner's paired
interval is checked as requirements: the mean exact, the bounds near the
reference's, zero width when every map gains the same, and narrower than the
unpaired interval on correlated maps. Episodes to recover are compared with
``experiments.episodes_to_recover`` on hand-made tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from icrl_course.checks.core import Case, CheckResult, Property, run_check
from icrl_course.envs import LakeMap
from icrl_course.envs.scenarios import StitchingCase, paper_stitching_case, stitching_problems
from icrl_course.experiments import TIDY_COLUMNS, episodes_to_recover
from icrl_course.stats import paired_difference, unpaired_difference

# --------------------------------------------------------------------------- the stitching property
PAPER = paper_stitching_case()


def reference_is_stitching_case(lake_map: LakeMap, start: int, episodes) -> bool:
    """True when ``stitching_problems`` finds nothing wrong."""
    return not stitching_problems(StitchingCase(lake_map, start, tuple(tuple(e) for e in episodes), ()))


def stitching_property_cases() -> list[Case]:
    """The paper's case, then one broken rule per case."""
    m, start, (to_goal, to_hole) = PAPER.lake_map, PAPER.start, PAPER.episodes
    return [
        Case("the paper's case is a stitching case", (m, start, [to_goal, to_hole]),
             hint="no episode goes from 8 to the goal, but 8 -> 9 -> 10 (second episode) + 10 -> 14 -> 18 -> 22 (first) "
                  "is 5 moves, the shortest route"),
        Case("an episode from the start that already reaches the goal leaves nothing to stitch",
             (m, start, [(8, 9, 10, 14, 18, 22), to_hole]),
             hint="reject a context in which one episode starts on the start tile and ends on a goal"),
        Case("a joined route longer than the shortest path is not the optimal route",
             (m, start, [(15, 19, 23, 22), (8, 9, 10, 14, 15, 11)]),
             hint="the joined route must be exactly as long as the breadth-first-search distance from the start to a goal"),
        Case("episodes that never meet cannot be joined", (m, start, [(3, 7, 11), to_hole]),
             hint="the first part must end on a tile where the second part passes, and the second must end on a goal"),
        Case("a route through a hole is no route", (m, start, [to_goal, (8, 12, 13, 14, 15)]),
             hint="an episode ends the moment it reaches a hole or goal: only its last tile may be one"),
        Case("the parts must come from two episodes in the right order: start part first, goal part second",
             (m, start, [(2, 6, 10, 11), (8, 9, 10)]),
             hint="the first part must start on the start tile, the second must end on a goal"),
    ]


def check_stitching_property(is_stitching_case) -> CheckResult:
    """Check a learner's ``is_stitching_case(lake_map, start, episodes) -> bool``."""
    return run_check("is_stitching_case", is_stitching_case, reference_is_stitching_case, stitching_property_cases())


def check_my_stitching_case(case: StitchingCase) -> bool:
    """Check a stitching case the learner built, and say what breaks the property if anything does."""
    if not isinstance(case, StitchingCase):
        print(f"✗ expected a StitchingCase(lake_map, start, episodes, stitched), got a {type(case).__name__}")
        return False
    problems = stitching_problems(case)
    if problems:
        print("✗ not a stitching case yet:\n" + "\n".join(f"  - {p}" for p in problems))
        return False
    if case.lake_map.nrow > 5 or case.lake_map.ncol > 5:
        print(f"✗ the property holds, but the map is {case.lake_map.nrow}x{case.lake_map.ncol}: build it on a "
              "3-5 x 3-5 map, the shapes the model was trained on")
        return False
    print(f"✓ a stitching case on a {case.lake_map.nrow}x{case.lake_map.ncol} map: {len(case.episodes)} episodes, none "
          "from the start to the goal, and two join into a shortest route")
    return True


# --------------------------------------------------------------------------- paired bootstrap
N_BOOT = 4000
CORRELATED = (np.arange(20.0) / 20, np.arange(20.0) / 20 + 0.05 * (np.arange(20) % 2))
"""Two agents on 20 maps of very different difficulty; the second gains 0.05 on every other map."""


def reference_paired_ci(a, b, n_boot=N_BOOT, seed=0):
    return tuple(paired_difference(a, b, 0.95, n_boot, seed))


def _triple(got, *args) -> bool:
    return isinstance(got, (tuple, list)) and len(got) == 3 and all(np.ndim(x) == 0 for x in got)


def _mean_is(got, a, b, *rest) -> bool:
    return abs(float(got[0]) - float(np.mean(np.asarray(a) - np.asarray(b)))) < 1e-9


def _near_reference(got, a, b, *rest) -> bool:
    low, high = reference_paired_ci(a, b)[1:]
    width = max(high - low, 1e-9)
    return abs(float(got[1]) - low) <= 0.1 * width + 1e-9 and abs(float(got[2]) - high) <= 0.1 * width + 1e-9


def _narrower_than_unpaired(got, a, b, *rest) -> bool:
    unpaired = unpaired_difference(a, b, 0.95, N_BOOT, 0)
    return float(got[2]) - float(got[1]) < 0.5 * (unpaired.high - unpaired.low)


SHAPE = Property("return a tuple (mean, low, high) of three numbers", _triple)
MEAN = Property("the mean is the mean over maps of a - b", _mean_is,
                hint="the point estimate is np.mean(a - b): agent a minus agent b, map by map")


def paired_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    a, b = rng.random(30), rng.random(30)
    return [
        Case("every map gains exactly 0.1: no uncertainty left", (np.arange(10.0) / 10 + 0.1, np.arange(10.0) / 10),
             compare=False, properties=(SHAPE, MEAN, Property(
                 "low = high = 0.1: every resample of maps has the same mean difference", lambda got, *x:
                 abs(float(got[1]) - 0.1) < 1e-9 and abs(float(got[2]) - 0.1) < 1e-9,
                 hint="resample map indices once and use them for both agents (or resample the differences a - b)")),
             ),
        Case("maps of very different difficulty: pairing removes the shared part", CORRELATED, compare=False,
             properties=(SHAPE, MEAN, Property(
                 "the interval is far narrower than resampling the two agents' maps separately",
                 _narrower_than_unpaired,
                 hint="the same resampled maps for both agents: draw idx = rng.integers(0, n, size=(n_boot, n)) once"))),
        Case("30 maps of random values: the percentile interval", (a, b), compare=False,
             properties=(SHAPE, MEAN, Property(
                 "low and high within 10% of the interval's width of the 2.5th and 97.5th percentiles of the "
                 "resampled mean differences", _near_reference,
                 hint="np.percentile(resampled_means, [2.5, 97.5]); resample with replacement, n maps per resample"))),
    ]


def check_paired_ci(paired_ci) -> CheckResult:
    """Check a learner's ``paired_ci(a, b, n_boot=4000, seed=0) -> (mean, low, high)`` of mean(a - b)."""
    return run_check("paired_ci", paired_ci, reference_paired_ci, paired_cases())


# --------------------------------------------------------------------------- episodes to recover
def _rows(successes: list[list[int]], switch_at: int) -> pd.DataFrame:
    """One agent's tidy rows: ``successes[lake][episode]`` with the switch before episode ``switch_at``."""
    rows = [{"experiment": "non-stationary", "condition": "hand", "agent": "a", "model": "", "lake": lake,
             "digest": "", "switched": episode >= switch_at, "episode": episode, "success": float(win),
             "length": 3, "shortest": 3, "fell_in_hole": not win, "timed_out": False, "play_seed": 0}
            for lake, wins in enumerate(successes) for episode, win in enumerate(wins)]
    return pd.DataFrame(rows, columns=list(TIDY_COLUMNS))


def reference_recover(rows: pd.DataFrame) -> dict:
    return {int(k): float(v) for k, v in episodes_to_recover(rows).items()}


def recover_cases() -> list[Case]:
    return [
        Case("success right after the switch counts 1", (_rows([[0, 1, 1, 1]], 2),),
             hint="count episodes from the switch, starting at 1 for the first episode on the new map"),
        Case("the first success two episodes after the switch counts 2", (_rows([[1, 1, 0, 1, 1]], 2),),
             hint="the first success after the switch, not the last, and not counted from episode 0"),
        Case("a map that failed just before the switch had nothing to recover: leave it out",
             (_rows([[1, 0, 1, 1], [0, 1, 1, 1]], 2),),
             hint="keep only maps whose last episode before the switch (episode k - 1) succeeded"),
        Case("a map that never succeeds again counts one more than the episodes after the switch",
             (_rows([[1, 1, 1, 0, 0, 0]], 3),),
             hint="censor: 3 episodes after the switch without success count as 4, never as NaN or 0"),
        Case("the switch episode is read from the table's switched column", (_rows([[0, 0, 1, 0, 1, 1]], 3),),
             hint="k is the first episode with switched True: rows.loc[rows.switched, 'episode'].min()"),
    ]


def check_episodes_to_recover(recover) -> CheckResult:
    """Check a learner's ``recover(rows) -> {lake: episodes}`` on hand-made tables of one agent."""
    return run_check("episodes_to_recover", recover, reference_recover, recover_cases())
