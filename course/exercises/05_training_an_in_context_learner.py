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
# # Exercise 5 — Online DQN by hand, and the ablation that proves the context matters
#
# Lesson 5's training loop plays trials, stores them in a replay buffer and learns from batches drawn
# from it, while the chance of a random action falls over training; `train` hides all of it in one
# call. Here you write the pieces: the **exploration schedule**, **drawing a training batch** from the
# replay, and **one whole iteration** of play -> replay -> learn from the library's parts, then run a
# miniature training loop on them. Last, you test the course's central claim yourself: the
# **context-reset ablation** with a **paired bootstrap** confidence interval.
#
# **You will be able to**
# - write DQN's linear exploration schedule, including its edge cases;
# - draw a batch of distinct whole trials from a replay buffer and pack it for the transformer;
# - write one iteration of online DQN (play, remember, learn) from library pieces;
# - compute a paired bootstrap CI of a difference between two conditions on the same maps, and use it to
#   show that the shipped learner's gain comes from its context.
#
# **Prerequisites**: lesson 5 (and `pack` from lesson 3, the DQN update from lesson 4).
#
# **Time**: about 45 minutes.

# %%
import numpy as np
import pandas as pd
import torch

from icrl_course.checkpoints import load_agent
from icrl_course.evaluate import compare_agents, held_out_maps
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
# ## Part 3 — One iteration: play, remember, learn
#
# The library's `train` repeats one iteration, plus logging, evaluation and checkpoints. Write that
# iteration from the library's pieces, **in this order**, drawing every random number from `rng` (the
# check compares your replay, loss and weights with the library's pieces run in the same order):
#
# 1. **play**: `config.map_distribution().sample_many(config.trials_per_iteration, rng, split="train")`
#    draws fresh training maps; `run_trials(network.agent(), maps, config.episodes_per_trial,
#    Schedule.epsilon_greedy(epsilon), seed=int(rng.integers(2**31)), max_episode_steps=config.max_episode_steps)`
#    plays them;
# 2. **remember**: append `network.encode(trial)` for every played trial to the replay (a new list),
#    then keep only the newest `config.replay_capacity`;
# 3. **learn**: `config.updates_per_iteration` times, draw a batch with `sample_batch(replay,
#    config.batch_trials, rng, longest, network.pad_id)` (the library's, imported below; `longest =
#    config.episodes_per_trial * config.max_episode_steps + 1` tokens) and apply `dqn_update(network,
#    target, optimizer, batch, config.dqn_config(), config.grad_clip)`, which also moves the target.
#
# Return `(replay, stats)`, `stats` being what the last `dqn_update` returned.

# %%
from icrl_course.train.replay import sample_batch as library_sample_batch


def one_iteration(network, target, optimizer, replay, config, rng, epsilon):
    """Play -> remember -> learn, once; returns the new replay and the last update's stats."""
    ### BEGIN SOLUTION
    # TODO: play on training maps with epsilon, add the encoded trials and cap the replay, then learn
    maps = config.map_distribution().sample_many(config.trials_per_iteration, rng, split="train")
    played = run_trials(network.agent(), maps, config.episodes_per_trial, Schedule.epsilon_greedy(epsilon),
                        seed=int(rng.integers(2**31)), max_episode_steps=config.max_episode_steps)
    replay = (replay + [network.encode(t) for t in played.trials])[-config.replay_capacity:]
    longest = config.episodes_per_trial * config.max_episode_steps + 1
    for _ in range(config.updates_per_iteration):
        batch = library_sample_batch(replay, config.batch_trials, rng, longest, network.pad_id)
        stats = dqn_update(network, target, optimizer, batch, config.dqn_config(), config.grad_clip)
    return replay, stats
    ### END SOLUTION


# %%
from icrl_course.checks.lesson05 import check_one_iteration

check_one_iteration(one_iteration)

# %% [markdown]
# Now the loop: your schedule and your iteration, a few iterations of a small model. Enough to see the
# pieces work together, not to learn much (that takes the hundreds of iterations of lesson 5).

# %%
config = TrainConfig(iterations=full_or_smoke(30, 3), trials_per_iteration=16, updates_per_iteration=4,
                     batch_trials=16, episodes_per_trial=4, max_episode_steps=15, model={"n_layer": 2, "n_embd": 32})
