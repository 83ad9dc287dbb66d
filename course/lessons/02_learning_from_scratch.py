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
# # Lesson 2 — Learning from scratch is slow: trials and the yardsticks
#
# An in-context learner is judged by one picture: its success rate in episode 1, 2, 3, ... of a
# *trial* on a map it has never seen. That picture means nothing on its own. Is a climb from 0.3 to
# 0.9 over ten episodes fast or slow? This lesson builds the machinery that runs any agent for
# multi-episode trials, and four agents that need no training at all, whose curves every later
# curve is read against.
#
# **You will be able to**
# - run any agent for trials of K episodes on a batch of maps with `icrl_course.trials.run_trials`,
#   and read the tidy results table it returns;
# - choose an exploration schedule: the paper's staircase or plain epsilon-greedy;
# - compute success per episode with bootstrap confidence intervals over maps, and draw the
#   in-context learning curve of several agents on one figure;
# - say what each yardstick (random, tabular Q-learning, a map-memorising explorer, an oracle)
#   tells us, and why tabular learning needs tens of episodes where the explorer needs a few.
#
# **Prerequisites**: lesson 1 (`LakeMap`, `MapDistribution`, `BatchFrozenLake`). Having met tabular
# Q-learning once (for example in unit 2 of the Hugging Face Deep RL course) helps; the exercise
# rebuilds its update.
#
# **Time**: about 40 minutes, plus 30 for the exercise.

# %%
import time

import numpy as np
import pandas as pd

from icrl_course.baselines import ExplorerAgent, OracleAgent, QLearningAgent, RandomAgent, explorer_choices
from icrl_course.envs import ACTION_NAMES, LakeMap, MapDistribution
from icrl_course.plots import learning_curve, trial_figure
from icrl_course.runtime import full_or_smoke
from icrl_course.trials import Schedule, episode_table, run_trials

pd.set_option("display.width", 120)

# %% [markdown]
# ## 1. A trial: K episodes on one map
#
# The agent is dropped on a Frozen Lake map it does not know. Like gymnasium's `FrozenLake-v1`, it
# observes only the index of its own tile (`row * ncol + col`), the reward (1 on reaching a goal) and
# when an episode ends (a hole, a goal, or the 100-step limit). After an episode ends it starts again
# on the **same map**: K such episodes make a *trial*.
#
# Within one episode there is little to learn. Across episodes there is a lot: where the holes were,
# which way the goal lay. An agent that carries that knowledge from one episode to the next gets
# better during the trial. A transformer that reads the whole trial as its context can do it with no
# weight update: that is in-context reinforcement learning.
#
# `run_trials(agent, maps, episodes=K)` runs one trial per map. Here is a random agent on one map for
# three episodes.

# %%
lake = LakeMap.from_rows(["SFFH", "FHFF", "FFHF", "HFFG"])
results = run_trials(RandomAgent(), [lake], episodes=3, seed=0)
trial = results.trials[0]
print(lake, "\n")
print(f"{len(trial)} steps in {trial.num_episodes} episodes; fields: obs, actions, rewards, next_obs, "
      "terminated, truncated, episode")

# %% [markdown]
# A `Trial` keeps every step in order: the observation where the action was taken, the action
# actually executed, the reward, where the step landed (`next_obs`, the hole or goal itself on an
# ending step), and whether it ended the episode. It is the record every later lesson consumes: the
# tokenizers of lesson 3 turn it into model inputs.

# %%
pd.DataFrame({"episode": trial.episode, "obs": trial.obs, "action": [ACTION_NAMES[a] for a in trial.actions],
              "reward": trial.rewards, "next_obs": trial.next_obs, "terminated": trial.terminated}).head(8)

# %% [markdown]
# Next to the trials, `run_trials` returns a **tidy table**: one row per map × episode, with the
# return, the length, how the episode ended, and the seed. Every summary in the course starts from it.

# %%
results.table

# %% [markdown]
# ## 2. What an agent is: `begin`, `act`, `observe`
#
# Every agent in the course, from the random one to the Llama Q-network of lesson 6, implements three
# methods, and all three work on a **batch of B lakes at once**:
#
# - `begin(maps, rng)` starts a fresh trial on each map. An agent forgets what it learned in earlier
#   trials; only the oracle may read the tiles, every other agent may use a map's shape alone.
# - `act(obs)` gets the `(B,)` current observations and returns `(B,)` actions.
# - `observe(step)` gets the `Transition` that followed: `obs`, the executed `actions`, `rewards`,
#   `next_obs`, `terminated`, `truncated`, each `(B,)`, and `active`. Lakes finish their K episodes at
#   different times; a finished lake keeps being stepped as padding with `active` False, and its steps
#   are not recorded.
#
# An agent that always walks right is four lines:

