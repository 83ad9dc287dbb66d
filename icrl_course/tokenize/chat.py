"""The paper's chat-header text format: a trial written as Llama 3 chat messages.

Why text and not compact integers: a pre-trained language model already knows
how to read chat turns, words and numbers. Rentschler & Roberts write every
step as chat messages whose *role* says what the message is and whose content
is the cell number, the action word or the reward, and read Q(s, a) from the
logits of the four action words. The exact text (``LLAMA3`` below) is::

    <|begin_of_text|>                                                    once per trial
    <|start_header_id|>observation<|end_header_id|>\\n\\n{cell}<|eot_id|>   every step
    <|start_header_id|>action<|end_header_id|>\\n\\n{word}<|eot_id|>        word: left, down, right, up
    <|start_header_id|>reward<|end_header_id|>\\n\\n{reward}<|eot_id|>      only when the reward is not 0
    ... and when an episode ends:
    <|start_header_id|>observation<|end_header_id|>\\n\\n{cell}<|eot_id|>   where it ended (hole, goal, ...)
    <|start_header_id|>episode<|end_header_id|>\\n\\ntruncated<|eot_id|>    only when the step limit cut it
    <|end_of_text|>                                                      closes every episode

The Q-values of step t are read at the last token of
``<|start_header_id|>action<|end_header_id|>\\n\\n``: the logits there predict
the action word, and the model has seen ``obs[t]`` and nothing after it.

Every block starts and ends with a special token, and a tokenizer splits text
at special tokens before anything else, so the tokens of a whole trial are the
concatenation of the tokens of its blocks. ``ChatTokenizer`` therefore
tokenizes each distinct block once and builds trials by NumPy indexing, and an
agent can extend a trial's tokens step by step without re-tokenizing its past
(the prefix never changes; ``tests/test_tokenize_chat.py`` checks both claims
against tokenizing the full text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from icrl_course.envs import ACTION_NAMES, LakeMap
from icrl_course.tokenize.base import EncodedTrial
from icrl_course.trials import Trial


class ChatFormatError(ValueError):
    """A tokenizer cannot carry the chat format; the message says which piece fails and what to do."""


@dataclass(frozen=True)
class ChatFormat:
    """The strings of the chat format. The default, ``LLAMA3``, uses Llama 3's special tokens.

    Another model family can be used by naming its own special tokens here;
    each of ``begin``, ``end_of_episode``, ``header_start``, ``header_end`` and
    ``turn_end`` must be one special token of its tokenizer.
    """

    begin: str = "<|begin_of_text|>"
    """Opens the trial."""
    end_of_episode: str = "<|end_of_text|>"
    """Closes every episode."""
    header_start: str = "<|start_header_id|>"
    header_end: str = "<|end_header_id|>"
    turn_end: str = "<|eot_id|>"
    """Closes every message."""
    separator: str = "\n\n"
    """Between a message's header and its content (Llama 3's chat template uses a blank line)."""
    action_words: tuple[str, str, str, str] = ACTION_NAMES
    """The content of an action message for actions 0, 1, 2, 3 (gymnasium: left, down, right, up)."""
    truncated_text: str = "truncated"
    """Content of the ``episode`` message written when the step limit cut an episode."""

    def message(self, role: str, content: str) -> str:
        return f"{self.header_start}{role}{self.header_end}{self.separator}{content}{self.turn_end}"

    @property
    def action_prompt(self) -> str:
        """The text before an action word; Q-values are read at its last token."""
        return f"{self.header_start}action{self.header_end}{self.separator}"

    @property
    def special_tokens(self) -> tuple[str, ...]:
        return (self.begin, self.end_of_episode, self.header_start, self.header_end, self.turn_end)


LLAMA3 = ChatFormat()
"""The paper's format, with Llama 3 / 3.1 special tokens."""


def format_reward(reward: float) -> str:
    """The shortest text that reads back as the same float: ``1``, ``30``, ``0.5``, ``-1``."""
    return np.format_float_positional(float(reward), trim="-")


