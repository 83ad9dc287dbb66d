"""The sequence DQN objective against targets and losses computed by hand.

The toy row used throughout (gamma 0.5, reward scale 2): episode 0 has three
steps and ends on the goal (reward 1, terminated); episode 1 has two steps and
is cut by the time limit; the sixth step is padding.

    step          0     1     2      3     4       5
    reward        0.25  0     1      0     0       (pad)
    terminated                yes
    truncated                              yes
    has_next      yes   yes   no     yes   no      no
"""


import numpy as np
import pytest
import torch
from torch import nn

from icrl_course import dqn
from icrl_course.dqn import (DQNConfig, dqn_loss, has_target, make_target, next_in_trial, polyak_update, sequence_dqn_loss,
                             td_targets)
from icrl_course.tokenize.base import EncodedTrial, pack

GAMMA, SCALE = 0.5, 2.0


def toy():
    t = lambda rows: torch.tensor([rows], dtype=torch.float32)  # noqa: E731
    target_q = t([[1, 2, 3, 4], [5, 1, 7, 2], [3, 3, 3, 3], [2, 8, 1, 1], [6, 6, 6, 6], [100, 100, 100, 100]])
    online_q = t([[0, 0, 0, 0], [9, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 5], [0, 0, 0, 0], [50, 50, 50, 50]])
    b = lambda xs: torch.tensor([xs], dtype=torch.bool)  # noqa: E731
    return dict(
        online_q=online_q, target_q=target_q,
        rewards=torch.tensor([[0.25, 0, 1, 0, 0, 7]]),
        terminated=b([0, 0, 1, 0, 0, 0]), has_next=b([1, 1, 0, 1, 0, 0]), step_mask=b([1, 1, 1, 1, 1, 0]),
    )


def encoded_trial(n, ends_at, reward=0.0):
    """An encoded trial of n steps, one token each, whose episodes end (terminated) at the steps ``ends_at``."""
    ends = np.zeros(n, dtype=bool)
    ends[ends_at] = True
    episode = np.concatenate([[0], np.cumsum(ends)[:-1]])
    return EncodedTrial(np.arange(n + 1), np.arange(n), np.zeros(n, dtype=np.int64), np.full(n, reward),
                        ends.copy(), np.zeros(n, dtype=bool), episode)


def targets_of(**kw):
    return td_targets(**toy(), gamma=GAMMA, reward_scale=SCALE, **kw)


def test_double_dqn_targets_match_hand_computation():
    targets, valid = targets_of(double=True)
    # step 0: online argmax at step 1 is action 0, the target network values it 5.
    # step 1: bootstraps from step 2 (all values 3). step 2: goal, no bootstrap.
    # step 3: online argmax at step 4 is 0, valued 6.
    expected = [SCALE * 0.25 + GAMMA * 5, 0 + GAMMA * 3, SCALE * 1, 0 + GAMMA * 6]
    assert torch.allclose(targets[0, :4], torch.tensor(expected))
    assert valid.tolist() == [[True, True, True, True, False, False]]


def test_plain_dqn_takes_the_target_networks_own_max_where_double_differs():
    double, _ = targets_of(double=True)
    plain, _ = targets_of(double=False)
    assert plain[0, 0] == pytest.approx(SCALE * 0.25 + GAMMA * 7)  # max of [5, 1, 7, 2]
    assert torch.equal(plain[0, 1:4], double[0, 1:4])  # ties or identical choices elsewhere


def test_terminal_step_does_not_bootstrap_from_the_next_episode():
    base, _ = targets_of()
    data = toy()
    data["target_q"][0, 3] += 1000.0  # step 3 is the first state of the *next* episode
    data["online_q"][0, 3] += 1000.0
    changed, _ = td_targets(**data, gamma=GAMMA, reward_scale=SCALE)
    assert changed[0, 2] == base[0, 2] == SCALE * 1.0


