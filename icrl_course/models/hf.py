"""Any Hugging Face causal language model as a Q-network, with peft adapters and a float32 target.

The paper's recipe: Q(s, a) is the logit of action ``a``'s word at the token
just before it (``tokenize.text`` says where), the language model is adapted
with IA3 (a few scaling vectors, peft), and the target network of double DQN
is a second adapter moved towards the online one by Polyak averaging. This
module does exactly that for any causal LM that loads with
``AutoModelForCausalLM.from_pretrained`` (Llama, Mistral, Qwen, ...), and fixes
two flaws of the paper's code:

* Q-values are the logits of the **four action tokens only** (the paper's
  double-DQN argmax ran over the whole vocabulary, so the "best next action"
  could be any word); ``icrl_course.dqn`` then works on ``(B, N, 4)`` tensors.
* The **target adapter is kept in float32** even when the base model runs in
  bfloat16: a Polyak step of tau = 0.1 on a weight of order 1 moves it by less
  than bfloat16's resolution near 1 (2**-8) once online and target are close,
  so a bf16 target stops following.

The target adapter shares the frozen base weights with the online adapter (one
copy of the 8B weights, two sets of a few hundred thousand scaling factors).
With ``kind="full"`` every weight trains and the target is a separate float32
copy of the whole model: sensible only for small models such as the tiny Llama
this module builds for CPU lessons and tests (``build_tiny_llama``).

``HFQNetwork`` implements ``models.protocol.QNetwork``, so the training loop
of lesson 5 trains it unchanged; ``HFAgent`` acts with it through a KV cache.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from icrl_course.envs import LakeMap
from icrl_course.runtime import as_rng, pick_device
from icrl_course.models.agent import epsilon_greedy
from icrl_course.models.protocol import ReadsTrials
from icrl_course.tokenize.base import StepBatch
from icrl_course.tokenize.text import WORDS, TextFormat, TextTokenizer, word_fields
from icrl_course.trials import Transition

ADAPTER_KINDS = ("ia3", "lora", "full")
ONLINE, TARGET = "online", "target"
"""Names of the two peft adapters."""


class ModelNotFoundError(OSError):
    """A model could be found neither on disk nor on the Hub; the message says to pass a local path."""


# ----------------------------------------------------------------------------------------- loading
def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``"auto"``: bfloat16 on a GPU that supports it (half the memory, same range as float32), else float32.

    CPUs compute bfloat16 matrix products slowly and less exactly, so the CPU
    default stays float32.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in names:
        raise ValueError(f"dtype={dtype!r} must be 'auto' or one of {sorted(names)}")
    return names[dtype]


def load_causal_lm(
    path_or_id: str | Path,
    dtype: str | torch.dtype = "auto",
    device: str = "auto",
    attn_implementation: str = "sdpa",
    local_files_only: bool = False,
):
    """``(model, tokenizer)`` from a local folder or a Hub id, with the same ``from_pretrained`` call for both.

    ``"meta-llama/Llama-3.1-8B-Instruct"`` and the folder written by
    ``build_tiny_llama`` go through the same code. When the Hub does not
    provide the model (offline, ``HF_HUB_OFFLINE=1``, ``local_files_only``, a
    gated model without access, a misspelt id) a ``ModelNotFoundError`` says
    to pass a local path instead.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    name = str(path_or_id)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_files_only)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype, attn_implementation=attn_implementation,
                                                     local_files_only=local_files_only)
    except OSError as error:
        if Path(name).exists():
            raise
        raise ModelNotFoundError(
            f"could not load {name!r}: there is no local folder of that name and the Hugging Face Hub did not provide "
            "it (offline or HF_HUB_OFFLINE=1, a gated model without access, or a misspelt id). Pass a local path "
            "instead: a folder with config.json, the weights and the tokenizer, e.g. made once on a connected machine "
            f"with `hf download {name} --local-dir models/{name.split('/')[-1]}`"
        ) from error
    return model.to(device), tokenizer


# ------------------------------------------------------------------------------------ tiny model
PAD = "<pad>"
"""The word tokenizer's padding token: a word no text writes (see ``word_tokenizer``)."""


