"""Training throughput (steps/s, tokens/s) and peak GPU memory of one sequence-DQN update on a Llama, side by side.

Each measured step is exactly one update of the training loop
(``icrl_course.train.loop.dqn_update``: the float32 target's Q-values, the
online forward and backward, AdamW, the Polyak step) on an ``HFQNetwork``,
on rows packed from real trials written in a text format. Two shapes:

* ``--shape tiny`` (default, CPU): the tiny Llama of lesson 6
  (``build_tiny_llama``, words format), loaded with ``from_pretrained``;
  compares full fine-tuning with IA3, and gradient checkpointing off and on.
* ``--shape 8b`` (GPU): a model with Llama-3.1-8B-Instruct's exact shape (32
  layers, width 4096, 128k vocabulary) built from its config with random
  weights, directly on the device in bfloat16 (no download), with IA3 and a
  float32 target adapter, on trials in the paper's text format (about 10
  tokens per step) packed into rows of 4,096 tokens, 10 rows per step (the
  paper's config, ``configs/llama31-8b-paper.json``); with and without
  gradient checkpointing, and with ``--micro-batches K`` a third setting:
  checkpointing with the same trials sorted by length and split into K
  passes of one update, as the trainer does with ``micro_batches=K``
  (gradient accumulation): what a smaller GPU's peak memory needs. ``--layers``, ``--hidden``, ``--vocab``
  shrink it for a CPU check of the code path (its numbers say nothing about a GPU).

Each measurement runs ``--warmup`` untimed steps, then ``--steps`` timed ones::

    python benchmarks/llama_train_throughput.py
    python benchmarks/llama_train_throughput.py --shape 8b          # on a GPU
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from icrl_course.data import Behaviour, generate_trials
from icrl_course.dqn import DQNConfig
from icrl_course.models.hf import AdapterConfig, HFQNetwork, build_tiny_llama, load_causal_lm, resolve_dtype, word_tokenizer
from icrl_course.runtime import pick_device
from icrl_course.tokenize.base import pack
from icrl_course.tokenize.text import PAPER, WORDS, TextTokenizer
from icrl_course.train.loop import dqn_update
from icrl_course.train.replay import sample_micro_batches

LLAMA31_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072, rope_theta=500000.0,
                  rms_norm_eps=1e-5, tie_word_embeddings=False,
                  rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 8192})
"""meta-llama/Llama-3.1-8B-Instruct's config.json, the fields that set its size and arithmetic."""
PAPER_OBJECTIVE = DQNConfig(gamma=0.9, reward_scale=30.0, tau=0.1)


def rows(network: HFQNetwork, context: int, batch: int, max_episode_steps: int, seed: int) -> list:
    """Encoded trials of a mixed behaviour, in the network's text format, as many as fill ``batch`` rows of
    ``context`` tokens when packed in order."""
    trials, _ = generate_trials([Behaviour("oracle", 0.3, 0.5), Behaviour("explorer", 0.2, 0.5)], 16 * batch,
                                episodes=10, max_episode_steps=max_episode_steps, seed=seed)
    encoded = [network.encode(t) for t in trials]
    low, high = 1, len(encoded)  # the longest prefix that fits: rows only grow as trials are added
    while low < high:
        middle = (low + high + 1) // 2
        if pack(encoded[:middle], context, pad_id=network.pad_id, overflow="truncate").input_ids.shape[0] <= batch:
            low = middle
        else:
            high = middle - 1
    return encoded[:low]