def test_truncated_step_is_masked_out_not_treated_as_terminal():
    _, valid = targets_of()
    assert not valid[0, 4]  # cut by the time limit: its next state is not in the context


def test_step_that_is_terminated_and_truncated_counts_as_terminal():
    data = toy()
    data["terminated"][0, 4] = True  # the 100th step lands in a hole: both flags set, has_next False
    targets, valid = td_targets(**data, gamma=GAMMA, reward_scale=SCALE)
    assert valid[0, 4] and targets[0, 4] == 0.0


def test_reward_scale_multiplies_rewards_but_not_bootstrapped_values():
    one, _ = td_targets(**toy(), gamma=GAMMA, reward_scale=1.0)
    thirty, _ = td_targets(**toy(), gamma=GAMMA, reward_scale=30.0)
    assert thirty[0, 2] == 30.0 and one[0, 2] == 1.0
    assert thirty[0, 0] - one[0, 0] == pytest.approx(29 * 0.25)


def test_n_step_targets_sum_rewards_then_bootstrap_or_stop_at_ends():
    targets, valid = targets_of(n_step=2)
    expected = [
        SCALE * 0.25 + GAMMA * 0 + GAMMA**2 * 3,  # two rewards, then V(step 2)
        0 + GAMMA * SCALE * 1,                    # reaches the goal inside the window: no bootstrap
        SCALE * 1,                                # terminal itself
        0 + GAMMA * 6,                            # window meets the cut at step 4: bootstrap from step 4
    ]
    assert torch.allclose(targets[0, :4], torch.tensor(expected))
    assert valid.tolist() == [[True, True, True, True, False, False]]


def test_three_step_targets_by_hand_stop_at_the_goal_and_at_the_cut():
    targets, valid = targets_of(n_step=3)
    expected = [
        SCALE * 0.25 + GAMMA * 0 + GAMMA**2 * SCALE * 1,  # 0.5 + 0 + 0.25 * 2: the goal ends the window
        0 + GAMMA * SCALE * 1,                            # 1.0: the goal one step on
        SCALE * 1,                                        # 2.0: terminal itself
        0 + GAMMA * 6,                                    # 3.0: step 4 is cut, so V(step 4) ends the window
    ]
    assert targets[0, :4].tolist() == pytest.approx([1.0, 1.0, 2.0, 3.0]) == expected
    assert valid.tolist() == [[True, True, True, True, False, False]]


def test_padding_changes_neither_targets_nor_loss():
    data = toy()
    actions = torch.tensor([[1, 0, 2, 3, 0, 0]])
    loss = dqn_loss(data["online_q"], actions, *td_targets(**data, gamma=GAMMA))
    data["online_q"][0, 5] = -1e6
    data["target_q"][0, 5] = 1e6
    data["rewards"][0, 5] = 1e6
    assert dqn_loss(data["online_q"], actions, *td_targets(**data, gamma=GAMMA)) == loss


def test_huber_and_squared_losses_match_hand_computation():
    online_q = torch.tensor([[[0.5, 0, 0, 0], [0, 4.0, 0, 0], [9, 9, 9, 9]]])
    actions = torch.tensor([[0, 1, 2]])
    targets = torch.tensor([[0.0, 1.0, 0.0]])
    valid = torch.tensor([[True, True, False]])
    # errors 0.5 (quadratic zone: 0.5 * 0.25) and 3 (linear zone: 1 * (3 - 0.5)); step 2 invalid.
    assert dqn_loss(online_q, actions, targets, valid, "huber", 1.0).item() == pytest.approx((0.125 + 2.5) / 2)
    assert dqn_loss(online_q, actions, targets, valid, "mse").item() == pytest.approx((0.25 + 9.0) / 2)


