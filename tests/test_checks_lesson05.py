"""Lesson 5's checks: correct functions pass; realistic bugs fail, naming the case they break."""

import pytest

from icrl_course.checks.lesson05 import (
    check_epsilon_schedule, check_one_iteration, check_paired_difference, check_sample_batch, reference_iteration,
)
from icrl_course.stats import paired_difference, unpaired_difference
from icrl_course.tokenize import pack


def run(check, fn, capsys):
    result = check(fn)
    return result, capsys.readouterr().out


# --------------------------------------------------------------------------- epsilon schedule
def epsilon_at(iteration, iterations, start, end, fraction):
    span = fraction * iterations
    progress = 1.0 if span == 0 else min(iteration / span, 1.0)
    return start + progress * (end - start)


def epsilon_unclamped(iteration, iterations, start, end, fraction):
    span = fraction * iterations
    progress = 1.0 if span == 0 else iteration / span
    return start + progress * (end - start)


def epsilon_divides_by_zero(iteration, iterations, start, end, fraction):
    return start + min(iteration / (fraction * iterations), 1.0) * (end - start)


def epsilon_clamped_to_end(iteration, iterations, start, end, fraction):
    return max(start - iteration / (fraction * iterations) * (start - end), end) if fraction else end


def test_correct_schedule_passes(capsys):
    result, out = run(check_epsilon_schedule, epsilon_at, capsys)
    assert result and "all 7 cases pass" in out


def test_schedule_without_a_clamp_fails_after_the_decay(capsys):
    result, out = run(check_epsilon_schedule, epsilon_unclamped, capsys)
    assert not result and "long after the decay" in out


def test_division_by_zero_fails_on_fraction_zero(capsys):
    result, out = run(check_epsilon_schedule, epsilon_divides_by_zero, capsys)
    assert not result and "fraction 0" in out and "ZeroDivisionError" in out


def test_clamping_with_max_fails_on_a_rising_schedule(capsys):
    result, out = run(check_epsilon_schedule, epsilon_clamped_to_end, capsys)
    assert not result and "rising schedule" in out


def test_unfinished_schedule_reads_as_not_implemented(capsys):
    def todo(*args):
        raise NotImplementedError

    result, out = run(check_epsilon_schedule, todo, capsys)
    assert not result and "not implemented yet" in out


# --------------------------------------------------------------------------- sampling a batch
def sample_batch(encoded, batch_trials, rng, context_length, pad_id):
    picks = rng.choice(len(encoded), size=min(batch_trials, len(encoded)), replace=False)
    return pack([encoded[i] for i in picks], context_length, pad_id=pad_id)


def sample_with_replacement(encoded, batch_trials, rng, context_length, pad_id):
    picks = rng.integers(0, len(encoded), size=min(batch_trials, len(encoded)))
    return pack([encoded[i] for i in picks], context_length, pad_id=pad_id)


def sample_ignoring_a_small_buffer(encoded, batch_trials, rng, context_length, pad_id):
    picks = rng.choice(len(encoded), size=batch_trials, replace=False)
    return pack([encoded[i] for i in picks], context_length, pad_id=pad_id)


def sample_by_shuffling_in_place(encoded, batch_trials, rng, context_length, pad_id):
    rng.shuffle(encoded)
    return pack(encoded[:batch_trials], context_length, pad_id=pad_id)


def test_correct_sampler_passes(capsys):
    result, out = run(check_sample_batch, sample_batch, capsys)
    assert result and "all 4 cases pass" in out


def test_sampling_with_replacement_fails_on_no_trial_twice(capsys):
    result, out = run(check_sample_batch, sample_with_replacement, capsys)
    assert not result and "no trial twice" in out


def test_drawing_more_than_the_buffer_holds_fails_on_the_small_buffer(capsys):
    result, out = run(check_sample_batch, sample_ignoring_a_small_buffer, capsys)
    assert not result and "a buffer smaller than the batch" in out


def test_shuffling_the_replay_in_place_is_caught(capsys):
    result, out = run(check_sample_batch, sample_by_shuffling_in_place, capsys)
    assert not result and "leaves the replay as it was" in out


def test_library_reference_passes_its_own_check(capsys):
    from icrl_course.train.replay import sample_batch as library

    result, _ = run(check_sample_batch, library, capsys)
    assert result


# ------------------------------------------------------------------------ one iteration and the paired bootstrap


@pytest.mark.parametrize("wrong, mistake", [
    (lambda a, b, **k: paired_difference(b, a, **k), "wrong sign"),
    (unpaired_difference, "an unpaired bootstrap"),
    (lambda a, b, confidence=0.95, n_boot=2000, seed=0: paired_difference(a, b, 2 * confidence - 1, n_boot, seed),
     "tails of 1 - confidence on each side"),
])
def test_a_wrong_paired_difference_is_named_by_its_mistake(wrong, mistake, capsys):
    assert not check_paired_difference(wrong)
    out = capsys.readouterr().out
    assert f"looks like {mistake}" in out, out


def test_a_correct_paired_difference_passes_a_plain_tuple_too_and_a_list_is_refused(capsys):
    assert check_paired_difference(paired_difference)
    assert check_paired_difference(lambda *a, **k: tuple(paired_difference(*a, **k)))
    assert not check_paired_difference(lambda *a, **k: list(paired_difference(*a, **k)))
    assert "must return a tuple (mean, low, high)" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, mistake", [
    (None, None),
    (dict(order="learn-first"), "off-by-one order: learning before the new trials are in the replay"),
    (dict(cap=False), "a replay that is never cut to replay_capacity"),
])
def test_one_iteration_passes_when_right_and_names_the_mistake_when_not(wrong, mistake, capsys):
    result = check_one_iteration(lambda *args: reference_iteration(*args, **(wrong or {})))
    out = capsys.readouterr().out
    assert bool(result) == (wrong is None), out
    if mistake:
        assert f"looks like {mistake}" in out, out
