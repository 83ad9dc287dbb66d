"""Our Frozen Lake dynamics are gymnasium's FrozenLake-v1, checked against gymnasium itself.

The single env is compared with ``gymnasium.envs.toy_text.frozen_lake.FrozenLakeEnv(desc=...)``
entry by entry (P table, start distribution, rewards, termination, renders)
and with ``gymnasium.make("FrozenLake-v1")`` for the time limit. The batch env
is compared with the P table statistically (many lakes, one step) and with the
single env step by step where the dynamics are deterministic.
"""

from __future__ import annotations

import warnings
from collections import defaultdict

import gymnasium
import numpy as np
import plotly.graph_objects as go
import pytest
from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv as GymFrozenLake
from gymnasium.envs.toy_text.frozen_lake import generate_random_map
from gymnasium.utils.env_checker import check_env

from icrl_course.envs import ENV_ID, BatchFrozenLake, FrozenLakeEnv, LakeMap, MapDistribution

DYNAMICS = [
    pytest.param(dict(is_slippery=False), id="not-slippery"),
    pytest.param(dict(is_slippery=True), id="slippery"),
    pytest.param(dict(is_slippery=True, success_rate=0.7, reward_schedule=(2.5, -1.0, -0.01)), id="slippery-0.7-custom-rewards"),
    pytest.param(dict(is_slippery=True, success_rate=0.0, reward_schedule=(3, 1, 0)), id="slippery-never-straight"),
]


@pytest.fixture(scope="module")
def random_maps() -> list[LakeMap]:
    """Paper-style maps (several starts and goals among them) and gymnasium's own random maps."""
    paper = MapDistribution.paper().sample_many(40, seed=11)
    assert any(len(m.starts) > 1 for m in paper) and any(len(m.goals) > 1 for m in paper)
    ours_gym_style = MapDistribution.gymnasium(size=5).sample_many(10, seed=12)
    theirs = [LakeMap.from_rows(generate_random_map(size=size, seed=seed)) for seed, size in enumerate([3, 4, 4, 6, 8] * 2)]
    return paper + ours_gym_style + theirs


def aggregated(table) -> dict[tuple[int, int], dict[tuple[int, float, bool], float]]:
    """A P table as {(s, a): {(s', reward, terminated): total probability}}, zero-probability entries dropped."""
    out: dict = {}
    for s, by_action in table.items():
        for a, transitions in by_action.items():
            outcomes: dict = defaultdict(float)
            for prob, next_state, reward, terminated in transitions:
                if prob > 0:
                    outcomes[(int(next_state), float(reward), bool(terminated))] += prob
            out[(s, a)] = dict(outcomes)
    return out


def gym_env(lake_map: LakeMap, **dynamics) -> GymFrozenLake:
    kwargs = {"is_slippery": False, **dynamics}
    return GymFrozenLake(desc=list(lake_map.rows), **kwargs)


# ------------------------------------------------------------------ single env vs gymnasium
@pytest.mark.parametrize("dynamics", DYNAMICS)
def test_transition_table_equals_gymnasiums_on_random_maps(random_maps, dynamics):
    for lake_map in random_maps:
        ours = aggregated(FrozenLakeEnv(lake_map, **dynamics).P)
        theirs = aggregated(gym_env(lake_map, **dynamics).P)
        assert ours.keys() == theirs.keys()
        for key in theirs:
            assert ours[key].keys() == theirs[key].keys(), (lake_map, key)
            for outcome, prob in theirs[key].items():
                assert ours[key][outcome] == pytest.approx(prob, abs=1e-12), (lake_map, key, outcome)


def test_initial_state_distribution_equals_gymnasiums(random_maps):
    for lake_map in random_maps:
        ours = FrozenLakeEnv(lake_map).initial_state_distrib
        np.testing.assert_allclose(ours, gym_env(lake_map).initial_state_distrib, atol=1e-15)
        assert ours[list(lake_map.starts)] == pytest.approx(1 / len(lake_map.starts))


@pytest.mark.parametrize("dynamics", DYNAMICS)
def test_same_seed_and_actions_walk_the_same_trajectory_as_gymnasium(dynamics):
    lake_map = LakeMap.from_rows(["SFFS", "FHFF", "FFSH", "HFFG"])
    ours, theirs = FrozenLakeEnv(lake_map, max_episode_steps=None, **dynamics), gym_env(lake_map, **dynamics)
    assert ours.reset(seed=5) == theirs.reset(seed=5)
    actions = np.random.default_rng(0).integers(0, 4, size=2_000)
    episodes = 0
    for action in actions.tolist():
        step_ours, step_theirs = ours.step(action), theirs.step(action)
        assert step_ours == step_theirs
        if step_ours[2]:
            episodes += 1
            assert ours.reset() == theirs.reset()
    assert episodes > 50


