"""``TrainConfig``: every number that decides a training run, in one validated dataclass with a model section.

Why one config (CleanRL's habit): a run is reproducible from its config and
its seed alone, so the config is the thing a learner reads, diffs, stores
next to the checkpoint and edits from the command line (``--set lr=3e-4``,
``--set model.n_layer=4``). The recipe's fields are shared by every model;
the ``model`` section says which Q-network learns and how it is built:

* ``{"kind": "transformer", ...}``: lesson 5's small transformer on compact
  tokens (``TransformerModel``);
* ``{"kind": "hf", "model": path_or_hub_id, "adapter": "ia3", ...}``: a Hugging
  Face causal LM on a text format, with peft adapters or whole (``HFModel``).

Every field has a docstring that says what it changes; every bad value is
refused with a message naming the field and saying how to fix it, before any
compute is spent.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence, Union, get_type_hints

from icrl_course.dqn import DQNConfig
from icrl_course.envs import DistributionError, MapDistribution

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
"""Configs kept in the library (``icrl_course/configs``), e.g. the one each shipped checkpoint was trained with."""

MAP_PRESETS = ("paper", "paper_ood", "gymnasium")
"""Map distributions a config can name: ``MapDistribution.paper``, ``.paper_ood`` and ``.gymnasium``."""

TINY = "tiny"
"""``HFModel.model`` value that builds the tiny local Llama (``models.hf.build_tiny_llama``) instead of loading one."""

COMMENT = "_comment"
"""A key configs may carry for people to read; it is ignored."""


class ConfigError(ValueError):
    """An invalid training config; the message names the field and says how to fix it."""


# ------------------------------------------------------------------------ model sections
TRANSFORMER_LIMITS = {"edge_cap": 64, "n_layer": 64, "n_head": 64, "n_embd": 4096, "mlp_ratio": 16}
"""Largest value of each size field of a ``TransformerModel``: a section read from a damaged or edited file
is refused before it can ask for gigabytes, and lesson 5's model is far below (4, 3, 4, 64, 4)."""
HF_LIMITS = {"lora_r": 4096, "tiny_hidden_size": 4096, "tiny_layers": 64, "tiny_heads": 64, "tiny_mlp_ratio": 16}
"""Largest value of each size field of an ``HFModel`` (the base model's own size comes from its files)."""


