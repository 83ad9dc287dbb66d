"""Checks for lesson 4's exercises: the bootstrap value V(s), one-step TD targets for a packed batch, the causal
mask and one attention step with a KV cache.

``check_bootstrap_values`` compares the learner's function with
``icrl_course.dqn.bootstrap_values``; ``check_td_targets`` with
``icrl_course.dqn.td_targets`` (one-step). Targets are compared only where
they are valid: a masked step's target never reaches the loss, so any value
there is accepted. Cases are hand-made rows, edge cases first (a terminal
step, a truncated step, padding), then a random batch.

``check_causal_mask`` compares with ``j <= i``; ``check_attend_cached`` feeds the
learner's cached step a sequence one token at a time, from an empty cache, and
compares every output with attention recomputed over the whole sequence with
the causal mask: the equivalence the model's acting relies on (lesson 4,
section 6). Known mistakes (swapped axes, a missing diagonal, a missing mask,
attending before the new key is cached, no 1/sqrt(d) scale) are named.
"""

from __future__ import annotations

import torch

import math

from icrl_course.checks.core import Case, CheckResult, Mistake, run_check
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
        _case("a random packed batch of 3 rows", torch.randn(3, 12, 4, generator=generator),
              torch.randn(3, 12, 4, generator=generator), random_flags,
              "work on whole (B, N) tensors: shift along the step axis (dim 1), never across rows", gamma=0.8),
    ]


def check_td_targets(td_targets) -> CheckResult:
    """Check a learner's ``td_targets(online_q, target_q, rewards, terminated, has_next, step_mask, gamma,
    reward_scale, double) -> (targets, valid)``; targets are compared where valid only."""
    return run_check("td_targets", lambda *args: _only_valid(td_targets(*args)), _reference, td_target_cases())


# ------------------------------------------------------------------------ causal mask
def reference_causal_mask(n: int) -> torch.Tensor:
    """``(n, n)`` bool: query i may attend to key j when j <= i."""
    return torch.ones(n, n, dtype=torch.bool).tril()


MASK_MISTAKES = (
    Mistake("off-by-one: a token cannot see itself", lambda n: torch.ones(n, n, dtype=torch.bool).tril(-1),
            "the diagonal belongs in the mask: a token attends to itself (j <= i, not j < i)"),
    Mistake("off-by-one: each token sees one token ahead", lambda n: torch.ones(n, n, dtype=torch.bool).tril(1),
            "key j is allowed only when j <= i: nothing from the future, not even the next token"),
    Mistake("a missing mask (everything sees everything)", lambda n: torch.ones(n, n, dtype=torch.bool),
            "without the mask the output at t reads the future: keep only j <= i"),
)


def check_causal_mask(causal_mask) -> CheckResult:
    """Check a learner's ``causal_mask(n) -> (n, n)`` bool tensor, rows = queries, columns = keys."""
    cases = [Case(f"{n} tokens", (n,), hint="mask[i, j] is True when key j is at or before query i",
                  mistakes=MASK_MISTAKES) for n in (1, 2, 5, 8)]
    return run_check("causal_mask", causal_mask, reference_causal_mask, cases)


# ------------------------------------------------------------------------ attention with a KV cache
def reference_attend_cached(q, k, v, cache_k, cache_v):
    """One new token: append its key and value to the caches, attend over all of them; ``(out, cache_k, cache_v)``."""
    cache_k, cache_v = torch.cat([cache_k, k], dim=2), torch.cat([cache_v, v], dim=2)
    weights = torch.softmax(q @ cache_k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ cache_v, cache_k, cache_v


def full_causal_attention(q, k, v):
    """Attention recomputed over the whole sequence ``(B, H, L, D)`` with the causal mask."""
    n = q.shape[2]
    scores = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).masked_fill(~reference_causal_mask(n), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def token_by_token(step):
    """Run a cached ``step`` over ``(B, H, L, D)`` sequences from an empty cache; the outputs, ``(B, H, L, D)``."""
    def run(q, k, v):
        b, h, _, d = q.shape
        cache_k, cache_v = q.new_zeros(b, h, 0, d), q.new_zeros(b, h, 0, d)
        outputs = []
        for t in range(q.shape[2]):
            result = step(q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1], cache_k, cache_v)
            if not (isinstance(result, tuple) and len(result) == 3 and all(isinstance(x, torch.Tensor) for x in result)):
                raise TypeError(f"attend_cached must return a tuple (out, cache_k, cache_v) of tensors, got {result!r:.80}")
            out, cache_k, cache_v = result
            if tuple(out.shape) != (b, h, 1, d) or tuple(cache_k.shape) != (b, h, t + 1, d):
                raise ValueError(f"at token {t}: out has shape {tuple(out.shape)} (expected {(b, h, 1, d)}) and "
                                 f"cache_k {tuple(cache_k.shape)} (expected {(b, h, t + 1, d)}): append along dim 2")
            outputs.append(out)
        return torch.cat(outputs, dim=2)
    return run


def _attend_before_caching(q, k, v, cache_k, cache_v):
    weights = torch.softmax(q @ cache_k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ cache_v, torch.cat([cache_k, k], dim=2), torch.cat([cache_v, v], dim=2)


def _unscaled(q, k, v, cache_k, cache_v):
    cache_k, cache_v = torch.cat([cache_k, k], dim=2), torch.cat([cache_v, v], dim=2)
    return torch.softmax(q @ cache_k.transpose(-1, -2), dim=-1) @ cache_v, cache_k, cache_v


def _softmax_over_queries(q, k, v, cache_k, cache_v):
    cache_k, cache_v = torch.cat([cache_k, k], dim=2), torch.cat([cache_v, v], dim=2)
    return torch.softmax(q @ cache_k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-2) @ cache_v, cache_k, cache_v


ATTEND_MISTAKES = (
    Mistake("off-by-one: attending before the new key and value are cached", token_by_token(_attend_before_caching),
            "append k and v to the caches first: the new token attends to itself too"),
    Mistake("a missing 1/sqrt(d) scale", token_by_token(_unscaled),
            "divide the scores q @ K^T by sqrt(d), d = q.shape[-1], as the full pass does"),
    Mistake("swapped axes: the softmax runs over the query axis", token_by_token(_softmax_over_queries),
            "the weights of one query sum to 1 over the keys: softmax over the last axis (dim=-1)"),
)


def attend_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(4)

    def qkv(b, h, n, d):
        return tuple(torch.randn(b, h, n, d, generator=generator) for _ in range(3))

    return [
        Case("one token: it attends to itself only", qkv(1, 1, 1, 4), mistakes=ATTEND_MISTAKES,
             hint="with one cached key the softmax weight is 1: the output is v"),
        Case("three tokens, one head", qkv(1, 1, 3, 4), mistakes=ATTEND_MISTAKES,
             hint="token t attends to keys 0..t, the cache after appending the new key"),
        Case("a batch of 2 sequences x 4 heads x 6 tokens", qkv(2, 4, 6, 8), mistakes=ATTEND_MISTAKES,
             hint="work on the last two axes only: (B, H, 1, D) @ (B, H, D, T) -> (B, H, 1, T)"),
    ]


def check_attend_cached(attend_cached) -> CheckResult:
    """Check a learner's ``attend_cached(q, k, v, cache_k, cache_v) -> (out, cache_k, cache_v)`` by running it
    token by token and comparing with the full causal recompute."""
    return run_check("attend_cached (token by token) vs the full causal pass", token_by_token(attend_cached),
                     full_causal_attention, attend_cases(), atol=1e-5)
