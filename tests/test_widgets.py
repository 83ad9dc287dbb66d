"""The lab's views driven headless, as a learner's clicks would: set ``.value``, call the handler, read the figures."""

import numpy as np
import pytest

pytest.importorskip("anywidget", reason="plotly's FigureWidget needs anywidget (a dependency of icrl-course)")

from icrl_course import widgets as W  # noqa: E402
from icrl_course.baselines import ExplorerAgent, QLearningAgent  # noqa: E402
from icrl_course.envs import LakeMap  # noqa: E402
from icrl_course.evaluate import held_out_maps  # noqa: E402
from icrl_course.playback import play  # noqa: E402
from icrl_course.trials import Transition, per_episode  # noqa: E402

MAP = ("SFFF", "FHFH", "FFFH", "HFFG")


def path_trace(figure):
    return next(t for t in figure.data if t.name == "shortest route")


def test_lake_map_shortest_path_is_hand_computed():
    lake_map = LakeMap.from_rows(["SFH", "HFF", "FFG"])
    assert lake_map.shortest_path() == (0, 1, 4, 7, 8)  # from 4, down (action 1) wins the tie with right (2)
    assert LakeMap.from_rows(["SH", "HG"]).shortest_path() is None


def test_clicking_a_tile_cycles_it_and_updates_text_validity_and_route():
    editor = W.MapEditor(MAP)
    assert editor.text.value == "\n".join(MAP)
    assert "solvable: shortest route 6 moves" in editor.status.value
    editor.tiles[1].click()  # row 0, column 1: F -> H
    assert editor.text.value.splitlines()[0] == "SHFF"
    assert editor.tiles[1].description == "H"
    assert editor.lake_map.rows[0] == "SHFF"
    route = path_trace(editor.figure)
    assert list(zip(route.y, route.x)) == [(0, 0), (1, 0), (2, 0), (2, 1), (3, 1), (3, 2), (3, 3)]
    editor.click(1, 0)  # F -> H: the start is walled in
    assert "unsolvable" in editor.status.value and editor.lake_map is not None


def test_cycle_order_and_a_map_without_goal_is_reported_not_raised():
    editor = W.MapEditor(MAP)
    seen = []
    for _ in range(4):
        editor.click(3, 3)
        seen.append(editor.lake_map.flat[15] if editor.lake_map else None)
    # G -> S (no goal left: not a map) -> F (still none) -> H -> G
    assert seen == [None, None, None, "G"]
    editor.click(3, 3)
    assert editor.lake_map is None and "no goal" in editor.status.value


def test_typing_rows_rebuilds_the_grid_and_reports_errors():
    editor = W.MapEditor(MAP)
    editor.text.value = "SFFFF\nFFFFF\nFFFFG"
    assert len(editor.tiles) == 15 and editor.lake_map.shape == (3, 5)
    assert "split" in editor.status.value
    editor.text.value = "SFX\nFFG"
    assert "not a map" in editor.status.value and editor.lake_map.shape == (3, 5)


def test_random_preset_draws_the_distributions_map():
    editor = W.MapEditor(MAP)
    editor.preset.value = "gymnasium 8 x 8"
    editor.seed.value = 3
    editor.draw.click()
    assert editor.lake_map == W.MAP_PRESETS["gymnasium 8 x 8"]().sample(seed=3)
    assert len(editor.tiles) == 64


def replayed_q_values(agent, trial, t):
    """The agent's own q_values at step t, fed the recorded steps one by one (independent of the player)."""
    agent.begin([trial.lake_map], np.random.default_rng(0))
    for s in range(t + 1):
        q = agent.q_values(trial.obs[s:s + 1])
        step = Transition(trial.obs[s:s + 1], trial.actions[s:s + 1], trial.rewards[s:s + 1], trial.next_obs[s:s + 1],
                          trial.terminated[s:s + 1], trial.truncated[s:s + 1], np.array([True]))
        agent.observe(step)
    return q[0]


