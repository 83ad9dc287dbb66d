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
# # Exercise 1 — The step rule and the solvability search
#
# Lesson 1 used `icrl_course.envs` to make, check and step Frozen Lakes. Here you write the two pieces
# of it that everything else rests on: the rule that moves the agent one step on the ice, and the
# breadth-first search that decides whether a random map is worth keeping. A check after each tells
# you, case by case, whether your function agrees with the library.
#
# **You will be able to**
# - implement Frozen Lake's non-slippery dynamics: walls, holes, goals, rewards and termination;
# - write a breadth-first search over a grid and use it to accept or reject random maps;
# - test a function against a reference on edge cases first.
#
# **Prerequisites**: lesson 1 (`LakeMap`, the gymnasium API); Python lists, tuples and
# `collections.deque`.
#
# **Time**: about 30 minutes.

# %%
from collections import deque

import numpy as np

from icrl_course.envs import FrozenLakeEnv, LakeMap, map_figure

# %% [markdown]
# ## Part 1 — One step on the ice
#
# Write `step(lake_map, state, action)` for ice that is **not** slippery. It returns
# `(next_state, reward, terminated)`:
#
# - states are `row * ncol + col`; actions are **0 left, 1 down, 2 right, 3 up**;
# - a move into the edge of the map leaves the agent where it is (there is no wrapping round to the
#   next row);
# - landing on the goal `G` gives reward `1.0`; any other tile gives `0.0`;
# - landing on a hole `H` or a goal `G` ends the episode (`terminated` True); `S` and `F` tiles are
#   ordinary ice.
#
# `state` is always a start or frozen tile (an episode never steps from a hole or a goal). From the map
# you need `lake_map.rows` (a tuple of strings, one per row), `lake_map.nrow` and `lake_map.ncol`.
# Do not call `lake_map.next_state`: that is the library's answer to half of this exercise.

# %%
def step(lake_map, state, action):
    """``(next_state, reward, terminated)`` after ``action`` from ``state`` on non-slippery ice."""
    ### BEGIN SOLUTION
    # TODO: split state into (row, col), move and clamp at the walls, then read the tile you land on
    row, col = divmod(state, lake_map.ncol)
    d_row, d_col = [(0, -1), (1, 0), (0, 1), (-1, 0)][action]
    row = min(max(row + d_row, 0), lake_map.nrow - 1)
    col = min(max(col + d_col, 0), lake_map.ncol - 1)
    tile = lake_map.rows[row][col]
    return row * lake_map.ncol + col, 1.0 if tile == "G" else 0.0, tile in "HG"
    ### END SOLUTION


# %%
from icrl_course.checks.lesson01 import check_step

check_step(step)

# %% [markdown]
# Your rule against gymnasium's: the library's `FrozenLakeEnv` has gymnasium's dynamics (lesson 1
# checked it live). Walk 300 random steps with both on a map and count the disagreements.

# %%
lake = LakeMap.from_rows(["SFFFH", "FHFFF", "FFSHG", "HFFFF"])
env = FrozenLakeEnv(lake)
state, _ = env.reset(seed=0)
disagreements = 0
for action in np.random.default_rng(0).integers(0, 4, size=300).tolist():
    expected = env.step(action)[:3]
    disagreements += step(lake, state, action) != expected
    state = expected[0]
    if expected[2]:
        state, _ = env.reset()
print("disagreements with FrozenLakeEnv in 300 steps:", disagreements)

# %% [markdown]
# ## Part 2 — Is this map worth keeping? Breadth-first search
#
# The paper keeps a random map only if it is **solvable**: every start tile can reach a goal without
# stepping into a hole, and the nearest goal is at least `min_hops` moves from the nearest start (4 in
# the paper, so that no map is trivial). Write `is_solvable(lake_map, min_hops)` returning `True` or
# `False`.
#
# Breadth-first search finds fewest-move paths on a grid: start a queue with the start tile at
# distance 0; repeatedly take the oldest tile from the queue, and put each of its up-to-four
# neighbours that is inside the map, not a hole and not seen before into the queue with distance + 1.
# Because tiles leave the queue in order of distance, the first goal you take out is the nearest.
#
# Things to get right:
#
# - holes end the episode, so a path never passes through an `H` tile;
# - **every** start must reach a goal (an episode may begin on any of them), but `min_hops` is about
#   the **nearest** start and the nearest goal;
# - distances count moves, not tiles: `["SFG"]` is 2 moves.
#
# `lake_map.starts` gives the start states; `lake_map.rows`, `nrow` and `ncol` the rest. (The library's
# own `lake_map.is_solvable` is what your function is checked against, so do not call it here.)

# %%
def is_solvable(lake_map, min_hops):
    """True when every start reaches a goal and the nearest start is at least ``min_hops`` moves from one."""
    ### BEGIN SOLUTION
    # TODO: breadth-first search from each start; remember the distance at which it first meets a goal
    def moves_to_nearest_goal(start):
        distance, queue = {start: 0}, deque([start])
        while queue:
            state = queue.popleft()
            row, col = divmod(state, lake_map.ncol)
            if lake_map.rows[row][col] == "G":
                return distance[state]
            for d_row, d_col in [(0, -1), (1, 0), (0, 1), (-1, 0)]:
                r, c = row + d_row, col + d_col
                neighbour = r * lake_map.ncol + c
                if 0 <= r < lake_map.nrow and 0 <= c < lake_map.ncol and lake_map.rows[r][c] != "H" and neighbour not in distance:
                    distance[neighbour] = distance[state] + 1
                    queue.append(neighbour)
        return None

    distances = [moves_to_nearest_goal(start) for start in lake_map.starts]
    return all(d is not None for d in distances) and min(distances) >= min_hops
    ### END SOLUTION


# %%
from icrl_course.checks.lesson01 import check_is_solvable

check_is_solvable(is_solvable)

# %% [markdown]
# ## Part 3 — Your search as a map sampler
#
# With `is_solvable` you can build the paper's sampler yourself: draw every tile independently (start
# 0.1, goal 0.1, hole 0.2, frozen 0.6) and keep the boards your function accepts. How picky is the rule?

# %%
rng = np.random.default_rng(0)
drawn, kept = 0, []
while len(kept) < 5:
    nrow, ncol = rng.integers(3, 6, size=2)
    rows = ["".join(r) for r in rng.choice(list("SGHF"), size=(nrow, ncol), p=[0.1, 0.1, 0.2, 0.6])]
    drawn += 1
    if "S" in "".join(rows) and "G" in "".join(rows) and is_solvable(LakeMap.from_rows(rows), 4):
        kept.append(LakeMap.from_rows(rows))
print(f"kept {len(kept)} of {drawn} random boards")
map_figure(kept[0], title="the first board your sampler kept")

# %% [markdown]
# Most boards are rejected: no start, no goal, a goal too close, or a start walled in by holes. That is
# why the library's `MapDistribution` checks whole batches of candidates at once with a vectorised
# version of this same search.

# %% [markdown]
# ## Recap
#
# - One non-slippery step: split the state into row and column, clamp the move at the walls, read the
#   tile; a hole or goal terminates, only a goal rewards.
# - Breadth-first search gives fewest-move distances on a grid; holes block it, and the first goal it
#   meets is the nearest.
# - A map is solvable when every start reaches a goal and the nearest is at least `min_hops` moves
#   away; rejection sampling with that test gives the paper's map distribution.
