"""The small transformer at work: an agent that acts on the trial so far, and the transformer as a ``QNetwork``.

Why a KV cache: the context grows by one token per step, and re-reading a
3,000-step trial at every step would cost thousands of times the work of the
new token. Here each step feeds one compact token per lake, for all B lakes in
one batched forward, and the cache keeps every earlier token's keys and
values (``benchmarks/kv_cache.py`` measures the difference).

The tokens are built by the same ``CompactTokenizer.step_tokens`` that
``encode`` uses for training, so the model acts on exactly the inputs it was
trained on: a test checks that acting step by step gives the Q-values of a
full forward pass over the encoded trial.

``TransformerQNetwork`` pairs the network with its tokenizer so that the
training loop can treat it like any other ``models.protocol.QNetwork``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from icrl_course.dqn import make_target
from icrl_course.envs import LakeMap
from icrl_course.models.transformer import KVCache, QTransformer
from icrl_course.runtime import NumericalError, as_rng
from icrl_course.models.protocol import ReadsTrials
from icrl_course.tokenize.base import StepBatch
from icrl_course.tokenize.compact import STEP, TRIAL_START, CompactTokenizer, kind_after
from icrl_course.trials import Transition


def epsilon_greedy(q: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """The greedy action of every row of ``(B, 4)`` Q-values, each replaced by a uniform one with probability ``epsilon``.

    Non-finite Q-values are refused with a ``NumericalError``: argmax would read NaN as "action 0" and the agent
    would play on silently, scored by an evaluation as if its network were fine.
    """
    if not np.isfinite(q).all():
        lakes = int((~np.isfinite(q)).any(axis=-1).sum())
        raise NumericalError(f"the network computed NaN or infinite Q-values on {lakes} of {len(q)} lakes: it is "
                             "damaged or diverged in training; retrain it, or load an earlier checkpoint")
    actions = q.argmax(axis=1)
    if epsilon > 0.0:
        explore = rng.random(len(actions)) < epsilon
        actions = np.where(explore, rng.integers(0, 4, size=len(actions)), actions)
    return actions.astype(np.int64)


class TransformerAgent:
    """Acts greedily (or epsilon-greedily) on the Q-values a ``QTransformer`` reads off the trial so far.

    Args:
        model: the Q-network; it runs in eval mode while acting and is left in the mode it was in.
        tokenizer: must match the model's ``field_sizes``.
        epsilon: probability of a uniformly random action instead of the
            greedy one (drawn from the generator ``begin`` receives).
        reset_context_every_episode: the first-episode-only ablation: at every
            episode start the context is wiped, so the model sees each episode
            as if it were the first of a fresh trial and cannot learn from the
            earlier ones.
        name: the ``agent`` column in ``run_trials`` tables.

    After ``act``, ``last_q`` holds the ``(B, 4)`` Q-values it acted on.
    """

    def __init__(
        self,
        model: QTransformer,
        tokenizer: CompactTokenizer = CompactTokenizer(),
        epsilon: float = 0.0,
        reset_context_every_episode: bool = False,
        name: str = "transformer",
    ):
        if tuple(tokenizer.field_sizes) != tuple(model.config.field_sizes):
            raise ValueError(f"tokenizer field_sizes {tokenizer.field_sizes} differ from the model's "
                             f"{model.config.field_sizes}: build both from the same CompactTokenizer")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon={epsilon} is a probability: it must lie in [0, 1]")
        self.model, self.tokenizer, self.epsilon = model, tokenizer, float(epsilon)
        self.reset_context_every_episode = reset_context_every_episode
        self.name = name
        self.cache: KVCache | None = None
        self.last_q: np.ndarray | None = None

    def begin(self, maps: Sequence[LakeMap], rng: np.random.Generator | int | None = None) -> None:
        """Start an empty context on each of the B maps (only their shapes are read)."""
        num_lakes = len(maps)
        self.nrow = np.array([m.nrow for m in maps])
        self.ncol = np.array([m.ncol for m in maps])
        self.rng = as_rng(rng)
        self.cache = self.model.new_cache(num_lakes)
        self.kind = np.full(num_lakes, TRIAL_START)
        self.prev_action = np.zeros(num_lakes, dtype=np.int64)
        self.prev_reward = np.zeros(num_lakes)
        self.ended_obs = np.full(num_lakes, -1)
        self.origin = np.full(num_lakes, -1)  # each lake's trial's first cell (tokens with offsets read it)
        self.forget = np.zeros(num_lakes, dtype=bool)  # wipe these lakes' context before the next token

    @torch.no_grad()
    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Feed the current step's token of every lake and return its ``(B, 4)`` Q-values."""
        if self.cache is None:
            raise RuntimeError("call begin(maps, rng) before acting")
        obs = np.asarray(obs)
        if obs.shape != self.nrow.shape:
            raise ValueError(f"obs has shape {obs.shape}; expected ({len(self.nrow)},), one observation per lake")
        if self.forget.any():
            self.cache.reset(torch.from_numpy(self.forget))
            self.forget[:] = False
        self.origin = np.where(self.kind == TRIAL_START, obs, self.origin)
        ids = self.tokenizer.step_tokens(obs, self.nrow, self.ncol, self.kind, self.prev_action,
                                         self.prev_reward, self.ended_obs, self.origin)
        ids = torch.from_numpy(ids).to(self.model.device)[:, None]
        if self.model.config.dropout == 0.0 or not self.model.training:
            # Eval mode only turns dropout off: without dropout the two modes compute the same, and switching
            # modes walks the whole module tree twice per step (17% of a training iteration's CPU time).
            return self.model(ids, cache=self.cache)[:, 0].float().cpu().numpy()
        self.model.eval()  # a training loop may lend us its model: give it back as it was
        try:
            return self.model(ids, cache=self.cache)[:, 0].float().cpu().numpy()
        finally:
            self.model.train()

    def act(self, obs: np.ndarray) -> np.ndarray:
        self.last_q = self.q_values(obs)
        return epsilon_greedy(self.last_q, self.epsilon, self.rng)

    def observe(self, step: Transition) -> None:
        """Remember what the next token must say: the action taken, its reward, and any episode end."""
        actions = np.asarray(step.actions)
        if np.any((actions < 0) | (actions > 3)):
            bad = actions[(actions < 0) | (actions > 3)][0]
            raise ValueError(f"observed action {bad}: actions must be 0 (left), 1 (down), 2 (right) or 3 (up)")
        ends = np.asarray(step.terminated) | np.asarray(step.truncated)
        self.prev_action = actions.astype(np.int64)
        self.prev_reward = np.asarray(step.rewards, dtype=np.float64)
        self.kind = np.where(ends, kind_after(np.asarray(step.terminated), np.asarray(step.truncated)), STEP)
        self.ended_obs = np.where(ends, step.next_obs, -1)
        # A finished lake's padding steps, and (in the ablation) every new episode, start from an empty context.
        restart = ~np.asarray(step.active, dtype=bool)
        if self.reset_context_every_episode:
            restart |= ends
        self.kind = np.where(restart, TRIAL_START, self.kind)
        self.forget |= restart


