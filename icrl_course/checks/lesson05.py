"""Checks for lesson 5's exercises: the exploration schedule and drawing a training batch from the replay.

``check_epsilon_schedule`` compares the learner's schedule with
``icrl_course.train.config.linear_schedule`` (edge cases first: the first
iteration, after the decay, no decay at all, a rising schedule).
``check_sample_batch`` checks properties of the learner's batch rather than
equality, since any uniform draw of distinct trials is right: the right
number of trials, no trial twice, every chosen trial whole, rows no longer
than the context. The replay's trials have distinct lengths, so a trial is
recognised in the packed batch by its length.

``check_one_iteration`` runs the learner's play -> replay -> learn iteration
and the same iteration built from the library's pieces on identical copies of
a tiny network, optimiser, replay and generator, and compares the replay, the
loss and both networks' weights afterwards; known mistakes (learning before
the new trials are in, no cap, greedy play, test maps, one update) are named.
``check_paired_difference`` compares with ``icrl_course.stats.paired_difference``
and names the sign, pairing and tail mistakes.
"""

from __future__ import annotations

import numpy as np
import torch

from icrl_course.checks.core import Case, CheckResult, Mistake, Property, run_check
from icrl_course.stats import Interval, paired_difference, unpaired_difference
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


# ------------------------------------------------------------------------ one iteration: play, remember, learn
def reference_iteration(network, target, optimizer, replay, config, rng, epsilon, *, order="play-first",
                        cap=True, greedy=False, split="train", updates=None):
    """One iteration of online DQN from the library's pieces, in the exercise's documented order.

    The keyword arguments make the known mistakes (learning before the new
    trials are in the replay, no cap, playing greedily, the wrong split, one
    update) from the same code; the reference uses none of them.
    """
    from icrl_course.train.loop import dqn_update
    from icrl_course.trials import Schedule, run_trials

    longest = config.episodes_per_trial * config.max_episode_steps + 1

    def learn(buffer):
        stats = {}
        for _ in range(config.updates_per_iteration if updates is None else updates):
            batch = sample_batch(buffer, config.batch_trials, rng, longest, network.pad_id)
            stats = dqn_update(network, target, optimizer, batch, config.dqn_config(), config.grad_clip)
        return stats

    maps = config.map_distribution().sample_many(config.trials_per_iteration, rng, split=split)
    played = run_trials(network.agent(), maps, config.episodes_per_trial,
                        Schedule.epsilon_greedy(0.0 if greedy else epsilon), seed=int(rng.integers(2**31)),
                        max_episode_steps=config.max_episode_steps)
    if order == "learn-first":
        stats = learn(replay)
    replay = replay + [network.encode(t) for t in played.trials]
    if cap:
        replay = replay[-config.replay_capacity:]
    if order == "play-first":
        stats = learn(replay)
    return replay, stats


def _summary(iteration):
    """What an iteration leaves behind, comparable between the learner and the reference."""
    def run(network, target, optimizer, replay, config, rng, epsilon):
        result = iteration(network, target, optimizer, replay, config, rng, epsilon)
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], list) and isinstance(result[1], dict)):
            raise TypeError(f"one_iteration must return a tuple (replay, stats): a list and a dict, got {type(result).__name__}")
        new_replay, stats = result
        if not all(isinstance(t, EncodedTrial) for t in new_replay):
            raise TypeError("the replay must hold EncodedTrials: add network.encode(trial) for every played trial")
        if "loss" not in stats:
            raise KeyError("stats must be what dqn_update returned for the last update (it has a 'loss')")
        return {"replay sizes": [len(t) for t in new_replay], "loss": stats["loss"],
                "online weights": dict(network.trainable()), "target weights": dict(target.trainable())}
    return run


def _iteration_args(replay_len: int, capacity: int, seed: int):
    from icrl_course.baselines import RandomAgent
    from icrl_course.train.build import build_network
    from icrl_course.train.config import TrainConfig
    from icrl_course.trials import run_trials

    config = TrainConfig(trials_per_iteration=4, updates_per_iteration=2, batch_trials=4, episodes_per_trial=2,
                         max_episode_steps=8, replay_capacity=capacity, warmup_trials=0,
                         model={"n_layer": 1, "n_embd": 16, "n_head": 2})
    network = build_network(config.model, seed=seed)
    target = network.make_target()
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr)
    rng = np.random.default_rng(seed)
    old = run_trials(RandomAgent(), config.map_distribution().sample_many(max(replay_len, 1), rng, split="train"),
                     config.episodes_per_trial, seed=seed, max_episode_steps=config.max_episode_steps).trials
    replay = [network.encode(t) for t in old[:replay_len]]
    return (network, target, optimizer, replay, config, rng, 0.5)


def _iteration_mistake(**wrong):
    return _summary(lambda *args: reference_iteration(*args, **wrong))


