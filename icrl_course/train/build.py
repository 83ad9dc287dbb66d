"""From a config's model section to a Q-network: the one place that builds networks and their tokenizers.

Why one place: training builds a fresh network from the config, and loading
an exported model rebuilds the same network from the section stored with it
(``checkpoints.load_network``), so both must build it the same way. A new
encoding or model option is added here and in the section, nowhere else.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Sequence

import torch

from icrl_course.models.protocol import QNetwork
from icrl_course.runtime import DeviceError, pick_device
from icrl_course.tokenize.compact import CELL_ID_FIELDS, CELL_ID_WIDTH
from icrl_course.train.config import TINY, ConfigError, HFModel, TransformerModel, model_section

if TYPE_CHECKING:
    from icrl_course.train.config import TrainConfig
    from icrl_course.trials import Trial

REWARD_VALUES = (0.0, 1.0)
"""Every reward a Frozen Lake trial holds (the compact tokens embed each one)."""
TINY_MAX_SIDE = 9
"""The tiny Llama's word vocabulary covers maps of up to this many rows and columns (``build_tiny_llama``)."""
LARGEST_LR = 1.0
"""Learning rates above this are refused: an AdamW step moves every weight by about ``lr``."""
BASE_FIELDS = ("model", "format", "tiny_hidden_size", "tiny_layers", "tiny_heads", "tiny_kv_heads", "tiny_mlp_ratio",
               "tiny_rope_theta")
"""Fields of an ``hf`` model section that decide the base network's shape, vocabulary and rotary positions: a run
that starts from another model's weights (``init_from``) must share them with it."""


def tokenizer_for(model: TransformerModel | HFModel, hf_tokenizer=None):
    """The tokenizer a model section reads.

    ``transformer``: compact tokens (``tokenize.compact``); ``hf``: the text
    format the section names, written with the model's own Hugging Face
    tokenizer (``hf_tokenizer``, loaded with the model).
    """
    if isinstance(model, TransformerModel):
        from icrl_course.tokenize.compact import CompactTokenizer

        return CompactTokenizer(edge_cap=model.edge_cap, reward_values=REWARD_VALUES, relative_cap=model.relative_cap,
                                cell_ids=model.cell_relations)
    from icrl_course.tokenize.text import FORMATS, TextTokenizer

    if hf_tokenizer is None:
        raise ValueError("an hf model reads text through its own Hugging Face tokenizer: pass hf_tokenizer")
    return TextTokenizer(hf_tokenizer, FORMATS[model.format])


