"""The exercise-feedback engine: what a learner sees when their function is right, wrong or unfinished."""

import collections
from typing import NamedTuple

import numpy as np
import pytest
import torch

from icrl_course.checks.core import Case, Mistake, Property, compare, run_check


def discounted_return(rewards, gamma):
    """Reference for these tests: sum_t gamma^t r_t of a 1-D tensor."""
    return (rewards * gamma ** torch.arange(len(rewards), dtype=rewards.dtype)).sum()


CASES = [
    Case("empty episode", args=(torch.zeros(0), 0.9), hint="an empty sum is 0"),
    Case("one reward", args=(torch.tensor([1.0]), 0.9)),
    Case("reward at the end is discounted", args=(torch.tensor([0.0, 0.0, 1.0]), 0.9),
         hint="the reward at step t is multiplied by gamma**t"),
]


def run(fn, cases=CASES, **kw):
    lines = []
    result = run_check("discounted_return", fn, discounted_return, cases, out=lines.append, **kw)
    return result, "\n".join(lines)


# ------------------------------------------------------------------ run_check
def test_a_correct_function_passes_with_one_line():
    def learner(rewards, gamma):
        total = torch.zeros((), dtype=rewards.dtype)
        for t, r in enumerate(rewards):
            total = total + gamma**t * r
        return total

    result, text = run(learner)
    assert result and result.passed and result.cases_run == 3
    assert text == "✓ discounted_return: all 3 cases pass."


def test_a_wrong_exponent_fails_naming_the_case_expected_got_and_hint():
    def off_by_one(rewards, gamma):
        return (rewards * gamma ** torch.arange(1, len(rewards) + 1, dtype=rewards.dtype)).sum()

    result, text = run(off_by_one)
    assert not result and result.failed_case == "one reward"
    assert "case 'one reward' differs" in text
    assert "expected: tensor(1., dtype=torch.float32)" in text and "got:      tensor(0.9, dtype=torch.float32)" in text
    assert "max abs diff 0.1" in text


def test_a_wrong_dtype_is_named():
    def as_double(rewards, gamma):
        return discounted_return(rewards, gamma).double()

    result, text = run(as_double)
    assert result.failed_case == "empty episode"
    assert "dtype: expected torch.float32, got torch.float64" in text
    assert "hint:     an empty sum is 0" in text


def test_an_exception_reports_the_case_and_the_error_without_a_traceback():
    def crashes_on_empty(rewards, gamma):
        return rewards[0] + discounted_return(rewards[1:], gamma) * gamma

    result, text = run(crashes_on_empty)
    assert result.failed_case == "empty episode"
    assert "raised IndexError" in text
    assert "Traceback" not in text


def test_not_implemented_is_reported_as_unfinished_not_as_a_crash():
    def todo(rewards, gamma):
        raise NotImplementedError("your code here")

    result, text = run(todo)
    assert not result and not result.implemented
    assert "not implemented yet: discounted_return" in text