def test_stepping_on_a_terminal_tile_stays_with_reward_zero_as_in_gymnasium():
    env = FrozenLakeEnv(["SHG"], reward_schedule=(1, -1, 0))
    env.reset(seed=0)
    assert env.step(2)[:4] == (1, -1.0, True, False)
    assert env.step(2)[:4] == (1, 0.0, True, False)


def walk_then_finish(env, wall_bumps: int, finishing_action: int) -> list[tuple]:
    """Bump into the left wall ``wall_bumps`` times, then take ``finishing_action``; return every step."""
    env.reset(seed=0)
    steps = [env.step(0)[1:4] for _ in range(wall_bumps)]
    steps.append(env.step(finishing_action)[1:4])
    return steps


@pytest.mark.parametrize(("wall_bumps", "first_truncation"), [(98, None), (99, 100), (120, 100)])
def test_truncation_equals_gymnasium_make_time_limit(wall_bumps, first_truncation):
    rows = ["SG", "FF"]
    theirs = gymnasium.make("FrozenLake-v1", desc=rows, is_slippery=False)
    ours = FrozenLakeEnv(rows)
    via_make = gymnasium.make(ENV_ID, lake_map=rows)
    expected = walk_then_finish(theirs, wall_bumps, finishing_action=2)
    assert walk_then_finish(ours, wall_bumps, finishing_action=2) == expected
    assert walk_then_finish(via_make, wall_bumps, finishing_action=2) == expected
    truncated_at = [t for t, (_, _, truncated) in enumerate(expected, start=1) if truncated]
    assert (truncated_at[0] if truncated_at else None) == first_truncation


def test_reaching_the_goal_on_step_100_is_both_terminated_and_truncated():
    steps = walk_then_finish(FrozenLakeEnv(["SG"]), wall_bumps=99, finishing_action=2)
    assert steps[-1] == (1.0, True, True)
    assert not any(truncated for _, _, truncated in steps[:-1])


def test_gymnasium_make_time_limit_can_be_changed_and_the_env_keeps_none():
    env = gymnasium.make(ENV_ID, lake_map=["SF", "FG"], max_episode_steps=7)
    assert env.unwrapped.max_episode_steps is None
    steps = walk_then_finish(env, wall_bumps=10, finishing_action=0)
    assert [t for t, (_, _, truncated) in enumerate(steps, start=1) if truncated][0] == 7


GYM_MODES = [
    pytest.param({}, id="no-arguments"),
    pytest.param({"is_slippery": True, "render_mode": "ansi"}, id="drawn-slippery-ansi"),
    pytest.param({"render_mode": "plotly"}, id="drawn-plotly"),
    pytest.param({"distribution": MapDistribution.paper_ood()}, id="drawn-ood"),
    pytest.param({"map_name": "4x4", "is_slippery": True}, id="map_name-4x4-slippery"),
    pytest.param({"map_name": "8x8", "render_mode": "ansi"}, id="map_name-8x8-ansi"),
    pytest.param({"desc": ["SFFS", "FHFF", "FFSH", "HFFG"], "render_mode": "plotly"}, id="desc-plotly"),
    pytest.param({"lake_map": ["SFFS", "FHFF", "FFSH", "HFFG"], "is_slippery": True}, id="lake_map-slippery"),
]


@pytest.mark.parametrize("kwargs", GYM_MODES)
def test_gymnasium_env_checker_passes_in_every_mode_without_a_warning(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gymnasium.make(ENV_ID, **kwargs).unwrapped)
    with pytest.warns(UserWarning, match="not having a spec"):  # the one thing it cannot test on a bare env
        check_env(FrozenLakeEnv(**kwargs))


def test_gymnasium_make_with_no_arguments_plays_a_paper_map_drawn_from_the_reset_seed():
    env = gymnasium.make(ENV_ID)
    env.reset(seed=5)
    first = env.unwrapped.lake_map
    assert first == MapDistribution.paper().sample(np.random.default_rng(5))  # the reset's seed, nothing else
    assert env.observation_space == gymnasium.spaces.Discrete(25)  # the largest paper map: 5 x 5
    env.reset()
    assert env.unwrapped.lake_map == first  # an unseeded reset keeps the map: episodes of one trial share it
    drawn = set()
    for seed in range(20):
        env.reset(seed=seed)
        drawn.add(env.unwrapped.lake_map)
        assert env.unwrapped.lake_map.is_solvable(4) and env.unwrapped.lake_map.n_states <= 25
    assert len(drawn) == 20