def check_run(config: "TrainConfig") -> None:
    """What a config's field checks cannot see, checked before any work: limits that depend on several fields,
    on the model or on this machine. Raises a ``ConfigError`` naming the fields and what to change.

    * the device exists here (``runtime.pick_device``);
    * an ``init_from`` model exists, is intact and fits the base (``starting_weights``);
    * the maps fit the tiny Llama's vocabulary (``TINY_MAX_SIDE``); the transformer's compact tokens name
      cells of any map (larger than ``2 * edge_cap + 1`` with shared inner names, ``tokenize.compact`` says why),
      and with ``cell_relations`` of maps up to ``CELL_ID_WIDTH`` a side;
    * a whole trial fits the transformer's context (one token per step, plus one), and so does ``context_length``;
    * the map distribution holds enough distinct maps for an iteration's trials and for the evaluation;
    * the learning rate is one AdamW can take, and weight decay does not wipe the weights at every step.
    """
    try:
        pick_device(config.device)
    except DeviceError as err:
        raise ConfigError(str(err)) from None
    if isinstance(config.model, HFModel) and config.model.init_from:
        starting_weights(config.model)
    distribution = config.map_distribution()
    side = max(distribution.rows[1], distribution.cols[1])
    model = config.model
    if isinstance(model, HFModel) and model.model == TINY:
        limit, why = TINY_MAX_SIDE, "the tiny Llama's vocabulary (model.model='tiny') covers"
    elif isinstance(model, TransformerModel) and model.cell_relations:
        limit, why = CELL_ID_WIDTH, "cell names (model.cell_relations) cover"
    else:
        limit, why = None, ""
    if limit is not None and side > limit:
        raise ConfigError(f"{why} maps of at most {limit} x {limit}, but map_preset={config.map_preset!r} "
                          f"(map_options={config.map_options}) draws maps up to {distribution.rows[1]} x "
                          f"{distribution.cols[1]}: use smaller maps")
    if isinstance(model, TransformerModel):
        from icrl_course.models.transformer import TransformerConfig

        tokens, most = config.episodes_per_trial * config.max_episode_steps + 1, TransformerConfig.max_context
        if tokens > most:
            raise ConfigError(f"a trial of episodes_per_trial={config.episodes_per_trial} x max_episode_steps="
                              f"{config.max_episode_steps} steps is {tokens} tokens, more than the transformer's context "
                              f"of {most}: lower one of them")
        if config.context_length > most:
            raise ConfigError(f"context_length={config.context_length} is longer than the transformer's context of "
                              f"{most}: use at most {most}, or 0")
    for what, n, split in (("trials_per_iteration", config.trials_per_iteration, "train"),
                           ("eval_maps", config.eval_maps, "val")):
        if config.source == "offline" and what == "trials_per_iteration":
            continue
        held = distribution.count_maps(split, limit=distribution.max_tries * n)
        if n > held.count:
            raise ConfigError(f"{what}={n} is invalid: the map distribution holds {held} distinct {split}-split "
                              f"maps; ask for at most {held.count}, or choose larger maps")
    if config.lr > LARGEST_LR:
        raise ConfigError(f"lr={config.lr:g} is invalid: an AdamW step moves every weight by about lr, so training "
                          "would diverge at once; use 1e-4 to 1e-2")
    if config.lr * config.weight_decay >= 1.0:
        raise ConfigError(f"lr * weight_decay = {config.lr * config.weight_decay:g} is invalid: every step would "
                          "multiply the weights by 1 - lr * weight_decay <= 0; lower weight_decay")


def check_trials_fit(trials: Sequence["Trial"], config: "TrainConfig", source: str) -> None:
    """Refuse trials (an offline dataset's) whose maps or lengths the config's model cannot read, naming ``source``."""
    if not trials:
        raise ConfigError(f"{source} holds no trials: make one with `icrl-course dataset`")
    side = max(max(t.lake_map.shape) for t in trials)
    model = config.model
    if isinstance(model, TransformerModel):
        from icrl_course.models.transformer import TransformerConfig

        longest = max(len(t) for t in trials) + 1
        if longest > TransformerConfig.max_context:
            raise ConfigError(f"{source} holds a trial of {longest} tokens, more than the transformer's context of "
                              f"{TransformerConfig.max_context}: make a dataset of shorter trials")
    elif model.model == TINY and side > TINY_MAX_SIDE:
        raise ConfigError(f"{source} holds maps of {side} rows or columns, more than the tiny Llama's vocabulary "
                          f"covers ({TINY_MAX_SIDE})")


def parameters_at_least(model: TransformerModel | HFModel) -> int | None:
    """A lower bound on the trained values a network built from ``model`` holds, computed without building it.

    For the transformer: the field embeddings plus, in every block, attention's
    four ``n_embd`` x ``n_embd`` matrices and the MLP's two ``n_embd`` x
    ``mlp_ratio * n_embd`` ones (biases and norms come on top). Loading a
    checkpoint compares it with the values its weights file holds before
    allocating anything, so an edited spec cannot ask for gigabytes. None for
    ``hf``: its base model's size comes from the base model's own files.
    """
    if not isinstance(model, TransformerModel):
        return None
    sizes = tokenizer_for(model).field_sizes
    embed = sum(sizes[:-len(CELL_ID_FIELDS)] if model.cell_relations else sizes) * model.n_embd  # names: not embedded
    return embed + model.n_layer * (4 + 2 * model.mlp_ratio) * model.n_embd ** 2


