"""Training a transformer in-context learner by sequence DQN: online (self-play + replay) or offline (a dataset).

One iteration of ``train``:

1. **play** (online only): the current network acts, epsilon-greedily with the
   config's schedule, in ``trials_per_iteration`` fresh trials on training-split
   maps; the trials go into a replay buffer of the most recent ones;
2. **learn**: ``updates_per_iteration`` times, ``batch_trials`` whole trials are
   drawn from the buffer (or the dataset), packed into rows, and one Adam step
   is taken on the sequence DQN loss of ``icrl_course.dqn`` (every step of
   every trial is a TD target in one forward pass); the target network follows
   by Polyak averaging after every step;
3. **measure**: loss and recent success go to ``metrics.jsonl`` and the
   progress bar; every ``eval_every`` iterations the greedy network plays
   held-out val-split maps (with frozen weights: any improvement across
   episodes is in-context learning);
4. **checkpoint**: every ``checkpoint_every`` iterations the whole state is
   written atomically; ``train`` on a run folder that holds one resumes there.

Reproducibility: every random draw of iteration ``i`` comes from a generator
seeded by ``(seed, i)``, weights are initialised from ``seed``, and the torch
random state is checkpointed, so a run killed and resumed ends with the same
weights, bit for bit, as one that was never interrupted (on the same machine
and thread count).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from icrl_course.baselines import ExplorerAgent
from icrl_course.data import load_dataset
from icrl_course.dqn import make_target, polyak_update, sequence_dqn_loss
from icrl_course.models.agent import TransformerAgent
from icrl_course.models.transformer import QTransformer, TransformerConfig
from icrl_course.runtime import pick_device
from icrl_course.tokenize.base import StepBatch
from icrl_course.tokenize.compact import CompactTokenizer
from icrl_course.train.checkpoint import (
    load_module_arrays,
    load_optimizer_arrays,
    load_training_state,
    module_arrays,
    optimizer_arrays,
    restore_rng,
    rng_arrays,
    save_model,
    save_training_state,
)
from icrl_course.train.config import ConfigError, TrainConfig
from icrl_course.train.log import MetricsLog
from icrl_course.train.replay import ReplayBuffer
from icrl_course.trials import Schedule, TrialResults, run_trials

STATE_FILE = "state.safetensors"
CONFIG_FILE = "config.json"
MODEL_STEM = "model"
CLOCKS = ("wall_seconds", "cpu_seconds", "play_seconds", "update_seconds")
"""Cumulative timers of a run (kept across resumes): all its time, this process's CPU time (on a shared
machine, closer to what the run costs on a free one), and the wall time spent playing and updating."""
RESUMABLE_CHANGES = {"progress", "device", "threads", "act_with"}
"""Config fields that may differ when resuming: they change how fast a run goes, or which of its
networks is evaluated and exported, not what it trains."""


# ------------------------------------------------------------------------ building blocks
def tokenizer_for(config: TrainConfig) -> CompactTokenizer:
    """The compact tokenizer a config's model reads (FrozenLake's rewards are 0 and 1)."""
    return CompactTokenizer(edge_cap=config.edge_cap, reward_values=(0.0, 1.0))


def model_config_for(config: TrainConfig) -> TransformerConfig:
    """The transformer's size from a training config, with the field sizes of its tokenizer."""
    return TransformerConfig(field_sizes=tokenizer_for(config).field_sizes, n_layer=config.n_layer,
                             n_head=config.n_head, n_embd=config.n_embd, mlp_ratio=config.mlp_ratio,
                             dropout=config.dropout)


def context_length(config: TrainConfig) -> int:
    """Tokens of the longest possible trial: one per step plus the closing token."""
    return config.episodes_per_trial * config.max_episode_steps + 1


def evaluation_maps(config: TrainConfig) -> list:
    """The held-out maps every evaluation of this config uses: the val split (model choices are made there;
    the test split is kept for the reported number), drawn with ``eval_seed``."""
    return config.map_distribution().sample_many(config.eval_maps, seed=config.eval_seed, split="val")


def success_by_episode(results: TrialResults) -> np.ndarray:
    """Share of maps whose episode k (from 0) reached a goal, for every k."""
    return results.table.groupby("episode")["success"].mean().to_numpy()


def dqn_update(model: QTransformer, target: QTransformer, optimizer: torch.optim.Optimizer, batch: StepBatch,
               config: TrainConfig) -> dict[str, float]:
    """One gradient step of the sequence DQN loss on a packed batch, then one Polyak step of the target.

    Returns the loss and the objective's diagnostics as floats.
    """
    dqn = config.dqn_config()
    model.train()
    online_q = model.q_values(batch)
    with torch.no_grad():
        target_q = target.q_values(batch)
    loss, metrics = sequence_dqn_loss(online_q, target_q, batch, dqn)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    else:
        grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]))
    optimizer.step()
    polyak_update(target, model, dqn.tau)
    return {"loss": loss.item(), "grad_norm": float(grad_norm), **{k: float(v) for k, v in metrics.items()}}


