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
# # Lesson 6 — Full Llama fine-tuning: the same objective on a Hugging Face model
#
# Rentschler & Roberts did not train a small transformer from scratch: they fine-tuned
# **Llama 3.1 8B Instruct**. A trial becomes a chat, each step a few chat messages; the model's
# logits for the words *left*, *down*, *right*, *up* are its Q-values; a few hundred thousand IA3
# scaling factors are trained with the sequence DQN loss of lesson 4, and a second set of them is
# the target network. This lesson builds that recipe with the library and runs it end to end on a
# Llama small enough for a laptop CPU, loaded through exactly the code that loads the 8B model.
#
# **You will be able to**
# - write a trial in the paper's chat format and find, for every step, the token whose logits
#   predict the action (`icrl_course.tokenize.chat`);
# - turn any Hugging Face causal LM into a Q-network whose Q-values are four logits, with IA3 or
#   LoRA adapters and a float32 target adapter on the same frozen weights (`icrl_course.models.hf`);
# - explain two flaws of the paper's code that this library fixes (the argmax over the whole
#   vocabulary, a bfloat16 target that cannot follow small Polyak steps);
# - train the tiny Llama offline on CPU and draw its in-context curve, and launch the paper's
#   Llama-3.1-8B run on one or several GPUs (`icrl_course.train.hf`).
#
# **Prerequisites**: lesson 3 (trials as tokens, `pack`), lesson 4 (the DQN objective, target
# networks, the KV cache); lesson 5 helps. Some familiarity with Hugging Face `transformers`.
#
# **Time**: about 40 minutes (the full-size tiny run adds about 10 minutes of CPU), plus 30 for the
# exercise.

# %%
import shutil
import warnings
from pathlib import Path

import pandas as pd
import torch
import transformers

from icrl_course.baselines import ExplorerAgent, RandomAgent
from icrl_course.dqn import polyak_update
from icrl_course.evaluate import compare_agents, held_out_maps
from icrl_course.envs import LakeMap
from icrl_course.models.hf import (AdapterConfig, HFAgent, HFQNetwork, ModelNotFoundError, QLearner,
                                   build_tiny_llama, load_causal_lm, q_values_from_logits)
from icrl_course.plots import learning_curve
from icrl_course.runtime import full_or_smoke
from icrl_course.tokenize import pack
from icrl_course.tokenize.chat import ChatTokenizer, trial_text
from icrl_course.train.hf import HFTrainConfig, train
from icrl_course.train.log import read_metrics
from icrl_course.trials import Trial

torch.set_num_threads(1)  # a model this small runs fastest on one thread
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
warnings.filterwarnings("ignore", category=FutureWarning)

# %% [markdown]
# ## 1. A Llama you can run anywhere
#
# `build_tiny_llama` writes a randomly initialised Llama (2 layers, width 64) and its tokenizer to a
# folder that looks exactly like a model downloaded from the Hub (`config.json`, `model.safetensors`,
# `tokenizer.json`). `load_causal_lm` then calls `from_pretrained` on it, the same call that loads
# `meta-llama/Llama-3.1-8B-Instruct` from a local copy. The tokenizer is word-level: Llama 3's special
# tokens, the format's words and the numbers 0..399 are one token each.

# %%
tiny_path = build_tiny_llama(Path("runs") / "lesson06-tiny-llama", seed=0)
model, tokenizer = load_causal_lm(tiny_path, device="cpu")
print(type(model).__name__, f"{sum(p.numel() for p in model.parameters()):,} parameters,",
      f"{model.config.num_hidden_layers} layers, width {model.config.hidden_size}, vocabulary {model.config.vocab_size}")

# %% [markdown]
# A Hub id goes through the same function. When the Hub does not provide the model (no network,
# `HF_HUB_OFFLINE=1`, a gated model without access, a typo) the message says what to do. The cell
# asks for an id that exists nowhere, with downloads forbidden, so it is quick and safe anywhere:

# %%
try:
    load_causal_lm("icrl-course/no-such-llama", device="cpu", local_files_only=True)
