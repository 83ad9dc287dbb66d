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
# # Lesson 1 — Frozen Lake from scratch
#
# Every experiment in this course runs on Frozen Lake: a grid of ice with holes in it, a start and a
# goal. The in-context learner will be dropped on maps it has never seen, so we need more than
# gymnasium's one 4x4 map: a *distribution* of random maps, a way to hold some maps out for testing
# that cannot leak into training, an environment whose rules are exactly gymnasium's, and a way to
# step thousands of lakes at once. This lesson builds and checks each of them with the library module
# `icrl_course.envs`.
#
# **You will be able to**
# - drive any gymnasium environment through `reset` and `step`, and tell `terminated` from `truncated`;
# - describe a Frozen Lake map as a `LakeMap`, draw it with plotly, and compute its shortest path;
# - sample random solvable maps the way Rentschler & Roberts (2025) did (several starts and goals
#   allowed) and the way gymnasium's `generate_random_map` does, and say how they differ;
# - hold test maps out by their digest, and explain why "different seeds" is not enough;
# - check our environment against gymnasium's own, live, and step a batch of lakes with NumPy.
#
# **Prerequisites**: Python and NumPy; lesson 0. No reinforcement learning is assumed.
#
# **Time**: about 30 minutes, plus 30 for the exercise (you write the step rule and a breadth-first
# search yourself).

# %%
import time
from collections import Counter, defaultdict

import gymnasium
import numpy as np
import pandas as pd
from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv as GymnasiumFrozenLake
from gymnasium.envs.toy_text.frozen_lake import generate_random_map

from icrl_course.envs import (
    ACTION_NAMES,
    ENV_ID,
    PAPER_IN_DISTRIBUTION,
    BatchFrozenLake,
    FrozenLakeEnv,
    LakeMap,
    MapDistribution,
    map_figure,
    split_of,
)
from icrl_course.runtime import full_or_smoke

# %% [markdown]
# ## 1. The gymnasium API in five calls
#
# Gymnasium is the standard interface between reinforcement-learning agents and environments. An
# environment is made with `gymnasium.make`, started with `reset`, and advanced with `step`:
#
# - `obs, info = env.reset(seed=...)` starts an episode and returns the first observation;
# - `obs, reward, terminated, truncated, info = env.step(action)` takes one action.
#
# In `FrozenLake-v1` the observation is the agent's tile as one number, `row * ncol + col`, and the
# actions are **0 left, 1 down, 2 right, 3 up**. Landing on the goal `G` gives reward 1, every other
# tile 0. We switch the ice's slipperiness off, as the paper does: every move goes where it is meant to.

# %%
# NBVAL_CHECK_OUTPUT
env = gymnasium.make("FrozenLake-v1", is_slippery=False)
obs, info = env.reset(seed=0)
print("\n".join(row.tobytes().decode() for row in env.unwrapped.desc))
print("start:", obs, info)
for action in [2, 2, 1, 1, 1, 2]:  # right, right, down, down, down, right
    obs, reward, terminated, truncated, info = env.step(action)
    print(f"{ACTION_NAMES[action]:>5} -> obs {obs:2d}  reward {reward}  terminated {terminated}  truncated {truncated}")

# %% [markdown]
# Two flags end an episode, and they mean different things:
#
# - **`terminated`**: the episode reached a state of the game that ends it, a hole or the goal. Nothing
#   follows, so a learning agent must not count on any future reward from there.
# - **`truncated`**: time ran out. `gymnasium.make` wraps FrozenLake in a `TimeLimit` of 100 steps; the
#   agent was cut off, but the tile it stands on still has a future. (Lesson 2's Q-learning update, and
#   lesson 4's DQN targets, treat the two differently for exactly this reason.)
#
# An agent that bumps into the left wall for ever is never terminated, only truncated on step 100:

# %%
# NBVAL_CHECK_OUTPUT
obs, info = env.reset(seed=0)
steps = 0
while True:
    obs, reward, terminated, truncated, info = env.step(0)  # left, into the wall
    steps += 1
    if terminated or truncated:
        break
print(f"ended after {steps} steps: terminated={terminated}, truncated={truncated}")

# %% [markdown]
# ## 2. A map is a value: `LakeMap`
#
# `icrl_course.envs.LakeMap` holds one map as rows of letters: **S**tart, **F**rozen, **H**ole,
# **G**oal. It is immutable and comparable, and it knows its own geometry: the states of each kind of
# tile, where a move leads (walls stop you), and the shortest path from the starts to a goal by
# breadth-first search. Holes end the episode, so no path goes through one.

