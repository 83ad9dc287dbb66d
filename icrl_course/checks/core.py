"""The feedback engine behind every exercise check.

Why: a learner who gets "AssertionError" learns nothing. A check here runs the
learner's function and the library's reference on the same chosen inputs (edge
cases first), and says which input differs, what was expected, what came back
and how far apart they are, plus a hint. It never prints the reference's code.

A lesson's check is a few lines on top of this module::

    from icrl_course.checks.core import Case, Property, run_check
    from icrl_course.dqn import td_targets as reference

    def check_td_targets(td_targets):
        cases = [Case("episode ends: no bootstrap", args=(...,), hint="multiply by 1 - done"), ...]
        return run_check("td_targets", td_targets, reference, cases)

Inputs are deep-copied separately for the reference and the learner, so a
learner that changes its input in place cannot change the expected answer; the
check reports such mutation, since later lessons reuse those inputs.

Feedback follows the mistake, not the case: types and shapes are compared
before values; a wrong output that equals a known wrong answer (a case's
``Mistake``s, plus the generic ones: the sign flipped, the last two axes
swapped) is named with that mistake's hint; a crash shows the learner's own
line; an array difference shows the values at the first differing index and
the field's name inside a nested output.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

DEFAULT_ATOL = 1e-6
DEFAULT_RTOL = 1e-5
_SHOW_CHARS = 300


@dataclass(frozen=True)
class Property:
    """A requirement on the learner's output that equality cannot express.

    ``predicate(got, *args, **kwargs)`` receives the learner's output and the
    learner's copy of the inputs and returns True when the requirement holds,
    e.g. ``Property("the target is detached from the graph", lambda got, *a: not got.requires_grad)``.
    """

    description: str
    predicate: Callable[..., bool]
    hint: str | None = None


@dataclass(frozen=True)
class Mistake:
    """A recognisable wrong answer: ``wrong(*args, **kwargs)`` computes what that mistake returns.

    When the learner's output equals it, the check names the mistake and gives
    its hint instead of the case's, e.g.
    ``Mistake("off-by-one: the diagonal is missing", lambda n: reference(n) & ~eye(n), "use <=, not <")``.
    """

    name: str
    wrong: Callable[..., Any]
    hint: str


@dataclass(frozen=True)
class Case:
    """One input for a check: a name that says what it tests, the arguments and a hint for failures."""

    name: str
    args: tuple = ()
    kwargs: dict | None = None
    hint: str | None = None
    properties: tuple[Property, ...] = ()
    """Extra requirements checked on the learner's output after (or instead of) the comparison."""
    mistakes: tuple[Mistake, ...] = ()
    """Known wrong answers for this input, tried (after the generic ones) when the output differs."""
    compare: bool = True
    """False for outputs that may legitimately differ from the reference (then only properties apply)."""
    may_mutate: bool = False
    """True for functions whose contract is to change their inputs in place."""
    atol: float | None = None
    rtol: float | None = None
    shown: str | None = None
    """How to show the inputs in a failure report, for inputs whose repr says nothing (networks, optimisers)."""


@dataclass(frozen=True)
class Verdict:
    """How an output compares with the expected one: "exact", "close" (within tolerance) or "differs"."""

    kind: str
    detail: str = ""
    max_abs_diff: float | None = None

    @property
    def same(self) -> bool:
        return self.kind != "differs"


@dataclass
class CheckResult:
    """What ``run_check`` found; truthy when every case passed.

    It displays as nothing in a notebook because ``run_check`` already printed
    the verdict, so a check call on a cell's last line shows no ``Out[ ]`` line.
    """

    title: str
    passed: bool
    implemented: bool = True
    failed_case: str | None = None
    message: str = ""
    cases_run: int = 0

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self) -> None:
        pass


# ------------------------------------------------------------------ comparison
def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _is_number(x: Any) -> bool:
    return isinstance(x, (bool, int, float, np.bool_, np.number)) and not isinstance(x, complex)


def _type_name(x: Any) -> str:
    if _is_tensor(x):
        return f"torch.Tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"numpy array of shape {x.shape}"
    return type(x).__name__


