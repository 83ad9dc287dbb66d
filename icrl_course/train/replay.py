"""A replay buffer of whole trials, the unit an in-context learner trains on.

Why whole trials, not single transitions: the sequence DQN objective reads a
step's Q-values at its position in the trial's context, so a training example
is an entire multi-episode trial (every step of it contributes a TD error in
one forward pass). The buffer keeps the most recent ``capacity`` trials and
their encodings (encoded once, when they arrive), and saves itself in the
pickle-free trial format of ``icrl_course.data`` so a killed run resumes with
exactly the buffer it had.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Callable, Mapping, Sequence

import numpy as np

from icrl_course.data import trials_from_arrays, trials_to_arrays
from icrl_course.tokenize.base import EncodedTrial, StepBatch, pack
from icrl_course.trials import Trial


class ReplayBuffer:
    """The last ``capacity`` trials, oldest first, each with its model encoding.

    ``encode`` turns a ``Trial`` into the ``EncodedTrial`` the model reads; it
    runs once per trial on ``add``, not on every sample.
    """

    def __init__(self, capacity: int, encode: Callable[[Trial], EncodedTrial]):
        if capacity < 1:
            raise ValueError(f"capacity={capacity} must be >= 1")
        self.capacity = capacity
        self.encode = encode
        self.trials: deque[Trial] = deque(maxlen=capacity)
        self.encoded: deque[EncodedTrial] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self.trials)

    def add(self, trials: Sequence[Trial]) -> None:
        """Append trials; the oldest ones fall out once the buffer is full."""
        for trial in trials:
            self.trials.append(trial)
            self.encoded.append(self.encode(trial))

    def sample_batch(self, n: int, rng: np.random.Generator, context_length: int, pad_id: int, rank: int = 0,
                     world: int = 1) -> StepBatch:
        """``n`` distinct trials drawn uniformly and packed into a training batch (see ``sample_batch``)."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer: add trials first")
        return sample_batch(self.encoded, n, rng, context_length, pad_id, rank, world)

    def sample_micro_batches(self, n: int, rng: np.random.Generator, context_length: int, pad_id: int, parts: int,
                             rank: int = 0, world: int = 1) -> list[StepBatch]:
        """The trials ``sample_batch`` would draw, packed as ``parts`` micro-batches (see ``sample_micro_batches``)."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer: add trials first")
        return sample_micro_batches(self.encoded, n, rng, context_length, pad_id, parts, rank, world)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The buffer's trials in the on-disk trial format (see ``icrl_course.data``)."""
        return trials_to_arrays(list(self.trials))

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], capacity: int,
                    encode: Callable[[Trial], EncodedTrial]) -> "ReplayBuffer":
        """A buffer holding the trials of ``to_arrays``'s output, in the same order."""
        buffer = cls(capacity, encode)
        buffer.add(trials_from_arrays(arrays))
        return buffer


def exploration_bonus(trial: Trial, bonus: float) -> np.ndarray:
    """Per step, ``bonus`` where the step lands on a tile the trial had not been on, before its first goal.

    Why: an in-context learner must learn to explore *within* a trial; a DQN target that pays a little for
    every new tile makes "which neighbours have I not seen yet?" worth answering from the context. Falling
    into a hole earns nothing, however new the hole (it would pay for the cheapest way to end an episode),
    and from the first step that reaches a goal on, nothing does: the trial's task is then to return to
    it, and a bonus still on offer would lure the policy to unexplored tiles instead. The step that
    reaches the goal gets its reward alone. The trial's tokens never show the bonus (the model reads the
    environment's rewards); it enters only the TD targets, through ``bonus_encoder``.
    """
    obs, landed = np.asarray(trial.obs), np.asarray(trial.next_obs)
    steps = np.arange(len(obs))
    first_at = np.full(trial.lake_map.n_states, len(obs))  # first step at which the trial stood on each tile
    np.minimum.at(first_at, obs, steps)
    first_landed = np.full(trial.lake_map.n_states, len(obs))
    np.minimum.at(first_landed, landed, steps)
    won = np.asarray(trial.rewards) > 0
    fell = np.asarray(trial.terminated) & ~won
    before_goal = steps < (np.argmax(won) if won.any() else len(obs))
    new = (first_landed[landed] == steps) & (first_at[landed] > steps) & ~fell & before_goal
    return np.where(new, bonus, 0.0)