@dataclass(frozen=True)
class TransformerModel:
    """Lesson 5's small transformer (``models.transformer.QTransformer``) reading compact tokens."""

    kind: str = "transformer"
    edge_cap: int = 2
    """Cells are embedded as their distances to the four walls, capped here. 2 names every cell of the
    3-5 x 3-5 training maps uniquely and writes only codes seen in training on larger maps (inner cells then
    share names); ``tokenize.compact`` gives the measurements behind the choice."""
    relative_cap: int = 0
    """0, or also write each cell as its offset from the trial's first cell, clipped to this many rows and
    columns (``tokenize.compact``): a name for inner cells of maps larger than the training maps. Measured in
    lesson 5: no better out of distribution than wall distances alone, so the shipped configs leave it 0."""
    cell_relations: bool = False
    """Also name each cell and the tile each step arrived at (``CompactTokenizer(cell_ids=True)``) and let attention
    compare names, token with token, instead of embedding them (``models.transformer.cell_relations``): "same
    cell", "left this cell" and "arrived next to this cell" mean the same on a map of any size, so the inner cells
    of maps larger than the training maps, which wall distances capped at 2 leave nameless, can be told apart.
    Maps of up to 16 x 16."""
    goal_relation: bool = False
    """With ``cell_relations``: one more relation, "the key's step was taken in an earlier episode that reached the
    goal" (``models.transformer.goal_relation``), so that the moves of a won episode can be picked out from every
    other visit of a cell in one hop, however long the path. Measured in lesson 5 (three seeds, val maps): it
    returned to a found goal slightly more often but found it less often, so episode 10 on 6-7 x 6-7 maps did
    not move; the shipped configs leave it off."""
    direction_relations: bool = False
    """With ``cell_relations``: four more relations, "the key's step arrived in a row above / below, a column left /
    right of this cell", however far (``models.transformer.cell_relations``): where the goal, a hole or the cells
    walked on lie from here, which means the same on a map of any size, for finding a goal far from the start
    and the unexplored side of a larger map. Measured in lesson 5 (two seeds, val maps): 6-7 x 6-7 maps rose for
    one seed and fell for the other, so the shipped configs leave them off."""
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
    rope_base: float = 10_000.0
    """Base of the rotary positions' frequencies (``TransformerConfig.rope_base``). A larger base gives more
    slowly turning pairs of dimensions, in which a token can match an earlier one by content alone, however far
    back (Llama 3 uses 500,000)."""

    def __post_init__(self) -> None:
        need = _checker(self, "model.")
        for name, most in TRANSFORMER_LIMITS.items():
            need(1 <= getattr(self, name) <= most, name,
                 f"use an int from 1 to {most} (the small transformer; larger models are kind 'hf')")
        need(0 <= self.relative_cap <= TRANSFORMER_LIMITS["edge_cap"], "relative_cap",
             f"use 0 (no offset fields) or an int up to {TRANSFORMER_LIMITS['edge_cap']}")
        need(self.n_embd % (2 * self.n_head) == 0, "n_embd",
             f"it must be a multiple of 2 * n_head = {2 * self.n_head} (rotary positions rotate pairs)")
        need(0.0 <= self.dropout < 1.0, "dropout", "a probability in [0, 1)")
        need(self.rope_base > 1.0, "rope_base", "use a number above 1, e.g. 10000 (the default) or 500000")
        need(self.cell_relations or not self.goal_relation, "goal_relation",
             "it is one more relation of cell_relations: set model.cell_relations=true too, or goal_relation=false")
        need(self.cell_relations or not self.direction_relations, "direction_relations",
             "they are more relations of cell_relations: set model.cell_relations=true too, or direction_relations=false")


