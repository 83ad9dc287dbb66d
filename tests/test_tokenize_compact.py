"""The compact encoding: fields per step, the episode-end tile, lossless round trips, packing, bad input."""

import dataclasses

import numpy as np
import pytest
import torch

from icrl_course.baselines import RandomAgent
from icrl_course.envs import LakeMap
from icrl_course.tokenize import ContextTooLongError, pack
from icrl_course.tokenize.compact import (AFTER_BOTH, AFTER_TERMINATED, AFTER_TRUNCATED, CELL_ID_NONE, CELL_ID_WIDTH,
                                          FIELDS, RELATIVE_FIELDS, STEP, TRIAL_START, CompactTokenizer)
from icrl_course.trials import Trial, run_trials

TOK = CompactTokenizer()
MAP = LakeMap.from_rows(["SFF", "FHF", "FFG"])
F = {name: i for i, name in enumerate(FIELDS)}

# Two episodes: right, then down into the hole at (1,1); then right, right, down, down to the goal.
TWO_EPISODES = Trial.from_steps(MAP, [
    (0, 2, 0.0, 1, False, False), (1, 1, 0.0, 4, True, False),
    (0, 2, 0.0, 1, False, False), (1, 2, 0.0, 2, False, False), (2, 1, 0.0, 5, False, False), (5, 1, 1.0, 8, True, False),
])


def assert_same_trial(a: Trial, b: Trial):
    assert a.lake_map == b.lake_map
    for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "episode"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_a_trial_of_t_steps_is_t_plus_one_tokens_with_q_read_at_each_step():
    enc = TOK.encode(TWO_EPISODES)
    assert len(enc) == len(TWO_EPISODES) + 1
    np.testing.assert_array_equal(enc.q_positions, np.arange(6))
    np.testing.assert_array_equal(enc.actions, TWO_EPISODES.actions)


def test_token_fields_hold_wall_distances_previous_action_reward_and_kind():
    f = TOK.fields(TOK.encode(TWO_EPISODES).tokens)
    # token 1: cell (0,1) of a 3x3 map -> up 0, down 2, left 1, right 1; reached by "right" (2) with reward 0
    assert f[1, :4].tolist() == [0, 2, 1, 1]
    assert f[1, F["prev_action"]] == 2 and f[1, F["prev_reward"]] == 1 + TOK.reward_values.index(0.0)
    assert f[0, F["kind"]] == TRIAL_START and f[0, F["prev_action"]] == 4
    assert f[1, F["kind"]] == STEP and f[1, F["end_up"]] == TOK.coord_none


def test_first_step_of_next_episode_shows_the_hole_where_the_last_one_ended():
    f = TOK.fields(TOK.encode(TWO_EPISODES).tokens)
    # token 2 is the restart at (0,0); the previous episode fell into the hole at (1,1) by moving down
    assert f[2, :4].tolist() == [0, 2, 0, 2]
    assert f[2, F["end_up"]:F["end_right"] + 1].tolist() == [1, 1, 1, 1]
    assert f[2, F["kind"]] == AFTER_TERMINATED and f[2, F["prev_action"]] == 1


def test_closing_token_carries_the_goal_and_its_reward_without_a_cell():
    f = TOK.fields(TOK.encode(TWO_EPISODES).tokens)
    assert f[-1, :4].tolist() == [TOK.coord_none] * 4
    assert f[-1, F["end_up"]:F["end_right"] + 1].tolist() == [2, 0, 2, 0]  # (2,2), the goal
    assert f[-1, F["prev_reward"]] == 1 + TOK.reward_values.index(1.0)


def test_slippery_ending_tile_is_the_landed_tile_not_the_intended_one():
    # From (0,1) the agent pressed right but slipped down into the hole at (1,1).
    trial = Trial.from_steps(MAP, [(0, 2, 0.0, 1, False, False), (1, 2, 0.0, 4, True, False), (0, 1, 0.0, 3, False, False)])
    f = TOK.fields(TOK.encode(trial).tokens)
    assert f[2, F["end_up"]:F["end_right"] + 1].tolist() == [1, 1, 1, 1] and f[2, F["prev_action"]] == 2


