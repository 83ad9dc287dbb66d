"""The Trial record: the contract every tokenizer, dataset and table builds on."""

import numpy as np
import pytest

from icrl_course.envs import DOWN, RIGHT, LakeMap
from icrl_course.trials import Trial

LAKE = LakeMap.from_rows(["SFF", "FHF", "FFG"])
STEPS = [
    (0, RIGHT, 0.0, 1, False, False), (1, DOWN, 0.0, 4, True, False),  # episode 0: into the hole
    (0, RIGHT, 0.0, 1, False, False), (1, RIGHT, 0.0, 2, False, True),  # episode 1: cut by the time limit
    (0, DOWN, 0.0, 3, False, False),                                    # episode 2: still running
]


def test_from_steps_numbers_episodes_by_counting_ending_steps():
    trial = Trial.from_steps(LAKE, STEPS)
    np.testing.assert_array_equal(trial.episode, [0, 0, 1, 1, 2])
    assert trial.num_episodes == 3 and len(trial) == 5


def test_episode_ends_are_terminated_or_truncated_steps():
    np.testing.assert_array_equal(Trial.from_steps(LAKE, STEPS).episode_ends, [False, True, False, True, False])


def test_episode_slice_is_a_one_episode_trial_numbered_zero():
    episode = Trial.from_steps(LAKE, STEPS).episode_slice(1)
    np.testing.assert_array_equal(episode.obs, [0, 1])
    np.testing.assert_array_equal(episode.episode, [0, 0])
    assert episode.truncated[-1] and episode.lake_map == LAKE


def test_an_empty_trial_has_no_episodes():
    assert Trial.from_steps(LAKE, []).num_episodes == 0


@pytest.mark.parametrize("field, steps, message", [
    ("actions", [(0, 4, 0.0, 1, False, False)], "actions contains 4"),
    ("obs", [(9, RIGHT, 0.0, 1, False, False)], "obs has a state outside 0..8"),
    ("next_obs", [(0, RIGHT, 0.0, -1, False, False)], "next_obs has a state outside"),
])
def test_impossible_steps_are_rejected_naming_the_field(field, steps, message):
    with pytest.raises(ValueError, match=message):
        Trial.from_steps(LAKE, steps)


def test_arrays_of_different_lengths_are_rejected():
    trial = Trial.from_steps(LAKE, STEPS)
    with pytest.raises(ValueError, match="Trial.rewards has 4 steps but obs has 5"):
        Trial(LAKE, trial.obs, trial.actions, trial.rewards[:4], trial.next_obs, trial.terminated, trial.truncated,
              trial.episode)
