"""Any Hugging Face causal language model as a Q-network, with peft adapters and a float32 target.

The paper's recipe: Q(s, a) is the logit of action ``a``'s word at the token
just before it (``tokenize.chat`` says where), the language model is adapted
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
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from icrl_course import dqn
from icrl_course.envs import LakeMap
from icrl_course.runtime import pick_device
from icrl_course.tokenize.base import StepBatch
from icrl_course.tokenize.chat import LLAMA3, ChatTokenizer
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
            f"with `huggingface-cli download {name} --local-dir models/{name.split('/')[-1]}`"
        ) from error
    return model.to(device), tokenizer


# ------------------------------------------------------------------------------------ tiny model
TINY_WORDS = ("observation", "action", "reward", "episode", "truncated", "left", "down", "right", "up", "-", ".")


def build_tiny_llama(
    path: str | Path,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    max_cell: int = 399,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised, really small Llama and its tokenizer to ``path``; return the path.

    The folder looks like any Hub checkpoint (``config.json``,
    ``model.safetensors``, ``tokenizer.json``), so ``load_causal_lm(path)``
    loads it with the same ``from_pretrained`` calls that load Llama 3.1 8B.
    The tokenizer is word-level: Llama 3's special tokens, the chat format's
    words and the numbers ``0..max_cell`` are one token each.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    fmt = LLAMA3
    vocab = {w: i for i, w in enumerate([*fmt.special_tokens, "[UNK]", *TINY_WORDS, *map(str, range(max_cell + 1))])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(list(fmt.special_tokens))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=fmt.begin, eos_token=fmt.end_of_episode,
                                        pad_token=fmt.end_of_episode, unk_token="[UNK]")
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=32768, tie_word_embeddings=False,
        bos_token_id=vocab[fmt.begin], eos_token_id=vocab[fmt.end_of_episode], pad_token_id=vocab[fmt.end_of_episode],
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
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


class HFQNetwork(nn.Module):
    """A causal LM read as a Q-network: ``Q(s_t, a) = logit of action word a at step t's Q position``.

    Only the hidden states at the Q positions go through the output layer,
    and only its four action rows: the logits a language model head would
    give there, without the ``(B, L, 128k)`` tensor (21 GB in float32 for the
    paper's batch of 10 x 4,096 tokens). That equals the full logits for
    models whose logits are ``lm_head(final hidden state)`` (Llama, Mistral,
    Qwen); ``tests/test_models_hf.py`` checks it against a manual gather.
    """

    def __init__(self, model: nn.Module, action_token_ids: Sequence[int]):
        super().__init__()
        self.model = model
        self.register_buffer("action_token_ids", torch.as_tensor(np.asarray(action_token_ids), dtype=torch.long),
                             persistent=False)

    def _lm(self) -> nn.Module:
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        head = self._lm().get_output_embeddings()
        weight = head.weight[self.action_token_ids]
        bias = head.bias[self.action_token_ids] if getattr(head, "bias", None) is not None else None
        return nn.functional.linear(hidden.to(weight.dtype), weight, bias).float()

    def forward(self, batch: StepBatch) -> torch.Tensor:
        """``(B, N, 4)`` float32 Q-values at every step of a packed batch, trials kept apart.

        Packed trials see only themselves: the 4D mask comes from
        ``batch.attention_mask()`` (causal, within one segment) and positions
        restart at 0 in every trial, so a trial's Q-values do not depend on
        what else shares its row. A 4D mask works with the ``sdpa`` and
        ``eager`` attention implementations (not ``flash_attention_2``).
        """
        hidden = self._hidden(batch)
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
        return self._head(hidden[rows, batch.q_index])

    def logits(self, batch: StepBatch) -> torch.Tensor:
        """The full ``(B, L, V)`` next-token logits of a packed batch, read the same way (for lessons and tests)."""
        return self._lm().get_output_embeddings()(self._hidden(batch))

    def _hidden(self, batch: StepBatch) -> torch.Tensor:
        allowed = batch.attention_mask()
        dtype = self._head_dtype()
        bias = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(~allowed, torch.finfo(dtype).min)
        return self._lm().get_decoder()(input_ids=batch.input_ids, attention_mask=bias, position_ids=batch.position_ids,
                                        use_cache=False).last_hidden_state

    def _head_dtype(self) -> torch.dtype:
        return self._lm().get_output_embeddings().weight.dtype

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


# ----------------------------------------------------------------------------- adapters, target
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


def _strip(name: str, adapter: str) -> str:
    return name.replace(f".{adapter}.", ".").removesuffix(f".{adapter}")


class QLearner:
    """The online Q-network and its target, sharing one base model where adapters allow.

    Adapters (``ia3``, ``lora``): the base weights are frozen and shared; the
    online adapter trains; the target adapter is a float32 copy of it that
    only ``update_target`` moves. ``full``: every weight of ``online`` trains
    and the target is a separate float32 copy (``dqn.make_target``).
    """

    def __init__(self, model: nn.Module, action_token_ids: Sequence[int], adapter: AdapterConfig = AdapterConfig(),
                 gradient_checkpointing: bool = False):
        self.adapter = adapter
        if gradient_checkpointing:  # recompute each layer's activations in the backward pass instead of storing them
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
                model.activation_checkpointing_enable({"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if adapter.kind == "full":
            self.online = HFQNetwork(model, action_token_ids)
            self.online.float()
            self.target = dqn.make_target(self.online)
        else:
            from peft import get_peft_model

            model.requires_grad_(False)
            with warnings.catch_warnings():  # peft 0.21 asks transformers 5 a deprecated question; nothing to act on
                warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
                peft_model = get_peft_model(model, adapter.peft_config(), adapter_name=ONLINE)
            peft_model.add_adapter(TARGET, adapter.peft_config())
            peft_model.set_adapter(ONLINE)  # also makes only the online adapter trainable
            self.online = HFQNetwork(peft_model, action_token_ids)
            self.target = None
            with torch.no_grad():
                for name, tensor in self.target_state().items():
                    tensor.copy_(self.online_state()[name].float())
            for tensor in self.target_state().values():
                tensor.requires_grad_(False)

    def _adapter_tensors(self, adapter: str) -> dict[str, torch.Tensor]:
        return {_strip(n, adapter): p for n, p in self.online.model.named_parameters()
                if n.endswith(f".{adapter}") or f".{adapter}." in n}

    def online_state(self) -> dict[str, torch.Tensor]:
        """The trainable tensors by name (adapter names stripped), live: the optimiser's parameters."""
        if self.target is not None:
            return dict(self.online.named_parameters())
        return self._adapter_tensors(ONLINE)

    def target_state(self) -> dict[str, torch.Tensor]:
        """The target's tensors by the same names, live."""
        if self.target is not None:
            return dict(self.target.named_parameters())
        return self._adapter_tensors(TARGET)

    def parameters(self) -> list[nn.Parameter]:
        return [p for p in self.online_state().values() if p.requires_grad]

    @torch.no_grad()
    def target_q(self, batch: StepBatch) -> torch.Tensor:
        """``(B, N, 4)`` Q-values of the target network (no gradients)."""
        if self.target is not None:
            return self.target(batch)
        peft_model = self.online.model
        peft_model.set_adapter(TARGET)
        try:
            return self.online(batch)
        finally:
            peft_model.set_adapter(ONLINE)  # restores requires_grad: online trains, target frozen
            for tensor in self.target_state().values():
                tensor.requires_grad_(False)

    def update_target(self, tau: float) -> None:
        """Polyak step ``target <- (1 - tau) target + tau online`` (``dqn.polyak_update``), in float32."""
        dqn.polyak_update(self.target_state(), self.online_state(), tau)


# ----------------------------------------------------------------------------------- the agent
class HFAgent:
    """Acts greedily on a ``HFQNetwork``'s Q-values in trials (``trials.Agent``), with one KV cache per batch.

    Every act feeds only the tokens added since the last act (the action
    word, reward and episode markers of the last step, the new observation
    and the action prompt) on top of the cache, after checking that what the
    cache holds is still a prefix of the trial's tokens; if it is not, the
    cache is dropped and the whole history fed again. Lakes of one batch
    grow by different numbers of tokens, so each act's new tokens are
    left-padded to a common width and the padding is masked out.

    ``q_history`` keeps the ``(B, 4)`` Q-values of every act, for plots.
    """

    name = "llm"

    def __init__(self, qnet: HFQNetwork, chat: ChatTokenizer, device: str | torch.device | None = None):
        self.qnet = qnet
        self.chat = chat
        self.device = torch.device(device) if device is not None else next(qnet.parameters()).device
        self.recomputes = 0
        """How many times the cache was found stale and rebuilt (0 with the chat format's append-only tokens)."""

    def begin(self, maps: Sequence[LakeMap], rng: np.random.Generator) -> None:
        b = len(maps)
        self.tokens = [list(self.chat.begin_tokens()) for _ in range(b)]
        self.cached: list[list[int]] = [[] for _ in range(b)]
        self.cache = None
        self.mask = torch.zeros(b, 0, dtype=torch.long, device=self.device)
        self.active = np.ones(b, dtype=bool)
        self.last_actions = np.zeros(b, dtype=np.int64)
        self.q_history: list[np.ndarray] = []

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        for b in np.flatnonzero(self.active):
            self.tokens[b].extend(self.chat.observation_tokens(int(obs[b])))
        stale = any(self.tokens[b][:len(c)] != c for b, c in enumerate(self.cached))
        if stale:
            self.recomputes += 1
            self.cache, self.cached = None, [[] for _ in self.tokens]
            self.mask = self.mask[:, :0]
        new = [t[len(c):] for t, c in zip(self.tokens, self.cached)]
        width = max(1, max(len(n) for n in new))
        ids = torch.full((len(new), width), self.chat.pad_id, dtype=torch.long)
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
        q = self.qnet.last_q(ids.to(self.device), self.mask, positions.to(self.device), self.cache)
        for b, n in enumerate(new):
            self.cached[b].extend(n)
        q = q.cpu().numpy()
        self.q_history.append(q)
        self.last_actions = q.argmax(axis=1)
        return self.last_actions.copy()

    def observe(self, step: Transition) -> None:
        for b in np.flatnonzero(step.active):
            self.tokens[b].extend(self.chat.after_action_tokens(step.actions[b], step.rewards[b], step.next_obs[b],
                                                                bool(step.terminated[b]), bool(step.truncated[b])))
        self.active = step.active.copy()
