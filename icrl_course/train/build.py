"""From a config's model section to a Q-network: the one place that builds networks and their tokenizers.

Why one place: training builds a fresh network from the config, and loading
an exported model rebuilds the same network from the section stored with it
(``checkpoints.load_network``), so both must build it the same way. A new
encoding or model option is added here and in the section, nowhere else.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from typing import Iterator

import torch

from icrl_course.models.protocol import QNetwork
from icrl_course.runtime import pick_device
from icrl_course.train.config import TINY, HFModel, TransformerModel

REWARD_VALUES = (0.0, 1.0)
"""Every reward a Frozen Lake trial holds (the compact tokens embed each one)."""


def tokenizer_for(model: TransformerModel | HFModel, hf_tokenizer=None):
    """The tokenizer a model section reads.

    ``transformer``: compact tokens (``tokenize.compact``); ``hf``: the text
    format the section names, written with the model's own Hugging Face
    tokenizer (``hf_tokenizer``, loaded with the model).
    """
    if isinstance(model, TransformerModel):
        from icrl_course.tokenize.compact import CompactTokenizer

        return CompactTokenizer(edge_cap=model.edge_cap, reward_values=REWARD_VALUES)
    from icrl_course.tokenize.text import FORMATS, TextTokenizer

    if hf_tokenizer is None:
        raise ValueError("an hf model reads text through its own Hugging Face tokenizer: pass hf_tokenizer")
    return TextTokenizer(hf_tokenizer, FORMATS[model.format])


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
    embed = sum(tokenizer_for(model).field_sizes) * model.n_embd
    return embed + model.n_layer * (4 + 2 * model.mlp_ratio) * model.n_embd ** 2


def build_network(model: TransformerModel | HFModel, seed: int = 0, device: str | torch.device = "cpu") -> QNetwork:
    """A freshly initialised (or, for ``hf``, freshly loaded and adapted) Q-network on ``device``, seeded by ``seed``."""
    device = pick_device(str(device))
    if isinstance(model, TransformerModel):
        from icrl_course.models.agent import TransformerQNetwork
        from icrl_course.models.transformer import QTransformer, TransformerConfig

        tokenizer = tokenizer_for(model)
        shape = TransformerConfig(field_sizes=tokenizer.field_sizes, n_layer=model.n_layer, n_head=model.n_head,
                                  n_embd=model.n_embd, mlp_ratio=model.mlp_ratio, dropout=model.dropout)
        return TransformerQNetwork(QTransformer(shape, seed=seed), tokenizer).to(device)
    from icrl_course.models.hf import AdapterConfig, HFQNetwork, load_causal_lm

    with model_source(model, seed) as source:
        lm, hf_tokenizer = load_causal_lm(source, dtype=model.dtype, device=str(device),
                                          attn_implementation=model.attn_implementation)
    adapter = AdapterConfig(kind=model.adapter, target_modules=model.target_modules, lora_r=model.lora_r,
                            lora_alpha=2 * model.lora_r)
    with torch.random.fork_rng(devices=[]):  # adapters draw their initial values: from the seed, not the global stream
        torch.manual_seed(seed)
        network = HFQNetwork(lm, tokenizer_for(model, hf_tokenizer), adapter, model.gradient_checkpointing)
    return network.to(device)


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
                                   num_layers=model.tiny_layers, num_heads=model.tiny_heads, seed=seed))
