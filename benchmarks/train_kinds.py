"""The cost of one training iteration for each model kind, side by side: tokens per step, play and update speed.

Why: lesson 5's transformer and lesson 6's tiny Llama train with the same recipe through the same loop, so
what differs is what a step costs. For each config (default: ``paper-small`` and ``tiny-llama``) this
builds the network, plays one iteration's trials with it (untrained, epsilon 1 and 0.1: long episodes) and
times it, then times ``updates_per_iteration`` DQN updates on batches of ``batch_trials`` of those trials,
exactly as ``train.loop`` does. Times are this process's CPU seconds (on a shared machine closer to what a
run costs on a free one than wall time), on one thread.

    python benchmarks/train_kinds.py
    python benchmarks/train_kinds.py --configs paper-small tiny-llama --trials 64
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from icrl_course.train.build import build_network
from icrl_course.train.config import ConfigError, TrainConfig
from icrl_course.train.loop import dqn_update
from icrl_course.train.replay import sample_batch
from icrl_course.trials import Schedule, run_trials


def measure(config: TrainConfig, trials_per_play: int, seed: int) -> dict[str, float]:
    network = build_network(config.model, seed=seed)
    target = network.make_target()
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=config.lr)
    maps = config.map_distribution().sample_many(trials_per_play, seed=seed, split="train")
    played, steps, play_seconds = [], 0, 0.0
    for epsilon in (1.0, 0.1):
        start = time.process_time()
        trials = run_trials(network.agent(), maps, config.episodes_per_trial, Schedule.epsilon_greedy(epsilon),
                            seed=seed, max_episode_steps=config.max_episode_steps).trials
        play_seconds += time.process_time() - start
        played += trials
        steps += sum(len(t) for t in trials)
    encoded = [network.encode(t) for t in played]
    rng = np.random.default_rng(seed)
    start = time.process_time()
    for _ in range(config.updates_per_iteration):
        batch = sample_batch(encoded, config.batch_trials, rng, config.context_length, network.pad_id)
        dqn_update(network, target, optimizer, batch, config.dqn_config(), config.grad_clip)
    update_seconds = time.process_time() - start
    return {"tokens per step": sum(len(e) for e in encoded) / steps,
            "env steps / CPU-s (playing)": steps / play_seconds,
            "updates / CPU-s (learning)": config.updates_per_iteration / update_seconds,
            "CPU-s per iteration": play_seconds / 2 + update_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["paper-small", "tiny-llama"], help="config names in icrl_course/configs or JSON paths")
    parser.add_argument("--trials", type=int, default=32, help="trials played per epsilon (default: 32)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        configs = {name: TrainConfig.named(name) for name in args.configs}
    except ConfigError as err:
        parser.error(str(err))
    torch.set_num_threads(1)
    results = {name: measure(config, args.trials, args.seed) for name, config in configs.items()}
    first = args.configs[0]
    print(f"\none iteration's work per config, one thread; ratios to {first}")
    print(f"{'':30s}" + "".join(f"{name:>16s}" for name in args.configs) + "".join(
        f"{name + ' / ' + first:>28s}" for name in args.configs[1:]))
    for key in results[first]:
        values = "".join(f"{results[name][key]:16.2f}" for name in args.configs)
        ratios = "".join(f"{results[name][key] / results[first][key]:28.2f}" for name in args.configs[1:])
        print(f"{key:30s}{values}{ratios}")


if __name__ == "__main__":
    main()