def trial_text(trial: Trial, fmt: ChatFormat = LLAMA3) -> str:
    """The whole trial as one string, exactly as ``ChatTokenizer.encode`` tokenizes it.

    Meant for reading and for tests; training uses ``ChatTokenizer.encode``,
    which never builds this string.
    """
    check_contiguous(trial)
    parts = [fmt.begin]
    ends = trial.episode_ends
    for t in range(len(trial)):
        parts.append(fmt.message("observation", str(int(trial.obs[t]))))
        parts.append(fmt.message("action", fmt.action_words[int(trial.actions[t])]))
        if trial.rewards[t] != 0:
            parts.append(fmt.message("reward", format_reward(trial.rewards[t])))
        if ends[t] or t == len(trial) - 1:
            parts.append(fmt.message("observation", str(int(trial.next_obs[t]))))
        if trial.truncated[t]:
            parts.append(fmt.message("episode", fmt.truncated_text))
        if ends[t]:
            parts.append(fmt.end_of_episode)
    return "".join(parts)


def check_contiguous(trial: Trial) -> None:
    """Refuse a trial the text cannot carry: inside an episode, ``next_obs[t]`` must be ``obs[t + 1]``.

    The format shows each cell once (the observation of the next step is the
    landing cell of this one), so a trial whose steps do not chain would not
    decode back to itself.
    """
    if len(trial) < 2:
        return
    same_episode = ~trial.episode_ends[:-1]
    broken = same_episode & (trial.next_obs[:-1] != trial.obs[1:])
    if broken.any():
        t = int(np.flatnonzero(broken)[0])
        raise ValueError(f"trial step {t} lands on {trial.next_obs[t]} but step {t + 1} starts at {trial.obs[t + 1]} "
                         "inside the same episode: a trial's steps must chain (or end the episode at step t)")
    new_episode = trial.episode[1:] != trial.episode[:-1]
    if np.any(new_episode != trial.episode_ends[:-1]):
        t = int(np.flatnonzero(new_episode != trial.episode_ends[:-1])[0])
        raise ValueError(f"trial step {t}: Trial.episode changes exactly where a step is terminated or truncated; "
                         "build trials with Trial.from_steps or run_trials")