def test_truncation_and_termination_with_truncation_have_their_own_kinds():
    trial = Trial.from_steps(MAP, [(0, 2, 0.0, 1, False, True), (0, 1, 0.0, 3, True, True), (0, 2, 0.0, 1, False, False)])
    kinds = TOK.fields(TOK.encode(trial).tokens)[:, F["kind"]].tolist()
    assert kinds == [TRIAL_START, AFTER_TRUNCATED, AFTER_BOTH, STEP]


def test_wall_distances_keep_every_cell_of_a_7x7_map_distinct_with_values_seen_on_5x5_maps():
    cells = np.arange(49)
    coords = TOK.cell_fields(cells, 7, 7)
    assert len({tuple(c) for c in coords}) == 49
    seen_on_5x5 = set(TOK.cell_fields(np.arange(25), 5, 5).ravel().tolist())
    assert set(coords.ravel().tolist()) <= seen_on_5x5
    np.testing.assert_array_equal(TOK.cells(coords, 7, 7), cells)


def test_round_trip_of_a_hand_made_trial():
    assert_same_trial(TOK.decode(TOK.encode(TWO_EPISODES), MAP), TWO_EPISODES)


@pytest.mark.parametrize("slippery", [False, True])
def test_round_trip_of_real_trials_with_holes_goals_truncation_and_slips(slippery):
    maps = [MAP, LakeMap.from_rows(["SFFF", "FHFH", "FFFH", "HFFG"]), LakeMap.from_rows(["SFFFFHF", "FFHFFFG"]),
            LakeMap.from_rows(["SG"])]
    results = run_trials(RandomAgent(), maps, episodes=6, seed=3, max_episode_steps=8, is_slippery=slippery)
    trials = results.trials
    assert any(t.truncated.any() for t in trials) and any(t.terminated.any() for t in trials)
    assert any(t.rewards.max() == 1.0 for t in trials)
    for trial in trials:
        assert_same_trial(TOK.decode(TOK.encode(trial), trial.lake_map), trial)


def test_round_trip_of_a_trial_cut_mid_episode_and_of_an_empty_trial():
    cut = Trial.from_steps(MAP, [(0, 2, 0.0, 1, False, False), (1, 2, 0.0, 2, False, False)])
    assert_same_trial(TOK.decode(TOK.encode(cut), MAP), cut)
    empty = Trial.from_steps(MAP, [])
    assert len(TOK.encode(empty)) == 0 and len(TOK.decode(TOK.encode(empty), MAP)) == 0


def test_pack_keeps_two_compact_trials_apart_and_aligns_steps():
    a, b = TOK.encode(TWO_EPISODES), TOK.encode(TWO_EPISODES.episode_slice(0))
    batch = pack([a, b], context_length=16, pad_id=TOK.pad_id)
    assert batch.input_ids.shape == (1, 16)
    assert batch.segment_ids[0].tolist() == [0] * 7 + [1] * 3 + [-1] * 6
    assert batch.q_index[0].tolist() == [0, 1, 2, 3, 4, 5, 7, 8]
    assert batch.has_next[0].tolist() == [True, False, True, True, True, False, True, False]
    mask = batch.attention_mask()[0, 0]
    assert not mask[7:10, :7].any()  # the second trial never sees the first
    assert torch.equal(batch.input_ids[0, 10:], torch.full((6,), TOK.pad_id))


def test_pack_raises_a_clear_error_when_a_compact_trial_is_too_long():
    with pytest.raises(ContextTooLongError, match="context_length"):
        pack([TOK.encode(TWO_EPISODES)], context_length=5)


