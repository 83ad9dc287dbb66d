"""The sequence DQN objective: TD targets at every step of a batch of trials in one pass.

Why this module: an in-context learner reads a whole trial and outputs Q-values
at every step's position, so one forward pass gives Q(s_t, .) for all t at
once. The successor state of step t is simply step t+1 of the same row, which
makes the TD target of every step a shifted view of the same tensors: no
replay of single transitions, no Python loop over steps.

Everything here works on *step-level* tensors of shape ``(B, N, 4)`` (B rows,
N steps, four actions), as gathered at a ``StepBatch``'s ``q_index``. It does
not care which model produced them: the small transformer and the Llama
wrapper share it.

Choices, stated once (each has a test in ``tests/test_dqn.py``):

* **Double DQN by default** (van Hasselt et al. 2016): the online network picks
  the next action, the target network evaluates it. The argmax runs over the
  four actions only (the paper's code ran it over the whole vocabulary).
  ``double=False`` gives plain DQN, where the target network both picks and
  evaluates.
* **Terminal steps do not bootstrap**: reaching a hole or goal ends the
  return, so the target is the (scaled) reward alone.
* **Time-limit truncation is not termination**: the episode was cut, the state
  after the cut still has value. But that state is not in the context (the
  next token is the next episode's start), so there is nothing to bootstrap
  from. Such a step is *masked out of the loss* rather than treated as
  terminal, which would teach the model that running out of time is a dead
  end. The same holds for the last step of a row cut by packing. With
  ``n_step > 1`` a step whose n-step window meets such a cut bootstraps from
  the last state before the cut instead (a shorter return), so only the cut
  step itself is lost. n-step returns are biased off-policy: the actions inside
  the window are the behaviour policy's, not the greedy one's.
* **Padding contributes nothing**: steps where ``step_mask`` is False are
  neither targets nor successors.
* **Episodes are separate returns by default** (``episode_discount`` 0, as the
  paper's code: its ``episode_value_discount`` is 0). A positive
  ``episode_discount`` makes the trial one return, as in RL^2 (Duan et al.
  2016): an episode's last step, whether it ended in a hole, at the goal or at
  the time limit, also borrows ``episode_discount`` times the value of the next
  episode's first state in the same trial, so what an episode reveals is worth
  something to the episodes after it. Only the trial's last episode ends the
  return.
* **The target network stays in float32**: bfloat16 rounds away any Polyak step
  smaller than about 2^-8 of a weight, so a bfloat16 target stops about
  2^-8 / tau of each weight short of the online one (another flaw of the
  paper's code); ``polyak_update`` refuses a low-precision target.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("huber", "mse")


@dataclass(frozen=True)
class DQNConfig:
    """Hyper-parameters of the sequence DQN objective; ``TrainConfig`` takes its defaults from here.

    The paper's: ``gamma`` 0.9, ``tau`` 0.1, one-step double DQN. Ours: ``reward_scale`` 1 (the paper's 30
    suits a pre-trained Llama's logit scale, not a network trained from scratch) and the Huber loss (the
    paper divides a squared error by the batch's mean target).
    """

    gamma: float = 0.9
    """Discount factor per step (the paper's)."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before entering targets (1 leaves them as they are; the paper uses 30)."""
    double: bool = True
    """Double DQN (online network picks the next action, target network evaluates); False = plain DQN."""
    n_step: int = 1
    """Steps of real rewards before bootstrapping (1 = one-step TD, the paper's choice)."""
    loss: str = "huber"
    """'huber' (smooth L1, robust to large early TD errors) or 'mse'."""
    huber_delta: float = 1.0
    """Where the Huber loss turns from quadratic to linear, in scaled-reward units."""
    tau: float = 0.1
    """Polyak step of the target network after every optimiser step (the paper's 0.1; 1.0 = hard copy)."""
    episode_discount: float = 0.0
    """Discount from an episode's last step to the next episode's first state of the same trial (0: every
    episode's return ends with it, the paper's choice; one-step targets only)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"DQNConfig.gamma={self.gamma} must lie in [0, 1]")
        if not self.reward_scale > 0:
            raise ValueError(f"DQNConfig.reward_scale={self.reward_scale} must be positive (1.0 leaves rewards as they are)")
        if not isinstance(self.n_step, int) or self.n_step < 1:
            raise ValueError(f"DQNConfig.n_step={self.n_step!r} must be an int >= 1 (1 = one-step TD)")
        if self.loss not in LOSSES:
            raise ValueError(f"DQNConfig.loss={self.loss!r} must be one of {LOSSES}")
        if not self.huber_delta > 0:
            raise ValueError(f"DQNConfig.huber_delta={self.huber_delta} must be positive")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"DQNConfig.tau={self.tau} must lie in (0, 1] (1.0 copies the online network)")
        if not 0.0 <= self.episode_discount <= 1.0:
            raise ValueError(f"DQNConfig.episode_discount={self.episode_discount} must lie in [0, 1] (0: episodes "
                             "are separate returns)")
        if self.episode_discount and self.n_step > 1:
            raise ValueError(f"DQNConfig.episode_discount={self.episode_discount} works with one-step targets only: "
                             f"set n_step=1 (it is {self.n_step}) or episode_discount=0")


def bootstrap_values(online_q: torch.Tensor, target_q: torch.Tensor, double: bool = True) -> torch.Tensor:
    """V(s_j) for every step j, ``(B, N)``: the value a TD target borrows from the future.

    Double DQN: ``target_q[j, argmax_a online_q[j, a]]``; plain DQN: ``max_a target_q[j, a]``.
    """
    if double:
        best = online_q.argmax(dim=-1, keepdim=True)
        return target_q.gather(-1, best).squeeze(-1)
    return target_q.max(dim=-1).values


def _shift(x: torch.Tensor, k: int, fill) -> torch.Tensor:
    """``x[:, t + k]`` at index t, with ``fill`` past the end of the row."""
    if k == 0:
        return x
    tail = torch.full_like(x[:, :k], fill)
    return torch.cat([x[:, k:], tail], dim=1)


@torch.no_grad()
def td_targets(
    online_q: torch.Tensor,
    target_q: torch.Tensor,
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    has_next: torch.Tensor,
    step_mask: torch.Tensor,
    *,
    gamma: float = 0.9,
    reward_scale: float = 1.0,
    double: bool = True,
    n_step: int = 1,
    episode_discount: float = 0.0,
    in_trial: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """TD targets for every step of every row, and which of them are usable.

    Args:
        online_q, target_q: ``(B, N, 4)`` Q-values of the online and target
            networks at the steps (a network's ``q_values`` of a ``StepBatch``).
        rewards, terminated, has_next, step_mask: ``(B, N)`` as in ``StepBatch``;
            ``has_next[t]`` says step t+1 is the next state of the same episode.
        gamma, reward_scale, double, n_step, episode_discount: see ``DQNConfig``.
        in_trial: ``(B, N)``, needed when ``episode_discount`` is positive: step t+1 of the row is a
            real step of the same trial (``next_in_trial``), the next episode's first when step t ended one.

    Returns:
        ``(targets, valid)``, both ``(B, N)``:
        ``targets[t] = sum_{k<m} gamma^k * scale * r[t+k] + gamma^m * V(s[t+m])``
        where the sum stops at the first terminal step (no bootstrap) or at
        ``m = n_step``, or earlier at a cut (truncation or end of row) after
        which the next state is unknown. ``valid`` is False for padding and
        for steps cut before their first successor, which have no target.
        With ``episode_discount`` (one-step only), an episode's last step
        followed by another episode of its trial gets
        ``scale * r[t] + episode_discount * V(s[t+1])`` instead, and is valid.
    """
    if episode_discount and (n_step > 1 or in_trial is None):
        raise ValueError("episode_discount needs one-step targets (n_step=1) and in_trial (next_in_trial(batch))")
    values = bootstrap_values(online_q.float(), target_q.float(), double)
    rewards = rewards.float() * reward_scale
    has_next = has_next.bool().clone()
    has_next[:, -1:] = False  # the last step of a row has no step t + 1 to bootstrap from
    index = torch.arange(rewards.shape[1], device=rewards.device).expand_as(rewards)

    ret = torch.zeros_like(rewards)
    alive = step_mask.bool().clone()          # still walking forward from step t, standing on s[t+k]
    ended = torch.zeros_like(alive)           # reached a terminal step: no bootstrap
    boot_at = torch.zeros_like(index)         # m: how many rewards were summed before bootstrapping
    cut_first = torch.zeros_like(alive)       # cut before step t's own successor: no target at all
    for k in range(n_step):                   # a loop over the n-step horizon, never over positions
        term_k = _shift(terminated.bool(), k, False)
        next_k = _shift(has_next.bool(), k, False)
        known = term_k | next_k               # what follows s[t+k] is known: a terminal or s[t+k+1]
        stop = alive & ~known                 # cut here: bootstrap from s[t+k] itself
        boot_at = torch.where(stop, k, boot_at)
        cut_first |= stop & (k == 0)
        take = alive & known
        ret += torch.where(take, gamma**k * _shift(rewards, k, 0.0), 0.0)
        ended |= take & term_k
        alive = take & ~term_k
    boot_at = torch.where(alive, n_step, boot_at)
    bootstrap = ~ended & ~cut_first & step_mask.bool()
    future = values.gather(1, (index + boot_at).clamp(max=rewards.shape[1] - 1))
    targets = ret + torch.where(bootstrap, gamma ** boot_at.float() * future, 0.0)
    valid = has_target(terminated, has_next, step_mask, in_trial if episode_discount else None)
    if episode_discount:
        crossing = step_mask.bool() & in_trial.bool() & ~has_next  # an episode's last step; its trial goes on
        targets = torch.where(crossing, rewards + episode_discount * _shift(values, 1, 0.0), targets)
    return targets, valid


def next_in_trial(batch) -> torch.Tensor:
    """``(B, N)``: step t+1 of the row is a real step of the same trial as step t (from ``segment_ids``)."""
    segments = batch.segment_ids.gather(1, batch.q_index.long())
    real = batch.step_mask.bool()
    return real & _shift(real, 1, False) & (segments == _shift(segments, 1, -1))


def has_target(terminated: torch.Tensor, has_next: torch.Tensor, step_mask: torch.Tensor,
               in_trial: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, N)``: the steps that get a TD target (``td_targets``' ``valid``, the steps the loss averages over).

    A real step has one when what follows it is known: it ended in a terminal, or the next step of the
    same row continues its episode, or (``in_trial``, when episodes share a return) the next step of the
    row belongs to its trial. Known before any forward pass, so an update split into several passes
    (``train.loop.dqn_update``) can weight each pass's mean loss by its share of these steps.
    """
    follows = has_next.bool().clone()
    follows[:, -1:] = False
    if in_trial is not None:
        follows |= in_trial.bool()
    return step_mask.bool() & (terminated.bool() | follows)


def dqn_loss(
    online_q: torch.Tensor,
    actions: torch.Tensor,
    targets: torch.Tensor,
    valid: torch.Tensor,
    loss: str = "huber",
    huber_delta: float = 1.0,
) -> torch.Tensor:
    """Mean TD loss between ``Q(s_t, a_t)`` and the targets over the valid steps (0 when none is)."""
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} must be one of {LOSSES}")
    taken = online_q.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1).float()
    if loss == "huber":
        per_step = F.huber_loss(taken, targets, reduction="none", delta=huber_delta)
    else:
        per_step = F.mse_loss(taken, targets, reduction="none")
    per_step = torch.where(valid, per_step, 0.0)
    return per_step.sum() / valid.sum().clamp(min=1)