def measure(network: HFQNetwork, trials: list, context: int, steps: int, warmup: int, device: torch.device,
            parts: int = 1) -> dict:
    """Seconds per update, tokens per second and peak GPU memory of ``dqn_update`` on the trials packed into
    rows of ``context`` tokens, in one pass or, as the trainer's ``micro_batches`` does, in ``parts``."""
    target = network.make_target()
    optimiser = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-4)
    if parts == 1:
        batch = [pack(trials, context, pad_id=network.pad_id, overflow="truncate")]
    else:
        batch = sample_micro_batches(trials, len(trials), np.random.default_rng(0), context, network.pad_id, parts)
    tokens = sum(int((part.segment_ids >= 0).sum()) for part in batch)
    batch = [part.to(device) for part in batch]
    for _ in range(warmup):
        dqn_update(network, target, optimiser, batch, PAPER_OBJECTIVE, grad_clip=1.0)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        dqn_update(network, target, optimiser, batch, PAPER_OBJECTIVE, grad_clip=1.0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {"steps_per_s": 1 / seconds, "tokens_per_s": tokens / seconds, "step_s": seconds, "peak_gib": peak,
            "tokens": tokens}


def run_tiny(args) -> list[tuple[str, dict]]:
    device = pick_device(args.device)
    path = build_tiny_llama(tempfile.mkdtemp(prefix="tiny-llama-"), WORDS, seed=0)
    results = []
    for name, kind, checkpointing in (("full fine-tuning", "full", False), ("IA3", "ia3", False),
                                      ("IA3 + grad. checkpointing", "ia3", True)):
        model, tokenizer = load_causal_lm(path, dtype="float32", device=str(device))
        network = HFQNetwork(model, TextTokenizer(tokenizer, WORDS), AdapterConfig(kind=kind), checkpointing).to(device)
        trials = rows(network, args.context, args.batch, 25, args.seed)
        results.append((name, measure(network, trials, args.context, args.steps, args.warmup, device)))
    return results


def run_8b(args) -> list[tuple[str, dict]]:
    from transformers import AutoModelForCausalLM, LlamaConfig

    device = pick_device(args.device)
    if device.type != "cuda" and args.layers >= 32:
        raise SystemExit("--shape 8b needs a GPU (about 40 GB with gradient checkpointing); for a CPU check of the code "
                         "path use --layers 1 --hidden 64 --vocab 1000 --context 256 --batch 1 --device cpu --dtype float32")
    shape = {**LLAMA31_8B, "num_hidden_layers": args.layers}
    if args.hidden:
        shape.update(hidden_size=args.hidden, intermediate_size=args.hidden * 7 // 2, num_attention_heads=4,
                     num_key_value_heads=1)
    if args.vocab:
        shape["vocab_size"] = args.vocab
    text = TextTokenizer(word_tokenizer(PAPER), PAPER)  # the paper's text, about 10 tokens per step as with Llama 3's
    dtype = resolve_dtype(args.dtype, device)
    results = []
    settings = [(f"IA3, {args.dtype}", False, 1), (f"IA3, {args.dtype} + grad. checkpointing", True, 1)]
    if args.micro_batches > 1:
        settings.append((f"IA3, {args.dtype} + grad. ckpt, {args.micro_batches} micro-batches", True, args.micro_batches))
    for name, checkpointing, parts in settings:
        with torch.device(device):  # weights are created on the device directly
            model = AutoModelForCausalLM.from_config(LlamaConfig(**shape), dtype=dtype, attn_implementation="sdpa")
        params = sum(p.numel() for p in model.parameters())
        network = HFQNetwork(model, text, AdapterConfig(kind="ia3"), checkpointing).to(device)
        trials = rows(network, args.context, args.batch, 100, args.seed)
        label = f"{name} ({params / 1e9:.2f}B params)"
        try:
            results.append((label, measure(network, trials, args.context, args.steps, args.warmup, device, parts)))
        except torch.OutOfMemoryError:
            results.append((label, {"steps_per_s": float("nan"), "tokens_per_s": float("nan"), "step_s": float("nan"),
                                    "peak_gib": float("inf"), "tokens": 0}))
        del model, network
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
    parser.add_argument("--hidden", type=int, default=0, help="8b shape only: a smaller width for a CPU check")
    parser.add_argument("--vocab", type=int, default=0, help="8b shape only: a smaller vocabulary for a CPU check")
    parser.add_argument("--dtype", default="bfloat16", help="8b shape only: float32 for a CPU check (CPUs run bf16 slowly)")
    parser.add_argument("--micro-batches", type=int, default=1,
                        help="8b shape only: also measure checkpointing with each update split into this many passes")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    args.context = args.context or (1024 if args.shape == "tiny" else 4096)
    args.batch = args.batch or (8 if args.shape == "tiny" else 10)
    if args.micro_batches < 1:
        parser.error(f"--micro-batches {args.micro_batches}: use 1 (off) or more passes per update")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run_tiny(args) if args.shape == "tiny" else run_8b(args)
    device = pick_device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\n{args.shape} Llama, {args.batch} rows x {args.context} tokens per step, {where}")
    print(f"{'setting':62s} {'steps/s':>8s} {'tokens/s':>10s} {'step s':>8s} {'peak GiB':>9s} {'vs first':>9s}")
    base = results[0][1]["tokens_per_s"]
    for name, r in results:
        peak = f"{r['peak_gib']:9.2f}" if device.type == "cuda" else f"{'n/a':>9s}"
        print(f"{name:62s} {r['steps_per_s']:8.3f} {r['tokens_per_s']:10.0f} {r['step_s']:8.3f} {peak} "
              f"{r['tokens_per_s'] / base:8.2f}x")


if __name__ == "__main__":
    main()
