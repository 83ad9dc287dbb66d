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
# # Exercise 4 — TD targets for every step at once
#
# In lesson 4 `icrl_course.dqn.td_targets` computed a target for every step of a packed batch in one
# tensor expression. Here you write it: first the bootstrap value V(s) of double and plain DQN, then
# the one-step targets with every rule for episode ends, trial boundaries and padding. Then you train
# the transformer with your targets and compare with the library's.
#
# **You will be able to**
# - compute double-DQN and plain-DQN bootstrap values from online and target Q-values;
# - write one-step TD targets for a whole `(rows, steps)` batch by shifting along the step axis, with
#   terminal steps, time-limit cuts and padding handled;
# - drop your function into a DQN training step.
#
# **Prerequisites**: lesson 4; PyTorch indexing (`argmax`, `gather`, `torch.where`, `torch.cat`).
#
# **Time**: about 30 minutes.

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
# ## Recap
#
# - V(s) is the target network's value of the action the online network prefers (double DQN), or
#   the target network's own max (plain DQN).
# - A sequence's TD targets are one shifted tensor expression: the next state of step t is step t + 1
#   of the same row, where `has_next` says so.
# - Terminal steps keep the reward alone; steps without a next state in the context are masked out;
#   padding never counts.
# - The library's `td_targets` adds n-step returns on top of the same idea (`DQNConfig.n_step`).
