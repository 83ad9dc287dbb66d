"""What the training loop, evaluation and checkpoints need from a Q-network, whatever model is inside.

Why a protocol: lesson 5's small transformer and lesson 6's Hugging Face
Llama are trained by the same recipe (play, replay, double DQN with a Polyak
target, evaluation on held-out maps, checkpoints), so one loop
(``icrl_course.train.loop``) trains both, and anything written against this
protocol works for either. Two classes implement it:

* ``models.agent.TransformerQNetwork``: ``QTransformer`` reading compact tokens;
* ``models.hf.HFQNetwork``: any causal LM reading a text format, whole or with
  peft adapters (IA3, LoRA), Q-values being the logits of the four action words.

A network is also an ``nn.Module`` whose ``forward(batch)`` equals
``q_values(batch)``, so ``DistributedDataParallel`` can wrap it; ``ReadsTrials``
holds that and the tokenizer plumbing both implementations share.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from icrl_course.tokenize.base import EncodedTrial, StepBatch
from icrl_course.trials import Agent, Trial


@runtime_checkable
class QNetwork(Protocol):
    """A Q-network: trials in, Q-values of the four actions at every step out."""

    def encode(self, trial: Trial) -> EncodedTrial:
        """The trial as this network's tokens, with the position of every step's Q-values."""

    @property
    def pad_id(self) -> int:
        """The token ``pack`` pads rows with."""

    @property
    def device(self) -> torch.device:
        """Where its weights live; batches go there."""

    def q_values(self, batch: StepBatch) -> torch.Tensor:
        """``(B, N, 4)`` float32 Q-values at every step of a packed batch (with gradients when training)."""

    def trainable(self) -> dict[str, torch.Tensor]:
        """The tensors training changes, by name, live: exactly what a checkpoint saves and loads."""

    def parameters(self):
        """The module's parameters; the optimiser takes those that require gradients."""

    def make_target(self) -> "QNetwork":
        """A frozen float32 copy for double DQN's target, sharing frozen weights where it can (a peft adapter
        shares the base). ``dqn.polyak_update(target.trainable(), online.trainable(), tau)`` moves it."""

    def agent(self, epsilon: float = 0.0, reset_context_every_episode: bool = False,
              name: str | None = None) -> Agent:
        """An agent that acts greedily (or epsilon-greedily) on these Q-values, reading its trial through a KV cache."""


class ReadsTrials:
    """What both implementations share: trials are read through ``self.tokenizer``, and calling the network
    (``forward``) gives the Q-values."""

    tokenizer: object

    def encode(self, trial: Trial) -> EncodedTrial:
        return self.tokenizer.encode(trial)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_id

    def q_values(self, batch: StepBatch) -> torch.Tensor:
        return self(batch)
