"""Training throughput (tokens/s) and peak memory of one sequence-DQN step on a Llama, side by side.

Two shapes:

* ``--shape tiny`` (default, CPU): the tiny local Llama of lesson 6, trained
  on real trials in the chat format packed to ``--context`` tokens; compares
  full fine-tuning with IA3, and gradient checkpointing off and on.
* ``--shape 8b`` (GPU): a model with Llama-3.1-8B's exact shape (32 layers,
  width 4096, 128k vocabulary) built from its config with random weights,
  directly on the device in bfloat16 (no download, no CPU copy), with IA3
  adapters and a float32 target adapter, on rows of 4,096 tokens (the paper's
  batch is 10 of them). Reports tokens/s and peak GPU memory with and without
  gradient checkpointing. ``--layers 1 --vocab 32000 --context 128 --batch 1
  --device cpu --dtype float32`` runs the same code path on a CPU as a check
  (its numbers say nothing about a GPU).

Each measurement runs ``--warmup`` untimed steps then ``--steps`` timed ones,
each step being exactly what ``icrl_course.train.hf`` does (target forward,
online forward and backward, AdamW, Polyak update).

    python benchmarks/llama_train_throughput.py
    python benchmarks/llama_train_throughput.py --shape 8b          # on a GPU
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from icrl_course import dqn
from icrl_course.data import Behaviour, generate_trials
from icrl_course.models.hf import AdapterConfig, QLearner, build_tiny_llama, load_causal_lm, resolve_dtype
from icrl_course.runtime import pick_device
from icrl_course.tokenize.base import EncodedTrial, pack
from icrl_course.tokenize.chat import ChatTokenizer
from icrl_course.train.hf import train_step

LLAMA31_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072, rope_theta=500000.0,
                  rms_norm_eps=1e-5, tie_word_embeddings=False,
                  rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 8192})
"""meta-llama/Llama-3.1-8B-Instruct's config.json, the fields that set its size and arithmetic."""


