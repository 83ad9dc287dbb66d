"""Training an in-context learner by sequence DQN, for any Q-network: online (self-play + replay) or offline.

One iteration of ``train``:

1. **play** (online only): the current network acts, epsilon-greedily with the
   config's schedule, in ``trials_per_iteration`` fresh trials on training-split
   maps; the trials go into a replay buffer of the most recent ones;
2. **learn**: ``updates_per_iteration`` times, ``batch_trials`` whole trials are
   drawn from the buffer (or the dataset), packed into rows, and one AdamW
   step is taken on the sequence DQN loss of ``icrl_course.dqn`` (every step
   of every trial is a TD target in one forward pass); the float32 target
   network follows by Polyak averaging after every step;
3. **measure**: loss and recent success go to ``metrics.jsonl`` and the
   progress bar; every ``eval_every`` iterations the greedy network plays
   held-out val-split maps (with frozen weights: any improvement across
   episodes is in-context learning);
4. **checkpoint**: every ``checkpoint_every`` iterations the whole state is
   written atomically; ``train`` on a run folder that holds one resumes there.

What is evaluated and exported is the acting network (``act_with``), or, from
iteration ``average_from`` on, the mean of its weights at every
``average_every``-th iteration since (stochastic weight averaging).

The network is anything that implements ``models.protocol.QNetwork``, built
from the config's model section: lesson 5's small transformer or a Hugging
Face causal LM with peft adapters; nothing here depends on which.

Reproducibility: every random draw of iteration ``i`` comes from a generator
seeded by ``(seed, i)``, weights are initialised from ``seed``, and the torch
random state is checkpointed, so a run killed and resumed ends with the same
weights, bit for bit, as one that was never interrupted (on the same machine
and thread count).

Several processes: the same command runs under ``torchrun`` or ``accelerate
launch`` (``python -m icrl_course.train`` is ``icrl-course train``), and
PyTorch's DistributedDataParallel averages the gradients. Every process plays
the same trials and draws the same batch, and learns from its share of it;
process 0 alone evaluates, logs and writes checkpoints. GPUs use NCCL, CPUs gloo::

    torchrun --standalone --nproc_per_node=4 -m icrl_course.train --config icrl_course/configs/llama31-8b-paper.json
    accelerate launch --num_processes=4 -m icrl_course.train --config ...
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from icrl_course.baselines import ExplorerAgent
from icrl_course.checkpoints import CheckpointError, load_tensors, save_model, tensor_arrays
from icrl_course.data import load_dataset
from icrl_course.dqn import DQNConfig, has_target, next_in_trial, polyak_update, sequence_dqn_loss
from icrl_course.io import DataFileError, write_json
from icrl_course.models.protocol import QNetwork
from icrl_course.runtime import NumericalError, pick_device
from icrl_course.tokenize.base import StepBatch
from icrl_course.train.build import build_network, check_run, check_trials_fit
from icrl_course.train.config import ConfigError, TrainConfig
from icrl_course.train.lock import RunLock
from icrl_course.train.log import MetricsLog
from icrl_course.train.replay import ReplayBuffer, bonus_encoder
from icrl_course.train.state import (
    check_state_header,
    load_optimizer_arrays,
    load_training_state,
    optimizer_arrays,
    restore_rng,
    rng_arrays,
    save_training_state,
)
from icrl_course.trials import Schedule, TrialResults, run_trials

STATE_FILE = "state.safetensors"
CONFIG_FILE = "config.json"
MODEL_STEM = "model"
SUMMARY_FILE = "summary.json"
CLOCKS = ("wall_seconds", "cpu_seconds", "play_seconds", "update_seconds")
"""Cumulative timers of a run (kept across resumes): all its time, this process's CPU time (on a shared
machine, closer to what the run costs on a free one), and the wall time spent playing and updating."""
STATE_PARTS = ("online", "target", "optim", "rng", "replay", "average")
"""Array name prefixes of a training state."""
RESUMABLE_CHANGES = {"progress", "device", "threads", "micro_batches", "act_with"}
"""Config fields that may differ when resuming: they change how fast a run goes, how much memory an
update needs (a run that ran out of it resumes with more micro-batches), or which of its networks is
evaluated and exported, not what it trains."""


# ------------------------------------------------------------------------ building blocks
def evaluation_maps(config: TrainConfig) -> list:
    """The held-out maps every evaluation of this config uses: the val split (model choices are made there;
    the test split is kept for the reported number), drawn with ``eval_seed``."""
    return config.map_distribution().sample_many(config.eval_maps, seed=config.eval_seed, split="val")


def success_by_episode(results: TrialResults) -> np.ndarray:
    """Share of maps whose episode k (from 0) reached a goal, for every k."""
    return results.table.groupby("episode")["success"].mean().to_numpy()


def dqn_update(network: QNetwork, target: QNetwork, optimizer: torch.optim.Optimizer,
               batch: StepBatch | Sequence[StepBatch], dqn: DQNConfig, grad_clip: float = 0.0,
               forward=None, next_token_loss: float = 0.0) -> dict[str, float]:
    """One gradient step of the sequence DQN loss on a packed batch, then one Polyak step of the target.

    ``batch`` may also be a list of packed micro-batches (``replay.sample_micro_batches``): one forward and
    backward pass each, every pass's mean loss weighted by its share of the steps that have a target, so
    the gradient is the one of a single batch holding them all (gradient accumulation). ``forward``
    computes the online Q-values with gradients (default: the network itself; under several processes its
    DistributedDataParallel wrapper, which averages the gradients in the last pass's ``backward``).
    ``next_token_loss`` > 0 (a language model only, ``TrainConfig.next_token_loss``) adds that times the
    network's next-token cross-entropy on the environment's words to each pass's loss.
    Returns the loss and the objective's diagnostics as floats (means over all the passes' steps).
    """
    batches = [batch] if isinstance(batch, StepBatch) else list(batch)
    shares = [1.0]  # of the steps that have a target: one batch has them all, and x 1.0 changes no bit
    if len(batches) > 1:
        counts = [int(has_target(b.terminated, b.has_next, b.step_mask,
                                 next_in_trial(b) if dqn.episode_discount else None).sum()) for b in batches]
        shares = [count / max(sum(counts), 1) for count in counts]
    network.train()
    optimizer.zero_grad(set_to_none=True)
    sums: dict[str, float] = {}
    for i, (part, share) in enumerate(zip(batches, shares)):
        last = i == len(batches) - 1
        with contextlib.nullcontext() if last or not hasattr(forward, "no_sync") else forward.no_sync():
            if next_token_loss:
                online_q, predicted = (forward or network)(part, next_token_loss=True)
            else:
                online_q = (forward or network)(part)
            with torch.no_grad():
                target_q = target.q_values(part)
            loss, metrics = sequence_dqn_loss(online_q, target_q, part, dqn)
            total = loss
            if next_token_loss:
                metrics["next_token_loss"] = predicted
                total = loss + next_token_loss * predicted
            (total * share).backward()
        for name, value in {"loss": loss, **metrics}.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach()) * (1.0 if name == "steps" else share)
    trained = [p for p in network.parameters() if p.requires_grad]
    if grad_clip > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(trained, grad_clip)
    else:
        grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in trained if p.grad is not None]))
    optimizer.step()
    polyak_update(target.trainable(), network.trainable(), dqn.tau)
    return {"loss": sums.pop("loss"), "grad_norm": float(grad_norm), **sums}


@dataclass
class Processes:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    started_group: bool = False
    """Whether ``join`` started the process group (and so ``train`` leaves it at the end)."""

    @classmethod
    def from_environment(cls, device: str) -> tuple["Processes", torch.device]:
        """The processes ``torchrun`` / ``accelerate launch`` describe in the environment, and this one's device."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        dev = pick_device(device)
        if world == 1:
            return cls(), dev
        if dev.type == "cuda":
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(dev)
        return cls(int(os.environ["RANK"]), world), dev

    @property
    def main(self) -> bool:
        return self.rank == 0

    def join(self, device: torch.device) -> None:
        """Join the process group (NCCL on GPUs, gloo on CPUs). Called once the network is built: under a process
        group, transformers' ``save_pretrained`` writes on rank 0 only, and every process builds its own tiny Llama."""
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self.started_group = True

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


