"""Text formats: the paper's exact text, Q positions, round trips, step-by-step tokens and refused tokenizers."""

from dataclasses import replace

import numpy as np
import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from icrl_course.envs import LakeMap, MapDistribution
from icrl_course.models.hf import build_tiny_llama
from icrl_course.tokenize import pack
from icrl_course.tokenize.text import (
    LLAMA3, LLAMA3_SPECIAL, PAPER, WORDS, WORDS_MOVES, WORDS_STEPS, TextFormatError, TextTokenizer, format_reward, trial_text,
    word_fields,
)
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
REWARDS = (1.0, -1.0, 0.5)


@pytest.fixture(scope="module")
def tiny_tokenizers(tmp_path_factory):
    """A word-level tokenizer of the tiny Llama for each format, loaded back with from_pretrained."""
    return {fmt.name: AutoTokenizer.from_pretrained(build_tiny_llama(tmp_path_factory.mktemp(fmt.name), fmt, rewards=REWARDS))
            for fmt in (PAPER, LLAMA3, WORDS, WORDS_MOVES, WORDS_STEPS)}


@pytest.fixture(scope="module")
def bpe_tokenizer():
    """A byte-level BPE tokenizer split like Llama 3's (digits in groups of up to 3, words apart)."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\s*[\r\n]+|\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    backend.decoder = decoders.ByteLevel()
    corpus = [trial_text(Trial.from_steps(MAP, STEPS), f) for f in (PAPER, LLAMA3)] * 20 + ["left down right up"] * 20
    backend.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=1000, special_tokens=list(LLAMA3_SPECIAL),
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=backend)


@pytest.fixture(params=["paper/tiny", "llama3/tiny", "words/tiny", "words-moves/tiny", "words-steps/tiny", "paper/bpe",
                        "llama3/bpe"])
def text(request, tiny_tokenizers, bpe_tokenizer):
    name, which = request.param.split("/")
    fmt = {f.name: f for f in (PAPER, LLAMA3, WORDS, WORDS_MOVES, WORDS_STEPS)}[name]
    return TextTokenizer(tiny_tokenizers[name] if which == "tiny" else bpe_tokenizer, fmt)


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


def test_the_paper_preset_writes_the_papers_text_character_for_character():
    # Written out by hand from Eval.ipynb (cell 6): reset_to_text(obs) is <|begin_of_text|>, the observation message and
    # the action header; step_to_text is the action word, <|eot_id|>, the next observation, the reward as round(r, 2)
    # when not 0, an edit message "..." when truncated, then <|end_of_text|> at an episode end or the action header.
    trial = Trial.from_steps(MAP, [
        (0, 2, 0.0, 1, False, False), (1, 2, 0.0, 2, False, False), (2, 1, 0.0, 5, False, False), (5, 1, 1.0, 8, True, False),
        (0, 1, 0.0, 3, False, False), (3, 2, 0.0, 4, True, False),
        (0, 0, 0.0, 0, False, True),
    ])
    expected = (
        "<|begin_of_text|><|start_header_id|>observation<|end_header_id|>0<|eot_id|>"
        "<|start_header_id|>action<|end_header_id|>right<|eot_id|><|start_header_id|>observation<|end_header_id|>1<|eot_id|>"
        "<|start_header_id|>action<|end_header_id|>right<|eot_id|><|start_header_id|>observation<|end_header_id|>2<|eot_id|>"
        "<|start_header_id|>action<|end_header_id|>down<|eot_id|><|start_header_id|>observation<|end_header_id|>5<|eot_id|>"
        "<|start_header_id|>action<|end_header_id|>down<|eot_id|><|start_header_id|>observation<|end_header_id|>8<|eot_id|>"
        "<|start_header_id|>reward<|end_header_id|>1.0<|eot_id|><|end_of_text|>"
        "<|begin_of_text|><|start_header_id|>observation<|end_header_id|>0<|eot_id|>"
        "<|start_header_id|>action<|end_header_id|>down<|eot_id|><|start_header_id|>observation<|end_header_id|>3<|eot_id|>"
        "<|start_header_id|>action<|end_header_id|>right<|eot_id|><|start_header_id|>observation<|end_header_id|>4<|eot_id|>"
        "<|end_of_text|>"
        "<|begin_of_text|><|start_header_id|>observation<|end_header_id|>0<|eot_id|>"
        "<|start_header_id|>action<|end_header_id|>left<|eot_id|><|start_header_id|>observation<|end_header_id|>0<|eot_id|>"
        "<|start_header_id|>edit<|end_header_id|>...<|eot_id|><|end_of_text|>"
    )
    assert trial_text(trial, PAPER) == expected


def test_llama3_differs_from_the_paper_only_by_the_blank_line_and_one_begin_per_trial():
    trial = Trial.from_steps(MAP, STEPS)
    paper, ours = trial_text(trial, PAPER), trial_text(trial, LLAMA3)
    assert ours.count("<|begin_of_text|>") == 1 and paper.count("<|begin_of_text|>") == 4  # 3 episodes ended, 1 cut
    assert ours.replace("<|end_header_id|>\n\n", "<|end_header_id|>") == (
        "<|begin_of_text|>" + paper.replace("<|begin_of_text|>", ""))


def test_the_words_format_is_two_tokens_per_step_inside_an_episode():
    trial = Trial.from_steps(MAP, [(0, 2, 0, 1, False, False), (1, 2, 1, 2, True, False)])
    assert trial_text(trial, WORDS) == "<trial>u0d2l0r2 right u0d2l1r1 right u0d2l2r0 1.0 eT1.0u0d2l2r0 "


def test_the_words_formats_episode_end_names_how_and_where_it_ended():
    """One word per ending, as the transformer's compact token gives it: terminated (T) and/or cut by the step
    limit (C), the last reward, the cell. Written by hand for a hole, a cut episode and a cut that falls in."""
    steps = [(0, 2, 0.0, 1, False, False), (1, 1, 0.0, 4, True, False),  # right, down into the hole (cell 4)
             (0, 0, 0.0, 0, False, True),                                   # left into the wall, cut by the limit
             (0, 2, 0.0, 1, False, False), (1, 1, 0.0, 4, True, True)]      # the hole and the limit together
    words = trial_text(Trial.from_steps(MAP, steps), WORDS).split()
    assert [w for w in words if w.startswith("e")] == ["eT0.0u1d1l1r1", "eC0.0u0d2l0r2", "eTC0.0u1d1l1r1"]
    assert words.count("...") == 2  # the edit message of a cut episode is still written


def test_words_moves_names_the_move_that_ended_each_episode():
    """Written by hand: after each end word, the cell the last step left and its action (right from cell 1
    into the hole below it, left into the wall from cell 0 cut by the limit, down from cell 5 to the goal)."""
    steps = [(0, 2, 0.0, 1, False, False), (1, 1, 0.0, 4, True, False),
             (0, 0, 0.0, 0, False, True),
             (0, 1, 0.0, 3, False, False), (3, 2, 0.0, 4, True, False)]
    text = trial_text(Trial.from_steps(MAP, steps), WORDS_MOVES)
    assert text.split() == [
        "<trial>u0d2l0r2", "right", "u0d2l1r1", "down", "u1d1l1r1", "eT0.0u1d1l1r1", "mT0.0u0d2l1r1down",
        "u0d2l0r2", "left", "u0d2l0r2", "...", "eC0.0u0d2l0r2", "mC0.0u0d2l0r2left",
        "u0d2l0r2", "down", "u1d1l0r2", "right", "u1d1l1r1", "eT0.0u1d1l1r1", "mT0.0u1d1l0r2right"]
    assert text.replace(" mT0.0u0d2l1r1down", "").replace(" mC0.0u0d2l0r2left", "").replace(
        " mT0.0u1d1l0r2right", "") == trial_text(Trial.from_steps(MAP, steps), WORDS)
    assert word_fields("mT0.0u0d2l1r1down") == [("end", "T"), ("reward", "0.0"), ("u", "0"), ("d", "2"), ("l", "1"),
                                               ("r", "1"), ("action", "down")]


def test_a_move_word_that_does_not_name_the_last_step_is_refused(tiny_tokenizers):
    text = TextTokenizer(tiny_tokenizers["words-moves"], WORDS_MOVES)
    tokens = text.encode(Trial.from_steps(MAP, [(0, 1, 0.0, 3, False, False), (3, 2, 0.0, 4, True, False)])).tokens
    wrong = text.tokenizer.convert_tokens_to_ids("mT0.0u1d1l0r2left")
    with pytest.raises(ValueError, match="does not name the step"):
        text.decode([*tokens[:-1], wrong], MAP)


def test_end_names_move_needs_the_outcome_word_and_no_headers():
    with pytest.raises(ValueError, match="end_names_move needs"):
        replace(WORDS, end_names_outcome=False, end_names_move=True)
    with pytest.raises(ValueError, match="end_names_move needs"):
        replace(LLAMA3, end_names_outcome=True, end_names_move=True)


def test_words_steps_writes_each_step_as_one_word_the_action_and_where_it_landed():
    """Written by hand: the words format's text with each action word and the cell after it joined by '>'."""
    steps = [(0, 2, 0.0, 1, False, False), (1, 1, 0.0, 4, True, False),
             (0, 0, 0.0, 0, False, True),
             (0, 1, 0.0, 3, False, False), (3, 2, 0.0, 4, True, False)]
    text = trial_text(Trial.from_steps(MAP, steps), WORDS_STEPS)
    assert text.split() == [
        "<trial>u0d2l0r2", "right>u0d2l1r1", "down>u1d1l1r1", "eT0.0u1d1l1r1",
        "u0d2l0r2", "left>u0d2l0r2", "...", "eC0.0u0d2l0r2",
        "u0d2l0r2", "down>u1d1l0r2", "right>u1d1l1r1", "eT0.0u1d1l1r1"]
    words = trial_text(Trial.from_steps(MAP, steps), WORDS)
    assert text.replace("<trial>", "").replace(">", " ").split() == words.replace("<trial>", "").split()


