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
# # Lesson 4 — The DQN objective on a transformer
#
# Lesson 3 turned trials into tokens and marked where each step's Q-values are read. Now we make those
# outputs *be* Q-values: a small transformer reads a whole trial and gives Q(context, ·) at every
# step in one forward pass, and one-step DQN trains all of them at once. The successor of step t is
# simply step t + 1 of the same row, so every TD target is a shifted view of the same tensors.
#
# **You will be able to**
# - run the course's small transformer (`icrl_course.models.transformer`) on a packed batch and get
#   Q-values for every step, shape `(rows, steps, 4)`;
# - compute TD targets for every step in one pass with `icrl_course.dqn.td_targets`, and say what
#   happens at a terminal step, a time-limit cut, a trial boundary and padding;
# - explain why double DQN (with the argmax over the four actions only) and why the target network
#   is kept in float32 when it is updated by Polyak averaging;
# - run DQN updates and act with the KV cache (`TransformerAgent`).
#
# **Prerequisites**: lesson 3 (compact tokens, `pack`, `StepBatch`); the Q-learning update of
# lesson 2; PyTorch tensors and `backward()`.
#
# **Time**: about 40 minutes, plus 30 for the exercise.

# %%
import time

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from icrl_course.baselines import ExplorerAgent
from icrl_course.dqn import DQNConfig, bootstrap_values, make_target, polyak_update, sequence_dqn_loss, td_targets
from icrl_course.envs import LakeMap, MapDistribution
from icrl_course.models.agent import TransformerAgent
from icrl_course.models.transformer import QTransformer, TransformerConfig
from icrl_course.runtime import full_or_smoke
from icrl_course.tokenize import pack
from icrl_course.tokenize.compact import CompactTokenizer
from icrl_course.trials import Schedule, Trial, run_trials

torch.manual_seed(0)
pd.set_option("display.width", 140)
tokenizer = CompactTokenizer()

# %% [markdown]
# ## 1. A transformer whose outputs are Q-values
#
# `QTransformer` is a decoder-only transformer in the style of nanoGPT: embeddings, a few pre-norm
# blocks of causal self-attention and an MLP, a final norm and a head. Two ends differ from a
# language model: the input embedding adds up one small embedding per token field (lesson 3), and the
# head outputs **4 numbers per position**, one per action, instead of next-token logits. Read
# `icrl_course/models/transformer.py` top to bottom: it is about 300 lines.
#
# The course's default is 3 layers, 64 wide, 4 heads, with rotary positions (attention depends on the
# distance between tokens, so trials longer than those seen in training meet no untrained position)
# and a context of up to 4,096 tokens (30 episodes of at most 100 steps is 3,001).

# %%
# NBVAL_CHECK_OUTPUT
config = TransformerConfig()
model = QTransformer(config, seed=0)
print(config)
print(f"{model.num_parameters():,} parameters")

# %% [markdown]
# Let us collect some trials to read. An explorer with 30% random actions plays 4 episodes on each
# of a few training maps; every trial is encoded and all of them packed into rows of 256 tokens.
# `model.q_values(batch)` runs the rows with the block-diagonal mask of lesson 3 and picks the outputs
# at every step's Q position.

# %%
train_maps = MapDistribution.paper().sample_many(full_or_smoke(64, 16), seed=0, split="train")
trials = run_trials(ExplorerAgent(), train_maps, episodes=4, schedule=Schedule.epsilon_greedy(0.3), seed=0).trials
batch = pack([tokenizer.encode(t) for t in trials], context_length=256, pad_id=tokenizer.pad_id)
q = model.q_values(batch)
print(f"{len(trials)} trials, {sum(len(t) for t in trials)} steps -> {batch.input_ids.shape[0]} rows of 256 tokens")
print("Q-values:", tuple(q.shape), "(rows, steps, actions)")

# %% [markdown]
# (Lesson 6 does the same with a Llama: there the Q-value of an action is the logit of that action's
# token at the Q position, and the argmax runs over those four tokens only.)
#
# ## 2. One TD target per step, all in one pass
#
# One-step Q-learning moves Q(s_t, a_t) towards
#
# $$y_t = \text{scale}\cdot r_t + \gamma \, V(s_{t+1}), \qquad V(s) = Q_\text{target}(s, \arg\max_a Q_\text{online}(s, a))$$
#
# In a packed row, the state after step t is step t + 1 of the same row, whenever `has_next[t]` says
# step t + 1 continues the same episode of the same trial. So `V(s_{t+1})` for every t is the vector
# of values shifted by one. No loop over steps, no replay of single transitions: the whole batch is
# one tensor expression.
#
# Let us compute targets by hand for a toy row: an episode of three steps that ends on the goal, then
# one cut by the time limit after two steps, then one step of padding.