def test_action_outside_0_to_3_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="0 \\(left\\)"):
        Trial.from_steps(MAP, [(0, 4, 0.0, 1, False, False)])
    forged = dataclasses.replace(TWO_EPISODES)
    object.__setattr__(forged, "actions", np.array([2, 1, 2, 2, 7, 1]))
    with pytest.raises(ValueError, match="action 7"):
        TOK.encode(forged)
    with pytest.raises(ValueError, match="action -1"):
        TOK.step_tokens(np.array([0]), 3, 3, np.array([STEP]), np.array([-1]), np.array([0.0]), np.array([-1]))


def test_unknown_reward_too_large_map_and_broken_history_are_rejected():
    with pytest.raises(ValueError, match="reward_values"):
        TOK.encode(Trial.from_steps(MAP, [(0, 2, 0.5, 1, False, False)]))
    jump = Trial.from_steps(MAP, [(0, 2, 0.0, 1, False, False), (5, 2, 0.0, 5, False, False)])
    with pytest.raises(ValueError, match="continuous"):
        TOK.encode(jump)


def test_field_packing_is_invertible_and_pad_id_has_every_field_none():
    rng = np.random.default_rng(0)
    fields = np.stack([rng.integers(0, s, size=100) for s in TOK.field_sizes], axis=-1)
    np.testing.assert_array_equal(TOK.fields(TOK.token_ids(fields)), fields)
    pad = TOK.fields(np.array([TOK.pad_id]))[0]
    assert pad[:4].tolist() == [TOK.coord_none] * 4 and pad[F["prev_action"]] == 4


def test_explain_gives_one_readable_row_per_token():
    table = TOK.explain(TOK.encode(TWO_EPISODES), MAP)
    assert len(table) == 7
    assert table.loc[2, "ended_at"] == "(1,1)" and table.loc[2, "kind"] == "after terminated"
    assert table["q_read"].tolist() == [True] * 6 + [False]


# ------------------------------------------------------------------ larger maps than the cap names uniquely
CAP2 = CompactTokenizer(edge_cap=2)
SEVEN = LakeMap.from_rows(["SFFFFFF"] + ["FFFFFFF"] * 5 + ["FFFFFFG"])


def test_cap_2_names_a_5x5_map_uniquely_and_decodes_it():
    cells = np.arange(25)
    names = {tuple(f) for f in CAP2.cell_fields(cells, 5, 5)}
    assert len(names) == 25 and CAP2.max_side == 5
    np.testing.assert_array_equal(CAP2.cells(CAP2.cell_fields(cells, 5, 5), 5, 5), cells)


def test_cap_2_on_a_7x7_map_writes_only_codes_of_5x5_maps_and_shares_inner_names():
    fields = CAP2.cell_fields(np.arange(49), 7, 7)
    # Hand-computed: row 0 -> up 0, down 2; row 3 (middle) -> up 2, down 2; rows 2, 3, 4 read the same.
    assert fields[0].tolist() == [0, 2, 0, 2]            # top-left corner
    assert fields[3 * 7 + 3].tolist() == [2, 2, 2, 2]    # centre
    assert fields[2 * 7 + 4].tolist() == [2, 2, 2, 2]    # another inner cell, same name
    assert fields[6 * 7 + 5].tolist() == [2, 0, 2, 1]    # bottom row, one from the right wall
    seen_on_5x5 = {tuple(f) for f in CAP2.cell_fields(np.arange(25), 5, 5)}
    assert {tuple(f) for f in fields} <= seen_on_5x5
    assert len({tuple(f) for f in fields}) == 25


def test_a_map_larger_than_max_side_is_encoded_but_not_decoded():
    trial = Trial.from_steps(SEVEN, [(0, 2, 0.0, 1, False, False), (1, 1, 0.0, 8, False, False)])
    encoded = CAP2.encode(trial)
    assert len(encoded) == 3
    with pytest.raises(ValueError, match="names uniquely .at most 5x5.*larger edge_cap"):
        CAP2.decode(encoded, SEVEN)
    assert_same_trial(TOK.decode(TOK.encode(trial), SEVEN), trial)  # cap 4 names 7x7 cells uniquely


