"""Compact tokens for the small transformer: one token per step, made of a few small integer fields.

Why this shape: a Frozen Lake step says *where I am*, *how I got here* (the
previous action and its reward) and *whether an episode just ended, and where*.
Each of those is a small categorical field; the model embeds every field with
its own little table and sums the embeddings (``models.transformer``). One
giant vocabulary id per (cell, action, reward, ...) combination would instead
leave most ids rare and their embeddings untrained.

The fields of a token, in order (``FIELDS``):

``up, down, left, right``
    The cell as its distance to each wall, capped at ``edge_cap``:
    ``up = min(row, cap)``, ``down = min(nrow - 1 - row, cap)``, and the same
    for columns. Why not the bare cell index, or (row, col)? An issue-6 probe
    found the bare index trains much worse than row and column embeddings on
    the paper's 3-5 x 3-5 maps. Plain (row, col) still fails out of
    distribution: on 6-7 x 6-7 maps rows 5 and 6 never occurred in training and
    their embeddings are random. Walls are also what the dynamics depend on
    (moving into one leaves you in place). Two distances name the row exactly
    on maps of up to ``2 * cap + 1`` rows (``max_side``).

    Which cap? The tokenizer's default, 4, names every cell of a 9 x 9 map
    uniquely, but on 6-7 x 6-7 maps it writes codes that never occur on the
    3-5 x 3-5 training maps (there ``up + down = nrow - 1 <= 4``; a 7-row map
    has ``up = 3, down = 3``): a model trained with cap 4 keeps falling into
    holes it already fell into on larger maps. Cap 2 names every cell of a
    map of up to 5 x 5 uniquely, and *every* code of any larger map already
    occurs on 5 x 5 training maps; the price is that inner cells of larger
    maps share names (rows 2..nrow-3 all read ``up = down = 2``). Measured on
    val maps (``benchmarks/icl_curve.py``), cap 2 trains faster and transfers
    far better; the course's shipped models use it (``configs/paper-small.json``),
    with ``cell_ids`` (below) to tell the shared names apart.
    Maps of any size can be encoded; only ``decode`` needs ``max_side``.
``prev_action``
    The action taken at the previous step (0-3), or none (4) at the trial's start.
``prev_reward``
    The previous step's reward as an index into ``reward_values`` (+1), or none (0).
``end_up, end_down, end_left, end_right``
    On the first step of an episode after the first: the tile where the
    previous episode *ended* (the hole or goal it fell into, or where time ran
    out), in the same wall-distance coordinates; none (``cap + 1``) otherwise.
    This is how the model sees holes and goals: with autoreset the ending tile
    is never an observation, and on slippery maps it cannot be worked out from
    the previous cell and action, so it is written down.
``kind``
    ``STEP`` (the episode goes on), ``TRIAL_START``, or the way the previous
    episode ended: ``AFTER_TERMINATED``, ``AFTER_TRUNCATED`` (time limit) or
    ``AFTER_BOTH``.

``from_start_row, from_start_col, end_from_start_row, end_from_start_col`` (only with ``relative_cap``)
    The cell, and the tile where the previous episode ended, as rows and
    columns from the trial's *first* cell, clipped to ``-relative_cap ..
    relative_cap``; none when there is no cell. Why: wall distances capped at 2
    give the inner cells of a map larger than 5 x 5 one shared name, so "the
    hole I fell into" and "a cell I have not tried" read the same there;
    with offsets they get names of their own (all of them with a clip of 4,
    most with 2), from values the 3-5 x 3-5 training maps also write. Measured
    on val maps (lesson 5's lever table), neither clip beat wall distances
    alone out of distribution, so the shipped models leave them off
    (``relative_cap=0``); the option stays so that the measurement can be
    rerun. The fields come after ``kind``, so a tokenizer without them
    writes the same ids as before.
``cell_id, arrived_id`` (only with ``cell_ids``)
    The cell's own name, ``row * CELL_ID_WIDTH + col``, and the name of the
    tile the previous step *arrived at*: the same cell, unless that step ended
    an episode, when it is the hole, goal or time-out tile written in the
    ``end_*`` fields (``CELL_ID_NONE`` where there is no such tile: the trial's
    first token, a closing token's cell). Last of all. The transformer does
    not embed them: it only compares them, token with token
    (``models.transformer.cell_relations``), so what they say is *this is the
    cell of that earlier token* or *that earlier step arrived next to me*,
    never a value a model could have learned only for small maps. Equality
    and adjacency mean the same on a 7 x 7 map as on a 3 x 3 one; the wall
    distances stay for what the dynamics need. Maps of up to
    ``CELL_ID_WIDTH`` rows and columns. Measured on val maps (lesson 5's
    lever table), this is what carried the small model to 6-7 x 6-7 maps:
    there it fell far less often into holes it had already found (12-20% of
    its falls instead of 30%).

A trial of T steps becomes T + 1 tokens: token t (t < T) is the state where
action t is chosen, so Q-values of step t are read there (``q_positions = 0..T-1``);
token T closes the trial with the outcome of the last step (its cell fields are
none if that step ended an episode). The closing token makes the encoding
lossless (``decode`` rebuilds the trial from the tokens and the map's shape
alone) and, coming after every Q position, never changes a Q-value.

The fields are stored as one int64 per token (a mixed-radix number,
``token_ids`` / ``fields``) so that tokens fit ``EncodedTrial`` and ``pack``
unchanged; the model splits them back into fields before embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from icrl_course.tokenize.base import EncodedTrial
from icrl_course.trials import Trial

FIELDS = ("up", "down", "left", "right", "prev_action", "prev_reward",
          "end_up", "end_down", "end_left", "end_right", "kind")
"""Names of a compact token's fields, in the order of ``CompactTokenizer.field_sizes``."""