# %%
def toy_row():
    online = torch.tensor([[[0, 0, 0, 0], [9, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 5], [0, 0, 0, 0], [0, 0, 0, 0]]], dtype=torch.float32)
    target = torch.tensor([[[1, 2, 3, 4], [5, 1, 7, 2], [3, 3, 3, 3], [2, 8, 1, 1], [6, 6, 6, 6], [0, 0, 0, 0]]], dtype=torch.float32)
    flags = dict(rewards=torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]),
                 terminated=torch.tensor([[False, False, True, False, False, False]]),
                 has_next=torch.tensor([[True, True, False, True, False, False]]),
                 step_mask=torch.tensor([[True, True, True, True, True, False]]))
    return online, target, flags


online, target, flags = toy_row()
targets, valid = td_targets(online, target, **flags, gamma=0.5, reward_scale=2.0, double=True)
plain, _ = td_targets(online, target, **flags, gamma=0.5, reward_scale=2.0, double=False)

# %%
# NBVAL_CHECK_OUTPUT
print(pd.DataFrame({
    "reward": flags["rewards"][0].tolist(), "terminated": flags["terminated"][0].tolist(),
    "has_next": flags["has_next"][0].tolist(), "step_mask": flags["step_mask"][0].tolist(),
    "V(s) double": bootstrap_values(online, target, double=True)[0].tolist(),
    "V(s) plain": bootstrap_values(online, target, double=False)[0].tolist(),
    "target (double)": targets[0].tolist(), "target (plain)": plain[0].tolist(), "valid": valid[0].tolist(),
}).to_string())

# %% [markdown]
# The `V(s)` columns are the value of each step's *own* state; step t's target borrows row t + 1's.
# Check each row (gamma 0.5, reward scale 2):
#
# - **step 0** bootstraps from step 1. The online network prefers action 0 there, which the target
#   network values 5: target 0.5 · 5 = 2.5. Plain DQN takes the target network's own maximum, 7: 3.5.
# - **step 1** bootstraps from step 2: 0.5 · 3 = 1.5.
# - **step 2** reaches the goal: **terminal**, the target is the scaled reward 2 alone. Step 3 is the
#   start of the *next* episode, and its values must not leak in.
# - **step 3** bootstraps from step 4: 0.5 · 6 = 3.
# - **step 4** was cut by the time limit. The episode did not end for a reason inside the game:
#   the tile it stopped on still has a future. But that next state is not in the context (the next
#   token would be a new episode's start), so there is nothing to bootstrap from. We **mask it out**
#   (`valid` False) instead of pretending it is terminal, which would teach the model that running out
#   of time is a dead end. The last step of a trial cut by `pack` is handled the same way.
# - **step 5** is padding: never a target, never a successor.
#
# ## 3. Why double DQN, and why only over four actions
#
# The max in the target is taken over *estimates*, and the max of noisy estimates is biased upwards:
# even if every action is truly worth 0, the largest of four noisy guesses is positive. Double DQN
# (van Hasselt et al., 2016) lets the online network pick the action and the target network evaluate
# it. If the two networks' errors were independent, the bias would cancel. They are not: the target
# is a Polyak average of the online network's own past, so it shares much of its error. A simulation
# with the library's estimator (`bootstrap_values`) and target update (`polyak_update`): every
# action is truly worth 0, the online network's error drifts from update to update (an AR(1) process,
# correlation 0.9 from one update to the next: an assumption, not a measurement) and the target
# follows it with tau = 0.1. For comparison, the textbook picture with an independent target:

# %%
# NBVAL_CHECK_OUTPUT
generator = torch.Generator().manual_seed(0)
n, rho = 20_000, 0.9
online = {"q": torch.randn(n, 4, generator=generator)}  # errors of 20,000 states x 4 actions; truth is 0
target = make_target(online)
for _ in range(100):
    online["q"] = rho * online["q"] + (1 - rho ** 2) ** 0.5 * torch.randn(n, 4, generator=generator)
    polyak_update(target, online, tau=0.1)
independent = torch.randn(n, 4, generator=generator)
errors = torch.stack([online["q"].flatten(), target["q"].flatten()])
print(f"correlation of online and target errors: {torch.corrcoef(errors)[0, 1]:.2f}")
print(f"plain DQN,  Polyak target   mean V: {bootstrap_values(online['q'], target['q'], double=False).mean():+.3f}")
print(f"double DQN, Polyak target   mean V: {bootstrap_values(online['q'], target['q'], double=True).mean():+.3f}")
print(f"double DQN, independent one mean V: {bootstrap_values(online['q'], independent, double=True).mean():+.3f}")

