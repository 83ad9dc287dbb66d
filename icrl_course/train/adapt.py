"""Adapting a trained Hugging Face Q-network to new maps with each fine-tuning method, measured side by side.

Why: lesson 6 claims that IA3 and LoRA train a small share of a model's
weights; whether that share is enough depends on the task. This module turns
the claim into a measured point: one base model (an exported ``hf`` model
trained whole, e.g. the shipped ``tiny-llama``), one adaptation config (e.g.
``configs/tiny-llama-adapt.json``: larger maps), and for every method (full
fine-tuning, LoRA, IA3) and seed one run of the one trainer started from the
base's weights (``model.init_from``). Every row of the result is measured the
same way: greedy trials of the config's length on the config's val maps (the
ones training evaluates on) and on ``test_maps`` maps of the test split,
before (the base itself) and after each run; with the run's trained values
and CPU time.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import pandas as pd

from icrl_course.checkpoints import load_agent
from icrl_course.train.config import ConfigError, HFModel, TrainConfig
from icrl_course.train.log import read_metrics
from icrl_course.train.loop import evaluation_maps, train
from icrl_course.trials import mean_over_episodes, run_trials

METHODS = ("full", "lora", "ia3")
"""The fine-tuning methods compared: every weight, low-rank updates, learned scales (``HFModel.adapter``)."""
LEARNING_RATES = {"full": 1e-3, "lora": 3e-3, "ia3": 1e-2}
"""Each method's learning rate in lesson 6's comparison: whole weights as in training from scratch, LoRA's
low-rank factors a few times larger, IA3's scales the paper's 1e-2 (a scale near 1 needs larger steps to move)."""
BASE = "base"
"""``method`` of the rows that measure the base model itself, before any adaptation."""
COLUMNS = ("method", "seed", "split", "maps", "mean_success", "low", "high", "episode_1", "episode_last",
           "trained_values", "cpu_minutes", "iterations")
"""Columns of ``compare_methods``' table: one row per method x seed x split (``BASE`` rows: seed -1, no run)."""


def compare_methods(base: str, config: TrainConfig, run_root: str | Path, methods: Sequence[str] = METHODS,
                    seeds: Sequence[int] = (0,), lrs: dict[str, float] | None = LEARNING_RATES, test_maps: int = 200,
                    test_seed: int = 0) -> pd.DataFrame:
    """Fine-tune ``base`` with every method and seed under ``config``; one tidy row per method x seed x split.

    ``config``'s model section gives the base's shape (it must fit ``base``,
    which ``model.init_from`` checks); its ``adapter`` and ``init_from`` are
    set here. ``lrs`` gives a method its own learning rate (``LEARNING_RATES``;
    None: ``config.lr`` for all). Runs go
    to ``run_root/<method>-seed<seed>`` and resume when they exist. The base is
    measured once, on the same maps, as the rows of method ``BASE``.
    """
    if not isinstance(config.model, HFModel):
        raise ConfigError("model.kind must be 'hf': the methods compared are ways to fine-tune a Hugging Face model")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"methods {unknown} are unknown: choose from {list(METHODS)}")
    splits = {"val": evaluation_maps(config),
              "test": config.map_distribution().sample_many(test_maps, seed=test_seed, split="test")}
    rows = [_measure(load_agent(base), splits, config, BASE, -1, 0, 0.0, 0)]
    for method in methods:
        for seed in seeds:
            run = config.replace(seed=seed, lr=(lrs or {}).get(method, config.lr),
                                 model=replace(config.model, adapter=method, init_from=base))
            result = train(run, Path(run_root) / f"{method}-seed{seed}")
            trained = sum(int(t.numel()) for t in result.network.trainable().values())
            cpu = float(read_metrics(result.run_dir, "train")["cpu_seconds"].iloc[-1]) / 60
            rows.append(_measure(result.agent(), splits, config, method, seed, trained, cpu, result.iterations))
    return pd.DataFrame([r for part in rows for r in part], columns=list(COLUMNS))


def _measure(agent, splits: dict, config: TrainConfig, method: str, seed: int, trained: int, cpu_minutes: float,
             iterations: int) -> list[dict]:
    rows = []
    for split, maps in splits.items():
        table = run_trials(agent, maps, config.episodes_per_trial, seed=config.eval_seed,
                           max_episode_steps=config.max_episode_steps, is_slippery=config.is_slippery).table
        overall = mean_over_episodes(table).iloc[0]
        curve = table.groupby("episode")["success"].mean().to_numpy()
        rows.append({"method": method, "seed": seed, "split": split, "maps": len(maps),
                     "mean_success": overall["mean"], "low": overall["low"], "high": overall["high"],
                     "episode_1": float(curve[0]), "episode_last": float(curve[-1]), "trained_values": trained,
                     "cpu_minutes": cpu_minutes, "iterations": iterations})
    return rows


def method_table(table: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """One row per method (seeds averaged, their count shown): success before and after, values trained, CPU time."""
    part = table[table["split"] == split]
    before = part[part["method"] == BASE]["mean_success"].mean()
    runs = part[part["method"] != BASE]
    if runs.empty:
        raise ValueError(f"the table holds no fine-tuning runs measured on the {split} split")
    out = runs.groupby("method", sort=False).agg(seeds=("seed", "nunique"), trained_values=("trained_values", "first"),
                                                 cpu_minutes=("cpu_minutes", "mean"), after=("mean_success", "mean"),
                                                 after_sd=("mean_success", "std"), episode_1=("episode_1", "mean"),
                                                 episode_last=("episode_last", "mean"))
    out.insert(3, "before", before)
    out["gain"] = out["after"] - before
    return out