def build_network(model: TransformerModel | HFModel, seed: int = 0, device: str | torch.device = "cpu") -> QNetwork:
    """A freshly initialised (or, for ``hf``, freshly loaded and adapted) Q-network on ``device``, seeded by ``seed``."""
    device = pick_device(str(device))
    if isinstance(model, TransformerModel):
        from icrl_course.models.agent import TransformerQNetwork
        from icrl_course.models.transformer import QTransformer, TransformerConfig

        tokenizer = tokenizer_for(model)
        shape = TransformerConfig(field_sizes=tokenizer.field_sizes, n_layer=model.n_layer, n_head=model.n_head,
                                  n_embd=model.n_embd, mlp_ratio=model.mlp_ratio, dropout=model.dropout,
                                  cell_relations=model.cell_relations, goal_relation=model.goal_relation,
                                  direction_relations=model.direction_relations,
                                  rope_base=model.rope_base)
        return TransformerQNetwork(QTransformer(shape, seed=seed), tokenizer).to(device)
    from icrl_course.models.hf import AdapterConfig, HFQNetwork, load_causal_lm

    with model_source(model, seed) as source:
        lm, hf_tokenizer = load_causal_lm(source, dtype=model.dtype, device=str(device),
                                          attn_implementation=model.attn_implementation)
    if model.init_from:
        from icrl_course.checkpoints import load_tensors

        arrays, where = starting_weights(model)
        load_tensors(dict(lm.named_parameters()), arrays, "model", where)
    adapter = AdapterConfig(kind=model.adapter, target_modules=model.target_modules, lora_r=model.lora_r,
                            lora_alpha=2 * model.lora_r)
    with torch.random.fork_rng(devices=[]):  # adapters draw their initial values: from the seed, not the global stream
        torch.manual_seed(seed)
        network = HFQNetwork(lm, tokenizer_for(model, hf_tokenizer), adapter, model.gradient_checkpointing)
    return network.to(device)


def starting_weights(model: HFModel) -> tuple[dict, str]:
    """The arrays of the exported model ``model.init_from`` names (``model/<parameter name>``) and its path.

    Refused with a ``ConfigError`` naming the field: a name or path that
    holds no exported model, a damaged one (``checkpoints.read_model``'s
    checks), one that is not an ``hf`` model trained whole (an adapter's
    tensors alone do not make a base), or one on another base (a
    ``BASE_FIELDS`` value differs). Its weights then replace every weight of
    the freshly built base, so the seed no longer matters for them.
    """
    from icrl_course.checkpoints import read_model, resolve
    from icrl_course.io import DataFileError

    try:
        stem = resolve(model.init_from)
        arrays, spec = read_model(stem)
        source = model_section(spec["model"])
    except (DataFileError, ConfigError, KeyError) as err:
        raise ConfigError(f"model.init_from={model.init_from!r} is invalid: {err}") from None
    if not isinstance(source, HFModel) or source.adapter != "full":
        what = source.kind if not isinstance(source, HFModel) else f"hf with adapter={source.adapter!r}"
        raise ConfigError(f"model.init_from={model.init_from!r} is invalid: it is a {what} model, but a run starts "
                          "only from an hf model whose every weight was trained (adapter 'full')")
    differ = [f"{name}: {getattr(source, name)!r} there, {getattr(model, name)!r} here" for name in BASE_FIELDS
              if getattr(source, name) != getattr(model, name)]
    if differ:
        raise ConfigError(f"model.init_from={model.init_from!r} is invalid: it was trained on another base "
                          f"({'; '.join(differ)}); set these model fields as it has them")
    return arrays, f"{stem}.safetensors"


@contextmanager
def model_source(model: HFModel, seed: int) -> Iterator[str]:
    """The folder or Hub id ``from_pretrained`` reads; for ``tiny``, a folder the tiny Llama is built into
    (from ``seed``, so the same base every time) and removed after loading."""
    if model.model != TINY:
        yield model.model
        return
    from icrl_course.models.hf import build_tiny_llama
    from icrl_course.tokenize.text import FORMATS

    with tempfile.TemporaryDirectory(prefix="tiny-llama-") as folder:
        yield str(build_tiny_llama(folder, FORMATS[model.format], hidden_size=model.tiny_hidden_size,
                                   num_layers=model.tiny_layers, num_heads=model.tiny_heads,
                                   num_kv_heads=model.tiny_kv_heads or None, mlp_ratio=model.tiny_mlp_ratio, seed=seed,
                                   embedding_init=model.tiny_embedding_init, rope_theta=model.tiny_rope_theta))
