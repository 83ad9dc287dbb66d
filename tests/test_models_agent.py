"""The transformer agent: acting with the KV cache reads the same Q-values as a full pass over the trial."""

import dataclasses

import numpy as np
import pytest
import torch

from icrl_course.envs import LakeMap
from icrl_course.models.agent import TransformerAgent
from icrl_course.models.transformer import QTransformer, TransformerConfig
from icrl_course.tokenize import ContextTooLongError
from icrl_course.tokenize.compact import CompactTokenizer
from icrl_course.trials import Schedule, Transition, run_trials

TOK = CompactTokenizer()
SMALL = TransformerConfig(n_layer=2, n_head=2, n_embd=16, max_context=512)
MAPS = [LakeMap.from_rows(["SFF", "FHF", "FFG"]), LakeMap.from_rows(["SFFF", "FHFH", "FFFH", "HFFG"]),
        LakeMap.from_rows(["SFFFFHF", "FFHFFFG"])]


class RecordingAgent(TransformerAgent):
    """Keeps, per lake, the Q-values of every step it acted on while the lake's trial was running."""

    def begin(self, maps, rng=None):
        super().begin(maps, rng)
        self.per_lake = [[] for _ in maps]

    def observe(self, step: Transition):
        for b in np.flatnonzero(step.active):
            self.per_lake[b].append(self.last_q[b])
        super().observe(step)


@pytest.fixture(scope="module")
def model():
    return QTransformer(SMALL, seed=0).eval()


def full_pass_q(model, trial):
    encoded = TOK.encode(trial)
    with torch.no_grad():
        return model(torch.from_numpy(encoded.tokens)[None])[0, encoded.q_positions].numpy()


@pytest.mark.parametrize("slippery", [False, True])
def test_acting_with_the_cache_gives_the_q_values_of_a_full_forward_pass(model, slippery):
    agent = RecordingAgent(model)
    results = run_trials(agent, MAPS, episodes=4, schedule=Schedule.epsilon_greedy(0.5), seed=1,
                         max_episode_steps=12, is_slippery=slippery)
    for b, trial in enumerate(results.trials):
        assert trial.num_episodes == 4
        np.testing.assert_allclose(np.stack(agent.per_lake[b]), full_pass_q(model, trial), atol=1e-5)


def test_acting_with_offsets_from_the_first_cell_gives_the_q_values_of_a_full_forward_pass():
    # The agent tracks each lake's first cell itself; its tokens must be the ones encode writes.
    tok = CompactTokenizer(edge_cap=2, relative_cap=4)
    model = QTransformer(dataclasses.replace(SMALL, field_sizes=tok.field_sizes), seed=0).eval()
    agent = RecordingAgent(model, tok)
    results = run_trials(agent, MAPS, episodes=4, schedule=Schedule.epsilon_greedy(0.5), seed=1, max_episode_steps=12)
    for b, trial in enumerate(results.trials):
        encoded = tok.encode(trial)
        with torch.no_grad():
            full = model(torch.from_numpy(encoded.tokens)[None])[0, encoded.q_positions].numpy()
        np.testing.assert_allclose(np.stack(agent.per_lake[b]), full, atol=1e-5)


def test_first_episode_only_ablation_sees_each_episode_as_a_fresh_trial(model):
    agent = RecordingAgent(model, reset_context_every_episode=True)
    results = run_trials(agent, MAPS, episodes=3, schedule=Schedule.epsilon_greedy(0.5), seed=2, max_episode_steps=10)
    for b, trial in enumerate(results.trials):
        expected = np.concatenate([full_pass_q(model, trial.episode_slice(k)) for k in range(trial.num_episodes)])
        np.testing.assert_allclose(np.stack(agent.per_lake[b]), expected, atol=1e-5)