def _array_verdict(expected: np.ndarray, got: np.ndarray, atol: float, rtol: float, where: str) -> Verdict:
    """Values of two same-shape arrays: exact, close, or the largest difference and where it is."""
    if expected.size == 0 or np.array_equal(expected, got, equal_nan=expected.dtype.kind in "fc"):
        return Verdict("exact")
    if expected.dtype.kind in "biuUO" or got.dtype.kind in "biuUO":
        bad = np.argwhere(expected != got)
        first = tuple(int(i) for i in bad[0]) if bad.size else ()
        values = f": expected {expected[first].item()!r}, got {got[first].item()!r}" if bad.size else ""
        return Verdict("differs", f"{where}{len(bad)} of {expected.size} values differ, first at index {first}{values}")
    e64, g64 = expected.astype(np.float64), got.astype(np.float64)
    nan_mismatch = np.isnan(e64) != np.isnan(g64)
    diff = np.where(np.isnan(e64) & np.isnan(g64), 0.0, np.abs(e64 - g64))
    diff = np.where(nan_mismatch, np.inf, diff)
    worst = float(np.nanmax(diff))
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    if np.allclose(e64, g64, atol=atol, rtol=rtol, equal_nan=True):
        return Verdict("close", f"{where}max abs diff {worst:.3g} (within tolerance)", worst)
    where_text = f" at index {index}: expected {e64[index]:.6g}, got {g64[index]:.6g}" if diff.ndim else ""
    return Verdict("differs", f"{where}max abs diff {worst:.3g}{where_text}", worst)


def _shape_verdict(expected: tuple, got: tuple, where: str) -> Verdict:
    note = ""
    if len(expected) >= 2 and got == expected[:-2] + expected[-2:][::-1]:
        note = " (the last two axes look swapped)"
    elif sorted(expected) == sorted(got):
        note = " (the same sizes in another order: are the axes swapped?)"
    return Verdict("differs", f"{where}shape: expected {expected}, got {got}{note}")


def _tensor_verdict(expected, got, atol: float, rtol: float, where: str) -> Verdict:
    if tuple(expected.shape) != tuple(got.shape):
        return _shape_verdict(tuple(expected.shape), tuple(got.shape), where)
    if expected.dtype != got.dtype:
        return Verdict("differs", f"{where}dtype: expected {expected.dtype}, got {got.dtype}")
    if expected.device.type != got.device.type:
        return Verdict("differs", f"{where}device: expected {expected.device}, got {got.device}")
    e, g = expected.detach().cpu(), got.detach().cpu()
    if e.is_floating_point():
        e, g = e.double(), g.double()  # bfloat16 has no NumPy counterpart; dtypes already match
    return _array_verdict(e.numpy(), g.numpy(), atol, rtol, where)


def _ndarray_verdict(expected: np.ndarray, got: np.ndarray, atol: float, rtol: float, where: str) -> Verdict:
    if expected.shape != got.shape:
        return _shape_verdict(tuple(expected.shape), tuple(got.shape), where)
    if expected.dtype.kind != got.dtype.kind:
        return Verdict("differs", f"{where}dtype: expected {expected.dtype}, got {got.dtype}")
    return _array_verdict(expected, got, atol, rtol, where)


def _number_verdict(expected, got, atol: float, rtol: float, where: str) -> Verdict:
    e, g = float(expected), float(got)
    if e == g or (math.isnan(e) and math.isnan(g)):
        return Verdict("exact")
    diff = abs(e - g)
    if math.isclose(g, e, rel_tol=rtol, abs_tol=atol) or diff <= atol + rtol * abs(e):
        return Verdict("close", f"{where}abs diff {diff:.3g} (within tolerance)", diff)
    return Verdict("differs", f"{where}expected {expected!r}, got {got!r} (abs diff {diff:.3g})", diff)


def _worst(verdicts: list[Verdict]) -> Verdict:
    """The first "differs", else a "close" with the largest difference, else "exact"."""
    for v in verdicts:
        if not v.same:
            return v
    close = [v for v in verdicts if v.kind == "close"]
    if close:
        return max(close, key=lambda v: v.max_abs_diff or 0.0)
    return Verdict("exact")


