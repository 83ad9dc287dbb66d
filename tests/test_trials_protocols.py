"""The play protocols every agent shares: a recorded prefix before play, and maps switched at episode k."""

import numpy as np
import pytest
import torch

from icrl_course.baselines import ExplorerAgent, ForgetfulExplorer, OracleAgent, QLearningAgent, RandomAgent
from icrl_course.envs import LakeMap
from icrl_course.envs.scenarios import paper_stitching_case
from icrl_course.models.agent import TransformerAgent
from icrl_course.models.transformer import QTransformer, TransformerConfig
from icrl_course.tokenize.compact import CompactTokenizer
from icrl_course.trials import Trial, run_trials

CORRIDOR = LakeMap.from_rows(["SFFG"])
REVERSED = LakeMap.from_rows(["GFFS"])
SQUARE = LakeMap.from_rows(["SFF", "FHF", "FFG"])


class Spy:
    """Wraps an agent, counting ``begin`` calls and keeping every transition ``observe`` receives."""

    def __init__(self, agent):
        self.agent, self.name = agent, getattr(agent, "name", "spy")
        self.begins, self.steps = 0, []

    def begin(self, maps, rng):
        self.begins += 1
        self.agent.begin(maps, rng)

    def act(self, obs):
        return self.agent.act(obs)

    def observe(self, step):
        self.steps.append(step)
        self.agent.observe(step)


def transformer_agent():
    model = QTransformer(TransformerConfig(n_layer=2, n_head=2, n_embd=16, max_context=512), seed=0).eval()
    return TransformerAgent(model, CompactTokenizer())


AGENTS = {"random": RandomAgent, "q-learning": QLearningAgent, "explorer": ExplorerAgent,
          "forgetful explorer": ForgetfulExplorer, "oracle": OracleAgent, "transformer": transformer_agent}

# Two recorded prefixes of different lengths: corridor 0 -> 3 (goal), and square 0 -> 1 -> 4 (hole) then 0 -> 3 cut off.
PREFIXES = [
    Trial.from_steps(CORRIDOR, [(0, 2, 0.0, 1, False, False), (1, 2, 0.0, 2, False, False), (2, 2, 1.0, 3, True, False)]),
    Trial.from_steps(SQUARE, [(0, 2, 0.0, 1, False, False), (1, 1, 0.0, 4, True, False), (0, 1, 0.0, 3, False, True)]),
]


@pytest.mark.parametrize("name", list(AGENTS))
def test_prefix_steps_reach_every_agents_observe_before_play_and_are_not_counted(name):
    spy = Spy(AGENTS[name]())
    results = run_trials(spy, [CORRIDOR, SQUARE], episodes=2, seed=0, max_episode_steps=6, prefix=PREFIXES)
    assert spy.begins == 1
    for b, prefix in enumerate(PREFIXES):
        seen = [(s.obs[b], s.actions[b], s.next_obs[b], s.terminated[b], s.truncated[b])
                for s in spy.steps[:3] if s.active[b]]
        assert seen == list(zip(prefix.obs, prefix.actions, prefix.next_obs, prefix.terminated, prefix.truncated))
    assert len(results.table) == 2 * 2 and sorted(results.table["episode"].unique()) == [0, 1]
    assert [t.num_episodes for t in results.trials] == [2, 2]
    played = sum(len(t) for t in results.trials)
    assert sum(int(s.active.sum()) for s in spy.steps) == played + len(PREFIXES[0]) + len(PREFIXES[1])


def test_explorer_given_the_paper_stitching_prefix_walks_the_stitched_route_at_once():
    # It knows 8, 9, 10 and 2, 6, 10, 14, 18 are safe and 22 the goal: from 8 the shortest known route is
    # 8 -> 9 -> 10 -> 14 -> 18 -> 22, five moves, all through tiles the two episodes showed.
    case = paper_stitching_case()
    results = run_trials(ExplorerAgent(), [case.lake_map], episodes=1, seed=0, max_episode_steps=20,
                         prefix=[case.prefix()])
    trial = results.trials[0]
    assert list(trial.obs) + [trial.next_obs[-1]] == [8, 9, 10, 14, 18, 22]
    assert bool(results.table["success"].iloc[0])


def test_a_prefix_must_end_with_an_episode_end_and_match_the_maps():
    unfinished = Trial.from_steps(CORRIDOR, [(0, 2, 0.0, 1, False, False)])
    with pytest.raises(ValueError, match="episode end"):
        run_trials(RandomAgent(), [CORRIDOR], episodes=1, seed=0, prefix=[unfinished])
    with pytest.raises(ValueError, match="one recorded trial per map"):
        run_trials(RandomAgent(), [CORRIDOR, SQUARE], episodes=1, seed=0, prefix=PREFIXES[:1])
    with pytest.raises(ValueError, match="same shape"):
        run_trials(RandomAgent(), [SQUARE], episodes=1, seed=0, prefix=PREFIXES[:1])