def test_fuse_steps_needs_a_format_without_headers():
    with pytest.raises(ValueError, match="fuse_steps needs"):
        replace(LLAMA3, fuse_steps=True)


def action_words_after(text, tokens):
    """The action word each token writes: itself, or for a step word (words-steps) the part before '>'."""
    if not text.fmt.fuse_steps:
        return [int(t) for t in tokens]
    words = [w.split(">")[0] for w in text.tokenizer.convert_ids_to_tokens([int(t) for t in tokens])]
    return [int(text.action_token_ids[text.fmt.action_words.index(w)]) for w in words]


def test_encoded_tokens_equal_tokenizing_the_whole_text(text):
    for trial in [Trial.from_steps(MAP, STEPS), *random_trials()]:
        full = text.tokenizer(trial_text(trial, text.fmt), add_special_tokens=False)["input_ids"]
        assert text.encode(trial).tokens.tolist() == full


def test_decode_gives_back_the_trial(text):
    for trial in [Trial.from_steps(MAP, STEPS), *random_trials()]:
        back = text.decode(text.encode(trial).tokens, trial.lake_map)
        for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "episode"):
            np.testing.assert_array_equal(getattr(back, name), getattr(trial, name), err_msg=name)


def test_q_position_is_the_token_just_before_the_action_word(text):
    trial = Trial.from_steps(MAP, STEPS)
    encoded = text.encode(trial)
    np.testing.assert_array_equal(action_words_after(text, encoded.tokens[encoded.q_positions + 1]),
                                  text.action_token_ids[trial.actions])
    prompt = text.tokenizer(text.fmt.action_prompt, add_special_tokens=False)["input_ids"] if text.fmt.action_prompt else []
    for q in encoded.q_positions:  # what the model has read at q ends with the action prompt, after the cell
        assert encoded.tokens[q + 1 - len(prompt):q + 1].tolist() == prompt


