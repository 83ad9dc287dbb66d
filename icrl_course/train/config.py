"""``TrainConfig``: every number that decides a training run, in one validated dataclass.

Why one flat dataclass (CleanRL's habit): a run is reproducible from its config
and its seed alone, so the config is the thing a learner reads, diffs, stores
next to the checkpoint and edits from the command line (``--set lr=3e-4``).
Every field has a docstring that says what it changes; every bad value is
refused with a message naming the field and saying how to fix it, before any
compute is spent.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence, get_type_hints

from icrl_course.dqn import DQNConfig
from icrl_course.envs import DistributionError, MapDistribution

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
"""Configs kept in the library (``icrl_course/configs``), e.g. the one each shipped checkpoint was trained with."""

MAP_PRESETS = ("paper", "paper_ood", "gymnasium")
"""Map distributions a config can name: ``MapDistribution.paper``, ``.paper_ood`` and ``.gymnasium``."""


class ConfigError(ValueError):
    """An invalid training config; the message names the field and says how to fix it."""


@dataclass(frozen=True)
class TrainConfig:
    """A training run of a small transformer Q-network by sequence DQN over multi-episode trials."""

    # ---------------------------------------------------------------- run
    seed: int = 0
    """Seeds maps, exploration, replay sampling and weight init: same seed and config, same numbers."""
    device: str = "auto"
    """``auto`` (a GPU when there is one, else the CPU), ``cpu``, ``cuda``, ``cuda:1``, ..."""
    threads: int = 0
    """CPU threads torch may use (``torch.set_num_threads``); 0 keeps torch's default."""

    # ---------------------------------------------------------------- maps and trials
    map_preset: str = "paper"
    """Training maps: ``paper`` (3-5 x 3-5, the paper's), ``paper_ood`` (6-7 x 6-7) or ``gymnasium``."""
    map_options: dict = field(default_factory=dict)
    """Overrides of the preset's ``MapDistribution`` arguments, e.g. ``{"size": 4}`` for ``gymnasium``."""
    episodes_per_trial: int = 10
    """Episodes in every trial (the context holds all of them)."""
    max_episode_steps: int = 25
    """Time limit of one episode. The paper uses 100; 25 keeps trials, and so training, 4x shorter
    while still leaving 3-5 x 3-5 maps (whose shortest paths are 4-12 moves) plenty of room."""
    is_slippery: bool = False
    """Slippery ice (moves go sideways with probability 2/3), as in FrozenLake-v1's default."""

    # ---------------------------------------------------------------- model
    edge_cap: int = 4
    """Cells are embedded as their distances to the four walls, capped here (``tokenize.compact`` says why);
    maps may have up to ``2 * edge_cap + 1`` rows and columns."""
    n_layer: int = 3
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads per block (``n_embd`` must be a multiple of ``2 * n_head``, for rotary positions)."""
    n_embd: int = 64
    """Width of the residual stream."""
    mlp_ratio: int = 4
    """Hidden width of each MLP as a multiple of ``n_embd``."""
    dropout: float = 0.0
    """Dropout probability inside the transformer during updates (0 is usual for DQN)."""

    # ---------------------------------------------------------------- objective
    gamma: float = 0.9
    """Discount of the TD target, as in the paper."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this inside the TD target (the paper scales the goal's 1 by 30)."""
    double_dqn: bool = True
    """Double DQN: the online network picks the next action, the target network values it."""
    n_step: int = 1
    """Real rewards summed before bootstrapping (1 = one-step TD, the paper's choice)."""
    loss: str = "huber"
    """TD loss: ``huber`` (robust to the large errors of early training) or ``mse``.
    Steps cut by the time limit are always left out of the loss (``icrl_course.dqn`` says why)."""
    huber_delta: float = 1.0
    """Where the Huber loss turns from quadratic to linear, in scaled-reward units."""
    tau: float = 0.02
    """Polyak rate: after every update, target <- (1 - tau) * target + tau * online."""
    lr: float = 1e-3
    """Adam learning rate."""
    lr_schedule: str = "constant"
    """``constant``, or ``cosine``: the learning rate follows half a cosine from ``lr`` down to 0 at the last
    iteration, so the final policy settles instead of chasing the latest batches."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Clip the gradient's global norm to this; 0 turns clipping off."""

    # ---------------------------------------------------------------- data
    source: str = "online"
    """``online``: the agent plays new trials every iteration into a replay buffer; ``offline``: updates
    sample from a fixed dataset file (``dataset``) and nothing is played."""
    dataset: str = ""
    """Offline only: path of a trial dataset made by ``icrl-course dataset``."""
    iterations: int = 1000
    """Training iterations; one iteration = play ``trials_per_iteration`` trials (online) and make
    ``updates_per_iteration`` gradient updates."""
    trials_per_iteration: int = 32
    """Online only: new trials played per iteration, each on a fresh training-split map."""
    updates_per_iteration: int = 8
    """Gradient updates per iteration: with ``trials_per_iteration`` it sets how often a trial is reused."""
    batch_trials: int = 64
    """Trials per gradient update, drawn uniformly from the replay buffer (or dataset)."""
    replay_capacity: int = 2000
    """Online only: the replay buffer keeps this many most recent trials."""
    warmup_trials: int = 64
    """Online only: no update happens until the buffer holds this many trials."""
    epsilon_start: float = 1.0
    """Online exploration: probability of a random action at the start of training."""
    epsilon_end: float = 0.1
    """... falling linearly to this ..."""
    epsilon_fraction: float = 0.3
    """... over this fraction of ``iterations``, then staying there."""

    # ---------------------------------------------------------------- evaluation, logging, checkpoints
    act_with: str = "online"
    """Network that plays the evaluations and is exported: ``online``, or ``target``, the Polyak average of
    the online network's recent weights (a smoother policy). Training play always uses the online one."""
    eval_every: int = 50
    """Evaluate greedily on held-out val-split maps every this many iterations (0: only at the end)."""
    eval_maps: int = 64
    """Number of held-out maps in each evaluation (the same maps every time)."""
    eval_seed: int = 2025
    """Seed that draws the evaluation maps from the val split: keep it fixed to compare runs and seeds."""
    checkpoint_every: int = 50
    """Write the full training state (weights, optimiser, replay, RNGs) every this many iterations."""
    progress: bool = True
    """Show a tqdm progress bar with loss, exploration rate and recent success."""

    def __post_init__(self) -> None:
        _validate(self)

    # ---------------------------------------------------------------- derived
    def map_distribution(self) -> MapDistribution:
        """The training maps' distribution (the held-out val and test splits are drawn from the same one).

        JSON lists in ``map_options`` become the tuples ``MapDistribution`` wants (``"rows": [3, 4]``).
        """
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in self.map_options.items()}
        return getattr(MapDistribution, self.map_preset)(**options)

    def dqn_config(self) -> DQNConfig:
        """The objective's hyper-parameters in ``icrl_course.dqn``'s own config."""
        return DQNConfig(gamma=self.gamma, reward_scale=self.reward_scale, double=self.double_dqn, n_step=self.n_step,
                         loss=self.loss, huber_delta=self.huber_delta, tau=self.tau)

    def learning_rate(self, iteration: int) -> float:
        """Adam's learning rate during an iteration, as ``lr_schedule`` says."""
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * iteration / self.iterations))
        return self.lr

    def epsilon(self, iteration: int) -> float:
        """Exploration rate at an iteration: linear from ``epsilon_start`` to ``epsilon_end``, then flat."""
        return linear_schedule(iteration, self.iterations, self.epsilon_start, self.epsilon_end, self.epsilon_fraction)

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """A config from a mapping; unknown keys are refused (a typo must not be silently ignored)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; known fields are {sorted(known)}")
        hints = get_type_hints(cls)
        return cls(**{k: _coerce(k, v, hints[k]) for k, v in values.items()})

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"config file {path} is not valid JSON: {err}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"config file {path} must hold a JSON object of field: value pairs")
        return cls.from_dict(values)

    @classmethod
    def named(cls, name: str) -> "TrainConfig":
        """A config kept in the library by name, e.g. ``TrainConfig.named("paper-small")``."""
        path = CONFIG_DIR / f"{name}.json"
        if not path.is_file():
            known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
            raise ConfigError(f"no config named {name!r} in icrl_course/configs; known: {known}")
        return cls.from_json(path)

    def with_overrides(self, assignments: Sequence[str]) -> "TrainConfig":
        """Apply ``key=value`` strings (values parsed as JSON when they can be, else taken as text)."""
        values = self.to_dict()
        for item in assignments:
            key, sep, text = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ConfigError(f"override {item!r} must look like key=value, e.g. lr=3e-4")
            try:
                values[key] = json.loads(text)
            except json.JSONDecodeError:
                values[key] = text
        return TrainConfig.from_dict(values)

    def changes(self, other: "TrainConfig") -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ between two configs: ``{name: (mine, other's)}``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)


def linear_schedule(iteration: int, iterations: int, start: float, end: float, fraction: float) -> float:
    """``start`` at iteration 0, moving linearly to ``end`` at ``fraction * iterations``, then ``end``.

    DQN's classic exploration schedule: act almost at random while the
    network knows nothing, then trust it more and more, keeping a little
    exploration for the rest of training. ``fraction=0`` means ``end`` from the start.
    """
    span = fraction * iterations
    progress = 1.0 if span <= 0 else min(iteration / span, 1.0)
    return start + progress * (end - start)


# ------------------------------------------------------------------------ validation
def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Turn JSON values into the field's type (an int written as 3.0 stays an error, a 3 for a float is fine)."""
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _check_type(name: str, value: Any, kind: type) -> None:
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{name}={value!r} must be of type {kind.__name__}")