def word_tokenizer(fmt: TextFormat = WORDS, max_side: int = 9, rewards: Sequence[float] = (1.0,)):
    """A real Hugging Face tokenizer for ``fmt``, built locally with the ``tokenizers`` library.

    Word-level: every word the format writes on maps up to ``max_side`` x
    ``max_side`` with these ``rewards`` (``TextFormat.vocabulary``) is one
    token, text is split at spaces, the format's special tokens are special;
    wrapped as a ``PreTrainedTokenizerFast``, so it saves and loads with
    ``save_pretrained`` / ``from_pretrained`` like any Hub tokenizer.

    Its pad token is a word of its own (``PAD``), never the end-of-episode
    word: a Llama built with ``pad_token_id`` keeps that token's embedding at
    zero and never trains it (``nn.Embedding(padding_idx=...)``), so with
    ``end`` as pad token the episode boundary was invisible to the first
    layer, and the tiny Llama never learned in context (stopped at 143 of
    400 iterations: success flat near 0.34 from episode 1 to 10 on val maps).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate([*fmt.special_tokens, PAD, "[UNK]", *fmt.vocabulary(max_side, rewards)])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.add_special_tokens([*fmt.special_tokens, PAD])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=fmt.begin, eos_token=fmt.end_of_episode.strip(),
                                   pad_token=PAD, unk_token="[UNK]")


EMBEDDING_INITS = ("random", "fields")
"""How ``build_tiny_llama`` starts the word embeddings: Llama's own random init, or as sums of field vectors."""


def fields_embedding_init(model, tokenizer, seed: int) -> None:
    """Start every cell and end word's input embedding as a sum of its fields' vectors (``tokenize.text.word_fields``).

    Why: the words format has 81 cell words and several hundred end words (one per outcome, reward and cell);
    most end words are rare, and with independent random embeddings nothing tells the model at the start that
    ``eT0.0u1d2l0r2`` (fell into a hole there) is about the cell ``u1d2l0r2``. Lesson 5's transformer sums one
    embedding per field and so gets that for free (``tokenize.compact``). Here it is only where training
    starts: the model stays a plain ``LlamaForCausalLM`` and every row trains freely. Each field value gets a
    vector drawn like Llama's own init (normal, ``initializer_range``), from ``seed``; the sum of k of them is
    divided by sqrt(k) to keep that scale. Other words keep their random rows. Measured (lesson 6, section 7,
    three seeds): no better than random rows on val maps, so the shipped tiny Llama does not use it."""
    weight = model.get_input_embeddings().weight
    generator = torch.Generator().manual_seed(seed)
    std = model.config.initializer_range
    vectors: dict[tuple[str, str], torch.Tensor] = {}
    with torch.no_grad():
        for word, index in sorted(tokenizer.get_vocab().items()):
            fields = word_fields(word)
            if not fields:
                continue
            for key in fields:
                if key not in vectors:
                    vectors[key] = torch.randn(weight.shape[1], generator=generator) * std
            weight[index] = torch.stack([vectors[key] for key in fields]).sum(0) / len(fields) ** 0.5