class ChatTokenizer:
    """Encodes trials in the chat format with a Hugging Face tokenizer, and decodes them back.

    Construction checks that the tokenizer can carry the format: each special
    string is one token, and each action word is exactly one token *where it
    appears* (after the action prompt), with four different ids. Those ids,
    ``action_token_ids[a]`` for action ``a``, are where Q-values are read.
    """

    def __init__(self, tokenizer, fmt: ChatFormat = LLAMA3):
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.special_ids = {s: self._single_special(s) for s in fmt.special_tokens}
        prompt = self._ids(fmt.action_prompt)
        suffix = self._ids(fmt.turn_end)
        words = []
        for a, word in enumerate(fmt.action_words):
            ids = self._ids(fmt.message("action", word))
            middle = ids[len(prompt):len(ids) - len(suffix)]
            if ids[:len(prompt)] != prompt or ids[len(ids) - len(suffix):] != suffix or len(middle) != 1:
                pieces = tokenizer.convert_ids_to_tokens(middle if ids[:len(prompt)] == prompt else ids)
                raise ChatFormatError(
                    f"the action word {word!r} (action {a}) is {len(middle)} tokens {pieces} after the action prompt, "
                    "but Q-values are read as the logits of one token per action: use a tokenizer where each of "
                    f"{list(fmt.action_words)} is a single token there (Llama 3's is), or choose other action_words")
            words.append(middle[0])
        if len(set(words)) != 4:
            raise ChatFormatError(f"the action words {list(fmt.action_words)} map to token ids {words}, which are not "
                                  "all different (unknown words become the same [UNK] id?): add them to the vocabulary")
        self.action_token_ids = np.array(words, dtype=np.int64)
        self.prompt_length = len(prompt)
        self._blocks: list[np.ndarray] = []
        self._block_of: dict[tuple[str, str], int] = {}
        self._bos = self._block_id(("begin", ""), [self.special_ids[fmt.begin]])
        self._eos = self._block_id(("end", ""), [self.special_ids[fmt.end_of_episode]])
        self._truncated = self._block("episode", fmt.truncated_text)
        self._actions = np.array([self._block("action", w) for w in fmt.action_words])
        self._flat, self._starts, self._lengths = self._table()

    # ----------------------------------------------------------------- tokenizer plumbing
    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _single_special(self, text: str) -> int:
        ids = self._ids(text)
        if len(ids) != 1:
            raise ChatFormatError(
                f"{text!r} is {len(ids)} tokens for this tokenizer, but the chat format needs it as one special token: "
                "use a Llama 3 tokenizer (e.g. meta-llama/Llama-3.1-8B-Instruct), or pass a ChatFormat with this "
                "model family's own special tokens")
        return ids[0]

    def _block_id(self, key: tuple[str, str], ids: Sequence[int]) -> int:
        if key not in self._block_of:
            self._block_of[key] = len(self._blocks)
            self._blocks.append(np.asarray(ids, dtype=np.int64))
        return self._block_of[key]

    def _block(self, role: str, content: str) -> int:
        """Index of the block for one message, tokenized once and remembered."""
        key = (role, content)
        if key not in self._block_of:
            self._block_id(key, self._ids(self.fmt.message(role, content)))
            self._flat = None
        return self._block_of[key]

    def _table(self):
        lengths = np.array([len(b) for b in self._blocks], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return np.concatenate(self._blocks), starts, lengths

    def _observation_blocks(self, cells: np.ndarray) -> np.ndarray:
        table = np.array([self._block("observation", str(c)) for c in range(int(cells.max()) + 1)])
        return table[cells]

    def _reward_blocks(self, rewards: np.ndarray) -> np.ndarray:
        values, inverse = np.unique(rewards, return_inverse=True)
        table = np.array([self._block("reward", format_reward(v)) if v != 0 else -1 for v in values])
        return table[inverse]

    @property
    def pad_id(self) -> int:
        """Token used for padding in ``pack``: the end-of-episode token (padding is masked anyway)."""
        return self.special_ids[self.fmt.end_of_episode]

    # ----------------------------------------------------------------- encoding
    def encode(self, trial: Trial) -> EncodedTrial:
        """The trial's tokens, the position of every step's Q-values, and its per-step arrays."""
        check_contiguous(trial)
        n = len(trial)
        blocks = np.full((n, 6), -1, dtype=np.int64)
        if n:
            ends = trial.episode_ends
            last = ends.copy()
            last[-1] = True  # the landing cell of the last step is shown even if the trial stops mid-episode
            blocks[:, 0] = self._observation_blocks(trial.obs)
            blocks[:, 1] = self._actions[trial.actions]
            blocks[:, 2] = self._reward_blocks(trial.rewards)
            blocks[:, 3] = np.where(last, self._observation_blocks(trial.next_obs), -1)
            blocks[:, 4] = np.where(trial.truncated, self._truncated, -1)
            blocks[:, 5] = np.where(ends, self._eos, -1)
        if self._flat is None:
            self._flat, self._starts, self._lengths = self._table()
        sequence = np.concatenate([[self._bos], blocks.ravel()])
        keep = sequence >= 0
        sequence = sequence[keep]
        lengths = self._lengths[sequence]
        out_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        offsets = np.arange(int(lengths.sum())) - np.repeat(out_starts, lengths)
        tokens = self._flat[np.repeat(self._starts[sequence], lengths) + offsets]
        # block k of the kept sequence starts at out_starts[k]; action blocks are column 1 of `blocks`
        block_start = np.full(keep.shape, -1, dtype=np.int64)
        block_start[keep] = out_starts
        q_positions = block_start[1:].reshape(n, 6)[:, 1] + self.prompt_length - 1
        return EncodedTrial(tokens, q_positions, trial.actions.copy(), trial.rewards.copy(),
                            trial.terminated.copy(), trial.truncated.copy(), trial.episode.copy())

    def begin_tokens(self) -> np.ndarray:
        """The tokens a trial starts with (before the first observation)."""
        return self._blocks[self._bos].copy()

    def observation_tokens(self, cell: int) -> np.ndarray:
        """One observation message followed by the action prompt: what the model reads before it acts."""
        block = self._blocks[self._block("observation", str(int(cell)))]
        return np.concatenate([block, self._blocks[self._actions[0]][:self.prompt_length]])

    def after_action_tokens(self, action: int, reward: float, next_obs: int, terminated: bool, truncated: bool) -> np.ndarray:
        """What follows the action prompt once the step is known: the action word, the reward and any episode end.

        ``observation_tokens`` of the next step then continues the trial; an
        agent that appends ``observation_tokens(obs)`` and these in turn has
        exactly ``encode(trial).tokens`` (up to the next action prompt).
        """
        if not 0 <= int(action) <= 3:
            raise ValueError(f"action {action} is not an action: actions are 0 (left), 1 (down), 2 (right), 3 (up)")
        parts = [self._blocks[self._actions[int(action)]][self.prompt_length:]]
        if reward != 0:
            parts.append(self._blocks[self._block("reward", format_reward(reward))])
        if terminated or truncated:
            parts.append(self._blocks[self._block("observation", str(int(next_obs)))])
            if truncated:
                parts.append(self._blocks[self._truncated])
            parts.append(self._blocks[self._eos])
        return np.concatenate(parts)

    # ----------------------------------------------------------------- decoding
    def messages(self, tokens: Sequence[int]) -> list[tuple[str, str]]:
        """The trial's messages as ``(role, content)`` pairs; ``("begin", "")`` and ``("end", "")`` for the markers."""
        ids = [int(t) for t in tokens]
        header_start, header_end, turn_end = (self.special_ids[s] for s in
                                              (self.fmt.header_start, self.fmt.header_end, self.fmt.turn_end))
        out, i = [], 0
        while i < len(ids):
            tok = ids[i]
            if tok == self.special_ids[self.fmt.begin]:
                out.append(("begin", ""))
                i += 1
            elif tok == self.special_ids[self.fmt.end_of_episode]:
                out.append(("end", ""))
                i += 1
            elif tok == header_start:
                try:
                    h = ids.index(header_end, i)
                    e = ids.index(turn_end, h)
                except ValueError:
                    raise ValueError(f"token {i} opens a message that is never closed: the tokens are cut or not in the chat format") from None
                # no role or content of the format holds a space; word-level decoders put spaces between tokens
                role = "".join(self.tokenizer.decode(ids[i + 1:h]).split())
                content = "".join(self.tokenizer.decode(ids[h + 1:e]).split())
                out.append((role, content))
                i = e + 1
            else:
                raise ValueError(f"token {i} ({self.tokenizer.convert_ids_to_tokens([tok])[0]!r}) is outside any message: "
                                 "the tokens are not in the chat format")
        return out

    def decode(self, tokens: Sequence[int], lake_map: LakeMap) -> Trial:
        """The ``Trial`` that ``encode`` turned into ``tokens`` (``lake_map`` is not in the text, so pass it).

        An episode closed by the end marker without the truncation message was
        terminated; with it, it was truncated, and also terminated when it
        ended on a hole or goal of ``lake_map`` (the limit and the ending fell
        on the same step).
        """
        words = {w: a for a, w in enumerate(self.fmt.action_words)}
        steps: list[list] = []  # obs, action, reward, next_obs, terminated, truncated
        current = None  # the cell the agent stands on
        for k, (role, content) in enumerate(self.messages(tokens)):
            if role == "begin":
                if k != 0:
                    raise ValueError("the begin marker appears inside the trial: decode one trial at a time")
            elif role == "observation":
                current = int(content)
                if steps and steps[-1][3] is None:
                    steps[-1][3] = current
            elif role == "action":
                if current is None or content not in words:
                    raise ValueError(f"message {k}: action {content!r} without an observation before it, or not one of {list(words)}")
                if steps and steps[-1][3] is None:
                    raise ValueError(f"message {k}: two actions without an observation between them")
                steps.append([current, words[content], 0.0, None, False, False])
            elif role == "reward":
                steps[-1][2] = float(content)
            elif role == "episode" and content == self.fmt.truncated_text:
                steps[-1][5] = True
            elif role == "end":
                steps[-1][4] = not steps[-1][5] or lake_map.flat[steps[-1][3]] in "HG"
                current = None
            else:
                raise ValueError(f"message {k} has role {role!r} and content {content!r}, which the chat format does not use")
        if steps and steps[-1][3] is None:
            raise ValueError("the last action has no observation after it: the tokens are cut inside a step")
        return Trial.from_steps(lake_map, [tuple(s) for s in steps])