def test_map_name_gives_gymnasiums_maps_with_gymnasiums_dynamics():
    for name in ("4x4", "8x8"):
        ours = gymnasium.make(ENV_ID, map_name=name, is_slippery=True).unwrapped
        theirs = gymnasium.make("FrozenLake-v1", map_name=name).unwrapped  # slippery by default
        assert ours.lake_map == LakeMap.from_rows(theirs.desc)
        assert aggregated(ours.P) == aggregated(theirs.P)


@pytest.mark.parametrize(("kwargs", "message"), [
    pytest.param({"lake_map": ["SG"], "desc": ["SG"]}, "lake_map and desc both name a map", id="map-twice"),
    pytest.param({"map_name": "4x4", "desc": ["SG"]}, "desc and map_name both name a map", id="name-and-desc"),
    pytest.param({"map_name": "5x5"}, r"map_name='5x5' is not one of gymnasium's maps \['4x4', '8x8'\]", id="unknown-name"),
    pytest.param({"lake_map": ["SG"], "distribution": MapDistribution.paper()}, "distribution is only read", id="map-and-distribution"),
    pytest.param({"distribution": "paper"}, "distribution must be a MapDistribution", id="distribution-by-name"),
])
def test_conflicting_or_unknown_map_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FrozenLakeEnv(**kwargs)


def test_ansi_render_equals_gymnasiums_text_render():
    rows = ["SFFS", "FHFF", "FFSH", "HFFG"]
    ours = FrozenLakeEnv(rows, is_slippery=True, render_mode="ansi")
    theirs = GymFrozenLake(desc=rows, is_slippery=True, render_mode="ansi")
    ours.reset(seed=1)
    theirs.reset(seed=1)
    assert ours.render() == theirs.render()
    for action in [2, 2, 1, 0, 3, 1, 1, 2, 2, 1]:
        ours.step(action)
        theirs.step(action)
        assert ours.render() == theirs.render()


def test_plotly_render_returns_a_figure_marking_the_agent():
    env = FrozenLakeEnv(["SFF", "FHF", "FFG"], render_mode="plotly")
    env.reset(seed=0)
    env.step(2)
    figure = env.render()
    assert isinstance(figure, go.Figure)
    agent = [trace for trace in figure.data if trace.name == "agent"]
    assert len(agent) == 1 and (agent[0].x[0], agent[0].y[0]) == (1, 0)


# ------------------------------------------------------------------------------ batch env
def p_table_outcomes(lake_map: LakeMap, state: int, action: int, **dynamics) -> dict[tuple[int, float, bool], float]:
    return aggregated(FrozenLakeEnv(lake_map, **dynamics).P)[(state, action)]


# Maps whose single S puts the lake on a corner, an edge, next to a hole and next to a goal.
EDGE_CASES = [
    pytest.param(["SFF", "FFF", "FFG"], id="top-left-corner"),
    pytest.param(["FFG", "FFF", "FFS"], id="bottom-right-corner"),
    pytest.param(["FSF", "FHF", "FFG"], id="top-edge-over-a-hole"),
    pytest.param(["FFFH", "SFFF", "FFGF"], id="left-edge"),
    pytest.param(["FHF", "GSF", "FFF"], id="between-hole-and-goal"),
    pytest.param(["SFFF", "FFFG"], id="wide-map"),
]


@pytest.mark.parametrize("rows", EDGE_CASES)
@pytest.mark.parametrize("success_rate", [1 / 3, 0.8])
def test_batch_slippery_next_states_follow_the_p_table(rows, success_rate):
    lake_map, copies = LakeMap.from_rows(rows), 20_000
    (start,) = lake_map.starts
    for action in range(4):
        env = BatchFrozenLake([lake_map] * copies, is_slippery=True, success_rate=success_rate, seed=action)
        _, reward, terminated, _, info = env.step(np.full(copies, action))
        expected = p_table_outcomes(lake_map, start, action, is_slippery=True, success_rate=success_rate)
        landed = info["final_obs"]
        assert set(np.unique(landed)) <= {s for s, _, _ in expected}
        for (next_state, next_reward, next_terminated), prob in expected.items():
            hits = landed == next_state
            bound = 5 * np.sqrt(prob * (1 - prob) / copies)
            assert abs(hits.mean() - prob) <= bound, (rows, action, next_state)
            assert np.all(reward[hits] == next_reward) and np.all(terminated[hits] == next_terminated)


def test_batch_not_slippery_moves_exactly_as_the_p_table():
    lake_map = LakeMap.from_rows(["FHF", "GSF", "FFF"])
    for action in range(4):
        env = BatchFrozenLake([lake_map] * 50, seed=0)
        _, reward, terminated, _, info = env.step(np.full(50, action))
        ((next_state, next_reward, next_terminated),) = p_table_outcomes(lake_map, 4, action)
        assert np.all(info["final_obs"] == next_state)
        assert np.all(reward == next_reward) and np.all(terminated == next_terminated)