# %%
class AlwaysRight:
    name = "always right"

    def begin(self, maps, rng):
        self.num_lakes = len(maps)

    def act(self, obs):
        return np.full(self.num_lakes, 2)

    def observe(self, step):
        pass


corridors = [LakeMap.from_rows(["SFG"]), LakeMap.from_rows(["SFFFG"]), LakeMap.from_rows(["SHG"])]
run_trials(AlwaysRight(), corridors, episodes=2, seed=0).table[["lake", "episode", "length", "success", "fell_in_hole"]]

# %% [markdown]
# ## 3. Exploration schedules
#
# Rentschler & Roberts evaluate their model with forced exploration: in each step of an episode the
# model's action is used only with some probability, and a uniformly random action replaces it
# otherwise. That probability climbs 0, 0.1, ..., 0.9 for two episodes each, then stays at 1.0 for the
# last ten of 30 episodes. The early random steps fill the context with varied experience; the last
# ten episodes show what the model does with it on its own.
#
# A `Schedule` says, for each episode index (from 0), the probability that the agent's own action is
# used. `Schedule.paper()` is the staircase; `Schedule.epsilon_greedy(eps)` is plain epsilon-greedy
# (optionally decaying); `Schedule.greedy()`, the default, never replaces anything. The agent always
# observes the action that was executed, so a replaced step is experience like any other.

# %%
# NBVAL_CHECK_OUTPUT
print("paper:         ", Schedule.paper().agent_prob(np.arange(30)))
print("epsilon 0.1:   ", Schedule.epsilon_greedy(0.1).agent_prob(np.arange(5)))
print("1.0 -> 0.1 / 4:", Schedule.epsilon_greedy(1.0, final_epsilon=0.1, decay_episodes=4).agent_prob(np.arange(6)))

# %% [markdown]
# ## 4. Four yardsticks
#
# - **Random** (`RandomAgent`): the floor. On these maps a random walk finds a goal about one time in ten.
# - **Tabular Q-learning** (`QLearningAgent`): the classic way to learn from scratch, inside each trial
#   (its table is reset in `begin`). It learns one table entry per step and cannot generalise from one
#   tile to the next, so the reward found at the goal travels back one step per visit. Its settings are
#   documented in its docstring: learning rate 0.5, gamma 0.9, its own epsilon 0.1, and an optimistic
#   start (every untried action is worth 1) that makes it try actions systematically.
# - **Explorer** (`ExplorerAgent`): remembers every tile it has stood on, fallen into or reached during
#   the trial. Once it has seen a goal it walks the shortest path through tiles it knows are safe;
#   until then it heads for the nearest tile it has not seen, through known-safe tiles. It falls into
#   each hole it meets once and never again. On non-slippery maps this is about as fast as anyone can
#   learn a map from experience alone.
# - **Oracle** (`OracleAgent`): reads the map and walks a shortest path. The ceiling.
#
# An in-context learner is a learned explorer. Having trained on many maps it has a **prior**: it
# may guess well before it has seen anything, so it can beat the explorer in the first episodes. It
# can rarely beat it over a whole trial, because the explorer wastes almost nothing once it has looked.
#
# We run all four on held-out maps of the paper's distribution: the `test` split, decided by each
# map's digest, which no training set in this course ever draws from.

# %%
n_maps = full_or_smoke(200, 100)
test_maps = MapDistribution.paper().sample_many(n_maps, seed=0, split="test")
agents = [OracleAgent(), ExplorerAgent(), QLearningAgent(), RandomAgent()]
start = time.perf_counter()
yardsticks = {agent.name: run_trials(agent, test_maps, episodes=30, seed=0) for agent in agents}
seconds = time.perf_counter() - start
table = pd.concat([r.table for r in yardsticks.values()], ignore_index=True)
print(f"{len(agents)} agents x {n_maps} maps x 30 episodes = {len(table)} episodes in {seconds:.1f} s")

# %% [markdown]
# Mean success in a few episodes, with 95% bootstrap confidence intervals: maps are resampled with
# replacement, each keeping its whole trial, and the interval is the middle 95% of the resampled means.

# %%
episode_table(table, numbers=(1, 2, 5, 10, 30))

# %%
learning_curve(yardsticks, title=f"Success per episode, {n_maps} held-out maps")

