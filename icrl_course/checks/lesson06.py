"""Checks for lesson 6's exercise: reading Q-values from a language model's logits.

``check_q_values_from_logits`` compares the learner's function with
``icrl_course.models.hf.q_values_from_logits``. Cases are small hand-made
logits whose values say where they come from (position and vocabulary id), so
a wrong position or a wrong token shows up as a readable number; edge cases
first: the position before the action word, action ids in gymnasium's order
that are not sorted, rows with their own positions, then a random batch.
"""

from __future__ import annotations

import dataclasses

import torch

from icrl_course.checks.core import Case, CheckResult, Property, run_check
from icrl_course.models.hf import q_values_from_logits as reference_q_values_from_logits


def _labelled_logits(batch: int, length: int, vocab: int) -> torch.Tensor:
    """``logits[b, p, v] = 100 b + p + v / 100``: every value tells its row, position and token."""
    b = torch.arange(batch, dtype=torch.float32)[:, None, None]
    p = torch.arange(length, dtype=torch.float32)[None, :, None]
    v = torch.arange(vocab, dtype=torch.float32)[None, None, :]
    return 100 * b + p + v / 100


def q_value_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(6)
    return [
        Case("one step: the logits of the four action tokens at the Q position",
             (_labelled_logits(1, 6, 10), torch.tensor([[3]]), torch.tensor([4, 5, 6, 7])),
             hint="Q = logits[b, q_index[b, n], action_token_ids]: at q_index itself (its logits predict the action "
                  "word), for the four action ids only, a (B, N, 4) tensor"),
        Case("the Q position is the token BEFORE the action word, so read q_index itself, not q_index + 1",
             (_labelled_logits(1, 8, 10), torch.tensor([[2, 5]]), torch.tensor([4, 5, 6, 7])),
             hint="the logits at position p predict token p + 1: q_index already points at the token before the word"),
        Case("action ids in gymnasium's order (left, down, right, up), not sorted",
             (_labelled_logits(1, 6, 12), torch.tensor([[1, 4]]), torch.tensor([9, 2, 11, 5])),
             hint="index the vocabulary axis with action_token_ids as given: column a must be action a's token"),
        Case("two rows, each with its own Q positions",
             (_labelled_logits(2, 9, 10), torch.tensor([[1, 4, 7], [2, 3, 8]]), torch.tensor([0, 1, 2, 3])),
             hint="pair each row with its own positions: logits[torch.arange(B)[:, None], q_index]"),
        Case("a random batch of 3 rows x 5 steps over a vocabulary of 50",
             (torch.randn(3, 16, 50, generator=generator), torch.sort(torch.randint(0, 16, (3, 5), generator=generator)).values,
              torch.tensor([17, 3, 42, 8])),
             hint="the output has shape (B, N, 4), one Q-value per action, never (B, N, vocabulary)"),
    ]


def _gradient_flows(fn) -> bool:
    logits = torch.randn(1, 4, 6, requires_grad=True)
    out = fn(logits, torch.tensor([[1, 2]]), torch.tensor([0, 1, 2, 3]))
    return isinstance(out, torch.Tensor) and out.requires_grad


def check_q_values_from_logits(q_values_from_logits) -> CheckResult:
    """Check a learner's ``q_values_from_logits(logits (B, L, V), q_index (B, N), action_token_ids (4,)) -> (B, N, 4)``."""
    keeps_gradient = Property(
        "keeps the gradient path to the logits (training backpropagates through it)",
        lambda got, *args: _gradient_flows(q_values_from_logits),
        hint="index with torch operations only; .detach(), .numpy() or torch.no_grad() cut the gradient")
    cases = q_value_cases()
    cases[-1] = dataclasses.replace(cases[-1], properties=(keeps_gradient,))
    return run_check("q_values_from_logits", q_values_from_logits, reference_q_values_from_logits, cases)
