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
# # Exercise 3 — Write the compact encoder
#
# Lesson 3 turned trials into compact tokens with `CompactTokenizer`. Here you write that encoder
# yourself: first a cell's distances to the walls, then the fields of every token of a trial. Then
# you feed your tokens to a transformer and check that it reads exactly what the library's would.
#
# **You will be able to**
# - write a cell as its capped distances to the four walls, for a batch of cells at once;
# - encode a whole multi-episode trial into one token per step plus a closing token, carrying the
#   previous action, the reward, and where and how the previous episode ended;
# - pack your encoded trials and run them through the Q-network.
#
# **Prerequisites**: lesson 3; NumPy indexing (`divmod`, `np.where`, `np.concatenate`).
#
# **Time**: about 30 minutes.

# %%
import numpy as np
import pandas as pd
import torch

from icrl_course.baselines import ExplorerAgent
from icrl_course.envs import LakeMap
from icrl_course.models.transformer import QTransformer
from icrl_course.tokenize import EncodedTrial, pack
from icrl_course.tokenize.compact import (AFTER_BOTH, AFTER_TERMINATED, AFTER_TRUNCATED, FIELDS, NO_ACTION, NO_REWARD,
                                          STEP, TRIAL_START, CompactTokenizer)
from icrl_course.trials import Trial, run_trials

tokenizer = CompactTokenizer()
print(FIELDS)

# %% [markdown]
# ## Part 1 — Wall distances
#
# A cell `obs = row * ncol + col` becomes four numbers, each capped at `cap`:
#
# | field | value |
# | --- | --- |
# | up | `min(row, cap)` |
# | down | `min(nrow - 1 - row, cap)` |
# | left | `min(col, cap)` |
# | right | `min(ncol - 1 - col, cap)` |
#
# `obs` is an array of cells; return an integer array of shape `(len(obs), 4)`.

# %%
def wall_distances(obs, nrow, ncol, cap=4):
    """``(n, 4)`` distances (up, down, left, right) of each cell in ``obs`` to the walls, capped at ``cap``."""
    ### BEGIN SOLUTION
    # TODO: row, col = np.divmod(obs, ncol); stack the four capped distances as columns
    row, col = np.divmod(np.asarray(obs), ncol)
    return np.stack([np.minimum(row, cap), np.minimum(nrow - 1 - row, cap),
                     np.minimum(col, cap), np.minimum(ncol - 1 - col, cap)], axis=-1)
    ### END SOLUTION


# %%
from icrl_course.checks.lesson03 import check_wall_distances

check_wall_distances(wall_distances)

# %% [markdown]
# ## Part 2 — The fields of every token
#
# A trial of T steps becomes T + 1 tokens of 11 fields each, in the order of `FIELDS`. Token t
# (t < T) is the state where action t is chosen:
#
# - **cell** (`up, down, left, right`): `wall_distances` of `obs[t]`;
# - **prev_action**: the action of step t - 1 (`NO_ACTION` = 4 at t = 0);
# - **prev_reward**: the reward of step t - 1 as `1 + tokenizer.reward_values.index(r)`, i.e. 1 for
#   reward 0 and 2 for reward 1 (`NO_REWARD` = 0 at t = 0);
# - **ending tile** (`end_up ... end_right`): if step t - 1 ended its episode, `wall_distances` of
#   where it *landed*, `next_obs[t - 1]` (the hole, the goal, or where time ran out); otherwise
#   "none", the value `tokenizer.coord_none` (= cap + 1 = 5) in all four;
# - **kind**: `TRIAL_START` at t = 0; after an ending step `AFTER_TERMINATED`, `AFTER_TRUNCATED` or
#   `AFTER_BOTH` (both flags set); `STEP` otherwise.
#
# The **closing token** T follows the same rules for step T - 1, except its cell: "none" (5 in all
# four) if step T - 1 ended its episode, else `wall_distances` of `next_obs[T - 1]`.
#
# Note that the first token of a new episode keeps the action and reward of the step that ended the
# previous one: together with the ending tile, they tell the model what killed (or rewarded) it.
#
# A loop over the steps is fine; a vectorised version (build the T + 1 "previous step" columns with
# `np.concatenate([[...], ...])`) is shorter.

