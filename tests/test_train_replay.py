"""The replay buffer of whole trials: keeps the newest, samples distinct trials, saves itself losslessly."""

import numpy as np
import pytest
import torch

from icrl_course.baselines import RandomAgent
from icrl_course.envs import DOWN, LEFT, RIGHT, LakeMap, MapDistribution
from icrl_course.tokenize.compact import CompactTokenizer
from icrl_course.train.replay import ReplayBuffer, bonus_encoder, exploration_bonus, sample_batch, sample_micro_batches
from icrl_course.trials import Trial, run_trials

TOK = CompactTokenizer()


def some_trials(n: int, seed: int = 0):
    maps = MapDistribution.paper().sample_many(n, seed=seed, split="train")
    return run_trials(RandomAgent(), maps, 2, seed=seed, max_episode_steps=10).trials


def test_full_buffer_drops_the_oldest_trials():
    trials = some_trials(5)
    buffer = ReplayBuffer(3, TOK.encode)
    buffer.add(trials)
    assert len(buffer) == 3 and list(buffer.trials) == trials[2:]


def test_a_batch_holds_distinct_whole_trials():
    trials = some_trials(12)
    buffer = ReplayBuffer(12, TOK.encode)
    buffer.add(trials)
    batch = buffer.sample_batch(10, np.random.default_rng(0), 64, TOK.pad_id)
    segments = [(r, s) for r in range(batch.segment_ids.shape[0]) for s in batch.segment_ids[r].unique().tolist() if s >= 0]
    assert len(segments) == 10
    lengths = sorted(int((batch.segment_ids[r] == s).sum()) for r, s in segments)
    assert int(batch.step_mask.sum()) == sum(lengths) - 10  # T + 1 tokens per trial of T steps


def test_asking_for_more_than_the_buffer_holds_gives_each_trial_once():
    buffer = ReplayBuffer(10, TOK.encode)
    buffer.add(some_trials(4))
    batch = buffer.sample_batch(8, np.random.default_rng(0), 64, TOK.pad_id)
    assert int(batch.step_mask.sum()) == sum(len(t) for t in buffer.trials)


def test_empty_buffer_refuses_to_sample():
    with pytest.raises(ValueError, match="empty replay buffer"):
        ReplayBuffer(4, TOK.encode).sample_batch(2, np.random.default_rng(0), 64, TOK.pad_id)


def test_arrays_round_trip_the_trials_and_their_order():
    buffer = ReplayBuffer(6, TOK.encode)
    buffer.add(some_trials(6))
    copy = ReplayBuffer.from_arrays(buffer.to_arrays(), 6, TOK.encode)
    for a, b in zip(buffer.encoded, copy.encoded):
        assert np.array_equal(a.tokens, b.tokens)


def trial_tokens(batch):
    """The token sequences of a packed batch's trials, as a sorted list (which trials, not where they sit)."""
    return sorted(tuple(batch.input_ids[r][batch.segment_ids[r] == s].tolist())
                  for r in range(batch.segment_ids.shape[0]) for s in batch.segment_ids[r].unique().tolist() if s >= 0)


def test_micro_batches_pack_the_same_draw_sorted_by_length_in_rows_as_long_as_each_groups_longest():
    encoded = [TOK.encode(t) for t in some_trials(40)]
    whole = sample_batch(encoded, 24, np.random.default_rng(3), 0, TOK.pad_id)
    parts = sample_micro_batches(encoded, 24, np.random.default_rng(3), 0, TOK.pad_id, parts=4)
    assert len(parts) == 4
    assert sorted(sum((trial_tokens(b) for b in parts), [])) == trial_tokens(whole)  # the same 24 trials
    lengths = [sorted(len(t) for t in trial_tokens(b)) for b in parts]
    assert [len(x) for x in lengths] == [6, 6, 6, 6]
    assert all(a[-1] <= b[0] for a, b in zip(lengths, lengths[1:]))  # shortest trials first
    assert [b.input_ids.shape[1] for b in parts] == [x[-1] for x in lengths]
    assert sum(int(b.step_mask.sum()) for b in parts) == int(whole.step_mask.sum())