# %% [markdown]
# With an independent target double DQN removes the bias entirely; with the Polyak target it actually
# uses, it removes about a quarter of it here. Double DQN helps, but it is no cure, and the bias
# compounds through bootstrapping: each target inherits the over-estimate of the next. (The plain
# DQN value is below the textbook's +1.03 because averaging also shrinks the target's errors.)
#
# The paper's code took the argmax over the Llama's **whole vocabulary**, not its four action tokens
# (`Train.ipynb`, cell 7, `CustomTrainer.dqn_loss`, in micahr234/RL-Transformer-A-General-Purpose-Problem-Solver
# at commit `31ac4b5`), so the "best next action" could be a word that is not an action at all; here the
# argmax runs over the four Q-values and nothing else.
#
# ## 4. The loss, and a target network kept in float32
#
# The loss compares Q(s_t, a_t), the output at step t for the action actually taken, with the target,
# averaged over valid steps. `DQNConfig` holds the knobs: gamma 0.9, a reward scale (the paper multiplies
# the goal's reward of 1 by 30 to suit a pre-trained Llama's logits; the default, 1, leaves rewards as they
# are), Huber or squared loss, n-step returns, and the Polyak rate.
# n-step returns (`n_step > 1`) propagate a reward faster, but they are **not unbiased off-policy**: the
# n - 1 actions inside the window were chosen by the behaviour policy that filled the replay (epsilon-
# greedy, and older versions of the network), not by the greedy policy the target estimates, so they
# estimate a mix of the two policies' values. The course's configs use one-step targets.
#
# The target network is a slowly moving copy of the online network: after every optimiser step,
# `target <- (1 - tau) target + tau online` (tau = 0.1 in the paper, 0.02 in `paper-small.json`).
# The paper kept its target adapter in bfloat16 (`Train.ipynb`, cell 7), which has 8 bits of
# mantissa: near a weight w, a change smaller than about 2^-8 |w| is rounded away. So a bfloat16
# target is not frozen; it **lags with a dead band**: it follows the online weight until
# `tau * gap` falls below that rounding step, and then stops, about 2^-8 / tau of |w| away (4% for
# tau = 0.1, 20% for tau = 0.02). Measured: a target at 1.0 following an online weight at 1 + gap for
# 300 Polyak steps, and the gap that remains:

# %%
# NBVAL_CHECK_OUTPUT
rows = []
for tau in (0.1, 0.02):
    for gap in (0.01, 0.05, 0.1, 0.3):
        online_w = {"w": torch.tensor([1.0 + gap])}
        target32, target16 = make_target({"w": torch.ones(1)}), torch.ones(1, dtype=torch.bfloat16)
        for _ in range(300):
            polyak_update(target32, online_w, tau=tau)
            target16.lerp_(online_w["w"].bfloat16(), tau)  # what a bfloat16 target does
        rows.append({"tau": tau, "gap": gap, "float32 gap left": float(online_w["w"] - target32["w"]),
                     "bfloat16 gap left": float(online_w["w"] - target16.float())})
print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.4f}"))

# %% [markdown]
# The float32 target closes every gap; the bfloat16 one stops a few percent short at tau = 0.1 and up
# to 19% short at tau = 0.02, and never moves at all for a gap inside the band. During training the
# online weights drift by small steps, so a bfloat16 target trails them by up to that band. `make_target` makes a float32 copy and `polyak_update`
# refuses a low-precision target.
#
# ## 5. Training steps
#
# Everything together, as lesson 5's training loop does at scale: forward the online network with
# gradients and the target network without, compute the loss, step the optimiser, move the target.
# We train on the packed explorer trials from section 1.

# %%
dqn_config = DQNConfig(gamma=0.9, reward_scale=30.0, loss="huber", tau=0.1)
model = QTransformer(config, seed=0)
target_model = make_target(model)
optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
steps = full_or_smoke(300, 25)
history = []
start = time.perf_counter()
for step in range(steps):
    with torch.no_grad():
        target_q = target_model.q_values(batch)
    loss, metrics = sequence_dqn_loss(model.q_values(batch), target_q, batch, dqn_config)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    polyak_update(target_model, model, dqn_config.tau)
    history.append({"step": step, "loss": loss.item(), "mean Q(s, a)": metrics["q_taken"].item(),
                    "mean target": metrics["target"].item()})
history = pd.DataFrame(history)
print(f"{steps} updates on {int(metrics['steps'])} valid steps in {time.perf_counter() - start:.1f} s")

