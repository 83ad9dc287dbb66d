"""The baseline agents: what each yardstick promises, shown on the smallest case that proves it."""

import numpy as np
import pandas as pd
import pytest

from icrl_course.baselines import (
    GOAL,
    HOLE,
    SAFE,
    UNKNOWN,
    ExplorerAgent,
    ForgetfulExplorer,
    LakeGeometry,
    OracleAgent,
    QLearningAgent,
    RandomAgent,
    explorer_action_costs,
    knowledge_from_rows,
    q_learning_update,
)
from icrl_course.envs import DOWN, LEFT, RIGHT, UP, LakeMap, MapDistribution
from icrl_course.trials import Schedule, Transition, run_trials


@pytest.fixture(scope="module")
def test_maps():
    return MapDistribution.paper().sample_many(40, seed=5, split="test")


def _explorer_with_knowledge(rows: list[str]) -> ExplorerAgent:
    """An explorer that begins on a map of this shape and then is told it already knows ``rows``."""
    flat = "S" + "F" * (len(rows) * len(rows[0]) - 2) + "G"  # the explorer reads only the shape
    agent = ExplorerAgent()
    agent.begin([LakeMap.from_rows([flat[r * len(rows[0]):(r + 1) * len(rows[0])] for r in range(len(rows))])],
                np.random.default_rng(0))
    agent.knowledge[:] = knowledge_from_rows(rows)
    return agent


# ------------------------------------------------------------------------------ geometry
def test_geometry_moves_match_the_maps_own_moves_on_lakes_of_different_sizes():
    maps = [LakeMap.from_rows(["SFG"]), LakeMap.from_rows(["SF", "FF", "FG"]), LakeMap.from_rows(["SFFF", "FFFG"])]
    geometry = LakeGeometry([m.shape for m in maps])
    for b, m in enumerate(maps):
        expected = [[m.next_state(s, a) for a in range(4)] for s in range(m.n_states)]
        np.testing.assert_array_equal(geometry.moves[b, : m.n_states], expected)
        assert geometry.valid[b].sum() == m.n_states


def test_geometry_distances_through_walkable_tiles_equal_the_maps_distances_to_goal(test_maps):
    geometry = LakeGeometry([m.shape for m in test_maps])
    tiles = np.array([list(m.flat.ljust(geometry.num_states, "H")) for m in test_maps])
    dist = geometry.distances((tiles == "F") | (tiles == "S"), tiles == "G")
    for b, m in enumerate(test_maps):
        expected = m.distances_to_goal()
        np.testing.assert_array_equal(np.where(expected >= 0, expected, geometry.num_states + 1), dist[b, : m.n_states])


# -------------------------------------------------------------------------------- random
def test_random_agent_draws_every_action_about_equally_often():
    agent = RandomAgent()
    agent.begin([LakeMap.from_rows(["SFG"])] * 1000, np.random.default_rng(0))
    counts = np.bincount(agent.act(np.zeros(1000, dtype=np.int64)), minlength=4)
    assert counts.min() > 200 and counts.max() < 300


# -------------------------------------------------------------------------------- oracle
def test_oracle_episodes_are_exactly_as_long_as_the_shortest_path_from_their_start(test_maps):
    results = run_trials(OracleAgent(), test_maps, episodes=6, seed=0)
    assert results.table["success"].all()
    for trial in results.trials:
        dist = trial.lake_map.distances_to_goal()
        for k in range(trial.num_episodes):
            episode = trial.episode_slice(k)
            assert len(episode) == dist[episode.obs[0]], (trial.lake_map, k)


def test_oracle_heads_for_the_nearer_of_two_goals():
    agent = OracleAgent()
    agent.begin([LakeMap.from_rows(["GFSFFG"])], np.random.default_rng(0))
    assert agent.act(np.array([2]))[0] == LEFT


# ---------------------------------------------------------------------------- Q-learning
def _one_lake_q(next_values, here_values=(0.0, 0.0, 0.0, 0.0)):
    q = np.zeros((1, 3, 4))
    q[0, 0] = here_values
    q[0, 1] = next_values
    return q


def test_q_update_moves_towards_reward_plus_discounted_best_next_value():
    q = _one_lake_q([0.0, 0.5, 0.2, 0.0])
    new = q_learning_update(q, np.array([0]), np.array([RIGHT]), np.array([0.0]), np.array([1]), np.array([False]),
                            np.array([False]), learning_rate=0.5, gamma=0.9)
    assert new[0, 0, RIGHT] == pytest.approx(0.5 * 0.9 * 0.5)
    assert np.count_nonzero(new - q) == 1 and q[0, 0, RIGHT] == 0.0  # one entry changes; the input is untouched