def build_tiny_llama(
    path: str | Path,
    fmt: TextFormat = WORDS,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int | None = None,
    mlp_ratio: int = 4,
    max_side: int = 9,
    rewards: Sequence[float] = (1.0,),
    seed: int = 0,
    embedding_init: str = "random",
    rope_theta: float = 10_000.0,
) -> Path:
    """Write a randomly initialised, really small Llama and a tokenizer for ``fmt`` to ``path``; return the path.

    The folder looks like any Hub checkpoint (``config.json``,
    ``model.safetensors``, ``tokenizer.json``), so ``load_causal_lm(path)``
    loads it with the same ``from_pretrained`` calls that load Llama 3.1 8B:
    text -> tokenizer -> ids -> model -> Q-values, as for the real one. The
    model is a ``LlamaForCausalLM`` built from a ``LlamaConfig`` (same seed,
    same weights); the tokenizer is ``word_tokenizer(fmt, max_side, rewards)``.
    ``num_kv_heads`` (None: ``num_heads``, plain multi-head attention) below
    ``num_heads`` shares keys and values between heads as Llama 3 does;
    ``mlp_ratio`` sets the gated MLP's width, ``mlp_ratio * hidden_size``; ``rope_theta`` the rotary base.
    ``embedding_init="fields"`` starts cell and end words as sums of field
    vectors (``fields_embedding_init``; formats that write cells as wall
    distances only).
    Under ``torch.distributed`` transformers writes weights on rank 0 only:
    build it before joining a process group (``train.loop`` does).
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    if embedding_init not in EMBEDDING_INITS:
        raise ValueError(f"embedding_init={embedding_init!r} must be one of {EMBEDDING_INITS}")
    if embedding_init == "fields" and fmt.cells != "walls":
        raise ValueError(f"embedding_init='fields' needs a format that writes cells as wall distances; "
                         f"{fmt.name!r} writes them as {fmt.cells!r}")
    tokenizer = word_tokenizer(fmt, max_side, rewards)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=mlp_ratio * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_kv_heads or num_heads,
        max_position_embeddings=32768, tie_word_embeddings=False, rope_theta=rope_theta,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    if embedding_init == "fields":
        fields_embedding_init(model, tokenizer, seed)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return path


# ------------------------------------------------------------------------------------- Q-values
def q_values_from_logits(logits: torch.Tensor, q_index: torch.Tensor, action_token_ids: torch.Tensor) -> torch.Tensor:
    """``(B, L, V)`` logits -> ``(B, N, 4)`` Q-values: the four action tokens' logits at each step's position.

    ``q_index[b, n]`` is the token whose *next-token* logits predict step n's
    action word (the last token of the action prompt, not the word itself).
    The reference for lesson 6; ``HFQNetwork`` computes the same numbers
    without materialising the ``V``-wide logits.
    """
    rows = torch.arange(logits.shape[0], device=logits.device)[:, None]
    return logits[rows, q_index][..., action_token_ids]


# ------------------------------------------------------------------------------------ adapters
@dataclass
class AdapterConfig:
    """Which weights train, and how (peft's IA3 as in the paper, LoRA, or every weight)."""

    kind: str = "ia3"
    """'ia3' (learned scaling vectors, the paper's), 'lora' (low-rank updates) or 'full' (every weight)."""
    target_modules: list[str] | None = None
    """Module names to adapt; None = peft's default for the architecture (Llama IA3: k_proj, v_proj, down_proj)."""
    feedforward_modules: list[str] | None = None
    """IA3 only: which of target_modules scale their input (MLP) rather than output; None = peft's default."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: int = 16
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = 0.0
    """Dropout on LoRA's input."""

    def __post_init__(self) -> None:
        if self.kind not in ADAPTER_KINDS:
            raise ValueError(f"AdapterConfig.kind={self.kind!r} must be one of {ADAPTER_KINDS}")
        if self.target_modules is not None and not (isinstance(self.target_modules, list) and self.target_modules
                                                    and all(isinstance(m, str) for m in self.target_modules)):
            raise ValueError(f"AdapterConfig.target_modules={self.target_modules!r} must be None or a non-empty list of module names")
        if self.lora_r < 1:
            raise ValueError(f"AdapterConfig.lora_r={self.lora_r} must be >= 1")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"AdapterConfig.lora_dropout={self.lora_dropout} must lie in [0, 1)")

    def peft_config(self):
        from peft import IA3Config, LoraConfig, TaskType

        if self.kind == "ia3":
            return IA3Config(task_type=TaskType.CAUSAL_LM, target_modules=self.target_modules,
                             feedforward_modules=self.feedforward_modules)
        if self.kind == "lora":
            return LoraConfig(task_type=TaskType.CAUSAL_LM, target_modules=self.target_modules, r=self.lora_r,
                              lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout)
        raise ValueError("kind='full' uses no peft adapter")