except ModelNotFoundError as error:
    print(error)

# %% [markdown]
# ## 2. A trial as a chat
#
# The paper writes every step as chat messages whose *role* says what they hold: the cell the agent
# stands on (`observation`), the action word (`action`), and the reward when it is not 0
# (`reward`). An episode ends with the cell where it ended, a message when the step limit cut it,
# and Llama's end-of-text token. Here is a two-episode trial on a 3x3 map: the first reaches the goal,
# the second falls into the hole.

# %%
lake = LakeMap.from_rows(["SFF", "FHF", "FFG"])
trial = Trial.from_steps(lake, [
    (0, 2, 0, 1, False, False), (1, 2, 0, 2, False, False), (2, 1, 0, 5, False, False), (5, 1, 1, 8, True, False),
    (0, 1, 0, 3, False, False), (3, 2, 0, 4, True, False),
])
print(trial_text(trial))

# %% [markdown]
# `ChatTokenizer` turns that into token ids, and for every step into the **Q position**: the last
# token before the action word. The model's logits there predict the next token, the action word,
# having read the current cell and nothing that comes after it. Those four logits are Q(s, a).

# %%
# NBVAL_CHECK_OUTPUT
chat = ChatTokenizer(tokenizer)
encoded = chat.encode(trial)
print("tokens:", len(encoded.tokens), "| steps:", len(encoded.q_positions))
print("action word token ids (left, down, right, up):", chat.action_token_ids.tolist())
q = int(encoded.q_positions[0])
print("around step 0's Q position:", tokenizer.convert_ids_to_tokens(encoded.tokens[q - 5:q + 3].tolist()))

# %% [markdown]
# The text is built block by block: every message starts and ends with a special token, and a
# tokenizer splits text at special tokens before anything else, so each distinct message is tokenized
# once and a trial is assembled by array indexing. The same property lets an agent extend its tokens
# step by step without re-tokenizing the past, which is what makes a KV cache safe (section 5).
# `chat.decode` goes back from tokens to the trial, and the chat tokenizer refuses a tokenizer that
# would split an action word into several tokens, since a Q-value must be one logit.
#
# ## 3. Q-values are four logits
#
# Reading Q-values is a gather: at each step's Q position, the logits of the four action tokens.
# `q_values_from_logits` does it from the full logits; `HFQNetwork` gets the same numbers without
# ever forming the full logits, by sending only the Q positions' hidden states through the four
# action rows of the output layer. For the paper's batch that matters:

# %%
full_logits_gb = 10 * 4096 * 128_256 * 4 / 1e9
print(f"full logits of 10 rows x 4,096 tokens x 128,256 words in float32: {full_logits_gb:.0f} GB; "
      f"the Q-values: {10 * 4096 * 4 * 4 / 1e6:.1f} MB")

# %%
qnet = HFQNetwork(model, chat.action_token_ids).eval()
batch = pack([encoded], len(encoded), pad_id=chat.pad_id)
with torch.no_grad():
    q_values = qnet(batch)
    gathered = q_values_from_logits(qnet.logits(batch), batch.q_index, torch.as_tensor(chat.action_token_ids))
print("Q-values:", tuple(q_values.shape), "| largest difference from the gather:", float((q_values - gathered).abs().max()))

# %% [markdown]
# **The paper's argmax ran over the whole vocabulary.** Double DQN needs the best next action,
# `argmax_a Q(s', a)`. The paper's code took the argmax of the logits over all 128k tokens, so the
# "best action" could be any word, and the target bootstrapped from that word's logit. On our untrained
# model the most likely next token is rarely an action word:

# %%
with torch.no_grad():
    logits = qnet.logits(batch)[0, encoded.q_positions]
best_word = tokenizer.convert_ids_to_tokens(logits.argmax(-1).tolist())
best_action = [("left", "down", "right", "up")[a] for a in q_values[0].argmax(-1).tolist()]
pd.DataFrame({"argmax over the vocabulary": best_word, "argmax over the four actions": best_action})

