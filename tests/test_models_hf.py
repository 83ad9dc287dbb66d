"""A Hugging Face causal LM as a Q-network: Q from logits, causality, packing, adapters, target, KV-cache agent."""

import numpy as np
import pytest
import torch

from icrl_course.dqn import polyak_update
from icrl_course.envs import MapDistribution
from icrl_course.models.hf import (
    AdapterConfig, HFAgent, HFQNetwork, ModelNotFoundError, build_tiny_llama, load_causal_lm, q_values_from_logits,
    resolve_dtype,
)
from icrl_course.models.protocol import QNetwork
from icrl_course.tokenize import pack
from icrl_course.tokenize.text import PAPER, WORDS, WORDS_MOVES, WORDS_STEPS, TextTokenizer, word_fields
from icrl_course.trials import Schedule, run_trials


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny"), PAPER, seed=0)


@pytest.fixture
def tiny(tiny_path):
    model, tokenizer = load_causal_lm(tiny_path, device="cpu")
    return model.eval(), TextTokenizer(tokenizer, PAPER)


def network(path, kind="full", fmt=PAPER, **options) -> HFQNetwork:
    model, tokenizer = load_causal_lm(path, device="cpu", **options)
    return HFQNetwork(model, TextTokenizer(tokenizer, fmt), AdapterConfig(kind=kind))


@pytest.fixture(scope="module")
def trials():
    class Random:
        def begin(self, maps, rng):
            self.rng = rng

        def act(self, obs):
            return self.rng.integers(0, 4, len(obs))

        def observe(self, step):
            pass

    maps = MapDistribution.paper().sample_many(3, seed=1)
    return run_trials(Random(), maps, episodes=3, seed=1, max_episode_steps=10).trials


def packed(chat, trials):
    encoded = [chat.encode(t) for t in trials]
    return pack(encoded, sum(len(e) for e in encoded), pad_id=chat.pad_id)


def alone(chat, encoded):
    return pack([encoded], len(encoded), pad_id=chat.pad_id)


