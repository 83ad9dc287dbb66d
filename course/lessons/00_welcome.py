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
# # Lesson 0 — Welcome: learning to learn, in context
#
# This course teaches **In-Context Reinforcement Learning (ICRL)** by building it: a transformer
# that, after training on many small games, gets better at a game it has *never seen* from one
# episode to the next — without a single weight update.
#
# **You will be able to**
# - say what in-context reinforcement learning is, and how it differs from ordinary RL and from
#   ordinary fine-tuning;
# - name the experiments of Rentschler & Roberts (2025) that this course reproduces;
# - check that your machine has everything the course needs, and say whether it will run on a CPU or a GPU;
# - find your way around the lessons, the exercises and the companion library `icrl_course`.
#
# **Prerequisites**: Python and NumPy; having met PyTorch tensors helps. No reinforcement learning
# is assumed: lesson 2 starts from tabular Q-learning.
#
# **Time**: about 15 minutes.

# %% [markdown]
# ## The question
#
# Reinforcement learning usually learns *slowly*: a Q-learning agent dropped on a new Frozen Lake map
# needs many episodes of trial and error, and everything it learns is stored in its weights (or its
# table). People do something different: after a few games of the same kind, we get good at a
# *new* one within a few tries, because we have learned **how to learn** such games.
#
# ICRL asks whether a transformer can do the same. Give it a **trial** — several consecutive episodes on
# one map it does not know — as its context: every observation, action, reward and episode boundary so
# far. Ask it for Q-values of the four actions. Train it with ordinary DQN, over many trials on many
# random maps. If it works, then on a brand-new map its returns climb from episode to episode while its
# weights stay frozen: the *learning* happens in the forward pass, by reading its own past attempts.
#
# Three threads of research meet here, and the lessons come back to each of them:
#
# - **Trajectories, not isolated examples.** Models learn sequential decision-making in context when
#   their training data is *bursty*: several trajectories from the same task side by side. A trial is
#   exactly that — many episodes of the *same* map in one context (lesson 3).
# - **Why language models explore badly.** Off-the-shelf LLMs acting in simple bandit or grid tasks tend
#   to commit early and stop exploring. RL fine-tuning over multi-episode trials is one answer, but read
#   what our objective rewards (lesson 4): every episode ends at a terminal state, so a DQN target never
#   carries reward from one episode into the previous one. Exploring in episode 1 is not paid for by the
#   success it buys in episode 5; it helps only indirectly, because Q-values at later positions, which
#   see episode 1 in their context, learn to use what it found. RL² (Duan et al. 2016) differs here: its
#   return spans the whole trial, so exploration is rewarded directly. We measure how well our agents
#   explore against agents that explore well by design (lesson 2).
# - **Learning from failure without weight updates.** Agents that store reflections in memory can improve
#   by trial and error without gradients. ICRL is the RL-trained version of that idea: the memory is the
#   context, and what to do with it is learned.

# %% [markdown]
# ## What we will reproduce
#
# The reference is *RL + Transformer = A General-Purpose Problem Solver*, Rentschler & Roberts 2025
# ([arXiv 2501.14176](https://arxiv.org/abs/2501.14176)). They fine-tuned Llama 3.1 8B Instruct with
# small IA3 adapters, reading the Q-value of each action as the logit of the action's token, and trained
# it with one-step double DQN on pre-collected multi-episode trials of Frozen Lake: maps of 3–5 × 3–5
# tiles with random starts, goals and holes. They report five capabilities, and so will we:
#
# 1. **Unseen maps, same distribution**: returns rise within a trial on maps never seen in training.
# 2. **Out of distribution**: it still learns in context on larger 6–7 × 6–7 maps.
# 3. **Data quality**: training on trials from poor behaviour policies still works.
# 4. **Stitching**: it combines pieces of two partial episodes in its context into a path neither took.
# 5. **Non-stationarity**: when the map is swapped mid-trial, it adapts to the new one.
#
# We reproduce the recipe twice: first with a small transformer written from scratch that trains on a
# laptop CPU (lessons 3–5), then with a Hugging Face Llama model and peft adapters, exactly as in the
# paper (lesson 6). Along the way we fix what the paper left weak: test maps held out by construction,
# baselines to compare with, several seeds, the target's argmax taken over the four actions only, and a
# target network kept in full precision. The last two are flaws of the paper's public code
# ([micahr234/RL-Transformer-A-General-Purpose-Problem-Solver](https://github.com/micahr234/RL-Transformer-A-General-Purpose-Problem-Solver),
# read at commit `31ac4b5`): `Train.ipynb`, cell 7 (0-based, `CustomTrainer.dqn_loss`) takes the double-DQN
# argmax over the logits of the whole vocabulary and keeps the target ("delayed") adapter in the
# model's bfloat16. The repository has no script that makes its training data, only pre-tokenized files,
# so we generate ours with `icrl_course.data` (lesson 5).

