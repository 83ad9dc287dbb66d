"""Trials as text for language models: the paper's chat headers, and a compact word format for small models.

Why text and not compact integers: a language model reads text, so a trial is
written as text, tokenized by the model's own tokenizer, and Q(s, a) is read as
the logit of action ``a``'s word at the token just before that word.
Rentschler & Roberts write every step as Llama 3 chat messages whose *role*
says what the message holds. ``PAPER`` is their text exactly, as their
``Eval.ipynb`` writes it (``reset_to_text`` / ``step_to_text``)::

    <|begin_of_text|>                                            opens every episode
    <|start_header_id|>observation<|end_header_id|>{cell}<|eot_id|>   the start cell
    <|start_header_id|>action<|end_header_id|>{word}<|eot_id|>        left, down, right, up
    <|start_header_id|>observation<|end_header_id|>{cell}<|eot_id|>   where the step landed
    <|start_header_id|>reward<|end_header_id|>{reward}<|eot_id|>      only when not 0, as round(r, 2): 1.0
    <|start_header_id|>edit<|end_header_id|>...<|eot_id|>             only when the step limit cut the episode
    <|end_of_text|>                                              closes every episode

(action, landing observation, reward and edit repeat for every step). That is
about 10 Llama 3 tokens per step. Two other formats share the layout:

* ``LLAMA3`` differs from the paper in two places, each for a reason: a blank
  line after every header, because Llama 3 Instruct's chat template writes one
  and the pre-trained model knows messages in that form; and
  ``<|begin_of_text|>`` once per trial, because it is Llama's beginning-of-
  document token, and one before every episode tells a pre-trained model that
  a new document starts, the opposite of what learning across episodes needs.
* ``WORDS`` drops the headers: one word per message, so a step is two tokens
  (the action word and the cell it lands on). A cell is written as its
  distances to the four walls, capped (``u0d2l1r3``), the same information
  the small transformer's compact tokens give it (``tokenize.compact``), so
  the tiny Llama of lesson 6 sees what lesson 5's model sees, as text. Its
  end-of-episode word also names how and where the episode ended
  (``eT0.0u1d1l2r1``: terminated, reward 0.0, on that cell; ``eC``: cut by the
  step limit; ``eTC``: both), as the transformer's first token of the next
  episode does (``end_word``). With a plain ``end`` a model must combine two
  tokens (the cell, then ``end`` after it) to know where it fell; a tiny Llama
  trained from scratch learned that much more slowly (lesson 6, section 7).
* ``WORDS_MOVES`` (``words-moves``) is ``WORDS`` with one more word after
  each end word, naming the move that ended the episode: the cell it left
  and the action (``mT0.0u0d2l1r1down``). "Going down from here ended in a
  hole" is then one word that a later visit to the cell can find in one hop
  of attention, instead of three tokens (cell, action, end word) that need
  two. A lever for the tiny Llama's memory of holes (lesson 6 measures it).
* ``WORDS_STEPS`` (``words-steps``) is ``WORDS`` with each step's two words
  fused into one: the action and the cell it landed on (``down>u1d2l0r2``),
  so a step is one token, as in the small transformer's compact tokens
  (whose step token also holds the previous action and the cell). Q-values
  are read at the token before a step's word, as the logits of the four plain
  action words (``left`` ... ``up``, in the vocabulary although the text
  never writes them alone): the action is chosen where the model stands. Why:
  a trial is about 40% fewer tokens, so an update costs about 40% less, and
  "what I did and where it led" is one token a later visit can find in one
  hop.

Every message is a block whose tokens do not depend on its neighbours (it
starts and ends at a special token or a space, where tokenizers split), so
``TextTokenizer`` tokenizes each distinct block once and builds trials by
NumPy indexing, and an agent extends a trial's tokens step by step without
re-tokenizing its past; ``tests/test_tokenize_text.py`` checks both claims
against tokenizing the whole text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from icrl_course.envs import ACTION_NAMES, LakeMap
from icrl_course.tokenize.base import EncodedTrial
from icrl_course.tokenize.compact import CompactTokenizer
from icrl_course.trials import Trial

CELL_WORD = r"u(\d+)d(\d+)l(\d+)r(\d+)"
"""A cell written as its wall distances (``cells="walls"``): ``u0d2l1r3``, one group per distance."""

CELL_STYLES = ("index", "walls")
"""How a format writes a cell: its index ``row * ncol + col`` (the paper's) or its capped wall distances."""


class TextFormatError(ValueError):
    """A tokenizer cannot carry a text format; the message says which piece fails and what to do."""


@dataclass(frozen=True)
class TextFormat:
    """The strings of a text format (see the module docstring for the layout they fill)."""

    name: str
    begin: str
    """Opens the trial, and every episode when ``begin_every_episode``."""
    begin_every_episode: bool
    end_of_episode: str
    """Closes every episode."""
    header_start: str = ""
    """Opens a message's header (its role); '' writes messages without headers."""
    header_end: str = ""
    separator: str = ""
    """Between a header and the content."""
    turn_end: str = ""
    """Closes every message."""
    special_tokens: tuple[str, ...] = ()
    """Strings that must be single (special) tokens of the tokenizer."""
    cells: str = "index"
    """``index`` or ``walls`` (``CELL_STYLES``)."""
    edge_cap: int = 4
    """``walls`` only: wall distances are capped here, as in ``CompactTokenizer``."""
    action_words: tuple[str, str, str, str] = ACTION_NAMES
    """The words of actions 0, 1, 2, 3 (gymnasium: left, down, right, up)."""
    truncated_text: str = "..."
    """Content of the ``edit`` message written when the step limit cut an episode."""
    end_names_outcome: bool = False
    """Write each episode's end as one word naming how and where it ended (``end_word``), not ``end_of_episode``
    (which stays a word of the vocabulary, used for padding)."""
    end_names_move: bool = False
    """With ``end_names_outcome``: after the end word, one more word naming the move that ended the episode, the
    cell it was taken from and the action (``move_word``), so that "this action from this cell ended badly"
    is one word a later visit to the cell can find in one hop of attention. Headerless formats only."""
    fuse_steps: bool = False
    """Write each step's action and landing cell as one word (``step_word``), and read Q-values at the token
    before it, as the logits of the plain action words. Headerless formats only."""

    def __post_init__(self) -> None:
        if self.cells not in CELL_STYLES:
            raise ValueError(f"TextFormat.cells={self.cells!r} must be one of {CELL_STYLES}")
        if self.end_names_move and (not self.end_names_outcome or self.header_start):
            raise ValueError("TextFormat.end_names_move needs end_names_outcome=True and a format without headers")
        if self.fuse_steps and self.header_start:
            raise ValueError("TextFormat.fuse_steps needs a format without headers (a step is one word)")

    def message(self, role: str, content: str) -> str:
        if not self.header_start:
            return f"{content}{self.turn_end}"
        return f"{self.header_start}{role}{self.header_end}{self.separator}{content}{self.turn_end}"

    @property
    def action_prompt(self) -> str:
        """The text before an action word; Q-values are read at its last token (or the token before the word)."""
        return f"{self.header_start}action{self.header_end}{self.separator}" if self.header_start else ""

    def end_word(self, terminated: bool, truncated: bool, reward: float, cell_text: str) -> str:
        """The word closing an episode when ``end_names_outcome``: ``e`` + ``T`` (terminated) and/or ``C`` (cut
        by the step limit) + the last reward (``format_reward``) + the cell it ended on, e.g. ``eT1.0u2d0l2r0``."""
        if not (terminated or truncated):
            raise ValueError("an episode ends terminated, truncated or both")
        return f"e{'T' if terminated else ''}{'C' if truncated else ''}{format_reward(reward)}{cell_text}"

    def move_word(self, terminated: bool, truncated: bool, reward: float, cell_text: str, action: int) -> str:
        """The word after the end word when ``end_names_move``: ``m`` + how and reward as in ``end_word`` + the
        cell the last step left + its action word, e.g. ``mT0.0u1d2l0r2down`` (went down from there and fell)."""
        return "m" + self.end_word(terminated, truncated, reward, cell_text)[1:] + self.action_words[int(action)]

    def step_word(self, action: int, cell_text: str) -> str:
        """A step's word when ``fuse_steps``: the action word, ``>``, the cell it landed on: ``down>u1d2l0r2``."""
        return f"{self.action_words[int(action)]}>{cell_text}"

    def cell_texts(self, nrow: int, ncol: int) -> list[str]:
        """How every cell ``0..nrow*ncol-1`` of a map of this shape is written."""
        cells = np.arange(nrow * ncol)
        if self.cells == "index":
            return [str(c) for c in cells]
        walls = CompactTokenizer(edge_cap=self.edge_cap).cell_fields(cells, nrow, ncol)
        return [f"u{u}d{d}l{l}r{r}" for u, d, l, r in walls]

    def cell_of(self, text: str, nrow: int, ncol: int) -> int:
        """The cell a cell text names on a map of this shape (the inverse of ``cell_texts``)."""
        if self.cells == "index":
            return int(text)
        match = re.fullmatch(CELL_WORD, text)
        if match is None:
            raise ValueError(f"{text!r} is not a cell of the {self.name} format (e.g. u0d2l1r3)")
        return int(CompactTokenizer(edge_cap=self.edge_cap).cells(np.array([int(g) for g in match.groups()]), nrow, ncol))

    def vocabulary(self, max_side: int, rewards: Sequence[float] = (1.0,)) -> list[str]:
        """Every word (whitespace-separated piece, special tokens aside) the format writes on maps up to
        ``max_side`` x ``max_side`` with these rewards: what a word-level tokenizer for it must know."""
        texts = [*self.action_words, self.truncated_text, self.end_of_episode, *map(format_reward, rewards)]
        if self.header_start:
            texts += ["observation", "action", "reward", "edit"]
        if self.cells == "index":
            texts += [str(c) for c in range(max_side * max_side)]
        else:
            cap = min(self.edge_cap, max_side - 1)
            cells = [f"u{u}d{d}l{l}r{r}" for u in range(cap + 1) for d in range(cap + 1)
                     for l in range(cap + 1) for r in range(cap + 1)]
            texts += cells
        cell_words = cells if self.cells == "walls" else [str(c) for c in range(max_side * max_side)]
        if self.fuse_steps:
            texts += [self.step_word(a, cell) for a in range(4) for cell in cell_words]
        if self.end_names_outcome:
            texts += [self.end_word(t, c, r, cell) for t, c in ((True, False), (False, True), (True, True))
                      for r in (0.0, *rewards) for cell in cell_words]
        if self.end_names_move:
            texts += [self.move_word(t, c, r, cell, a) for t, c in ((True, False), (False, True), (True, True))
                      for r in (0.0, *rewards) for cell in cell_words for a in range(4)]
        pattern = "|".join(re.escape(s) for s in self.special_tokens) or "$^"
        words = {w for text in texts for w in re.sub(pattern, " ", text).split()}
        return sorted(words)


LLAMA3_SPECIAL = ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")

PAPER = TextFormat(name="paper", begin="<|begin_of_text|>", begin_every_episode=True, end_of_episode="<|end_of_text|>",
                   header_start="<|start_header_id|>", header_end="<|end_header_id|>", turn_end="<|eot_id|>",
                   special_tokens=LLAMA3_SPECIAL)
"""The paper's text, character for character (``Eval.ipynb``: ``reset_to_text``, ``step_to_text``)."""

LLAMA3 = TextFormat(name="llama3", begin="<|begin_of_text|>", begin_every_episode=False, end_of_episode="<|end_of_text|>",
                    header_start="<|start_header_id|>", header_end="<|end_header_id|>", separator="\n\n",
                    turn_end="<|eot_id|>", special_tokens=LLAMA3_SPECIAL)
"""The paper's text with Llama 3's chat-template blank line and one beginning-of-text per trial (reasons above)."""

WORDS = TextFormat(name="words", begin="<trial>", begin_every_episode=False, end_of_episode="end ", turn_end=" ",
                   special_tokens=("<trial>",), cells="walls", edge_cap=2, end_names_outcome=True)
"""One word per message, cells as wall distances capped at 2 (as the small transformer's, for the reason
``tokenize.compact`` gives), episode ends named with their outcome and cell: about two tokens per step,
for small models trained from scratch."""

WORDS_MOVES = replace(WORDS, name="words-moves", end_names_move=True)
"""``WORDS`` with one more word per episode end naming the move that ended it (``TextFormat.end_names_move``):
a lever for the tiny Llama's memory of holes (lesson 6 measures it)."""

WORDS_STEPS = replace(WORDS, name="words-steps", fuse_steps=True)
"""``WORDS`` with one word per step, the action and the landing cell (``TextFormat.fuse_steps``), as the small
transformer's compact tokens: about 40% fewer tokens per trial and about 40% less CPU per run. Measured in
lesson 6 (two seeds, with ``tiny_embedding_init="fields"``): as good as ``WORDS`` on val maps, not better."""

FORMATS = {f.name: f for f in (PAPER, LLAMA3, WORDS, WORDS_MOVES, WORDS_STEPS)}
"""The formats by name, as configs give them."""


def word_fields(word: str) -> list[tuple[str, str]]:
    """The fields a wall-distance cell word or end word is made of, as ``(field, value)`` pairs; [] for any other.

    A cell word ``u1d2l0r2`` is its four wall distances; an end word (``TextFormat.end_word``)
    ``eT0.0u1d2l0r2`` is how the episode ended (``T``, ``C`` or ``TC``), its last reward and the same four
    wall distances; a move word (``TextFormat.move_word``) ``mT0.0u1d2l0r2down`` the same plus the action; a step
    word (``TextFormat.step_word``) ``down>u1d2l0r2`` the action and the four distances.
    ``models.hf.fields_embedding_init`` starts such words' embeddings from these fields."""
    cell = re.fullmatch(CELL_WORD, word)
    if cell:
        return list(zip("udlr", cell.groups()))
    end = re.fullmatch(rf"e(T?C?)(-?\d+(?:\.\d+)?){CELL_WORD}", word)
    if end:
        how, reward, *walls = end.groups()
        return [("end", how), ("reward", reward), *zip("udlr", walls)]
    move = re.fullmatch(rf"m(T?C?)(-?\d+(?:\.\d+)?){CELL_WORD}([a-z]+)", word)
    if move:
        how, reward, *walls, action = move.groups()
        return [("end", how), ("reward", reward), *zip("udlr", walls), ("action", action)]
    step = re.fullmatch(rf"([a-z]+)>{CELL_WORD}", word)
    if step:
        action, *walls = step.groups()
        return [("action", action), *zip("udlr", walls)]
    return []


def format_reward(reward: float) -> str:
    """A reward as the paper writes it: ``round(reward, 2)`` of a float (``1.0``, ``0.5``, ``-1.0``)."""
    return str(round(float(reward), 2))


def trial_text(trial: Trial, fmt: TextFormat = PAPER) -> str:
    """The whole trial as one string, exactly as ``TextTokenizer.encode`` tokenizes it (for reading and tests)."""
    check_contiguous(trial)
    cells = fmt.cell_texts(*trial.lake_map.shape)
    parts = []
    ends = trial.episode_ends
    for t in range(len(trial)):
        start = t == 0 or ends[t - 1]
        if t == 0 or (start and fmt.begin_every_episode):
            parts.append(fmt.begin)
        if start:
            parts.append(fmt.message("observation", cells[trial.obs[t]]))
        if fmt.fuse_steps:
            parts.append(fmt.message("step", fmt.step_word(trial.actions[t], cells[trial.next_obs[t]])))
        else:
            parts.append(fmt.message("action", fmt.action_words[int(trial.actions[t])]))
            parts.append(fmt.message("observation", cells[trial.next_obs[t]]))
        if trial.rewards[t] != 0:
            parts.append(fmt.message("reward", format_reward(trial.rewards[t])))
        if trial.truncated[t]:
            parts.append(fmt.message("edit", fmt.truncated_text))
        if ends[t] and fmt.end_names_outcome:
            parts.append(fmt.message("end", fmt.end_word(trial.terminated[t], trial.truncated[t], trial.rewards[t],
                                                         cells[trial.next_obs[t]])))
            if fmt.end_names_move:
                parts.append(fmt.message("move", fmt.move_word(trial.terminated[t], trial.truncated[t], trial.rewards[t],
                                                               cells[trial.obs[t]], trial.actions[t])))
        elif ends[t]:
            parts.append(fmt.end_of_episode)
    return "".join(parts) if len(trial) else fmt.begin


def check_contiguous(trial: Trial) -> None:
    """Refuse a trial the text cannot carry: inside an episode, ``next_obs[t]`` must be ``obs[t + 1]``.

    The text shows each cell once (where a step lands is where the next one
    starts), so a trial whose steps do not chain would not decode back to itself.
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


class TextTokenizer:
    """Encodes trials in a text format with a Hugging Face tokenizer, step by step for agents, and decodes them.

    Construction checks that the tokenizer can carry the format: each special
    string is one token, and each action word is exactly one token *where it
    appears* (after the action prompt), with four different ids. Those ids,
    ``action_token_ids[a]`` for action ``a``, are where Q-values are read.
    """

    def __init__(self, tokenizer, fmt: TextFormat = PAPER):
        self.tokenizer = tokenizer
        self.fmt = fmt
        for text in fmt.special_tokens:
            self._single_token(text, "special token")
        prompt = self._ids(fmt.action_prompt)
        suffix = self._ids(fmt.turn_end)
        words = []
        for a, word in enumerate(fmt.action_words):
            ids = self._ids(fmt.message("action", word))
            middle = ids[len(prompt):len(ids) - len(suffix)]
            if ids[:len(prompt)] != prompt or ids[len(ids) - len(suffix):] != suffix or len(middle) != 1:
                pieces = tokenizer.convert_ids_to_tokens(middle if ids[:len(prompt)] == prompt else ids)
                raise TextFormatError(
                    f"the action word {word!r} (action {a}) is {len(middle)} tokens {pieces} after the action prompt, "
                    "but Q-values are read as the logits of one token per action: use a tokenizer where each of "
                    f"{list(fmt.action_words)} is a single token there (Llama 3's is), or choose other action_words")
            words.append(middle[0])
        if len(set(words)) != 4:
            raise TextFormatError(f"the action words {list(fmt.action_words)} map to token ids {words}, which are not "
                                  "all different (unknown words become the same [UNK] id?): add them to the vocabulary")
        self.action_token_ids = np.array(words, dtype=np.int64)
        self.prompt_length = len(prompt)
        self._blocks: list[np.ndarray] = []
        self._block_of: dict[tuple[str, str], int] = {}
        self._cells: dict[tuple[int, int], np.ndarray] = {}
        self._cell_texts: dict[tuple[int, int], list[str]] = {}
        self._steps: dict[tuple[int, int], np.ndarray] = {}
        self._begin = self._block_id(("begin", ""), self._single_token(fmt.begin, "beginning"))
        self._end = self._block_id(("end", ""), self._single_token(fmt.end_of_episode, "end of episode"))
        self._truncated = self._block("edit", fmt.truncated_text)
        self._actions = np.array([self._block("action", w) for w in fmt.action_words])
        self._flat, self._starts, self._lengths = self._table()

    # ----------------------------------------------------------------- tokenizer plumbing
    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def _single_token(self, text: str, what: str) -> list[int]:
        ids = self._ids(text)
        if len(ids) != 1:
            raise TextFormatError(
                f"the {what} {text!r} of the {self.fmt.name} format is {len(ids)} tokens for this tokenizer, but it must "
                "be one: use a tokenizer made for the format (a Llama 3 tokenizer for paper and llama3, "
                "models.hf.build_tiny_llama for any), or another format")
        return ids

    def _block_id(self, key: tuple[str, str], ids: Sequence[int]) -> int:
        if key not in self._block_of:
            unknown = getattr(self.tokenizer, "unk_token_id", None)
            if unknown is not None and unknown in ids:
                raise TextFormatError(f"{key[0]} message {key[1]!r} holds a word this tokenizer does not know (it became "
                                      f"{self.tokenizer.unk_token!r}): build the tokenizer's vocabulary for the "
                                      f"{self.fmt.name} format (models.hf.build_tiny_llama does)")
            self._block_of[key] = len(self._blocks)
            self._blocks.append(np.asarray(ids, dtype=np.int64))
            self._flat = None
        return self._block_of[key]

    def _block(self, role: str, content: str) -> int:
        """Index of the block for one message, tokenized once and remembered."""
        key = (role, content)
        if key not in self._block_of:
            self._block_id(key, self._ids(self.fmt.message(role, content)))
        return self._block_of[key]

    def _table(self):
        lengths = np.array([len(b) for b in self._blocks], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return np.concatenate(self._blocks), starts, lengths

    def cell_texts(self, nrow: int, ncol: int) -> list[str]:
        """``fmt.cell_texts`` for this shape, computed once."""
        key = (int(nrow), int(ncol))
        if key not in self._cell_texts:
            self._cell_texts[key] = self.fmt.cell_texts(*key)
        return self._cell_texts[key]

    def cell_blocks(self, nrow: int, ncol: int) -> np.ndarray:
        """Block index of every cell's observation message on a map of this shape."""
        key = (int(nrow), int(ncol))
        if key not in self._cells:
            self._cells[key] = np.array([self._block("observation", text) for text in self.cell_texts(*key)])
        return self._cells[key]

    def step_blocks(self, nrow: int, ncol: int) -> np.ndarray:
        """``(4, cells)`` block index of every step word (action, landing cell) on a map of this shape
        (``fuse_steps``)."""
        key = (int(nrow), int(ncol))
        if key not in self._steps:
            texts = self.cell_texts(*key)
            self._steps[key] = np.array([[self._block("step", self.fmt.step_word(a, text)) for text in texts]
                                         for a in range(4)])
        return self._steps[key]

    def _reward_blocks(self, rewards: np.ndarray) -> np.ndarray:
        values, inverse = np.unique(rewards, return_inverse=True)
        table = np.array([self._block("reward", format_reward(v)) if v != 0 else -1 for v in values])
        return table[inverse]

    def _end_block(self, terminated: bool, truncated: bool, reward: float, cell: int, shape: tuple[int, int]) -> int:
        """Block index of an episode's end: the format's end marker, or the word naming the outcome."""
        if not self.fmt.end_names_outcome:
            return self._end
        word = self.fmt.end_word(bool(terminated), bool(truncated), reward, self.cell_texts(*shape)[int(cell)])
        return self._block("end", word)

    def _move_block(self, terminated: bool, truncated: bool, reward: float, cell: int, action: int,
                    shape: tuple[int, int]) -> int:
        """Block index of the word naming the move that ended an episode (``TextFormat.end_names_move``)."""
        word = self.fmt.move_word(bool(terminated), bool(truncated), reward, self.cell_texts(*shape)[int(cell)],
                                  action)
        return self._block("move", word)

    @property
    def pad_id(self) -> int:
        """Token used for padding in ``pack``: the end-of-episode token (padding is masked anyway)."""
        return int(self._blocks[self._end][0])

    # ----------------------------------------------------------------- encoding
    def encode(self, trial: Trial) -> EncodedTrial:
        """The trial's tokens, the position of every step's Q-values, and its per-step arrays."""
        check_contiguous(trial)
        n = len(trial)
        # begin, start cell, action (or the step word), landing cell, reward, edit, end, move
        columns = np.full((n, 8), -1, dtype=np.int64)
        if n:
            cells = self.cell_blocks(*trial.lake_map.shape)
            ends = trial.episode_ends
            start = np.concatenate([[True], ends[:-1]])
            first = start if self.fmt.begin_every_episode else np.arange(n) == 0
            columns[:, 0] = np.where(first, self._begin, -1)
            columns[:, 1] = np.where(start, cells[trial.obs], -1)
            if self.fmt.fuse_steps:
                columns[:, 2] = self.step_blocks(*trial.lake_map.shape)[trial.actions, trial.next_obs]
            else:
                columns[:, 2] = self._actions[trial.actions]
                columns[:, 3] = cells[trial.next_obs]
            columns[:, 4] = self._reward_blocks(trial.rewards)
            columns[:, 5] = np.where(trial.truncated, self._truncated, -1)
            columns[:, 6] = np.where(ends, self._end, -1)
            if self.fmt.end_names_outcome:
                for t in np.flatnonzero(ends):  # at most one per episode
                    columns[t, 6] = self._end_block(trial.terminated[t], trial.truncated[t], trial.rewards[t],
                                                    trial.next_obs[t], trial.lake_map.shape)
                    if self.fmt.end_names_move:
                        columns[t, 7] = self._move_block(trial.terminated[t], trial.truncated[t], trial.rewards[t],
                                                         trial.obs[t], trial.actions[t], trial.lake_map.shape)
        if self._flat is None:
            self._flat, self._starts, self._lengths = self._table()
        sequence = columns.ravel() if n else np.array([self._begin])
        keep = sequence >= 0
        lengths = self._lengths[sequence[keep]]
        out_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        offsets = np.arange(int(lengths.sum())) - np.repeat(out_starts, lengths)
        tokens = self._flat[np.repeat(self._starts[sequence[keep]], lengths) + offsets]
        block_start = np.full(keep.shape, -1, dtype=np.int64)
        block_start[keep] = out_starts
        q_positions = block_start.reshape(-1, 8)[:, 2] + self.prompt_length - 1 if n else np.zeros(0, dtype=np.int64)
        return EncodedTrial(tokens, q_positions, trial.actions.copy(), trial.rewards.copy(),
                            trial.terminated.copy(), trial.truncated.copy(), trial.episode.copy())

    def prompt_tokens(self, cell: int, shape: tuple[int, int], trial_start: bool, episode_start: bool) -> np.ndarray:
        """What the model reads before it acts: at an episode start the beginning marker (as the format says)
        and the start cell, then the action prompt. Inside an episode the cell is already written."""
        parts = []
        if trial_start or (episode_start and self.fmt.begin_every_episode):
            parts.append(self._blocks[self._begin])
        if episode_start or trial_start:
            parts.append(self._blocks[self.cell_blocks(*shape)[int(cell)]])
        parts.append(self._blocks[self._actions[0]][:self.prompt_length])
        return np.concatenate(parts)

    def after_action_tokens(self, obs: int, action: int, reward: float, next_obs: int, shape: tuple[int, int],
                            terminated: bool, truncated: bool) -> np.ndarray:
        """What follows the action prompt once the step from cell ``obs`` is known: the action word, the landing
        cell, the reward, and any episode end (with ``end_names_move``, the move from ``obs`` that ended it).
        ``prompt_tokens`` and these in turn give exactly ``encode(trial).tokens``."""
        if not 0 <= int(action) <= 3:
            raise ValueError(f"action {action} is not an action: actions are 0 (left), 1 (down), 2 (right), 3 (up)")
        if self.fmt.fuse_steps:
            parts = [self._blocks[self.step_blocks(*shape)[int(action), int(next_obs)]]]
        else:
            parts = [self._blocks[self._actions[int(action)]][self.prompt_length:],
                     self._blocks[self.cell_blocks(*shape)[int(next_obs)]]]
        if reward != 0:
            parts.append(self._blocks[self._block("reward", format_reward(reward))])
        if truncated:
            parts.append(self._blocks[self._truncated])
        if terminated or truncated:
            parts.append(self._blocks[self._end_block(terminated, truncated, reward, next_obs, shape)])
            if self.fmt.end_names_move:
                parts.append(self._blocks[self._move_block(terminated, truncated, reward, obs, action, shape)])
        return np.concatenate(parts)

    # ----------------------------------------------------------------- decoding
    def messages(self, tokens: Sequence[int]) -> list[tuple[str, str]]:
        """The trial's messages as ``(role, content)`` pairs; ``("begin", "")`` and ``("end", "")`` for the markers."""
        ids = [int(t) for t in tokens]
        begin, end = int(self._blocks[self._begin][0]), int(self._blocks[self._end][0])
        if not self.fmt.header_start:
            return [self._word_message(i, t, begin, end) for i, t in enumerate(ids)]
        header_start, header_end, turn_end = (self._single_token(s, "marker")[0] for s in
                                              (self.fmt.header_start, self.fmt.header_end, self.fmt.turn_end))
        out, i = [], 0
        while i < len(ids):
            tok = ids[i]
            if tok in (begin, end):
                out.append(("begin" if tok == begin else "end", ""))
                i += 1
            elif tok == header_start:
                try:
                    h = ids.index(header_end, i)
                    e = ids.index(turn_end, h)
                except ValueError:
                    raise ValueError(f"token {i} opens a message that is never closed: the tokens are cut or not in the "
                                     f"{self.fmt.name} format") from None
                # no role or content of these formats holds a space; word-level decoders put spaces between tokens
                role = "".join(self.tokenizer.decode(ids[i + 1:h]).split())
                content = "".join(self.tokenizer.decode(ids[h + 1:e]).split())
                out.append((role, content))
                i = e + 1
            else:
                raise ValueError(f"token {i} ({self.tokenizer.convert_ids_to_tokens([tok])[0]!r}) is outside any message: "
                                 f"the tokens are not in the {self.fmt.name} format")
        return out

    def _word_message(self, i: int, token: int, begin: int, end: int) -> tuple[str, str]:
        """The message one token is in a format without headers, told by the word itself."""
        if token in (begin, end):
            return ("begin" if token == begin else "end", "")
        if token in self.action_token_ids:
            return ("action", self.fmt.action_words[int(np.flatnonzero(self.action_token_ids == token)[0])])
        word = self.tokenizer.convert_ids_to_tokens([token])[0]
        if self.fmt.end_names_outcome and re.fullmatch(r"e(T|C|TC)-?\d+\.\d+(u\d+d\d+l\d+r\d+|\d+)", word):
            return ("end", word)
        if self.fmt.end_names_move and re.fullmatch(r"m(T|C|TC)-?\d+\.\d+(u\d+d\d+l\d+r\d+|\d+)[a-z]+", word):
            return ("move", word)
        if self.fmt.fuse_steps and re.fullmatch(r"[a-z]+>(u\d+d\d+l\d+r\d+|\d+)", word):
            return ("step", word)
        if word == self.fmt.truncated_text:
            return ("edit", word)
        if re.fullmatch(r"-?\d+\.\d+", word):
            return ("reward", word)
        if re.fullmatch(r"u\d+d\d+l\d+r\d+|\d+", word):
            return ("observation", word)
        raise ValueError(f"token {i} ({word!r}) is no word of the {self.fmt.name} format")

    def decode(self, tokens: Sequence[int], lake_map: LakeMap) -> Trial:
        """The ``Trial`` that ``encode`` turned into ``tokens`` (``lake_map`` is not in the text, so pass it).

        An episode closed by the end marker without the ``edit`` message was
        terminated; with it, it was truncated, and also terminated when it
        ended on a hole or goal of ``lake_map`` (the limit and the ending fell
        on the same step).
        """
        words = {w: a for a, w in enumerate(self.fmt.action_words)}
        steps: list[list] = []  # obs, action, reward, next_obs, terminated, truncated
        current = None  # the cell the agent stands on
        for k, (role, content) in enumerate(self.messages(tokens)):
            if role == "begin":
                if k != 0 and not self.fmt.begin_every_episode:
                    raise ValueError("the begin marker appears inside the trial: decode one trial at a time")
            elif role == "observation":
                current = self.fmt.cell_of(content, *lake_map.shape)
                if steps and steps[-1][3] is None:
                    steps[-1][3] = current
            elif role == "action":
                if current is None or content not in words:
                    raise ValueError(f"message {k}: action {content!r} without an observation before it, or not one of {list(words)}")
                steps.append([current, words[content], 0.0, None, False, False])
            elif role == "step" and self.fmt.fuse_steps:
                word, _, cell = content.partition(">")
                if current is None or word not in words:
                    raise ValueError(f"message {k}: step {content!r} without an observation before it, or its action "
                                     f"is not one of {list(words)}")
                landed = self.fmt.cell_of(cell, *lake_map.shape)
                steps.append([current, words[word], 0.0, landed, False, False])
                current = landed
            elif role == "reward":
                steps[-1][2] = float(content)
            elif role == "edit" and content == self.fmt.truncated_text:
                steps[-1][5] = True
            elif role == "end":
                if content:  # a word naming the outcome says whether the episode terminated
                    steps[-1][4] = content[1] == "T"
                else:
                    steps[-1][4] = not steps[-1][5] or lake_map.flat[steps[-1][3]] in "HG"
                current = None
            elif role == "move" and self.fmt.end_names_move:
                last = steps[-1] if steps else None
                if last is None or content != self.fmt.move_word(last[4], last[5], last[2],
                                                                 self.cell_texts(*lake_map.shape)[last[0]], last[1]):
                    raise ValueError(f"message {k}: the move word {content!r} does not name the step that ended the "
                                     "episode before it: the tokens are not an encoded trial")
            else:
                raise ValueError(f"message {k} has role {role!r} and content {content!r}, which the {self.fmt.name} "
                                 "format does not use")
        if steps and steps[-1][3] is None:
            raise ValueError("the last action has no observation after it: the tokens are cut inside a step")
        return Trial.from_steps(lake_map, [tuple(s) for s in steps])
