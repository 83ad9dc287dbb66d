"""run_trials, exploration schedules and the results table: what every learning curve is computed from."""

import numpy as np
import pandas as pd
import pytest

from icrl_course.envs import LakeMap, MapDistribution
from icrl_course.trials import TABLE_COLUMNS, Schedule, Transition, episode_table, per_episode, run_trials

CORRIDOR = LakeMap.from_rows(["SFFG"])
"""Three moves right win; moving left from the start bumps into the wall."""


class ConstantAgent:
    """Always the same action; records every call, so tests can see what the runner passed."""

    name = "constant"

    def __init__(self, action: int):
        self.action = action

    def begin(self, maps, rng):
        self.num_lakes = len(maps)
        self.seen_obs: list[np.ndarray] = []
        self.steps: list[Transition] = []

    def act(self, obs):
        self.seen_obs.append(obs.copy())
        return np.full(self.num_lakes, self.action)

    def observe(self, step):
        self.steps.append(step)


@pytest.fixture(scope="module")
def maps():
    return MapDistribution.paper().sample_many(12, seed=3, split="test")


# ------------------------------------------------------------------------------ schedules
def test_paper_schedule_is_a_staircase_of_two_episodes_per_tenth_then_ones():
    probs = Schedule.paper().agent_prob(np.arange(30))
    expected = np.concatenate([np.repeat(np.arange(10) / 10, 2), np.ones(10)])
    np.testing.assert_allclose(probs, expected)


def test_epsilon_greedy_schedule_uses_the_agent_with_probability_one_minus_epsilon():
    np.testing.assert_allclose(Schedule.epsilon_greedy(0.1).agent_prob(np.arange(50)), 0.9)


def test_decaying_epsilon_falls_linearly_then_stays_at_its_final_value():
    probs = Schedule.epsilon_greedy(1.0, final_epsilon=0.2, decay_episodes=4).agent_prob(np.arange(7))
    np.testing.assert_allclose(probs, [0.0, 0.2, 0.4, 0.6, 0.8, 0.8, 0.8])


def test_greedy_schedule_always_uses_the_agent():
    np.testing.assert_allclose(Schedule.greedy().agent_prob(np.arange(5)), 1.0)


@pytest.mark.parametrize("make, field", [
    (lambda: Schedule((0.5, 1.5)), "probs[1]"),
    (lambda: Schedule((), -0.1), "after"),
    (lambda: Schedule.epsilon_greedy(2.0), "epsilon"),
    (lambda: Schedule.epsilon_greedy(0.5, final_epsilon=0.1, decay_episodes=0), "decay_episodes"),
])
def test_impossible_schedules_are_rejected_naming_the_field(make, field):
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        make()


# ---------------------------------------------------------------------------- running
def test_same_seed_gives_identical_trials_and_table(maps):
    from icrl_course.baselines import QLearningAgent

    a = run_trials(QLearningAgent(), maps, episodes=5, schedule=Schedule.paper(), seed=11)
    b = run_trials(QLearningAgent(), maps, episodes=5, schedule=Schedule.paper(), seed=11)
    pd.testing.assert_frame_equal(a.table, b.table)
    for x, y in zip(a.trials, b.trials):
        for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "episode"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name))


def test_different_seeds_give_different_trials(maps):
    from icrl_course.baselines import RandomAgent

    a = run_trials(RandomAgent(), maps, episodes=3, seed=1)
    b = run_trials(RandomAgent(), maps, episodes=3, seed=2)
    assert not a.table["length"].equals(b.table["length"])


def test_every_trial_holds_exactly_k_episodes_each_ending_once(maps):
    from icrl_course.baselines import RandomAgent

    results = run_trials(RandomAgent(), maps, episodes=4, seed=0)
    assert len(results.trials) == len(maps)
    for lake, (trial, lake_map) in enumerate(zip(results.trials, maps)):
        assert trial.lake_map == lake_map
        assert trial.num_episodes == 4
        assert trial.episode_ends.sum() == 4 and trial.episode_ends[-1]
        lengths = results.table.loc[results.table["lake"] == lake, "length"]
        np.testing.assert_array_equal(np.bincount(trial.episode), lengths)


def test_table_has_one_row_per_map_and_episode_with_the_documented_columns(maps):
    from icrl_course.baselines import RandomAgent

    table = run_trials(RandomAgent(), maps, episodes=3, seed=5).table
    assert tuple(table.columns) == TABLE_COLUMNS
    assert len(table) == len(maps) * 3
    assert (table.groupby("lake")["episode"].apply(list) == [[0, 1, 2]] * len(maps)).all()
    assert (table["seed"] == 5).all() and (table["agent"] == "random").all()


def test_each_episode_ends_in_exactly_one_way_and_success_earns_the_reward(maps):
    from icrl_course.baselines import RandomAgent

    table = run_trials(RandomAgent(), maps, episodes=10, seed=0).table
    outcomes = table[["success", "fell_in_hole", "timed_out"]].sum(axis=1)
    assert (outcomes == 1).all()
    np.testing.assert_array_equal(table["return"], table["success"].astype(float))