ITERATION_MISTAKES = (
    Mistake("off-by-one order: learning before the new trials are in the replay", _iteration_mistake(order="learn-first"),
            "play, then add the new trials to the replay, then learn: the newest trials belong in the batches"),
    Mistake("a replay that is never cut to replay_capacity", _iteration_mistake(cap=False),
            "keep only the newest config.replay_capacity trials: replay[-config.replay_capacity:]"),
    Mistake("playing greedily (epsilon ignored)", _iteration_mistake(greedy=True),
            "play with Schedule.epsilon_greedy(epsilon): exploration is what fills the replay with new information"),
    Mistake("maps from the test split", _iteration_mistake(split="test"),
            "training plays training maps only: sample_many(..., split='train'); test maps are for the reported numbers"),
    Mistake("one update instead of updates_per_iteration", _iteration_mistake(updates=1),
            "loop config.updates_per_iteration times, each on a fresh batch"),
)


def iteration_cases() -> list[Case]:
    torch_state = torch.random.get_rng_state()
    try:
        shown = ("a 1-layer transformer, its target, AdamW, a replay of {} trials (capacity 20), TrainConfig(4 trials "
                 "per iteration, 2 updates, batches of 4), np.random.default_rng({}), epsilon 0.5")
        return [
            Case("a replay one iteration short of full: the oldest trials go", _iteration_args(18, 20, seed=1),
                 may_mutate=True, mistakes=ITERATION_MISTAKES, shown=shown.format(18, 1),
                 hint="follow the order in the docstring (play, add, cap, learn): the draws of rng must match"),
            Case("an empty replay: the first iteration", _iteration_args(0, 20, seed=0), may_mutate=True,
                 mistakes=ITERATION_MISTAKES, shown=shown.format(0, 0),
                 hint="follow the order in the docstring: the draws of rng must match"),
        ]
    finally:
        torch.random.set_rng_state(torch_state)


def check_one_iteration(one_iteration) -> CheckResult:
    """Check a learner's ``one_iteration(network, target, optimizer, replay, config, rng, epsilon) -> (replay, stats)``
    against the same iteration built from the library's pieces: same replay, same loss, same weights after."""
    return run_check("one_iteration", _summary(one_iteration), _summary(reference_iteration), iteration_cases(),
                     atol=1e-5)


# ------------------------------------------------------------------------ paired bootstrap
def _tails_wrong(a, b, confidence=0.95, n_boot=2000, seed=0):
    """Tails of 1 - confidence on each side: a narrower interval than asked for."""
    return paired_difference(a, b, 2 * confidence - 1, n_boot, seed)


BOOTSTRAP_MISTAKES = (
    Mistake("wrong sign: b - a", lambda a, b, *rest, **kw: paired_difference(b, a, *rest, **kw),
            "the difference is a - b (after - before): a gain is positive"),
    Mistake("an unpaired bootstrap (a's and b's maps resampled separately)", unpaired_difference,
            "resample maps, not values: one set of resampled maps per resample, both numbers of each map"),
    Mistake("tails of 1 - confidence on each side (a narrower interval)", _tails_wrong,
            "a 95% interval leaves 2.5% in each tail: percentiles 100 * (1 - confidence) / 2 and 100 - that"),
)


def bootstrap_cases() -> list[Case]:
    rng = np.random.default_rng(7)
    before = (rng.random(60) < 0.3).astype(float)
    after = np.maximum(before, (rng.random(60) < 0.6).astype(float))
    return [
        Case("four maps by hand: differences 1, 1, 0, 0", (np.array([1, 1, 1, 0]), np.array([0, 0, 1, 0])),
             kwargs={"n_boot": 2000, "seed": 0}, mistakes=BOOTSTRAP_MISTAKES,
             hint="diff = a - b per map; counts = rng.multinomial(n, [1 / n] * n, size=n_boot); means = counts @ diff / n"),
        Case("no change at all: the interval is [0, 0]", (np.ones(5), np.ones(5)), kwargs={"n_boot": 500, "seed": 1},
             mistakes=BOOTSTRAP_MISTAKES, hint="identical inputs give mean 0 and CI [0, 0]"),
        Case("60 maps of 0/1 successes, 90% interval", (after, before),
             kwargs={"confidence": 0.9, "n_boot": 5000, "seed": 2}, mistakes=BOOTSTRAP_MISTAKES,
             hint="use confidence: tails of (1 - confidence) / 2 each"),
    ]


def _as_interval(fn):
    def run(*args, **kwargs):
        result = fn(*args, **kwargs)
        if not (isinstance(result, tuple) and len(result) == 3):
            raise TypeError(f"paired_difference must return a tuple (mean, low, high), got {type(result).__name__}")
        return Interval(*(float(x) for x in result))
    return run


def check_paired_difference(learner_paired_difference) -> CheckResult:
    """Check a learner's ``paired_difference(a, b, confidence, n_boot, seed) -> (mean, low, high)`` against
    ``icrl_course.stats.paired_difference``."""
    return run_check("paired_difference", _as_interval(learner_paired_difference), paired_difference, bootstrap_cases())