def test_q_values_are_the_action_token_logits_at_the_q_positions(tiny, trials):
    model, chat = tiny
    encoded = chat.encode(trials[0])
    batch = alone(chat, encoded)
    with torch.no_grad():
        q = HFQNetwork(model, chat)(batch)
        logits = model(input_ids=batch.input_ids).logits
    manual = torch.stack([logits[0, p, chat.action_token_ids] for p in encoded.q_positions])
    torch.testing.assert_close(q[0], manual, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(q_values_from_logits(logits, batch.q_index, torch.as_tensor(chat.action_token_ids)), q)


def test_q_values_of_packed_trials_equal_a_gather_of_their_full_logits(tiny, trials):
    model, chat = tiny
    qnet = HFQNetwork(model, chat)
    batch = packed(chat, trials)
    with torch.no_grad():
        gathered = q_values_from_logits(qnet.logits(batch), batch.q_index, torch.as_tensor(chat.action_token_ids))
        torch.testing.assert_close(gathered, qnet(batch), rtol=1e-5, atol=1e-5)


def test_changing_a_future_token_never_changes_an_earlier_q_value(tiny, trials):
    model, chat = tiny
    qnet = HFQNetwork(model, chat)
    encoded = chat.encode(trials[1])
    batch = alone(chat, encoded)
    cut = int(encoded.q_positions[len(encoded.q_positions) // 2])  # the token at this Q position changes
    changed = batch.input_ids.clone()
    changed[0, cut:] = chat.action_token_ids[0]
    with torch.no_grad():
        before = qnet(batch)[0]
        after = qnet(type(batch)(**{**batch.__dict__, "input_ids": changed}))[0]
    earlier = torch.as_tensor(encoded.q_positions < cut)
    torch.testing.assert_close(after[earlier], before[earlier], rtol=0, atol=1e-6)
    assert (after[~earlier] - before[~earlier]).abs().max() > 1e-3  # the test can see a change


def test_packed_trials_give_the_same_q_values_as_each_alone(tiny, trials):
    model, chat = tiny
    qnet = HFQNetwork(model, chat)
    encoded = [chat.encode(t) for t in trials]
    packed = pack(encoded, sum(len(e) for e in encoded) + 7, pad_id=chat.pad_id)
    assert packed.input_ids.shape[0] == 1 and int(packed.segment_ids.max()) == 2
    with torch.no_grad():
        together = qnet(packed)[0]
        separate = torch.cat([qnet(alone(chat, e))[0] for e in encoded])
    torch.testing.assert_close(together[packed.step_mask[0]], separate, rtol=1e-5, atol=1e-5)


def test_eager_attention_reads_the_packing_mask_like_sdpa(tiny_path, trials):
    q = {}
    for implementation in ("sdpa", "eager"):
        qnet = network(tiny_path, attn_implementation=implementation)
        with torch.no_grad():
            q[implementation] = qnet(packed(qnet.tokenizer, trials))
    torch.testing.assert_close(q["eager"], q["sdpa"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fmt", [PAPER, WORDS_STEPS], ids=["paper", "words-steps"])
def test_agent_with_kv_cache_gives_the_q_values_of_a_full_forward(tmp_path, tiny_path, fmt):
    """Also for a format whose step is one word read before it is written (words-steps): the agent feeds that word
    after acting and reads the next Q-values on it."""
    qnet = network(tiny_path if fmt is PAPER else build_tiny_llama(tmp_path, fmt, seed=0), fmt=fmt).eval()
    chat = qnet.tokenizer
    agent = HFAgent(qnet)
    maps = MapDistribution.paper().sample_many(3, seed=2)
    result = run_trials(agent, maps, episodes=3, schedule=Schedule.epsilon_greedy(0.5), seed=2, max_episode_steps=8)
    assert agent.recomputes == 0
    with torch.no_grad():
        for b, trial in enumerate(result.trials):
            full = qnet(alone(chat, chat.encode(trial)))[0].numpy()
            cached = np.stack([q[b] for q in agent.q_history])[:len(trial)]
            np.testing.assert_allclose(cached, full, rtol=1e-4, atol=1e-5)


def test_agent_feeds_everything_again_when_the_cached_prefix_changed(tiny):
    model, chat = tiny
    qnet = HFQNetwork(model, chat)
    maps = MapDistribution.paper().sample_many(2, seed=3)
    reference = HFAgent(qnet)
    run_trials(reference, maps, episodes=2, seed=3, max_episode_steps=6)

    class Tampered(HFAgent):
        def act(self, obs):
            if len(self.q_history) == 3:
                self.cached[1][2] += 1  # pretend the cache holds a different past for lake 1
            return super().act(obs)

    agent = Tampered(qnet)
    run_trials(agent, maps, episodes=2, seed=3, max_episode_steps=6)
    assert agent.recomputes == 1
    np.testing.assert_allclose(np.stack(agent.q_history), np.stack(reference.q_history), rtol=1e-4, atol=1e-5)


def test_a_hub_id_that_cannot_be_reached_offline_says_to_pass_a_local_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="Pass a local path"):
        load_causal_lm("meta-llama/Llama-3.1-8B-Instruct", device="cpu")


@pytest.mark.parametrize("kind", ["ia3", "lora"])
def test_the_target_adapter_shares_the_base_weights(tiny_path, kind):
    base = sum(p.numel() for p in load_causal_lm(tiny_path, device="cpu")[0].parameters())
    online = network(tiny_path, kind)
    target = online.make_target()
    adapter = sum(p.numel() for p in online.trainable().values())
    assert 0 < adapter < base / 10
    assert sum(p.numel() for p in online.parameters()) == base + 2 * adapter  # one base, two adapters
    assert sum(p.numel() for p in online.parameters() if p.requires_grad) == adapter  # only the online adapter trains
    assert all(not t.requires_grad for t in target.trainable().values())
    assert isinstance(online, QNetwork) and isinstance(target, QNetwork)


def test_the_target_adapter_stays_float32_on_a_bfloat16_base(tiny_path):
    online = network(tiny_path, "ia3", dtype="bfloat16")
    target = online.make_target()
    assert next(online.model.get_base_model().parameters()).dtype == torch.bfloat16
    assert {t.dtype for t in target.trainable().values()} == {torch.float32}


@pytest.mark.parametrize("kind", ["ia3", "lora", "full"])
def test_after_an_optimiser_step_the_target_moves_by_tau_times_the_difference(tiny_path, trials, kind):
    online = network(tiny_path, kind)
    target = online.make_target()
    batch = packed(online.tokenizer, trials)
    optimiser = torch.optim.SGD([p for p in online.parameters() if p.requires_grad], lr=0.5)
    online(batch).square().mean().backward()
    optimiser.step()
    after = {k: v.detach().clone() for k, v in online.trainable().items()}
    before = {k: v.detach().clone() for k, v in target.trainable().items()}
    assert sum(float((after[k] - before[k]).abs().max()) > 0 for k in after) > 0
    polyak_update(target.trainable(), online.trainable(), 0.1)
    for name, tensor in target.trainable().items():
        torch.testing.assert_close(tensor, before[name] + 0.1 * (after[name] - before[name]), rtol=1e-6, atol=1e-7)


def test_target_q_reads_the_target_weights_and_leaves_the_online_adapter_trainable(tiny_path, trials):
    online = network(tiny_path, "ia3")
    target = online.make_target()
    batch = packed(online.tokenizer, trials)
    with torch.no_grad():
        for tensor in online.trainable().values():
            tensor.mul_(1.5)
        online_q = online(batch)
    target_q = target.q_values(batch)
    assert (online_q - target_q).abs().max() > 1e-3
    trainable = [p for p in online.parameters() if p.requires_grad]
    assert len(trainable) == len(online.trainable()) > 0
    assert all(not t.requires_grad for t in target.trainable().values())


def test_the_target_adapter_acts_with_its_own_weights(tiny_path):
    online = network(tiny_path, "ia3")
    target = online.make_target()
    with torch.no_grad():
        for tensor in online.trainable().values():
            tensor.mul_(3.0)
    agent = target.agent()
    trial = run_trials(agent, MapDistribution.paper().sample_many(2, seed=4), episodes=2, seed=4,
                       max_episode_steps=6).trials[0]
    batch = alone(online.tokenizer, online.encode(trial))
    with torch.no_grad():
        target_q, online_q = target.q_values(batch)[0].numpy(), online(batch)[0].numpy()
    np.testing.assert_allclose(np.stack([q[0] for q in agent.q_history])[:len(trial)], target_q, rtol=1e-4, atol=1e-5)
    assert np.abs(online_q - target_q).max() > 1e-3


def test_gradient_checkpointing_gives_the_same_gradients(tiny_path, trials):
    grads = []
    for checkpointing in (False, True):
        model, tokenizer = load_causal_lm(tiny_path, device="cpu")
        online = HFQNetwork(model, TextTokenizer(tokenizer, PAPER), AdapterConfig(kind="ia3"), checkpointing)
        online.train()
        assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules()) == checkpointing
        online(packed(online.tokenizer, trials)).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in online.parameters() if p.requires_grad]))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-6)