class AlwaysRight:
    name = "right"

    def begin(self, maps, rng):
        self.n = len(maps)

    def act(self, obs):
        return np.full(self.n, 2)

    def observe(self, step):
        pass


def test_switch_changes_the_map_at_exactly_episode_k_and_keeps_the_agent():
    # Right wins the corridor in 3 moves; on the reversed corridor it starts at 3 against the wall and times out.
    spy = Spy(AlwaysRight())
    table = run_trials(spy, [CORRIDOR], episodes=5, seed=0, max_episode_steps=4, switch=(2, [REVERSED])).table
    assert spy.begins == 1
    assert table["success"].tolist() == [True, True, False, False, False]
    assert table["length"].tolist() == [3, 3, 4, 4, 4]
    assert table["switched"].tolist() == [False, False, True, True, True]
    assert table["digest"].tolist() == [CORRIDOR.digest] * 2 + [REVERSED.digest] * 3
    first_after = next(i for i, s in enumerate(spy.steps) if s.obs[0] == 3)
    assert first_after == 6  # two episodes of 3 steps, then the new map's start


def test_explorer_memory_survives_the_switch_and_the_forgetful_one_drops_it_when_surprised():
    # On the corridor both learn that 1 and 2 are safe and 3 the goal. After the switch to SFHG, 2 is a hole: the
    # plain explorer trusts its memory and walks into it; so does the forgetful one, once, and is surprised there:
    # it forgets the map and keeps only what that step 1 -> 2 showed (1 safe, 2 a hole).
    blocked = LakeMap.from_rows(["SFHG"])
    plain = run_trials(ExplorerAgent(), [CORRIDOR], episodes=4, seed=0, max_episode_steps=6, switch=(2, [blocked]))
    assert plain.table["fell_in_hole"].tolist() == [False, False, True, False]
    forgetful = ForgetfulExplorer()
    run_trials(forgetful, [CORRIDOR], episodes=3, seed=0, max_episode_steps=6, switch=(2, [blocked]))
    assert forgetful.knowledge_rows(0) == ["?FH?"]


def test_switch_is_refused_at_impossible_episodes_or_for_other_shapes():
    with pytest.raises(ValueError, match="1..4"):
        run_trials(RandomAgent(), [CORRIDOR], episodes=5, seed=0, switch=(5, [REVERSED]))
    with pytest.raises(ValueError, match="keeps the shape"):
        run_trials(RandomAgent(), [CORRIDOR], episodes=5, seed=0, switch=(2, [SQUARE]))


# ----------------------------------------------------------------- the transformer reads prefix and switch as context
class RecordingTransformer(TransformerAgent):
    """Keeps, per lake, the Q-values of every active step (prefix included)."""

    def begin(self, maps, rng=None):
        super().begin(maps, rng)
        self.per_lake = [[] for _ in maps]

    def observe(self, step):
        for b in np.flatnonzero(step.active):
            self.per_lake[b].append(self.last_q[b])
        super().observe(step)


def full_pass_q(agent, trial):
    encoded = agent.tokenizer.encode(trial)
    with torch.no_grad():
        return agent.model(torch.from_numpy(encoded.tokens)[None])[0, encoded.q_positions].numpy()


def joined(first: Trial, second: Trial) -> Trial:
    """``first`` then ``second`` as one trial (what the agent read, in order)."""
    fields = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")
    return Trial(second.lake_map, *(np.concatenate([getattr(first, f), getattr(second, f)]) for f in fields),
                 np.concatenate([first.episode, second.episode + first.num_episodes]))


def test_transformer_with_a_prefix_reads_what_it_would_read_fed_the_steps_by_hand():
    base = transformer_agent()
    agent = RecordingTransformer(base.model, base.tokenizer)
    results = run_trials(agent, [CORRIDOR, SQUARE], episodes=3, seed=1, max_episode_steps=6, prefix=PREFIXES)
    for b, prefix in enumerate(PREFIXES):
        expected = full_pass_q(agent, joined(prefix, results.trials[b]))
        np.testing.assert_allclose(np.stack(agent.per_lake[b]), expected, atol=1e-5)


def test_transformer_keeps_its_context_across_a_switch():
    base = transformer_agent()
    agent = RecordingTransformer(base.model, base.tokenizer)
    results = run_trials(agent, [SQUARE], episodes=4, seed=2, max_episode_steps=6,
                         switch=(2, [LakeMap.from_rows(["SFF", "FFH", "GFF"])]))
    np.testing.assert_allclose(np.stack(agent.per_lake[0]), full_pass_q(agent, results.trials[0]), atol=1e-5)