# ------------------------------------------------------------------ offsets from the trial's first cell
REL = CompactTokenizer(edge_cap=2, relative_cap=2)
R = {name: i for i, name in enumerate(FIELDS + RELATIVE_FIELDS)}


def test_offsets_from_the_first_cell_on_a_hand_trial():
    f = REL.encode_fields(TWO_EPISODES)
    assert f.shape == (7, 15) and REL.field_names == FIELDS + RELATIVE_FIELDS
    none = REL.relative_none
    assert none == 5
    # Hand-computed, stored plus the cap (2): cells 0, 1, 0, 1, 2, 5, closing token (none); the trial starts at (0, 0).
    assert f[:, R["from_start_row"]].tolist() == [2, 2, 2, 2, 2, 3, none]
    assert f[:, R["from_start_col"]].tolist() == [2, 3, 2, 3, 4, 4, none]
    # The hole at (1, 1) after step 1, the goal at (2, 2) after the last step; none on other tokens.
    assert f[:, R["end_from_start_row"]].tolist() == [none, none, 3, none, none, none, 4]
    assert f[:, R["end_from_start_col"]].tolist() == [none, none, 3, none, none, none, 4]
    # The first eleven fields are the tokenizer's without offsets.
    np.testing.assert_array_equal(f[:, :len(FIELDS)], CAP2.encode_fields(TWO_EPISODES))


def test_offsets_are_relative_to_the_first_cell_and_clipped_at_the_cap():
    seven_from_middle = Trial.from_steps(SEVEN, [(24, 0, 0.0, 23, False, False), (23, 0, 0.0, 22, False, False),
                                                 (22, 0, 0.0, 21, False, False), (21, 3, 0.0, 14, False, False)])
    f = REL.encode_fields(seven_from_middle)
    # From (3, 3): (3, 2) is 0/-1, (3, 1) 0/-2, (3, 0) 0/-3 clipped to -2, (2, 0) -1/-2.
    offsets = f[:-1, [R["from_start_row"], R["from_start_col"]]] - REL.relative_cap
    assert offsets.tolist() == [[0, 0], [0, -1], [0, -2], [0, -2]]
    assert (f[-1, [R["from_start_row"], R["from_start_col"]]] - 2).tolist() == [-1, -2]


def test_every_offset_a_7x7_map_writes_also_occurs_on_5x5_maps_with_cap_4():
    rel4 = CompactTokenizer(edge_cap=2, relative_cap=4)
    def offsets(side):
        cells = np.arange(side * side)
        origin, obs = np.meshgrid(cells, cells)
        return {tuple(v) for v in rel4.relative_fields(obs.ravel(), origin.ravel(), side)}
    assert offsets(7) == offsets(5) and len(offsets(5)) == 81


@pytest.mark.parametrize("slippery", [False, True])
def test_round_trip_with_offsets(slippery):
    maps = [MAP, LakeMap.from_rows(["SFFH", "FHFF", "FFFG"])]
    results = run_trials(RandomAgent(), maps, episodes=4, seed=3, max_episode_steps=8, is_slippery=slippery)
    for trial in results.trials:
        assert_same_trial(REL.decode(REL.encode(trial), trial.lake_map), trial)


def test_offset_packing_is_invertible_pad_has_no_offset_and_the_default_ids_are_unchanged():
    rng = np.random.default_rng(0)
    fields = np.stack([rng.integers(0, s, size=100) for s in REL.field_sizes], axis=-1)
    np.testing.assert_array_equal(REL.fields(REL.token_ids(fields)), fields)
    assert REL.fields(np.array([REL.pad_id]))[0, len(FIELDS):].tolist() == [REL.relative_none] * 4
    np.testing.assert_array_equal(CAP2.encode(TWO_EPISODES).tokens,
                                  CAP2.token_ids(REL.encode_fields(TWO_EPISODES)[:, :len(FIELDS)]))