def _validate(c: TrainConfig) -> None:
    hints = get_type_hints(TrainConfig)
    for f in fields(c):
        _check_type(f.name, getattr(c, f.name), hints[f.name])

    def need(ok: bool, name: str, rule: str) -> None:
        if not ok:
            raise ConfigError(f"{name}={getattr(c, name)!r} is invalid: {rule}")

    need(c.seed >= 0, "seed", "use an int >= 0")
    need(c.eval_seed >= 0, "eval_seed", "use an int >= 0")
    need(c.threads >= 0, "threads", "use 0 (torch's default) or a positive number of threads")
    need(c.device == "auto" or c.device.split(":")[0] in ("cpu", "cuda", "mps"), "device",
         "use auto, cpu, cuda, cuda:N or mps")
    need(c.map_preset in MAP_PRESETS, "map_preset", f"choose one of {list(MAP_PRESETS)}")
    try:
        c.map_distribution()
    except (DistributionError, TypeError) as err:
        raise ConfigError(f"map_options={c.map_options!r} is invalid for map_preset={c.map_preset!r}: {err}") from None
    need(c.episodes_per_trial >= 1, "episodes_per_trial", "a trial needs at least 1 episode")
    need(c.max_episode_steps >= 1, "max_episode_steps", "an episode needs at least 1 step")
    for name in ("edge_cap", "n_layer", "n_head", "n_embd", "mlp_ratio"):
        need(getattr(c, name) >= 1, name, "use a positive int")
    need(c.n_embd % (2 * c.n_head) == 0, "n_embd", f"it must be a multiple of 2 * n_head = {2 * c.n_head} (rotary positions rotate pairs)")
    need(0.0 <= c.dropout < 1.0, "dropout", "a probability in [0, 1)")
    need(0.0 <= c.gamma <= 1.0, "gamma", "a discount in [0, 1]")
    need(c.reward_scale > 0.0, "reward_scale", "use a positive scale (1.0 leaves rewards as they are)")
    need(c.n_step >= 1, "n_step", "use an int >= 1 (1 = one-step TD)")
    need(c.loss in ("huber", "mse"), "loss", "choose 'huber' or 'mse'")
    need(c.huber_delta > 0.0 and math.isfinite(c.huber_delta), "huber_delta", "use a positive threshold such as 1.0")
    need(0.0 < c.tau <= 1.0, "tau", "a Polyak rate in (0, 1]; 1 copies the online network after every update")
    need(c.lr > 0.0 and math.isfinite(c.lr), "lr", "use a positive learning rate such as 1e-3")
    need(c.lr_schedule in ("constant", "cosine"), "lr_schedule", "choose 'constant' or 'cosine'")
    need(c.weight_decay >= 0.0, "weight_decay", "use 0 or a positive value")
    need(c.grad_clip >= 0.0, "grad_clip", "use 0 (no clipping) or a positive norm")
    need(c.source in ("online", "offline"), "source", "choose 'online' or 'offline'")
    need(c.source != "offline" or bool(c.dataset), "dataset", "offline training needs the path of a dataset file")
    need(c.source != "online" or not c.dataset, "dataset", "only offline training reads a dataset: clear it or set source=offline")
    need(c.iterations >= 1, "iterations", "train for at least 1 iteration")
    for name in ("trials_per_iteration", "updates_per_iteration", "batch_trials", "replay_capacity", "eval_maps"):
        need(getattr(c, name) >= 1, name, "use a positive int")
    need(c.warmup_trials >= 0, "warmup_trials", "use an int >= 0")
    if c.source == "online":
        need(c.replay_capacity >= c.trials_per_iteration, "replay_capacity",
             f"it must hold at least one iteration's trials (trials_per_iteration={c.trials_per_iteration})")
        need(c.warmup_trials <= c.replay_capacity, "warmup_trials",
             f"it cannot exceed replay_capacity={c.replay_capacity}, or no update would ever happen")
    for name in ("epsilon_start", "epsilon_end", "epsilon_fraction"):
        need(0.0 <= getattr(c, name) <= 1.0, name, "a number in [0, 1]")
    need(c.act_with in ("online", "target"), "act_with", "choose 'online' or 'target'")
    need(c.eval_every >= 0, "eval_every", "use 0 (evaluate only at the end) or a positive number of iterations")
    need(c.checkpoint_every >= 1, "checkpoint_every", "use a positive number of iterations")