def test_a_learner_that_mutates_its_input_is_caught_and_the_reference_is_unaffected():
    seen_by_reference = []

    def reference(rewards, gamma):
        seen_by_reference.append(rewards.clone())
        return discounted_return(rewards, gamma)

    def in_place(rewards, gamma):
        rewards.mul_(gamma ** torch.arange(len(rewards), dtype=rewards.dtype))
        return rewards.sum()

    lines = []
    result = run_check("discounted_return", in_place, reference, CASES, out=lines.append)
    assert result.failed_case == "reward at the end is discounted"
    assert "changed its input argument 1 in place" in "\n".join(lines)
    assert torch.equal(seen_by_reference[-1], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.equal(CASES[2].args[0], torch.tensor([0.0, 0.0, 1.0]))


def test_mutation_is_allowed_when_the_case_says_so():
    def fill_(x):
        x.fill_(1.0)
        return x

    result = run_check("fill_", fill_, fill_, [Case("fill", args=(torch.zeros(2),), may_mutate=True)],
                       out=lambda _: None)
    assert result


def test_expected_values_come_from_the_reference_never_from_the_learner():
    calls = {"learner": 0, "reference": 0}

    def learner(x):
        calls["learner"] += 1
        return x + 1

    def reference(x):
        calls["reference"] += 1
        return x + 2

    lines = []
    result = run_check("plus_two", learner, reference, [Case("zero", args=(0,))], out=lines.append)
    assert not result
    assert "expected: 2" in lines[0] and "got:      1" in lines[0]
    assert calls == {"learner": 1, "reference": 1}


def test_a_property_case_fails_with_its_description_and_hint():
    def keeps_graph(x):
        return x * 2

    detached = Property("the target is detached from the graph", lambda got, x: not got.requires_grad,
                        hint="call .detach() on the target")
    case = Case("target", args=(torch.ones(2, requires_grad=True),), properties=(detached,))
    lines = []
    result = run_check("target", keeps_graph, lambda x: (x * 2).detach(), [case], out=lines.append)
    text = "\n".join(lines)
    assert not result
    # the values match, so the failure is the property, with its own hint
    assert "fails a requirement: the target is detached from the graph" in text
    assert "hint:     call .detach() on the target" in text


def test_a_case_without_comparison_checks_only_its_properties():
    def random_action(seed):
        return int(np.random.default_rng(seed + 1).integers(4))

    in_range = Property("the action is one of 0, 1, 2, 3", lambda got, seed: got in (0, 1, 2, 3))
    result = run_check("random_action", random_action, lambda seed: 0,
                       [Case("seed 0", args=(0,), compare=False, properties=(in_range,))], out=lambda _: None)
    assert result


def test_the_result_shows_nothing_extra_in_a_notebook():
    result, _ = run(lambda rewards, gamma: discounted_return(rewards, gamma))
    assert result._ipython_display_() is None


# ------------------------------------------------------------------ compare
def test_compare_names_shape_mismatch():
    v = compare(np.zeros((2, 3)), np.zeros((3, 2)))
    assert not v.same and "shape: expected (2, 3), got (3, 2)" in v.detail


def test_compare_reports_close_within_tolerance_and_the_max_diff_outside():
    assert compare(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])).kind == "exact"
    close = compare(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-6]))
    assert close.kind == "close" and close.same
    far = compare(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
    assert far.kind == "differs" and far.max_abs_diff == pytest.approx(0.5) and "index (1,)" in far.detail


def test_compare_numpy_accepts_another_int_width_but_not_another_kind():
    assert compare(np.array([1, 2], dtype=np.int64), np.array([1, 2], dtype=np.int32)).same
    v = compare(np.array([1, 2]), np.array([1.0, 2.0]))
    assert not v.same and "dtype" in v.detail


def test_compare_tensor_against_number_names_both_types():
    v = compare(0.5, torch.tensor(0.5))
    assert not v.same and "expected a float, got a torch.Tensor of shape ()" in v.detail


def test_compare_recurses_into_dicts_and_tuples_with_paths():
    class Out(NamedTuple):
        q: np.ndarray
        loss: float

    v = compare({"a": Out(np.ones(2), 1.0)}, {"a": Out(np.ones(2), 1.5)})
    assert not v.same and v.detail.startswith("['a']: .loss: ")
    keys = compare({"a": 1, "b": 2}, {"a": 1, "c": 2})
    assert "missing keys ['b']" in keys.detail and "unexpected keys ['c']" in keys.detail
    assert "expected 2 items, got 3" in compare((1, 2), (1, 2, 3)).detail


def test_compare_handles_none_and_nan():
    assert compare(None, None).same
    assert "expected NoneType, got int" in compare(None, 0).detail
    assert compare(float("nan"), float("nan")).same
    assert not compare(np.array([np.nan]), np.array([0.0])).same


# ------------------------------------------------------------------ feedback that names the mistake
def tril(n):
    return torch.ones(n, n, dtype=torch.bool).tril()


def test_a_list_where_a_tuple_is_expected_is_refused_with_both_types():
    verdict = compare((1, 2), [1, 2])
    assert not verdict.same and "expected a tuple, got a list" in verdict.detail


def test_an_array_diff_shows_the_values_and_the_field_name():
    Pair = collections.namedtuple("Pair", ["targets", "valid"])
    expected = Pair(np.array([1.0, 2.0, 3.0]), np.array([True, False, True]))
    verdict = compare(expected, Pair(np.array([1.0, 2.5, 3.0]), np.array([True, False, True])))
    assert verdict.detail == ".targets: max abs diff 0.5 at index (1,): expected 2, got 2.5"
    verdict = compare(expected, Pair(expected.targets, np.array([True, True, True])))
    assert verdict.detail == ".valid: 1 of 3 values differ, first at index (1,): expected False, got True"


def test_a_transposed_shape_is_called_swapped_axes():
    verdict = compare(np.zeros((2, 3)), np.zeros((3, 2)))
    assert "the last two axes look swapped" in verdict.detail


@pytest.mark.parametrize("wrong, name", [
    (lambda n: tril(n).T, "swapped axes"),
    (lambda n: -torch.arange(float(n)), "wrong sign"),
])
def test_generic_mistakes_are_named_with_their_hint(wrong, name, capsys):
    reference = tril if name == "swapped axes" else (lambda n: torch.arange(float(n)))
    result = run_check("f", wrong, reference, [Case("n=4", (4,), hint="the case's own hint")])
    out = capsys.readouterr().out
    assert not result and f"looks like {name}" in out and "the case's own hint" not in out


def test_a_case_mistake_is_named_and_its_hint_replaces_the_cases():
    strict = Mistake("off-by-one: no token sees itself", lambda n: tril(n) & ~torch.eye(n, dtype=torch.bool),
                     "use j <= i, not j < i")
    lines = []
    run_check("mask", lambda n: torch.ones(n, n, dtype=torch.bool).tril(-1), tril,
              [Case("n=3", (3,), hint="the case's own hint", mistakes=(strict,))], out=lines.append)
    assert "looks like off-by-one: no token sees itself" in lines[0] and "hint:     use j <= i, not j < i" in lines[0]


def test_two_mistakes_with_the_same_answer_are_told_apart_by_the_other_cases():
    doubled = Mistake("doubled", lambda x: 2 * x, "multiply once")
    squared = Mistake("squared", lambda x: x * x, "do not square")
    cases = [Case(f"x={x}", (x,), mistakes=(doubled, squared)) for x in (2, 3)]  # 2 * 2 == 2 ** 2
    lines = []
    run_check("f", lambda x: x * x, lambda x: x, cases, out=lines.append)
    assert "looks like squared" in lines[0]


def test_a_crash_shows_the_learners_own_line():
    def learner(xs):
        total = 0
        return xs[len(xs)] + total

    lines = []
    run_check("f", learner, lambda xs: xs[-1], [Case("three", ([1, 2, 3],))], out=lines.append)
    assert "raised IndexError" in lines[0] and "return xs[len(xs)] + total" in lines[0]
    assert f"line {learner.__code__.co_firstlineno + 2} of learner" in lines[0]