def compare(expected: Any, got: Any, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL, where: str = "") -> Verdict:
    """Compare an output with the expected one, recursing into tuples, lists, dicts and dataclasses.

    Tensors must match in shape, dtype and device; NumPy arrays in shape and
    dtype kind (bool, int, float...), not width. Numbers compare by value with
    ``atol``/``rtol``. ``where`` prefixes details with the path inside a nested
    output, e.g. ``"[1]['q']: "``.
    """
    if expected is None or got is None:
        if expected is None and got is None:
            return Verdict("exact")
        return Verdict("differs", f"{where}expected {_type_name(expected)}, got {_type_name(got)}")
    if _is_tensor(expected) or _is_tensor(got):
        if not (_is_tensor(expected) and _is_tensor(got)):
            return Verdict("differs", f"{where}expected a {_type_name(expected)}, got a {_type_name(got)}")
        return _tensor_verdict(expected, got, atol, rtol, where)
    if isinstance(expected, np.ndarray) or isinstance(got, np.ndarray):
        if not (isinstance(expected, np.ndarray) and isinstance(got, np.ndarray)):
            return Verdict("differs", f"{where}expected a {_type_name(expected)}, got a {_type_name(got)}")
        return _ndarray_verdict(expected, got, atol, rtol, where)
    if _is_number(expected) and _is_number(got):
        return _number_verdict(expected, got, atol, rtol, where)
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return Verdict("differs", f"{where}expected a dict, got a {_type_name(got)}")
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        if missing or extra:
            parts = ([f"missing keys {missing}"] if missing else []) + ([f"unexpected keys {extra}"] if extra else [])
            return Verdict("differs", where + ", ".join(parts))
        return _worst([compare(expected[k], got[k], atol, rtol, f"{where}[{k!r}]: ") for k in expected])
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or isinstance(expected, tuple) != isinstance(got, tuple):
            kind = "tuple" if isinstance(expected, tuple) else "list"
            return Verdict("differs", f"{where}expected a {kind}, got a {_type_name(got)}")
        if len(expected) != len(got):
            return Verdict("differs", f"{where}expected {len(expected)} items, got {len(got)}")
        names = getattr(expected, "_fields", None)  # NamedTuple: name the field
        paths = [f".{n}" for n in names] if names else [f"[{i}]" for i in range(len(expected))]
        return _worst([compare(e, g, atol, rtol, f"{where}{p}: ") for p, e, g in zip(paths, expected, got)])
    if dataclasses.is_dataclass(expected) and not isinstance(expected, type):
        if type(got) is not type(expected):
            return Verdict("differs", f"{where}expected a {type(expected).__name__}, got a {_type_name(got)}")
        return _worst([
            compare(getattr(expected, f.name), getattr(got, f.name), atol, rtol, f"{where}.{f.name}: ")
            for f in dataclasses.fields(expected)
        ])
    try:
        equal = bool(expected == got)
    except Exception:  # an == that returns something without a truth value
        equal = repr(expected) == repr(got)
    if equal:
        return Verdict("exact")
    return Verdict("differs", f"{where}expected {show(expected)}, got {show(got)}")


