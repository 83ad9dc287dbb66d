"""What every encoding of a trial produces, and how encoded trials are packed into batches.

Why one interface: the small transformer reads compact integer tokens and a
Llama reads chat-formatted text, but the DQN objective only needs to know,
for every step of every trial, *where* in the sequence its Q-values are read
and what reward, action and ending followed. ``EncodedTrial`` carries exactly
that, and ``pack`` lays several of them into fixed-length rows with attention
kept inside each trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


class ContextTooLongError(ValueError):
    """A trial does not fit the context length; the message says by how much and what to do."""


@dataclass(frozen=True)
class EncodedTrial:
    """One trial as a token sequence of length L with T steps.

    ``q_positions[t]`` is the index of the token whose output holds
    Q(obs[t], .) for step t: the model must have seen everything up to and
    including ``obs[t]`` there, and nothing of ``actions[t]`` or later.
    ``actions``, ``rewards``, ``terminated``, ``truncated`` and ``episode`` are the
    trial's own per-step arrays, aligned to those positions.
    """

    tokens: np.ndarray
    q_positions: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode: np.ndarray

    def __post_init__(self) -> None:
        steps = len(self.q_positions)
        for name in ("actions", "rewards", "terminated", "truncated", "episode"):
            if len(getattr(self, name)) != steps:
                raise ValueError(f"EncodedTrial.{name} has {len(getattr(self, name))} entries for {steps} q_positions")
        if steps and (np.any(np.diff(self.q_positions) <= 0) or self.q_positions[-1] >= len(self.tokens)):
            raise ValueError("EncodedTrial.q_positions must increase strictly and lie inside tokens")

    def __len__(self) -> int:
        return len(self.tokens)

    def truncate(self, length: int) -> "EncodedTrial":
        """The first ``length`` tokens and the steps whose Q position lies inside them."""
        keep = self.q_positions < length
        return EncodedTrial(self.tokens[:length], self.q_positions[keep], self.actions[keep], self.rewards[keep],
                            self.terminated[keep], self.truncated[keep], self.episode[keep])


@dataclass
class StepBatch:
    """B packed rows of ``context_length`` tokens and up to N steps each, as torch tensors.

    Token-level (B, L): ``input_ids``; ``segment_ids`` (which trial of the row a
    token belongs to, -1 for padding); ``position_ids`` (restarting at 0 in every
    trial). Step-level (B, N): ``q_index`` (token index of each step's Q-values),
    ``step_mask`` (real step, not padding), ``actions``, ``rewards``,
    ``terminated``, ``truncated``, and ``has_next``: step t+1 of the same row
    continues the *same episode* of the same trial, so its Q-values bootstrap
    step t.
    """

    input_ids: torch.Tensor
    segment_ids: torch.Tensor
    position_ids: torch.Tensor
    q_index: torch.Tensor
    step_mask: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    has_next: torch.Tensor

    def attention_mask(self) -> torch.Tensor:
        """``(B, 1, L, L)`` boolean mask: causal and within one trial (True = may attend).

        Padding tokens attend to themselves only, so no row of the mask is empty.
        """
        seg = self.segment_ids
        same = seg[:, :, None] == seg[:, None, :]
        length = seg.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=seg.device).tril()
        eye = torch.eye(length, dtype=torch.bool, device=seg.device)
        return ((same & causal) | eye)[:, None]

    def to(self, device: torch.device | str) -> "StepBatch":
        return StepBatch(**{k: v.to(device) for k, v in self.__dict__.items()})


def pack(
    encoded: Sequence[EncodedTrial],
    context_length: int,
    pad_id: int = 0,
    overflow: str = "error",
) -> StepBatch:
    """Lay encoded trials into rows of ``context_length`` tokens, first-fit in the given order.

    Several short trials share a row (their attention is kept apart by
    ``segment_ids``); a trial never spans two rows. ``overflow`` decides what
    happens to a trial longer than ``context_length``: ``"error"`` raises
    ``ContextTooLongError``, ``"truncate"`` keeps its first ``context_length``
    tokens (steps past the cut are dropped, and the last kept step does not
    bootstrap).
    """
    if context_length < 1:
        raise ValueError(f"context_length={context_length} must be >= 1")
    if overflow not in ("error", "truncate"):
        raise ValueError(f"overflow={overflow!r} must be 'error' or 'truncate'")
    trials = []
    for i, item in enumerate(encoded):
        if len(item) > context_length:
            if overflow == "error":
                raise ContextTooLongError(
                    f"trial {i} is {len(item)} tokens long but context_length is {context_length}: "
                    "raise context_length, use fewer or shorter episodes, or pass overflow='truncate'"
                )
            item = item.truncate(context_length)
        trials.append(item)

    rows: list[list[EncodedTrial]] = []
    fill: list[int] = []
    for item in trials:
        for r, used in enumerate(fill):
            if used + len(item) <= context_length:
                rows[r].append(item)
                fill[r] += len(item)
                break
        else:
            rows.append([item])
            fill.append(len(item))

    n_rows = len(rows)
    max_steps = max((sum(len(t.q_positions) for t in row) for row in rows), default=0)
    input_ids = np.full((n_rows, context_length), pad_id, dtype=np.int64)
    segment_ids = np.full((n_rows, context_length), -1, dtype=np.int64)
    position_ids = np.zeros((n_rows, context_length), dtype=np.int64)
    step = {name: np.zeros((n_rows, max_steps), dtype=dtype) for name, dtype in (
        ("q_index", np.int64), ("step_mask", bool), ("actions", np.int64), ("rewards", np.float32),
        ("terminated", bool), ("truncated", bool), ("has_next", bool))}
    for r, row in enumerate(rows):
        offset, n = 0, 0
        for seg, item in enumerate(row):
            length, steps = len(item), len(item.q_positions)
            input_ids[r, offset:offset + length] = item.tokens
            segment_ids[r, offset:offset + length] = seg
            position_ids[r, offset:offset + length] = np.arange(length)
            sl = slice(n, n + steps)
            step["q_index"][r, sl] = item.q_positions + offset
            step["step_mask"][r, sl] = True
            step["actions"][r, sl] = item.actions
            step["rewards"][r, sl] = item.rewards
            step["terminated"][r, sl] = item.terminated
            step["truncated"][r, sl] = item.truncated
            ends = item.terminated | item.truncated
            nxt = np.zeros(steps, dtype=bool)
            nxt[:-1] = ~ends[:-1] & (item.episode[1:] == item.episode[:-1])
            step["has_next"][r, sl] = nxt
            offset += length
            n += steps
    as_t = torch.from_numpy
    return StepBatch(as_t(input_ids), as_t(segment_ids), as_t(position_ids), **{k: as_t(v) for k, v in step.items()})