# %%
def encode_fields(trial):
    """The ``(T + 1, 11)`` integer fields of a trial's compact tokens (see the table above)."""
    ### BEGIN SOLUTION
    # TODO: build the cell, prev_action, prev_reward, ending tile and kind columns, then stack them
    nrow, ncol = trial.lake_map.shape
    none = tokenizer.coord_none
    ends = trial.terminated | trial.truncated
    n = len(trial)
    # cell of tokens 0..T: the observations, then the closing token's cell
    cell = np.full((n + 1, 4), none)
    cell[:n] = wall_distances(trial.obs, nrow, ncol)
    if not ends[-1]:
        cell[n] = wall_distances([trial.next_obs[-1]], nrow, ncol)[0]
    prev_action = np.concatenate([[NO_ACTION], trial.actions])
    reward_index = np.array([1 + tokenizer.reward_values.index(r) for r in trial.rewards])
    prev_reward = np.concatenate([[NO_REWARD], reward_index])
    ended = np.full((n + 1, 4), none)
    ended[1:][ends] = wall_distances(trial.next_obs[ends], nrow, ncol)
    after = np.where(trial.terminated & trial.truncated, AFTER_BOTH,
                     np.where(trial.terminated, AFTER_TERMINATED, AFTER_TRUNCATED))
    kind = np.concatenate([[TRIAL_START], np.where(ends, after, STEP)])
    return np.concatenate([cell, prev_action[:, None], prev_reward[:, None], ended, kind[:, None]], axis=1)
    ### END SOLUTION


# %%
from icrl_course.checks.lesson03 import check_encode_fields

check_encode_fields(encode_fields)

# %% [markdown]
# Look at your fields for a real trial of the explorer on a 4 x 4 map. Find the rows right after each
# episode end: do they show the hole it fell into?

# %%
lake = LakeMap.from_rows(["SFFH", "FHFF", "FFHF", "HFFG"])
trial = run_trials(ExplorerAgent(), [lake], episodes=4, seed=0).trials[0]
print(lake)
pd.DataFrame(encode_fields(trial), columns=FIELDS)

# %% [markdown]
# ## Part 3 — Your tokens through the Q-network
#
# `tokenizer.token_ids` packs each row of fields into one integer id; wrap the ids in an
# `EncodedTrial` (Q-values read at tokens 0..T-1, the step arrays alongside), pack two trials into one
# row and run an (untrained) `QTransformer`. If your encoder is right, its Q-values equal those
# computed from the library's tokens.

# %%
def my_encode(trial):
    tokens = tokenizer.token_ids(encode_fields(trial))
    return EncodedTrial(tokens, np.arange(len(trial)), trial.actions, trial.rewards, trial.terminated,
                        trial.truncated, trial.episode)


trials = run_trials(ExplorerAgent(), [lake, LakeMap.from_rows(["SFF", "FHF", "FFG"])], episodes=3, seed=1).trials
model = QTransformer().eval()
with torch.no_grad():
    mine = model.q_values(pack([my_encode(t) for t in trials], context_length=128, pad_id=tokenizer.pad_id))
    library = model.q_values(pack([tokenizer.encode(t) for t in trials], context_length=128, pad_id=tokenizer.pad_id))
print("Q-values:", tuple(mine.shape), "(rows, steps, actions)")
print("largest difference from the library's:", float((mine - library).abs().max()))

# %% [markdown]
# ## Recap
#
# - A cell is four capped wall distances: shape-aware, and with no value a 7 x 7 map needs that a
#   5 x 5 map lacks.
# - Each token describes the state where an action is chosen and *how it got there*: previous
#   action, reward and, after an episode end, where and how that episode ended. The closing token
#   records the last step's outcome, so the encoding is lossless.
# - Packed into ids, your tokens drive the same Q-network as the library's. Lesson 4 trains those
#   Q-values with DQN.
