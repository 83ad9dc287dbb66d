"""Comparing agents on held-out maps: the maps come from the test split and every agent plays the same maps with
the same seed (the summaries' intervals are icrl_course.stats', tested in tests/test_stats.py)."""

from icrl_course.baselines import RandomAgent
from icrl_course.envs import LakeMap, MapDistribution, split_of
from icrl_course.evaluate import compare_agents, held_out_maps


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
