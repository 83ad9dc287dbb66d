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
# # Exercise 7 — Testing a claim yourself
#
# Lesson 7 tested the paper's five claims with library functions. Here you write three of the pieces
# yourself: the property that makes a map and a context a stitching case, the paired bootstrap interval
# every comparison used, and the count of episodes an agent needs to recover after its map changes.
#
# **You will be able to**
# - check a stitching case by breadth-first search, and build one on a training-sized map;
# - compute a paired percentile-bootstrap interval of a difference between two agents on the same maps;
# - measure episodes to recover after a switch from a tidy results table.
#
# **Prerequisites**: lesson 7; breadth-first search; NumPy indexing; pandas `groupby`.
#
# **Time**: about 20 minutes.

# %%
from collections import deque

import numpy as np

from icrl_course.envs import LakeMap
from icrl_course.envs.scenarios import StitchingCase, paper_stitching_case

# %% [markdown]
# ## Part 1 — The stitching property
#
# A map, its start tile and a context of recorded episodes (each a list of the tiles it visited, from
# its first tile to where its last move landed) form a **stitching case** when:
#
# 1. every episode moves one tile at a time (`lake_map.next_state(tile, action)` for some action) and
#    passes no hole or goal before its last tile;
# 2. no episode starts on the start tile and ends on a goal;
# 3. some episode `A` starting on the start tile and some other episode `B` ending on a goal share a
#    tile, and `A` up to that tile followed by `B` from that tile is as short as the shortest route
#    from the start to a goal (breadth-first search; holes and goals end a path).

# %%
def is_stitching_case(lake_map, start, episodes):
    """True when ``(lake_map, start, episodes)`` is a stitching case (the three rules above)."""
    ### BEGIN SOLUTION
    # TODO: check the moves, then no episode from the start to a goal, then search the joins against BFS
    flat = lake_map.flat
    for tiles in episodes:
        if any(b not in {lake_map.next_state(a, m) for m in range(4)} or a == b for a, b in zip(tiles, tiles[1:])):
            return False
        if any(flat[t] in "HG" for t in tiles[:-1]):
            return False
        if tiles[0] == start and flat[tiles[-1]] == "G":
            return False
    dist, queue = {start: 0}, deque([start])
    while queue:
        here = queue.popleft()
        if flat[here] in "HG":
            continue
        for there in {lake_map.next_state(here, m) for m in range(4)}:
            if there not in dist:
                dist[there] = dist[here] + 1
                queue.append(there)
    shortest = min(d for t, d in dist.items() if flat[t] == "G")
    for i, a in enumerate(episodes):
        for j, b in enumerate(episodes):
            if i == j or a[0] != start or flat[b[-1]] != "G":
                continue
            for x, tile in enumerate(a):
                for y, other in enumerate(b):
                    if tile == other and x + len(b) - 1 - y == shortest:
                        return True
    return False
    ### END SOLUTION


# %%
from icrl_course.checks.lesson07 import check_stitching_property

check_stitching_property(is_stitching_case)

# %% [markdown]
# Now build one. Below is a 4x4 map with one start (0) and one goal (15). Write two episodes: one from
# the start that ends in a hole, one from elsewhere that reaches the goal, so that joining them gives a
# shortest route. `StitchingCase(lake_map, start, episodes, stitched)` holds them, with the joined
# route as `stitched`.

# %%
def my_stitching_case():
    """A stitching case on the 4x4 map below."""
    lake_map = LakeMap.from_rows(["SFFF", "FHFH", "FFFH", "HFFG"])
    ### BEGIN SOLUTION
    # TODO: one episode 0 -> ... into a hole, one from a frozen tile ... -> 15, meeting on a shortest route
    episodes = ((0, 4, 8, 12), (4, 8, 9, 10, 14, 15))
    return StitchingCase(lake_map, 0, episodes, (0, 4, 8, 9, 10, 14, 15))
    ### END SOLUTION


# %%
from icrl_course.checks.lesson07 import check_my_stitching_case

check_my_stitching_case(my_stitching_case())

# %% [markdown]
# ## Part 2 — A paired bootstrap interval
#
# `a[i]` and `b[i]` are two agents' values on map `i`. Resample the **map indices** with replacement,
# `n_boot` times, using the same indices for both agents; the interval is the 2.5th and 97.5th
# percentiles of the resampled mean differences. Return `(mean, low, high)` of `a - b`.

# %%
def paired_ci(a, b, n_boot=4000, seed=0):
    """Mean of a - b over maps and its paired 95% percentile-bootstrap interval."""
    ### BEGIN SOLUTION
    # TODO: idx = rng.integers(0, n, size=(n_boot, n)); the same idx for a and b
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(n_boot, len(diff)))
    low, high = np.percentile(diff[idx].mean(axis=1), [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)
    ### END SOLUTION


# %%
from icrl_course.checks.lesson07 import check_paired_ci

check_paired_ci(paired_ci)

# %% [markdown]
# ## Part 3 — Episodes to recover after a switch
#
# `rows` is one agent's tidy table from `icrl_course.experiments` (columns `lake`, `episode`,
# `switched`, `success`, ...). The switch episode `k` is the first with `switched` True. For every map
# whose episode `k - 1` succeeded, count the episodes on the new map until the first success (1 when
# episode `k` succeeds); a map that never succeeds again counts one more than the episodes after the
# switch. Return `{lake: episodes}`.

# %%
def episodes_to_recover(rows):
    """``{lake: episodes to the first success after the switch}`` for maps that succeeded just before it."""
    ### BEGIN SOLUTION
    # TODO: k from the switched column; keep maps whose episode k - 1 succeeded; censor at after + 1
    k = int(rows.loc[rows["switched"], "episode"].min())
    after = int(rows["episode"].max()) + 1 - k
    out = {}
    for lake, part in rows.groupby("lake"):
        if part.loc[part["episode"] == k - 1, "success"].iloc[0] <= 0:
            continue
        wins = part.loc[part["switched"] & (part["success"] > 0), "episode"]
        out[int(lake)] = float(wins.min() - k + 1) if len(wins) else float(after + 1)
    return out
    ### END SOLUTION


# %%
from icrl_course.checks.lesson07 import check_episodes_to_recover

check_episodes_to_recover(episodes_to_recover)

# %% [markdown]
# ## Recap
#
# - A stitching case is a property you can check by breadth-first search, whoever built the case.
# - A paired bootstrap resamples map indices once for both agents: the shared difficulty of each map
#   cancels in the difference.
# - Episodes to recover counts from the switch, over maps that had something to recover, and censors
#   the maps that never do.
