"""What splitting each update into K micro-batches of similar length costs or saves, side by side per model kind.

Why: a DQN update packs its ``batch_trials`` trials into rows as long as the longest one, and attention
costs every row its length squared, so short trials sharing a long row pay for it. ``micro_batches=K``
(``TrainConfig``) sorts the drawn trials by length and packs them as K micro-batches, each in rows as long
as its own longest trial, one pass each, with the gradient of the whole batch (``train.loop.dqn_update``).
This plays trials of the lengths a late training run replays (the shipped checkpoint of each config,
epsilon 0.1, training-split maps), then times ``--updates`` DQN updates of a freshly built network on the
same draws of ``batch_trials`` trials for each K. Times are this process's CPU seconds on one thread.
(What K does to a GPU's peak memory: ``llama_train_throughput.py --shape 8b --micro-batches K``.)

    python benchmarks/micro_batches.py
    python benchmarks/micro_batches.py --configs tiny-llama --parts 1 4 8 16 --updates 16
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from icrl_course.checkpoints import CheckpointError, load_agent
from icrl_course.train.build import build_network
from icrl_course.train.config import ConfigError, TrainConfig
from icrl_course.train.loop import dqn_update
from icrl_course.train.replay import sample_micro_batches
from icrl_course.trials import Schedule, run_trials


def measure(config: TrainConfig, player, parts: list[int], trials: int, updates: int, seed: int) -> dict:
    maps = config.map_distribution().sample_many(trials, seed=seed, split="train")
    played = run_trials(player, maps, config.episodes_per_trial, Schedule.epsilon_greedy(0.1),
                        seed=seed, max_episode_steps=config.max_episode_steps).trials
    network = build_network(config.model, seed=seed)
    encoded = [network.encode(t) for t in played]
    out = {"tokens per trial": float(np.mean([len(e) for e in encoded]))}
    for k in parts:
        network = build_network(config.model, seed=seed)
        target = network.make_target()
        optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=config.lr)
        rng = np.random.default_rng(seed)  # the same draws for every K
        draws = [sample_micro_batches(encoded, config.batch_trials, rng, config.context_length, network.pad_id, k)
                 for _ in range(updates)]
        start = time.process_time()
        for batches in draws:
            dqn_update(network, target, optimizer, batches, config.dqn_config(), config.grad_clip)
        out[k] = (time.process_time() - start) / updates
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["paper-small", "tiny-llama"],
                        help="config names with a shipped checkpoint of the same name (default: both kinds)")
    parser.add_argument("--parts", nargs="+", type=int, default=[1, 2, 4, 8, 16], help="K values; the first is the baseline")
    parser.add_argument("--trials", type=int, default=256, help="trials played to draw batches from (default: 256)")
    parser.add_argument("--updates", type=int, default=8, help="timed updates per K (default: 8)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if min(args.parts) < 1 or args.updates < 1 or args.trials < 1:
        parser.error("--parts, --updates and --trials take positive numbers")
    try:
        configs = {name: TrainConfig.named(name) for name in args.configs}
        players = {name: load_agent(name) for name in args.configs}  # before any work: each needs its checkpoint
    except (ConfigError, CheckpointError) as err:
        parser.error(str(err))
    torch.set_num_threads(1)
    base = args.parts[0]
    print(f"CPU-s per DQN update, one thread (ratio: K={base} time / K time, higher is faster)")
    print(f"{'config':14s}{'tokens/trial':>14s}" + "".join(f"{'K=' + str(k):>16s}" for k in args.parts))
    for name, config in configs.items():
        r = measure(config, players[name], args.parts, args.trials, args.updates, args.seed)
        cells = "".join(f"{r[k]:8.3f} ({r[base] / r[k]:4.2f}x)" for k in args.parts)
        print(f"{name:14s}{r['tokens per trial']:14.0f}{cells}")


if __name__ == "__main__":
    main()