def test_the_adapter_wraps_the_configured_target_modules_only(tiny_path):
    model, tokenizer = load_causal_lm(tiny_path, device="cpu")
    online = HFQNetwork(model, TextTokenizer(tokenizer, PAPER), AdapterConfig(kind="lora", target_modules=["q_proj", "o_proj"]))
    wrapped = {name.split(".")[-3] for name in online.trainable()}  # ...q_proj.lora_A.weight
    assert wrapped == {"q_proj", "o_proj"}


def test_the_words_format_reads_q_values_at_the_cell_before_each_action_word(tmp_path, trials):
    qnet = network(build_tiny_llama(tmp_path, WORDS), fmt=WORDS)
    encoded = qnet.encode(trials[0])
    words = qnet.tokenizer.tokenizer.convert_ids_to_tokens(encoded.tokens[encoded.q_positions].tolist())
    assert all(w.startswith("u") and "d" in w for w in words)  # a cell word such as u0d2l1r3
    batch = alone(qnet.tokenizer, encoded)
    with torch.no_grad():
        logits = qnet.logits(batch)
        torch.testing.assert_close(qnet(batch), q_values_from_logits(logits, batch.q_index, qnet.action_token_ids),
                                   rtol=1e-5, atol=1e-5)


def test_auto_dtype_is_float32_on_cpu_and_names_are_checked():
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="dtype='fp8' must be 'auto' or one of"):
        resolve_dtype("fp8", torch.device("cpu"))


def test_the_tiny_llamas_shape_follows_the_config_sections_fields():
    from icrl_course.train.build import build_network
    from icrl_course.train.config import HFModel

    def llama_config(**fields):
        return build_network(HFModel(tiny_hidden_size=16, tiny_layers=1, tiny_heads=4, **fields))._lm().config

    plain = llama_config()  # kv heads 0: every head has its own keys and values; MLP 4 x 16 wide
    assert (plain.num_attention_heads, plain.num_key_value_heads, plain.intermediate_size) == (4, 4, 64)
    grouped = llama_config(tiny_kv_heads=2, tiny_mlp_ratio=2, tiny_rope_theta=500_000.0)
    assert (grouped.num_key_value_heads, grouped.intermediate_size) == (2, 32)
    assert (plain.rope_parameters["rope_theta"], grouped.rope_parameters["rope_theta"]) == (10_000.0, 500_000.0)


