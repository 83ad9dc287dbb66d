"""Lesson 4's checks: correct functions pass; realistic bugs fail, naming the case they break."""

import pytest
import torch

from icrl_course.checks.lesson04 import check_attend_cached, check_bootstrap_values, check_causal_mask, check_td_targets


def run(check, fn, capsys):
    result = check(fn)
    return result, capsys.readouterr().out


# --------------------------------------------------------------------------- bootstrap values
def bootstrap_values(online_q, target_q, double):
    if double:
        return target_q.gather(-1, online_q.argmax(-1, keepdim=True)).squeeze(-1)
    return target_q.max(-1).values


def bootstrap_always_max(online_q, target_q, double):
    return target_q.max(-1).values


def bootstrap_online_evaluates(online_q, target_q, double):
    if double:
        return online_q.max(-1).values  # picks and evaluates with the online network
    return target_q.max(-1).values


def test_correct_bootstrap_values_pass(capsys):
    result, out = run(check_bootstrap_values, bootstrap_values, capsys)
    assert result and "all 3 cases pass" in out


def test_ignoring_double_fails_on_the_double_case(capsys):
    result, out = run(check_bootstrap_values, bootstrap_always_max, capsys)
    assert not result and "double DQN: the online network picks" in out


def test_evaluating_with_the_online_network_fails(capsys):
    result, out = run(check_bootstrap_values, bootstrap_online_evaluates, capsys)
    assert not result and "the target network evaluates" in out


# --------------------------------------------------------------------------- TD targets
def td_targets(online_q, target_q, rewards, terminated, has_next, step_mask, gamma, reward_scale, double,
               terminal_bootstraps=False, truncation_valid=False, scale_everything=False, no_shift=False):
    values = bootstrap_values(online_q, target_q, double)
    next_values = values if no_shift else torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    bootstrap = has_next if terminal_bootstraps else has_next & ~terminated
    future = torch.where(bootstrap | (terminal_bootstraps & terminated), gamma * next_values, torch.zeros_like(values))
    targets = reward_scale * rewards + future
    if scale_everything:
        targets = reward_scale * (rewards + future)
    valid = step_mask if truncation_valid else step_mask & (terminated | has_next)
    return targets, valid


def test_correct_td_targets_pass(capsys):
    result, out = run(check_td_targets, td_targets, capsys)
    assert result and "all 8 cases pass" in out


def test_bootstrapping_through_a_terminal_step_fails_on_the_first_case(capsys):
    result, out = run(check_td_targets, lambda *a: td_targets(*a, terminal_bootstraps=True), capsys)
    assert not result and "a terminal step: the target is the reward alone" in out


def test_treating_truncated_steps_as_valid_fails_on_the_truncation_case(capsys):
    result, out = run(check_td_targets, lambda *a: td_targets(*a, truncation_valid=True), capsys)
    assert not result and "cut by the time limit" in out


def test_scaling_the_bootstrapped_value_too_fails_on_the_reward_scale_case(capsys):
    result, out = run(check_td_targets, lambda *a: td_targets(*a, scale_everything=True), capsys)
    assert not result and "reward scale multiplies the reward" in out


def test_forgetting_the_shift_fails_on_the_bootstrap_case(capsys):
    result, out = run(check_td_targets, lambda *a: td_targets(*a, no_shift=True), capsys)
    assert not result and "bootstraps from it" in out


def test_any_value_at_masked_steps_is_accepted(capsys):
    def garbage_where_invalid(*args):
        targets, valid = td_targets(*args)
        return torch.where(valid, targets, torch.full_like(targets, 1e9)), valid
    result, _ = run(check_td_targets, garbage_where_invalid, capsys)
    assert result


def test_unfinished_td_targets_reads_as_not_implemented(capsys):
    def todo(*args):
        raise NotImplementedError
    result, out = run(check_td_targets, todo, capsys)
    assert not result and not result.implemented and "not implemented yet" in out


# --------------------------------------------------------------------------- causal mask and KV cache
def causal_mask(n):
    return torch.arange(n)[None, :] <= torch.arange(n)[:, None]


@pytest.mark.parametrize("wrong, mistake", [
    (lambda n: causal_mask(n).T, "swapped axes"),
    (lambda n: causal_mask(n) & ~torch.eye(n, dtype=torch.bool), "off-by-one: a token cannot see itself"),
    (lambda n: torch.ones(n, n, dtype=torch.bool), "a missing mask"),
])
def test_a_wrong_causal_mask_is_named_by_its_mistake(wrong, mistake, capsys):
    result, out = run(check_causal_mask, wrong, capsys)
    assert not result and f"looks like {mistake}" in out, out


def attend_cached(q, k, v, cache_k, cache_v):
    cache_k, cache_v = torch.cat([cache_k, k], dim=2), torch.cat([cache_v, v], dim=2)
    scores = q @ cache_k.transpose(-1, -2) / q.shape[-1] ** 0.5
    return torch.softmax(scores, dim=-1) @ cache_v, cache_k, cache_v


def test_correct_mask_and_cached_step_pass(capsys):
    assert run(check_causal_mask, causal_mask, capsys)[0]
    result, out = run(check_attend_cached, attend_cached, capsys)
    assert result and "all 3 cases pass" in out


def attend_before_caching(q, k, v, cache_k, cache_v):
    out = torch.softmax(q @ cache_k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1) @ cache_v
    return out, torch.cat([cache_k, k], dim=2), torch.cat([cache_v, v], dim=2)


def attend_unscaled(q, k, v, cache_k, cache_v):
    cache_k, cache_v = torch.cat([cache_k, k], dim=2), torch.cat([cache_v, v], dim=2)
    return torch.softmax(q @ cache_k.transpose(-1, -2), dim=-1) @ cache_v, cache_k, cache_v


def attend_softmax_over_queries(q, k, v, cache_k, cache_v):
    cache_k, cache_v = torch.cat([cache_k, k], dim=2), torch.cat([cache_v, v], dim=2)
    return torch.softmax(q @ cache_k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-2) @ cache_v, cache_k, cache_v


@pytest.mark.parametrize("wrong, mistake", [
    (attend_before_caching, "off-by-one: attending before the new key"),
    (attend_unscaled, "a missing 1/sqrt(d) scale"),
    (attend_softmax_over_queries, "swapped axes: the softmax runs over the query axis"),
])
def test_a_wrong_cached_step_is_named_by_its_mistake(wrong, mistake, capsys):
    result, out = run(check_attend_cached, wrong, capsys)
    assert not result and f"looks like {mistake}" in out, out


def test_a_cache_that_does_not_grow_is_a_shape_error_naming_the_axis(capsys):
    def wrong_axis(q, k, v, cache_k, cache_v):
        return attend_cached(q, k, v, cache_k, cache_v)[0], cache_k, cache_v

    result, out = run(check_attend_cached, wrong_axis, capsys)
    assert not result and "append along dim 2" in out


def test_a_crash_in_the_cached_step_shows_the_learners_line(capsys):
    def crashing(q, k, v, cache_k, cache_v):
        keys = torch.cat([cache_k, k], dim=1)  # the wrong axis: fails on the empty cache
        return q @ keys.transpose(-1, -2), keys, cache_v

    result, out = run(check_attend_cached, crashing, capsys)
    assert not result and "raised RuntimeError" in out and "of crashing: keys = torch.cat([cache_k, k], dim=1)" in out
