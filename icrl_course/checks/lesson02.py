"""Checks for lesson 2's exercises: the tabular Q-learning update and the explorer's next move.

The Q-learning update is compared with ``icrl_course.baselines.q_learning_update``
on hand-computed cases, edge cases first. The explorer's move has no single
right answer when two paths are equally short, so it is checked as a
requirement: the learner's action must be one of
``icrl_course.baselines.explorer_choices``.
"""

from __future__ import annotations

import numpy as np

from icrl_course.baselines import explorer_choices
from icrl_course.baselines import q_learning_update as reference_q_learning_update
from icrl_course.checks.core import Case, CheckResult, Property, run_check
from icrl_course.envs import ACTION_NAMES, DOWN, LEFT, RIGHT, UP


# ------------------------------------------------------------------------------ Q-learning
def _q(rows: dict[int, list[float]], lakes: int = 1, states: int = 3) -> np.ndarray:
    """A ``(lakes, states, 4)`` table of zeros with the given rows of lake 0 filled in."""
    q = np.zeros((lakes, states, 4))
    for state, values in rows.items():
        q[0, state] = values
    return q


def _step(q, obs, action, reward, next_obs, terminated=False, truncated=False, learning_rate=0.5, gamma=0.9) -> tuple:
    """The arguments of one single-lake update, as (B,) arrays with B = 1."""
    return (q, np.array([obs]), np.array([action]), np.array([reward], dtype=np.float64), np.array([next_obs]),
            np.array([terminated]), np.array([truncated]), learning_rate, gamma)


def _random_batch(seed: int = 0, lakes: int = 6, states: int = 9) -> tuple:
    rng = np.random.default_rng(seed)
    return (rng.random((lakes, states, 4)), rng.integers(0, states, lakes), rng.integers(0, 4, lakes),
            rng.integers(0, 2, lakes).astype(np.float64), rng.integers(0, states, lakes), rng.random(lakes) < 0.3,
            rng.random(lakes) < 0.3, 0.3, 0.8)


def q_update_cases() -> list[Case]:
    """Hand-computed cases, edge cases first; every one names the rule it tests."""
    terminal_hint = "a terminated step (hole or goal) has no future: its target is the reward alone"
    return [
        Case("non-terminal step: Q[s, a] moves towards r + gamma * max Q[s']",
             _step(_q({1: [0.0, 0.5, 0.2, 0.0]}), 0, RIGHT, 0.0, 1),
             hint="new Q[s, a] = Q[s, a] + learning_rate * (r + gamma * max_a' Q[s', a'] - Q[s, a]); here 0.5 * 0.9 * 0.5"),
        Case("terminal step does not bootstrap", _step(_q({1: [0.7, 0.7, 0.7, 0.7]}), 0, DOWN, 1.0, 1, terminated=True),
             hint=terminal_hint),
        Case("a step cut only by the time limit (truncated) still bootstraps",
             _step(_q({1: [0.0, 0.0, 0.4, 0.0]}), 0, UP, 0.0, 1, truncated=True, learning_rate=1.0, gamma=0.5),
             hint="truncation stops the episode, not the value of the tile it landed on: bootstrap unless terminated"),
        Case("learning rate 1: the new value is the target itself",
             _step(_q({0: [0.0, 0.0, 0.3, 0.0], 1: [0.2, 0.0, 0.0, 0.0]}), 0, RIGHT, 0.0, 1, learning_rate=1.0),
             hint="with learning_rate = 1 the old value is forgotten: Q[s, a] = r + gamma * max Q[s']"),
        Case("gamma 0: the target is the reward alone",
             _step(_q({0: [0.1, 0.0, 0.0, 0.0], 1: [0.9, 0.9, 0.9, 0.9]}), 0, LEFT, 0.5, 1, gamma=0.0),
             hint="gamma multiplies the future: with gamma = 0 only the reward counts"),
        Case("the max is over the next state's actions, not the current state's",
             _step(_q({0: [0.8, 0.0, 0.8, 0.8], 1: [0.0, 0.1, 0.0, 0.0]}), 0, DOWN, 0.0, 1),
             hint="bootstrap from Q[next_obs], the tile the step landed on"),
        Case("two lakes: each lake updates its own table only",
             (np.stack([_q({2: [0.0, 1.0, 0.0, 0.0]})[0], _q({2: [0.0, 0.0, 0.0, 0.6]})[0]]), np.array([0, 1]),
              np.array([LEFT, RIGHT]), np.array([0.0, 0.0]), np.array([2, 2]), np.array([False, False]),
              np.array([False, False]), 0.5, 0.9),
             hint="index lake b's own table: q[lakes, obs, actions] with lakes = np.arange(B)"),
        Case("a batch of 6 random lakes", _random_batch(),
             hint="compute the target for every lake at once, then change only q[lakes, obs, actions]"),
    ]