class TransformerQNetwork(ReadsTrials, nn.Module):
    """``QTransformer`` and its ``CompactTokenizer`` as a ``models.protocol.QNetwork``.

    Every weight trains; the target is a float32 copy (``make_target``).
    """

    def __init__(self, model: QTransformer, tokenizer: CompactTokenizer):
        super().__init__()
        if tuple(tokenizer.field_sizes) != tuple(model.config.field_sizes):
            raise ValueError(f"tokenizer field_sizes {tokenizer.field_sizes} differ from the model's "
                             f"{model.config.field_sizes}: build both from the same CompactTokenizer")
        self.model, self.tokenizer = model, tokenizer

    @property
    def device(self) -> torch.device:
        return self.model.device

    def forward(self, batch: StepBatch) -> torch.Tensor:
        return self.model.q_values(batch)

    def trainable(self) -> dict[str, torch.Tensor]:
        return dict(self.model.named_parameters())

    def make_target(self) -> "TransformerQNetwork":
        return make_target(self)

    def agent(self, epsilon: float = 0.0, reset_context_every_episode: bool = False,
              name: str | None = None) -> TransformerAgent:
        return TransformerAgent(self.model, self.tokenizer, epsilon=epsilon,
                                reset_context_every_episode=reset_context_every_episode, name=name or "transformer")