# %%
# NBVAL_CHECK_OUTPUT
lake = LakeMap.from_rows(["SFFH", "FHFF", "SFFH", "HFFG"])
print(lake)
print("shape", lake.shape, "| starts", lake.starts, "| goals", lake.goals, "| holes", lake.holes)
print("shortest path from each start:", lake.start_distances(), "-> fewest moves:", lake.shortest_path_length())
print("right from state 2 leads to", lake.next_state(2, 2), "| up from state 1 stays at", lake.next_state(1, 3))

# %% [markdown]
# Notice the two `S` tiles: unlike gymnasium's built-in maps, a map may have **several starts** (each
# episode begins on one of them, uniformly at random) and **several goals**. The paper's maps have
# both. Reading letters gets tiring; `map_figure` draws a map with plotly (hover over a tile to see its
# state number), optionally with the agent on it.

# %%
map_figure(lake, position=6, title="two starts; agent on state 6")

# %% [markdown]
# ## 3. Random maps: the paper's distribution and gymnasium's
#
# The in-context learner trains and is tested on *random* maps. Two recipes:
#
# - **gymnasium's** `generate_random_map(size, p)`: a square map, the start in the top-left corner,
#   the goal in the bottom-right, every other tile frozen with probability `p` (else a hole), redrawn
#   until a path exists.
# - **the paper's** (Rentschler & Roberts 2025): a size drawn from 3-5 x 3-5, then *every* tile
#   independently a start with probability 0.1, a goal with 0.1, a hole with 0.2, frozen otherwise;
#   a map is kept only if every start can reach a goal, and the nearest goal is at least 4 moves away.
#   Starts and goals can be anywhere, and there can be several of each, so an agent cannot know where
#   to go before it has looked.
#
# `MapDistribution` implements both (`MapDistribution.paper()`, `MapDistribution.gymnasium(size, p)`),
# rejection-sampling whole batches of candidate maps at once with a vectorised breadth-first search.

# %%
# NBVAL_CHECK_OUTPUT
print("gymnasium, seed 0:        ", generate_random_map(size=4, p=0.8, seed=0))
print("ours, gymnasium style:    ", list(MapDistribution.gymnasium(size=4, p=0.8).sample(seed=0).rows))
print("ours, the paper's (seed 0):", list(PAPER_IN_DISTRIBUTION.sample(seed=0).rows))

# %%
examples = PAPER_IN_DISTRIBUTION.sample_many(3, seed=1)
for i, example in enumerate(examples):
    print(f"map {i}: {example.nrow}x{example.ncol}, {len(example.starts)} start(s), {len(example.goals)} goal(s)")
    map_figure(example, title=f"map {i}", cell_px=45).show()

# %% [markdown]
# What do a thousand of the paper's maps look like? Sizes are spread over all nine shapes, a good share
# have several starts or goals, and the shortest paths start at 4 moves, as required.

# %%
# NBVAL_CHECK_OUTPUT
paper_maps = PAPER_IN_DISTRIBUTION.sample_many(1_000, seed=0)
summary = pd.DataFrame({
    "shape": [f"{m.nrow}x{m.ncol}" for m in paper_maps],
    "starts": [len(m.starts) for m in paper_maps],
    "goals": [len(m.goals) for m in paper_maps],
    "shortest path": [m.shortest_path_length() for m in paper_maps],
})
print("maps with several starts:", (summary.starts > 1).sum(), "| with several goals:", (summary.goals > 1).sum())
print("shortest path lengths:", dict(sorted(Counter(summary["shortest path"]).items())))
print("shapes:", dict(sorted(Counter(summary["shape"]).items())))

# %% [markdown]
# ## 4. Held-out maps, by digest
#
# "Unseen maps" is the whole claim of in-context learning: the model must improve on maps it never
# trained on. The usual way to split, "train on seeds 0-999, test on seeds 1000-1199", does not
# guarantee that. Different seeds can draw **the same map**, and small maps repeat often. Watch: draw
# one 3x3 paper-style map per seed, for 2,000 seeds.