# %% [markdown]
# ## How this course differs from the paper
#
# A reproduction that changes the recipe must say where. Each row is a deliberate choice; the last
# column says what it might change in the results, so read our numbers with it in mind.
#
# | what | paper | us | why | what it might change |
# | --- | --- | --- | --- | --- |
# | training data | offline: pre-collected trials, trained on once | online self-play into a replay of whole trials (lesson 5); offline datasets also supported (`icrl-course dataset`) | no data script was published; self-play needs no behaviour policy to choose | the data's quality and its drift with the policy; the paper's data-quality experiment is run with our offline datasets |
# | model input | Llama 3 chat text, about 20 tokens per step | compact integer tokens, a few per step, cells named by capped wall distances (lesson 3); the paper's text format exactly in lesson 6 | a CPU-sized context and vocabulary | what the model can generalise across map sizes; nothing about the DQN objective |
# | episode length | 100 steps | 25 steps on 3-5 x 3-5 maps | a trial of 10 episodes must fit a small context | fewer long wandering episodes; truncation is more frequent and masked out of the loss |
# | evaluation | 30 episodes per map; the model acts with probability 0, 0.1, ..., 0.9 (two episodes each), then greedily for 10 | 10 greedy episodes per map, with 95% bootstrap CIs over held-out maps and baselines beside | greedy play isolates what the context teaches; the paper's schedule is in `icrl_course.trials` (lesson 2) | our episode-1 success is the model's own, not that of random actions |
# | model size | Llama 3.1 8B with IA3 adapters | a 0.15M-parameter transformer trained from scratch (lesson 6: a tiny Llama, and the 8B config for a GPU) | trains in minutes on a laptop CPU | no language prior; what 8B parameters bring is not measured here |
# | TD target | argmax over the whole vocabulary; bfloat16 target adapter | argmax over the four actions; float32 target | flaws of the paper's code (above) | a better-behaved target; we did not measure the paper's version end to end |
# | held-out maps | test maps not checked against training maps | train / val / test split by map digest; every choice on val, test read once | a result on seen maps is memory, not in-context learning | honest numbers; possibly lower than the paper's |

# %% [markdown]
# ## Set-up check
#
# The next cell imports every package the course uses and prints its version. If one is missing, it says
# which and how to install it. It then reports the device the library will use: `pick_device("auto")`
# picks a CUDA GPU when there is one (else Apple's MPS, else the CPU). Everything in the course runs on a
# CPU; a GPU only makes the large-model parts of lesson 6 practical.

# %%
import importlib

from icrl_course.runtime import pick_device, smoke

REQUIRED = ["numpy", "torch", "transformers", "peft", "gymnasium", "ipywidgets", "plotly", "icrl_course"]
missing = []
for name in REQUIRED:
    try:
        module = importlib.import_module(name)
    except ImportError as error:
        missing.append(name)
        print(f"{name:>13}: MISSING ({error})")
    else:
        print(f"{name:>13}: {getattr(module, '__version__', 'installed')}")

device = pick_device("auto")
print(f"\nDevice for models: {device}")
if device.type == "cpu":
    print("No GPU found: everything runs on the CPU (the small-model lessons are sized for it).")
print(f"Smoke mode (ICRL_COURSE_SMOKE): {'on, computations shortened' if smoke() else 'off, full size'}")

# %% [markdown]
# The verdict, on a line of its own so the course's own tests can check it:

# %%
# NBVAL_CHECK_OUTPUT
if missing:
    print("Missing: " + ", ".join(missing) + ". From the repository root run:")
    print('  pip install -c constraints-cpu.txt -e .')