def sequence_dqn_loss(online_q: torch.Tensor, target_q: torch.Tensor, batch, config: DQNConfig = DQNConfig()):
    """The whole objective for a ``StepBatch``: targets, loss, and a few numbers worth logging.

    ``online_q`` (with gradients) and ``target_q`` are ``(B, N, 4)`` at the
    batch's steps. Returns ``(loss, metrics)``; ``metrics`` holds detached
    scalars: mean Q of the taken actions, mean target, mean absolute TD error
    and the number of steps that entered the loss.
    """
    targets, valid = td_targets(
        online_q.detach(), target_q, batch.rewards, batch.terminated, batch.has_next, batch.step_mask,
        gamma=config.gamma, reward_scale=config.reward_scale, double=config.double, n_step=config.n_step,
        episode_discount=config.episode_discount, in_trial=next_in_trial(batch) if config.episode_discount else None,
    )
    loss = dqn_loss(online_q, batch.actions, targets, valid, config.loss, config.huber_delta)
    with torch.no_grad():
        taken = online_q.gather(-1, batch.actions.long().unsqueeze(-1)).squeeze(-1).float()
        count = valid.sum().clamp(min=1)
        metrics = {
            "q_taken": (torch.where(valid, taken, 0.0).sum() / count).detach(),
            "target": (torch.where(valid, targets, 0.0).sum() / count).detach(),
            "abs_td_error": (torch.where(valid, (taken - targets).abs(), 0.0).sum() / count).detach(),
            "steps": valid.sum().detach(),
        }
    return loss, metrics