def test_one_micro_batch_is_the_packed_batch_and_a_fixed_context_length_still_cuts_long_trials():
    encoded = [TOK.encode(t) for t in some_trials(20)]
    (one,) = sample_micro_batches(encoded, 8, np.random.default_rng(1), 0, TOK.pad_id, parts=1)
    whole = sample_batch(encoded, 8, np.random.default_rng(1), 0, TOK.pad_id)
    assert all(torch.equal(getattr(one, k), getattr(whole, k)) for k in whole.__dict__)
    cut = sample_micro_batches(encoded, 8, np.random.default_rng(1), 12, TOK.pad_id, parts=3)
    assert max(b.input_ids.shape[1] for b in cut) == 12 and min(len(e) for e in encoded) < 12
    with pytest.raises(ValueError, match="parts=0"):
        sample_micro_batches(encoded, 8, np.random.default_rng(1), 0, TOK.pad_id, parts=0)


# S F F    tiles 0 1 2
# F H F          3 4 5
# F F G          6 7 8
BONUS_LAKE = LakeMap.from_rows(["SFF", "FHF", "FFG"])
BONUS_STEPS = [  # (obs, action, reward, next_obs, terminated, truncated), then the bonus each step earns
    ((0, LEFT, 0.0, 0, False, False), 0.0),    # into the wall: stays on the start, already stood on
    ((0, RIGHT, 0.0, 1, False, False), 0.2),   # a new tile
    ((1, RIGHT, 0.0, 2, False, False), 0.2),   # a new tile
    ((2, LEFT, 0.0, 1, False, False), 0.0),    # back to a tile already stood on
    ((1, DOWN, 0.0, 4, True, False), 0.0),     # a new tile, but a hole: nothing
    ((0, DOWN, 0.0, 3, False, False), 0.2),    # episode 2: new tiles down the left side
    ((3, DOWN, 0.0, 6, False, False), 0.2),
    ((6, RIGHT, 0.0, 7, False, False), 0.2),
    ((7, RIGHT, 1.0, 8, True, False), 0.0),    # the goal: its reward alone
    ((0, RIGHT, 0.0, 1, False, False), 0.0),   # episode 3: after the first goal, no bonus...
    ((1, RIGHT, 0.0, 2, False, False), 0.0),
    ((2, DOWN, 0.0, 5, False, True), 0.0),     # ... not even for a tile never stood on
]


def test_exploration_bonus_pays_new_tiles_before_the_first_goal_and_never_holes():
    trial = Trial.from_steps(BONUS_LAKE, [step for step, _ in BONUS_STEPS])
    np.testing.assert_allclose(exploration_bonus(trial, 0.2), [bonus for _, bonus in BONUS_STEPS])


def test_exploration_bonus_of_a_trial_that_never_wins_pays_every_new_tile():
    steps = [step for step, _ in BONUS_STEPS[:8]]
    np.testing.assert_allclose(exploration_bonus(Trial.from_steps(BONUS_LAKE, steps), 0.5),
                               [0.0, 0.5, 0.5, 0.0, 0.0, 0.5, 0.5, 0.5])


def test_bonus_encoder_adds_the_bonus_to_the_targets_rewards_not_to_the_tokens():
    trial = Trial.from_steps(BONUS_LAKE, [step for step, _ in BONUS_STEPS])
    plain, shaped = TOK.encode(trial), bonus_encoder(TOK.encode, 0.2)(trial)
    np.testing.assert_array_equal(shaped.tokens, plain.tokens)
    np.testing.assert_allclose(shaped.rewards, plain.rewards + np.array([b for _, b in BONUS_STEPS]), rtol=1e-6)
    assert shaped.rewards.dtype == np.float32
    encode = TOK.encode
    assert bonus_encoder(encode, 0.0) is encode
