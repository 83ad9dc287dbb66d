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
# # Exercise 6 — Q-values from a language model's logits
#
# In lesson 6 a Llama became a Q-network: Q(s, a) is the logit of action a's word at the token just
# before it. Here you write that reader, check it, confirm it gives the same numbers as the library's
# `HFQNetwork` on the tiny Llama, and then fine-tune the tiny Llama with your reader inside the
# double-DQN loss and look at its in-context curve on held-out maps.
#
# **You will be able to**
# - gather per-step Q-values from `(B, L, V)` logits at a batch's Q positions, for the four action
#   tokens only;
# - explain why the Q position is the token *before* the action word;
# - put the reader into a sequence-DQN training step with a target network and train a Hugging Face
#   model with it.
#
# **Prerequisites**: lesson 6; PyTorch advanced indexing.
#
# **Time**: about 30 minutes (the full-size training at the end takes about 5 more on a laptop).

# %%
import warnings
from pathlib import Path

import numpy as np
import torch
import transformers
from tqdm.auto import tqdm

from icrl_course.baselines import RandomAgent
from icrl_course.data import Behaviour, generate_trials
from icrl_course.dqn import DQNConfig, polyak_update, sequence_dqn_loss
from icrl_course.evaluate import compare_agents, held_out_maps
from icrl_course.models.hf import AdapterConfig, HFQNetwork, build_tiny_llama, load_causal_lm
from icrl_course.plots import learning_curve
from icrl_course.runtime import full_or_smoke
from icrl_course.tokenize import pack
from icrl_course.tokenize.text import WORDS, TextTokenizer

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
warnings.filterwarnings("ignore", category=FutureWarning)

# %% [markdown]
# ## Part 1 — The reader
#
# `logits` is `(B, L, V)`: for every row b and position p, the model's scores for the token at
# position p + 1. `q_index` is `(B, N)`: for step n of row b, the position of the last token before
# the action word. `action_token_ids` is `(4,)`: the ids of *left*, *down*, *right*, *up*, in that
# (gymnasium's) order. Return the `(B, N, 4)` tensor
# `Q[b, n, a] = logits[b, q_index[b, n], action_token_ids[a]]`, with torch indexing only, so that
# gradients flow back into the model.

# %%
def q_values_from_logits(logits, q_index, action_token_ids):
    """``(B, N, 4)`` Q-values: the four action tokens' logits at every step's Q position."""
    ### BEGIN SOLUTION
    # TODO: pair every row with its own positions (torch.arange(B)[:, None]), then keep the four action ids
    rows = torch.arange(logits.shape[0], device=logits.device)[:, None]
    return logits[rows, q_index][..., action_token_ids]
    ### END SOLUTION


# %%
from icrl_course.checks.lesson06 import check_q_values_from_logits

check_q_values_from_logits(q_values_from_logits)

# %% [markdown]
# Why the token *before* the word? The logits at position p predict token p + 1. At the action word's
# own position the model has already read the action: its logits there predict what comes after
# (the end of the message), and a Q-value read there would have seen the answer.
#
# ## Part 2 — Your reader on the tiny Llama
#
# Build the tiny Llama of lesson 6 (words format), write a few trials of a behaviour policy as text,
# encode them, and compare your reader applied to the full logits with `HFQNetwork`, which computes
# the same numbers without forming the full logits.

# %%
model_path = build_tiny_llama(Path("runs") / "exercise06-tiny-llama", WORDS, seed=0)
model, tokenizer = load_causal_lm(model_path, device="cpu")
network = HFQNetwork(model, TextTokenizer(tokenizer, WORDS), AdapterConfig(kind="full"))
action_ids = torch.as_tensor(network.tokenizer.action_token_ids)
trials, _ = generate_trials(Behaviour("explorer", 0.2), full_or_smoke(400, 24), episodes=6, max_episode_steps=20,
                            seed=0)
encoded = [network.encode(t) for t in trials]
print(f"{len(trials)} trials, {np.mean([len(e) for e in encoded]):.0f} tokens each on average")

# %%
batch = pack(encoded[:2], max(len(e) for e in encoded[:2]), pad_id=network.pad_id)
with torch.no_grad():
    mine = q_values_from_logits(network.logits(batch), batch.q_index, action_ids)
    library = network(batch)
print("shape:", tuple(mine.shape), "| largest difference from HFQNetwork:", float((mine - library).abs().max()))

# %% [markdown]
# ## Part 3 — Train the tiny Llama with your reader
#
# One training step, as in `icrl_course.train.loop.dqn_update` but with your reader for the online
# network: Q-values of the target network (no gradients), your online Q-values, the double-DQN loss
# over every step of the batch (`icrl_course.dqn`), an AdamW step, then the target's Polyak step.
# The whole model trains (`kind="full"`): a random model has nothing for IA3 to rescale. Rewards
# enter the targets unscaled (the paper's 30 suits a pre-trained Llama's logit scale). Here the
# trials come from a fixed behaviour policy (offline), so the loss can fall but the policy it
# implies is only as good as those trials allow.

# %%
objective = DQNConfig(gamma=0.9, reward_scale=1.0, tau=0.1)
target = network.make_target()
optimiser = torch.optim.AdamW(network.parameters(), lr=3e-3)
sampler = np.random.default_rng(0)
losses = []
network.train()
for step in tqdm(range(full_or_smoke(400, 4)), desc="train"):
    picks = [encoded[i] for i in sampler.choice(len(encoded), size=16, replace=False)]
    batch = pack(picks, max(len(e) for e in picks), pad_id=network.pad_id)
    with torch.no_grad():
        target_q = target.q_values(batch)
    online_q = q_values_from_logits(network.logits(batch), batch.q_index, action_ids)
    loss, metrics = sequence_dqn_loss(online_q, target_q, batch, objective)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    polyak_update(target.trainable(), network.trainable(), objective.tau)
    losses.append(float(loss.detach()))
print(f"TD loss: first {losses[0]:.3f}, last {losses[-1]:.3f}")

# %% [markdown]
# Now the in-context curve: greedy success per episode on held-out maps, with the KV-cache agent of
# lesson 6, beside random play.

# %%
maps = held_out_maps(full_or_smoke(32, 4), seed=0)
table = compare_agents({"tiny Llama (your reader)": network.agent(), "random": RandomAgent()},
                       maps, episodes=full_or_smoke(6, 2), max_episode_steps=20, seed=0)
learning_curve(table, title="tiny Llama trained with your Q-value reader")

# %% [markdown]
# ## Recap
#
# - Q-values are a gather: `logits[rows, q_index][..., action_token_ids]`, at the token before the
#   action word and for the four action words only.
# - The same numbers come out of `HFQNetwork` without the `(B, L, V)` logits, which for Llama 3.1 8B's
#   128k vocabulary would cost gigabytes per batch.
# - Dropped into the DQN loss with a Polyak-averaged target, your reader trains a Hugging Face model;
#   `icrl_course.train.loop` is this loop with online play, a replay, checkpoints, evaluation and
#   several GPUs, for this model and lesson 5's alike.