@dataclass
class TrainResult:
    """What ``train`` hands back: the network that acts (``config.act_with``) and where the run's files are."""

    model: QTransformer
    tokenizer: CompactTokenizer
    run_dir: Path
    iterations: int
    wall_seconds: float
    last_eval: dict[str, Any] | None

    def agent(self, **kwargs) -> TransformerAgent:
        """The trained network as an agent ``run_trials`` accepts (greedy unless ``epsilon`` is given)."""
        return TransformerAgent(self.model, self.tokenizer, **kwargs)


# ------------------------------------------------------------------------ the run
class _Run:
    """Everything one training run holds, and how it is saved and restored."""

    def __init__(self, config: TrainConfig, run_dir: Path):
        self.config, self.run_dir = config, run_dir
        self.device = pick_device(config.device)
        self.tokenizer = tokenizer_for(config)
        torch.manual_seed(config.seed)
        self.model = QTransformer(model_config_for(config), seed=config.seed).to(self.device)
        self.target = make_target(self.model)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        if config.source == "online":
            self.replay = ReplayBuffer(config.replay_capacity, self.tokenizer.encode)
        else:
            trials = load_dataset(config.dataset)
            if not trials:
                raise ConfigError(f"dataset={config.dataset!r} holds no trials: make one with `icrl-course dataset`")
            self.replay = ReplayBuffer(len(trials), self.tokenizer.encode)
            self.replay.add(trials)
        longest = max((len(e) for e in self.replay.encoded), default=0)
        self.context_length = max(context_length(config), longest)
        self.iteration = 0
        self.env_steps = 0
        self.updates = 0
        self.clock = dict.fromkeys(CLOCKS, 0.0)

    @property
    def acting(self) -> QTransformer:
        """The network evaluated and exported (``config.act_with``)."""
        return self.target if self.config.act_with == "target" else self.model

    def save(self, last_eval: dict[str, Any] | None) -> None:
        """Write the full state, then the exported model, each atomically."""
        optim, groups = optimizer_arrays(self.optimizer)
        arrays = {**module_arrays(self.model, "model"), **module_arrays(self.target, "target"), **optim, **rng_arrays()}
        if self.config.source == "online":
            arrays.update({f"replay/{k}": v for k, v in self.replay.to_arrays().items()})
        header = {"config": self.config.to_dict(), "iteration": self.iteration, "env_steps": self.env_steps,
                  "updates": self.updates, "clock": self.clock, "param_groups": groups}
        save_training_state(self.run_dir / STATE_FILE, arrays, header)
        self.export(self.run_dir / MODEL_STEM, last_eval)

    def export(self, path: Path, last_eval: dict[str, Any] | None) -> tuple[Path, Path]:
        spec = {
            "model": self.model.config.to_dict(),
            "tokenizer": {"edge_cap": self.tokenizer.edge_cap, "reward_values": list(self.tokenizer.reward_values)},
            "train_config": self.config.to_dict(),
            "trained": {"iterations": self.iteration, "env_steps": self.env_steps, "updates": self.updates,
                        **{k: round(v, 1) for k, v in self.clock.items()}, "last_eval": last_eval},
        }
        return save_model(path, self.acting, spec)

    def restore(self, path: Path) -> None:
        arrays, header = load_training_state(path)
        saved = TrainConfig.from_dict(header["config"])
        changed = {k: v for k, v in saved.changes(self.config).items() if k not in RESUMABLE_CHANGES}
        if changed:
            listing = ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in ((k, *v) for k, v in changed.items()))
            raise ConfigError(f"{path} was written by a run with a different config ({listing}); resuming would "
                              "mix two experiments: use the saved config, or a new run folder")
        load_module_arrays(self.model, arrays, "model")
        load_module_arrays(self.target, arrays, "target")
        load_optimizer_arrays(self.optimizer, arrays, header["param_groups"])
        restore_rng(arrays)
        if self.config.source == "online":
            replay = {k[len("replay/"):]: v for k, v in arrays.items() if k.startswith("replay/")}
            self.replay = ReplayBuffer.from_arrays(replay, self.config.replay_capacity, self.tokenizer.encode)
        self.iteration, self.env_steps = header["iteration"], header["env_steps"]
        self.updates, self.clock = header["updates"], header["clock"]


