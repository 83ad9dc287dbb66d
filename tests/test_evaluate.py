"""Comparing agents on held-out maps: the maps come from the test split, every agent plays the same maps with the
same seed, and the summaries' means and bootstrap intervals are those of per-map values (hand cases)."""

import pandas as pd
import pytest

from icrl_course.baselines import RandomAgent
from icrl_course.envs import LakeMap, MapDistribution, split_of
from icrl_course.evaluate import compare_agents, held_out_maps, icl_summary, mean_over_episodes


def table_of(success_by_map: dict[str, list[list[int]]]) -> pd.DataFrame:
    """A results table from {agent: [[success of episode 0, 1, ...] per map]}."""
    rows = [{"agent": agent, "lake": lake, "episode": episode, "success": value}
            for agent, maps in success_by_map.items() for lake, episodes in enumerate(maps)
            for episode, value in enumerate(episodes)]
    return pd.DataFrame(rows)


def test_held_out_maps_are_distinct_test_split_maps():
    maps = held_out_maps(12, seed=4)
    assert len({m.digest for m in maps}) == 12 and {split_of(m) for m in maps} == {"test"}


def test_held_out_maps_of_another_distribution_keep_to_the_test_split():
    maps = held_out_maps(5, MapDistribution.paper(rows=(4, 4), cols=(4, 4)), seed=0)
    assert {m.shape for m in maps} == {(4, 4)} and {split_of(m) for m in maps} == {"test"}


def test_every_agent_plays_every_map_for_every_episode_under_its_name():
    maps = [LakeMap.from_rows(["SFF", "FHF", "FFG"]), LakeMap.from_rows(["SFFG"])]
    table = compare_agents({"a": RandomAgent(), "b": RandomAgent()}, maps, episodes=3, max_episode_steps=5, seed=2)
    assert len(table) == 2 * 2 * 3
    assert table.groupby("agent").size().to_dict() == {"a": 6, "b": 6}
    a, b = (table[table.agent == name].reset_index(drop=True) for name in ("a", "b"))
    assert a[["lake", "episode", "return", "length"]].equals(b[["lake", "episode", "return", "length"]])  # same seed


def test_mean_over_episodes_averages_per_map_then_bootstraps_over_maps():
    table = table_of({"x": [[1, 1], [0, 1], [0, 0], [1, 1]]})  # per-map means 1, 0.5, 0, 1
    row = mean_over_episodes(table, n_boot=4000, seed=0).iloc[0]
    assert row["mean"] == pytest.approx(0.625) and row["n_maps"] == 4
    assert 0.0 <= row["low"] < 0.625 < row["high"] <= 1.0


def test_a_constant_result_has_a_zero_width_interval():
    row = mean_over_episodes(table_of({"x": [[1, 1]] * 5}), seed=0).iloc[0]
    assert (row["mean"], row["low"], row["high"]) == (1.0, 1.0, 1.0)


def test_icl_summary_numbers_episodes_from_one_and_keeps_the_agents_order():
    summary = icl_summary(table_of({"second": [[0, 1]] * 3, "first": [[1, 1]] * 3}))
    assert list(summary.index) == ["second", "first"] and list(summary.columns) == ["ep 1", "ep 2", "mean"]
    assert summary.loc["first", "ep 2"] == "1.00 [1.00, 1.00]" and summary.loc["second", "mean"] == "0.50 [0.50, 0.50]"
