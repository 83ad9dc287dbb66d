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
# # Lesson 3 — Trajectories as context
#
# An in-context learner never sees the map. Everything it knows about the lake it is standing on
# comes from its **context**: the steps of the trial so far. This lesson decides what that context
# looks like for our small transformer: how a step becomes a token, how the model learns where an
# episode ended, where its Q-values are read, how trials are packed into fixed-length rows for
# training, and why the context should hold several episodes of the *same* map.
#
# **You will be able to**
# - turn a multi-episode `Trial` into compact tokens with `icrl_course.tokenize.compact` and read
#   every field of a token;
# - explain why a cell is written as its distances to the four walls, and why that matters on maps
#   larger than any seen in training;
# - show the model where the previous episode ended (the hole or the goal), also on slippery ice;
# - say where the Q-values of each step are read, decode tokens back into the trial, and pack several
#   trials into one row with attention kept inside each trial;
# - explain *burstiness*: why a context of episodes from one map teaches in-context learning and a
#   context of episodes from many maps does not.
#
# **Prerequisites**: lessons 1 and 2 (`LakeMap`, `run_trials`, the `Trial` record, the explorer).
#
# **Time**: about 35 minutes, plus 30 for the exercise.

# %%
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from icrl_course.baselines import ExplorerAgent, RandomAgent
from icrl_course.envs import LakeMap, MapDistribution
from icrl_course.runtime import full_or_smoke
from icrl_course.tokenize import pack
from icrl_course.tokenize.compact import FIELDS, CompactTokenizer
from icrl_course.trials import Trial, run_trials

pd.set_option("display.width", 140)
tokenizer = CompactTokenizer()

# %% [markdown]
# ## 1. What the model must be able to read
#
# A trial is a stream: observe a cell, act, get a reward, land somewhere; sometimes the episode ends
# and the agent is put back on a start tile. To learn in context, the model must be able to answer
# from its context alone:
#
# - *where am I?* (the current cell);
# - *what did I just do, and what did it bring?* (the previous action and reward);
# - *where did earlier episodes end, and how?* (the holes and goals found so far).
#
# Here is a hand-made trial of two episodes on a 3 x 3 map: the first walks right and falls into the
# hole in the middle; the second goes right, right, down, down to the goal.

# %%
lake = LakeMap.from_rows(["SFF", "FHF", "FFG"])
trial = Trial.from_steps(lake, [
    # (obs, action, reward, next_obs, terminated, truncated); actions: 0 left, 1 down, 2 right, 3 up
    (0, 2, 0.0, 1, False, False), (1, 1, 0.0, 4, True, False),
    (0, 2, 0.0, 1, False, False), (1, 2, 0.0, 2, False, False), (2, 1, 0.0, 5, False, False), (5, 1, 1.0, 8, True, False),
])
print(lake)
print(f"{len(trial)} steps, {trial.num_episodes} episodes")

# %% [markdown]
# ## 2. One token per step, made of small fields
#
# `CompactTokenizer.encode` turns the trial into one token per step plus one closing token. Each
# token is a handful of small integers, its **fields**; the model gives every field its own little
# embedding table and adds the embeddings up. `explain` shows the fields in words:

# %%
encoded = tokenizer.encode(trial)
tokenizer.explain(encoded, lake)

# %% [markdown]
# Read it row by row:
#
# - row 0 starts the trial on (0,0): no previous action, no reward;
# - row 1 is (0,1), reached by moving **right** with reward 0, an ordinary step;
# - row 2 is the start tile again, but its `ended_at` field says the previous episode ended on
#   (1,1) after moving **down**, and `kind` says it was *terminated*: a hole (the reward was 0);
# - the last row closes the trial: the final step moved down onto (2,2) with reward **1**, the goal.
#   It holds no cell of its own, since no episode follows.
#
# The raw fields, one column per field, are what the model embeds:

# %%
# NBVAL_CHECK_OUTPUT
print(pd.DataFrame(tokenizer.encode_fields(trial), columns=FIELDS).to_string())
print("field sizes:", tokenizer.field_sizes)

# %% [markdown]
# Why fields and not one big vocabulary? One id per combination of (cell, action, reward, ending,
# ...) would give tens of millions of ids, most of them never seen in training, each with its own
# untrained embedding. Small fields are each seen thousands of times, and the model combines them.
# (For storage the fields are packed into one integer per token, a mixed-radix number, so a token
# still fits the shared `EncodedTrial`/`pack` interface; the model splits it back before embedding.)

# %% [markdown]
# ## 3. A cell is its distance to the four walls
#
# The agent observes its cell index `row * ncol + col`, as in gymnasium. Feeding that index to the
# model as it is trains badly: cell 5 is (1,0) on a 5-column map and (1,1) on a 4-column map, so the
# same embedding means different places on different maps. Row and column embeddings fix that on the
# training maps (3-5 x 3-5), but fail out of distribution: on a 7 x 7 map, rows 5 and 6 never
# occurred in training and their embeddings are still random.
#
# So a cell is written as its distance to each wall, capped at `edge_cap = 4`: `up = min(row, 4)`,
# `down = min(nrow - 1 - row, 4)`, and the same for columns. Every value 0..4 already occurs on a
# 5 x 5 map, so every embedding a 7 x 7 map needs has been trained; and walls are what the dynamics
# depend on (walking into one leaves you in place). The pair (up, down) still names every row of a
# map up to 9 rows:

