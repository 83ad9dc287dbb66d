"""Lesson 4's checks: correct functions pass; realistic bugs fail, naming the case they break."""

import torch

from icrl_course.checks.lesson04 import check_bootstrap_values, check_td_targets


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
    assert result and "all 9 cases pass" in out


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
