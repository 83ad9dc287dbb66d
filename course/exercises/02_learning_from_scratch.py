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
# # Exercise 2 — The Q-learning update and the explorer's next move
#
# In lesson 2 four yardsticks ran on held-out maps, and tabular Q-learning needed tens of episodes
# where the explorer needed a few. Here you build the heart of both: the update that makes Q-learning
# learn, and the search that makes the explorer explore. Then you plug each into an agent and watch
# the gap appear in your own curves.
#
# **You will be able to**
# - write tabular Q-learning's update for a batch of lakes at once, with the rules for episode ends
#   (a terminated step has no future; a step cut by the time limit does);
# - write the explorer's next move as a breadth-first search over what it knows;
# - plug functions into agents that `run_trials` can run, and compare their learning curves.
#
# **Prerequisites**: lesson 2 (`run_trials`, the agent protocol, the yardsticks); NumPy fancy indexing.
#
# **Time**: about 30 minutes.

# %%
from collections import deque

import numpy as np

from icrl_course.baselines import ExplorerAgent, QLearningAgent
from icrl_course.envs import MapDistribution
from icrl_course.plots import learning_curve
from icrl_course.runtime import full_or_smoke
from icrl_course.trials import run_trials

maps = MapDistribution.paper().sample_many(full_or_smoke(200, 40), seed=0, split="test")

# %% [markdown]
# ## Part 1 — The Q-learning update
#
# A Q-table holds, for every tile `s` and action `a`, an estimate `Q[s, a]` of the discounted return
# of taking `a` at `s`. After a step `(s, a, r, s')` Q-learning moves that one entry towards a target:
#
# $$Q[s, a] \leftarrow Q[s, a] + \alpha \big(r + \gamma \max_{a'} Q[s', a'] - Q[s, a]\big)$$
#
# Two rules for the end of an episode:
#
# - a **terminated** step fell into a hole or reached a goal: nothing follows, so the target is `r`
#   alone;
# - a **truncated** step was cut by the 100-step limit. The tile it landed on still has a future (the
#   agent does not observe time, so a tile's value cannot depend on it): bootstrap as usual.
#
# The agents keep one table per lake, `q` of shape `(B, S, 4)`, and update all B lakes with one
# expression: every other argument is a `(B,)` array, entry `b` belonging to lake `b`. Return a new
# table and leave `q` as it was.

# %%
def q_learning_update(q, obs, actions, rewards, next_obs, terminated, truncated, learning_rate, gamma):
    """The ``(B, S, 4)`` table after one Q-learning step on each of B lakes (a new array; ``q`` unchanged)."""
    ### BEGIN SOLUTION
    # TODO: copy q; the target is r + gamma * max_a' Q[s', a'], without the future where terminated
    q = q.copy()
    lakes = np.arange(len(q))
    future = np.where(terminated, 0.0, q[lakes, next_obs].max(axis=1))
    target = rewards + gamma * future
    q[lakes, obs, actions] += learning_rate * (target - q[lakes, obs, actions])
    return q
    ### END SOLUTION


# %%
from icrl_course.checks.lesson02 import check_q_update

check_q_update(q_learning_update)

# %% [markdown]
# Now plug it in. `QLearningAgent` keeps its table in `self.q` and calls the update in `observe`; the
# subclass below calls yours instead, for the lakes still active. Run it next to the library's agent
# on the same maps with the same seed: the two curves should lie on top of each other.

# %%
class MyQLearning(QLearningAgent):
    name = "my q-learning"

    def observe(self, step):
        rows = np.flatnonzero(step.active)
        self.q[rows] = q_learning_update(self.q[rows], step.obs[rows], step.actions[rows], step.rewards[rows],
                                         step.next_obs[rows], step.terminated[rows], step.truncated[rows],
                                         self.learning_rate, self.gamma)


mine = run_trials(MyQLearning(), maps, episodes=30, seed=0)
library = run_trials(QLearningAgent(), maps, episodes=30, seed=0)
learning_curve([mine, library], title="Your Q-learning update against the library's")

# %% [markdown]
# ## Part 2 — The explorer's next move
#
# The explorer remembers what it has seen of the map, as rows of letters: `?` never seen, `F` stood on
# (known safe), `H` fallen into, `G` reached. Each step it chooses a move like this:
#
# 1. if a known goal can be reached **through known-safe tiles** from where it stands, take the first
#    move of a shortest such path;
# 2. otherwise take the first move of a shortest path to the nearest `?` tile, again through
#    known-safe tiles only (the path may *end* on a `?`: stepping there is exploring; it may not
#    pass through one, which might be a hole);
# 3. never step into a known `H`.
#
# Breadth-first search from the current tile finds both: expand tiles in order of distance, remember
# the first move that led to each, and stop at the first target you meet. Moves follow gymnasium:
# 0 left, 1 down, 2 right, 3 up; walking into the edge of the map leaves you where you are
# (`next_state` below does that for you).