def test_gradient_reaches_only_the_taken_action_at_valid_steps():
    data = toy()
    online = data["online_q"].clone().requires_grad_(True)
    data["online_q"] = online
    actions = torch.tensor([[1, 0, 2, 3, 0, 0]])
    batch = type("B", (), dict(rewards=data["rewards"], terminated=data["terminated"], has_next=data["has_next"],
                                step_mask=data["step_mask"], actions=actions))
    loss, metrics = sequence_dqn_loss(online, data["target_q"], batch, DQNConfig(gamma=GAMMA, reward_scale=SCALE))
    loss.backward()
    grad = online.grad[0]
    taken = torch.zeros_like(grad, dtype=torch.bool)
    taken[torch.arange(4), actions[0, :4]] = True
    assert torch.all(grad[:4][~taken[:4]] == 0) and torch.all(grad[:4][taken[:4]] != 0)
    assert torch.all(grad[4:] == 0)
    assert metrics["steps"].item() == 4


def test_no_valid_step_gives_zero_loss_not_nan():
    online_q = torch.zeros(1, 2, 4)
    loss = dqn_loss(online_q, torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.bool))
    assert loss.item() == 0.0


def test_targets_from_a_packed_batch_respect_trial_and_episode_boundaries():
    """Two trials in one row: the last step of the first trial must not bootstrap from the second."""
    batch = pack([encoded_trial(3, [1]), encoded_trial(2, [])], context_length=16)
    assert batch.has_next.tolist() == [[True, False, False, True, False]]
    q = torch.arange(20, dtype=torch.float32).reshape(1, 5, 4)
    targets, valid = td_targets(q, q, batch.rewards, batch.terminated, batch.has_next, batch.step_mask, gamma=1.0)
    # step 2 ends its row's first trial without terminating: no successor, no target.
    assert valid.tolist() == [[True, True, False, True, False]]
    assert targets[0, 0] == q[0, 1].max()


def test_episode_discount_carries_value_into_the_next_episode_of_the_trial():
    # toy(), one trial: step 2 reaches the goal and step 3 opens the next episode; step 4 is cut by the time limit
    # and followed by padding. With episode_discount 0.25 the goal step also borrows 0.25 x V(s3): the online
    # argmax at step 3 is action 3, which the target network values 1.
    in_trial = torch.tensor([[True, True, True, True, False, False]])
    base, base_valid = targets_of()
    targets, valid = targets_of(episode_discount=0.25, in_trial=in_trial)
    assert targets[0, 2] == pytest.approx(SCALE * 1 + 0.25 * 1)
    assert torch.equal(targets[0, [0, 1, 3]], base[0, [0, 1, 3]]) and torch.equal(valid, base_valid)
    # A step cut by the time limit followed by another episode of its trial now has a target: the next
    # episode's first state (step 5 made real: online argmax 0, valued 100 by the target network).
    data = toy()
    data["step_mask"][0, 5] = True
    cut = torch.tensor([[True, True, True, True, True, False]])
    targets, valid = td_targets(**data, gamma=GAMMA, reward_scale=SCALE, episode_discount=0.25, in_trial=cut)
    assert valid.tolist() == [[True, True, True, True, True, False]]
    assert targets[0, 4] == pytest.approx(0.25 * 100)
    assert torch.equal(has_target(data["terminated"], data["has_next"], data["step_mask"], cut), valid)
    with pytest.raises(ValueError, match="in_trial"):
        targets_of(episode_discount=0.25)


def test_next_in_trial_stops_at_the_end_of_a_trial_not_of_an_episode():
    """Two packed trials: the first ends an episode at its step 1 and goes on; its step 2 is its last."""
    batch = pack([encoded_trial(3, [1, 2], reward=1.0), encoded_trial(2, [1], reward=1.0)], context_length=16)
    assert next_in_trial(batch).tolist() == [[True, True, False, True, False]]
    q = torch.arange(20, dtype=torch.float32).reshape(1, 5, 4)
    targets, valid = td_targets(q, q, batch.rewards, batch.terminated, batch.has_next, batch.step_mask, gamma=0.5,
                                episode_discount=0.5, in_trial=next_in_trial(batch))
    # step 1 ends an episode: reward 1 plus half of step 2's best value (11); step 2 ends the first trial and
    # step 4 the second: reward alone, never a value from the other trial
    assert targets[0].tolist() == [1 + 0.5 * 7, 1 + 0.5 * 11, 1, 1 + 0.5 * 19, 1]
    assert valid.all()