@pytest.mark.parametrize("fmt", [WORDS, PAPER], ids=["words", "paper"])
def test_every_word_a_trial_writes_has_a_trainable_embedding(tmp_path, trials, fmt):
    """The pad token's embedding row is zero and gets no gradient (``nn.Embedding(padding_idx=...)``), so padding
    must be a word of its own: when it was the end-of-episode word, the tiny Llama could not see episode ends."""
    qnet = network(build_tiny_llama(tmp_path, fmt), fmt=fmt)
    encoded = [qnet.encode(t) for t in trials]  # words before a trial's last Q position feed some Q-value
    written = np.unique(np.concatenate([e.tokens[:e.q_positions.max()] for e in encoded]))
    pad = qnet._lm().config.pad_token_id
    assert pad not in written
    embedding = qnet._lm().get_input_embeddings().weight
    loss = qnet(packed(qnet.tokenizer, trials)).sum()
    loss.backward()
    grad_rows = embedding.grad.abs().sum(dim=1)
    assert torch.all(embedding[written].abs().sum(dim=1) > 0)
    assert torch.all(grad_rows[written] > 0), "a written word's embedding gets no gradient"
    assert grad_rows[pad] == 0


def test_word_fields_split_cell_and_end_words_and_leave_other_words_alone():
    assert word_fields("u1d2l0r2") == [("u", "1"), ("d", "2"), ("l", "0"), ("r", "2")]
    assert word_fields("eTC1.0u0d0l2r1") == [("end", "TC"), ("reward", "1.0"), ("u", "0"), ("d", "0"), ("l", "2"),
                                             ("r", "1")]
    assert word_fields("eC0.0u2d2l2r2")[:2] == [("end", "C"), ("reward", "0.0")]
    assert word_fields("down>u1d2l0r2") == [("action", "down"), ("u", "1"), ("d", "2"), ("l", "0"), ("r", "2")]
    for word in ("left", "end", "<trial>", "1.0", "u1d2l0", "eX0.0u1d2l0r2", "down>u1d2"):
        assert word_fields(word) == []


def test_fields_init_writes_a_move_word_as_its_end_word_plus_the_action_vector(tmp_path):
    """A move word (words-moves format) has the end word's six fields and one more, its action: it starts at
    (sqrt(6) * end word + v(action)) / sqrt(7), so sqrt(7) * move - sqrt(6) * end is v(action) on every cell."""
    model, tokenizer = load_causal_lm(build_tiny_llama(tmp_path / "m", WORDS_MOVES, seed=3, embedding_init="fields"),
                                      device="cpu")
    vocab = tokenizer.get_vocab()

    def row(word):
        return model.get_input_embeddings().weight[vocab[word]].detach()

    down = [7 ** 0.5 * row(f"mT0.0{cell}down") - 6 ** 0.5 * row(f"eT0.0{cell}") for cell in ("u1d2l0r2", "u0d0l1r1")]
    torch.testing.assert_close(down[0], down[1])
    left = 7 ** 0.5 * row("mT0.0u1d2l0r2left") - 6 ** 0.5 * row("eT0.0u1d2l0r2")
    assert (down[0] - left).abs().max() > 1e-3


def test_fields_init_writes_cell_and_end_words_as_sums_of_field_vectors(tmp_path):
    """With v(f) the vector of field value f, a cell word starts at (v(u)+v(d)+v(l)+v(r)) / 2 and an end word at
    (v(end)+v(reward)+v(u)+v(d)+v(l)+v(r)) / sqrt(6). So two cells that differ in one wall distance differ by
    (v(u1) - v(u2)) / 2, and the hole-ending words on them by the same vector over sqrt(6); a cell's end words
    differ from each other by outcome vectors only, whatever the cell. Other words keep Llama's random rows."""
    def embeddings(init):
        model, tokenizer = load_causal_lm(build_tiny_llama(tmp_path / init, WORDS, seed=3, embedding_init=init),
                                          device="cpu")
        vocab = tokenizer.get_vocab()
        return lambda word: model.get_input_embeddings().weight[vocab[word]].detach()

    fields, random = embeddings("fields"), embeddings("random")
    cells = fields("u1d2l0r2") - fields("u2d2l0r2")
    holes = fields("eT0.0u1d2l0r2") - fields("eT0.0u2d2l0r2")
    assert cells.abs().max() > 1e-3
    torch.testing.assert_close(holes * 6 ** 0.5, cells * 2)
    torch.testing.assert_close(fields("eT0.0u1d2l0r2") - fields("eT1.0u1d2l0r2"),
                               fields("eT0.0u0d0l1r1") - fields("eT1.0u0d0l1r1"))
    assert not torch.allclose(fields("u1d2l0r2"), random("u1d2l0r2"))
    for word in ("left", "up", "<trial>"):
        torch.testing.assert_close(fields(word), random(word))
    with pytest.raises(ValueError, match="'fields' needs a format that writes cells as wall distances"):
        build_tiny_llama(tmp_path / "paper", PAPER, embedding_init="fields")


