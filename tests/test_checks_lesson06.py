"""Lesson 6's check: a correct Q-value reader passes; realistic bugs fail, naming the case they break."""

import torch

from icrl_course.checks.lesson06 import check_q_values_from_logits


def run(fn, capsys):
    result = check_q_values_from_logits(fn)
    return result, capsys.readouterr().out


def q_values(logits, q_index, action_token_ids):
    rows = torch.arange(logits.shape[0])[:, None]
    return logits[rows, q_index][:, :, action_token_ids]


def test_a_correct_reader_passes(capsys):
    result, out = run(q_values, capsys)
    assert result and "all 5 cases pass" in out


def test_reading_at_the_action_word_instead_of_before_it_fails(capsys):
    def off_by_one(logits, q_index, action_token_ids):
        return q_values(logits, q_index + 1, action_token_ids)

    result, out = run(off_by_one, capsys)
    assert not result and "case 'one step: the logits of the four action tokens" in out and "expected" in out


def test_gathering_the_whole_vocabulary_fails_on_the_shape(capsys):
    def whole_vocabulary(logits, q_index, action_token_ids):
        return logits[torch.arange(logits.shape[0])[:, None], q_index]

    result, out = run(whole_vocabulary, capsys)
    assert not result and "shape: expected (1, 1, 4), got (1, 1, 10)" in out


def test_taking_the_first_four_vocabulary_entries_fails(capsys):
    def first_four(logits, q_index, action_token_ids):
        return q_values(logits, q_index, torch.arange(4))

    result, out = run(first_four, capsys)
    assert not result and "case 'one step" in out


def test_sorting_the_action_ids_fails_on_the_gymnasium_order_case(capsys):
    def sorted_ids(logits, q_index, action_token_ids):
        return q_values(logits, q_index, action_token_ids.sort().values)

    result, out = run(sorted_ids, capsys)
    assert not result and "action ids in gymnasium's order" in out


def test_using_the_first_rows_positions_for_every_row_fails(capsys):
    def shared_positions(logits, q_index, action_token_ids):
        return logits[:, q_index[0]][:, :, action_token_ids]

    result, out = run(shared_positions, capsys)
    assert not result and "two rows, each with its own Q positions" in out


def test_detaching_the_result_fails_the_gradient_requirement(capsys):
    def detached(logits, q_index, action_token_ids):
        return q_values(logits, q_index, action_token_ids).detach()

    result, out = run(detached, capsys)
    assert not result and "keeps the gradient path" in out


def test_an_unfinished_exercise_reads_as_not_implemented(capsys):
    def todo(logits, q_index, action_token_ids):
        raise NotImplementedError

    result, out = run(todo, capsys)
    assert not result and "not implemented yet" in out