# ------------------------------------------------------------------ display
def show(value: Any, limit: int = _SHOW_CHARS) -> str:
    """A short, readable text for a value in a verdict: small arrays in full, large ones summarised."""
    if _is_tensor(value):
        if value.numel() <= 24:
            values = value.detach().cpu()
            values = values.double() if values.is_floating_point() else values
            text = f"tensor({_values(values.numpy())}, dtype={value.dtype})"
        else:
            text = f"tensor of shape {tuple(value.shape)}, dtype={value.dtype}"
    elif isinstance(value, np.ndarray):
        if value.size <= 24:
            text = f"array({_values(value)}, dtype={value.dtype})"
        else:
            text = f"array of shape {value.shape}, dtype={value.dtype}"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k!r}: {show(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
        inner = ", ".join(show(v, limit) for v in value)
        text = f"({inner}{',' if len(value) == 1 else ''})" if isinstance(value, tuple) else f"[{inner}]"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _values(array: np.ndarray) -> str:
    """Array values rounded to 4 decimals, so float32 noise does not hide the real difference."""
    return np.array2string(array, precision=4, separator=", ", max_line_width=10_000).replace("\n", "")


def _show_inputs(case: Case) -> str:
    if case.shown is not None:
        return case.shown
    parts = [show(a, 120) for a in case.args]
    parts += [f"{k}={show(v, 120)}" for k, v in (case.kwargs or {}).items()]
    return ", ".join(parts) if parts else "(no arguments)"


# ------------------------------------------------------------------ diagnosis
def _generic_mistakes(expected: Any) -> list[tuple[str, Any, str]]:
    """Wrong answers any array output can have: (name, that wrong output, hint)."""
    if not (_is_tensor(expected) or isinstance(expected, np.ndarray)) or expected.ndim == 0:
        return []
    found = []
    if not (expected.dtype == bool or (_is_tensor(expected) and not expected.is_floating_point())):
        found.append(("wrong sign", -expected, "your values have the opposite sign: check the order of a subtraction"))
    if expected.ndim >= 2 and expected.shape[-1] == expected.shape[-2]:
        swapped = expected.transpose(-1, -2) if _is_tensor(expected) else np.swapaxes(expected, -1, -2)
        found.append(("swapped axes", swapped, "rows and columns are exchanged: check which axis is which"))
    return found


def _call(fn: Callable, case: Case) -> Any:
    return fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs or {}))


def _telling_mistakes(case: Case, expected: Any) -> list[tuple[str, Any, str]]:
    """(name, wrong answer, hint) of every known mistake whose answer to ``case`` differs from ``expected``."""
    candidates = _generic_mistakes(expected)
    for mistake in case.mistakes:
        try:
            candidates.append((mistake.name, _call(mistake.wrong, case), mistake.hint))
        except Exception:  # a mistake that cannot be computed for this input says nothing
            continue
    return [(name, wrong, hint) for name, wrong, hint in candidates if not compare(expected, wrong, atol=0.0, rtol=0.0).same]


def diagnose(cases: Sequence[Case], failing: int, expected: Any, got: Any, learner_fn: Callable,
             reference_fn: Callable) -> tuple[str, str] | None:
    """(name, hint) of the known mistake that explains the learner's output, or None.

    Several mistakes can give the same wrong answer on one input; the learner's
    answers to the other cases then decide: a mistake is kept while every case
    where it changes the answer shows it.
    """
    found = [(name, hint) for name, wrong, hint in _telling_mistakes(cases[failing], expected) if compare(wrong, got).same]
    for i, case in enumerate(cases):
        if len(found) <= 1:
            break
        if i == failing or not case.compare:
            continue
        try:
            other_expected, other_got = _call(reference_fn, case), _call(learner_fn, case)
        except Exception:
            continue
        telling = _telling_mistakes(case, other_expected)
        refuted = {name for name, wrong, _ in telling if not compare(wrong, other_got).same}
        found = [(n, h) for n, h in found if n not in refuted] or found
    return found[0] if found else None


def _library_or_installed(filename: str) -> bool:
    """True for files of this library, of Python itself or of installed packages: never the learner's."""
    roots = [str(Path(__file__).resolve().parents[1])] + [sysconfig.get_paths()[k] for k in ("stdlib", "purelib", "platlib")]
    return filename.startswith("<frozen") or any(filename.startswith(root) for root in roots)


def learner_line(error: BaseException, learner_fn: Callable) -> str | None:
    """``line N of name: <code>`` where ``error`` left the learner's own code (its last frame there).

    The learner's code is ``learner_fn``'s file (a notebook cell, whose line
    numbers Jupyter shows) or, when a check wraps the learner's function, the
    last frame outside this library, Python and installed packages.
    """
    frames = traceback.extract_tb(error.__traceback__)
    code = getattr(learner_fn, "__code__", None)
    own = [f for f in frames if code is not None and f.filename == code.co_filename
           and not _library_or_installed(code.co_filename)]
    own = own or [f for f in frames if not _library_or_installed(f.filename)]
    if not own:
        return None
    frame = own[-1]
    return f"line {frame.lineno} of {frame.name}: {(frame.line or '').strip()}"