class HFQNetwork(ReadsTrials, nn.Module):
    """A causal LM read as a Q-network: ``Q(s_t, a) = logit of action word a at step t's Q position``.

    It implements ``models.protocol.QNetwork``. ``adapter`` says what trains:
    with ``ia3`` or ``lora`` the base weights are frozen and a peft adapter
    named ``online`` trains (``make_target`` adds a second, ``target``, on the
    same base); with ``full`` every weight trains, in float32, and the target
    is a float32 copy of the whole model (for small models).

    Only the hidden states at the Q positions go through the output layer,
    and only its four action rows: the logits a language model head would
    give there, without the ``(B, L, 128k)`` tensor (21 GB in float32 for the
    paper's batch of 10 x 4,096 tokens). That equals the full logits for
    models whose logits are ``lm_head(final hidden state)`` (Llama, Mistral,
    Qwen); ``tests/test_models_hf.py`` checks it against a manual gather.
    """

    def __init__(self, model: nn.Module, tokenizer: TextTokenizer, adapter: AdapterConfig | None = None,
                 gradient_checkpointing: bool = False):
        super().__init__()
        self.tokenizer = tokenizer
        self.adapter = adapter or AdapterConfig(kind="full")
        if gradient_checkpointing:  # recompute each layer's activations in the backward pass instead of storing them
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
                model.activation_checkpointing_enable({"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if self.adapter.kind == "full":
            model.float()
        else:
            from peft import get_peft_model

            model.requires_grad_(False)
            with warnings.catch_warnings():  # peft 0.21 asks transformers 5 a deprecated question; nothing to act on
                warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
                model = get_peft_model(model, self.adapter.peft_config(), adapter_name=ONLINE)
        self.model = model
        self.register_buffer("action_token_ids", torch.as_tensor(np.asarray(tokenizer.action_token_ids), dtype=torch.long),
                             persistent=False)

    # ----------------------------------------------------------------- the protocol
    @property
    def device(self) -> torch.device:
        return self.action_token_ids.device

    def trainable(self) -> dict[str, torch.Tensor]:
        if self.adapter.kind == "full":
            return dict(self.model.named_parameters())
        return self._adapter_tensors(ONLINE)

    def make_target(self) -> "HFQNetwork | AdapterTarget":
        if self.adapter.kind == "full":
            target = copy.deepcopy(self, {id(self.tokenizer): self.tokenizer})  # the tokenizer is shared, weights copied
            target.requires_grad_(False)
            return target
        return AdapterTarget(self)

    def agent(self, epsilon: float = 0.0, reset_context_every_episode: bool = False,
              name: str | None = None) -> "HFAgent":
        return HFAgent(self, epsilon=epsilon, reset_context_every_episode=reset_context_every_episode, name=name)

    # ----------------------------------------------------------------- reading Q-values
    def _lm(self) -> nn.Module:
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        head = self._lm().get_output_embeddings()
        weight = head.weight[self.action_token_ids]
        bias = head.bias[self.action_token_ids] if getattr(head, "bias", None) is not None else None
        return nn.functional.linear(hidden.to(weight.dtype), weight, bias).float()

    def forward(self, batch: StepBatch, next_token_loss: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``(B, N, 4)`` float32 Q-values at every step of a packed batch, trials kept apart; with
        ``next_token_loss`` also the mean next-token cross-entropy of the same pass (``next_token_loss``).

        Packed trials see only themselves: the 4D mask comes from
        ``batch.attention_mask()`` (causal, within one segment) and positions
        restart at 0 in every trial, so a trial's Q-values do not depend on
        what else shares its row. A 4D mask works with the ``sdpa`` and
        ``eager`` attention implementations (not ``flash_attention_2``).
        """
        hidden = self._hidden(batch)
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
        q = self._head(hidden[rows, batch.q_index])
        return (q, self.next_token_loss(hidden, batch)) if next_token_loss else q

    def next_token_loss(self, hidden: torch.Tensor, batch: StepBatch) -> torch.Tensor:
        """Mean cross-entropy, over the whole vocabulary, of each token of a trial given the tokens before it, at
        every position that is not a Q position (``TrainConfig.next_token_loss`` says why). Those are the words
        the environment writes: the one after a Q position is the agent's action, which the Q-values, read from
        the same logits, decide; nor does a trial's last token or padding predict anything. ``hidden``: the
        decoder's ``(B, L, d)`` output for ``batch``."""
        ids, segments = batch.input_ids, batch.segment_ids
        predicts = (segments[:, :-1] == segments[:, 1:]) & (segments[:, :-1] >= 0)  # (B, L - 1): the next token is its trial's
        q_position = torch.zeros_like(ids, dtype=torch.bool)
        rows = torch.arange(ids.shape[0], device=ids.device)[:, None].expand_as(batch.q_index)
        q_position[rows[batch.step_mask], batch.q_index[batch.step_mask]] = True
        row, at = (predicts & ~q_position[:, :-1]).nonzero(as_tuple=True)
        logits = self._lm().get_output_embeddings()(hidden[row, at]).float()
        return nn.functional.cross_entropy(logits, ids[row, at + 1])

    def logits(self, batch: StepBatch) -> torch.Tensor:
        """The full ``(B, L, V)`` next-token logits of a packed batch, read the same way (for lessons and tests)."""
        return self._lm().get_output_embeddings()(self._hidden(batch))

    def _hidden(self, batch: StepBatch) -> torch.Tensor:
        allowed = batch.attention_mask()
        dtype = self._lm().get_output_embeddings().weight.dtype
        bias = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(~allowed, torch.finfo(dtype).min)
        return self._lm().get_decoder()(input_ids=batch.input_ids, attention_mask=bias, position_ids=batch.position_ids,
                                        use_cache=False).last_hidden_state

    def new_cache(self):
        """An empty KV cache for ``last_q`` (transformers' ``DynamicCache``)."""
        from transformers import DynamicCache

        try:
            return DynamicCache(config=self._lm().config)
        except TypeError:  # transformers < 4.56 builds it without the config
            return DynamicCache()

    def last_q(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, cache) -> torch.Tensor:
        """``(B, 4)`` Q-values at the last of new tokens fed on top of ``cache`` (which grows in place).

        ``attention_mask`` is ``(B, cached + new)`` with 0 on padding, so rows
        may hold different numbers of real tokens.
        """
        decoder = self._lm().get_decoder()
        name = "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      use_cache=True, **{name: cache})
        return self._head(out.last_hidden_state[:, -1])

    # ----------------------------------------------------------------- the two adapters
    def _adapter_tensors(self, adapter: str) -> dict[str, torch.Tensor]:
        return {_strip(n, adapter): p for n, p in self.model.named_parameters()
                if n.endswith(f".{adapter}") or f".{adapter}." in n}

    @contextmanager
    def using(self, adapter: str):
        """Run the model with another of its peft adapters for the duration of the block."""
        self.model.set_adapter(adapter)
        try:
            yield
        finally:
            self.model.set_adapter(ONLINE)  # also makes the online adapter the trainable one again
            for tensor in self._adapter_tensors(TARGET).values():
                tensor.requires_grad_(False)


def _strip(name: str, adapter: str) -> str:
    return name.replace(f".{adapter}.", ".").removesuffix(f".{adapter}")


class AdapterTarget(ReadsTrials):
    """The target network of an adapter-trained ``HFQNetwork``: a second peft adapter on the same frozen base.

    One copy of the base weights serves both networks (for Llama 3.1 8B: 16 GB
    once, and two sets of 0.5 M IA3 scaling factors). The target adapter
    starts as a float32 copy of the online one and only ``polyak_update`` on
    ``trainable()`` moves it. Its Q-values are read by switching the model to
    the target adapter for one forward pass.
    """

    def __init__(self, online: HFQNetwork):
        self.online = online
        self.tokenizer = online.tokenizer
        online.model.add_adapter(TARGET, online.adapter.peft_config())
        online.model.set_adapter(ONLINE)  # add_adapter leaves the online adapter active and trainable
        with torch.no_grad():
            for name, tensor in self.trainable().items():
                tensor.data = online.trainable()[name].detach().float().clone()
                tensor.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return self.online.device

    @torch.no_grad()
    def q_values(self, batch: StepBatch) -> torch.Tensor:
        with self.online.using(TARGET):
            return self.online(batch)

    def trainable(self) -> dict[str, torch.Tensor]:
        return self.online._adapter_tensors(TARGET)

    def parameters(self):
        return iter(self.trainable().values())

    def make_target(self):
        raise TypeError("a target network has no target of its own")

    def train(self, mode: bool = True) -> "AdapterTarget":
        self.online.train(mode)
        return self

    def eval(self) -> "AdapterTarget":
        return self.train(False)

    @property
    def training(self) -> bool:
        return self.online.training

    def new_cache(self):
        return self.online.new_cache()

    def last_q(self, *args) -> torch.Tensor:
        with self.online.using(TARGET):
            return self.online.last_q(*args)

    def agent(self, epsilon: float = 0.0, reset_context_every_episode: bool = False,
              name: str | None = None) -> "HFAgent":
        return HFAgent(self, epsilon=epsilon, reset_context_every_episode=reset_context_every_episode, name=name)


# ----------------------------------------------------------------------------------- the agent
class HFAgent:
    """Acts greedily (or epsilon-greedily) on a ``HFQNetwork``'s Q-values in trials, with one KV cache per batch.

    Every act feeds only the tokens added since the last act (the action
    word, landing cell, reward and episode markers of the last step, and the
    next action prompt) on top of the cache, after checking that what the
    cache holds is still a prefix of the trial's tokens; if it is not, the
    cache is dropped and the whole history fed again. Lakes of one batch grow
    by different numbers of tokens, so each act's new tokens are left-padded
    to a common width and the padding is masked out.

    ``last_q`` holds the ``(B, 4)`` Q-values of the last act, ``q_history`` those of every act.
    ``reset_context_every_episode=True`` gives the first-episode-only ablation.
    """

    def __init__(self, qnet: HFQNetwork | AdapterTarget, epsilon: float = 0.0, reset_context_every_episode: bool = False,
                 name: str | None = None, device: str | torch.device | None = None):
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon={epsilon} is a probability: it must lie in [0, 1]")
        self.qnet = qnet
        self.tokenizer = qnet.tokenizer
        self.epsilon = float(epsilon)
        self.reset_context_every_episode = reset_context_every_episode
        self.name = name or "llm"
        self.device = torch.device(device) if device is not None else qnet.device
        self.recomputes = 0
        """How many times the cache was found stale and rebuilt (0 with the formats' append-only tokens)."""
        self.last_q: np.ndarray | None = None

    def begin(self, maps: Sequence[LakeMap], rng: np.random.Generator | int | None = None) -> None:
        b = len(maps)
        self.rng = as_rng(rng)
        self.shapes = [m.shape for m in maps]
        self.tokens: list[list[int]] = [[] for _ in range(b)]
        self.cached: list[list[int]] = [[] for _ in range(b)]
        self.cache = None
        self.mask = torch.zeros(b, 0, dtype=torch.long, device=self.device)
        self.active = np.ones(b, dtype=bool)
        self.episode_start = np.ones(b, dtype=bool)
        self.q_history: list[np.ndarray] = []

    @torch.no_grad()
    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Feed the new tokens of every lake (up to its action prompt) and return the ``(B, 4)`` Q-values there."""
        for b in np.flatnonzero(self.active):
            self.tokens[b].extend(self.tokenizer.prompt_tokens(int(obs[b]), self.shapes[b], not self.tokens[b],
                                                          bool(self.episode_start[b])))
        self.episode_start[:] = False
        if any(self.tokens[b][:len(c)] != c for b, c in enumerate(self.cached)):
            self.recomputes += 1
            self.cache, self.cached = None, [[] for _ in self.tokens]
            self.mask = self.mask[:, :0]
        new = [t[len(c):] for t, c in zip(self.tokens, self.cached)]
        width = max(1, max(len(n) for n in new))
        ids = torch.full((len(new), width), self.tokenizer.pad_id, dtype=torch.long)
        real = torch.zeros(len(new), width, dtype=torch.long)
        positions = torch.zeros(len(new), width, dtype=torch.long)
        for b, n in enumerate(new):
            start = len(self.cached[b])
            if n:
                ids[b, width - len(n):] = torch.as_tensor(n)
                real[b, width - len(n):] = 1
                positions[b, width - len(n):] = torch.arange(start, start + len(n))
            positions[b, :width - len(n)] = max(start - 1, 0)
        real[:, -1] = 1  # every row's query token must see something; inactive rows re-read a pad
        self.mask = torch.cat([self.mask, real.to(self.device)], dim=1)
        if self.cache is None:
            self.cache = self.qnet.new_cache()
        was_training = self.qnet.training  # a training loop may lend us its network: give it back as it was
        self.qnet.eval()
        try:
            q = self.qnet.last_q(ids.to(self.device), self.mask, positions.to(self.device), self.cache)
        finally:
            self.qnet.train(was_training)
        for b, n in enumerate(new):
            self.cached[b].extend(n)
        return q.cpu().numpy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        self.last_q = self.q_values(obs)
        self.q_history.append(self.last_q)
        return epsilon_greedy(self.last_q, self.epsilon, self.rng)

    def observe(self, step: Transition) -> None:
        for b in np.flatnonzero(step.active):
            self.tokens[b].extend(self.tokenizer.after_action_tokens(
                step.obs[b], step.actions[b], step.rewards[b], step.next_obs[b], self.shapes[b],
                bool(step.terminated[b]), bool(step.truncated[b])))
        ends = np.asarray(step.terminated) | np.asarray(step.truncated)
        self.episode_start = ends.copy()
        if self.reset_context_every_episode:
            for b in np.flatnonzero(ends & step.active):
                self.tokens[b] = []  # the next episode starts a fresh trial: nothing carries over
        self.active = step.active.copy()
