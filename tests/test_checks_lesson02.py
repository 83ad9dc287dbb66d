"""Lesson 2's checks: a correct solution passes; each realistic bug fails, naming the case it breaks."""

from collections import deque

import numpy as np
import pytest

from icrl_course.checks.lesson02 import check_explorer_choice, check_q_update


def run(check, fn, capsys):
    result = check(fn)
    return result, capsys.readouterr().out


# --------------------------------------------------------------------------- Q-learning update
def q_update(q, obs, actions, rewards, next_obs, terminated, truncated, learning_rate, gamma):
    q = q.copy()
    lakes = np.arange(len(q))
    future = np.where(terminated, 0.0, q[lakes, next_obs].max(axis=1))
    target = rewards + gamma * future
    q[lakes, obs, actions] += learning_rate * (target - q[lakes, obs, actions])
    return q


def q_update_bootstraps_through_terminal(q, obs, actions, rewards, next_obs, terminated, truncated, learning_rate, gamma):
    q = q.copy()
    lakes = np.arange(len(q))
    target = rewards + gamma * q[lakes, next_obs].max(axis=1)
    q[lakes, obs, actions] += learning_rate * (target - q[lakes, obs, actions])
    return q


def q_update_max_over_current_state(q, obs, actions, rewards, next_obs, terminated, truncated, learning_rate, gamma):
    q = q.copy()
    lakes = np.arange(len(q))
    target = rewards + gamma * np.where(terminated, 0.0, q[lakes, obs].max(axis=1))
    q[lakes, obs, actions] += learning_rate * (target - q[lakes, obs, actions])
    return q


def q_update_truncation_is_terminal(q, obs, actions, rewards, next_obs, terminated, truncated, learning_rate, gamma):
    return q_update(q, obs, actions, rewards, next_obs, terminated | truncated, truncated, learning_rate, gamma)


def q_update_shared_index(q, obs, actions, rewards, next_obs, terminated, truncated, learning_rate, gamma):
    q = q.copy()  # forgets the lake axis: q[:, obs, actions] touches every lake's table at every lake's index
    future = np.where(terminated, 0.0, q[np.arange(len(q)), next_obs].max(axis=1))
    target = rewards + gamma * future
    q[:, obs, actions] += learning_rate * (target - q[np.arange(len(q)), obs, actions])
    return q


def q_update_in_place(q, obs, actions, rewards, next_obs, terminated, truncated, learning_rate, gamma):
    lakes = np.arange(len(q))
    future = np.where(terminated, 0.0, q[lakes, next_obs].max(axis=1))
    q[lakes, obs, actions] += learning_rate * (rewards + gamma * future - q[lakes, obs, actions])
    return q


def test_correct_q_update_passes_every_case(capsys):
    result, out = run(check_q_update, q_update, capsys)
    assert result.passed and "all 8 cases pass" in out


@pytest.mark.parametrize("bug, case", [
    (q_update_bootstraps_through_terminal, "terminal step does not bootstrap"),
    (q_update_max_over_current_state, "non-terminal step: Q[s, a] moves towards r + gamma * max Q[s']"),
    (q_update_truncation_is_terminal, "truncated) still bootstraps"),
    (q_update_shared_index, "two lakes: each lake updates its own table only"),
    (q_update_in_place, "changed its input"),
])
def test_q_update_bugs_fail_naming_the_case(bug, case, capsys):
    result, out = run(check_q_update, bug, capsys)
    assert not result.passed
    assert case in out, out


def test_unfinished_q_update_is_reported_as_not_implemented(capsys):
    def todo(*args):
        raise NotImplementedError

    result, out = run(check_q_update, todo, capsys)
    assert not result.passed and "not implemented yet" in out


# --------------------------------------------------------------------------- explorer move
MOVES = [(0, -1), (1, 0), (0, 1), (-1, 0)]


def _step(knowledge, state, action):
    nrow, ncol = len(knowledge), len(knowledge[0])
    row, col = divmod(state, ncol)
    return min(max(row + MOVES[action][0], 0), nrow - 1) * ncol + min(max(col + MOVES[action][1], 0), ncol - 1)


def _first_move_towards(knowledge, position, targets, relay="F"):
    """Breadth-first search from ``position`` through ``relay`` tiles; first move of a shortest path to a target."""
    flat = "".join(knowledge)
    first = {position: None}
    queue = deque([position])
    while queue:
        state = queue.popleft()
        for action in range(4):
            nxt = _step(knowledge, state, action)
            if nxt in first:
                continue
            move = action if first[state] is None else first[state]
            if flat[nxt] in targets:
                return move
            if flat[nxt] in relay:
                first[nxt] = move
                queue.append(nxt)
    return None


def explorer_action(knowledge, position):
    for targets in ("G", "?"):
        move = _first_move_towards(knowledge, position, targets)
        if move is not None:
            return move
    return next(a for a in range(4) if "".join(knowledge)[_step(knowledge, position, a)] != "H")


def explorer_through_unknown(knowledge, position):
    move = _first_move_towards(knowledge, position, "G", relay="F?")
    return move if move is not None else _first_move_towards(knowledge, position, "?")


def explorer_walks_into_holes(knowledge, position):
    move = _first_move_towards(knowledge, position, "G", relay="FH")
    return move if move is not None else _first_move_towards(knowledge, position, "?H")


def explorer_never_exploits(knowledge, position):
    return _first_move_towards(knowledge, position, "?G")


def explorer_returns_a_name(knowledge, position):
    return ["left", "down", "right", "up"][explorer_action(knowledge, position)]


def test_correct_explorer_passes_every_case(capsys):
    result, out = run(check_explorer_choice, explorer_action, capsys)
    assert result.passed and "all 9 cases pass" in out


@pytest.mark.parametrize("bug, case", [
    (explorer_through_unknown, "paths pass only through known-safe tiles"),
    (explorer_walks_into_holes, "never step into a known hole"),
    (explorer_never_exploits, "a known goal: head for it instead of exploring"),
    (explorer_returns_a_name, "return one action, an int"),
])
def test_explorer_bugs_fail_naming_the_case(bug, case, capsys):
    result, out = run(check_explorer_choice, bug, capsys)
    assert not result.passed
    assert case in out, out


def test_explorer_failure_says_which_moves_were_right(capsys):
    _, out = run(check_explorer_choice, explorer_through_unknown, capsys)
    assert "paths pass only through known-safe tiles" in out
    assert "the explorer moves down (1)" in out and "got:      2" in out