# ------------------------------------------------------------------ running
def _fail(title: str, case: Case, headline: str, lines: Sequence[str], hint: str | None, n: int, out) -> CheckResult:
    text = [f"✗ {title}: case '{case.name}' {headline}", f"  input:    {_show_inputs(case)}"]
    text += [f"  {line}" for line in lines]
    if hint or case.hint:
        text.append(f"  hint:     {hint or case.hint}")
    message = "\n".join(text)
    out(message)
    return CheckResult(title, False, True, case.name, message, n)


def _mutated_argument(case: Case, pristine: tuple, after: tuple) -> str | None:
    """Name of the first argument the learner changed in place, if any."""
    names = [f"argument {i + 1}" for i in range(len(case.args))] + [f"'{k}'" for k in (case.kwargs or {})]
    for name, before, now in zip(names, pristine, after):
        if not compare(before, now, atol=0.0, rtol=0.0).same:
            return name
    return None


def run_check(
    title: str,
    learner_fn: Callable,
    reference_fn: Callable,
    cases: Sequence[Case],
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    out: Callable[[str], None] = print,
) -> CheckResult:
    """Run ``learner_fn`` and ``reference_fn`` on every case and print one verdict.

    Cases run in order and the first failure is reported (edge cases come first,
    so fixing them in order is the shortest path). ``NotImplementedError`` from
    the learner means the exercise is not done yet and is reported as such;
    any other exception is reported with the case that raised it.
    """
    for n, case in enumerate(cases, start=1):
        kwargs = case.kwargs or {}
        if case.compare:
            expected = reference_fn(*copy.deepcopy(case.args), **copy.deepcopy(kwargs))
        learner_args, learner_kwargs = copy.deepcopy(case.args), copy.deepcopy(kwargs)
        try:
            got = learner_fn(*learner_args, **learner_kwargs)
        except NotImplementedError:
            message = (f"… not implemented yet: {title}. Replace the `raise NotImplementedError` "
                       "with your code and run this cell again.")
            out(message)
            return CheckResult(title, False, False, case.name, message, n - 1)
        except Exception as error:  # the learner's bug: show what and where, not a long traceback
            where = learner_line(error, learner_fn)
            return _fail(title, case, f"raised {type(error).__name__}: {error}",
                         [f"at:       {where}"] if where else [], None, n - 1, out)
        if case.compare:
            verdict = compare(expected, got, case.atol if case.atol is not None else atol,
                              case.rtol if case.rtol is not None else rtol)
            if not verdict.same:
                lines = [f"expected: {show(expected)}", f"got:      {show(got)}", f"diff:     {verdict.detail}"]
                found = diagnose(cases, n - 1, expected, got, learner_fn, reference_fn)
                headline = f"differs: looks like {found[0]}" if found else "differs"
                return _fail(title, case, headline, lines, found[1] if found else None, n - 1, out)
        for prop in case.properties:
            try:
                holds = bool(prop.predicate(got, *learner_args, **learner_kwargs))
            except Exception as error:
                holds, reason = False, f" ({type(error).__name__}: {error})"
            else:
                reason = ""
            if not holds:
                return _fail(title, case, f"fails a requirement: {prop.description}{reason}",
                             [f"got:      {show(got)}"], prop.hint, n - 1, out)
        if not case.may_mutate:
            pristine = tuple(case.args) + tuple(kwargs.values())
            after = tuple(learner_args) + tuple(learner_kwargs.values())
            changed = _mutated_argument(case, pristine, after)
            if changed:
                return _fail(title, case, f"changed its input {changed} in place", [
                    "your function must leave its inputs as they were: work on a copy "
                    "(x.clone() for tensors, x.copy() for arrays) or build new values"], None, n - 1, out)
    message = f"✓ {title}: all {len(cases)} cases pass."
    out(message)
    return CheckResult(title, True, True, None, message, len(cases))