def test_an_agent_that_never_ends_an_episode_times_out_at_the_step_limit():
    table = run_trials(ConstantAgent(0), [CORRIDOR], episodes=2, max_episode_steps=7, seed=0).table
    assert table["timed_out"].all() and not table["success"].any()
    assert (table["length"] == 7).all()


def test_greedy_schedule_executes_the_agents_own_actions():
    results = run_trials(ConstantAgent(2), [CORRIDOR], episodes=3, seed=0)
    assert (results.trials[0].actions == 2).all()
    assert (results.table["length"] == 3).all() and results.table["success"].all()


def test_replaced_actions_are_recorded_as_executed_and_are_uniform():
    results = run_trials(ConstantAgent(0), [CORRIDOR], episodes=1, schedule=Schedule((), 0.0), max_episode_steps=4000, seed=0)
    counts = np.bincount(results.trials[0].actions, minlength=4)
    assert counts[1:].sum() > 0  # the agent only ever chose 0: any other action was a replacement
    steps = len(results.trials[0])
    if steps >= 40:  # a long random walk: every action about a quarter of the time
        assert counts.min() > steps / 10


def test_agents_observe_executed_actions_and_the_tile_an_ending_step_landed_on():
    agent = ConstantAgent(2)
    run_trials(agent, [CORRIDOR], episodes=2, seed=0)
    ending = agent.steps[2]
    assert ending.terminated[0] and ending.next_obs[0] == 3 and ending.rewards[0] == 1.0
    assert agent.seen_obs[3][0] == 0  # the next act already sees the new episode's start


def test_finished_lakes_are_padding_marked_inactive_and_not_recorded():
    short, long = LakeMap.from_rows(["SG"]), LakeMap.from_rows(["SFFFG"])
    agent = ConstantAgent(2)
    results = run_trials(agent, [short, long], episodes=2, seed=0)
    active = np.stack([s.active for s in agent.steps])
    np.testing.assert_array_equal(active[:, 1], True)
    np.testing.assert_array_equal(active[:, 0], [True, True, False, False, False, False, False, False])
    assert len(results.trials[0]) == 2 and len(results.trials[1]) == 8


def test_run_trials_rejects_a_missing_step_limit_and_a_wrong_action_shape():
    with pytest.raises(ValueError, match="max_episode_steps"):
        run_trials(ConstantAgent(0), [CORRIDOR], max_episode_steps=None)

    class WrongShape(ConstantAgent):
        def act(self, obs):
            return np.zeros(3, dtype=np.int64)

    with pytest.raises(ValueError, match="agent.act returned shape"):
        run_trials(WrongShape(0), [CORRIDOR], episodes=1)


# ---------------------------------------------------------------------------- summaries
def _toy_table():
    # Two agents, three lakes, two episodes; agent "a" succeeds on 1/3 then 3/3.
    rows = []
    for agent, wins in (("a", [[1, 0, 0], [1, 1, 1]]), ("b", [[0, 0, 0], [0, 0, 0]])):
        for episode, per_lake in enumerate(wins):
            for lake, win in enumerate(per_lake):
                rows.append({"agent": agent, "lake": lake, "episode": episode, "success": bool(win)})
    return pd.DataFrame(rows)


def test_per_episode_means_are_the_share_of_maps_that_succeeded():
    summary = per_episode(_toy_table())
    a = summary[summary["agent"] == "a"]
    np.testing.assert_allclose(a["mean"], [1 / 3, 1.0])
    assert (summary["n_maps"] == 3).all()


def test_bootstrap_interval_contains_the_mean_and_collapses_when_all_maps_agree():
    summary = per_episode(_toy_table())
    assert (summary["low"] <= summary["mean"]).all() and (summary["mean"] <= summary["high"]).all()
    constant = summary[(summary["agent"] == "b") | (summary["episode"] == 1)]
    np.testing.assert_allclose(constant["low"], constant["high"])
    varied = summary[(summary["agent"] == "a") & (summary["episode"] == 0)].iloc[0]
    assert varied["low"] < varied["high"]


def test_bootstrap_intervals_are_reproducible_with_the_same_seed():
    pd.testing.assert_frame_equal(per_episode(_toy_table(), seed=4), per_episode(_toy_table(), seed=4))


def test_agents_with_the_same_outcomes_get_the_same_intervals():
    table = _toy_table()
    twin = table[table["agent"] == "a"].assign(agent="a twin")
    summary = per_episode(pd.concat([table, twin]))
    a, b = (summary[summary["agent"] == name][["mean", "low", "high"]].to_numpy() for name in ("a", "a twin"))
    np.testing.assert_array_equal(a, b)


def test_per_episode_names_a_missing_metric():
    with pytest.raises(ValueError, match="not a column"):
        per_episode(_toy_table(), metric="reward")


def test_episode_table_counts_episodes_from_one_and_keeps_agent_order():
    wide = episode_table(_toy_table(), numbers=(1, 2))
    assert list(wide.columns) == ["ep 1", "ep 2"] and list(wide.index) == ["a", "b"]
    assert wide.loc["a", "ep 2"] == "1.00 [1.00, 1.00]"
    with pytest.raises(ValueError, match="1..2"):
        episode_table(_toy_table(), numbers=(3,))
