"""Figures of trials: learning curves with bands per agent, and maps with the paths walked."""

import numpy as np
import pytest

from icrl_course.baselines import OracleAgent, RandomAgent
from icrl_course.envs import DOWN, RIGHT, LakeMap, MapDistribution
from icrl_course.plots import episode_path, learning_curve, trajectories_figure, trial_figure
from icrl_course.trials import Trial, run_trials

LAKE = LakeMap.from_rows(["SFF", "FHF", "FFG"])


def _two_episode_trial() -> Trial:
    # Episode 1: right, down -> hole. Episode 2: right, right, down, down -> goal.
    return Trial.from_steps(LAKE, [
        (0, RIGHT, 0.0, 1, False, False), (1, DOWN, 0.0, 4, True, False),
        (0, RIGHT, 0.0, 1, False, False), (1, RIGHT, 0.0, 2, False, False),
        (2, DOWN, 0.0, 5, False, False), (5, DOWN, 1.0, 8, True, False),
    ])


@pytest.fixture(scope="module")
def results():
    maps = MapDistribution.paper().sample_many(10, seed=0, split="test")
    return {agent.name: run_trials(agent, maps, episodes=4, seed=0) for agent in (OracleAgent(), RandomAgent())}


def _lines(fig):
    return [trace for trace in fig.data if trace.mode == "lines+markers"]


def test_learning_curve_draws_one_line_and_one_band_per_agent(results):
    fig = learning_curve(results)
    assert [trace.name for trace in _lines(fig)] == ["oracle", "random"]
    assert sum(trace.fill == "toself" for trace in fig.data) == 2


def test_learning_curve_numbers_episodes_from_one_and_plots_the_mean(results):
    oracle = _lines(learning_curve(results))[0]
    np.testing.assert_array_equal(oracle.x, [1, 2, 3, 4])
    np.testing.assert_allclose(oracle.y, 1.0)


def test_learning_curve_accepts_results_a_table_or_a_list_alike(results):
    from_list = learning_curve(list(results.values()))
    from_table = learning_curve(results["random"].table)
    from_results = learning_curve(results["random"])
    np.testing.assert_allclose(_lines(from_list)[1].y, _lines(from_table)[0].y)
    np.testing.assert_allclose(_lines(from_results)[0].y, _lines(from_table)[0].y)


def test_learning_curve_rejects_what_is_not_a_result():
    with pytest.raises(TypeError, match="TrialResults"):
        learning_curve(42)


def test_episode_path_starts_at_the_start_and_lists_every_landing():
    trial = _two_episode_trial()
    np.testing.assert_array_equal(episode_path(trial, 0), [0, 1, 4])
    np.testing.assert_array_equal(episode_path(trial, 1), [0, 1, 2, 5, 8])
    with pytest.raises(ValueError, match="no episode 2"):
        episode_path(trial, 2)


def test_trajectories_are_drawn_on_the_map_one_trace_each_through_tile_centres():
    fig = trajectories_figure(LAKE, [[0, 1, 4], [0, 3, 6, 7, 8]], names=["a", "b"])
    paths = _lines(fig)
    assert [p.name for p in paths] == ["a", "b"]
    np.testing.assert_allclose(np.round(paths[1].x), [0, 0, 0, 1, 2])  # columns, up to the small offset
    np.testing.assert_allclose(np.round(paths[1].y), [0, 1, 2, 2, 2])  # rows


def test_trajectories_figure_rejects_states_off_the_map_and_mismatched_names():
    with pytest.raises(ValueError, match="outside 0..8"):
        trajectories_figure(LAKE, [[0, 9]])
    with pytest.raises(ValueError, match="one name per trajectory"):
        trajectories_figure(LAKE, [[0, 1]], names=["a", "b"])


def test_trial_figure_names_how_each_episode_ended():
    fig = trial_figure(_two_episode_trial())
    names = [p.name for p in _lines(fig)]
    assert names[0].startswith("episode 1: 2 steps, hole") and names[1].startswith("episode 2: 4 steps, goal")