else:
    print("All required packages are installed.")

# %% [markdown]
# ## One switch for long computations
#
# Some lessons train models for several minutes. The environment variable `ICRL_COURSE_SMOKE=1` shrinks
# every such computation to seconds; the course's tests set it so that the whole course runs quickly in
# continuous integration. Leave it unset when you learn: you get the full-size runs the text describes.
# Library code reads it through `icrl_course.runtime.smoke()` and `full_or_smoke(full, smoke_value)`:

# %%
from icrl_course.runtime import full_or_smoke

n_training_trials = full_or_smoke(20_000, 200)
print(f"this run would train on {n_training_trials} trials")

# %% [markdown]
# ## A first look at the game
#
# Every experiment runs on Frozen Lake, as in gymnasium's `FrozenLake-v1`: an agent starts on an `S` tile
# and must reach a `G` tile without falling into a hole `H`; `F` is safe frozen ice. It observes only its
# cell index `row * ncol + col` and chooses 0 left, 1 down, 2 right or 3 up. Here is one map drawn the
# way the paper draws them (lesson 1 builds this from scratch):

# %%
from icrl_course.envs import MapDistribution

lake = MapDistribution.paper().sample(seed=0)
print(lake)
print(f"{lake.nrow} x {lake.ncol} tiles, shortest path from a start to a goal: {lake.shortest_path_length()} moves")

# %% [markdown]
# An agent that does not know this map has to discover where the holes and the goal are. A good in-context
# learner explores in the first episodes and then walks the shortest path — all within one context.

# %% [markdown]
# ## The course map
#
# Each lesson teaches one idea and builds (or uses) one module of the library `icrl_course`:
#
# | # | lesson | library module |
# | --- | --- | --- |
# | 0 | Welcome and set-up check (this notebook) | `runtime` |
# | 1 | Frozen Lake from scratch: the gymnasium API, random solvable maps, rendering | `envs` |
# | 2 | Learning from scratch is slow: tabular Q-learning, explorer and oracle yardsticks, multi-episode trials | `trials`, `baselines` |
# | 3 | Trajectories as context: tokenizing multi-episode histories; why burstiness matters | `tokenize` |
# | 4 | The DQN objective on a transformer: Q-values from logits, TD targets at every position, double DQN | `models`, `dqn` |
# | 5 | Training an in-context learner on CPU and watching it learn on maps it never saw | `train`, `data` |
# | 6 | Full Llama fine-tuning with peft adapters: a tiny local model on CPU, Llama 3.1 8B on a GPU | `models.hf`, `train` |
# | 7 | Is it really learning in context? The five capability experiments against the baselines | `evaluate` |
# | 8 | Interactive lab: edit maps, replay trials with Q-values, probe OOD, stitching and non-stationarity | `plots`, `widgets` |
#
# **How to work through it.** Read a lesson in `notebooks/`, then open the exercise of the same number in
# `exercises/`. Each exercise is a function with a `TODO` and a `raise NotImplementedError`; the cell below
# it calls a *check* that runs your function against the library's reference on chosen cases and tells
# you which input differs and how. Stuck? The completed version is in `solutions/`.

# %% [markdown]
# ## Recap
#
# - **ICRL**: a transformer that reads a trial (several episodes on one unknown map) as its context and
#   outputs Q-values, trained with DQN over many maps, learns *how to learn*: on a new map its returns
#   rise from episode to episode with frozen weights.
# - We reproduce Rentschler & Roberts (2025, arXiv 2501.14176) — unseen maps, out of distribution,
#   data quality, stitching, non-stationarity — first with a small transformer on a CPU, then with Llama
#   and peft adapters.
# - The set-up check above says whether your installation is complete and which device the library uses.
# - `ICRL_COURSE_SMOKE=1` shortens every long computation; leave it unset to run lessons at full size.
#
# **Further reading**: Rentschler & Roberts, *RL + Transformer = A General-Purpose Problem Solver* (2025);
# work on trajectory burstiness and in-context learning of sequential decisions; studies of why LLM agents
# explore poorly in bandit tasks; Reflexion-style agents that learn from failure through memory instead of
# weights.
#
# **Next**: lesson 1 builds Frozen Lake from scratch.