@dataclass
class TrainResult:
    """What ``train`` hands back: the network that acts (``config.act_with``) and where the run's files are."""

    network: QNetwork
    run_dir: Path
    iterations: int
    wall_seconds: float
    last_eval: dict[str, Any] | None
    main: bool = True
    """False in every process but the first of a multi-process run (those do not evaluate)."""

    def agent(self, **kwargs):
        """The trained network as an agent ``run_trials`` accepts (greedy unless ``epsilon`` is given)."""
        return self.network.agent(**kwargs)


# ------------------------------------------------------------------------ the run
class _Run:
    """Everything one training run holds, and how it is saved and restored."""

    def __init__(self, config: TrainConfig, run_dir: Path, processes: Processes, device: torch.device):
        self.config, self.run_dir, self.processes = config, run_dir, processes
        if config.batch_trials % processes.world:
            raise ConfigError(f"batch_trials={config.batch_trials} is invalid: it must divide by the "
                              f"{processes.world} training processes")
        torch.manual_seed(config.seed)
        self.network = build_network(config.model, config.seed, device)
        processes.join(device)
        self.target = self.network.make_target()
        self.optimizer = torch.optim.AdamW([p for p in self.network.parameters() if p.requires_grad], lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.forward = torch.nn.parallel.DistributedDataParallel(self.network) if processes.world > 1 else None
        self.encode = bonus_encoder(self.network.encode, config.exploration_bonus)
        if config.source == "online":
            self.replay = ReplayBuffer(config.replay_capacity, self.encode)
        else:
            trials = load_dataset(config.dataset)
            check_trials_fit(trials, config, f"dataset={config.dataset!r}")
            if len(trials) < processes.world:
                raise ConfigError(f"dataset={config.dataset!r} holds {len(trials)} trials, fewer than the "
                                  f"{processes.world} processes: make one with `icrl-course dataset`")
            self.replay = ReplayBuffer(len(trials), self.encode)
            self.replay.add(trials)
        self.iteration = 0
        self.saved_at: int | None = None
        self.env_steps = 0
        self.updates = 0
        self.clock = dict.fromkeys(CLOCKS, 0.0)
        self.average: dict[str, torch.Tensor] = {}  # float64 sums of the acting network's weights (average_from)
        self.averaged = 0
        self.batches = hashlib.sha256()  # which trials this process learned from: its share differs from the others'

    @property
    def acting(self) -> QNetwork:
        """The network evaluated and exported (``config.act_with``)."""
        return self.target if self.config.act_with == "target" else self.network

    def averaging_points(self, iteration: int) -> int:
        """How many weights the mean holds once ``iteration`` iterations are done (``config.average_from``)."""
        start, every = self.config.average_from, self.config.average_every
        return 0 if not start or iteration < start else (iteration - start) // every + 1

    def accumulate(self) -> None:
        """Add the acting network's weights to the mean when this iteration is one of its points."""
        if self.averaging_points(self.iteration) == self.averaged:
            return
        with torch.no_grad():
            for name, tensor in self.acting.trainable().items():
                value = tensor.detach().to("cpu", torch.float64)
                self.average[name] = self.average[name] + value if name in self.average else value.clone()
        self.averaged += 1

    def exported(self) -> dict[str, torch.Tensor]:
        """The weights evaluated and exported: the acting network's, or their mean once averaging started."""
        acting = self.acting.trainable()
        if not self.averaged:
            return acting
        return {name: (self.average[name] / self.averaged).to(acting[name].dtype) for name in acting}

    @contextlib.contextmanager
    def playing_exported(self):
        """The acting network holds the exported weights inside the block, its own again after it."""
        if not self.averaged:
            yield
            return
        acting = self.acting.trainable()
        kept = {name: tensor.detach().clone() for name, tensor in acting.items()}
        try:
            _assign(acting, self.exported())
            yield
        finally:
            _assign(acting, kept)

    def save(self, last_eval: dict[str, Any] | None) -> None:
        """Write the full state, then the exported model, each atomically; never a network holding NaN."""
        for which, network in (("online", self.network), ("target", self.target)):
            bad = [name for name, tensor in network.trainable().items() if not bool(torch.isfinite(tensor).all())]
            if bad:
                self.diverged(self.iteration - 1, f"the {which} network's {bad[0]!r} holds NaN or infinite values")
        optim, groups = optimizer_arrays(self.optimizer)
        arrays = {**tensor_arrays(self.network.trainable(), "online"), **tensor_arrays(self.target.trainable(), "target"),
                  **optim, **rng_arrays()}
        if self.config.source == "online":
            arrays.update({f"replay/{k}": v for k, v in self.replay.to_arrays().items()})
        arrays.update(tensor_arrays(self.average, "average"))
        header = {"config": self.config.to_dict(), "iteration": self.iteration, "env_steps": self.env_steps,
                  "updates": self.updates, "clock": self.clock, "param_groups": groups, "averaged": self.averaged}
        save_training_state(self.run_dir / STATE_FILE, arrays, header)
        self.export(self.run_dir / MODEL_STEM, last_eval)
        self.saved_at = self.iteration

    def diverged(self, iteration: int, what: str) -> None:
        """Stop the run: ``what`` went non-finite in ``iteration``. Nothing of it is saved, so the run folder
        keeps its last good checkpoint."""
        kept = (f"{self.run_dir / STATE_FILE} still holds iteration {self.saved_at}" if self.saved_at is not None
                else "no checkpoint was written")
        raise NumericalError(f"training diverged in iteration {iteration} (update {self.updates}): {what}; "
                             f"the run stopped and {kept}. Start a new run folder with a lower lr (now "
                             f"{self.config.lr:g}) or reward_scale (now {self.config.reward_scale:g}), or grad_clip > 0")

    def export(self, path: Path, last_eval: dict[str, Any] | None) -> tuple[Path, Path]:
        spec = {
            "model": self.config.to_dict()["model"],
            "seed": self.config.seed,
            "train_config": self.config.to_dict(),
            "trained": {"iterations": self.iteration, "env_steps": self.env_steps, "updates": self.updates,
                        **{k: round(v, 1) for k, v in self.clock.items()}, "last_eval": last_eval},
        }
        if self.averaged:
            spec["trained"]["averaged_weights"] = self.averaged
        return save_model(path, self.exported(), spec)

    def restore(self, path: Path) -> None:
        """Continue from a saved state, after checking that every part of it fits this run."""
        arrays, header = load_training_state(path)
        check_state_header(header, self.config.iterations, CLOCKS, str(path))
        unexpected = sorted(k for k in arrays if k.split("/", 1)[0] not in STATE_PARTS)
        if unexpected:
            raise CheckpointError(f"{path} holds arrays no training state has: {unexpected[:3]}")
        try:
            saved = TrainConfig.from_dict(header["config"])
        except (ConfigError, TypeError) as err:
            raise CheckpointError(f"{path} holds a config this library refuses ({err}); it is damaged") from None
        changed = {k: v for k, v in saved.changes(self.config).items() if k not in RESUMABLE_CHANGES}
        if changed:
            listing = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise ConfigError(f"{path} was written by a run with a different config ({listing}); resuming would "
                              "mix two experiments: use the saved config, or a new run folder")
        load_tensors(self.network.trainable(), arrays, "online", str(path))
        load_tensors(self.target.trainable(), arrays, "target", str(path))
        load_optimizer_arrays(self.optimizer, arrays, header["param_groups"], str(path))
        restore_rng(arrays, str(path))
        if self.config.source == "online":
            replay = {k[len("replay/"):]: v for k, v in arrays.items() if k.startswith("replay/")}
            try:
                self.replay = ReplayBuffer.from_arrays(replay, self.config.replay_capacity, self.encode)
                if len(replay.get("map_shape", ())) > self.config.replay_capacity:
                    raise DataFileError(f"it holds {len(replay['map_shape'])} trials, more than replay_capacity="
                                        f"{self.config.replay_capacity}")
            except DataFileError as err:
                raise CheckpointError(f"{path}: its replay buffer is damaged ({err})") from None
        self.iteration, self.env_steps = header["iteration"], header["env_steps"]
        self.updates, self.clock = header["updates"], header["clock"]
        self.saved_at = self.iteration
        self.averaged = self.averaging_points(self.iteration)
        if self.averaged and saved.act_with != self.config.act_with:
            raise ConfigError(f"{path} averages the {saved.act_with} network's weights (average_from="
                              f"{self.config.average_from}); resume with act_with={saved.act_with!r}")
        stored = any(k.startswith("average/") for k in arrays)
        if header.get("averaged", 0) != self.averaged or stored != bool(self.averaged):
            raise CheckpointError(f"{path} holds {header.get('averaged', 0)} averaged weights where iteration "
                                  f"{self.iteration} with average_from={self.config.average_from} needs "
                                  f"{self.averaged}; it is damaged")
        if self.averaged:
            self.average = {name: torch.zeros(tensor.shape, dtype=torch.float64)
                            for name, tensor in self.acting.trainable().items()}
            load_tensors(self.average, arrays, "average", str(path))

    def play(self, iteration: int, rng: np.random.Generator) -> dict[str, float]:
        """Online play of one iteration into the replay; returns what it logs."""
        config = self.config
        epsilon = config.epsilon(iteration)
        maps = config.map_distribution().sample_many(config.trials_per_iteration, rng, split="train")
        played = run_trials(self.network.agent(), maps, config.episodes_per_trial, Schedule.epsilon_greedy(epsilon),
                            seed=int(rng.integers(2**63)), max_episode_steps=config.max_episode_steps,
                            is_slippery=config.is_slippery)
        self.replay.add(played.trials)
        self.env_steps += sum(len(t) for t in played.trials)
        return {"epsilon": epsilon, "train_success": float(played.table["success"].mean())}

    def learn(self, iteration: int, rng: np.random.Generator) -> dict[str, float]:
        """The iteration's updates (none before the replay holds ``warmup_trials``); their mean diagnostics."""
        config, processes = self.config, self.processes
        if config.source == "online" and len(self.replay) < max(config.warmup_trials, processes.world):
            return {}
        for group in self.optimizer.param_groups:
            group["lr"] = config.learning_rate(iteration)
        stats = []
        for _ in range(config.updates_per_iteration):
            batches = self.replay.sample_micro_batches(config.batch_trials, rng, config.context_length, self.network.pad_id,
                                                       config.micro_batches, processes.rank, processes.world)
            for batch in batches:
                self.batches.update(batch.input_ids.numpy().tobytes())
            stats.append(dqn_update(self.network, self.target, self.optimizer,
                                    [batch.to(self.network.device) for batch in batches],
                                    config.dqn_config(), config.grad_clip, self.forward, config.next_token_loss))
            for name in ("loss", "grad_norm"):  # the gradient norm is the same in every process: all stop together
                if not math.isfinite(stats[-1][name]):
                    self.updates += len(stats)
                    self.diverged(iteration, f"the {name.replace('_', ' ')} is {stats[-1][name]}")
        self.updates += len(stats)
        means = {k: float(np.mean([s[k] for s in stats])) for k in stats[0]}
        if processes.world > 1:  # the record shows the mean over all processes
            values = torch.tensor(list(means.values()), dtype=torch.float64)
            torch.distributed.all_reduce(values)
            means = dict(zip(means, (values / processes.world).tolist()))
        return means


def train(config: TrainConfig, run_dir: str | Path, resume: bool = True, stop_at: int | None = None) -> TrainResult:
    """Train (or resume training) the Q-network ``config`` describes, writing into ``run_dir``.

    ``run_dir`` receives ``config.json``, ``metrics.jsonl``, the training state
    ``state.safetensors`` (every ``checkpoint_every`` iterations and at the
    end), the exported model ``model.safetensors`` + ``model.json`` and
    ``summary.json``. When it already holds a state and ``resume`` is True,
    training continues from it (the saved config must match, except
    ``progress``, ``device``, ``threads`` and ``act_with``); on a finished run
    it only evaluates and exports the model again. With ``resume=False`` an
    existing state is an error rather than overwritten. ``stop_at`` pauses the
    run after that many iterations (with a checkpoint there), so a long run can
    be done in slices; calling ``train`` again resumes it.

    Safe to call on anything: the config is checked against the model, the
    maps and this machine before any work (``build.check_run``); the run
    folder is locked for the run (``lock.RunLock``); a saved state is checked
    part by part before it is restored; and a loss, gradient norm or weight
    that turns NaN or infinite stops the run with a ``NumericalError``,
    leaving the last good checkpoint in place.
    """
    check_run(config)
    run_dir = Path(run_dir)
    processes, device = Processes.from_environment(config.device)
    lock = RunLock(run_dir) if processes.main else None  # one run per folder; the first process holds it
    try:
        return _train(config, run_dir, resume, stop_at, processes, device)
    finally:
        if lock is not None:
            lock.release()
        if processes.started_group:
            torch.distributed.destroy_process_group()


def _train(config: TrainConfig, run_dir: Path, resume: bool, stop_at: int | None, processes: Processes,
           device: torch.device) -> TrainResult:
    if config.threads:
        torch.set_num_threads(config.threads)
    state_path = run_dir / STATE_FILE
    resuming = state_path.exists()
    if resuming and not resume:
        raise FileExistsError(f"{run_dir} already holds a training state: resume it, or pick a new run folder")
    run = _Run(config, run_dir, processes, device)
    if resuming:
        run.restore(state_path)
    elif processes.main:
        config.to_json(run_dir / CONFIG_FILE)
    main = processes.main
    # Records are numbered by iteration from 0, so a state after N iterations keeps records 0..N-1.
    log = MetricsLog(run_dir, resume_iteration=run.iteration - 1 if resuming else None) if main else None
    eval_maps = evaluation_maps(config)
    explorer_curve = None
    if main:
        explorer = run_trials(ExplorerAgent(), eval_maps, config.episodes_per_trial, seed=config.eval_seed,
                              max_episode_steps=config.max_episode_steps, is_slippery=config.is_slippery)
        explorer_curve = success_by_episode(explorer)
    last_eval = None
    recent: list[float] = []
    bar = tqdm(total=config.iterations, initial=run.iteration, desc="training", disable=not (config.progress and main))
    try:
        end = config.iterations if stop_at is None else min(stop_at, config.iterations)
        started_at = run.iteration
        while run.iteration < end:
            wall, cpu = time.perf_counter(), time.process_time()
            it = run.iteration
            rng = np.random.default_rng([config.seed, it])
            record: dict[str, Any] = run.play(it, rng) if config.source == "online" else {}
            if record:
                recent = (recent + [record["train_success"]])[-20:]
            played_at = time.perf_counter()
            record.update(run.learn(it, rng))
            run.clock["play_seconds"] += played_at - wall
            run.clock["update_seconds"] += time.perf_counter() - played_at
            run.iteration += 1
            run.accumulate()
            evaluated = bool(config.eval_every and run.iteration % config.eval_every == 0) or run.iteration == config.iterations
            if evaluated and main:
                last_eval = _evaluate(run, eval_maps, explorer_curve)
            run.clock["wall_seconds"] += time.perf_counter() - wall
            run.clock["cpu_seconds"] += time.process_time() - cpu
            if main:
                log.write(it, "train", **record, env_steps=run.env_steps, updates=run.updates, **run.clock)
                if evaluated:
                    log.write(it, "eval", **last_eval, **run.clock)
            # Log first, then checkpoint: a kill between the two leaves records that a resume drops
            # (they come after the older checkpoint), never a checkpoint whose records are missing.
            if run.iteration % config.checkpoint_every == 0 or run.iteration == end:
                if main:
                    run.save(last_eval)  # its own time is left out of the clocks: they must match across a resume
                processes.barrier()
            bar.update(1)
            bar.set_postfix(loss=record.get("loss", float("nan")), eps=record.get("epsilon", 0.0),
                            success=np.mean(recent) if recent else float("nan"),
                            eval=last_eval["mean_success"] if last_eval else float("nan"), refresh=False)
        if started_at == run.iteration == config.iterations and main:
            # A finished run asked to train again: refresh its exported model (e.g. after act_with changed).
            last_eval = _evaluate(run, eval_maps, explorer_curve)
            run.export(run_dir / MODEL_STEM, last_eval)
        _summarise(run, last_eval)
        if run.averaged:  # what train hands back plays as the exported model does
            _assign(run.acting.trainable(), run.exported())
    finally:
        bar.close()
        if log is not None:
            log.close()
    return TrainResult(run.acting, run_dir, run.iteration, run.clock["wall_seconds"], last_eval, main)


def _assign(tensors: dict[str, torch.Tensor], values: dict[str, torch.Tensor]) -> None:
    """Copy ``values`` into the live ``tensors`` of the same names, in place (a network's weights)."""
    with torch.no_grad():
        for name, tensor in tensors.items():
            tensor.copy_(values[name])


def _evaluate(run: _Run, maps: list, explorer_curve: np.ndarray) -> dict[str, Any]:
    """Greedy play on the held-out maps: success per episode, its mean, and the explorer's for reference."""
    config = run.config
    with run.playing_exported():
        played = run_trials(run.acting.agent(), maps, config.episodes_per_trial, seed=config.eval_seed,
                            max_episode_steps=config.max_episode_steps, is_slippery=config.is_slippery)
    curve = success_by_episode(played)
    return {"success_by_episode": [round(float(v), 4) for v in curve], "mean_success": float(curve.mean()),
            "explorer_mean_success": float(explorer_curve.mean()),
            "ratio_to_explorer": float(curve.mean() / max(explorer_curve.mean(), 1e-9))}


def _summarise(run: _Run, last_eval: dict[str, Any] | None) -> None:
    """``summary.json``: where the run stands, and per process a digest of its weights and of the batches it
    learned from (equal weights with different batches show that gradients were averaged across processes)."""
    weights = hashlib.sha256()
    for prefix, tensors in (("online", run.network.trainable()), ("target", run.target.trainable())):
        for name in sorted(tensors):
            weights.update(f"{prefix}/{name}".encode())
            weights.update(tensors[name].detach().float().cpu().numpy().tobytes())
    digests = [(weights.hexdigest(), run.batches.hexdigest())]
    if run.processes.world > 1:
        gathered = [None] * run.processes.world
        torch.distributed.all_gather_object(gathered, digests[0])
        digests = gathered
    if run.processes.main:
        write_json(run.run_dir / SUMMARY_FILE, {
            "iterations": run.iteration, "updates": run.updates, "env_steps": run.env_steps,
            "processes": run.processes.world, "weights_digest": [d[0] for d in digests],
            "batches_digest": [d[1] for d in digests], "last_eval": last_eval,
        })