def test_greedy_agent_takes_the_argmax_and_epsilon_one_acts_at_random(model):
    agent = TransformerAgent(model)
    agent.begin(MAPS, np.random.default_rng(0))
    actions = agent.act(np.zeros(3, dtype=np.int64))
    np.testing.assert_array_equal(actions, agent.last_q.argmax(axis=1))
    random_agent = TransformerAgent(model, epsilon=1.0)
    random_agent.begin(MAPS * 20, np.random.default_rng(0))
    assert len(set(random_agent.act(np.zeros(60, dtype=np.int64)).tolist())) == 4


def test_same_seed_same_trials(model):
    runs = [run_trials(TransformerAgent(model, epsilon=0.3), MAPS, episodes=2, seed=5, max_episode_steps=10) for _ in range(2)]
    for a, b in zip(runs[0].trials, runs[1].trials):
        np.testing.assert_array_equal(a.actions, b.actions)


def test_bad_uses_are_clear_errors(model):
    agent = TransformerAgent(model)
    with pytest.raises(RuntimeError, match="begin"):
        agent.act(np.zeros(3, dtype=np.int64))
    agent.begin(MAPS, np.random.default_rng(0))
    agent.act(np.zeros(3, dtype=np.int64))
    bad = Transition(np.zeros(3, int), np.array([0, 7, 1]), np.zeros(3), np.ones(3, int), np.zeros(3, bool),
                     np.zeros(3, bool), np.ones(3, bool))
    with pytest.raises(ValueError, match="action 7"):
        agent.observe(bad)
    with pytest.raises(ValueError, match="field_sizes"):
        TransformerAgent(model, tokenizer=CompactTokenizer(edge_cap=3))


def test_a_trial_longer_than_the_model_context_is_a_clear_error():
    tiny = QTransformer(TransformerConfig(n_layer=1, n_head=2, n_embd=8, max_context=16)).eval()
    with pytest.raises(ContextTooLongError, match="max_context"):
        run_trials(TransformerAgent(tiny), [LakeMap.from_rows(["SFFFFFFG"])], episodes=20, seed=0, max_episode_steps=10)


def test_acting_leaves_a_training_model_in_training_mode():
    model = QTransformer(SMALL, seed=0).train()
    agent = TransformerAgent(model)
    agent.begin(MAPS, np.random.default_rng(0))
    agent.act(np.zeros(3, dtype=np.int64))
    assert model.training


def test_a_model_with_dropout_acts_in_eval_mode_and_is_handed_back_training():
    model = QTransformer(dataclasses.replace(SMALL, dropout=0.5), seed=0).train()
    agent, twin = TransformerAgent(model), TransformerAgent(model)
    agent.begin(MAPS, np.random.default_rng(0))
    twin.begin(MAPS, np.random.default_rng(0))
    obs = np.zeros(3, dtype=np.int64)
    np.testing.assert_array_equal(agent.q_values(obs), twin.q_values(obs))  # no dropout noise while acting
    assert model.training


@pytest.mark.parametrize("slippery", [False, True])
def test_acting_with_cell_relations_gives_the_q_values_of_a_full_forward_pass(slippery):
    # The cache keeps each slot's cell and the cell its step left; nonzero biases make any slip show.
    tok = CompactTokenizer(edge_cap=2, cell_ids=True)
    model = QTransformer(dataclasses.replace(SMALL, field_sizes=tok.field_sizes, cell_relations=True), seed=0).eval()
    with torch.no_grad():
        model.relation_bias.normal_(0.0, 2.0, generator=torch.Generator().manual_seed(3))
    agent = RecordingAgent(model, tok)
    results = run_trials(agent, MAPS, episodes=4, schedule=Schedule.epsilon_greedy(0.5), seed=1, max_episode_steps=12,
                         is_slippery=slippery)
    for b, trial in enumerate(results.trials):
        encoded = tok.encode(trial)
        with torch.no_grad():
            full = model(torch.from_numpy(encoded.tokens)[None])[0, encoded.q_positions].numpy()
        np.testing.assert_allclose(np.stack(agent.per_lake[b]), full, atol=1e-5)
