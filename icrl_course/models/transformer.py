"""A small decoder-only transformer Q-network, written from scratch, with a KV cache.

Read it top to bottom like nanoGPT's ``model.py``: a config, the token
embedding, rotary positions, ``CausalSelfAttention``, ``MLP``, ``Block``, the
``KVCache`` and the ``QTransformer`` that ties them together. The only
differences from a language model are at the two ends: the input is a compact
token whose fields (cell, previous action, reward, episode end; see
``tokenize.compact``) are embedded separately and summed, and the output
head gives 4 Q-values per position instead of next-token logits.

Two ways to run it:

* **Training**: ``q_values(batch)`` runs a packed ``StepBatch`` (several
  trials per row, attention kept inside each trial by a boolean mask) and
  returns the Q-values at every step, ``(B, N, 4)``, for ``dqn``.
* **Acting**: ``forward(new_ids, cache=cache)`` appends one token per lake to
  a ``KVCache`` and returns only the new positions' Q-values, so a step costs
  one token's work instead of re-reading the whole trial.

With ``cell_relations`` the tokens also name their cell and the tile their
step arrived at, and every attention head adds a learned bias to the logit
of each pair of tokens for the relations between them (same cell; the key
left the query's cell; the key arrived next to the query): names are
compared, never embedded, so they mean the same on maps larger than the
training maps (``cell_relations`` says which relations and why). With
``goal_relation`` one more: the key's step belongs to an earlier episode of
the trial that reached the goal (``goal_relation`` says why). With
``direction_relations`` four more: the key's step arrived in a row above or
below the query's cell, in a column left or right of it, however far.

Positions are rotary (RoPE): attention depends on how far apart two tokens
are, not on where they sit, so a trial longer than those seen in training
meets no untrained position embedding. ``max_context`` (default 4,096) only
bounds the cache and the rotary table; the longest trial the course runs, 30
episodes of at most 100 steps, is 3,001 tokens.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from icrl_course.tokenize.base import ContextTooLongError, StepBatch
from icrl_course.tokenize.compact import (AFTER_BOTH, AFTER_TERMINATED, CELL_ID_FIELDS, FIELDS, STEP, TRIAL_START,
                                          CompactTokenizer)


@dataclass(frozen=True)
class TransformerConfig:
    """Size of the Q-network; the defaults are the course's model (about 0.15 M parameters)."""

    field_sizes: tuple[int, ...] = CompactTokenizer().field_sizes
    """Number of values of each token field (``CompactTokenizer.field_sizes``)."""
    n_layer: int = 3
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads per block."""
    n_embd: int = 64
    """Width of the residual stream; must divide into ``n_head`` heads of even size (for RoPE)."""
    max_context: int = 4096
    """Longest trial, in tokens, the model accepts."""
    mlp_ratio: int = 4
    """Hidden width of each MLP, as a multiple of ``n_embd``."""
    dropout: float = 0.0
    """Dropout on attention weights and residual branches while training (DQN rarely needs it)."""
    n_actions: int = 4
    """Q-values per position: Frozen Lake's four moves."""
    rope_base: float = 10_000.0
    """Base of the rotary frequencies."""
    cell_relations: bool = False
    """The last two token fields name cells (``CompactTokenizer(cell_ids=True)``): not embedded, but compared token
    with token, each attention head adding a learned bias for each relation of ``cell_relations``."""
    goal_relation: bool = False
    """With ``cell_relations``: one more relation, "the key's step was taken in an earlier episode that reached the
    goal" (``goal_relation``), read from the tokens' ``kind`` and ``prev_reward`` fields; the goal's reward is the
    tokenizer's last ``reward_values`` entry."""
    direction_relations: bool = False
    """With ``cell_relations``: four more relations, the key's step arrived in a row above or below the query's
    cell, in a column left or right of it (``cell_relations(directions=True)``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_sizes", tuple(int(s) for s in self.field_sizes))
        if not self.field_sizes or min(self.field_sizes) < 1:
            raise ValueError(f"TransformerConfig.field_sizes={self.field_sizes} needs at least one field, each of size >= 1")
        for name in ("n_layer", "n_head", "n_embd", "max_context", "mlp_ratio", "n_actions"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TransformerConfig.{name}={value!r} must be an int >= 1")
        if self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2:
            raise ValueError(f"TransformerConfig.n_embd={self.n_embd} must split into n_head={self.n_head} heads of even "
                             "size (rotary positions rotate pairs): pick n_embd a multiple of 2 * n_head")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TransformerConfig.dropout={self.dropout} must lie in [0, 1)")
        if not self.rope_base > 1.0:
            raise ValueError(f"TransformerConfig.rope_base={self.rope_base} must be > 1")
        if self.cell_relations and len(self.field_sizes) < 3:
            raise ValueError("TransformerConfig.cell_relations reads the last two fields as cell names: it needs at "
                             "least one other field to embed")
        if self.goal_relation and not self.cell_relations:
            raise ValueError("TransformerConfig.goal_relation is one more relation of cell_relations: set "
                             "cell_relations=True too")
        if self.direction_relations and not self.cell_relations:
            raise ValueError("TransformerConfig.direction_relations are more relations of cell_relations: set "
                             "cell_relations=True too")
        if self.goal_relation and len(self.field_sizes) <= FIELDS.index("kind") + len(CELL_ID_FIELDS):
            raise ValueError("TransformerConfig.goal_relation reads the compact tokens' kind and prev_reward fields: "
                             "build field_sizes with CompactTokenizer(cell_ids=True)")

    @property
    def relations(self) -> tuple[str, ...]:
        """The names of the relations this model's attention biases (``RELATIONS``, in order)."""
        if not self.cell_relations:
            return ()
        return CELL_RELATIONS + GOAL_RELATIONS * self.goal_relation + DIRECTION_RELATIONS * self.direction_relations

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        """Plain JSON-ready values, e.g. for a checkpoint's metadata."""
        return {**asdict(self), "field_sizes": list(self.field_sizes)}

    @classmethod
    def from_dict(cls, values: dict) -> "TransformerConfig":
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown TransformerConfig field(s) {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**values)