def bonus_encoder(encode: Callable[[Trial], EncodedTrial], bonus: float) -> Callable[[Trial], EncodedTrial]:
    """``encode``, with ``exploration_bonus(trial, bonus)`` added to each encoding's rewards (``encode`` itself if 0)."""
    if not bonus:
        return encode

    def encode_with_bonus(trial: Trial) -> EncodedTrial:
        encoded = encode(trial)
        rewards = np.asarray(encoded.rewards, dtype=np.float32) + exploration_bonus(trial, bonus)
        return replace(encoded, rewards=rewards.astype(np.float32))
    return encode_with_bonus


def sample_batch(encoded: Sequence[EncodedTrial], n: int, rng: np.random.Generator, context_length: int,
                 pad_id: int, rank: int = 0, world: int = 1) -> StepBatch:
    """Draw ``n`` distinct encoded trials uniformly (all of them when there are fewer) and pack them into rows.

    Distinct, because a trial twice in one batch counts its TD errors twice;
    whole trials, because a step's Q-values depend on everything before it in
    its trial. ``pack`` keeps the trials sharing a row apart. Rows hold
    ``context_length`` tokens (a longer trial keeps its first ones), or, with
    0, as many as the longest trial drawn. With ``world`` processes, each
    draws the same trials and packs its own share, ``rank::world`` (so the draw
    is cut to a multiple of ``world``).
    """
    mine = _draw(encoded, n, rng, rank, world)
    length = context_length or max(len(e) for e in mine)
    return pack(mine, length, pad_id=pad_id, overflow="truncate")


def sample_micro_batches(encoded: Sequence[EncodedTrial], n: int, rng: np.random.Generator, context_length: int,
                         pad_id: int, parts: int, rank: int = 0, world: int = 1) -> list[StepBatch]:
    """``sample_batch``'s trials (the same draw), sorted by length and packed as ``parts`` micro-batches.

    ``dqn_update`` takes the list and computes the gradient of one batch holding them all, one forward and
    backward pass per micro-batch. Why: a pass's activations shrink with its share of the trials (what a
    large model on a small GPU needs), and each micro-batch's rows are only as long as its longest trial (at
    most ``context_length``, when that is set), so short trials no longer share a row, and its attention,
    with the batch's longest one. One part is ``[sample_batch(...)]`` exactly, trials in the drawn order.
    """
    if parts < 1:
        raise ValueError(f"parts={parts} must be >= 1")
    mine = _draw(encoded, n, rng, rank, world)
    if parts == 1:
        return [pack(mine, context_length or max(len(e) for e in mine), pad_id=pad_id, overflow="truncate")]
    mine = sorted(mine, key=len)
    out = []
    for group in np.array_split(np.arange(len(mine)), parts):
        if len(group) == 0:
            continue
        trials = [mine[i] for i in group]
        longest = len(trials[-1])
        out.append(pack(trials, min(context_length, longest) if context_length else longest, pad_id=pad_id,
                        overflow="truncate"))
    return out


def _draw(encoded: Sequence[EncodedTrial], n: int, rng: np.random.Generator, rank: int, world: int) -> list[EncodedTrial]:
    """This process's share of ``n`` distinct trials drawn uniformly (``sample_batch`` says why distinct)."""
    size = min(n, len(encoded))
    picks = rng.choice(len(encoded), size=size - size % world if world > 1 else size, replace=False)
    return [encoded[i] for i in picks[rank::world]]
