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
    size = min(n, len(encoded))
    picks = rng.choice(len(encoded), size=size - size % world if world > 1 else size, replace=False)
    mine = [encoded[i] for i in picks[rank::world]]
    length = context_length or max(len(e) for e in mine)
    return pack(mine, length, pad_id=pad_id, overflow="truncate")
