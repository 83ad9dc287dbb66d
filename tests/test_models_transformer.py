"""The small transformer Q-network: shapes, causality (also across packed trials), KV cache, limits, config."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from icrl_course.dqn import DQNConfig, make_target, polyak_update, sequence_dqn_loss
from icrl_course.envs import LakeMap
from icrl_course.models.transformer import (RELATIONS, KVCache, QTransformer, TransformerConfig,
                                            attention_with_learned_mask, cell_relations, goal_relation,
                                            relation_biases, relation_codes, step_episodes)
from icrl_course.tokenize import ContextTooLongError, pack
from icrl_course.tokenize.compact import AFTER_TERMINATED, AFTER_TRUNCATED, STEP, TRIAL_START, CompactTokenizer
from icrl_course.trials import Trial

TOK = CompactTokenizer()
SMALL = TransformerConfig(n_layer=2, n_head=2, n_embd=16, max_context=64)
MAP = LakeMap.from_rows(["SFF", "FHF", "FFG"])
TRIAL = Trial.from_steps(MAP, [
    (0, 2, 0.0, 1, False, False), (1, 1, 0.0, 4, True, False),
    (0, 2, 0.0, 1, False, False), (1, 2, 0.0, 2, False, False), (2, 1, 0.0, 5, False, False), (5, 1, 1.0, 8, True, False),
])


def random_ids(batch, length, seed=0):
    return torch.randint(0, TOK.vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def model():
    return QTransformer(SMALL, seed=0).eval()


def test_outputs_four_q_values_per_position(model):
    assert model(random_ids(3, 10)).shape == (3, 10, 4)


def test_default_model_is_the_course_size():
    config = TransformerConfig()
    assert (config.n_layer, config.n_embd, config.n_head, config.max_context) == (3, 64, 4, 4096)
    assert config.field_sizes == TOK.field_sizes
    assert 100_000 < QTransformer(config).num_parameters() < 300_000


def test_changing_a_future_token_never_changes_an_earlier_q_value(model):
    ids = random_ids(2, 20)
    changed = ids.clone()
    changed[:, 12] = (changed[:, 12] + 12345) % TOK.vocab_size
    a, b = model(ids), model(changed)
    assert torch.allclose(a[:, :12], b[:, :12], atol=1e-6)
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_packed_trials_never_see_each_other_and_match_running_alone(model):
    first, second = TOK.encode(TRIAL), TOK.encode(TRIAL.episode_slice(1))
    batch = pack([first, second], context_length=16, pad_id=TOK.pad_id)
    q = model.q_values(batch)
    alone = model(torch.from_numpy(second.tokens)[None])[0, second.q_positions]
    assert torch.allclose(q[0, len(first.q_positions):], alone, atol=1e-5)
    other = batch.input_ids.clone()
    other[0, :len(first)] = TOK.pad_id  # wipe the first trial entirely
    batch.input_ids = other
    assert torch.allclose(model.q_values(batch)[0, len(first.q_positions):], alone, atol=1e-5)


def test_q_values_of_a_batch_are_the_outputs_at_q_index(model):
    batch = pack([TOK.encode(TRIAL)], context_length=7, pad_id=TOK.pad_id)
    full = model(batch.input_ids)
    assert torch.allclose(model.q_values(batch), full[:, :6], atol=1e-6)


def test_kv_cache_step_by_step_equals_a_full_forward(model):
    ids = random_ids(3, 40, seed=1)
    full = model(ids)
    cache = model.new_cache(3)
    stepped = torch.cat([model(ids[:, i:i + 1], cache=cache) for i in range(40)], dim=1)
    assert torch.allclose(stepped, full, atol=1e-5)
    cache = model.new_cache(3)
    chunked = torch.cat([model(ids[:, :17], cache=cache), model(ids[:, 17:18], cache=cache), model(ids[:, 18:], cache=cache)], 1)
    assert torch.allclose(chunked, full, atol=1e-5)


def test_kv_cache_grows_past_its_first_capacity():
    model = QTransformer(TransformerConfig(n_layer=1, n_head=2, n_embd=8, max_context=600)).eval()
    ids = random_ids(2, 300, seed=4)
    cache = model.new_cache(2)
    with torch.no_grad():
        stepped = torch.cat([model(ids[:, :250], cache=cache)] + [model(ids[:, i:i + 1], cache=cache) for i in range(250, 300)], 1)
        assert torch.allclose(stepped, model(ids), atol=1e-5)


def test_resetting_one_sequence_in_the_cache_starts_it_over_and_leaves_the_others(model):
    ids = random_ids(2, 12, seed=2)
    cache = model.new_cache(2)
    model(ids[:, :5], cache=cache)
    cache.reset(torch.tensor([True, False]))
    out = model(ids[:, 5:], cache=cache)
    assert torch.allclose(out[0], model(ids[:1, 5:])[0], atol=1e-5)
    assert torch.allclose(out[1], model(ids[1:])[0, 5:], atol=1e-5)


def test_a_context_longer_than_the_model_limit_is_a_clear_error(model):
    with pytest.raises(ContextTooLongError, match="max_context"):
        model(random_ids(1, SMALL.max_context + 1))
    cache = model.new_cache(1)
    model(random_ids(1, SMALL.max_context), cache=cache)
    with pytest.raises(ContextTooLongError, match="max_context"):
        model(random_ids(1, 1), cache=cache)


def test_token_ids_outside_the_vocabulary_are_rejected(model):
    with pytest.raises(ValueError, match="vocab_size"):
        model(torch.tensor([[TOK.vocab_size]]))


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="n_embd"):
        TransformerConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="n_layer"):
        TransformerConfig(n_layer=0)
    with pytest.raises(ValueError, match="unknown"):
        TransformerConfig.from_dict({"width": 3})
    assert TransformerConfig.from_dict(SMALL.to_dict()) == SMALL


def test_same_seed_same_weights():
    a, b = QTransformer(SMALL, seed=7), QTransformer(SMALL, seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.head.weight, QTransformer(SMALL, seed=8).head.weight)


def test_a_few_dqn_steps_lower_the_loss_on_one_batch():
    torch.manual_seed(0)
    model = QTransformer(SMALL, seed=0)
    target = make_target(model)
    batch = pack([TOK.encode(TRIAL), TOK.encode(TRIAL.episode_slice(1))], context_length=16, pad_id=TOK.pad_id)
    config = DQNConfig(loss="mse")
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        with torch.no_grad():
            target_q = target.q_values(batch)
        loss, _ = sequence_dqn_loss(model.q_values(batch), target_q, batch, config)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        polyak_update(target, model, config.tau)
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


# ---------------------------------------------------------------- cell relations
REL_TOK = CompactTokenizer(edge_cap=2, cell_ids=True)
REL = TransformerConfig(n_layer=2, n_head=2, n_embd=16, max_context=64, field_sizes=REL_TOK.field_sizes,
                        cell_relations=True)


def test_cell_relations_by_hand():
    # A 3-wide map named as on a 16-wide grid: cells (0,0)=0, (0,1)=1, (1,1)=17. Tokens: stand on 0; 1 (arrived
    # at 1); 0 after falling into the hole (1,1)=17 (arrived 17); 1 (arrived 1); a closing token with no cell that
    # arrived at 0. Token j left the cell of token j-1 (token 0 left none).
    none = 256
    cells = torch.tensor([[0, 1, 0, 1, none]])
    left = torch.tensor([[none, 0, 1, 0, 1]])
    arrived = torch.tensor([[none, 1, 17, 1, 0]])
    rel = cell_relations(cells, cells, left, arrived, none, 16)[0]
    assert rel.shape == (6, 5, 5)
    assert rel[0].tolist() == [[1, 0, 1, 0, 0], [0, 1, 0, 1, 0], [1, 0, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]]
    assert rel[1].tolist() == [[0, 1, 0, 1, 0], [0, 0, 1, 0, 1], [0, 1, 0, 1, 0], [0, 0, 1, 0, 1], [0, 0, 0, 0, 0]]
    # from cell 0 = (0,0): right is (0,1), arrived at by tokens 1 and 3; down is (1,0), never reached
    assert rel[2 + 2, 0].tolist() == [0, 1, 0, 1, 0] and rel[2 + 1, 0].sum() == 0
    # from cell 1 = (0,1): down is the hole (1,1), arrived at by token 2; left is (0,0), arrived at by token 4
    assert rel[2 + 1, 1].tolist() == [0, 0, 1, 0, 0] and rel[2 + 0, 1].tolist() == [0, 0, 0, 0, 1]
    # up from row 0 and left from column 0 are off the map: nothing
    assert rel[2 + 3].sum() == 0 and rel[2 + 0, 0].sum() == 0
    assert rel[:, 4].sum() == 0  # the closing token has no cell, so relates to nothing


def test_direction_relations_by_hand():
    # The hand trial above: tokens stand on (0,0), (0,1), (0,0), (0,1) and none, and arrived at none, (0,1), the
    # hole (1,1), (0,1) and (0,0). Directions compare the key's arrival with the query's cell, row and column.
    none = 256
    cells = torch.tensor([[0, 1, 0, 1, none]])
    rel = cell_relations(cells, cells, torch.tensor([[none, 0, 1, 0, 1]]), torch.tensor([[none, 1, 17, 1, 0]]), none,
                         16, directions=True)[0]
    assert rel.shape == (10, 5, 5)
    assert torch.equal(rel[:6], cell_relations(cells, cells, torch.tensor([[none, 0, 1, 0, 1]]),
                                               torch.tensor([[none, 1, 17, 1, 0]]), none, 16)[0])
    above, below, left, right = rel[6:]
    assert above.sum() == 0  # nothing arrived in row -1
    # from (0,0): the hole (1,1) lies a row below; (0,1) a column right (tokens 1, 2 and 3); (0,0) is no direction
    assert below[0].tolist() == [0, 0, 1, 0, 0] and right[0].tolist() == [0, 1, 1, 1, 0] and left[0].sum() == 0
    # from (0,1): the hole is straight below, (0,0) a column left (token 4); token 0 arrived nowhere
    assert below[1].tolist() == [0, 0, 1, 0, 0] and right[1].sum() == 0 and left[1].tolist() == [0, 0, 0, 0, 1]
    assert rel[6:, 4].sum() == 0  # the closing token has no cell


def test_relation_codes_by_hand():
    weights, table = relation_codes(RELATIONS[:6])
    # one digit per group: same (x1), left (x2), the side arrived next to (x4: 1 + which side)
    assert weights.tolist() == [1, 2, 4, 8, 12, 16] and table.shape == (20, 6)
    assert table[0].sum() == 0 and table[1 + 2 + 8].tolist() == [1, 1, 0, 1, 0, 0]
    weights, table = relation_codes(RELATIONS[:6] + RELATIONS[7:])
    # then a row digit (x20: 1 above, 2 below) and a column digit (x60: 1 left, 2 right)
    assert weights.tolist() == [1, 2, 4, 8, 12, 16, 20, 40, 60, 120] and table.shape == (180, 10)
    assert table[1 + 40 + 120].tolist() == [1, 0, 0, 0, 0, 0, 0, 1, 0, 1]
    weights, table = relation_codes(RELATIONS)  # the goal digit (x20) comes before the directions (x40, x120)
    assert weights.tolist()[6:] == [20, 40, 80, 120, 240] and table.shape == (360, 11)
    assert table[20 + 80 + 120].tolist() == [0] * 6 + [1, 0, 1, 1, 0]


def test_relation_biases_by_hand():
    # The hand trial of test_cell_relations_by_hand, causal attention, 2 layers x 2 heads of distinct biases.
    none = 256
    cells = torch.tensor([[0, 1, 0, 1, none]])
    rel = cell_relations(cells, cells, torch.tensor([[none, 0, 1, 0, 1]]), torch.tensor([[none, 1, 17, 1, 0]]), none, 16)
    bias = (torch.arange(6 * 2 * 2, dtype=torch.float32).view(6, 2, 2) + 1).requires_grad_()
    allowed = torch.ones(5, 5, dtype=torch.bool).tril()[None, None]
    masks = relation_biases(rel, bias, allowed, RELATIONS[:6])
    assert len(masks) == 2 and masks[0].shape == (1, 2, 5, 5)
    for layer, head in ((0, 0), (1, 1)):
        m = masks[layer][0, head]
        b = bias[:, layer, head].detach()
        assert m[2, 0] == b[0]  # token 2 stands where token 0 stood: same cell only
        assert m[3, 2] == b[1] + b[3]  # token 2 left token 3's cell (1), and arrived below it, in the hole 17
        assert m[1, 0] == 0  # token 0 is no neighbour's arrival and stood elsewhere
        assert m[0, 1] == -torch.inf  # token 1 arrived right of token 0's cell, but lies in its future
        assert m[4].tolist() == [0.0] * 5  # the closing token has no cell
    # against the dense definition: every allowed pair's relations times the biases, -inf elsewhere
    dense = torch.einsum("rqk,rlh->lhqk", rel[0].float(), bias.detach()).masked_fill(~allowed[0, 0], -torch.inf)
    assert torch.equal(torch.stack([m[0] for m in masks]), dense)
    # each bias's gradient counts the allowed pairs with its relation: 6 same-cell pairs, 2 "left this cell"
    sum(m[m.isfinite()].sum() for m in masks).backward()
    counts = (rel[0] & allowed[0, 0]).sum(dim=(1, 2)).float()
    assert counts[:2].tolist() == [6.0, 2.0]
    assert torch.equal(bias.grad, counts[:, None, None].expand(6, 2, 2))
    # with the four directions (codes past a byte), still the dense definition
    rel = cell_relations(cells, cells, torch.tensor([[none, 0, 1, 0, 1]]), torch.tensor([[none, 1, 17, 1, 0]]), none,
                         16, directions=True)
    bias = torch.randn(10, 2, 2, generator=torch.Generator().manual_seed(3))
    masks = relation_biases(rel, bias, allowed, RELATIONS[:6] + RELATIONS[7:])
    dense = torch.einsum("rqk,rlh->lhqk", rel[0].float(), bias).masked_fill(~allowed[0, 0], -torch.inf)
    assert torch.allclose(torch.stack([m[0] for m in masks]), dense, atol=1e-6)


def test_attention_with_a_learned_mask_by_hand():
    # One head of size 4, two tokens: scores q.k / 2 plus the mask, softmax over the keys, weights times values.
    q = torch.tensor([[[[2.0, 0, 0, 0], [0, 2.0, 0, 0]]]])
    k = torch.tensor([[[[1.0, 0, 0, 0], [0, 1.0, 0, 0]]]])
    v = torch.tensor([[[[1.0, 0, 0, 0], [0, 0, 0, 3.0]]]])
    mask = torch.tensor([[[[0.0, -torch.inf], [math.log(3.0), 0.0]]]], requires_grad=True)
    y = attention_with_learned_mask(q, k, v, mask)
    # token 0 sees only itself; token 1 scores (log 3 + 0, 0 + 1): weights 3 : e over the two keys
    w = torch.tensor([3.0, math.e]) / (3.0 + math.e)
    assert torch.allclose(y[0, 0], torch.stack([v[0, 0, 0], w[0] * v[0, 0, 0] + w[1] * v[0, 0, 1]]))
    # token 0 sees itself alone, so its row of the mask gets no gradient, the masked key's entry included;
    # token 1's row gets the softmax's gradient of its output: w_j (v_j - y) for the first value component
    y[0, 0, 1, 0].backward()
    assert mask.grad[0, 0, 0].tolist() == [0.0, 0.0]
    assert torch.allclose(mask.grad[0, 0, 1], torch.tensor([w[0] * w[1], -w[0] * w[1]]))


@pytest.mark.parametrize("head_dim", [16, 12])
def test_attention_with_a_learned_mask_is_sdpa(head_dim):
    # With a power-of-two head size the scalings are exact and the result is SDPA's, bit for bit, forward and
    # backward (what lets shipped checkpoints keep reproducing); with another size it agrees to rounding.
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 4, 9, head_dim, generator=g, requires_grad=True) for _ in range(3))
    mask = torch.randn(3, 4, 9, 9, generator=g).masked_fill(~torch.ones(9, 9, dtype=torch.bool).tril(), -torch.inf)
    mask.requires_grad_()
    ours = attention_with_learned_mask(q, k, v, mask)
    grads = torch.autograd.grad(ours.square().sum(), (q, k, v, mask))
    reference = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    expected = torch.autograd.grad(reference.square().sum(), (q, k, v, mask))
    same = torch.equal if head_dim == 16 else lambda a, b: torch.allclose(a, b, atol=1e-5)
    assert same(ours, reference) and all(same(a, b) for a, b in zip(grads, expected))


def test_a_cell_name_is_not_embedded_and_zero_relation_biases_change_nothing():
    # A relations model with zero biases computes what a plain model with the same weights computes on the tokens
    # without the name: the name only ever enters through the biases.
    related = QTransformer(REL, seed=0).eval()
    plain = QTransformer(TransformerConfig(n_layer=2, n_head=2, n_embd=16, max_context=64,
                                           field_sizes=REL_TOK.field_sizes[:-2]), seed=0).eval()
    weights = {k: v for k, v in related.state_dict().items() if "relation_bias" not in k}
    plain.load_state_dict(weights)
    assert related.embed.table.num_embeddings == sum(REL_TOK.field_sizes[:-2])
    tokens = torch.from_numpy(REL_TOK.encode(TRIAL).tokens)[None]
    without_name = tokens % int(np.prod(REL_TOK.field_sizes[:-2]))
    assert torch.allclose(related(tokens), plain(without_name), atol=1e-6)
    with torch.no_grad():
        related.relation_bias[:, 0].fill_(3.0)
    assert not torch.allclose(related(tokens), plain(without_name), atol=1e-3)


DIRS = replace(REL, direction_relations=True)
ALL = replace(REL, direction_relations=True, goal_relation=True)


@pytest.mark.parametrize("config", [REL, DIRS, ALL], ids=["cells", "directions", "directions+goal"])
def test_packed_trials_with_cell_relations_match_running_alone(config):
    model = QTransformer(config, seed=0).eval()
    with torch.no_grad():
        model.relation_bias.normal_(0.0, 2.0, generator=torch.Generator().manual_seed(1))
    first, second = REL_TOK.encode(TRIAL), REL_TOK.encode(TRIAL.episode_slice(1))
    batch = pack([first, second], context_length=16, pad_id=REL_TOK.pad_id)
    q = model.q_values(batch)
    for row_part, trial in ((slice(0, len(first.q_positions)), first),
                            (slice(len(first.q_positions), None), second)):
        alone = model(torch.from_numpy(trial.tokens)[None])[0, trial.q_positions]
        assert torch.allclose(q[0, row_part][:len(alone)], alone, atol=1e-5)


@pytest.mark.parametrize("config", [REL, DIRS, ALL], ids=["cells", "directions", "directions+goal"])
def test_the_cache_grows_its_cells_with_its_keys(config):
    model = QTransformer(config, seed=0).eval()
    with torch.no_grad():
        model.relation_bias[:, 1].fill_(1.5)
        model.relation_bias[6:].normal_(0.0, 2.0, generator=torch.Generator().manual_seed(2))
    tokens = torch.from_numpy(np.tile(REL_TOK.encode(TRIAL).tokens[:-1], 6))[None]  # 36 tokens, one trial start
    cache = KVCache(config, 1, capacity=4, no_cell=model.no_cell)
    steps = torch.cat([model(tokens[:, t:t + 1], cache=cache) for t in range(tokens.shape[1])], dim=1)
    assert cache.cells.shape[2] >= tokens.shape[1]
    assert torch.allclose(steps, model(tokens), atol=1e-5)


# ---------------------------------------------------------------- goal relation
GOAL = TransformerConfig(n_layer=2, n_head=2, n_embd=16, max_context=64, field_sizes=REL_TOK.field_sizes,
                         cell_relations=True, goal_relation=True)
# On MAP (SFF / FHF / FFG): episode 0 walks 0 -> 1 -> 2 -> 5 -> 8 and reaches the goal, episode 1 goes 0 -> 1 and
# falls into the hole 4, episode 2 steps 0 -> 3 and runs out of time.
WON_TRIAL = Trial.from_steps(MAP, [
    (0, 2, 0.0, 1, False, False), (1, 2, 0.0, 2, False, False), (2, 1, 0.0, 5, False, False),
    (5, 1, 1.0, 8, True, False), (0, 2, 0.0, 1, False, False), (1, 1, 0.0, 4, True, False),
    (0, 1, 0.0, 3, False, True),
])


def test_step_episodes_by_hand():
    # kinds: trial start, 3 steps, after the goal (reward index 2), a step, after the hole (index 1), after time-out
    kind = torch.tensor([[TRIAL_START, STEP, STEP, STEP, AFTER_TERMINATED, STEP, AFTER_TERMINATED, AFTER_TRUNCATED]])
    reward = torch.tensor([[0, 1, 1, 1, 2, 1, 1, 1]])
    episode, step_episode, won = step_episodes(kind, reward, goal_reward=2)
    assert episode.tolist() == [[1, 1, 1, 1, 2, 2, 3, 4]]
    # the first token after an episode end records that episode's last step; the trial start records none
    assert step_episode.tolist() == [[-1, 1, 1, 1, 1, 2, 2, 3]]
    assert won.tolist() == [[False] * 4 + [True] + [False] * 3]
    # counting on from where a cache stopped
    assert step_episodes(kind, reward, 2, torch.tensor([5]))[0].tolist() == [[6, 6, 6, 6, 7, 7, 8, 9]]
    # episode 1 won: its steps (tokens 1-4) relate to every query of a later episode, never to its own
    rel = goal_relation(episode, step_episode, torch.tensor([[False, True, False, False, False]]))[0, 0]
    assert rel.tolist() == [[0] * 8] * 4 + [[0, 1, 1, 1, 1, 0, 0, 0]] * 4


def test_the_model_reads_the_goal_relation_from_its_tokens():
    model = QTransformer(GOAL, seed=0).eval()
    assert model.relation_bias.shape == (7, 2, 2) and GOAL.relations == RELATIONS[:7]
    with torch.no_grad():
        model.relation_bias[-1, 1, 0] = 2.5  # only "step of a won episode", layer 1, head 0
    tokens = torch.from_numpy(REL_TOK.encode(WON_TRIAL).tokens)[None]
    masks = model._relation_masks(tokens, torch.arange(8)[None], None, None)
    m = masks[1][0, 0]
    expected = torch.zeros(8, 8).masked_fill(~torch.ones(8, 8, dtype=torch.bool).tril(), -torch.inf)
    expected[4:, 1:5] = 2.5  # tokens 1-4 record the won episode 0's steps, over from token 4 on
    assert torch.equal(m, expected)
    assert torch.equal(masks[0], torch.zeros_like(masks[0]).masked_fill(~torch.ones(8, 8, dtype=torch.bool).tril(),
                                                                          -torch.inf))
    # "left this cell" and "won" together pick the winning move out of every visit: at token 5 (cell 1, episode
    # 1) the moves from cell 1 are token 2's (right, in the won episode); at token 6 (cell 0, episode 2) tokens 1
    # (right, won) and 5 (right, into the hole's episode, over only from token 6: lost)
    rel = cell_relations(*(torch.tensor([v]) for v in ([0, 1, 2, 5, 0, 1, 0, 256], [0, 1, 2, 5, 0, 1, 0, 256],
                                                      [256, 0, 1, 2, 5, 0, 1, 0], [256, 1, 2, 5, 8, 1, 4, 3])),
                         256, 16)[0, 1]
    both = rel & (expected == 2.5)
    assert both[5].nonzero().flatten().tolist() == [2] and both[6].nonzero().flatten().tolist() == [1]


def test_goal_relation_matches_with_a_cache_and_packed():
    model = QTransformer(GOAL, seed=0).eval()
    with torch.no_grad():
        model.relation_bias.normal_(0.0, 2.0, generator=torch.Generator().manual_seed(4))
    encoded = REL_TOK.encode(WON_TRIAL)
    tokens = torch.from_numpy(np.tile(encoded.tokens[:-1], 3))[None]  # three trial starts in one context
    cache = KVCache(GOAL, 1, capacity=4, no_cell=model.no_cell)
    steps = torch.cat([model(tokens[:, t:t + 1], cache=cache) for t in range(tokens.shape[1])], dim=1)
    assert cache.won.shape[1] >= 16 and torch.allclose(steps, model(tokens), atol=1e-5)
    # a context forgotten part way (reset) counts its episodes on and relates only to its own
    cache = KVCache(GOAL, 2, no_cell=model.no_cell)
    both = torch.from_numpy(np.stack([encoded.tokens[:-1]] * 2))
    model(both[:, :5], cache=cache)
    cache.reset(torch.tensor([True, False]))
    again = model(both[:1, :4].expand(2, -1).contiguous(), cache=cache)
    assert torch.allclose(again[0], model(both[:1, :4])[0], atol=1e-5)
    # packed beside another trial, each reads as alone
    second = REL_TOK.encode(WON_TRIAL.episode_slice(0))
    batch = pack([second, encoded], context_length=16, pad_id=REL_TOK.pad_id)
    q = model.q_values(batch)
    alone = [model(torch.from_numpy(t.tokens)[None])[0, t.q_positions] for t in (second, encoded)]
    assert torch.allclose(q[0, :len(second.q_positions) + len(encoded.q_positions)], torch.cat(alone), atol=1e-5)


def test_goal_relation_needs_cell_relations():
    with pytest.raises(ValueError, match="cell_relations=True"):
        TransformerConfig(field_sizes=REL_TOK.field_sizes, goal_relation=True)
    assert TransformerConfig(field_sizes=REL_TOK.field_sizes, cell_relations=True).relations == RELATIONS[:6]
    with pytest.raises(ValueError, match="cell_relations=True"):
        TransformerConfig(field_sizes=REL_TOK.field_sizes, direction_relations=True)
    assert ALL.relations == RELATIONS and DIRS.relations == RELATIONS[:6] + RELATIONS[7:]
    assert QTransformer(ALL, seed=0).relation_bias.shape == (11, 2, 2)