@dataclass(frozen=True)
class HFModel:
    """A Hugging Face causal LM (``models.hf.HFQNetwork``) reading a trial as text; Q-values are action-word logits."""

    kind: str = "hf"
    model: str = TINY
    """A local folder or a Hub id (``meta-llama/Llama-3.1-8B-Instruct``), loaded with ``from_pretrained``; or
    ``tiny``: a really small Llama with a tokenizer for ``format``, built from ``seed`` (``tiny_*`` set its size)."""
    format: str = "words"
    """How trials are written (``tokenize.text``): ``paper`` (the paper's chat text, exactly), ``llama3`` (with
    Llama 3's chat-template spacing), ``words`` (about two tokens per step, for small models), or its variants
    ``words-moves`` (one more word per episode end) and ``words-steps`` (one word per step)."""
    adapter: str = "full"
    """What trains: ``ia3`` (the paper's), ``lora``, or ``full`` (every weight; for small models)."""
    target_modules: list | None = None
    """Modules an adapter wraps; None = peft's default (Llama IA3: k_proj, v_proj, down_proj)."""
    lora_r: int = 8
    """LoRA rank (``adapter`` = ``lora``)."""
    dtype: str = "auto"
    """Base weights: ``auto`` (bfloat16 on a GPU, float32 on CPU), ``float32`` or ``bfloat16``; whatever trains,
    and the target, are float32."""
    attn_implementation: str = "sdpa"
    """``sdpa`` or ``eager`` (both read the packing mask)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: far less memory for long rows, about 30% more compute."""
    tiny_hidden_size: int = 64
    """Width of the tiny Llama (``model`` = ``tiny``)."""
    tiny_layers: int = 2
    """Decoder layers of the tiny Llama."""
    tiny_heads: int = 4
    """Attention heads of the tiny Llama."""
    tiny_kv_heads: int = 0
    """Key/value heads of the tiny Llama: 0 = ``tiny_heads`` (plain multi-head attention); fewer share keys and
    values between heads (grouped-query attention, as Llama 3 8B: 8 for 32 heads)."""
    tiny_mlp_ratio: int = 4
    """Width of the tiny Llama's gated MLP as a multiple of ``tiny_hidden_size``."""
    tiny_rope_theta: float = 10_000.0
    """The tiny Llama's rotary base (``LlamaConfig`` ``rope_theta``; Llama 3 uses 500,000): see the transformer's
    ``rope_base``."""
    tiny_embedding_init: str = "random"
    """How the tiny Llama's word embeddings start: ``random`` (Llama's own init) or ``fields`` (cell and end words
    as sums of one vector per wall distance, outcome and reward, as lesson 5's transformer embeds its tokens;
    ``models.hf.fields_embedding_init``). Needs a format that writes cells as wall distances (``words``). Measured
    on three seeds of ``configs/tiny-llama.json`` (lesson 6, section 7), it did not beat ``random`` on val maps,
    so the shipped config keeps ``random``."""
    init_from: str = ""
    """An exported model whose weights the base starts from instead of ``model``'s own: a shipped name
    (``tiny-llama``), a run folder or a model path. It must be an ``hf`` model trained whole (``adapter`` =
    ``full``) on the same base (``model``, ``format`` and ``tiny_*`` equal); then this run fine-tunes it, whole
    or through an adapter (lesson 6). '' starts from ``model``'s own weights."""

    def __post_init__(self) -> None:
        from icrl_course.models.hf import ADAPTER_KINDS, EMBEDDING_INITS
        from icrl_course.tokenize.text import FORMATS

        need = _checker(self, "model.")
        need(bool(self.model), "model", "give a local folder, a Hub id, or 'tiny'")
        need(self.format in FORMATS, "format", f"choose one of {list(FORMATS)}")
        need(self.adapter in ADAPTER_KINDS, "adapter", "choose 'ia3' (the paper's), 'lora' or 'full'")
        need(self.target_modules is None or (len(self.target_modules) > 0
                                             and all(isinstance(m, str) for m in self.target_modules)),
             "target_modules", 'use null (peft\'s default) or a list of module names such as ["k_proj", "v_proj"]')
        for name, most in HF_LIMITS.items():
            need(1 <= getattr(self, name) <= most, name, f"use an int from 1 to {most}")
        need(self.tiny_hidden_size % self.tiny_heads == 0, "tiny_hidden_size",
             f"it must be a multiple of tiny_heads={self.tiny_heads}")
        need(self.tiny_kv_heads == 0 or (1 <= self.tiny_kv_heads <= self.tiny_heads
                                         and self.tiny_heads % self.tiny_kv_heads == 0), "tiny_kv_heads",
             f"use 0 (= tiny_heads) or a divisor of tiny_heads={self.tiny_heads}")
        need(self.tiny_embedding_init in EMBEDDING_INITS, "tiny_embedding_init", f"choose one of {list(EMBEDDING_INITS)}")
        need(self.tiny_embedding_init == "random" or FORMATS[self.format].cells == "walls", "tiny_embedding_init",
             f"'fields' needs cells written as wall distances (format 'words'), not format {self.format!r}")
        need(self.tiny_rope_theta > 1.0, "tiny_rope_theta", "use a number above 1, e.g. 10000 (the default) or 500000")
        need(self.dtype in ("auto", "float32", "bfloat16"), "dtype", "choose 'auto', 'float32' or 'bfloat16'")
        need(self.attn_implementation in ("sdpa", "eager"), "attn_implementation", "choose 'sdpa' or 'eager'")
        need(self.init_from == self.init_from.strip(), "init_from",
             "remove the spaces around it: give a shipped name, a run folder or a model path, or ''")


