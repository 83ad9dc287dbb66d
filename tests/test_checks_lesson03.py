"""Lesson 3's checks: a correct encoder passes; realistic bugs fail, naming the case they break."""

import numpy as np

from icrl_course.checks.lesson03 import check_encode_fields, check_wall_distances
from icrl_course.tokenize.compact import (AFTER_BOTH, AFTER_TERMINATED, AFTER_TRUNCATED, NO_ACTION, NO_REWARD, STEP,
                                          TRIAL_START, CompactTokenizer)

TOK = CompactTokenizer()


def run(check, fn, capsys):
    result = check(fn)
    return result, capsys.readouterr().out


# --------------------------------------------------------------------------- wall distances
def wall_distances(obs, nrow, ncol, cap=4):
    row, col = np.divmod(np.asarray(obs), ncol)
    return np.stack([np.minimum(row, cap), np.minimum(nrow - 1 - row, cap), np.minimum(col, cap),
                     np.minimum(ncol - 1 - col, cap)], axis=-1)


def wall_distances_uncapped(obs, nrow, ncol, cap=4):
    row, col = np.divmod(np.asarray(obs), ncol)
    return np.stack([row, nrow - 1 - row, col, ncol - 1 - col], axis=-1)


def wall_distances_rows_by_nrow(obs, nrow, ncol, cap=4):
    row, col = np.divmod(np.asarray(obs), nrow)  # divides by the wrong side
    return np.stack([np.minimum(row, cap), np.minimum(nrow - 1 - row, cap), np.minimum(col, cap),
                     np.minimum(ncol - 1 - col, cap)], axis=-1)


def test_correct_wall_distances_pass(capsys):
    result, out = run(check_wall_distances, wall_distances, capsys)
    assert result and "all 5 cases pass" in out


def test_uncapped_distances_fail_on_the_7x7_map(capsys):
    result, out = run(check_wall_distances, wall_distances_uncapped, capsys)
    assert not result and "7x7" in out and "cap" in out


def test_dividing_by_nrow_fails_on_the_non_square_map(capsys):
    result, out = run(check_wall_distances, wall_distances_rows_by_nrow, capsys)
    assert not result and "2x4" in out


# --------------------------------------------------------------------------- encoder
def encode_fields(trial, ended_tile="landed", closing=True, keep_action_at_restart=True):
    nrow, ncol = trial.lake_map.shape
    none = TOK.coord_none
    ends = trial.terminated | trial.truncated
    n = len(trial)
    cell = np.full((n + 1, 4), none)
    cell[:n] = wall_distances(trial.obs, nrow, ncol)
    if not ends[-1]:
        cell[n] = wall_distances([trial.next_obs[-1]], nrow, ncol)[0]
    prev_action = np.concatenate([[NO_ACTION], trial.actions])
    if not keep_action_at_restart:
        prev_action[1:][ends] = NO_ACTION
    prev_reward = np.concatenate([[NO_REWARD], [1 + TOK.reward_values.index(r) for r in trial.rewards]])
    ended = np.full((n + 1, 4), none)
    if ended_tile == "landed":
        where = trial.next_obs[ends]
    else:  # the next episode's start, a tile the agent can see anyway
        where = np.append(trial.obs[1:], trial.next_obs[-1])[ends]
    ended[1:][ends] = wall_distances(where, nrow, ncol)
    after = np.where(trial.terminated & trial.truncated, AFTER_BOTH,
                     np.where(trial.terminated, AFTER_TERMINATED, AFTER_TRUNCATED))
    kind = np.concatenate([[TRIAL_START], np.where(ends, after, STEP)])
    fields = np.concatenate([cell, prev_action[:, None], prev_reward[:, None], ended, kind[:, None]], axis=1)
    return fields if closing else fields[:-1]


def test_correct_encoder_passes(capsys):
    result, out = run(check_encode_fields, encode_fields, capsys)
    assert result and "all 8 cases pass" in out


def test_ending_tile_taken_from_the_next_start_fails_on_the_two_episode_trial(capsys):
    result, out = run(check_encode_fields, lambda t: encode_fields(t, ended_tile="next start"), capsys)
    assert not result and "two episodes: into the hole, then to the goal" in out and "ENDED" in out


def test_forgetting_the_closing_token_fails_on_the_first_case_with_a_shape_message(capsys):
    result, out = run(check_encode_fields, lambda t: encode_fields(t, closing=False), capsys)
    assert not result and "one step straight into the hole" in out and "shape" in out


def test_dropping_the_ending_action_fails(capsys):
    result, out = run(check_encode_fields, lambda t: encode_fields(t, keep_action_at_restart=False), capsys)
    assert not result and "one step straight into the hole" in out and "action" in out


def test_unfinished_encoder_reads_as_not_implemented(capsys):
    def todo(trial):
        raise NotImplementedError("build the columns")
    result, out = run(check_encode_fields, todo, capsys)
    assert not result and not result.implemented and "not implemented yet" in out