def test_config_rejects_bad_values_naming_the_field():
    for field, value in (("gamma", 1.5), ("n_step", 0), ("loss", "l1"), ("tau", 0.0), ("reward_scale", -1.0),
                         ("episode_discount", -0.1)):
        with pytest.raises(ValueError, match=field):
            DQNConfig(**{field: value})
    with pytest.raises(ValueError, match="n_step=1"):
        DQNConfig(episode_discount=0.5, n_step=3)


# --------------------------------------------------------------------------- target networks
def test_polyak_update_moves_a_module_by_tau():
    online = nn.Linear(3, 2)
    target = make_target(online)
    before = target.weight.clone()
    with torch.no_grad():
        online.weight.add_(1.0)
    polyak_update(target, online, tau=0.1)
    assert torch.allclose(target.weight, 0.9 * before + 0.1 * online.weight)
    assert not any(p.requires_grad for p in target.parameters())


def test_polyak_update_works_on_dicts_of_adapter_tensors():
    online = {"ia3.l": torch.ones(4, dtype=torch.bfloat16)}
    target = make_target(online)
    assert target["ia3.l"].dtype == torch.float32
    online["ia3.l"] = torch.full((4,), 2.0, dtype=torch.bfloat16)
    polyak_update(target, online, tau=0.25)
    assert torch.allclose(target["ia3.l"], torch.full((4,), 1.25))


def test_float32_target_keeps_steps_that_bfloat16_would_round_away():
    online = {"w": torch.full((1,), 1.0 + 2**-6, dtype=torch.bfloat16)}
    target = make_target({"w": torch.ones(1)})
    polyak_update(target, online, tau=0.01)
    assert target["w"].item() == pytest.approx(1.0 + 0.01 * 2**-6)
    bf16 = torch.ones(1, dtype=torch.bfloat16).lerp_(online["w"], 0.01)
    assert bf16.item() == 1.0  # the same step in bfloat16 is lost
    with pytest.raises(ValueError, match="float32"):
        polyak_update({"w": torch.ones(1, dtype=torch.bfloat16)}, online, tau=0.01)


def test_polyak_update_with_tau_one_copies_and_mismatched_names_error():
    online = {"a": torch.randn(2)}
    target = make_target({"a": torch.zeros(2)})
    polyak_update(target, online, tau=1.0)
    assert torch.equal(target["a"], online["a"])
    with pytest.raises(ValueError, match="make_target"):
        polyak_update({"b": torch.zeros(2)}, online, tau=0.5)


def test_has_next_on_the_last_step_of_a_row_is_ignored():
    data = toy()
    data["has_next"][0, 5] = True
    data["step_mask"][0, 5] = True
    targets, valid = td_targets(**data, gamma=GAMMA, reward_scale=SCALE)
    assert not valid[0, 5]


def test_which_steps_have_a_target_is_known_from_the_batch_alone():
    # toy(): steps 0, 1 and 3 are followed by their episode's next step, step 2 reaches the goal, step 4 is cut
    # by the time limit, step 5 is padding; a has_next on a row's last step has no step to follow it.
    data = toy()
    data["has_next"][0, 5] = True
    assert has_target(data["terminated"], data["has_next"], data["step_mask"]).tolist() == [[True] * 4 + [False] * 2]
    data["step_mask"][0, 5] = True
    assert has_target(data["terminated"], data["has_next"], data["step_mask"]).tolist() == [[True] * 4 + [False] * 2]
