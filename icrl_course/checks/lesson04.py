"""Checks for lesson 4's exercises: the bootstrap value V(s) and one-step TD targets for a packed batch.

``check_bootstrap_values`` compares the learner's function with
``icrl_course.dqn.bootstrap_values``; ``check_td_targets`` with
``icrl_course.dqn.td_targets`` (one-step). Targets are compared only where
they are valid: a masked step's target never reaches the loss, so any value
there is accepted. Cases are hand-made rows, edge cases first (a terminal
step, a truncated step, padding, a trial boundary), then a random batch.
"""

from __future__ import annotations

import torch

from icrl_course.checks.core import Case, CheckResult, run_check
from icrl_course.dqn import bootstrap_values as reference_bootstrap_values
from icrl_course.dqn import td_targets as reference_td_targets


def _q(rows) -> torch.Tensor:
    """One row of per-step Q-values, ``(1, N, 4)``."""
    return torch.tensor([rows], dtype=torch.float32)


def _flags(rewards, terminated, has_next, step_mask=None) -> dict:
    n = len(rewards)
    return dict(rewards=torch.tensor([rewards], dtype=torch.float32),
                terminated=torch.tensor([terminated], dtype=torch.bool),
                has_next=torch.tensor([has_next], dtype=torch.bool),
                step_mask=torch.tensor([step_mask if step_mask is not None else [True] * n], dtype=torch.bool))


# ------------------------------------------------------------------------ bootstrap values
def bootstrap_cases() -> list[Case]:
    online = _q([[0.0, 3.0, 1.0, 2.0], [5.0, 0.0, 0.0, 1.0]])
    target = _q([[9.0, 4.0, 1.0, 0.0], [2.0, 0.5, 7.0, 3.0]])
    generator = torch.Generator().manual_seed(0)
    return [
        Case("double DQN: the online network picks, the target network evaluates", (online, target, True),
             hint="best = online_q.argmax(-1); V = target_q at that action (torch.gather along the last axis)"),
        Case("plain DQN: the target network's own maximum", (online, target, False),
             hint="with double=False, V = target_q.max(-1).values"),
        Case("a batch of 3 rows x 5 steps", (torch.randn(3, 5, 4, generator=generator),
                                            torch.randn(3, 5, 4, generator=generator), True),
             hint="work on the last axis only; the output is (B, N)"),
    ]


def check_bootstrap_values(bootstrap_values) -> CheckResult:
    """Check a learner's ``bootstrap_values(online_q, target_q, double) -> (B, N)``."""
    return run_check("bootstrap_values", bootstrap_values, reference_bootstrap_values, bootstrap_cases())


# ------------------------------------------------------------------------ TD targets
def _only_valid(output):
    """``(targets, valid)`` with targets zeroed where not valid, so masked entries never count."""
    if isinstance(output, tuple) and len(output) == 2 and all(isinstance(x, torch.Tensor) for x in output):
        targets, valid = output
        if targets.shape == valid.shape and valid.dtype == torch.bool:
            return torch.where(valid, targets, torch.zeros((), dtype=targets.dtype)), valid
    return output


def _reference(online_q, target_q, rewards, terminated, has_next, step_mask, gamma, reward_scale, double):
    return _only_valid(reference_td_targets(online_q, target_q, rewards, terminated, has_next, step_mask,
                                            gamma=gamma, reward_scale=reward_scale, double=double))


def _case(name, online, target, flags, hint, gamma=0.9, reward_scale=1.0, double=True) -> Case:
    return Case(name, args=(online, target, flags["rewards"], flags["terminated"], flags["has_next"],
                            flags["step_mask"], gamma, reward_scale, double), hint=hint)


def td_target_cases() -> list[Case]:
    two = _q([[1.0, 2.0, 0.0, 0.0], [0.0, 4.0, 6.0, 1.0]])
    generator = torch.Generator().manual_seed(1)
    batch = 3, 12
    random_flags = dict(
        rewards=(torch.rand(batch, generator=generator) < 0.2).float(),
        terminated=torch.rand(batch, generator=generator) < 0.2,
        has_next=torch.rand(batch, generator=generator) < 0.7,
        step_mask=torch.arange(12).expand(3, 12) < torch.tensor([[12], [9], [5]]),
    )
    random_flags["has_next"] &= ~random_flags["terminated"] & random_flags["step_mask"]
    random_flags["has_next"][:, -1] = False
    return [
        _case("a terminal step: the target is the reward alone (the next step starts a new episode)", two, two,
              _flags([1.0, 0.0], [True, True], [False, False]),
              "after a terminated step nothing follows: no gamma * V term (and the step is valid)"),
        _case("a step followed by the next step of its episode bootstraps from it",
              two, two, _flags([0.0, 1.0], [False, True], [True, False]),
              "target[t] = reward_scale * r[t] + gamma * V(step t + 1): shift the values left by one step"),
        _case("double DQN picks the next action with the online network", _q([[0, 0, 0, 0], [9, 0, 1, 0]]),
              _q([[0, 0, 0, 0], [5, 1, 7, 2]]), _flags([0.0, 0.0], [False, True], [True, False]),
              "with double=True the next action is online_q's argmax at step t + 1, valued by target_q"),
        _case("plain DQN takes the target network's max", _q([[0, 0, 0, 0], [9, 0, 1, 0]]),
              _q([[0, 0, 0, 0], [5, 1, 7, 2]]), _flags([0.0, 0.0], [False, True], [True, False]),
              "with double=False use target_q.max(-1) at step t + 1", double=False),
        _case("a step cut by the time limit has no next state in the context: not valid",
              _q([[1, 2, 0, 0], [0, 4, 6, 1], [3, 0, 0, 0]]), _q([[1, 2, 0, 0], [0, 4, 6, 1], [3, 0, 0, 0]]),
              _flags([0.0, 0.0, 0.0], [False, False, False], [True, False, False]),
              "valid = step_mask & (terminated | has_next): a truncated step has neither"),
        _case("padding steps are not valid", two, two, _flags([0.0, 0.0], [True, False], [False, False], [True, False]),
              "a step where step_mask is False is padding: never valid"),
        _case("the reward scale multiplies the reward, not the bootstrapped value", two, two,
              _flags([1.0, 0.0], [False, True], [True, False]),
              "target = reward_scale * r + gamma * V(next): V is already in scaled units", reward_scale=30.0),
        _case("two trials in a row: the last step of the first does not bootstrap from the second",
              _q([[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 8, 0]]), _q([[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 8, 0]]),
              _flags([0.0, 0.0, 0.0], [False, False, False], [True, False, False]),
              "bootstrap only where has_next is True; has_next is False at trial boundaries", gamma=0.5),
        _case("a random packed batch of 3 rows", torch.randn(3, 12, 4, generator=generator),
              torch.randn(3, 12, 4, generator=generator), random_flags,
              "work on whole (B, N) tensors: shift along the step axis (dim 1), never across rows", gamma=0.8),
    ]


def check_td_targets(td_targets) -> CheckResult:
    """Check a learner's ``td_targets(online_q, target_q, rewards, terminated, has_next, step_mask, gamma,
    reward_scale, double) -> (targets, valid)``; targets are compared where valid only."""
    return run_check("td_targets", lambda *args: _only_valid(td_targets(*args)), _reference, td_target_cases())
