# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 4 — TD targets for every step at once, and acting with a KV cache
#
# In lesson 4 `icrl_course.dqn.td_targets` computed a target for every step of a packed batch in one
# tensor expression. Here you write it: first the bootstrap value V(s) of double and plain DQN, then
# the one-step targets with every rule for episode ends, trial boundaries and padding. Then you train
# the transformer with your targets and compare with the library's. Last, the two ideas that let the
# model both train on whole trials and act one step at a time: the causal mask and the KV cache.
#
# **You will be able to**
# - compute double-DQN and plain-DQN bootstrap values from online and target Q-values;
# - write one-step TD targets for a whole `(rows, steps)` batch by shifting along the step axis, with
#   terminal steps, time-limit cuts and padding handled;
# - drop your function into a DQN training step;
# - write the causal mask and one attention step with a KV cache, and show that acting token by token
#   gives exactly what a full pass over the finished sequence gives.
#
# **Prerequisites**: lesson 4; PyTorch indexing (`argmax`, `gather`, `torch.where`, `torch.cat`).
#
# **Time**: about 45 minutes.

# %%
import pandas as pd
import torch

from icrl_course.baselines import ExplorerAgent
from icrl_course.dqn import DQNConfig, dqn_loss, make_target, polyak_update, sequence_dqn_loss
from icrl_course.envs import MapDistribution
from icrl_course.models.transformer import QTransformer
from icrl_course.runtime import full_or_smoke
from icrl_course.tokenize import pack
from icrl_course.tokenize.compact import CompactTokenizer
from icrl_course.trials import Schedule, run_trials

# %% [markdown]
# ## Part 1 — The bootstrap value V(s)
#
# `online_q` and `target_q` have shape `(B, N, 4)`: B rows, N steps, four actions. Return the `(B, N)`
# value of every step's state:
#
# - `double=True`: the online network picks the action, the target network evaluates it,
#   `target_q[b, t, argmax_a online_q[b, t, a]]`;
# - `double=False`: `max_a target_q[b, t, a]`.

# %%
def bootstrap_values(online_q, target_q, double):
    """``(B, N)`` values V(s) at every step: double DQN or the target network's own max."""
    ### BEGIN SOLUTION
    # TODO: double: gather target_q at online_q.argmax(-1); plain: target_q.max(-1).values
    if double:
        best = online_q.argmax(dim=-1, keepdim=True)
        return target_q.gather(-1, best).squeeze(-1)
    return target_q.max(dim=-1).values
    ### END SOLUTION


# %%
from icrl_course.checks.lesson04 import check_bootstrap_values

check_bootstrap_values(bootstrap_values)

# %% [markdown]
# ## Part 2 — One-step TD targets for a packed batch
#
# Every argument but the floats is `(B, N)` as in a `StepBatch` (`rewards` float, the rest bool).
# Return `(targets, valid)`, both `(B, N)`:
#
# - `valid[b, t]` is True when step t has a target: it is a real step (`step_mask`) **and** either it
#   is terminal or its next state is step t + 1 of the same row (`has_next`). A step cut by the time
#   limit, or the last step of a trial cut by packing, has neither and is not valid;
# - `targets[b, t] = reward_scale * rewards[b, t] + gamma * V(step t + 1)`, without the second term
#   where the step is terminal. Where a step is not valid, its target can be anything.
#
# Shift the values by one step along dim 1 (the last step has no step t + 1: pad with zeros), and use
# `torch.where`. No Python loop over steps.

# %%
def td_targets(online_q, target_q, rewards, terminated, has_next, step_mask, gamma, reward_scale, double):
    """One-step TD targets ``(B, N)`` and which steps have one (``valid``, bool ``(B, N)``)."""
    ### BEGIN SOLUTION
    # TODO: values = bootstrap_values(...); next_values = values shifted left by one step; combine with torch.where
    values = bootstrap_values(online_q, target_q, double)
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    bootstrap = has_next & ~terminated
    targets = reward_scale * rewards + torch.where(bootstrap, gamma * next_values, torch.zeros_like(next_values))
    valid = step_mask & (terminated | has_next)
    return targets, valid
    ### END SOLUTION


# %%
from icrl_course.checks.lesson04 import check_td_targets

check_td_targets(td_targets)

# %% [markdown]
# ## Part 3 — Train with your targets
#
# A DQN step with your `td_targets` in place of the library's: the loss must match the library's
# `sequence_dqn_loss` (same one-step double-DQN objective) on the same batch, and training should run
# exactly as in lesson 4.