network = build_network(config.model, seed=0)  # the Q-network the config's model section describes
target = network.make_target()  # a frozen float32 copy that follows by Polyak averaging
optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr)
replay, rng, rows = [], np.random.default_rng(0), []
for iteration in range(config.iterations):
    epsilon = epsilon_at(iteration, config.iterations, config.epsilon_start, config.epsilon_end, config.epsilon_fraction)
    replay, stats = one_iteration(network, target, optimizer, replay, config, rng, epsilon)
    rows.append({"iteration": iteration, "epsilon": round(epsilon, 3), "replay": len(replay), "loss": stats["loss"]})
pd.DataFrame(rows)

# %% [markdown]
# ## Part 4 — Is the gain in the context? The ablation, with a paired bootstrap
#
# Lesson 5's shipped learner gets better from episode 1 to episode 10. The **ablation** asks whether
# that gain needs the context: the same network with its context wiped at every episode start
# (`load_agent(..., reset_context_every_episode=True)`) should not improve. Both play the **same maps**
# with the same seed, so compare them map by map: for each map, the gain `success[ep 10] - success[ep 1]`
# with the context, minus the same without it.
#
# A confidence interval for the mean of such paired differences comes from a **paired bootstrap**:
# resample *maps* with replacement, keeping both numbers of a map together, and take the mean
# difference of each resample; the middle `confidence` of those means is the interval. Write
# `paired_difference(a, b, confidence, n_boot, seed)` returning `(mean, low, high)` of `a - b`, the
# way `icrl_course.stats` does it, so the check can compare numbers exactly: draw how often each of the
# n maps appears in each resample with `np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n),
# size=n_boot)`, average the differences with those counts, and take `np.percentile` with tails of
# `(1 - confidence) / 2` on each side.

# %%
def paired_difference(a, b, confidence=0.95, n_boot=2000, seed=0):
    """Mean of ``a - b`` (paired by map) and its percentile bootstrap interval over maps."""
    ### BEGIN SOLUTION
    # TODO: one difference per map; resample maps with multinomial counts, average, take the percentiles
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = len(diff)
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=n_boot)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(counts @ diff / n, [tail, 100 - tail])
    return float(diff.mean()), float(low), float(high)
    ### END SOLUTION


# %%
from icrl_course.checks.lesson05 import check_paired_difference

check_paired_difference(paired_difference)

# %% [markdown]
# Now the experiment, on held-out test maps:

# %%
maps = held_out_maps(full_or_smoke(100, 20), seed=1)
table = compare_agents({"context": load_agent("paper-small"),
                        "reset": load_agent("paper-small", reset_context_every_episode=True)},
                       maps, episodes=10, max_episode_steps=25, seed=0)
gain = {}
for name, part in table.groupby("agent", sort=False):
    success = part.pivot(index="lake", columns="episode", values="success").astype(float)
    gain[name] = (success[9] - success[0]).to_numpy()
mean, low, high = paired_difference(gain["context"], gain["reset"])
print(f"{len(maps)} maps: gain with the context minus gain without = {mean:+.2f}, 95% CI [{low:+.2f}, {high:+.2f}]")

# %% [markdown]
# An interval above 0 says the gain needs the context. Why paired? Bootstrapping the two agents' gains
# separately would ignore that both played the same maps: a map that is hard for one is hard for the
# other, and pairing removes that shared variation, so the interval is as narrow as the data allow.
#
# %% [markdown]
# ## Recap
#
# - The **exploration schedule** falls linearly from `start` to `end` over a fraction of training and
#   then stays put; its edge cases (no decay, after the decay, rising schedules) are where bugs hide.
# - A **training batch** is a uniform draw of *distinct, whole* trials from the replay, packed into
#   rows: whole, because each step's Q-values depend on everything before it in its trial.
# - Play, replay, update: the online loop is those three steps repeated. `icrl_course.train.loop.train`
#   adds the progress bar, the metrics file, evaluation on held-out maps and resumable checkpoints.
# - A claim about a difference between two conditions on the same maps needs a **paired** interval:
#   resample maps, keep each map's numbers together. The context-reset ablation, measured this way, is
#   the evidence that the learner's gain comes from its context.