# %% [markdown]
# A fine-tuned Llama puts most of its mass on action words at these positions, so the flaw mostly
# hides; but nothing guarantees it, and when it bites, the target is garbage. Here Q-values are
# `(B, N, 4)` tensors and `icrl_course.dqn` takes every argmax over those four.
#
# ## 4. Adapters, and a target that can follow
#
# The paper trains **IA3** adapters (peft): learned vectors that rescale the keys, the values and the
# MLP's inner activations of every layer, initialised to 1. `QLearner` attaches two of them to the
# same frozen model: `online`, which trains, and `target`, which only follows by Polyak averaging.
# The base weights exist once:

# %%
# NBVAL_CHECK_OUTPUT
base_count = sum(p.numel() for p in model.parameters())
learner = QLearner(model, chat.action_token_ids, AdapterConfig(kind="ia3"))
adapter_count = sum(p.numel() for p in learner.online_state().values())
print(f"base weights: {base_count:,}")
print(f"one IA3 adapter: {adapter_count:,} ({adapter_count / base_count:.2%} of the base)")
print(f"model with both adapters: {sum(p.numel() for p in learner.online.parameters()):,} = base + 2 x adapter")
print("trainable:", sum(p.numel() for p in learner.parameters()), "| target dtype:",
      {str(t.dtype) for t in learner.target_state().values()})

# %% [markdown]
# For Llama 3.1 8B the same adapter has 524,288 numbers (k and v: 1,024 each, MLP: 14,336, in 32
# layers) beside 8 billion frozen weights. `AdapterConfig(kind="lora")` gives LoRA instead, with its
# target modules configurable; `kind="full"` trains every weight with a separate float32 target copy,
# sensible only for small models.
#
# **The paper's target adapter was stored in bfloat16.** On a GPU the model runs in bfloat16, and the
# paper kept the target adapter in that type too. bfloat16 has 8 bits of mantissa: near 1.0, where IA3
# vectors live, neighbouring values are 2^-7 = 0.0078 apart. A Polyak step moves the target by
# tau x (online - target); once the two are close, that step is smaller than half the spacing and
# rounds away. Watch a target chase an online weight of 1.004 with tau = 0.1:

# %%
online = {"w": torch.tensor([1.004])}
targets = {"float32": {"w": torch.tensor([1.0])}, "bfloat16": {"w": torch.tensor([1.0]).bfloat16()}}
rows = []
for step in range(1, 31):
    targets["float32"]["w"].lerp_(online["w"], 0.1)
    targets["bfloat16"]["w"].lerp_(online["w"].bfloat16(), 0.1)
    if step in (1, 5, 10, 30):
        rows.append({"Polyak steps": step, **{k: float(v["w"]) for k, v in targets.items()}})
pd.DataFrame(rows).set_index("Polyak steps")

# %% [markdown]
# The bfloat16 target never moves: the target network is frozen at its initial value while the paper
# believed it was tracking. peft keeps both adapters in float32 on a bfloat16 model, and
# `dqn.polyak_update` refuses a low-precision target:

# %%
try:
    polyak_update({"w": torch.tensor([1.0]).bfloat16()}, online, tau=0.1)
except ValueError as error:
    print(error)

# %% [markdown]
# ## 5. Training the tiny Llama
#
# `icrl_course.train.hf` runs the paper's offline recipe: trials from a dataset (or generated by
# lesson 5's behaviour policies on training maps) are written as chats, **packed** into rows of
# `context_length` tokens (several trials per row, each seeing only itself), and every optimiser step
# draws `batch_size` rows, computes the target's Q-values (no gradients), the online Q-values, the
# double-DQN loss over every step, an AdamW step, and the Polyak step of the target. At the end it
# plays trials on held-out maps with a KV-cache agent that feeds only the new tokens of each step.
#
# The shipped tiny config trains every weight of the tiny model: IA3 can only rescale what a model
# already computes, and a randomly initialised model computes nothing useful yet. Its reward scale
# is 1 rather than the paper's 30, which was chosen for the logit scale of a pre-trained Llama.