# %%
# NBVAL_CHECK_OUTPUT
for size in (5, 7):
    up = tokenizer.cell_fields(np.arange(size) * size, size, size)[:, :2]  # first cell of every row
    print(f"{size} rows -> (up, down) per row:", [tuple(int(v) for v in pair) for pair in up])
seen = set(tokenizer.cell_fields(np.arange(25), 5, 5).ravel().tolist())
needed = set(tokenizer.cell_fields(np.arange(49), 7, 7).ravel().tolist())
print("values a 7x7 map needs that a 5x5 map never shows:", sorted(needed - seen))

# %% [markdown]
# ## 4. Where the last episode ended, even on slippery ice
#
# With gymnasium's auto-reset, the hole or goal tile where an episode ends is **never an
# observation**: the next thing the agent sees is a start tile. On non-slippery ice one could work it
# out from the previous cell and action, but on slippery ice the agent moves in the intended
# direction only a third of the time. So the first token of every episode after the first carries
# the ending tile explicitly (`end_up` ... `end_right`), with `kind` telling how the episode ended:
# *terminated* (hole or goal), *truncated* (the 100-step limit) or both.
#
# Let us find a slip into a hole in a random walk on slippery ice:

# %%
slippery = run_trials(RandomAgent(), [LakeMap.from_rows(["SFFF", "FHFH", "FFFH", "HFFG"])], episodes=30,
                      seed=1, is_slippery=True).trials[0]
ends = np.flatnonzero(slippery.terminated)
intended = np.array([slippery.lake_map.next_state(s, a) for s, a in zip(slippery.obs, slippery.actions)])
slip = int(next(t for t in ends if intended[t] != slippery.next_obs[t] and t + 1 < len(slippery)))
print(f"step {slip}: from cell {slippery.obs[slip]} the agent pressed "
      f"{['left', 'down', 'right', 'up'][slippery.actions[slip]]} (towards {intended[slip]}) "
      f"but slid into {slippery.next_obs[slip]}")
tokenizer.explain(tokenizer.encode(slippery), slippery.lake_map).iloc[slip - 1:slip + 3]

# %% [markdown]
# The token after the slip says where the agent really fell in, not where it meant to go.

# %% [markdown]
# ## 5. Where the Q-values are read
#
# The model is causal: the output at token t depends on tokens 0..t only. Token t holds the current
# cell of step t and everything that led to it, but **not** the action of step t: that action is
# only written into token t + 1 (`prev_action`). So the output at token t is exactly the input a
# Q-function needs: Q(context so far, ·), four numbers, one per action. `encoded.q_positions` lists
# those tokens; the arrays beside it (`actions`, `rewards`, `terminated`, ...) are aligned to them,
# which is all the DQN objective of lesson 4 needs.

# %%
# NBVAL_CHECK_OUTPUT
print("tokens:     ", len(encoded), "(T + 1 for T =", len(trial), "steps)")
print("q_positions:", encoded.q_positions)
print("actions:    ", encoded.actions)
print("terminated: ", encoded.terminated)

# %% [markdown]
# The closing token comes after every Q position, so it never changes a Q-value; it is there so the
# encoding is **lossless**: `decode` rebuilds the whole trial from the tokens and the map's shape.

# %%
# NBVAL_CHECK_OUTPUT
back = tokenizer.decode(encoded, lake)
print(all(np.array_equal(getattr(back, name), getattr(trial, name))
          for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "episode")))

# %% [markdown]
# ## 6. Packing trials into rows
#
# Training runs batches of rows of a fixed length (the paper packs 4,096 tokens per row). Trials have
# different lengths, so `pack` lays several into one row, first-fit, and pads the rest. Attention must
# stay inside each trial: a model that could peek at another map's trial would learn nothing useful.
# `segment_ids` says which trial each token belongs to, `position_ids` restart at 0 in every trial, and
# `attention_mask()` is causal *and* block-diagonal.

# %%
explorer = run_trials(ExplorerAgent(), [lake, LakeMap.from_rows(["SFFG"]), LakeMap.from_rows(["SH", "FG"])],
                      episodes=2, seed=0).trials
batch = pack([tokenizer.encode(t) for t in explorer], context_length=24, pad_id=tokenizer.pad_id)
print("trial lengths in tokens:", [len(t) + 1 for t in explorer])
print("segment_ids:", batch.segment_ids[0].tolist())
print("has_next:   ", batch.has_next[0].int().tolist())

