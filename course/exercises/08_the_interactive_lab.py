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
# # Exercise 8 — From clicks to context: recording a drawn episode
#
# In lesson 8's stitching lab you drew episodes by clicking tiles, and the lab handed them to the
# model as its context. Between the clicks and the context sits one small function: it turns a list
# of tiles into the steps a trial records, the same `(obs, action, reward, next_obs, terminated,
# truncated)` tuples that `Trial.from_steps` takes and `run_trials(..., prefix=...)` plays back.
# Write it, then use it to hand the model a context of your own.
#
# **You will be able to**
# - turn a path on a map into recorded steps: actions from neighbouring tiles, rewards, and how an
#   episode ends (terminated on a hole or goal, truncated when it is cut off on the ice);
# - give any agent a hand-made context with `run_trials(..., prefix=[...])` and read what it does next.
#
# **Prerequisites**: lesson 8 (the stitching lab), lesson 2 (`Trial`, `run_trials`).
#
# **Time**: about 20 minutes.

# %%
import torch

from icrl_course.checkpoints import load_agent
from icrl_course.envs import LakeMap
from icrl_course.envs.scenarios import paper_stitching_case
from icrl_course.plots import episode_path
from icrl_course.trials import Trial, run_trials

torch.set_num_threads(1)

# %% [markdown]
# ## Part 1 — Recorded steps from tiles
#
# Write `recorded_steps(lake_map, tiles)`. `tiles` are the states one episode visited, in order: where
# it started, then where each move landed; consecutive tiles are neighbours. Return one tuple per move:
#
# - `obs` the tile the move starts from, `next_obs` the tile it lands on;
# - `action` the move between them: **0 left, 1 down, 2 right, 3 up** (`lake_map.next_state(state,
#   action)` says where an action leads);
# - `reward` `1.0` when the move lands on a goal, else `0.0`;
# - only the **last** move ends the episode: `terminated` when it lands on a hole or goal, `truncated`
#   when it lands on frozen ice or a start (the episode was cut off there); every earlier move has both False.

# %%
def recorded_steps(lake_map, tiles):
    """``(obs, action, reward, next_obs, terminated, truncated)`` for each move of the episode ``tiles``."""
    ### BEGIN SOLUTION
    # TODO: for each pair of consecutive tiles find the action that joins them, then mark how the last move ends
    steps = []
    for i, (here, there) in enumerate(zip(tiles[:-1], tiles[1:])):
        action = next(a for a in range(4) if lake_map.next_state(here, a) == there)
        tile = lake_map.flat[there]
        last = i == len(tiles) - 2
        steps.append((here, action, 1.0 if tile == "G" else 0.0, there, last and tile in "HG", last and tile not in "HG"))
    return steps
    ### END SOLUTION


# %%
from icrl_course.checks.lesson08 import check_recorded_steps

check_recorded_steps(recorded_steps)

# %% [markdown]
# ## Part 2 — Your own context
#
# The paper's stitching map, with its two recorded episodes turned into one prefix by your function.
# Play the shipped model for one greedy episode from the start, with and without the context.

# %%
case = paper_stitching_case()
steps = [step for tiles in case.episodes for step in recorded_steps(case.lake_map, list(tiles))]
prefix = Trial.from_steps(case.lake_map, steps)
for name, context in (("with the two episodes", [prefix]), ("with no context", None)):
    trial = run_trials(load_agent("paper-small"), [case.lake_map], episodes=1, seed=0, prefix=context,
                       max_episode_steps=25).trials[0]
    print(f"{name}: walked {episode_path(trial, 0).tolist()}, reward {trial.rewards.sum():.0f}")

# %% [markdown]
# Now change the second episode: cut it short (`(8, 9)`), or let it fall straight into the hole below
# the start (`(8, 12)`), and run the cell again. When does the model still find the stitched route
# `8 → 9 → 10 → 14 → 18 → 22`, and when is there nothing left to stitch?

# %% [markdown]
# ## Recap
#
# - A drawn episode becomes context through one small, checkable function: actions from neighbouring
#   tiles, the goal's reward, and an ending that says *how* the episode stopped.
# - `run_trials(..., prefix=[trial])` gives every agent the same context, so the model, its ablation
#   and the explorer are compared fairly on a case you made.