# %%
shipped = HFTrainConfig.named("hf_tiny_llama")
config = shipped.replace(
    out_dir="runs/lesson06-train", progress=False, steps=full_or_smoke(shipped.steps, 6),
    num_trials=full_or_smoke(shipped.num_trials, 24), batch_size=full_or_smoke(shipped.batch_size, 4),
    context_length=full_or_smoke(shipped.context_length, 256), log_every=full_or_smoke(shipped.log_every, 2),
    eval_maps=full_or_smoke(shipped.eval_maps, 6), eval_episodes=full_or_smoke(shipped.eval_episodes, 3),
)
shutil.rmtree(config.out_dir, ignore_errors=True)
result = train(config)
sorted(p.name for p in Path(config.out_dir).iterdir() if p.is_file())

# %% [markdown]
# The run folder holds the config, the training state (`state.safetensors`: both networks, AdamW's
# moments, the random states; a killed run resumes from it and ends with the same weights), the
# trained weights with the recipe to rebuild the model around them (`adapter.safetensors` +
# `adapter.json`, read by `load_trained`), the metrics and a summary.

# %%
metrics = read_metrics(config.out_dir, "train")
metrics[["iteration", "loss", "q_taken", "target", "tokens_per_s"]].round(3).tail()

# %% [markdown]
# The in-context curve: greedy success per episode on held-out maps, beside random play and the
# map-memorising explorer on the same maps.

# %%
maps = held_out_maps(config.eval_maps, seed=config.seed)
table = compare_agents({"tiny Llama": HFAgent(result.learner.online, result.chat), "random": RandomAgent(),
                        "explorer": ExplorerAgent()}, maps, episodes=config.eval_episodes,
                       max_episode_steps=config.max_episode_steps, seed=config.seed)
learning_curve(table, title="tiny Llama vs yardsticks on held-out maps")

# %% [markdown]
# Do not expect a climb here. In CI this model trained for a few steps; and even the full shipped
# config (1,000 steps, about 11 minutes on one busy CPU thread at about 5,000 tokens/s) leaves the
# tiny Llama at or below random play. We measured, with `python -m icrl_course.train.hf --config
# icrl_course/configs/hf_tiny_llama.json`, on these 32 held-out maps with 20-step episodes (success
# per episode 1 to 6):
#
# | agent | ep 1 | ep 2 | ep 3 | ep 4 | ep 5 | ep 6 |
# | --- | --- | --- | --- | --- | --- | --- |
# | tiny Llama, 1,000 steps | 0.03 | 0.00 | 0.00 | 0.00 | 0.00 | 0.00 |
# | random | 0.06 | 0.09 | 0.03 | 0.06 | 0.00 | 0.06 |
# | explorer | 0.09 | 0.31 | 0.50 | 0.69 | 0.88 | 1.00 |
#
# The TD loss is low (its Q-values agree with their targets on the training data), so the model
# has learned values; it has not learned to learn in context. Compare with lesson 5's transformer, which
# does in minutes:
#
# - **The text format is expensive**: about 10 tokens per step instead of one, so the same trial costs
#   ten times the attention and the model must learn to find the few tokens that matter.
# - **A cell number says nothing about where the cell is**: the map's width is not in the text, so
#   "down" means +3, +4 or +5 depending on the map, to be inferred from the transitions in the
#   context. Lesson 3's compact tokens give the small transformer its distances to the walls.
# - **No prior**: the paper's Llama arrived knowing what numbers, words and chats are, and IA3 only
#   had to steer it. A randomly initialised model must learn all of that from the TD loss.
#
# The tiny model is here to run every piece of the recipe on a laptop, in minutes, through the code
# that trains the real one.

# %% [markdown]
# ## 6. The real thing: Llama 3.1 8B on GPUs
#
# `icrl_course/configs/hf_llama31_8b_paper.json` holds the paper's numbers: IA3, learning rate 1e-2
# constant after warm-up, gamma 0.9, the goal's reward scaled by 30, Polyak tau 0.1 after every step,
# batches of 10 rows of 4,096 tokens, 100-step episodes, and their evaluation schedule.