def test_offsets_need_the_first_cell_and_a_bad_cap_is_named():
    with pytest.raises(ValueError, match="relative_cap=2 writes cells relative to the trial's first cell: pass origin"):
        REL.step_fields(np.array([1]), 3, 3, np.array([STEP]), np.array([2]), np.array([0.0]), np.array([-1]))
    with pytest.raises(ValueError, match="relative_cap=-1 must be an int >= 0"):
        CompactTokenizer(relative_cap=-1)


def test_explain_shows_the_offsets():
    table = REL.explain(REL.encode(TWO_EPISODES), MAP)
    assert table["from start r/c"].tolist()[:3] == ["+0/+0", "+0/+1", "+0/+0"]
    assert table.loc[2, "ended from start"] == "+1/+1" and table.loc[6, "from start r/c"] == "-"


# ---------------------------------------------------------------- cell names (cell_ids)
NAMED = CompactTokenizer(edge_cap=2, cell_ids=True)


def test_cell_ids_name_each_cell_and_the_tile_each_step_arrived_at():
    f = NAMED.fields(NAMED.encode(TWO_EPISODES).tokens)
    assert NAMED.field_names[-2:] == ("cell_id", "arrived_id")
    assert NAMED.field_sizes[-2:] == (CELL_ID_NONE + 1,) * 2 == (257, 257)
    # cells 0, 1 | 0, 1, 2, 5 = (1,2); the closing token after the goal has none
    assert f[:, -2].tolist() == [0, 1, 0, 1, 2, 1 * CELL_ID_WIDTH + 2, CELL_ID_NONE]
    # arrived: nothing before the first step; then 1, the hole (1,1) = 17, 1, 2, (1,2) = 18, the goal (2,2) = 34
    assert f[:, -1].tolist() == [CELL_ID_NONE, 1, 17, 1, 2, 18, 2 * CELL_ID_WIDTH + 2]
    assert NAMED.fields(np.array(NAMED.pad_id))[-2:].tolist() == [CELL_ID_NONE] * 2
    # the other fields are those of a tokenizer without names
    plain = CompactTokenizer(edge_cap=2).fields(CompactTokenizer(edge_cap=2).encode(TWO_EPISODES).tokens)
    np.testing.assert_array_equal(f[:, :-2], plain)


def test_cell_ids_round_trip_and_a_name_that_disagrees_with_the_walls_is_refused():
    encoded = NAMED.encode(TWO_EPISODES)
    assert_same_trial(NAMED.decode(encoded, MAP), TWO_EPISODES)
    for column, token, wrong in ((-2, 3, 2), (-1, 2, 1)):  # token 3 stands on (0,1); token 2 arrived at the hole
        f = NAMED.fields(encoded.tokens)
        f[token, column] = wrong
        with pytest.raises(ValueError, match="names another tile than its wall distances"):
            NAMED.decode(NAMED.token_ids(f), MAP)


def test_cell_ids_name_every_cell_of_maps_up_to_16_by_16_and_refuse_larger_ones():
    ids = NAMED.cell_id_field(np.arange(49), 7)
    assert len(set(ids.tolist())) == 49 and ids[8] == CELL_ID_WIDTH + 1  # (1,1) of a 7x7 map
    assert NAMED.cell_id_field(np.array([255]), 16)[0] == 255  # (15,15)
    with pytest.raises(ValueError, match="up to 16 x 16"):
        NAMED.cell_id_field(np.array([0]), 17)
    with pytest.raises(ValueError, match="up to 16 x 16"):
        NAMED.cell_id_field(np.array([16 * 16]), 16)  # row 16
    with pytest.raises(ValueError, match="cell_ids"):
        CompactTokenizer(cell_ids=1)