def measure(learner: QLearner, batch, steps: int, warmup: int, device: torch.device) -> dict:
    optimiser = torch.optim.AdamW(learner.parameters(), lr=1e-4)
    objective = dqn.DQNConfig(reward_scale=30.0)
    batch = batch.to(device)
    tokens = int((batch.segment_ids >= 0).sum())
    for _ in range(warmup):
        train_step(learner, learner.online, optimiser, batch, objective, 1.0)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        train_step(learner, learner.online, optimiser, batch, objective, 1.0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {"tokens_per_s": tokens / seconds, "step_s": seconds, "peak_gib": peak, "tokens": tokens}


def tiny_rows(chat: ChatTokenizer, context: int, batch: int, seed: int):
    trials, _ = generate_trials(Behaviour("explorer", 0.2), 8 * batch, episodes=6, max_episode_steps=20, seed=seed)
    rows = pack([chat.encode(t) for t in trials], context, pad_id=chat.pad_id, overflow="truncate")
    keep = torch.arange(min(batch, rows.input_ids.shape[0]))
    return type(rows)(**{k: v[keep] for k, v in rows.__dict__.items()})


def synthetic_rows(vocab: int, context: int, batch: int, seed: int, action_ids: np.ndarray):
    """Rows of random tokens with a Q position every 12 tokens (the chat format's rate for Llama 3)."""
    rng = np.random.default_rng(seed)
    encoded = []
    for _ in range(batch):
        q = np.arange(10, context - 1, 12)
        tokens = rng.integers(0, vocab, context)
        actions = rng.integers(0, 4, len(q))
        tokens[q + 1] = action_ids[actions]
        ends = rng.random(len(q)) < 0.05
        encoded.append(EncodedTrial(tokens, q, actions, (ends & (rng.random(len(q)) < 0.5)).astype(np.float64),
                                    ends, np.zeros(len(q), bool), np.cumsum(np.concatenate([[0], ends[:-1]]))))
    return pack(encoded, context)


def run_tiny(args) -> list[tuple[str, dict]]:
    device = pick_device(args.device)
    path = build_tiny_llama(tempfile.mkdtemp(prefix="tiny-llama-"), seed=0)
    results = []
    for name, kind, checkpointing in (("full fine-tuning", "full", False), ("IA3", "ia3", False),
                                      ("IA3 + grad. checkpointing", "ia3", True)):
        model, tokenizer = load_causal_lm(path, dtype="float32", device=str(device))
        chat = ChatTokenizer(tokenizer)
        learner = QLearner(model, chat.action_token_ids, AdapterConfig(kind=kind), checkpointing)
        learner.online.train()
        rows = tiny_rows(chat, args.context, args.batch, args.seed)
        results.append((name, measure(learner, rows, args.steps, args.warmup, device)))
    return results


def run_8b(args) -> list[tuple[str, dict]]:
    from transformers import AutoModelForCausalLM, LlamaConfig

    device = pick_device(args.device)
    if device.type != "cuda" and args.layers >= 32:
        raise SystemExit("--shape 8b needs a GPU (about 40 GB with gradient checkpointing); for a CPU check of the code "
                         "path use --layers 1 --vocab 32000 --context 128 --batch 1 --device cpu --dtype float32")
    shape = {**LLAMA31_8B, "num_hidden_layers": args.layers}
    if args.vocab:
        shape["vocab_size"] = args.vocab
    dtype = resolve_dtype(args.dtype, device)
    action_ids = np.array([2414, 2996, 1315, 455]) % shape["vocab_size"]  # any four distinct ids will do
    results = []
    for name, checkpointing in ((f"IA3, {args.dtype}", False), (f"IA3, {args.dtype} + grad. checkpointing", True)):
        with torch.device(device):  # weights are created on the device directly, in bfloat16
            model = AutoModelForCausalLM.from_config(LlamaConfig(**shape), dtype=dtype, attn_implementation="sdpa")
        params = sum(p.numel() for p in model.parameters())
        learner = QLearner(model, action_ids, AdapterConfig(kind="ia3"), checkpointing)
        learner.online.train()
        rows = synthetic_rows(shape["vocab_size"], args.context, args.batch, args.seed, action_ids)
        try:
            results.append((f"{name} ({params / 1e9:.2f}B params)", measure(learner, rows, args.steps, args.warmup, device)))
        except torch.OutOfMemoryError:
            results.append((f"{name} ({params / 1e9:.2f}B params)", {"tokens_per_s": float("nan"), "step_s": float("nan"),
                                                                     "peak_gib": float("inf"), "tokens": 0}))
        del model, learner
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=("tiny", "8b"), default="tiny")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--context", type=int, default=None, help="tokens per row (tiny: 1024, 8b: 4096)")
    parser.add_argument("--batch", type=int, default=None, help="rows per step (tiny: 8, 8b: 10, the paper's)")
    parser.add_argument("--layers", type=int, default=32, help="8b shape only: fewer layers for a quick check")
    parser.add_argument("--vocab", type=int, default=0, help="8b shape only: a smaller vocabulary for a CPU check")
    parser.add_argument("--dtype", default="bfloat16", help="8b shape only: float32 for a CPU check (CPUs run bf16 slowly)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    args.context = args.context or (1024 if args.shape == "tiny" else 4096)
    args.batch = args.batch or (8 if args.shape == "tiny" else 10)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run_tiny(args) if args.shape == "tiny" else run_8b(args)
    device = pick_device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\n{args.shape} Llama, {args.batch} rows x {args.context} tokens per step, {where}")
    print(f"{'setting':48s} {'tokens/s':>10s} {'step s':>8s} {'peak GiB':>9s} {'vs first':>9s}")
    base = results[0][1]["tokens_per_s"]
    for name, r in results:
        peak = f"{r['peak_gib']:9.2f}" if device.type == "cuda" else f"{'n/a':>9s}"
        print(f"{name:48s} {r['tokens_per_s']:10.0f} {r['step_s']:8.3f} {peak} {r['tokens_per_s'] / base:8.2f}x")


if __name__ == "__main__":
    main()