def train(config: TrainConfig, run_dir: str | Path, resume: bool = True, stop_at: int | None = None) -> TrainResult:
    """Train (or resume training) a transformer Q-network as ``config`` says, writing into ``run_dir``.

    ``run_dir`` receives ``config.json``, ``metrics.jsonl``, the training state
    ``state.safetensors`` (every ``checkpoint_every`` iterations and at the
    end) and the exported model ``model.safetensors`` + ``model.json``. When it
    already holds a state and ``resume`` is True, training continues from it
    (the saved config must match, except ``progress``, ``device``, ``threads`` and
    ``act_with``); on a finished run it only evaluates and exports the model again.
    With ``resume=False`` an existing state is an error rather than overwritten.
    ``stop_at`` pauses the run after that many iterations (with a checkpoint
    there), so a long run can be done in slices; calling ``train`` again resumes it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    run = _Run(config, run_dir)
    state_path = run_dir / STATE_FILE
    if state_path.exists():
        if not resume:
            raise FileExistsError(f"{run_dir} already holds a training state: resume it, or pick a new run folder")
        run.restore(state_path)
    else:
        config.to_json(run_dir / CONFIG_FILE)
    # Records are numbered by iteration from 0, so a state after N iterations keeps records 0..N-1.
    log = MetricsLog(run_dir, resume_iteration=run.iteration - 1 if state_path.exists() else None)
    eval_maps = evaluation_maps(config)
    explorer = run_trials(ExplorerAgent(), eval_maps, config.episodes_per_trial, seed=config.eval_seed,
                          max_episode_steps=config.max_episode_steps, is_slippery=config.is_slippery)
    explorer_curve = success_by_episode(explorer)
    last_eval = None
    recent: list[float] = []
    bar = tqdm(total=config.iterations, initial=run.iteration, desc="training", disable=not config.progress)
    try:
        end = config.iterations if stop_at is None else min(stop_at, config.iterations)
        started_at = run.iteration
        while run.iteration < end:
            wall, cpu = time.perf_counter(), time.process_time()
            it = run.iteration
            rng = np.random.default_rng([config.seed, it])
            record: dict[str, Any] = {}
            if config.source == "online":
                epsilon = config.epsilon(it)
                maps = config.map_distribution().sample_many(config.trials_per_iteration, rng, split="train")
                played = run_trials(TransformerAgent(run.model, run.tokenizer), maps, config.episodes_per_trial,
                                    Schedule.epsilon_greedy(epsilon), seed=int(rng.integers(2**63)),
                                    max_episode_steps=config.max_episode_steps, is_slippery=config.is_slippery)
                run.replay.add(played.trials)
                run.env_steps += sum(len(t) for t in played.trials)
                recent = (recent + [float(played.table["success"].mean())])[-20:]
                record.update(epsilon=epsilon, train_success=recent[-1])
            played_at = time.perf_counter()
            stats = []
            if config.source == "offline" or len(run.replay) >= config.warmup_trials:
                for group in run.optimizer.param_groups:
                    group["lr"] = config.learning_rate(it)
                for _ in range(config.updates_per_iteration):
                    batch = run.replay.sample_batch(config.batch_trials, rng, run.context_length, run.tokenizer.pad_id)
                    batch = batch.to(run.device)
                    stats.append(dqn_update(run.model, run.target, run.optimizer, batch, config))
                run.updates += len(stats)
            record.update({k: float(np.mean([s[k] for s in stats])) for k in stats[0]} if stats else {})
            run.clock["play_seconds"] += played_at - wall
            run.clock["update_seconds"] += time.perf_counter() - played_at
            run.iteration += 1
            evaluated = bool(config.eval_every and run.iteration % config.eval_every == 0) or run.iteration == config.iterations
            if evaluated:
                last_eval = _evaluate(run, eval_maps, explorer_curve)
            run.clock["wall_seconds"] += time.perf_counter() - wall
            run.clock["cpu_seconds"] += time.process_time() - cpu
            log.write(it, "train", **record, env_steps=run.env_steps, updates=run.updates, **run.clock)
            if evaluated:
                log.write(it, "eval", **last_eval, **run.clock)
            # Log first, then checkpoint: a kill between the two leaves records that a resume drops
            # (they come after the older checkpoint), never a checkpoint whose records are missing.
            if run.iteration % config.checkpoint_every == 0 or run.iteration == end:
                run.save(last_eval)  # its own time is left out of the clocks: they must match across a resume
            bar.update(1)
            bar.set_postfix(loss=record.get("loss", float("nan")), eps=record.get("epsilon", 0.0),
                            success=np.mean(recent) if recent else float("nan"),
                            eval=last_eval["mean_success"] if last_eval else float("nan"), refresh=False)
        if started_at == run.iteration == config.iterations:
            # A finished run asked to train again: refresh its exported model (e.g. after act_with changed).
            last_eval = _evaluate(run, eval_maps, explorer_curve)
            run.export(run_dir / MODEL_STEM, last_eval)
    finally:
        bar.close()
        log.close()
    return TrainResult(run.acting, run.tokenizer, run_dir, run.iteration, run.clock["wall_seconds"], last_eval)


def _evaluate(run: _Run, maps: list, explorer_curve: np.ndarray) -> dict[str, Any]:
    """Greedy play on the held-out maps: success per episode, its mean, and the explorer's for reference."""
    config = run.config
    played = run_trials(TransformerAgent(run.acting, run.tokenizer), maps, config.episodes_per_trial,
                        seed=config.eval_seed, max_episode_steps=config.max_episode_steps,
                        is_slippery=config.is_slippery)
    curve = success_by_episode(played)
    return {"success_by_episode": [round(float(v), 4) for v in curve], "mean_success": float(curve.mean()),
            "explorer_mean_success": float(explorer_curve.mean()),
            "ratio_to_explorer": float(curve.mean() / max(explorer_curve.mean(), 1e-9))}