def test_rewards_are_written_only_when_not_zero_as_the_paper_rounds_them(text):
    trial = Trial.from_steps(MAP, STEPS)
    messages = text.messages(text.encode(trial).tokens)
    roles = [role for role, _ in messages]
    assert [c for r, c in messages if r == "reward"] == ["1.0", "-1.0", "0.5"]
    assert roles.count("end") == int(trial.episode_ends.sum()) == 3
    assert roles.count("edit") == int(trial.truncated.sum()) == 2
    assert [format_reward(r) for r in (1, 30.0, 0.5, -1.0, 1 / 3)] == ["1.0", "30.0", "0.5", "-1.0", "0.33"]


def test_step_by_step_tokens_equal_the_encoded_trial(text):
    for trial in [Trial.from_steps(MAP, STEPS), *random_trials(n=2)]:
        tokens, start = [], True
        for t in range(len(trial)):
            tokens += list(text.prompt_tokens(trial.obs[t], trial.lake_map.shape, t == 0, start))
            tokens += list(text.after_action_tokens(trial.obs[t], trial.actions[t], trial.rewards[t], trial.next_obs[t],
                                                    trial.lake_map.shape, trial.terminated[t], trial.truncated[t]))
            start = bool(trial.episode_ends[t])
        assert tokens == text.encode(trial).tokens.tolist()