def test_q_update_does_not_bootstrap_from_a_terminal_step():
    q = _one_lake_q([0.7, 0.7, 0.7, 0.7])
    new = q_learning_update(q, np.array([0]), np.array([DOWN]), np.array([1.0]), np.array([1]), np.array([True]),
                            np.array([False]), learning_rate=1.0, gamma=0.9)
    assert new[0, 0, DOWN] == pytest.approx(1.0)


def test_q_update_still_bootstraps_from_a_step_cut_only_by_the_time_limit():
    q = _one_lake_q([0.0, 0.0, 0.4, 0.0])
    new = q_learning_update(q, np.array([0]), np.array([UP]), np.array([0.0]), np.array([1]), np.array([False]),
                            np.array([True]), learning_rate=1.0, gamma=0.5)
    assert new[0, 0, UP] == pytest.approx(0.2)


def test_q_update_changes_each_lakes_own_table_only():
    q = np.zeros((2, 3, 4))
    q[1, 2] = [0.0, 1.0, 0.0, 0.0]
    new = q_learning_update(q, np.array([0, 1]), np.array([LEFT, RIGHT]), np.array([0.0, 0.0]), np.array([2, 2]),
                            np.array([False, False]), np.array([False, False]), learning_rate=1.0, gamma=0.9)
    assert new[0, 0, LEFT] == 0.0 and new[1, 1, RIGHT] == pytest.approx(0.9)
    assert np.count_nonzero(new - q) == 1


def test_q_learning_converges_to_the_oracles_shortest_paths_given_enough_episodes():
    maps = MapDistribution.paper().sample_many(10, seed=1, split="train")
    agent = QLearningAgent()
    run_trials(agent, maps, episodes=300, seed=0)
    for b, m in enumerate(maps):
        greedy = agent.q[b].argmax(axis=1)
        dist = m.distances_to_goal()
        for start in m.starts:
            state, steps = start, 0
            while state not in m.goals and state not in m.holes and steps < m.n_states:
                state, steps = m.next_state(state, greedy[state]), steps + 1
            assert state in m.goals and steps == dist[start], (m, start)


def test_q_learning_forgets_everything_between_trials(test_maps):
    agent = QLearningAgent()
    first = run_trials(agent, test_maps[:5], episodes=5, seed=3).table
    again = run_trials(agent, test_maps[:5], episodes=5, seed=3).table
    assert first.equals(again)
    agent.begin(test_maps[:2], np.random.default_rng(0))
    assert (agent.q == agent.q_init).all()


def test_q_learning_rejects_a_learning_rate_outside_zero_one():
    with pytest.raises(ValueError, match="learning_rate"):
        QLearningAgent(learning_rate=1.5)


# ------------------------------------------------------------------------------ explorer
def test_explorer_never_steps_into_a_tile_it_has_seen_to_be_a_hole(test_maps):
    results = run_trials(ExplorerAgent(), test_maps, episodes=15, seed=0)
    for trial in results.trials:
        holes = set(trial.lake_map.holes)
        known: set[int] = set()
        for landed in trial.next_obs:
            assert landed not in known, trial.lake_map
            if landed in holes:
                known.add(int(landed))


def test_explorer_takes_the_detour_around_a_known_hole_to_a_known_goal():
    agent = _explorer_with_knowledge(["FHG", "FFF"])
    assert agent.act(np.array([0]))[0] == DOWN


def test_explorer_learns_the_detour_on_a_map_whose_straight_route_has_a_hole():
    lake = LakeMap.from_rows(["SHG", "FFF"])
    results = run_trials(ExplorerAgent(), [lake], episodes=10, seed=0)
    table = results.table
    assert table["fell_in_hole"].sum() <= 1
    first_win = int(table["success"].idxmax())
    assert table["success"][first_win:].all() and (table["length"][first_win + 1:] == 4).all()


def test_explorer_heads_for_the_nearest_unknown_tile_through_known_safe_tiles():
    # From state 3 the unknown tile at 0 is 3 moves left; the one at 8 is 5 moves right.
    agent = _explorer_with_knowledge(["?FFFFFFF?"])
    assert agent.act(np.array([3]))[0] == LEFT


def test_explorer_plans_only_through_known_safe_tiles():
    # The goal is 2 moves away through an unknown tile, 4 away along known-safe ones: it takes the known way.
    agent = _explorer_with_knowledge(["F?G", "FFF"])
    assert agent.act(np.array([0]))[0] == DOWN


def test_explorer_explores_when_no_known_goal_is_reachable_from_where_it_stands():
    # A goal is known, but this start sits behind an unexplored tile: it explores it instead of wandering.
    agent = _explorer_with_knowledge(["FFG", "HHH", "F??"])
    assert agent.act(np.array([6]))[0] == RIGHT