STEP, TRIAL_START, AFTER_TERMINATED, AFTER_TRUNCATED, AFTER_BOTH = range(5)
KIND_NAMES = ("step", "trial start", "after terminated", "after truncated", "after both")
NO_ACTION = 4
"""``prev_action`` value at the start of a trial."""
NO_REWARD = 0
"""``prev_reward`` value at the start of a trial."""
RELATIVE_FIELDS = ("from_start_row", "from_start_col", "end_from_start_row", "end_from_start_col")
"""Fields a tokenizer with ``relative_cap`` adds after ``FIELDS`` (see the module docstring)."""
CELL_ID_FIELDS = ("cell_id", "arrived_id")
"""Fields a tokenizer with ``cell_ids`` adds last (see the module docstring)."""
CELL_ID_WIDTH = 16
"""``cell_id = row * CELL_ID_WIDTH + col``: tokenizers with ``cell_ids`` take maps of up to 16 x 16."""
CELL_ID_NONE = CELL_ID_WIDTH * CELL_ID_WIDTH
"""The name of no tile (``cell_id`` of a closing token after an episode end, ``arrived_id`` of a trial's first
token, padding)."""


def kind_after(terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """The ``kind`` of the token that follows an ending step (terminated, truncated or both)."""
    return np.where(terminated & truncated, AFTER_BOTH, np.where(terminated, AFTER_TERMINATED, AFTER_TRUNCATED))


@dataclass(frozen=True)
class CompactTokenizer:
    """Encodes trials as compact tokens (see the module docstring) and decodes them back.

    Args:
        edge_cap: largest wall distance kept in a cell field; maps may have up
            to ``2 * edge_cap + 1`` rows and columns. 4 covers the paper's
            in-distribution (3-5) and out-of-distribution (6-7) maps with every
            value already seen on 5 x 5 maps.
        reward_values: every reward a trial may contain; a reward is stored as
            its index in this tuple. FrozenLake's default schedule gives 0 and 1.
        relative_cap: 0 (none), or add ``RELATIVE_FIELDS``: offsets from the
            trial's first cell clipped to this many rows and columns.
        cell_ids: add the ``cell_id`` and ``arrived_id`` fields last (see the module docstring).
    """

    edge_cap: int = 4
    reward_values: tuple[float, ...] = (0.0, 1.0)
    relative_cap: int = 0
    cell_ids: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.edge_cap, (int, np.integer)) or self.edge_cap < 1:
            raise ValueError(f"edge_cap={self.edge_cap!r} must be an int >= 1")
        if not isinstance(self.relative_cap, (int, np.integer)) or self.relative_cap < 0:
            raise ValueError(f"relative_cap={self.relative_cap!r} must be an int >= 0 (0: no offset fields)")
        if not isinstance(self.cell_ids, (bool, np.bool_)):
            raise ValueError(f"cell_ids={self.cell_ids!r} must be True or False")
        values = tuple(float(v) for v in self.reward_values)
        if not values or len(set(values)) != len(values):
            raise ValueError(f"reward_values={self.reward_values!r} must list each possible reward once")
        object.__setattr__(self, "reward_values", values)

    # ------------------------------------------------------------ field layout
    @property
    def coord_none(self) -> int:
        """The value of a cell field that holds no cell."""
        return self.edge_cap + 1

    @property
    def field_names(self) -> tuple[str, ...]:
        """The fields this tokenizer writes: ``FIELDS``, then ``RELATIVE_FIELDS`` with ``relative_cap``, then
        ``CELL_ID_FIELDS`` with ``cell_ids``."""
        return FIELDS + (RELATIVE_FIELDS if self.relative_cap else ()) + (CELL_ID_FIELDS if self.cell_ids else ())

    @property
    def relative_none(self) -> int:
        """The value of an offset field that holds no cell (offsets are stored plus ``relative_cap``)."""
        return 2 * self.relative_cap + 1

    @property
    def max_side(self) -> int:
        """The most rows (or columns) a map may have for every cell to get its own name (and ``decode`` to work).

        Larger maps are encoded too, with inner cells sharing names (the module docstring says why that is
        useful out of distribution).
        """
        return 2 * self.edge_cap + 1

    @property
    def field_sizes(self) -> tuple[int, ...]:
        """Number of values of each field in ``field_names`` order; the transformer's embedding needs it."""
        coord = self.edge_cap + 2
        base = (coord,) * 4 + (5, len(self.reward_values) + 1) + (coord,) * 4 + (len(KIND_NAMES),)
        base += (self.relative_none + 1,) * len(RELATIVE_FIELDS) if self.relative_cap else ()
        return base + ((CELL_ID_NONE + 1,) * len(CELL_ID_FIELDS) if self.cell_ids else ())

    @property
    def vocab_size(self) -> int:
        return int(np.prod(self.field_sizes))

    @property
    def pad_id(self) -> int:
        """A token with every field none; ``pack(..., pad_id=tokenizer.pad_id)`` pads with it."""
        none = self.coord_none
        offsets = [self.relative_none] * len(RELATIVE_FIELDS) if self.relative_cap else []
        cell_id = [CELL_ID_NONE] * len(CELL_ID_FIELDS) if self.cell_ids else []
        return int(self.token_ids(np.array([none] * 4 + [NO_ACTION, NO_REWARD] + [none] * 4 + [STEP] + offsets
                                           + cell_id)))

    def token_ids(self, fields: np.ndarray) -> np.ndarray:
        """Pack ``(..., F)`` field values (``field_names``) into one int64 id each (first field least significant)."""
        fields = np.asarray(fields, dtype=np.int64)
        sizes = np.array(self.field_sizes)
        if fields.shape[-1] != len(sizes) or np.any(fields < 0) or np.any(fields >= sizes):
            raise ValueError(f"fields must have {len(sizes)} columns with values below {tuple(sizes)}")
        strides = np.concatenate([[1], np.cumprod(sizes)[:-1]])
        return (fields * strides).sum(axis=-1)

    def fields(self, ids: np.ndarray) -> np.ndarray:
        """Unpack int64 ids into ``(..., F)`` field values (the inverse of ``token_ids``)."""
        ids = np.asarray(ids, dtype=np.int64)
        if np.any(ids < 0) or np.any(ids >= self.vocab_size):
            raise ValueError(f"token ids must lie in 0..{self.vocab_size - 1}")
        sizes = np.array(self.field_sizes)
        strides = np.concatenate([[1], np.cumprod(sizes)[:-1]])
        return (ids[..., None] // strides) % sizes

    # ------------------------------------------------------------ cells
    def cell_fields(self, obs: np.ndarray, nrow: np.ndarray | int, ncol: np.ndarray | int) -> np.ndarray:
        """``(..., 4)`` wall distances (up, down, left, right) of cells; ``obs = -1`` gives none."""
        obs, nrow, ncol = np.broadcast_arrays(np.asarray(obs, dtype=np.int64), np.asarray(nrow), np.asarray(ncol))
        if np.any(obs >= nrow * ncol) or np.any(obs < -1):
            raise ValueError("an observation lies outside its map (cells are 0..nrow*ncol-1, -1 for none)")
        row, col = np.divmod(np.maximum(obs, 0), ncol)
        cap = self.edge_cap
        out = np.stack([np.minimum(row, cap), np.minimum(nrow - 1 - row, cap),
                        np.minimum(col, cap), np.minimum(ncol - 1 - col, cap)], axis=-1)
        return np.where((obs < 0)[..., None], self.coord_none, out)

    def relative_fields(self, obs: np.ndarray, origin: np.ndarray, ncol: np.ndarray | int) -> np.ndarray:
        """``(..., 2)`` offsets (rows, columns) of cells from ``origin``, clipped and stored plus ``relative_cap``;
        ``obs = -1`` gives none."""
        obs, origin, ncol = np.broadcast_arrays(np.asarray(obs, dtype=np.int64), np.asarray(origin, dtype=np.int64),
                                                np.asarray(ncol))
        if np.any((obs >= 0) & (origin < 0)):
            raise ValueError("a cell needs the trial's first cell (origin) to be written relative to it")
        cap = self.relative_cap
        (row, col), (row0, col0) = np.divmod(np.maximum(obs, 0), ncol), np.divmod(np.maximum(origin, 0), ncol)
        out = np.stack([np.clip(row - row0, -cap, cap), np.clip(col - col0, -cap, cap)], axis=-1) + cap
        return np.where((obs < 0)[..., None], self.relative_none, out)

    def cell_id_field(self, obs: np.ndarray, ncol: np.ndarray | int) -> np.ndarray:
        """``cell_id`` of cells (``row * CELL_ID_WIDTH + col``); ``obs = -1`` gives ``CELL_ID_NONE``."""
        obs, ncol = np.broadcast_arrays(np.asarray(obs, dtype=np.int64), np.asarray(ncol))
        row, col = np.divmod(np.maximum(obs, 0), ncol)
        if np.any((obs >= 0) & ((row >= CELL_ID_WIDTH) | (ncol > CELL_ID_WIDTH))):
            raise ValueError(f"cell_ids names cells of maps of up to {CELL_ID_WIDTH} x {CELL_ID_WIDTH} tiles; this map is "
                             "larger: use smaller maps, or a tokenizer without cell_ids")
        return np.where(obs < 0, CELL_ID_NONE, row * CELL_ID_WIDTH + col)

    def cells(self, coords: np.ndarray, nrow: int, ncol: int) -> np.ndarray:
        """Cell indices back from ``(..., 4)`` wall distances (-1 where the fields hold none).

        Only maps of up to ``max_side`` rows and columns name every cell uniquely; larger ones are refused.
        """
        if max(nrow, ncol) > self.max_side:
            raise ValueError(f"a {nrow}x{ncol} map is larger than edge_cap={self.edge_cap} names uniquely (at most "
                             f"{self.max_side}x{self.max_side}): its inner cells share names, so tokens cannot be "
                             "decoded back to cells; use a tokenizer with a larger edge_cap to decode")
        cap = self.edge_cap
        up, down, left, right = np.moveaxis(np.asarray(coords), -1, 0)
        row = np.where(up < cap, up, np.where(down < cap, nrow - 1 - down, cap))
        col = np.where(left < cap, left, np.where(right < cap, ncol - 1 - right, cap))
        return np.where(up == self.coord_none, -1, row * ncol + col)

    def reward_index(self, rewards: np.ndarray) -> np.ndarray:
        """Each reward's position in ``reward_values`` plus one (0 means none)."""
        rewards = np.asarray(rewards, dtype=np.float64)
        values = np.array(self.reward_values)
        gap = np.abs(rewards[..., None] - values)
        unknown = gap.min(axis=-1, initial=np.inf) > 1e-9
        if np.any(unknown):
            raise ValueError(f"reward {rewards[unknown].flat[0]} is not in reward_values={self.reward_values}: "
                             "add it when building the tokenizer")
        return gap.argmin(axis=-1) + 1

    # ------------------------------------------------------------ tokens
    def step_fields(
        self,
        obs: np.ndarray,
        nrow: np.ndarray | int,
        ncol: np.ndarray | int,
        kind: np.ndarray,
        prev_action: np.ndarray,
        prev_reward: np.ndarray,
        ended_obs: np.ndarray,
        origin: np.ndarray | None = None,
    ) -> np.ndarray:
        """The ``(..., F)`` fields of a batch of steps, all arrays of one shape (e.g. ``(B,)`` lakes at once).

        ``obs`` is the current cell (-1: none, only on a closing token);
        ``kind`` says what came before. ``prev_action``, ``prev_reward`` are
        ignored at ``TRIAL_START`` and ``ended_obs`` (where the last episode
        ended) is used only after an episode end. ``origin`` is the trial's
        first cell, needed with ``relative_cap`` only (at ``TRIAL_START`` it is
        ``obs`` whatever is passed). Acting agents and ``encode`` share this
        function, so training and acting tokens cannot drift apart.
        """
        kind = np.asarray(kind, dtype=np.int64)
        prev_action = np.asarray(prev_action)
        start = kind == TRIAL_START
        if np.any((~start) & ((prev_action < 0) | (prev_action > 3))):
            bad = prev_action[(~start) & ((prev_action < 0) | (prev_action > 3))].flat[0]
            raise ValueError(f"action {bad} is outside 0..3 (0 left, 1 down, 2 right, 3 up)")
        if np.any((kind < 0) | (kind >= len(KIND_NAMES))):
            raise ValueError(f"kind must be one of 0..{len(KIND_NAMES) - 1} ({', '.join(KIND_NAMES)})")
        after_end = kind >= AFTER_TERMINATED
        cell = self.cell_fields(obs, nrow, ncol)
        ended = self.cell_fields(np.where(after_end, ended_obs, -1), nrow, ncol)
        action = np.where(start, NO_ACTION, prev_action)
        reward = np.where(start, NO_REWARD, self.reward_index(np.where(start, self.reward_values[0], prev_reward)))
        parts = [cell, action[..., None], reward[..., None], ended, kind[..., None]]
        if self.relative_cap:
            if origin is None:
                raise ValueError(f"relative_cap={self.relative_cap} writes cells relative to the trial's first cell: "
                                 "pass origin")
            origin = np.where(start, obs, origin)
            parts += [self.relative_fields(obs, origin, ncol),
                      self.relative_fields(np.where(after_end, ended_obs, -1), origin, ncol)]
        if self.cell_ids:
            arrived = np.where(start, -1, np.where(after_end, ended_obs, obs))
            parts += [self.cell_id_field(obs, ncol)[..., None], self.cell_id_field(arrived, ncol)[..., None]]
        return np.concatenate(parts, axis=-1)

    def step_tokens(self, obs, nrow, ncol, kind, prev_action, prev_reward, ended_obs, origin=None) -> np.ndarray:
        """Token ids of a batch of steps: ``token_ids(step_fields(...))`` with the same arguments."""
        return self.token_ids(self.step_fields(obs, nrow, ncol, kind, prev_action, prev_reward, ended_obs, origin))

    def encode_fields(self, trial: Trial) -> np.ndarray:
        """The ``(T + 1, F)`` fields of a trial's tokens (what ``encode`` packs into ids)."""
        n = len(trial)
        if n == 0:
            return np.zeros((0, len(self.field_names)), dtype=np.int64)
        actions = np.asarray(trial.actions)
        if actions.min() < 0 or actions.max() > 3:
            bad = actions[(actions < 0) | (actions > 3)][0]
            raise ValueError(f"trial has action {bad}: actions must be 0 (left), 1 (down), 2 (right) or 3 (up)")
        ends = trial.terminated | trial.truncated
        jumps = np.flatnonzero(~ends[:-1] & (trial.next_obs[:-1] != trial.obs[1:]))
        if len(jumps):
            t = int(jumps[0])
            raise ValueError(f"step {t} lands on {trial.next_obs[t]} but step {t + 1} starts from {trial.obs[t + 1]} "
                             "without an episode end: the trial is not one continuous history")
        nrow, ncol = trial.lake_map.shape
        obs = np.concatenate([trial.obs, [-1 if ends[-1] else trial.next_obs[-1]]])
        kind = np.concatenate([[TRIAL_START], np.where(ends, kind_after(trial.terminated, trial.truncated), STEP)])
        prev_action = np.concatenate([[0], actions])
        prev_reward = np.concatenate([[self.reward_values[0]], trial.rewards])
        ended_obs = np.concatenate([[-1], np.where(ends, trial.next_obs, -1)])
        return self.step_fields(obs, nrow, ncol, kind, prev_action, prev_reward, ended_obs, origin=trial.obs[0])

    def encode(self, trial: Trial) -> EncodedTrial:
        """The trial as T + 1 compact tokens, Q-values read at tokens 0..T-1."""
        tokens = self.token_ids(self.encode_fields(trial))
        return EncodedTrial(tokens, np.arange(len(trial)), np.asarray(trial.actions, dtype=np.int64),
                            np.asarray(trial.rewards, dtype=np.float64), np.asarray(trial.terminated, dtype=bool).copy(),
                            np.asarray(trial.truncated, dtype=bool).copy(), np.asarray(trial.episode, dtype=np.int64).copy())

    def decode(self, encoded: EncodedTrial | np.ndarray, lake_map) -> Trial:
        """The trial back from its tokens alone (and the map, for its shape and the record).

        Raises ``ValueError`` on a sequence ``encode`` cannot have produced.
        """
        tokens = np.asarray(encoded.tokens if isinstance(encoded, EncodedTrial) else encoded)
        if len(tokens) == 0:
            return Trial.from_steps(lake_map, [])
        f = self.fields(tokens)
        nrow, ncol = lake_map.shape
        kind = f[:, FIELDS.index("kind")]
        if kind[0] != TRIAL_START or np.any(kind[1:] == TRIAL_START):
            raise ValueError("a compact trial starts with exactly one TRIAL_START token")
        if len(tokens) < 2:
            raise ValueError("a trial of T steps has T + 1 tokens: the closing token is missing")
        cell = self.cells(f[:, 0:4], nrow, ncol)
        ended = self.cells(f[:, 6:10], nrow, ncol)
        if self.cell_ids:
            arrived = np.concatenate([[-1], np.where(kind[1:] >= AFTER_TERMINATED, ended[1:], cell[1:])])
            if np.any(f[:, -2] != self.cell_id_field(cell, ncol)) or np.any(f[:, -1] != self.cell_id_field(arrived, ncol)):
                raise ValueError("a token's cell_id or arrived_id names another tile than its wall distances")
        after = kind[1:]
        terminated = (after == AFTER_TERMINATED) | (after == AFTER_BOTH)
        truncated = (after == AFTER_TRUNCATED) | (after == AFTER_BOTH)
        ends = terminated | truncated
        if np.any(cell[:-1] < 0):
            raise ValueError("only the closing token may lack a cell")
        rewards = np.array(self.reward_values)[f[1:, FIELDS.index("prev_reward")] - 1]
        steps = zip(cell[:-1], f[1:, FIELDS.index("prev_action")], rewards,
                    np.where(ends, ended[1:], cell[1:]), terminated, truncated)
        return Trial.from_steps(lake_map, list(steps))

    def explain(self, encoded: EncodedTrial | np.ndarray, lake_map):
        """A ``pandas.DataFrame`` with one readable row per token: for lessons and debugging."""
        import pandas as pd

        tokens = np.asarray(encoded.tokens if isinstance(encoded, EncodedTrial) else encoded)
        f = self.fields(tokens)
        nrow, ncol = lake_map.shape
        cell = self.cells(f[:, 0:4], nrow, ncol)
        ended = self.cells(f[:, 6:10], nrow, ncol)
        action_names = ("left", "down", "right", "up", "-")
        reward_names = ("-",) + tuple(f"{v:g}" for v in self.reward_values)
        table = pd.DataFrame({
            "token": tokens,
            "cell": [f"({c // ncol},{c % ncol})" if c >= 0 else "-" for c in cell],
            "walls u/d/l/r": ["/".join(map(str, row)) for row in f[:, 0:4]],
            "prev_action": [action_names[a] for a in f[:, 4]],
            "prev_reward": [reward_names[r] for r in f[:, 5]],
            "ended_at": [f"({c // ncol},{c % ncol})" if c >= 0 else "-" for c in ended],
            "kind": [KIND_NAMES[k] for k in f[:, 10]],
            "q_read": np.arange(len(tokens)) < len(tokens) - 1,
        })
        if self.relative_cap:
            def offsets(rows, cols):
                return ["-" if r == self.relative_none else f"{r - self.relative_cap:+d}/{c - self.relative_cap:+d}"
                        for r, c in zip(rows, cols)]
            table.insert(3, "from start r/c", offsets(f[:, 11], f[:, 12]))
            table.insert(7, "ended from start", offsets(f[:, 13], f[:, 14]))
        return table