# %%
# NBVAL_CHECK_OUTPUT
small = MapDistribution.paper(rows=(3, 3), cols=(3, 3), min_hops=2)
per_seed = [small.sample(seed=s) for s in range(2_000)]
distinct = {m.digest for m in per_seed}
train_by_seed, test_by_seed = per_seed[: len(per_seed) * 4 // 5], per_seed[len(per_seed) * 4 // 5:]
leaked = {m.digest for m in test_by_seed} & {m.digest for m in train_by_seed}
print(f"{len(per_seed)} seeds drew {len(distinct)} distinct maps")
print(f"{len(leaked)} of the 'test by seed' maps also appear in 'train by seed'")

# %% [markdown]
# So the library splits by the map itself. A map's **digest** is a SHA-256 of its rows, the same in
# every process and on every machine. `split_of(map)` puts a map in `"test"` when its digest falls in
# the first 20% of all digests, in `"val"` (validation) when it falls in the next 10%, else in
# `"train"`. Asking `sample_many` for a split keeps drawing until it has enough maps of that split, so
# the three sets can never share a map, whatever seeds they use.
#
# Why three? Every **choice** — which checkpoint to keep, how to act, any hyperparameter — is made by
# comparing results, and a result used to choose is no longer an unbiased estimate. So training's
# periodic evaluation and every model choice read **val** maps, and the **test** maps are touched
# once, for the numbers a lesson reports.

# %%
# NBVAL_CHECK_OUTPUT
print("digest of the 4x4 lake above:", lake.digest, "->", split_of(lake))
train = small.sample_many(50, seed=0, split="train")
val = small.sample_many(20, seed=0, split="val")
test = small.sample_many(50, seed=0, split="test")  # even the same seed
digests = [{m.digest for m in maps} for maps in (train, val, test)]
print("maps shared by train/val, train/test, val/test:",
      len(digests[0] & digests[1]), len(digests[0] & digests[2]), len(digests[1] & digests[2]))
print("splits:", Counter(split_of(m) for m in train), Counter(split_of(m) for m in val), Counter(split_of(m) for m in test))

# %% [markdown]
# ## 5. Our environment, checked against gymnasium's, live
#
# `FrozenLakeEnv(lake_map)` is a `gymnasium.Env` on any `LakeMap`. It keeps gymnasium's names
# (`desc`, `P`, `is_slippery`, `success_rate`, `reward_schedule`, `render_mode`) and is registered, so
# `gymnasium.make(ENV_ID, lake_map=...)` works too. Its transition model is gymnasium's `P` table:
# `P[s][a]` lists `(probability, next_state, reward, terminated)`. Claims like "same dynamics" are
# cheap, so here is the check itself, on random maps of both kinds, slippery and not: the `P` tables
# agree entry by entry (merging duplicate next states, which slippery moves into a wall produce).

# %%
def outcomes(p_table):
    """{(s, a): {(s', reward, terminated): probability}} with duplicates merged."""
    merged = {}
    for s, by_action in p_table.items():
        for a, transitions in by_action.items():
            total = defaultdict(float)
            for prob, next_state, reward, terminated in transitions:
                total[(next_state, float(reward), bool(terminated))] += prob
            merged[(s, a)] = {k: round(v, 12) for k, v in total.items() if v > 0}
    return merged


check_maps = PAPER_IN_DISTRIBUTION.sample_many(20, seed=2) + [
    LakeMap.from_rows(generate_random_map(size=6, seed=s)) for s in range(10)
]
for slippery in (False, True):
    same = sum(
        outcomes(FrozenLakeEnv(m, is_slippery=slippery).P) == outcomes(GymnasiumFrozenLake(desc=list(m.rows), is_slippery=slippery).P)
        for m in check_maps
    )
    print(f"is_slippery={slippery}: P tables identical on {same} of {len(check_maps)} maps")

# %% [markdown]
# Our env also draws its random numbers exactly as gymnasium's does, so with the same seed and the same
# actions the two walk the same trajectory, slips included:

# %%
ours = FrozenLakeEnv(lake, is_slippery=True, max_episode_steps=None)
theirs = GymnasiumFrozenLake(desc=list(lake.rows), is_slippery=True)
agree = ours.reset(seed=7) == theirs.reset(seed=7)
for action in np.random.default_rng(0).integers(0, 4, size=1_000).tolist():
    mine, reference = ours.step(action), theirs.step(action)
    agree &= mine == reference
    if mine[2]:
        agree &= ours.reset() == theirs.reset()
print("1,000 slippery steps, identical outcomes:", agree)

# %% [markdown]
# Rendering: `render_mode="ansi"` gives gymnasium's text (the agent's tile highlighted), and
# `render_mode="plotly"` gives a figure.

# %%
env = FrozenLakeEnv(lake, render_mode="ansi")
env.reset(seed=0)
env.step(2)
print(env.render())

# %%
plot_env = FrozenLakeEnv(lake, render_mode="plotly")
plot_env.reset(seed=1)
plot_env.step(1)
plot_env.render()

# %% [markdown]
# ## 6. Thousands of lakes at once: `BatchFrozenLake`
#
# Training an in-context learner means running thousands of trials of dozens of episodes each. Stepping
# gymnasium envs one at a time in Python spends tens of microseconds per step on function calls and
# wrappers, and that adds up to the environment, not the model, being the bottleneck.
# `BatchFrozenLake(maps)` holds B lakes (of any mix of sizes) and steps them all with a handful of NumPy
# array lookups: `step(actions)` takes a `(B,)` array and returns `(B,)` arrays.
#
# One detail matters for what comes later: **autoreset**. When a lake's episode ends in a step, it is
# reset in the same call, so the returned `obs` is already the first tile of its next episode. Where the
# ending step really landed (the hole or the goal) is in `info["final_obs"]`. A trial recorder needs
# both: the step's outcome and where the next episode begins.

# %%
# NBVAL_CHECK_OUTPUT
batch = BatchFrozenLake([["SG"], ["SFH", "FFG"], ["SFFF", "FFFG"]], seed=0)
print("start:", batch.state)
obs, reward, terminated, truncated, info = batch.step(np.array([2, 2, 2]))  # right on every lake
print("obs", obs, "| final_obs", info["final_obs"], "| reward", reward, "| terminated", terminated)
obs, reward, terminated, truncated, info = batch.step(np.array([2, 2, 1]))
print("obs", obs, "| final_obs", info["final_obs"], "| reward", reward, "| terminated", terminated)
print("steps into the current episode:", batch.elapsed)

# %% [markdown]
# Lake 0 reached its goal on both steps, and each time was back on its start at once; lake 1 fell
# into its hole on the second step, and lake 2 is two steps into its first episode. The test suite checks this env against the single env step by step, and its
# slippery moves against the `P` table statistically.
#
# How much faster is it? A rough look on this machine (the careful measurement, with repeats and both
# slipperinesses, is `python benchmarks/env_throughput.py`):

# %%
num_lakes, rounds = 1_024, full_or_smoke(200, 50)
batch = BatchFrozenLake(PAPER_IN_DISTRIBUTION.sample_many(num_lakes, seed=3), seed=0)
actions = np.random.default_rng(0).integers(0, 4, size=(rounds, num_lakes))
start = time.perf_counter()
for row in actions:
    batch.step(row)
batch_rate = rounds * num_lakes / (time.perf_counter() - start)

single = gymnasium.make(ENV_ID, lake_map=lake)
single.reset(seed=0)
start = time.perf_counter()
for action in actions[:, 0].tolist() * 20:
    _, _, terminated, truncated, _ = single.step(action)
    if terminated or truncated:
        single.reset()
single_rate = rounds * 20 / (time.perf_counter() - start)
print(f"one env in a Python loop: {single_rate:12,.0f} steps/s")
print(f"BatchFrozenLake, {num_lakes} lakes: {batch_rate:12,.0f} lake-steps/s  (about {batch_rate / single_rate:.0f}x)")

# %% [markdown]
# ## Recap
#
# - A gymnasium env is driven by `reset` and `step`; `terminated` means the game ended (hole or goal),
#   `truncated` means time ran out (100 steps), and learning treats them differently.
# - `LakeMap` is one map as a value: its tiles, its moves, its shortest path, its stable digest;
#   `map_figure` draws it.
# - `MapDistribution.paper()` draws the paper's maps (3-5 x 3-5, several starts and goals, at least 4
#   moves to the nearest goal); `MapDistribution.gymnasium()` draws gymnasium's corner-to-corner maps.
# - Test maps are held out **by digest** (`split_of`, `sample_many(split=...)`): different seeds can
#   draw the same map, digests cannot lie.
# - `FrozenLakeEnv` has gymnasium's dynamics, checked here against gymnasium itself; `BatchFrozenLake`
#   steps many lakes at once, resets each finished lake in the same call and reports where it ended in
#   `info["final_obs"]`.
#
# **Exercise 1** (`exercises/01_frozen_lake.ipynb`): write the step rule and the solvability search
# yourself, with a check after each. **Next**, lesson 2 runs agents on these lakes for multi-episode
# trials and builds the yardsticks every in-context learner is measured against.