def test_explorer_action_costs_put_known_holes_last_even_with_nothing_left_to_explore():
    knowledge = knowledge_from_rows(["HFH"])
    costs = explorer_action_costs(knowledge, LakeGeometry([(1, 3)]), np.array([1]))
    assert costs[0, LEFT] > costs[0, UP] and costs[0, RIGHT] > costs[0, DOWN]


def test_explorer_records_what_it_saw_and_nothing_else():
    lake = LakeMap.from_rows(["SHG", "FFF"])
    agent = ExplorerAgent()
    run_trials(agent, [lake], episodes=3, seed=0)
    tiles = lake.flat
    for state, code in enumerate(agent.knowledge[0]):
        assert code == UNKNOWN or {SAFE: "SF", HOLE: "H", GOAL: "G"}[code].find(tiles[state]) >= 0
    assert agent.knowledge_rows(0)[0][2] == "G"


def test_explorer_knowledge_stays_true_on_slippery_ice(test_maps):
    agent = ExplorerAgent()
    run_trials(agent, test_maps[:10], episodes=10, seed=0, is_slippery=True)
    for b, m in enumerate(test_maps[:10]):
        for state, code in enumerate(agent.knowledge[b, : m.n_states]):
            assert code == UNKNOWN or m.flat[state] in {SAFE: "SF", HOLE: "H", GOAL: "G"}[code]


# --------------------------------------------------------------------------- yardsticks
def test_yardsticks_are_ordered_random_below_q_learning_below_explorer_below_oracle(test_maps):
    success = {
        agent.name: run_trials(agent, test_maps, episodes=15, seed=0).table.query("episode >= 10")["success"].mean()
        for agent in (RandomAgent(), QLearningAgent(), ExplorerAgent(), OracleAgent())
    }
    assert success["oracle"] == 1.0
    assert success["random"] < success["q-learning"] < success["explorer"] <= success["oracle"]
    assert success["explorer"] > 0.9


def test_paper_schedule_makes_even_the_oracle_start_at_random():
    maps = MapDistribution.paper().sample_many(40, seed=2, split="test")
    summary = run_trials(OracleAgent(), maps, episodes=30, schedule=Schedule.paper(), seed=0).per_episode()
    assert summary["mean"].iloc[0] < 0.5 and (summary["mean"].iloc[20:] == 1.0).all()


# ------------------------------------------------------------------------------ forgetful explorer
def _one_step(obs, action, reward, next_obs, terminated):
    return Transition(np.array([obs]), np.array([action]), np.array([reward]), np.array([next_obs]),
                      np.array([terminated]), np.array([False]), np.array([True]))


def test_forgetful_explorer_forgets_the_map_when_a_remembered_safe_tile_is_a_hole():
    agent = ForgetfulExplorer()
    agent.begin([LakeMap.from_rows(["SFFF", "FFFG"])], np.random.default_rng(0))
    agent.act(np.array([0]))
    for here, there in ((0, 1), (1, 2), (2, 6)):
        agent.observe(_one_step(here, 2 if there == here + 1 else 1, 0.0, there, False))
    assert agent.knowledge_rows(0) == ["FFF?", "??F?"]
    agent.observe(_one_step(6, 3, 0.0, 2, True))  # 2 was safe; now stepping there ends the episode without reward
    assert agent.knowledge_rows(0) == ["??H?", "??F?"]


def test_forgetful_explorer_forgets_when_a_remembered_goal_does_not_pay_and_when_it_stands_on_one():
    agent = ForgetfulExplorer()
    agent.begin([LakeMap.from_rows(["SFG"])], np.random.default_rng(0))
    agent.act(np.array([0]))
    agent.observe(_one_step(0, 2, 0.0, 1, False))
    agent.observe(_one_step(1, 2, 1.0, 2, True))
    assert agent.knowledge_rows(0) == ["FFG"]
    agent.observe(_one_step(1, 2, 0.0, 2, False))  # the goal moved: 2 is plain ice now
    assert agent.knowledge_rows(0) == ["?FF"]
    twin = ForgetfulExplorer()
    twin.begin([LakeMap.from_rows(["SFG"])], np.random.default_rng(0))
    twin.observe(_one_step(1, 2, 1.0, 2, True))
    twin.act(np.array([2]))  # placed on the remembered goal: a start now, so the memory is wrong
    assert twin.knowledge_rows(0) == ["??F"]


def test_forgetful_explorer_is_the_explorer_on_a_map_that_never_changes():
    maps = MapDistribution.paper().sample_many(20, seed=5, split="test")
    plain = run_trials(ExplorerAgent(), maps, episodes=6, seed=3, max_episode_steps=25).table
    forgetful = run_trials(ForgetfulExplorer(), maps, episodes=6, seed=3, max_episode_steps=25).table
    columns = ["lake", "episode", "return", "length", "success"]
    pd.testing.assert_frame_equal(plain[columns], forgetful[columns])
