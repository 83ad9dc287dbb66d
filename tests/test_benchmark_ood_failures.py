"""``benchmarks/ood_failures.py``'s account of a last episode, on hand-built trials of gymnasium's 4x4 map."""

import importlib.util
from pathlib import Path

import pytest

from icrl_course.envs import LakeMap
from icrl_course.trials import Trial

SPEC = importlib.util.spec_from_file_location(
    "ood_failures", Path(__file__).resolve().parents[1] / "benchmarks" / "ood_failures.py")
ood_failures = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ood_failures)

LAKE = LakeMap(("SFFF", "FHFH", "FFFH", "HFFG"))
# cells:  0  1  2  3 /  4  5  6  7 /  8  9 10 11 / 12 13 14 15 (holes 5, 7, 11, 12; goal 15)
WIN = [(0, 1, 0, 4, False, False), (4, 1, 0, 8, False, False), (8, 2, 0, 9, False, False),
       (9, 1, 0, 13, False, False), (13, 2, 0, 14, False, False), (14, 2, 1, 15, True, False)]
FALL_5 = [(0, 2, 0, 1, False, False), (1, 1, 0, 5, True, False)]
FALL_12 = [(0, 1, 0, 4, False, False), (4, 1, 0, 8, False, False), (8, 1, 0, 12, True, False)]
TIME_OUT = [(0, 0, 0, 0, False, True)]
FROM_3 = [(3, 0, 0, 2, False, False), (2, 1, 0, 6, False, True)]  # 3 touches no walked tile: 2 and 6 are new


@pytest.mark.parametrize("last, expected", [
    (WIN, dict(found=1, solved=1)),
    (FALL_5, dict(found=1, solved=0, failed=1, known_hole=1, known_path=1)),
    (FALL_12, dict(found=1, solved=0, failed=1, new_hole=1, known_path=1)),
    (TIME_OUT, dict(found=1, solved=0, failed=1, timed_out=1, known_path=1)),
    (FROM_3, dict(found=1, solved=0, failed=1, timed_out=1, known_path=0)),
])
def test_a_last_episode_after_the_goal_was_found_is_told_apart_by_how_it_ended(last, expected):
    trial = Trial.from_steps(LAKE, WIN + FALL_5 + last)
    assert trial.num_episodes == 3
    assert ood_failures.last_episode(trial) == expected


def test_a_goal_never_found_before_the_last_episode_counts_only_its_success():
    assert ood_failures.last_episode(Trial.from_steps(LAKE, FALL_5 + FALL_12 + WIN)) == dict(found=0, solved=1)
    assert ood_failures.last_episode(Trial.from_steps(LAKE, FALL_5 + FALL_5)) == dict(found=0, solved=0)


def test_the_account_sums_trials():
    trials = [Trial.from_steps(LAKE, WIN + FALL_5 + last) for last in (WIN, FALL_5, FALL_12)]
    total = ood_failures.account(trials)
    assert total == dict(maps=3, found=3, solved=1, failed=2, known_hole=1, new_hole=1, timed_out=0, known_path=2)