@pytest.mark.parametrize("agent_name", ["ICRL paper-small", "ICRL paper-small (context reset)"])
def test_trial_player_shows_the_agents_own_q_values_at_step_t(agent_name):
    factories = W.agent_factories(["paper-small"])
    player = W.TrialPlayer(maps=[LakeMap.from_rows(MAP)], agents=factories, episodes=3)
    player.agent.value = agent_name
    player.play_button.click()
    trial = player.playback.trial
    t = int(np.flatnonzero(trial.episode == 1)[0]) + 1  # a step in the second episode: the context matters
    for _ in range(t):
        player.forward.click()
    assert player.step.value == t
    expected = replayed_q_values(factories[agent_name](), trial, t)
    np.testing.assert_allclose(player.q_figure.data[0].y, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(player.map_figure.data[-1].marker.color, expected, rtol=1e-5, atol=1e-6)
    r, c = trial.lake_map.to_row_col(trial.obs[t])
    assert (player.map_figure.data[-2].y[0], player.map_figure.data[-2].x[0]) == (r, c)
    assert "episode 2" in player.label.value
    tokens = 2 if "reset" in agent_name else t + 1
    assert f"{tokens} tokens" in player.context.value


def test_trial_player_episode_slider_jumps_and_curve_sits_beside_the_explorer():
    lake_map = LakeMap.from_rows(MAP)
    player = W.TrialPlayer(maps=[lake_map], agents={"q-learning": QLearningAgent}, episodes=4, seed=5)
    player.run()
    player.episode.value = 3
    first = int(np.flatnonzero(player.playback.trial.episode == 2)[0])
    assert player.step.value == first
    explorer = play(ExplorerAgent(), lake_map, episodes=4, seed=5)
    assert list(player.curve_figure.data[0].y) == list(explorer.success().astype(float))
    assert list(player.curve_figure.data[1].y) == list(player.playback.success()[:3].astype(float))
    # Q-learning's values at a step are its table at that cell before the step's update
    assert player.q_figure.data[0].y is not None and len(player.q_figure.data[0].y) == 4


def test_trial_player_on_an_unsolvable_editor_map_says_so():
    editor = W.MapEditor(("SH", "HG"))
    player = W.TrialPlayer(maps=[LakeMap.from_rows(MAP)], editor=editor, agents={"explorer": ExplorerAgent})
    player.map_choice.value = -1
    player.run()
    assert player.playback is None and "not solvable" in player.label.value


def test_ood_probe_curve_equals_lesson_7s_experiment_on_the_same_seed():
    from icrl_course import experiments

    probe = W.OODProbe(maps=4, episodes=3, seed=7)
    probe.p_hole.value = 0.3  # sizes stay 3-5 x 3-5 and 25 steps: the experiment's "hole density 0.3" axis
    probe.button.click()
    expected = experiments.out_of_distribution({"paper-small": W._network("paper-small")[0]}, maps=4, episodes=3,
                                               seed=7, axes=["hole density 0.3"])
    curve = per_episode(expected.table, n_boot=500)
    lines = [t for t in probe.curve_figure.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["icrl", "explorer"]
    for trace in lines:
        np.testing.assert_allclose(trace.y, curve[curve.agent == trace.name]["mean"])
    summary = expected.summary[expected.summary.metric == "success"].set_index("agent")
    assert f"ICRL {summary.loc['icrl', 'mean']:.2f}, explorer {summary.loc['explorer', 'mean']:.2f}" in probe.status.value
    assert f"ICRL - explorer {summary.loc['icrl', 'diff']:+.2f}" in probe.status.value
    assert "out of distribution: hole density 0.30" in probe.status.value


def test_ood_probe_marks_sizes_outside_the_training_range():
    probe = W.OODProbe(maps=2, episodes=1)
    probe.rows.value, probe.cols.value = (6, 7), (4, 4)
    probe.run()
    assert "out of distribution: rows 6-7 (trained 3-5)" in probe.status.value and "columns" not in probe.status.value
    assert probe.range_figure.data[0].x == (4,) and probe.range_figure.data[0].y == (6.5,)
    assert probe.range_figure.layout.shapes[0].x0 == 2.5 and probe.range_figure.layout.shapes[0].y1 == 5.5


def test_ood_probe_reports_an_impossible_request_in_one_line():
    probe = W.OODProbe(maps=100, episodes=1)
    probe.rows.value = probe.cols.value = (3, 3)
    probe.p_hole.value = 0.5
    probe.run()
    assert "cannot draw these maps" in probe.status.value and probe.experiment is None


def test_stitching_lab_checks_drawn_episodes_and_plays_the_prefix_from_the_start():
    from icrl_course.envs.scenarios import paper_stitching_case
    from icrl_course.plots import episode_path
    from icrl_course.trials import run_trials

    lab = W.StitchingLab(cases=1)
    assert lab.case_choice.value == "the paper's stitching map" and "a stitching case" in lab.status.value
    lab.drawing.value = "episode 2"
    lab.clear.click()
    assert "not a stitching case" in lab.status.value
    for tile in (8, 9, 10, 11):  # the paper's failed episode again, clicked tile by tile
        lab.tiles[tile].click()
    assert lab.episodes == [list(e) for e in paper_stitching_case().episodes]
    assert "a stitching case" in lab.status.value
    lab.button.click()
    case = paper_stitching_case()
    for name, agent in lab.agents().items():
        trial = run_trials(agent, [case.lake_map], 1, seed=0, prefix=[case.prefix()], max_episode_steps=25).trials[0]
        trace = next(t for t in lab.figure.data if t.name == f"{name}: first greedy episode")
        # paths are drawn shifted by under half a tile each, so rounding gives the tiles back
        assert list(np.round(trace.y).astype(int) * case.lake_map.ncol + np.round(trace.x).astype(int)) == \
            list(episode_path(trial, 0))
        assert f"<td>{name}</td>" in lab.results.value


def test_stitching_lab_refuses_an_episode_that_jumps():
    lab = W.StitchingLab(cases=1)
    lab.drawing.value = "episode 1"
    lab.clear.click()
    lab.tiles[2].click()
    lab.tiles[22].click()
    lab.run()
    assert "fix the episodes first" in lab.results.value and "jumps from tile 2 to 22" in lab.results.value


def test_non_stationary_lab_curve_equals_run_trials_with_the_switch():
    from icrl_course.envs.scenarios import switch_pairs
    from icrl_course.trials import run_trials

    lab = W.NonStationaryLab(maps=4, episodes=4, seed=3)
    lab.kind.value = "goal moved"
    lab.switch_at.value = 2
    lab.button.click()
    kept, new = switch_pairs(held_out_maps(4, seed=3), "goal moved", seed=3)
    table = run_trials(ExplorerAgent(), kept, 4, seed=3, max_episode_steps=25, switch=(2, new), agent_name="explorer").table
    expected = per_episode(table, n_boot=500)["mean"]
    trace = next(t for t in lab.curve_figure.data if t.name == "explorer")
    np.testing.assert_allclose(trace.y, expected)
    assert [s.x0 for s in lab.curve_figure.layout.shapes] == [2.5]
    assert "before / after the switch" in lab.status.value
    assert lab.after_figure.layout.title.text == "after: goal moved"