# %% [markdown]
# Read the curves from the top:
#
# - the oracle is at 1.0 in every episode: every map is solvable, and it knows the way;
# - the explorer starts low (in episode 1 it often steps into the first hole it meets), but every
#   episode that ends in a hole teaches it that hole for good: it is near 1.0 within about five
#   episodes;
# - Q-learning climbs too, but needs **tens** of episodes: each step updates one entry of one
#   tile, so knowing "the goal is over there" takes many visits to spread back to the start;
# - random stays flat at the bottom.
#
# An in-context learner's curve will sit somewhere in this picture. Above Q-learning means its
# context is worth more than tens of episodes of table updates; near the explorer means it explores
# and remembers about as well as anything can without a prior.

# %% [markdown]
# ## 5. Inside the explorer
#
# What the explorer knows after a trial, next to the real map: `?` never seen, `F` stood on, `H`
# fallen into, `G` reached. It learned only what it needed: once it found a goal it stopped looking.

# %%
explorer = ExplorerAgent()
lake = max(test_maps, key=lambda m: (m.n_states, len(m.holes)))
explored = run_trials(explorer, [lake], episodes=30, seed=1)
for real, known in zip(lake.rows, explorer.knowledge_rows(0)):
    print(f"{real}    {known}")
print(explored.table[["episode", "length", "success", "fell_in_hole"]].head(6).to_string(index=False))

# %% [markdown]
# Its paths in the first episodes and the last one: exploring, falling, then walking the known way.

# %%
trial_figure(explored.trials[0], episodes=[0, 1, 2, 29], title="The explorer on one held-out map")

# %% [markdown]
# Its next move is a breadth-first search over what it knows. `explorer_choices` shows the moves it
# considers equally good for a knowledge map and a position. Here a goal is known, the straight way
# passes a known hole, and it takes the detour down:

# %%
# NBVAL_CHECK_OUTPUT
knowledge = ["FHG",
             "FFF"]
print([ACTION_NAMES[a] for a in explorer_choices(knowledge, position=0)])

# %% [markdown]
# ## 6. The same yardsticks under the paper's schedule
#
# In lessons 5 and 7 in-context learners are evaluated as in the paper, with the exploration
# staircase. The yardsticks must be run the same way to be compared. In the first two episodes every
# action is random, so all four agents walk the very same steps (same seed); from then on, what each
# agent makes of that experience shows.

# %%
paper = {agent.name: run_trials(agent, test_maps, episodes=30, schedule=Schedule.paper(), seed=0) for agent in
         [OracleAgent(), ExplorerAgent(), QLearningAgent(), RandomAgent()]}
learning_curve(paper, title="Success per episode, paper's schedule<br>(random actions fade out by episode 21)")

# %% [markdown]
# ## 7. Why this is fast
#
# Every agent here is vectorised over the batch of lakes: Q-tables are one `(B, S, 4)` array, the
# explorer's memory one `(B, S)` array, and its breadth-first search runs on all lakes at once as
# repeated array relaxations (each round, a tile's distance becomes one more than its best neighbour's).
# No step loops over lakes in Python. That is why the whole evaluation above took seconds.
# `python benchmarks/baselines.py` prints the table above for 200 maps and times each agent batched
# against the same work done one lake at a time.

# %% [markdown]
# ## Recap
#
# - A **trial** is K episodes on one unknown map; `run_trials` runs one per map, all lakes stepped
#   together, and returns the `Trial` records and a tidy table (one row per map × episode).
# - Agents implement `begin`, `act`, `observe` on batches of lakes; the transformer agents of
#   lessons 4–6 plug in unchanged.
# - A `Schedule` replaces the agent's actions at random with a per-episode probability: the paper's
#   staircase, or epsilon-greedy.
# - `per_episode` and `episode_table` give mean success per episode with bootstrap intervals over
#   maps; `learning_curve` draws them.
# - The yardsticks: random (floor), Q-learning (tens of episodes), explorer (a few episodes), oracle
#   (ceiling). An in-context learner with a good prior can beat the explorer early, rarely over a
#   whole trial.
#
# **Exercise**: in `exercises/02_learning_from_scratch.ipynb` you write Q-learning's update and the
# explorer's next move yourself, plug them into agents, and watch the gap between them.
#
# **Next**: lesson 3 turns trials into the token sequences a transformer reads, and shows why many
# episodes of the *same* map in one context (burstiness) is what makes in-context learning possible.
#
# **Further reading**: Rentschler & Roberts 2025, *RL + Transformer = A General-Purpose Problem Solver*
# ([arXiv 2501.14176](https://arxiv.org/abs/2501.14176)), section 4 for the evaluation protocol;
# Sutton & Barto, *Reinforcement Learning: An Introduction*, chapter 6.5 (Q-learning) and 8 (planning
# with a model, which is what the explorer does with its memory).