# %%
fig = go.Figure()
for column in ("loss", "mean Q(s, a)", "mean target"):
    fig.add_scatter(x=history["step"], y=history[column], name=column)
fig.update_layout(title="DQN on one batch of explorer trials", xaxis_title="update", height=350)

# %% [markdown]
# Q-values start near 0 and rise towards the scale of the discounted returns (the goal is worth 30,
# discounted by 0.9 per step), and the loss falls as they do. One batch is not a dataset: lesson 5
# trains on thousands of trials and watches the in-context learning curve instead.
#
# ## 6. Acting with the KV cache
#
# To act, the model must read the trial so far at every step. Re-running the whole context each step
# costs a forward pass over up to 3,000 tokens per step; with a **KV cache** each step feeds only the
# new token (one per lake, all lakes in one batched forward) and attends to the stored keys and values
# of the earlier ones. `TransformerAgent` does that, building each token with the same function the
# encoder uses, so it reads exactly what training read. It plugs into `run_trials` like any agent:

# %%
test_maps = MapDistribution.paper().sample_many(full_or_smoke(32, 8), seed=1, split="test")
agent = TransformerAgent(model, epsilon=0.1)
results = run_trials(agent, test_maps, episodes=3, seed=0)
print(results.table.groupby("episode")[["success", "length"]].mean())

# %% [markdown]
# After a few updates on one small batch, expect no skill yet: the point here is the machinery.

# %% [markdown]
# Acting step by step with the cache gives the same Q-values as a full forward pass over the finished
# trial (up to float rounding):

# %%
class Recorder(TransformerAgent):
    def begin(self, maps, rng=None):
        super().begin(maps, rng)
        self.seen = [[] for _ in maps]

    def observe(self, step):
        for b in np.flatnonzero(step.active):
            self.seen[b].append(self.last_q[b])
        super().observe(step)


recorder = Recorder(model)
trial = run_trials(recorder, test_maps[:1], episodes=3, seed=0).trials[0]
encoded = tokenizer.encode(trial)
with torch.no_grad():
    full = model(torch.from_numpy(encoded.tokens)[None])[0, encoded.q_positions].numpy()
print(f"{len(trial)} steps; largest difference cached vs full pass: {np.abs(np.stack(recorder.seen[0]) - full).max():.1e}")

# %% [markdown]
# How much the cache saves grows with the context: `python benchmarks/kv_cache.py` prints the time per
# step with and without it at 256, 1,024 and 4,096 tokens. Here is one context of 1,024 tokens for 16
# lakes, measured on this machine:

# %%
ids = torch.randint(0, tokenizer.vocab_size, (16, 1024), generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    cache = model.new_cache(16)
    model(ids[:, :1023], cache=cache)
    start = time.perf_counter()
    model(ids[:, 1023:], cache=cache)
    cached = time.perf_counter() - start
    start = time.perf_counter()
    model(ids)
    recompute = time.perf_counter() - start
print(f"one step with the cache: {cached * 1e3:.1f} ms; re-reading 1,024 tokens: {recompute * 1e3:.0f} ms")

# %% [markdown]
# ## Recap
#
# - A transformer becomes a Q-network by giving it **4 outputs per position**; `q_values(batch)`
#   gathers them at every step of a packed batch.
# - The TD target of step t bootstraps from step t + 1 of the same row, so all targets are **one
#   shifted tensor expression**: `td_targets(online_q, target_q, rewards, terminated, has_next,
#   step_mask, gamma=..., reward_scale=..., double=...)`.
# - **Terminal** steps use the reward alone; steps **cut** by the time limit or by packing have no
#   next state in the context and are masked out; **padding** contributes nothing.
# - **Double DQN** reduces the max's upward bias, but only partly: a Polyak target shares much of the
#   online network's error. The argmax runs over the four actions only.
# - The **target network** follows the online one by Polyak averaging and stays in **float32**; in
#   bfloat16 it would stop short of the online weights by a dead band of about 2^-8 / tau of a weight.
# - n-step returns propagate rewards faster but are biased off-policy; the course uses one-step targets.
# - A **KV cache** makes acting cost one token per step, with the same Q-values as a full pass.
#
# In the exercise you write `td_targets` yourself. Lesson 5 trains the model on many maps and
# watches its success climb from episode to episode on maps it never saw.
#
# **Further reading**: Mnih et al., *Human-level control through deep reinforcement learning*
# (Nature 2015); van Hasselt, Guez & Silver, *Deep Reinforcement Learning with Double Q-learning*
# (AAAI 2016); CleanRL's `dqn.py`, the same algorithm in one readable file; Karpathy's nanoGPT
# `model.py`, the shape of our transformer.
