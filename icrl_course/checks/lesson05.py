"""Checks for lesson 5's exercises: the exploration schedule and drawing a training batch from the replay.

``check_epsilon_schedule`` compares the learner's schedule with
``icrl_course.train.config.linear_schedule`` (edge cases first: the first
iteration, after the decay, no decay at all, a rising schedule).
``check_sample_batch`` checks properties of the learner's batch rather than
equality, since any uniform draw of distinct trials is right: the right
number of trials, no trial twice, every chosen trial whole, rows no longer
than the context. The replay's trials have distinct lengths, so a trial is
recognised in the packed batch by its length.
"""

from __future__ import annotations

import numpy as np

from icrl_course.checks.core import Case, CheckResult, Property, run_check
from icrl_course.tokenize.base import EncodedTrial, StepBatch
from icrl_course.train.config import linear_schedule
from icrl_course.train.replay import sample_batch


# ------------------------------------------------------------------------ epsilon schedule
def epsilon_cases() -> list[Case]:
    clamp = "after fraction * iterations the schedule stays at end: cap the progress at 1"
    return [
        Case("the first iteration: explore fully", (0, 100, 1.0, 0.1, 0.3),
             hint="at iteration 0 the schedule is at start"),
        Case("half-way through the decay", (15, 100, 1.0, 0.1, 0.3),
             hint="the decay lasts fraction * iterations iterations (30 here), not all 100"),
        Case("the end of the decay", (30, 100, 1.0, 0.1, 0.3), hint=clamp),
        Case("long after the decay: stays at the end value", (90, 100, 1.0, 0.1, 0.3), hint=clamp),
        Case("fraction 0: no decay, the end value from the start", (0, 100, 1.0, 0.05, 0.0),
             hint="with fraction 0 there is nothing to interpolate: return end (and never divide by 0)"),
        Case("a rising schedule (start below end)", (5, 10, 0.0, 1.0, 1.0),
             hint="interpolate start + progress * (end - start); do not clamp with min/max of the values"),
        Case("the last iteration of a long run", (999, 1000, 1.0, 0.1, 0.3), hint=clamp),
    ]


def check_epsilon_schedule(epsilon_at) -> CheckResult:
    """Check a learner's ``epsilon_at(iteration, iterations, start, end, fraction) -> float``."""
    return run_check("epsilon_at", epsilon_at, linear_schedule, epsilon_cases())


# ------------------------------------------------------------------------ sampling a batch
def synthetic_replay(lengths) -> list[EncodedTrial]:
    """Encoded trials of the given token lengths (T + 1 tokens for T steps, one episode each)."""
    out = []
    for length in lengths:
        steps = length - 1
        ended = np.zeros(steps, dtype=bool)
        ended[-1] = True
        out.append(EncodedTrial(np.full(length, 3, dtype=np.int64), np.arange(steps), np.zeros(steps, dtype=np.int64),
                                np.zeros(steps), ended, np.zeros(steps, dtype=bool), np.zeros(steps, dtype=np.int64)))
    return out


def _trial_lengths(batch: StepBatch) -> list[int]:
    """Token length of every trial packed into the batch (one per row segment)."""
    seg = batch.segment_ids.numpy()
    return [int((row == s).sum()) for row in seg for s in np.unique(row) if s >= 0]


def _is_batch(got, *args) -> bool:
    return isinstance(got, StepBatch)


def _props(expected_count: int, lengths) -> tuple[Property, ...]:
    known, order = set(lengths), list(lengths)
    return (
        Property("leaves the replay as it was (same trials, same order)",
                 lambda got, *a: [len(e) for e in a[0]] == order,
                 hint="do not shuffle or pop the replay list in place: draw indices and pick trials by index"),
        Property("returns a StepBatch (use icrl_course.tokenize.pack)", _is_batch,
                 hint="return pack(chosen_trials, context_length, pad_id=pad_id)"),
        Property(f"holds {expected_count} trials", lambda got, *a: _is_batch(got) and len(_trial_lengths(got)) == expected_count,
                 hint="draw min(batch_trials, len(encoded)) trials: all of them when the buffer holds fewer"),
        Property("no trial twice in one batch", lambda got, *a: _is_batch(got) and len(set(_trial_lengths(got))) == len(_trial_lengths(got)),
                 hint="draw without replacement: rng.choice(len(encoded), size=..., replace=False)"),
        Property("every chosen trial is whole", lambda got, *a: _is_batch(got) and set(_trial_lengths(got)) <= known
                 and int(got.step_mask.sum()) == sum(n - 1 for n in _trial_lengths(got)),
                 hint="pack the chosen EncodedTrials as they are; do not cut them"),
        Property("rows are context_length tokens", lambda got, *a: _is_batch(got) and got.input_ids.shape[1] == a[3],
                 hint="pass context_length to pack"),
    )


def sample_cases() -> list[Case]:
    replay = synthetic_replay(range(5, 25))  # 20 trials of 5..24 tokens: a length names a trial
    small = synthetic_replay([4, 9, 13])
    return [
        Case("8 of 20 trials", (replay, 8, np.random.default_rng(0), 64, 0), compare=False, may_mutate=True,
             properties=_props(8, range(5, 25))),
        Case("16 of 20 trials: no trial twice", (replay, 16, np.random.default_rng(1), 64, 0), compare=False, may_mutate=True,
             properties=_props(16, range(5, 25))),
        Case("a buffer smaller than the batch: every trial once", (small, 8, np.random.default_rng(2), 32, 0),
             compare=False, may_mutate=True, properties=_props(3, [4, 9, 13])),
        Case("all 20 trials at once", (replay, 20, np.random.default_rng(3), 64, 0), compare=False, may_mutate=True,
             properties=_props(20, range(5, 25))),
    ]


def check_sample_batch(learner_sample_batch) -> CheckResult:
    """Check a learner's ``sample_batch(encoded, batch_trials, rng, context_length, pad_id) -> StepBatch``.

    The generator is meant to advance, so the cases allow that argument to change.
    """
    return run_check("sample_batch", learner_sample_batch, sample_batch, sample_cases())
