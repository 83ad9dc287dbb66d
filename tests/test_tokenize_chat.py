"""The chat-header format: exact text, Q positions, round trip, packing and refused tokenizers."""

import numpy as np
import pytest
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers, decoders
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from icrl_course.envs import LakeMap, MapDistribution
from icrl_course.models.hf import build_tiny_llama
from icrl_course.tokenize import pack
from icrl_course.tokenize.chat import LLAMA3, ChatFormatError, ChatTokenizer, format_reward, trial_text
from icrl_course.trials import Trial, run_trials

MAP = LakeMap.from_rows(["SFF", "FHF", "FFG"])

# One trial with every case: a goal reached (reward 1), a hole reached on the step limit (terminated and
# truncated), a time-out on a frozen tile, a negative and a fractional reward, and a last episode cut mid-way.
STEPS = [
    (0, 2, 0, 1, False, False), (1, 2, 0, 2, False, False), (2, 1, 0, 5, False, False), (5, 1, 1, 8, True, False),
    (0, 1, -1, 3, False, False), (3, 2, 0, 4, True, True),
    (0, 0, 0.5, 0, False, True),
    (0, 1, 0, 3, False, False),
]


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    return AutoTokenizer.from_pretrained(build_tiny_llama(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def bpe_tokenizer():
    """A byte-level BPE tokenizer split like Llama 3's (the blank line after a header is its own token)."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\s*[\r\n]+|\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    backend.decoder = decoders.ByteLevel()
    corpus = [trial_text(Trial.from_steps(MAP, STEPS))] * 20 + ["left down right up episode truncated"] * 20
    backend.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=1000, special_tokens=list(LLAMA3.special_tokens),
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=backend)


@pytest.fixture(params=["tiny", "bpe"])
def chat(request, tiny_tokenizer, bpe_tokenizer):
    return ChatTokenizer(tiny_tokenizer if request.param == "tiny" else bpe_tokenizer)


def random_trials(n=4, episodes=3, seed=0):
    class Random:
        def begin(self, maps, rng):
            self.rng = rng

        def act(self, obs):
            return self.rng.integers(0, 4, len(obs))

        def observe(self, step):
            pass

    maps = MapDistribution.paper().sample_many(n, seed=seed)
    return run_trials(Random(), maps, episodes=episodes, seed=seed, max_episode_steps=12).trials


def test_trial_text_is_the_documented_chat_format():
    trial = Trial.from_steps(MAP, [(0, 2, 0, 1, False, False), (1, 2, 1, 2, True, False)])
    expected = ("<|begin_of_text|>"
                "<|start_header_id|>observation<|end_header_id|>\n\n0<|eot_id|>"
                "<|start_header_id|>action<|end_header_id|>\n\nright<|eot_id|>"
                "<|start_header_id|>observation<|end_header_id|>\n\n1<|eot_id|>"
                "<|start_header_id|>action<|end_header_id|>\n\nright<|eot_id|>"
                "<|start_header_id|>reward<|end_header_id|>\n\n1<|eot_id|>"
                "<|start_header_id|>observation<|end_header_id|>\n\n2<|eot_id|>"
                "<|end_of_text|>")
    assert trial_text(trial) == expected


def test_encoded_tokens_equal_tokenizing_the_whole_text(chat):
    for trial in [Trial.from_steps(MAP, STEPS), *random_trials()]:
        full = chat.tokenizer(trial_text(trial), add_special_tokens=False)["input_ids"]
        assert chat.encode(trial).tokens.tolist() == full


def test_decode_gives_back_the_trial(chat):
    for trial in [Trial.from_steps(MAP, STEPS), *random_trials()]:
        back = chat.decode(chat.encode(trial).tokens, trial.lake_map)
        for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "episode"):
            np.testing.assert_array_equal(getattr(back, name), getattr(trial, name), err_msg=name)


def test_q_position_is_the_token_just_before_the_action_word(chat):
    trial = Trial.from_steps(MAP, STEPS)
    encoded = chat.encode(trial)
    np.testing.assert_array_equal(encoded.tokens[encoded.q_positions + 1], chat.action_token_ids[trial.actions])
    prompt = chat.tokenizer(LLAMA3.action_prompt, add_special_tokens=False)["input_ids"]
    for q in encoded.q_positions:  # what the model has read at q ends with the action prompt, after obs[t]
        assert encoded.tokens[q + 1 - len(prompt):q + 1].tolist() == prompt


def test_rewards_are_shown_only_when_not_zero_and_every_episode_ends_with_the_end_marker(chat):
    trial = Trial.from_steps(MAP, STEPS)
    roles = [role for role, _ in chat.messages(chat.encode(trial).tokens)]
    assert roles.count("reward") == int(np.count_nonzero(trial.rewards)) == 3
    assert roles.count("end") == int(trial.episode_ends.sum()) == 3
    assert roles.count("episode") == int(trial.truncated.sum()) == 2
    assert [format_reward(r) for r in (1.0, 30.0, 0.5, -1.0)] == ["1", "30", "0.5", "-1"]


def test_step_by_step_tokens_equal_the_encoded_trial(chat):
    trial = Trial.from_steps(MAP, STEPS)
    tokens = list(chat.begin_tokens())
    for t in range(len(trial)):
        tokens += list(chat.observation_tokens(trial.obs[t]))
        tokens += list(chat.after_action_tokens(trial.actions[t], trial.rewards[t], trial.next_obs[t],
                                                trial.terminated[t], trial.truncated[t]))
    encoded = chat.encode(trial).tokens.tolist()
    # the encoded trial ends with the last landing cell; step by step, that cell comes with the next action prompt
    next_prompt = list(chat.observation_tokens(trial.next_obs[-1]))
    assert tokens + next_prompt == encoded + next_prompt[-chat.prompt_length:]


def test_encoded_trials_pack_with_their_q_positions(chat):
    encoded = [chat.encode(t) for t in random_trials()]
    batch = pack(encoded, context_length=max(len(e) for e in encoded) * 2, pad_id=chat.pad_id)
    real = batch.step_mask
    np.testing.assert_array_equal(
        batch.input_ids.gather(1, batch.q_index + 1)[real].numpy(),
        chat.action_token_ids[batch.actions[real].numpy()])


def test_tokenizer_splitting_an_action_word_is_refused():
    vocab = {w: i for i, w in enumerate(["[UNK]", *LLAMA3.special_tokens, "action", "observation", "le", "##ft",
                                         "down", "right", "up"])}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(list(LLAMA3.special_tokens))
    with pytest.raises(ChatFormatError, match=r"'left' \(action 0\) is 2 tokens.*single token"):
        ChatTokenizer(PreTrainedTokenizerFast(tokenizer_object=backend))


def test_tokenizer_without_llama_special_tokens_is_refused():
    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "left": 1}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(ChatFormatError, match="one special token"):
        ChatTokenizer(PreTrainedTokenizerFast(tokenizer_object=backend))


def test_actions_outside_0_to_3_are_refused(tiny_tokenizer):
    chat = ChatTokenizer(tiny_tokenizer)
    with pytest.raises(ValueError, match="action 4 is not an action"):
        chat.after_action_tokens(4, 0.0, 1, False, False)
    with pytest.raises(ValueError, match="actions must be 0"):
        Trial.from_steps(MAP, [(0, -1, 0, 1, False, False)])


def test_a_trial_whose_steps_do_not_chain_is_refused(tiny_tokenizer):
    broken = Trial.from_steps(MAP, [(0, 2, 0, 1, False, False), (4, 2, 0, 5, False, False)])
    with pytest.raises(ValueError, match="step 0 lands on 1 but step 1 starts at 4"):
        ChatTokenizer(tiny_tokenizer).encode(broken)
