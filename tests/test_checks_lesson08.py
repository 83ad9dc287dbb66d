"""Lesson 8's check passes a correct learner and catches realistic bugs, naming the case that shows each."""

from icrl_course.checks.lesson08 import check_recorded_steps


def recorded_steps(lake_map, tiles):
    """A correct learner."""
    steps = []
    for i, (here, there) in enumerate(zip(tiles[:-1], tiles[1:])):
        action = next(a for a in range(4) if lake_map.next_state(here, a) == there)
        tile, last = lake_map.flat[there], i == len(tiles) - 2
        steps.append((here, action, float(tile == "G"), there, last and tile in "HG", last and tile not in "HG"))
    return steps


def ending_every_move(lake_map, tiles):
    """Marks every move that lands on ice as cut off, not only the last one."""
    return [(o, a, r, n, te, not te) for o, a, r, n, te, _ in recorded_steps(lake_map, tiles)]


def never_truncating(lake_map, tiles):
    """Forgets that an episode cut off on the ice still ends."""
    return [(o, a, r, n, te, False) for o, a, r, n, te, _ in recorded_steps(lake_map, tiles)]


def swapped_down_and_up(lake_map, tiles):
    return [(o, {1: 3, 3: 1}.get(a, a), r, n, te, tr) for o, a, r, n, te, tr in recorded_steps(lake_map, tiles)]


def test_a_correct_learner_passes(capsys):
    assert check_recorded_steps(recorded_steps)
    assert "all 8 cases pass" in capsys.readouterr().out


def test_each_bug_is_caught_by_its_case(capsys):
    for learner, case in ((ending_every_move, "left twice"), (never_truncating, "one move right"),
                          (swapped_down_and_up, "one move down")):
        result = check_recorded_steps(learner)
        assert not result and case in result.failed_case, (learner.__name__, result.failed_case)


def test_an_unfinished_exercise_says_so(capsys):
    def todo(lake_map, tiles):
        raise NotImplementedError("turn tiles into steps")

    result = check_recorded_steps(todo)
    assert not result.implemented and "not implemented yet" in capsys.readouterr().out