def check_q_update(q_learning_update) -> CheckResult:
    """Check a learner's ``q_learning_update(q, obs, actions, rewards, next_obs, terminated, truncated, learning_rate, gamma)``."""
    return run_check("q_learning_update", q_learning_update, reference_q_learning_update, q_update_cases())


# -------------------------------------------------------------------------------- explorer
def _is_action(got, *args) -> bool:
    return isinstance(got, (int, np.integer)) and not isinstance(got, bool) and 0 <= int(got) <= 3


def _explorer_case(name: str, rows: list[str], position: int, hint: str) -> Case:
    best = explorer_choices(rows, position)
    words = " or ".join(f"{ACTION_NAMES[a]} ({a})" for a in best)
    return Case(name, args=(rows, position), compare=False, hint=hint, properties=(
        Property("return one action, an int 0 (left), 1 (down), 2 (right) or 3 (up)", _is_action),
        Property(f"from state {position} the explorer moves {words}",
                 lambda got, *args, best=best: int(got) in best),
    ))


def explorer_cases() -> list[Case]:
    """Knowledge maps ('?' unknown, 'F' known safe, 'H' known hole, 'G' known goal) and positions."""
    return [
        _explorer_case("first step: only the start is known", ["F??", "???"], 0,
                       "left and up bump into the wall and go nowhere; right and down reach an unknown tile"),
        _explorer_case("never step into a known hole", ["HF?", "FFF"], 1,
                       "a known 'H' is never a target and never a step"),
        _explorer_case("the nearest unknown tile, counted in moves through known-safe tiles", ["?FFFFFFF?"], 3,
                       "breadth-first search from where you stand: the first '?' it meets is the nearest"),
        _explorer_case("a known goal: head for it instead of exploring", ["FFF", "FHF", "?HG"], 0,
                       "once a goal is reachable through known-safe tiles, go there and stop exploring"),
        _explorer_case("the detour around a known hole to a known goal", ["FHG", "FFF"], 0,
                       "the straight way passes a known hole; take the longer known-safe way"),
        _explorer_case("paths pass only through known-safe tiles, never through unknown ones", ["F?G", "FFF"], 0,
                       "an unknown tile may be a hole: a path may end on one (that is exploring) but not pass through it"),
        _explorer_case("a known goal that cannot be reached from here: explore", ["FFG", "HHH", "F??"], 6,
                       "if no known-safe path leads from where you stand to a goal, head for the nearest '?'"),
        _explorer_case("the goal is one step away", ["FG"], 0, "a known goal next to you is a path of one move"),
        _explorer_case("a larger lake", ["FFFF?", "FHHF?", "FFHFG", "?FFF?", "?????"], 16,
                       "search for a goal first, through 'F' tiles only, and take the first move of the shortest path"),
    ]


def check_explorer_choice(explorer_action) -> CheckResult:
    """Check a learner's ``explorer_action(knowledge, position) -> action`` on one lake's knowledge rows."""
    return run_check("explorer_action", explorer_action, explorer_choices, explorer_cases())