class FieldEmbedding(nn.Module):
    """Embeds each field of a packed token id with its own table and sums them.

    The token id is a mixed-radix number (``CompactTokenizer.token_ids``); all
    field tables live in one ``nn.Embedding`` at different offsets so the
    lookup is a single gather. ``embedded`` fields (the first ones; default
    all) are embedded; the others are only read back (``field``).
    """

    def __init__(self, field_sizes: tuple[int, ...], n_embd: int, embedded: int | None = None):
        super().__init__()
        sizes = torch.tensor(field_sizes)
        self.embedded = len(field_sizes) if embedded is None else embedded
        self.register_buffer("sizes", sizes, persistent=False)
        self.register_buffer("strides", torch.cumprod(torch.cat([torch.ones(1, dtype=sizes.dtype), sizes[:-1]]), 0), persistent=False)
        self.register_buffer("offsets", torch.cumsum(torch.cat([torch.zeros(1, dtype=sizes.dtype), sizes[:-1]]), 0), persistent=False)
        self.table = nn.Embedding(int(sizes[:self.embedded].sum()), n_embd)
        self.vocab_size = int(torch.prod(sizes))

    def field(self, ids: torch.Tensor, index: int) -> torch.Tensor:
        """One field's values, shaped like ``ids``."""
        return (ids // self.strides[index]) % self.sizes[index]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.embedded
        fields = (ids.unsqueeze(-1) // self.strides[:e]) % self.sizes[:e]  # (B, L, F)
        return self.table(fields + self.offsets[:e]).sum(dim=-2)


NEIGHBOURS = ((0, -1), (1, 0), (0, 1), (-1, 0))
"""(row, column) steps of actions 0-3 (left, down, right, up), for the neighbour relations."""
RELATIONS = ("same cell", "left this cell", "arrived left", "arrived below", "arrived right", "arrived above",
             "step of a won episode", "arrived in a row above", "arrived in a row below", "arrived in a column left",
             "arrived in a column right")
"""Every relation, in order: ``cell_relations``'s six, ``goal_relation``'s and ``direction_relations``'s four."""
CELL_RELATIONS, GOAL_RELATIONS, DIRECTION_RELATIONS = RELATIONS[:6], RELATIONS[6:7], RELATIONS[7:]
RELATION_GROUPS = (("same cell",), ("left this cell",), ("arrived left", "arrived below", "arrived right", "arrived above"),
                   ("step of a won episode",), ("arrived in a row above", "arrived in a row below"),
                   ("arrived in a column left", "arrived in a column right"))
"""Relations that exclude each other share a group: a key arrives at one tile, so next to the query on one side
at most, and in a row above, below or neither."""


@functools.cache  # one table per set of relations: every forward asks, acting one token at a time included
def relation_codes(names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weights, table)`` for the relations ``names`` (in ``RELATIONS`` order): a pair's code is the sum of
    ``weights`` over the relations it holds (``(R,)`` ints), and row ``code`` of ``table`` (``(codes, R)``) says
    which relations those are.

    The code is a mixed-radix number, one digit per group of ``RELATION_GROUPS`` in use: 0 when none of the
    group holds, else 1 + which one does. With ``cell_relations`` alone the codes run to 20, 40 with the goal
    relation (the numbering every shipped checkpoint was trained with).
    """
    groups = [g for g in RELATION_GROUPS if g[0] in names]
    weights, stride, digits = [], 1, []
    for group in groups:
        weights += [stride * (i + 1) for i in range(len(group))]
        digits.append((stride, len(group) + 1))
        stride *= len(group) + 1
    code = torch.arange(stride)[:, None]
    columns = [(code // s) % radix == i + 1 for (s, radix), group in zip(digits, groups) for i in range(len(group))]
    return torch.tensor(weights), torch.cat(columns, dim=1).float()


def relation_biases(relations: torch.Tensor, relation_bias: torch.Tensor, allowed: torch.Tensor,
                    names: tuple[str, ...]) -> list[torch.Tensor]:
    """Each layer's float attention mask, ``(B, H, Lq, Lk)``: each head's summed bias for every pair of tokens
    that may attend (``allowed``, boolean, broadcastable to ``(B, 1, Lq, Lk)``), -inf for the others; from the
    ``(B, R, Lq, Lk)`` relations named ``names`` (``TransformerConfig.relations``) and the ``(R, n_layer, H)``
    learned biases.

    Most pairs relate in no way. So each allowed pair's combination of relations is numbered (a row of
    ``relation_codes``), the summed biases of the pairs that have one are looked up, and they are written into
    the blocked-or-zero mask laid out as attention wants it: far less work than a product over every pair,
    forward and backward. One tensor per layer rather than one stack: a stack of all layers' masks is so
    large that the allocator maps fresh pages for it at every call, which costs more than filling it.
    """
    weights, table = relation_codes(names)
    small = len(table) <= 256  # the codes of cell_relations and goal_relation fit a byte, those of directions not
    dtype = torch.uint8 if small else torch.int16
    codes = (relations * weights.to(relations.device, dtype)[:, None, None]).sum(dim=1, dtype=dtype)  # (B, Lq, Lk)
    codes = codes * allowed[:, 0]  # a pair that may not attend keeps its -inf
    batch, queries, keys = codes.shape
    b, q, k = codes.nonzero(as_tuple=True)
    layers, heads = relation_bias.shape[1:]
    table = table.to(relation_bias) @ relation_bias.flatten(1)  # (codes, n_layer * H)
    values = table[codes[b, q, k].long()].T  # (n_layer * H, pairs)
    # where each related pair sits in a contiguous (B, H, Lq, Lk) mask, for each head
    pair = (b * heads * queries + q) * keys + k
    where = (torch.arange(heads, device=codes.device)[:, None] * queries * keys + pair).flatten()
    blocked = torch.zeros((), dtype=relation_bias.dtype, device=codes.device).masked_fill(~allowed, -torch.inf)
    masks = []
    for layer in range(layers):
        mask = blocked.expand(batch, heads, queries, keys).contiguous()
        mask.view(-1).index_put_((where,), values[layer * heads:(layer + 1) * heads].flatten())
        masks.append(mask)
    return masks


def cell_relations(query_cells: torch.Tensor, key_cells: torch.Tensor, key_left: torch.Tensor,
                   key_arrived: torch.Tensor, none: int, width: int, directions: bool = False) -> torch.Tensor:
    """The relations of ``TransformerConfig.cell_relations``, ``(B, 6, Lq, Lk)`` booleans (``RELATIONS``), and
    with ``directions`` those of ``direction_relations`` after them (``(B, 10, Lq, Lk)``).

    Cells are named ``row * width + col`` (``CompactTokenizer(cell_ids=True)``); ``none`` names no cell.

    * ``[:, 0]`` same cell: query and key stand on the same cell (I stood here before).
    * ``[:, 1]`` left this cell: the key follows a step taken *from* the query's cell (``key_left`` is the cell
      of the key's previous token in its trial), so it holds the action taken there and what it led to.
    * ``[:, 2 + a]`` arrived next to me: the key's step arrived at the query's neighbour in direction ``a``
      (0 left, 1 down, 2 right, 3 up): what is known about the tile that action ``a`` would reach, a hole
      fallen into, the goal, or a cell walked on. Neighbours off the map are never arrived at.

    * ``[:, 6:8]`` (``directions``) the key's step arrived in a row above or below the query's, ``[:, 8:10]``
      in a column left or right of it, however far: where the goal, a hole or a walked cell lies from here.

    Why relations and not embedded names: a name's embedding is only trained for the cells of the training
    maps, while equality, adjacency and direction mean the same on a map of any size.
    """
    query = query_cells[:, :, None]
    has_cell = query != none
    rows, cols = query // width, query % width
    relations = [(query == key_cells[:, None, :]) & has_cell, (query == key_left[:, None, :]) & has_cell]
    for d_row, d_col in NEIGHBOURS:
        row, col = rows + d_row, cols + d_col
        inside = has_cell & (row >= 0) & (col >= 0) & (col < width)
        relations.append(inside & ((row * width + col) == key_arrived[:, None, :]))
    if directions:
        arrived = has_cell & (key_arrived[:, None, :] != none)
        key_rows, key_cols = key_arrived[:, None, :] // width, key_arrived[:, None, :] % width
        relations += [arrived & (key_rows < rows), arrived & (key_rows > rows),
                      arrived & (key_cols < cols), arrived & (key_cols > cols)]
    return torch.stack(relations, dim=1)


def step_episodes(kind: torch.Tensor, reward: torch.Tensor, goal_reward: int,
                  first_episode: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Episode bookkeeping for ``goal_relation``, from compact tokens' ``kind`` and ``prev_reward`` fields ``(B, L)``.

    Returns ``(episode, step_episode, won)``, each ``(B, L)``:

    * ``episode``: the episode a token's state belongs to, counting the trial start and every episode end
      (``kind != STEP``) from ``first_episode`` (``(B,)``, default 0), so episode numbers only grow along a row;
    * ``step_episode``: the episode of the step the token records (the one from its previous token's cell, by
      ``prev_action``): the token's own episode, or the one before on the first token after an episode end; -1
      on a trial start, which records no step;
    * ``won``: the token closes an episode that reached the goal (it follows a terminating step whose reward is
      ``goal_reward``, the index ``prev_reward`` gives the goal's reward).
    """
    boundary = kind != STEP
    after_end = kind >= AFTER_TERMINATED
    episode = boundary.long().cumsum(dim=1)
    if first_episode is not None:
        episode = episode + first_episode[:, None]
    step_episode = torch.where(kind == TRIAL_START, -1, episode - after_end.long())
    won = ((kind == AFTER_TERMINATED) | (kind == AFTER_BOTH)) & (reward == goal_reward)
    return episode, step_episode, won


def note_won(episodes_won: torch.Tensor, step_episode: torch.Tensor, won: torch.Tensor) -> None:
    """Mark in ``episodes_won`` (``(B, E)`` booleans, one per episode number) the episodes that ``won`` tokens
    (``step_episodes``) close; the table must hold every episode number of ``step_episode``."""
    row, at = won.nonzero(as_tuple=True)
    episodes_won[row, step_episode[row, at]] = True


def goal_relation(query_episode: torch.Tensor, key_step_episode: torch.Tensor, episodes_won: torch.Tensor) -> torch.Tensor:
    """The relation of ``TransformerConfig.goal_relation``, ``(B, 1, Lq, Lk)`` booleans: the key's step was taken
    in an episode that reached the goal and is over for the query (an earlier episode than the query's).

    ``episodes_won`` (``(B, E)``, ``note_won``) says which episode numbers reached the goal; a key that records
    no step (``key_step_episode`` -1) relates to nothing. Whether an episode won is written on the first token
    after it, which every query of a later episode follows: the relation never looks ahead of the query.

    Why: with the other relations alone, "the action I took from this cell" mixes every past visit; once an
    episode has reached the goal, the moves it made are the path to follow. Attending to "left this cell" and
    "step of a won episode" together picks them out in one hop, however long the path is, so following a known
    path does not depend on how many steps it has (on 6-7 x 6-7 maps the shipped model found the goal nearly as
    often as the explorer but often failed to return to it). Measured in lesson 5 on three seeds: episodes that
    began where a won episode had begun reached the goal more often, but episode 10 as a whole did not move, so
    the shipped models leave it off.
    """
    key_won = episodes_won.gather(1, key_step_episode.clamp(min=0)) & (key_step_episode >= 0)
    earlier = key_step_episode[:, None, :] < query_episode[:, :, None]
    return (earlier & key_won[:, None, :]).unsqueeze(1)


class Rotary(nn.Module):
    """Rotary position embedding: rotates query/key pairs by an angle proportional to the position."""

    def __init__(self, head_dim: int, max_context: int, base: float):
        super().__init__()
        freqs = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.arange(max_context, dtype=torch.float32)[:, None] * freqs  # (max_context, head_dim / 2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, L)`` positions -> cos and sin of shape ``(B, 1, L, head_dim / 2)``, ready to broadcast over heads."""
        return self.cos[position_ids].unsqueeze(1), self.sin[position_ids].unsqueeze(1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


def attention_with_learned_mask(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Attention ``softmax(q k^T / sqrt(D) + mask) v`` for ``(B, H, L, D)`` tensors and a float ``(B, H, Lq, Lk)``
    mask that needs a gradient (the learned relation biases), written out.

    Why not ``F.scaled_dot_product_attention``: a mask that needs a gradient keeps it on its written-out
    ("math") path, which scales queries and keys separately, adds the mask in a separate pass and checks every
    row for being fully masked (no row here is: each token sees itself). One ``baddbmm`` adds the mask while
    it multiplies, which saves about a tenth of the online forward and backward. With a power-of-two head
    size (16 in ``paper-small``) the scalings are exact, so the result is bit for bit that of SDPA.
    """
    B, H, L, D = q.shape
    scores = torch.baddbmm(mask.reshape(B * H, L, -1), q.reshape(B * H, L, D),
                           k.reshape(B * H, -1, D).transpose(1, 2), alpha=D ** -0.5)
    return torch.bmm(scores.softmax(dim=-1), v.reshape(B * H, -1, D)).view(B, H, L, D)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig, layer: int):
        super().__init__()
        self.n_head, self.layer, self.dropout = config.n_head, layer, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, cos, sin, mask, cache: "KVCache | None" = None):
        B, L, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, L, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, L, D)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = cache.write(self.layer, k, v)  # every cached key and value, the new ones included
        dropout = self.dropout if self.training else 0.0
        if mask is not None and mask.requires_grad and not dropout:
            y = attention_with_learned_mask(q, k, v, mask)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None and cache is None,
                                               dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(B, L, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.mlp_ratio * config.n_embd)
        self.c_proj = nn.Linear(config.mlp_ratio * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, config: TransformerConfig, layer: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config, layer)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, mask, cache=None):
        x = x + self.attn(self.ln_1(x), cos, sin, mask, cache)
        return x + self.mlp(self.ln_2(x))


class KVCache:
    """Keys and values of every layer for B sequences (one per lake) that grow one token at a time together.

    Slots are shared: every forward appends the same number of tokens to every
    sequence. ``start[b]`` is the first slot of sequence b's *current* context,
    so ``reset(mask)`` forgets chosen sequences' past (their next token starts
    over at position 0) without touching the others; the agent uses it for
    lakes whose trial finished and for the first-episode-only ablation.
    Storage doubles when full, so a trial of T steps costs O(T) copies in all.
    With ``cell_relations`` it also keeps each slot's cell and the cell its
    step left and the tile it arrived at (``write_cells``); with
    ``goal_relation`` each slot's step's episode and which episodes reached
    the goal (``write_episodes``).
    """

    def __init__(self, config: TransformerConfig, batch_size: int, device=None, dtype=torch.float32, capacity: int = 256,
                 no_cell: int = -1):
        self.config = config
        shape = (config.n_layer, batch_size, config.n_head, min(capacity, config.max_context), config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0
        self.start = torch.zeros(batch_size, dtype=torch.long, device=device)
        self._new = 0
        self.no_cell = no_cell
        if config.cell_relations:
            self.cells = torch.full((3,) + shape[1:2] + shape[3:4], no_cell, dtype=torch.long, device=device)
        if config.goal_relation:
            self.step_episodes = torch.full(shape[1:2] + shape[3:4], -1, dtype=torch.long, device=device)
            self.episode = torch.zeros(batch_size, dtype=torch.long, device=device)  # the last token's episode
            self.won = torch.zeros(batch_size, 16, dtype=torch.bool, device=device)  # which episodes reached the goal

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    def context_lengths(self) -> torch.Tensor:
        """Tokens in each sequence's current context, ``(B,)``."""
        return self.length - self.start

    def reset(self, mask: torch.Tensor) -> None:
        """Forget the context of the sequences where ``mask`` is True."""
        self.start = torch.where(mask.to(self.start.device), self.length, self.start)

    def prepare(self, n_new: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Make room for ``n_new`` tokens per sequence; their position ids and the attention mask.

        The mask is None when every sequence may see every cached slot (one
        new token, no resets): SDPA then takes its fastest path.
        """
        lengths = self.context_lengths()
        longest = int(lengths.max()) + n_new
        if longest > self.config.max_context:
            raise ContextTooLongError(
                f"a context would reach {longest} tokens but the model's max_context is {self.config.max_context}: "
                "run fewer or shorter episodes per trial, or build the model with a larger max_context")
        while self.length + n_new > self.k.shape[3]:
            grow = torch.zeros_like(self.k)
            self.k, self.v = torch.cat([self.k, grow], dim=3), torch.cat([self.v, torch.zeros_like(self.v)], dim=3)
            if self.config.cell_relations:
                self.cells = torch.cat([self.cells, torch.full_like(self.cells, self.no_cell)], dim=2)
            if self.config.goal_relation:
                self.step_episodes = torch.cat([self.step_episodes, torch.full_like(self.step_episodes, -1)], dim=1)
        self._new = n_new
        positions = lengths[:, None] + torch.arange(n_new, device=lengths.device)
        if n_new == 1 and not bool(self.start.any()):
            return positions, None
        slots = torch.arange(self.length + n_new, device=lengths.device)
        queries = self.length + torch.arange(n_new, device=lengths.device)
        mask = (slots[None, None, :] >= self.start[:, None, None]) & (slots[None, None, :] <= queries[None, :, None])
        return positions, mask.unsqueeze(1)  # (B, 1, n_new, slots)

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new keys/values of one layer; return all of that layer's keys and values so far."""
        end = self.length + self._new
        self.k[layer, :, :, self.length:end] = k
        self.v[layer, :, :, self.length:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def write_cells(self, cells: torch.Tensor, arrived: torch.Tensor) -> torch.Tensor:
        """Store the new tokens' cells and arrived-at tiles, each ``(B, n_new)`` (after ``prepare``); return
        ``(3, B, slots)``: every slot's cell, the cell its step left and the tile it arrived at, so far. A
        sequence's first token left no cell; a later one left its previous token's."""
        previous = self.cells[0, :, self.length - 1] if self.length else torch.full_like(cells[:, 0], self.no_cell)
        first = torch.where(self.context_lengths() > 0, previous, torch.full_like(previous, self.no_cell))
        end = self.length + self._new
        left = torch.cat([first[:, None], cells[:, :-1]], dim=1)
        self.cells[:, :, self.length:end] = torch.stack([cells, left, arrived])
        return self.cells[:, :, :end]

    def write_episodes(self, kind: torch.Tensor, reward: torch.Tensor, goal_reward: int) -> torch.Tensor:
        """Store the new tokens' step episodes from their ``kind`` and ``prev_reward`` fields, each ``(B, n_new)``
        (after ``prepare``), and note the episodes they say reached the goal; return ``goal_relation`` between
        the new tokens and every slot so far, ``(B, 1, n_new, slots)``. Episode numbers run on across ``reset``:
        a forgotten context's slots are masked anyway."""
        episode, step_episode, won = step_episodes(kind, reward, goal_reward, self.episode)
        while int(episode.max()) >= self.won.shape[1]:
            self.won = torch.cat([self.won, torch.zeros_like(self.won)], dim=1)
        note_won(self.won, step_episode, won)
        end = self.length + self._new
        self.step_episodes[:, self.length:end] = step_episode
        self.episode = episode[:, -1]
        return goal_relation(episode, self.step_episodes[:, :end], self.won)

    def advance(self) -> None:
        """Commit the tokens of the forward that just ran."""
        self.length += self._new
        self._new = 0


class QTransformer(nn.Module):
    """Decoder-only transformer mapping compact tokens to 4 Q-values per position."""

    def __init__(self, config: TransformerConfig = TransformerConfig(), seed: int | None = 0):
        super().__init__()
        self.config = config
        fields = len(config.field_sizes)
        self.embed = FieldEmbedding(config.field_sizes, config.n_embd, fields - 2 if config.cell_relations else fields)
        self.rotary = Rotary(config.head_dim, config.max_context, config.rope_base)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.n_actions)
        if config.cell_relations:
            # Per layer and head, a bias added to the attention logit of each relation (``RELATIONS``); zero at first.
            self.relation_bias = nn.Parameter(torch.zeros(len(config.relations), config.n_layer, config.n_head))
        self._init_weights(seed)

    def _init_weights(self, seed: int | None) -> None:
        """GPT-2's initialisation (normal, std 0.02; residual projections scaled by depth), seeded."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
                continue
            if p.dim() < 2:  # LayerNorm gains
                nn.init.ones_(p)
                continue
            std = 0.02 / math.sqrt(2 * self.config.n_layer) if name.endswith("c_proj.weight") else 0.02
            nn.init.normal_(p, 0.0, std, generator=generator)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def new_cache(self, batch_size: int) -> KVCache:
        """An empty cache for acting on ``batch_size`` lakes at once."""
        return KVCache(self.config, batch_size, device=self.device, dtype=self.head.weight.dtype, no_cell=self.no_cell)

    @property
    def no_cell(self) -> int:
        """With ``cell_relations``: the last field's last value, the name of no cell (``width * width``)."""
        return int(self.config.field_sizes[-1]) - 1

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Q-values ``(B, L, 4)`` for tokens ``(B, L)``.

        Without a cache: ``position_ids`` default to ``0..L-1`` and
        ``attention_mask`` (boolean ``(B, 1, L, L)``, True = may attend, as
        ``StepBatch.attention_mask``) defaults to plain causal attention. With
        a cache: the tokens are appended to it, positions and mask come from
        the cache, and only the new positions are returned.
        """
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        if int(input_ids.min()) < 0 or int(input_ids.max()) >= self.embed.vocab_size:
            raise ValueError(f"token ids must lie in 0..{self.embed.vocab_size - 1} (the tokenizer's vocab_size); "
                             "was the model built with this tokenizer's field_sizes?")
        if cache is not None:
            if position_ids is not None or attention_mask is not None:
                raise ValueError("with a cache, positions and mask come from the cache: pass neither")
            position_ids, attention_mask = cache.prepare(input_ids.shape[1])
        elif position_ids is None:
            if input_ids.shape[1] > self.config.max_context:
                raise ContextTooLongError(
                    f"{input_ids.shape[1]} tokens exceed the model's max_context of {self.config.max_context}: "
                    "shorten the trial or build the model with a larger max_context")
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        elif int(position_ids.max()) >= self.config.max_context:
            raise ContextTooLongError(f"position {int(position_ids.max())} is beyond the model's max_context of "
                                      f"{self.config.max_context}: shorten the trials or raise max_context")
        masks = [attention_mask] * len(self.blocks)
        if self.config.cell_relations:
            masks = self._relation_masks(input_ids, position_ids, attention_mask, cache)
        cos, sin = self.rotary(position_ids)
        x = self.embed(input_ids)
        for block, mask in zip(self.blocks, masks):
            x = block(x, cos, sin, mask, cache)
        if cache is not None:
            cache.advance()
        return self.head(self.ln_f(x))

    def _relation_masks(self, input_ids, position_ids, attention_mask, cache) -> list[torch.Tensor]:
        """Every layer's float attention mask, ``(B, H, Lq, Lk)``: its relation biases between the new
        tokens and every token they may see (``cell_relations``), -inf where attention is not allowed (plain
        causal attention written out when no mask is given)."""
        fields = len(self.config.field_sizes)
        cells, arrived = self.embed.field(input_ids, fields - 2), self.embed.field(input_ids, fields - 1)
        none = self.no_cell
        if cache is not None:
            key_cells, key_left, key_arrived = cache.write_cells(cells, arrived)
        else:
            previous = torch.cat([torch.full_like(cells[:, :1], none), cells[:, :-1]], dim=1)
            key_cells, key_arrived = cells, arrived
            key_left = torch.where(position_ids > 0, previous, torch.full_like(previous, none))
        if attention_mask is None:  # plain causal attention, or (with a cache) every cached token
            length, keys = cells.shape[1], key_cells.shape[1]
            attention_mask = torch.ones(length, keys, dtype=torch.bool, device=cells.device).tril(keys - length)[None, None]
        relations = cell_relations(cells, key_cells, key_left, key_arrived, none, math.isqrt(none),
                                   self.config.direction_relations)
        if self.config.goal_relation:
            kind = self.embed.field(input_ids, FIELDS.index("kind"))
            reward = self.embed.field(input_ids, FIELDS.index("prev_reward"))
            goal = int(self.config.field_sizes[FIELDS.index("prev_reward")]) - 1  # the last reward value: the goal's
            if cache is not None:
                won_relation = cache.write_episodes(kind, reward, goal)
            else:
                episode, step_episode, won = step_episodes(kind, reward, goal)
                episodes_won = torch.zeros(episode.shape[0], episode.shape[1] + 1, dtype=torch.bool, device=kind.device)
                note_won(episodes_won, step_episode, won)
                won_relation = goal_relation(episode, step_episode, episodes_won)
            relations = torch.cat([relations[:, :6], won_relation, relations[:, 6:]], dim=1)
        return relation_biases(relations, self.relation_bias.to(self.head.weight.dtype), attention_mask,
                               self.config.relations)

    def q_values(self, batch: StepBatch) -> torch.Tensor:
        """Q-values at every step of a packed batch, ``(B, N, 4)``: what ``dqn`` needs."""
        single = bool((batch.segment_ids == 0).all())  # one trial filling every row: plain causal attention
        mask = None if single else batch.attention_mask()
        token_q = self(batch.input_ids, batch.position_ids, mask)
        index = batch.q_index.unsqueeze(-1).expand(-1, -1, token_q.shape[-1])
        return token_q.gather(1, index)

