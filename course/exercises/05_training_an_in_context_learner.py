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
# # Exercise 5 — The two small pieces that make online DQN go
#
# Lesson 5's training loop plays trials, stores them in a replay buffer and learns from batches drawn
# from it, while the chance of a random action falls over training. Here you write those two pieces,
# the **exploration schedule** and **drawing a training batch** from the replay, and then run a
# miniature training loop built on them.
#
# **You will be able to**
# - write DQN's linear exploration schedule, including its edge cases;
# - draw a batch of distinct whole trials from a replay buffer and pack it for the transformer;
# - put play, replay and update together into an online training loop.
#
# **Prerequisites**: lesson 5 (and `pack` from lesson 3, the DQN update from lesson 4).
#
# **Time**: about 20 minutes.

# %%
import numpy as np
import pandas as pd
import torch

from icrl_course.runtime import full_or_smoke
from icrl_course.tokenize import pack
from icrl_course.train.build import build_network
from icrl_course.train.config import TrainConfig
from icrl_course.train.loop import dqn_update
from icrl_course.trials import Schedule, run_trials

torch.set_num_threads(1)  # a model this small runs fastest on one thread (threads cost more than they save)

# %% [markdown]
# ## Part 1 — The exploration schedule
#
# Online DQN acts epsilon-greedily: with probability epsilon a random action replaces the network's.
# Early on the network knows nothing, so epsilon starts high (`start`, 1.0 in the course); it falls
# **linearly** to `end` (0.1) over the first `fraction` (30%) of the `iterations`, and then stays at
# `end`. Write `epsilon_at(iteration, iterations, start, end, fraction)`.
#
# Mind the edges: after the decay the value must not keep falling; `fraction = 0` means "no decay,
# `end` from the start" (and must not divide by zero); and nothing says `end < start`.

# %%
def epsilon_at(iteration, iterations, start, end, fraction):
    """Exploration rate at ``iteration``: ``start`` moving linearly to ``end`` over ``fraction * iterations``."""
    ### BEGIN SOLUTION
    # TODO: progress = iteration / (fraction * iterations), capped at 1 (and 1 when fraction is 0)
    span = fraction * iterations
    progress = 1.0 if span <= 0 else min(iteration / span, 1.0)
    return start + progress * (end - start)
    ### END SOLUTION


# %%
from icrl_course.checks.lesson05 import check_epsilon_schedule

check_epsilon_schedule(epsilon_at)

# %% [markdown]
# ## Part 2 — A training batch from the replay buffer
#
# The replay buffer holds the most recent trials, each already encoded (`EncodedTrial`). A training
# batch is `batch_trials` of them drawn **uniformly and without replacement** (a trial twice in one
# batch would count its TD errors twice), or all of them when the buffer holds fewer, packed into rows
# of `context_length` tokens with `pack(trials, context_length, pad_id=pad_id)`.
#
# Use the generator `rng` for the draw (so the same seed gives the same batch), and leave the
# `encoded` list as it is: it *is* the replay buffer.

# %%
def sample_batch(encoded, batch_trials, rng, context_length, pad_id):
    """Draw ``min(batch_trials, len(encoded))`` distinct trials uniformly and pack them into a ``StepBatch``."""
    ### BEGIN SOLUTION
    # TODO: rng.choice(len(encoded), size=..., replace=False), then pack the chosen trials
    picks = rng.choice(len(encoded), size=min(batch_trials, len(encoded)), replace=False)
    return pack([encoded[i] for i in picks], context_length, pad_id=pad_id)
    ### END SOLUTION


# %%
from icrl_course.checks.lesson05 import check_sample_batch

check_sample_batch(sample_batch)

# %% [markdown]
# ## Part 3 — A miniature online training loop
#
# The library's `train` does exactly this, plus logging, evaluation and checkpoints. Each iteration:
# play `trials_per_iteration` trials on fresh training maps with your epsilon, add them to the replay,
# and make `updates_per_iteration` DQN updates on batches from your `sample_batch`. It runs a few
# iterations of a small model here: enough to see the pieces work together, not to learn much (that
# takes the hundreds of iterations of lesson 5).

# %%
config = TrainConfig(iterations=full_or_smoke(30, 3), trials_per_iteration=16, updates_per_iteration=4,
                     batch_trials=16, episodes_per_trial=4, max_episode_steps=15, model={"n_layer": 2, "n_embd": 32})
network = build_network(config.model, seed=0)  # the Q-network the config's model section describes
target = network.make_target()  # a frozen float32 copy that follows by Polyak averaging
optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr)
longest = config.episodes_per_trial * config.max_episode_steps + 1  # tokens of the longest trial: one per step, one to close
replay = []  # encoded trials, newest last
rng = np.random.default_rng(0)
rows = []
for iteration in range(config.iterations):
    epsilon = epsilon_at(iteration, config.iterations, config.epsilon_start, config.epsilon_end, config.epsilon_fraction)
    maps = config.map_distribution().sample_many(config.trials_per_iteration, rng, split="train")
    played = run_trials(network.agent(), maps, config.episodes_per_trial,
                        Schedule.epsilon_greedy(epsilon), seed=int(rng.integers(2**31)),
                        max_episode_steps=config.max_episode_steps)
    replay = (replay + [network.encode(t) for t in played.trials])[-config.replay_capacity:]
    for _ in range(config.updates_per_iteration):
        batch = sample_batch(replay, config.batch_trials, rng, longest, network.pad_id)
        stats = dqn_update(network, target, optimizer, batch, config.dqn_config(), config.grad_clip)
    rows.append({"iteration": iteration, "epsilon": round(epsilon, 3), "replay": len(replay),
                 "success while playing": played.table["success"].mean(), "loss": stats["loss"]})
pd.DataFrame(rows)

# %% [markdown]
# ## Recap
#
# - The **exploration schedule** falls linearly from `start` to `end` over a fraction of training and
#   then stays put; its edge cases (no decay, after the decay, rising schedules) are where bugs hide.
# - A **training batch** is a uniform draw of *distinct, whole* trials from the replay, packed into
#   rows: whole, because each step's Q-values depend on everything before it in its trial.
# - Play, replay, update: the online loop is those three steps repeated. `icrl_course.train.loop.train`
#   adds the progress bar, the metrics file, evaluation on held-out maps and resumable checkpoints.