MODEL_KINDS = {"transformer": TransformerModel, "hf": HFModel}
"""Model sections by ``kind``."""


# ------------------------------------------------------------------------ the run
@dataclass(frozen=True)
class TrainConfig:
    """A training run of a Q-network by sequence DQN over multi-episode trials."""

    model: TransformerModel | HFModel = field(default_factory=TransformerModel)
    """Which Q-network learns (``{"kind": "transformer", ...}`` or ``{"kind": "hf", ...}``)."""

    # ---------------------------------------------------------------- run
    seed: int = 0
    """Seeds maps, exploration, replay sampling and weight init: same seed and config, same numbers."""
    device: str = "auto"
    """``auto`` (a GPU when there is one, else the CPU), ``cpu``, ``cuda``, ``cuda:1``, ...; under torchrun each
    process takes the GPU of its ``LOCAL_RANK``."""
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

    # ---------------------------------------------------------------- objective
    gamma: float = DQNConfig.gamma
    """Discount of the TD target (``DQNConfig`` gives the defaults of the objective's fields)."""
    reward_scale: float = DQNConfig.reward_scale
    """Rewards are multiplied by this inside the TD target (the paper scales the goal's 1 by 30)."""
    double_dqn: bool = DQNConfig.double
    """Double DQN: the online network picks the next action, the target network values it."""
    n_step: int = DQNConfig.n_step
    """Real rewards summed before bootstrapping (1 = one-step TD, the paper's choice)."""
    loss: str = DQNConfig.loss
    """TD loss: ``huber`` (robust to the large errors of early training) or ``mse``.
    Steps cut by the time limit are always left out of the loss (``icrl_course.dqn`` says why)."""
    huber_delta: float = DQNConfig.huber_delta
    """Where the Huber loss turns from quadratic to linear, in scaled-reward units."""
    tau: float = DQNConfig.tau
    """Polyak rate: after every update, target <- (1 - tau) * target + tau * online."""
    episode_discount: float = DQNConfig.episode_discount
    """0: every episode's return ends with it (the paper's). Positive: the trial is one return (RL^2); an
    episode's last step also borrows this times the value of the next episode's first state, so exploring
    pays off in later episodes. One-step targets only (``icrl_course.dqn`` says more). Lesson 5 measured 0.9
    on two seeds: it makes ending an episode cheap, falls into holes rise and 6-7 maps score lower, so the
    shipped configs keep 0."""
    exploration_bonus: float = 0.0
    """Added to a step's reward in its TD target when it lands on a tile the trial had not been on, until the
    trial's first goal (never for a hole; ``train.replay.exploration_bonus`` says why). The tokens keep the
    environment's rewards. 0 leaves the targets the paper's. Lesson 5 measured 0.2 on three seeds: more of the
    6-7 x 6-7 val maps searched, episode 10 there up for two seeds and down for one, gym 8x8 down for all, so the
    shipped configs keep 0."""
    next_token_loss: float = 0.0
    """``hf`` models only: add this times the mean cross-entropy of the next token at every position that is not a
    Q position (the environment's words: the cell a move lands on, how and where an episode ends), the objective
    a language model is pre-trained with. Why: a model trained from scratch by DQN alone has no pre-training to
    give it the heads that find "what followed when I was last here"; predicting that a step into this cell
    ends in a hole, because it did before in this trial, needs exactly those. 0 leaves the objective DQN's.
    Measured in lesson 6 (0.1, the tiny Llama, one seed per format): it learned to predict the words, not to
    avoid holes it had found; episode 10 on val maps did not rise, so the shipped configs keep 0."""
    lr: float = 1e-3
    """AdamW learning rate."""
    lr_schedule: str = "constant"
    """``constant``, or ``cosine``: the learning rate follows half a cosine from ``lr`` down to 0 at the last
    iteration, so the final policy settles instead of chasing the latest batches."""
    lr_warmup: int = 0
    """Iterations over which the learning rate first rises linearly to its schedule (the paper warms up)."""
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
    """Trials per gradient update, drawn uniformly from the replay buffer (or dataset); under several
    processes, over all of them together (it must divide by their number)."""
    context_length: int = 0
    """Tokens per packed row: 0 makes rows as long as the longest trial of the batch (nothing is cut, shorter
    trials share rows); a number fixes it and a longer trial keeps only its first tokens (the paper: 4,096)."""
    micro_batches: int = 1
    """Split each update's trials, sorted by length, into this many micro-batches: one forward and backward
    pass each, the gradient that of the whole batch (gradient accumulation, each pass's loss weighted by
    its share of the steps). Why: a pass holds only its share of the activations (a large model on a
    small GPU), and each micro-batch's rows are only as long as its longest trial, so short trials stop
    paying for a long row's attention: 8 cut the tiny Llama's update time by about a sixth at the trial
    lengths of a late run, while on the small transformer's short trials they cost a little
    (``benchmarks/micro_batches.py``). 1 packs the batch as drawn, in one pass (the shipped models)."""
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
    average_from: int = 0
    """0: export the acting network's weights as training leaves them. Positive: export the mean of its weights
    at this iteration and every ``average_every`` iterations after it (stochastic weight averaging, Izmailov et
    al. 2018); evaluations from this iteration on play that mean too. Why: the Polyak target averages the last
    few dozen updates, this one the last hundreds, and a mean of weights far apart along training sits in a
    flatter region of the loss than any of them, which tends to generalise further. Lesson 5 measured it on
    three seeds (the mean over iterations 300-500 of a 500-iteration run): episode 10 on 6-7 x 6-7 val maps
    0.05-0.11 above the same runs' own weights, still below the explorer's; the shipped models were trained
    before it and keep 0."""
    average_every: int = 10
    """With ``average_from``: iterations between two weights the mean takes in."""
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
        if isinstance(self.model, Mapping):
            object.__setattr__(self, "model", model_section(self.model))
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
                         loss=self.loss, huber_delta=self.huber_delta, tau=self.tau,
                         episode_discount=self.episode_discount)

    def learning_rate(self, iteration: int) -> float:
        """The learning rate during an iteration: the linear warm-up, then ``lr_schedule``."""
        rate = self.lr
        if self.lr_schedule == "cosine":
            rate = self.lr * 0.5 * (1.0 + math.cos(math.pi * iteration / self.iterations))
        return rate * min(1.0, (iteration + 1) / self.lr_warmup) if self.lr_warmup else rate

    def epsilon(self, iteration: int) -> float:
        """Exploration rate at an iteration: linear from ``epsilon_start`` to ``epsilon_end``, then flat."""
        return linear_schedule(iteration, self.iterations, self.epsilon_start, self.epsilon_end, self.epsilon_fraction)

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            from icrl_course.io import write_text

            write_text(path, text)
        return text

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """A config from a mapping (the ``model`` section as a mapping too); unknown keys are refused."""
        values = {k: v for k, v in values.items() if k != COMMENT}
        return cls(**_known(cls, values, ""))

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except UnicodeDecodeError as err:
            raise ConfigError(f"config file {path} is not UTF-8 text (byte {err.start}): give a JSON config file") from None
        except OSError as err:
            raise ConfigError(f"config file {path} cannot be read ({err.strerror}): give the path of a JSON file") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"config file {path} is not valid JSON: {err}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"config file {path} must hold a JSON object of field: value pairs")
        return cls.from_dict(values)

    @classmethod
    def named(cls, name: str | Path) -> "TrainConfig":
        """A config kept in the library by name (``TrainConfig.named("paper-small")``), or a JSON file's path.

        Why both: scripts take ``--config paper-small`` as well as the path a
        learner copied (``icrl_course/configs/paper-small.json`` or their own
        file); a text ending in ``.json`` or naming a folder is read as a path.
        """
        text = str(name)
        if text.endswith(".json") or "/" in text or "\\" in text:
            return cls.from_json(text)
        path = CONFIG_DIR / f"{text}.json"
        if not path.is_file():
            known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
            raise ConfigError(f"no config named {text!r} in icrl_course/configs (known: {known}); "
                              "or give the path of a JSON config file")
        return cls.from_json(path)

    def with_overrides(self, assignments: Sequence[str]) -> "TrainConfig":
        """Apply ``key=value`` strings; ``model.key=value`` reaches into the model section. Values are parsed as
        JSON when they can be, else taken as text."""
        values = self.to_dict()
        for item in assignments:
            key, sep, text = item.partition("=")
            path = [part.strip() for part in key.split(".")]
            if not sep or not all(path):
                raise ConfigError(f"override {item!r} must look like key=value, e.g. lr=3e-4 or model.n_layer=4")
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = text
            where = values
            for part in path[:-1]:
                if not isinstance(where.get(part), dict):
                    raise ConfigError(f"override {item!r}: {part!r} is not a section of the config")
                where = where[part]
            where[path[-1]] = value
        return TrainConfig.from_dict(values)

    def changes(self, other: "TrainConfig") -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ between two configs: ``{name: (mine, other's)}``, model fields as ``model.x``."""
        mine, theirs = _flat(self.to_dict()), _flat(other.to_dict())
        return {k: (mine.get(k), theirs.get(k)) for k in dict.fromkeys([*mine, *theirs]) if mine.get(k) != theirs.get(k)}

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (``model`` may be a section or a mapping of its fields)."""
        return replace(self, **changes)


def model_section(values: Mapping[str, Any]) -> TransformerModel | HFModel:
    """A model section from its mapping, by its ``kind``."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"model={values!r} must be a section such as {{\"kind\": \"transformer\"}}")
    kind = values.get("kind", "transformer")
    if kind not in MODEL_KINDS:
        raise ConfigError(f"model.kind={kind!r} is invalid: choose one of {list(MODEL_KINDS)}")
    section = MODEL_KINDS[kind]
    return section(**_known(section, {k: v for k, v in values.items() if k != COMMENT}, "model."))


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
def _known(cls, values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The mapping's values for ``cls``'s fields, ints given for float fields made floats; unknown keys refused."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config field(s) {[prefix + k for k in unknown]}; known fields are "
                          f"{sorted(prefix + k for k in known)}")
    hints = get_type_hints(cls)
    return {k: float(v) if hints[k] is float and isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in values.items()}


def _checker(config, prefix: str):
    """Check every field's type, then return ``need(ok, name, rule)`` that refuses a value naming its field."""
    for f in fields(config):
        value, hint = getattr(config, f.name), get_type_hints(type(config))[f.name]
        kinds = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
        kinds = tuple(typing.get_origin(k) or k for k in kinds)
        kinds = tuple(type(None) if k is None else k for k in kinds)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise ConfigError(f"{prefix}{f.name}={value!r} must be of type {names}")

    def need(ok: bool, name: str, rule: str) -> None:
        if not ok:
            raise ConfigError(f"{prefix}{name}={getattr(config, name)!r} is invalid: {rule}")

    return need


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if key == "model" and isinstance(value, Mapping):
            out.update(_flat(value, "model."))
        else:
            out[prefix + key] = value
    return out


def _validate(c: TrainConfig) -> None:
    need = _checker(c, "")
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
    need(0.0 <= c.gamma <= 1.0, "gamma", "a discount in [0, 1]")
    need(c.reward_scale > 0.0, "reward_scale", "use a positive scale (1.0 leaves rewards as they are)")
    need(c.n_step >= 1, "n_step", "use an int >= 1 (1 = one-step TD)")
    need(c.loss in ("huber", "mse"), "loss", "choose 'huber' or 'mse'")
    need(c.huber_delta > 0.0 and math.isfinite(c.huber_delta), "huber_delta", "use a positive threshold such as 1.0")
    need(0.0 < c.tau <= 1.0, "tau", "a Polyak rate in (0, 1]; 1 copies the online network after every update")
    need(0.0 <= c.exploration_bonus <= 1.0, "exploration_bonus",
         "use 0 (off) or a bonus up to 1, the goal's reward (0.2 was measured in lesson 5)")
    need(0.0 <= c.episode_discount <= 1.0, "episode_discount", "a discount in [0, 1]; 0 keeps episodes separate returns")
    need(not c.episode_discount or c.n_step == 1, "episode_discount",
         f"works with one-step targets only: set n_step=1 (it is {c.n_step}) or episode_discount=0")
    need(c.next_token_loss >= 0.0 and math.isfinite(c.next_token_loss), "next_token_loss",
         "use 0 (DQN alone) or a positive weight such as 0.1")
    need(not c.next_token_loss or isinstance(c.model, HFModel), "next_token_loss",
         "only a language model (model kind 'hf') predicts next tokens: set it to 0 for the small transformer")
    need(c.lr > 0.0 and math.isfinite(c.lr), "lr", "use a positive learning rate such as 1e-3")
    need(c.lr_schedule in ("constant", "cosine"), "lr_schedule", "choose 'constant' or 'cosine'")
    need(c.lr_warmup >= 0, "lr_warmup", "use 0 (no warm-up) or a positive number of iterations")
    need(c.weight_decay >= 0.0, "weight_decay", "use 0 or a positive value")
    need(c.grad_clip >= 0.0, "grad_clip", "use 0 (no clipping) or a positive norm")
    need(c.source in ("online", "offline"), "source", "choose 'online' or 'offline'")
    need(c.source != "offline" or bool(c.dataset), "dataset", "offline training needs the path of a dataset file")
    need(c.source != "online" or not c.dataset, "dataset", "only offline training reads a dataset: clear it or set source=offline")
    need(c.iterations >= 1, "iterations", "train for at least 1 iteration")
    for name in ("trials_per_iteration", "updates_per_iteration", "batch_trials", "replay_capacity", "eval_maps"):
        need(getattr(c, name) >= 1, name, "use a positive int")
    need(c.context_length >= 0, "context_length", "use 0 (rows as long as the longest trial) or a number of tokens")
    need(1 <= c.micro_batches <= c.batch_trials, "micro_batches",
         f"use 1 (one pass per update) up to batch_trials={c.batch_trials} passes of trials of similar length")
    need(c.warmup_trials >= 0, "warmup_trials", "use an int >= 0")
    if c.source == "online":
        need(c.replay_capacity >= c.trials_per_iteration, "replay_capacity",
             f"it must hold at least one iteration's trials (trials_per_iteration={c.trials_per_iteration})")
        need(c.warmup_trials <= c.replay_capacity, "warmup_trials",
             f"it cannot exceed replay_capacity={c.replay_capacity}, or no update would ever happen")
    for name in ("epsilon_start", "epsilon_end", "epsilon_fraction"):
        need(0.0 <= getattr(c, name) <= 1.0, name, "a number in [0, 1]")
    need(c.act_with in ("online", "target"), "act_with", "choose 'online' or 'target'")
    need(0 <= c.average_from <= c.iterations, "average_from",
         f"use 0 (no averaging) or an iteration up to iterations={c.iterations} from which weights are averaged")
    need(c.average_every >= 1, "average_every", "use a positive number of iterations between averaged weights")
    need(c.eval_every >= 0, "eval_every", "use 0 (evaluate only at the end) or a positive number of iterations")
    need(c.checkpoint_every >= 1, "checkpoint_every", "use a positive number of iterations")