def test_batch_starts_are_uniform_among_several_start_tiles():
    lake_map = LakeMap.from_rows(["SFS", "FHF", "SFG"])
    copies = 30_000
    starts = BatchFrozenLake([lake_map] * copies, seed=3).state
    counts = np.bincount(starts, minlength=lake_map.n_states)
    assert set(np.flatnonzero(counts)) == set(lake_map.starts)
    bound = 5 * np.sqrt((1 / 3) * (2 / 3) / copies)
    assert np.all(np.abs(counts[list(lake_map.starts)] / copies - 1 / 3) <= bound)


def test_batch_autoreset_returns_the_new_start_and_reports_the_final_obs():
    # Lake 0 reaches its goal in one step right; lake 1 (a different size) needs three.
    env = BatchFrozenLake([["SG"], ["SFFG", "FFFF"]], seed=0)
    obs, reward, terminated, truncated, info = env.step(np.array([2, 2]))
    assert obs.tolist() == [0, 1] and info["final_obs"].tolist() == [1, 1]
    assert reward.tolist() == [1.0, 0.0] and terminated.tolist() == [True, False] and not truncated.any()
    assert env.elapsed.tolist() == [0, 1]
    env.step(np.array([2, 2]))
    obs, reward, terminated, _, info = env.step(np.array([0, 2]))
    assert obs.tolist() == [0, 0] and info["final_obs"].tolist() == [0, 3]
    assert reward.tolist() == [0.0, 1.0] and terminated.tolist() == [False, True]
    assert env.elapsed.tolist() == [1, 0]  # lake 0 reached its goal again on step 2


def test_batch_truncation_counts_each_lakes_own_episode():
    # Lake 0 bumps into a wall for ever; lake 1 falls in a hole on step 2, so its limit comes 2 steps later.
    env = BatchFrozenLake([["SFG"], ["SFH", "FFG"]], max_episode_steps=3, seed=0)
    actions = [np.array([0, 2])] * 2 + [np.array([0, 0])] * 5
    flags = [env.step(a)[2:4] for a in actions]
    terminated = [t.tolist() for t, _ in flags]
    truncated = [t.tolist() for _, t in flags]
    assert terminated == [[False, False], [False, True]] + [[False, False]] * 5
    assert truncated == [[False, False], [False, False], [True, False], [False, False], [False, True], [True, False], [False, False]]


def test_batch_without_autoreset_keeps_finished_lakes_on_their_terminal_tile():
    env = BatchFrozenLake([["SHG"], ["SFFG"]], max_episode_steps=2, autoreset=False, seed=0)
    obs, reward, terminated, truncated, _ = env.step(np.array([2, 2]))
    assert obs.tolist() == [1, 1] and terminated.tolist() == [True, False]
    obs, reward, terminated, truncated, info = env.step(np.array([0, 2]))
    assert obs.tolist() == [1, 2] and info["final_obs"].tolist() == [1, 2]
    assert reward.tolist() == [0.0, 0.0] and terminated.tolist() == [True, False] and truncated.tolist() == [True, True]
    assert env.reset_lakes(np.array([True, False])).tolist() == [0, 2]
    assert env.elapsed.tolist() == [0, 2]


def test_batch_of_different_sizes_matches_single_envs_step_by_step(random_maps):
    maps = [m for m in random_maps if len(m.starts) == 1][:12]  # one start: both envs are deterministic
    assert len({m.shape for m in maps}) > 2
    batch = BatchFrozenLake(maps, max_episode_steps=20, seed=0)
    singles = [FrozenLakeEnv(m, max_episode_steps=20) for m in maps]
    obs = np.array([env.reset(seed=0)[0] for env in singles])
    assert batch.state.tolist() == obs.tolist()
    rng = np.random.default_rng(1)
    for _ in range(300):
        actions = rng.integers(0, 4, size=len(maps))
        got = batch.step(actions)
        for i, env in enumerate(singles):
            next_state, reward, terminated, truncated, _ = env.step(int(actions[i]))
            assert (got[4]["final_obs"][i], got[1][i], got[2][i], got[3][i]) == (next_state, reward, terminated, truncated)
            if terminated or truncated:
                next_state, _ = env.reset()
            assert got[0][i] == next_state


def test_batch_same_seed_gives_the_same_numbers():
    maps = [["SFS", "FHF", "SFG"], ["SFFF", "FHFG"]] * 50

    def run(seed):
        env = BatchFrozenLake(maps, is_slippery=True, seed=seed)
        actions = np.random.default_rng(0).integers(0, 4, size=(200, len(maps)))
        out = [env.reset()]
        for row in actions:
            obs, reward, _, _, info = env.step(row)
            out += [obs, reward, info["final_obs"]]
        return np.concatenate(out)

    first, again, other = run(7), run(7), run(8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