# %%
tokenizer = CompactTokenizer()
maps = MapDistribution.paper().sample_many(full_or_smoke(32, 8), seed=0, split="train")
trials = run_trials(ExplorerAgent(), maps, episodes=4, schedule=Schedule.epsilon_greedy(0.3), seed=0).trials
batch = pack([tokenizer.encode(t) for t in trials], context_length=256, pad_id=tokenizer.pad_id)
config = DQNConfig(gamma=0.9, reward_scale=30.0)


def my_loss(online_q, target_q, batch):
    targets, valid = td_targets(online_q.detach(), target_q, batch.rewards, batch.terminated, batch.has_next,
                                batch.step_mask, config.gamma, config.reward_scale, double=True)
    return dqn_loss(online_q, batch.actions, targets, valid, config.loss, config.huber_delta)


model = QTransformer(seed=0)
target_model = make_target(model)
optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
rows = []
for step in range(full_or_smoke(100, 10)):
    online_q = model.q_values(batch)
    with torch.no_grad():
        target_q = target_model.q_values(batch)
    loss = my_loss(online_q, target_q, batch)
    library_loss, _ = sequence_dqn_loss(online_q, target_q, batch, config)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    polyak_update(target_model, model, config.tau)
    rows.append({"update": step, "your loss": loss.item(), "library loss": library_loss.item()})
pd.DataFrame(rows).tail()

# %% [markdown]
# ## Part 4 — The causal mask and the KV cache
#
# During training the transformer reads a whole trial in one pass; the output at token t must depend on
# tokens 0..t only, or a Q-value would peek at the future. Attention enforces this with a **causal
# mask**: query i may attend to key j only when j <= i. Write `causal_mask(n)`, an `(n, n)` bool tensor
# with rows for queries and columns for keys.

# %%
def causal_mask(n):
    """``(n, n)`` bool: ``mask[i, j]`` is True when query i may attend to key j (j <= i)."""
    ### BEGIN SOLUTION
    # TODO: compare key positions (columns) with query positions (rows)
    positions = torch.arange(n)
    return positions[None, :] <= positions[:, None]
    ### END SOLUTION


# %%
from icrl_course.checks.lesson04 import check_causal_mask

check_causal_mask(causal_mask)

# %% [markdown]
# When the agent **acts**, the trial grows by one token per step. Recomputing attention over the whole
# prefix each step would cost a pass over up to 3,000 tokens per action. The **KV cache** keeps the keys
# and values of every earlier token; a step computes the new token's query, key and value, appends the
# key and value to the cache and attends over the cache. Because of the causal mask, earlier tokens'
# keys and values never change when a token is added, so the cached step gives exactly the output a
# full causal pass would give at that position.
#
# Write `attend_cached(q, k, v, cache_k, cache_v)` for one new token: `q`, `k`, `v` are `(B, H, 1, D)`
# (batch, heads, one token, head width), the caches `(B, H, T, D)` for the T earlier tokens. Return
# `(out, cache_k, cache_v)`: the output `(B, H, 1, D)` = softmax(q K^T / sqrt(D)) V over the T + 1
# cached keys and values, and the caches with the new key and value appended along the token axis
# (dim 2). The check runs your step token by token from an empty cache and compares every output with
# attention recomputed over the whole sequence with the causal mask.

# %%
def attend_cached(q, k, v, cache_k, cache_v):
    """Attention of one new token over every cached token and itself; returns ``(out, cache_k, cache_v)``."""
    ### BEGIN SOLUTION
    # TODO: append k and v to the caches (dim 2), then softmax(q @ K^T / sqrt(D)) @ V over the last axis
    cache_k, cache_v = torch.cat([cache_k, k], dim=2), torch.cat([cache_v, v], dim=2)
    weights = torch.softmax(q @ cache_k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
    return weights @ cache_v, cache_k, cache_v
    ### END SOLUTION


# %%
from icrl_course.checks.lesson04 import check_attend_cached

check_attend_cached(attend_cached)

# %% [markdown]
# The library's transformer does the same in `CausalSelfAttention.forward` with its `KVCache`
# (`icrl_course/models/transformer.py`), per layer, with rotary positions applied to q and k before
# they are cached; lesson 4 showed its Q-values equal a full pass's to float precision.

# %% [markdown]
# ## Recap
#
# - V(s) is the target network's value of the action the online network prefers (double DQN), or
#   the target network's own max (plain DQN).
# - A sequence's TD targets are one shifted tensor expression: the next state of step t is step t + 1
#   of the same row, where `has_next` says so.
# - Terminal steps keep the reward alone; steps without a next state in the context are masked out;
#   padding never counts.
# - The library's `td_targets` adds n-step returns on top of the same idea (`DQNConfig.n_step`).
# - The causal mask (j <= i) keeps every output from reading the future; because of it, a KV cache that
#   appends one key and value per step gives the same outputs as a full pass, at a fraction of the cost.