# %%
mask = batch.attention_mask()[0, 0].int().numpy()
go.Figure(go.Heatmap(z=mask, colorscale=[[0, "white"], [1, "steelblue"]], showscale=False)).update_layout(
    title="Who may attend to whom", width=480, height=480,
    yaxis=dict(autorange="reversed", title="query"), xaxis=dict(title="key"))

# %% [markdown]
# Three triangles, one per trial, and padding tokens that only see themselves. `has_next` marks the
# steps whose next state is the next step *of the same episode*: the DQN targets of lesson 4
# bootstrap there and nowhere else.

# %% [markdown]
# ## 7. Burstiness: why one map per context
#
# The transformer we train has no memory of its own between trials: everything it can use about the
# current map must be in its context. Whether it *learns to use* the context depends on the training
# data. Chan et al. (2022) showed that transformers acquire in-context learning when the training
# sequences are **bursty**: items that belong together appear together in one context, so that
# reading the context pays off. Raparthy et al. (2023) found the same for sequential decisions:
# in-context learning of new tasks emerged only when a context held several trajectories from the
# *same* environment.
#
# Our trials are bursty by construction: K episodes on one map. To see why that matters, compare what
# the context reveals about the current map when the earlier episodes come from the same map (a
# trial) or from other maps (a shuffled context). We count *clues*: cells the context shows to be
# safe (stood on), a hole (an episode ended there with reward 0) or a goal (reward 1). A clue is
# right if the current map agrees.

# %%
n_maps = full_or_smoke(200, 40)
maps = MapDistribution.paper().sample_many(n_maps, seed=0, split="test")
trials = run_trials(ExplorerAgent(), maps, episodes=6, seed=0).trials


def clues(episodes: list[Trial]) -> dict[int, str]:
    """Cell -> 'safe' / 'hole' / 'goal' as the given episodes show them."""
    seen = {}
    for ep in episodes:
        for cell in ep.obs:
            seen[int(cell)] = "safe"
        if ep.terminated[-1]:
            seen[int(ep.next_obs[-1])] = "goal" if ep.rewards[-1] > 0 else "hole"
    return seen


def judge(seen: dict[int, str], lake_map: LakeMap) -> tuple[int, int]:
    """(right, wrong) clues about ``lake_map``; cells outside the map count as wrong."""
    truth = {"S": "safe", "F": "safe", "H": "hole", "G": "goal"}
    right = sum(c < lake_map.n_states and truth[lake_map.flat[c]] == label for c, label in seen.items())
    return right, len(seen) - right


rows = []
for k in range(1, 6):  # k earlier episodes in the context
    for i, t in enumerate(trials):
        if t.num_episodes <= k:
            continue
        same = [t.episode_slice(j) for j in range(k)]
        others = [trials[(i + 1 + j) % n_maps] for j in range(k)]
        shuffled = [o.episode_slice(min(j, o.num_episodes - 1)) for j, o in enumerate(others)]
        for context, episodes in (("same map (bursty)", same), ("other maps (shuffled)", shuffled)):
            right, wrong = judge(clues(episodes), t.lake_map)
            rows.append({"context": context, "earlier episodes": k, "right clues": right, "wrong clues": wrong})
summary = pd.DataFrame(rows).groupby(["context", "earlier episodes"]).mean().round(1).unstack(0)
summary

# %% [markdown]
# In a bursty context every clue is right and their number grows with each episode: the context
# pays off, so a model trained on such data is rewarded for reading it. In a shuffled context, the
# clues are about other maps: many are simply wrong for the current map, and a model trained on such
# data learns to ignore its context and fall back on a fixed policy. This is why the training data of
# lesson 5 consists of whole trials, many episodes of one map per context, and why `pack` never lets
# two trials see each other.

# %% [markdown]
# ## Recap
#
# - A step becomes **one token of small fields**: the cell as distances to the four walls, the
#   previous action and reward, where the previous episode ended and how. The model embeds each field
#   and sums them.
# - Wall distances capped at 4 take every value on 5 x 5 training maps already, so 6-7 x 6-7 maps need
#   no untrained embedding.
# - The **ending tile** is written into the next episode's first token, because with auto-reset it is
#   never observed, and on slippery ice it cannot be inferred.
# - Q-values of step t are read at token t, which has seen the step's cell but not its action; a
#   closing token makes the encoding lossless (`decode`).
# - `pack` lays trials into fixed-length rows with `segment_ids`, restarting positions and a
#   block-diagonal causal mask; `has_next` marks where TD targets may bootstrap.
# - **Burstiness**: several episodes of one map in one context is what makes reading the context pay.
#
# In the exercise you write the encoder yourself. Lesson 4 reads Q-values at these positions and
# trains them with DQN.
#
# **Further reading**: Chan et al., *Data Distributional Properties Drive Emergent In-Context
# Learning in Transformers* (NeurIPS 2022); Raparthy et al., *Generalization to New Sequential
# Decision Making Tasks with In-Context Learning* (2023); Rentschler & Roberts, *RL + Transformer = A
# General-Purpose Problem Solver* (arXiv 2501.14176), whose trials of many episodes on one map we
# reproduce.
