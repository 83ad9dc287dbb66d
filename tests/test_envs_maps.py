"""Maps, map distributions and their held-out splits; every bad input names its field.

The shortest paths are hand-computed; the sampler's vectorised solvability
test is checked against ``LakeMap.is_solvable``'s plain breadth-first search.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icrl_course.envs import (
    PAPER_IN_DISTRIBUTION,
    PAPER_OUT_OF_DISTRIBUTION,
    TEST_FRACTION,
    VAL_FRACTION,
    BatchFrozenLake,
    DistributionError,
    FrozenLakeEnv,
    LakeMap,
    MapCount,
    MapDistribution,
    MapError,
    split_of,
)
from icrl_course.envs.distribution import solvable_mask

# ------------------------------------------------------------------------------ LakeMap
DIGEST_OF_3X3 = "fee492cdc8fcb946"
"""``LakeMap(("SFF", "FHF", "FFG")).digest``, computed once: a change here breaks every saved split."""


def test_digest_is_a_fixed_value_for_a_fixed_map():
    assert LakeMap.from_rows(["SFF", "FHF", "FFG"]).digest == DIGEST_OF_3X3


def test_digest_is_the_same_in_another_process_with_another_hash_seed():
    code = "from icrl_course.envs import LakeMap; print(LakeMap.from_rows(['SFF', 'FHF', 'FFG']).digest)"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == DIGEST_OF_3X3


def test_digest_tells_apart_maps_with_the_same_letters_in_another_shape():
    assert LakeMap.from_rows(["SF", "FG"]).digest != LakeMap.from_rows(["SFFG"]).digest


def test_from_rows_accepts_gymnasiums_byte_desc():
    lake_map = LakeMap.from_rows(["SFF", "FHF", "FFG"])
    assert LakeMap.from_rows(lake_map.desc) == lake_map
    assert lake_map.desc.dtype == np.dtype("S1") and lake_map.desc.shape == (3, 3)


@pytest.mark.parametrize(
    ("rows", "length"),
    [
        pytest.param(["SFG"], 2, id="straight-line"),
        pytest.param(["SHG"], None, id="hole-blocks-the-only-row"),
        pytest.param(["SFF", "HHF", "GFF"], 6, id="around-the-holes"),
        pytest.param(["SFFFG", "HHHHF", "SFFFF"], 4, id="nearest-of-two-starts"),
        pytest.param(["SFGFG"], 2, id="nearest-of-two-goals"),
        pytest.param(["SHF", "HFG"], None, id="start-walled-in-by-holes"),
        pytest.param(["GS"], 1, id="one-move"),
    ],
)
def test_shortest_path_length_hand_computed(rows, length):
    assert LakeMap.from_rows(rows).shortest_path_length() == length


def test_start_distances_list_every_start_in_order_with_none_when_cut_off():
    assert LakeMap.from_rows(["SFFFG", "HHHHF", "SFFFF"]).start_distances() == (4, 6)
    assert LakeMap.from_rows(["SHS", "HFG"]).start_distances() == (None, 1)


def test_distances_to_goal_stop_at_goals_and_mark_holes_and_cut_off_tiles_minus_one():
    np.testing.assert_array_equal(LakeMap.from_rows(["SFGFG"]).distances_to_goal(), [2, 1, 0, 1, 0])
    np.testing.assert_array_equal(LakeMap.from_rows(["SHF", "HFG"]).distances_to_goal(), [-1, -1, 1, -1, 1, 0])


def test_is_solvable_needs_every_start_connected():
    lake_map = LakeMap.from_rows(["SHS", "HFG"])
    assert lake_map.shortest_path_length() == 1
    assert not lake_map.is_solvable()


def test_is_solvable_min_hops_boundary():
    lake_map = LakeMap.from_rows(["SFFG"])
    assert lake_map.is_solvable(3) and not lake_map.is_solvable(4)


# -------------------------------------------------------------------------- distributions
def test_presets_hold_the_papers_and_gymnasiums_parameters():
    assert (PAPER_IN_DISTRIBUTION.rows, PAPER_IN_DISTRIBUTION.cols) == ((3, 5), (3, 5))
    assert (PAPER_IN_DISTRIBUTION.p_start, PAPER_IN_DISTRIBUTION.p_goal, PAPER_IN_DISTRIBUTION.p_hole) == (0.1, 0.1, 0.2)
    assert PAPER_IN_DISTRIBUTION.min_hops == 4 and PAPER_IN_DISTRIBUTION.style == "paper"
    assert (PAPER_OUT_OF_DISTRIBUTION.rows, PAPER_OUT_OF_DISTRIBUTION.cols) == ((6, 7), (6, 7))
    assert PAPER_OUT_OF_DISTRIBUTION.min_hops == 4
    gym = MapDistribution.gymnasium(size=6, p=0.7)
    assert (gym.rows, gym.cols, gym.p_frozen, gym.style, gym.min_hops) == ((6, 6), (6, 6), 0.7, "gymnasium", 1)


def test_gymnasium_style_puts_the_start_top_left_and_the_goal_bottom_right():
    for lake_map in MapDistribution.gymnasium(size=5).sample_many(30, seed=0):
        assert lake_map.shape == (5, 5) and lake_map.starts == (0,) and lake_map.goals == (24,)
        assert set(lake_map.flat[1:-1]) <= {"F", "H"}


def test_paper_maps_cover_every_size_and_several_starts_and_goals():
    maps = PAPER_IN_DISTRIBUTION.sample_many(300, seed=0)
    assert {m.shape for m in maps} == {(r, c) for r in range(3, 6) for c in range(3, 6)}
    assert any(len(m.starts) > 1 for m in maps) and any(len(m.goals) > 1 for m in maps)


def test_same_seed_same_maps_and_maps_are_distinct():
    first = PAPER_IN_DISTRIBUTION.sample_many(40, seed=3)
    assert first == PAPER_IN_DISTRIBUTION.sample_many(40, seed=3)
    assert len({m.digest for m in first}) == 40
    assert first != PAPER_IN_DISTRIBUTION.sample_many(40, seed=4)


def test_test_and_val_splits_hold_about_their_fractions_of_maps():
    maps = PAPER_IN_DISTRIBUTION.sample_many(2_000, seed=1)
    for split, fraction in (("test", TEST_FRACTION), ("val", VAL_FRACTION)):
        share = np.mean([split_of(m) == split for m in maps])
        assert abs(share - fraction) < 5 * np.sqrt(fraction * (1 - fraction) / len(maps)), split


def test_split_of_reads_the_digest_buckets():
    # Hand-picked maps whose digests' first 32 bits fall in each bucket: [0, .2) test, [.2, .3) val, else train.
    maps = PAPER_IN_DISTRIBUTION.sample_many(300, seed=5)
    for m in maps:
        bucket = int(m.digest[:8], 16) / 16**8
        expected = "test" if bucket < 0.2 else "val" if bucket < 0.3 else "train"
        assert split_of(m) == expected


DISTRIBUTIONS = st.sampled_from([
    PAPER_IN_DISTRIBUTION,
    PAPER_OUT_OF_DISTRIBUTION,
    MapDistribution.paper(min_hops=2, p_hole=0.3),
    MapDistribution.gymnasium(size=4),
    MapDistribution.gymnasium(size=6, p=0.7, min_hops=5),
])


@settings(max_examples=25, deadline=None)
@given(distribution=DISTRIBUTIONS, n=st.integers(1, 6), train_seed=st.integers(0, 2**32 - 1), test_seed=st.integers(0, 2**32 - 1))
def test_sampled_maps_are_solvable_and_splits_never_share_a_map(distribution, n, train_seed, test_seed):
    train = distribution.sample_many(n, seed=train_seed, split="train")
    val = distribution.sample_many(n, seed=test_seed, split="val")
    test = distribution.sample_many(n, seed=test_seed, split="test")
    for lake_map in train + val + test:
        assert lake_map.is_solvable(distribution.min_hops), lake_map
        assert distribution.rows[0] <= lake_map.nrow <= distribution.rows[1]
        assert distribution.cols[0] <= lake_map.ncol <= distribution.cols[1]
    assert {split_of(m) for m in train} == {"train"} and {split_of(m) for m in test} == {"test"}
    assert {split_of(m) for m in val} == {"val"}
    digests = [{m.digest for m in part} for part in (train, val, test)]
    assert not digests[0] & digests[1] and not digests[0] & digests[2] and not digests[1] & digests[2]


def test_solvable_mask_agrees_with_is_solvable_on_random_boards():
    rng = np.random.default_rng(0)
    checked = 0
    for rows, cols in [(1, 1), (1, 6), (5, 1), (3, 3), (4, 6), (6, 6)]:
        tiles = np.array(list("SFHG"))[rng.choice(4, size=(150, rows, cols), p=[0.15, 0.5, 0.2, 0.15])]
        for min_hops in (1, 2, 4, 7):
            mask = solvable_mask(tiles, min_hops)
            for board, solvable in zip(tiles, mask):
                letters = "".join(board.ravel())
                if "S" not in letters or "G" not in letters:
                    assert not solvable  # not a map at all
                    continue
                assert solvable == LakeMap.from_rows(["".join(r) for r in board]).is_solvable(min_hops), board
                checked += solvable
    assert checked > 200  # the boards include plenty of solvable ones, not just rejections


# ----------------------------------------------------------------- bad input names the field
@pytest.mark.parametrize(
    ("rows", "field"),
    [
        pytest.param(["SF", "FFG"], "ragged", id="ragged-rows"),
        pytest.param(["SFX", "FFG"], "unknown letter", id="unknown-letter"),
        pytest.param(["FF", "FG"], "start", id="no-start"),
        pytest.param(["SF", "FF"], "goal", id="no-goal"),
        pytest.param([], "empty", id="empty"),
        pytest.param(["SF", ""], r"rows\[1\]", id="empty-row"),
        pytest.param("SFFG", "list of row strings", id="one-string"),
    ],
)
def test_invalid_map_says_what_is_wrong(rows, field):
    with pytest.raises(MapError, match=field):
        LakeMap.from_rows(rows)


def test_lake_map_needs_a_tuple_of_rows():
    with pytest.raises(MapError, match="rows must be a tuple"):
        LakeMap(["SG"])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"p_start": -0.1}, "p_start"),
        ({"p_hole": 1.5}, "p_hole"),
        ({"p_goal": float("nan")}, "p_goal"),
        ({"p_frozen": "high"}, "p_frozen"),
        ({"p_start": 0.5, "p_goal": 0.4, "p_hole": 0.2}, r"p_start \+ p_goal \+ p_hole"),
        ({"p_start": 0.0}, "p_start"),
        ({"p_goal": 0.0}, "p_goal"),
        ({"rows": (0, 3)}, "rows"),
        ({"rows": (5, 3)}, "rows"),
        ({"cols": (3,)}, "cols"),
        ({"cols": (3.0, 4.0)}, "cols"),
        ({"rows": (2, 2), "cols": (2, 2), "min_hops": 4}, "min_hops"),
        ({"min_hops": 0}, "min_hops"),
        ({"max_tries": 0}, "max_tries"),
        ({"style": "grid"}, "style"),
    ],
)
def test_invalid_distribution_names_the_field(changes, field):
    with pytest.raises(DistributionError, match=field):
        MapDistribution(**changes)


def test_with_rejects_unknown_fields_by_name():
    with pytest.raises(DistributionError, match="p_ice"):
        PAPER_IN_DISTRIBUTION.with_(p_ice=0.3)


def test_unsatisfiable_distribution_raises_within_its_draw_budget():
    hopeless = MapDistribution(rows=(3, 3), cols=(3, 3), p_hole=0.7, min_hops=8, max_tries=2_000)
    started = time.perf_counter()
    with pytest.raises(DistributionError, match="max_tries=2000"):
        hopeless.sample(seed=0)
    assert time.perf_counter() - started < 30  # bounded by max_tries, not an endless loop


def test_count_maps_hand_counted_on_tiny_distributions():
    # Gymnasium 2x2: S top-left, G bottom-right, the two other tiles F or H; a hole on both cuts the path.
    assert MapDistribution.gymnasium(size=2).count_maps() == MapCount(3, exact=True)
    # 1-2 x 1-2 gymnasium maps: 1x1 has no start (the goal covers it), 1x2 and 2x1 are "SG", 2x2 as above.
    assert MapDistribution(rows=(1, 2), cols=(1, 2), style="gymnasium", min_hops=1).count_maps() == MapCount(5, True)
    # Paper style, one row of 3 with no holes and 1 move at least: S/G/F per tile with every S reaching a G.
    line = MapDistribution(rows=(1, 1), cols=(3, 3), p_hole=0.0, min_hops=1)
    solvable = [m for m in ("".join(t) for t in itertools.product("SGF", repeat=3))
                if "S" in m and "G" in m and LakeMap.from_rows([m]).is_solvable(1)]
    assert line.count_maps() == MapCount(len(solvable), True)


def test_count_maps_per_split_add_up_and_match_what_sampling_finds():
    small = MapDistribution.gymnasium(size=3)  # 2**7 layouts
    counts = {split: small.count_maps(split).count for split in ("train", "val", "test")}
    assert sum(counts.values()) == small.count_maps().count
    for split, count in counts.items():
        maps = small.sample_many(count, seed=0, split=split)
        assert len({m.digest for m in maps}) == count and {split_of(m) for m in maps} <= {split}


def test_count_maps_of_large_maps_is_an_upper_bound():
    held = PAPER_IN_DISTRIBUTION.count_maps("test")
    assert not held.exact and held.count > 10**12 and str(held).startswith("at most")


@pytest.mark.parametrize(("distribution", "n", "split", "held"), [
    pytest.param(MapDistribution(rows=(3, 3), cols=(3, 3)), 100_000, None, "exactly 700", id="3x3-any"),
    pytest.param(MapDistribution(rows=(3, 3), cols=(3, 3)), 500, "train", "exactly 495", id="3x3-train"),
    pytest.param(MapDistribution.gymnasium(size=4), 5_000, "test", "exactly 771", id="gymnasium-4x4-test"),
    pytest.param(MapDistribution.gymnasium(size=2, max_tries=500), 5, None, "exactly 3", id="gymnasium-2x2"),
    pytest.param(MapDistribution.gymnasium(size=2), 1, "val", "exactly 0", id="gymnasium-2x2-val-empty"),
])
def test_asking_for_more_maps_than_a_distribution_holds_fails_at_once_naming_the_numbers(distribution, n, split, held):
    started = time.perf_counter()
    with pytest.raises(DistributionError, match=f"asked for {n} distinct .* holds {held} of them: ask for at most"):
        distribution.sample_many(n, seed=0, split=split)
    assert time.perf_counter() - started < 10  # counted (at most 4**9 layouts), never searched


def test_a_search_that_stops_finding_new_maps_ends_after_max_tries_draws_naming_the_count():
    # Most of the 700 maps turn up quickly, the rarest (several starts) almost never: the search must give up.
    small = MapDistribution(rows=(3, 3), cols=(3, 3), max_tries=5_000)
    started = time.perf_counter()
    with pytest.raises(DistributionError, match=r"found only \d+ .* of the 690 asked for: .* holds exactly 700"):
        small.sample_many(690, seed=0)
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize(("kwargs", "field"), [({"split": "validation"}, "split"), ({"n": -1}, "n=")])
def test_invalid_sample_many_arguments_name_the_field(kwargs, field):
    with pytest.raises(DistributionError, match=field):
        PAPER_IN_DISTRIBUTION.sample_many(**{"n": 2, **kwargs})


ENV_ARGUMENTS = [
    pytest.param({"is_slippery": "yes"}, "is_slippery", id="is_slippery-string"),
    pytest.param({"success_rate": 1.5}, "success_rate", id="success_rate-above-1"),
    pytest.param({"success_rate": "0.5"}, "success_rate", id="success_rate-string"),
    pytest.param({"max_episode_steps": 0}, "max_episode_steps", id="max_episode_steps-zero"),
    pytest.param({"max_episode_steps": 2.5}, "max_episode_steps", id="max_episode_steps-float"),
    pytest.param({"max_episode_steps": True}, "max_episode_steps", id="max_episode_steps-bool"),
    pytest.param({"reward_schedule": (1, 0)}, "reward_schedule", id="reward_schedule-two-numbers"),
    pytest.param({"reward_schedule": (1, float("nan"), 0)}, "reward_schedule", id="reward_schedule-nan"),
    pytest.param({"reward_schedule": None}, "reward_schedule", id="reward_schedule-none"),
]


@pytest.mark.parametrize(("kwargs", "field"), ENV_ARGUMENTS)
@pytest.mark.parametrize("env_class", [FrozenLakeEnv, lambda m, **kw: BatchFrozenLake([m], **kw)], ids=["single", "batch"])
def test_invalid_env_argument_names_the_field(env_class, kwargs, field):
    with pytest.raises(ValueError, match=field):
        env_class(["SFG"], **kwargs)


def test_invalid_render_mode_and_batch_arguments_name_the_field():
    with pytest.raises(ValueError, match="render_mode"):
        FrozenLakeEnv(["SFG"], render_mode="human")
    with pytest.raises(ValueError, match="maps is empty"):
        BatchFrozenLake([])
    with pytest.raises(ValueError, match="autoreset"):
        BatchFrozenLake([["SFG"]], autoreset="no")


@pytest.mark.parametrize("action", [4, -1, 1.5, "left"])
def test_single_env_rejects_bad_actions(action):
    env = FrozenLakeEnv(["SFG"])
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        pytest.param(np.array([0, 4]), "contains 4", id="too-big"),
        pytest.param(np.array([-1, 0]), "contains -1", id="negative"),
        pytest.param(np.array([0.0, 1.0]), "integers", id="floats"),
        pytest.param(np.array([0, 1, 2]), "shape", id="one-per-lake"),
        pytest.param(np.array([1, 1], dtype=np.uint8) + 250, "contains 251", id="unsigned-too-big"),
    ],
)
def test_batch_env_rejects_bad_actions(actions, message):
    env = BatchFrozenLake([["SFG"], ["SG"]], seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(actions)


def test_batch_reset_lakes_needs_one_bool_per_lake():
    env = BatchFrozenLake([["SFG"], ["SG"]], seed=0)
    with pytest.raises(ValueError, match="mask"):
        env.reset_lakes(np.array([1, 0]))