def test_encoded_trials_pack_with_their_q_positions(text):
    encoded = [text.encode(t) for t in random_trials()]
    batch = pack(encoded, context_length=max(len(e) for e in encoded) * 2, pad_id=text.pad_id)
    real = batch.step_mask
    np.testing.assert_array_equal(action_words_after(text, batch.input_ids.gather(1, batch.q_index + 1)[real]),
                                  text.action_token_ids[batch.actions[real].numpy()])


def test_tokenizer_splitting_an_action_word_is_refused():
    vocab = {w: i for i, w in enumerate(["[UNK]", *LLAMA3_SPECIAL, "action", "observation", "le", "##ft",
                                         "down", "right", "up"])}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(list(LLAMA3_SPECIAL))
    with pytest.raises(TextFormatError, match=r"'left' \(action 0\) is 2 tokens.*single token"):
        TextTokenizer(PreTrainedTokenizerFast(tokenizer_object=backend), PAPER)


def test_tokenizer_without_the_formats_special_tokens_is_refused():
    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "left": 1}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(TextFormatError, match="must be one"):
        TextTokenizer(PreTrainedTokenizerFast(tokenizer_object=backend), PAPER)


def test_a_word_missing_from_the_vocabulary_is_refused_not_read_as_unknown(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_llama(tmp_path, WORDS))  # knows the reward 1.0 only
    with pytest.raises(TextFormatError, match="'-1.0' holds a word this tokenizer does not know"):
        TextTokenizer(tokenizer, WORDS).encode(Trial.from_steps(MAP, STEPS))


def test_actions_outside_0_to_3_are_refused(tiny_tokenizers):
    text = TextTokenizer(tiny_tokenizers["paper"], PAPER)
    with pytest.raises(ValueError, match="action 4 is not an action"):
        text.after_action_tokens(0, 4, 0.0, 1, (3, 3), False, False)


def test_a_trial_whose_steps_do_not_chain_is_refused(tiny_tokenizers):
    broken = Trial.from_steps(MAP, [(0, 2, 0, 1, False, False), (4, 2, 0, 5, False, False)])
    with pytest.raises(ValueError, match="step 0 lands on 1 but step 1 starts at 4"):
        TextTokenizer(tiny_tokenizers["paper"], PAPER).encode(broken)