# ---------------------------------------------------------------- the next-token loss
def test_the_next_token_loss_predicts_the_environments_words_and_nothing_else(tmp_path):
    from icrl_course.envs import LakeMap
    from icrl_course.trials import Trial

    qnet = network(build_tiny_llama(tmp_path, WORDS, seed=0), fmt=WORDS)
    lake = LakeMap.from_rows(["SFF", "FHF", "FFG"])
    # right (lands on (0,1)), down into the hole; then down, cut by the step limit
    trial = Trial.from_steps(lake, [(0, 2, 0.0, 1, False, False), (1, 1, 0.0, 4, True, False),
                                    (0, 1, 0.0, 3, False, True)])
    # <trial> u0d2l0r2 right u0d2l1r1 down u1d1l1r1 eT0.0u1d1l1r1 u0d2l0r2 down u1d1l0r2 ... eC0.0u1d1l0r2
    encoded = qnet.encode(trial)
    vocab = qnet.tokenizer.tokenizer.convert_ids_to_tokens(encoded.tokens.tolist())
    assert [vocab[p + 1] for p in encoded.q_positions] == ["right", "down", "down"]
    # every token but the first and the agent's three actions is predicted, from the token before it
    targets = ["u0d2l0r2", "u0d2l1r1", "u1d1l1r1", "eT0.0u1d1l1r1", "u0d2l0r2", "u1d1l0r2", "...", "eC0.0u1d1l0r2"]
    before = [p for p in range(len(vocab) - 1) if p not in set(encoded.q_positions.tolist())]
    assert [vocab[p + 1] for p in before] == targets
    second = qnet.encode(trial.episode_slice(0))
    batch = pack([encoded, second, encoded], 24, pad_id=qnet.pad_id)
    assert (len(encoded), len(second), batch.input_ids.shape[0]) == (12, 7, 2)  # rows of 12 + 7 and of 12 + padding
    with torch.no_grad():
        q, loss = qnet(batch, next_token_loss=True)
        logits = qnet.logits(batch).log_softmax(-1)
    torch.testing.assert_close(q, qnet(batch))
    # by hand: each trial alone, at the positions above (the second trial, its first episode: 7 tokens, 4 predicted)
    picked = []
    for row, start, positions, tokens in ((0, 0, before, encoded.tokens), (0, len(encoded), before[:4], second.tokens),
                                          (1, 0, before, encoded.tokens)):
        picked += [-logits[row, start + p, int(tokens[p + 1])] for p in positions]
    assert len(picked) == 8 + 4 + 8
    torch.testing.assert_close(loss, torch.stack(picked).mean())


def test_the_next_token_loss_trains_through_the_update_and_only_a_language_model_takes_it(tmp_path):
    from icrl_course.train.config import ConfigError, TrainConfig
    from icrl_course.train.loop import dqn_update

    qnet = network(build_tiny_llama(tmp_path, WORDS, seed=0), fmt=WORDS)
    maps = MapDistribution.paper().sample_many(2, seed=3)
    played = run_trials(qnet.agent(epsilon=1.0), maps, episodes=2, seed=1, max_episode_steps=6).trials
    batch = pack([qnet.encode(t) for t in played], 200, pad_id=qnet.pad_id)
    target = qnet.make_target()
    optimizer = torch.optim.SGD([p for p in qnet.parameters() if p.requires_grad], lr=0.0)
    plain = dqn_update(qnet, target, optimizer, batch, TrainConfig().dqn_config())
    both = dqn_update(qnet, target, optimizer, batch, TrainConfig().dqn_config(), next_token_loss=0.5)
    with torch.no_grad():
        _, expected = qnet(batch, next_token_loss=True)
    assert "next_token_loss" not in plain and both["next_token_loss"] == pytest.approx(float(expected))
    assert both["loss"] == pytest.approx(plain["loss"])  # the DQN loss is reported alone; the gradient has both
    assert both["grad_norm"] > plain["grad_norm"]
    with pytest.raises(ConfigError, match=r"^next_token_loss=0.1 is invalid: only a language model"):
        TrainConfig(next_token_loss=0.1)
    assert TrainConfig(model={"kind": "hf"}, next_token_loss=0.1).next_token_loss == 0.1