# %%
# NBVAL_CHECK_OUTPUT
paper = HFTrainConfig.named("hf_llama31_8b_paper")
pd.Series({k: paper.to_dict()[k] for k in ("model", "adapter", "lr", "warmup_steps", "gamma", "reward_scale", "tau",
                                          "batch_size", "context_length", "max_episode_steps",
                                          "gradient_checkpointing", "eval_schedule", "eval_episodes")}, name="value").to_frame()

# %% [markdown]
# **Memory** (estimates; `benchmarks/llama_train_throughput.py --shape 8b` measures them on a GPU):
#
# | what | size |
# | --- | --- |
# | 8.0 B weights in bfloat16 | 16 GB |
# | two IA3 adapters (float32) + AdamW moments | under 10 MB |
# | activations, 10 x 4,096 tokens, no checkpointing | about 280 GB: does not fit |
# | with gradient checkpointing: layer inputs + one layer recomputed | about 10.5 + 9 GB |
# | the packing mask (10 x 4,096 x 4,096, bfloat16) | 0.3 GB |
# | full 128k-word logits (never formed here) | 10.5 GB in bf16, 21 GB in float32 |
#
# So the config turns gradient checkpointing on and the run fits one 80 GB GPU with room to spare.
#
# **One GPU**, with a local copy of the model (`huggingface-cli download
# meta-llama/Llama-3.1-8B-Instruct --local-dir models/Llama-3.1-8B-Instruct` once, on a connected
# machine with access to the gated model):
#
# ```bash
# python -m icrl_course.train.hf --config icrl_course/configs/hf_llama31_8b_paper.json \
#     --set model=models/Llama-3.1-8B-Instruct
# ```
#
# **Several GPUs or machines**: the same module under `torchrun` (or `accelerate launch`, which
# starts the same processes). PyTorch's DistributedDataParallel averages the adapters' gradients
# across processes; every process draws the same `batch_size` rows and trains on its share, so
# `batch_size` must divide by the number of processes; process 0 logs, checkpoints and evaluates.
#
# ```bash
# torchrun --standalone --nproc_per_node=2 -m icrl_course.train.hf \
#     --config icrl_course/configs/hf_llama31_8b_paper.json --set model=models/Llama-3.1-8B-Instruct
# torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \
#     -m icrl_course.train.hf --config ...   # run on both machines
# accelerate launch --num_processes=2 -m icrl_course.train.hf --config ...
# ```
#
# The test suite runs the distributed path with two CPU processes (gloo) and checks that both end
# with bit-identical adapter weights although each trained on different rows.

# %% [markdown]
# ## Recap
#
# - The paper's format writes a trial as chat messages (`observation`, `action`, `reward`, an
#   end-of-text per episode, a message when the step limit cut one); Q(s, a) is the logit of action
#   a's word at the token before it, read for the four action words only.
# - Any causal LM becomes a Q-network this way; `HFQNetwork` never forms the full logits, and packed
#   trials are kept apart by a 4D attention mask and restarting positions.
# - The target network is a second adapter on the same frozen weights, kept in **float32**: a
#   bfloat16 target cannot follow Polyak steps of tau = 0.1 once it is close. And the double-DQN
#   argmax runs over the four actions, not the vocabulary.
# - The tiny local Llama goes through the same code as Llama 3.1 8B: `from_pretrained`, adapters,
#   packing, training, checkpoints, the KV-cache agent.
# - The paper's run needs about 40 GB of one GPU with gradient checkpointing; `torchrun` or
#   `accelerate launch` spreads it over several.
#
# In the exercise you write the Q-value reader and train the tiny Llama with it. Lesson 7 asks whether
# what these models do is really learning in context.
#
# **Further reading**: Liu et al., *Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper
# than In-Context Learning* (2022, IA3); Hu et al., *LoRA* (2021); van Hasselt et al., *Deep
# Reinforcement Learning with Double Q-learning* (2016); Rentschler & Roberts, *RL + Transformer = A
# General-Purpose Problem Solver* (2025).