# --------------------------------------------------------------------------- target networks
def _named_tensors(obj: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        return {**dict(obj.named_parameters()), **dict(obj.named_buffers())}
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"expected an nn.Module or a dict of tensors, got {type(obj).__name__}")


def make_target(online: nn.Module | Mapping[str, torch.Tensor]):
    """A frozen float32 copy of a network (or of a dict of tensors, e.g. adapter weights).

    The copy never receives gradients; ``polyak_update`` moves it towards the online weights.
    """
    if isinstance(online, nn.Module):
        target = copy.deepcopy(online)
        for tensor in _named_tensors(target).values():
            if tensor.is_floating_point():
                tensor.data = tensor.data.float()
        target.requires_grad_(False)
        return target
    return {name: (t.detach().float() if t.is_floating_point() else t.detach()).clone()
            for name, t in _named_tensors(online).items()}


@torch.no_grad()
def polyak_update(target: nn.Module | Mapping[str, torch.Tensor], online: nn.Module | Mapping[str, torch.Tensor], tau: float) -> None:
    """In place: ``target <- (1 - tau) * target + tau * online``, tensor by tensor, matched by name.

    Works on two ``nn.Module``s (parameters and buffers) or two dicts of
    tensors. Floating-point target tensors must be float32 or float64: a
    bfloat16 target would round most small steps away.
    """
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"tau={tau} must lie in (0, 1] (1.0 copies the online weights)")
    targets, onlines = _named_tensors(target), _named_tensors(online)
    if targets.keys() != onlines.keys():
        missing = sorted(onlines.keys() - targets.keys())[:3]
        extra = sorted(targets.keys() - onlines.keys())[:3]
        raise ValueError(f"target and online tensors differ by name (missing in target: {missing}, extra: {extra}): "
                         "build the target with make_target(online)")
    for name, t in targets.items():
        o = onlines[name]
        if t.shape != o.shape:
            raise ValueError(f"{name}: target shape {tuple(t.shape)} != online shape {tuple(o.shape)}")
        if t.is_floating_point():
            if t.dtype not in (torch.float32, torch.float64):
                raise ValueError(f"{name}: the target is {t.dtype}; keep target weights in float32 "
                                 "(make_target does) or small Polyak steps round away")
            t.lerp_(o.to(t.dtype), tau)
        else:
            t.copy_(o)