# %%
MOVES = [(0, -1), (1, 0), (0, 1), (-1, 0)]  # (row, col) change of left, down, right, up


def next_state(nrow, ncol, state, action):
    """Where ``action`` leads from ``state`` on an ``nrow`` x ``ncol`` map; walls keep you in place."""
    row, col = divmod(state, ncol)
    d_row, d_col = MOVES[action]
    return min(max(row + d_row, 0), nrow - 1) * ncol + min(max(col + d_col, 0), ncol - 1)


def explorer_action(knowledge, position):
    """The explorer's move (0-3) from ``position`` given its ``knowledge`` rows of '?', 'F', 'H', 'G'."""
    ### BEGIN SOLUTION
    # TODO: breadth-first search through 'F' tiles from position: first for a 'G', then for a '?'
    nrow, ncol = len(knowledge), len(knowledge[0])
    tiles = "".join(knowledge)

    def first_move_towards(targets):
        first_move = {position: None}  # tile -> first move of the shortest path found to it
        queue = deque([position])
        while queue:
            state = queue.popleft()
            for action in range(4):
                nxt = next_state(nrow, ncol, state, action)
                if nxt in first_move:
                    continue
                move = action if first_move[state] is None else first_move[state]
                if tiles[nxt] in targets:
                    return move
                if tiles[nxt] == "F":
                    first_move[nxt] = move
                    queue.append(nxt)
        return None

    for targets in ("G", "?"):
        move = first_move_towards(targets)
        if move is not None:
            return move
    # Nothing left to reach: any move that is not into a known hole.
    return next(a for a in range(4) if tiles[next_state(nrow, ncol, position, a)] != "H")
    ### END SOLUTION


# %%
from icrl_course.checks.lesson02 import check_explorer_choice

check_explorer_choice(explorer_action)

# %% [markdown]
# An agent around your function. It keeps one knowledge map per lake and learns from every
# transition: the tile a step started from is safe; where it landed is a goal if the step ended with
# a reward, a hole if it ended without one, and safe otherwise. (The library's `ExplorerAgent` does
# the same for all lakes at once with arrays; this one loops over lakes in Python, which is fine for a
# few dozen maps.)

# %%
class MyExplorer:
    name = "my explorer"

    def begin(self, maps, rng):
        self.knowledge = [[["?"] * m.ncol for _ in range(m.nrow)] for m in maps]

    def _learn(self, lake, state, letter):
        ncol = len(self.knowledge[lake][0])
        self.knowledge[lake][state // ncol][state % ncol] = letter

    def act(self, obs):
        actions = []
        for lake, state in enumerate(obs):
            self._learn(lake, state, "F")
            actions.append(explorer_action(["".join(row) for row in self.knowledge[lake]], int(state)))
        return np.array(actions)

    def observe(self, step):
        for lake in np.flatnonzero(step.active):
            self._learn(lake, step.obs[lake], "F")
            ended = step.terminated[lake]
            self._learn(lake, step.next_obs[lake], ("G" if step.rewards[lake] > 0 else "H") if ended else "F")


# %% [markdown]
# Your two agents side by side: the explorer near 1.0 within a few episodes, Q-learning still climbing
# after thirty. The library's explorer is there too: yours should track it closely (they break ties
# between equally short paths differently, so the curves need not match exactly).

# %%
explorers = run_trials(MyExplorer(), maps, episodes=30, seed=0)
learning_curve([explorers, run_trials(ExplorerAgent(), maps, episodes=30, seed=0),
                run_trials(MyQLearning(), maps, episodes=30, seed=0)],
               title="Learning a map from scratch: explorer against Q-learning")

# %% [markdown]
# ## Recap
#
# - Q-learning's update moves one entry towards `r + gamma * max Q[s']`; a terminated step has no
#   future, a truncated one does. Indexing `q[lakes, obs, actions]` updates B lakes in one expression.
# - Q-learning is slow because each step changes one entry of one tile: the goal's reward spreads back
#   one step per visit, and nothing learned about one tile says anything about its neighbours.
# - The explorer plans with what it remembers: a breadth-first search through known-safe tiles, to a
#   goal if it knows one, else to the nearest unknown tile. It falls into each hole once.
# - That gap, tens of episodes against a few, is the room an in-context learner has to show what it
#   learned across maps.
