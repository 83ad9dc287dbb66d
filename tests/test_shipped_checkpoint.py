"""The course's central claim, guarded on the shipped checkpoints of both model kinds: on test maps they never
saw, the success of `paper-small` (lesson 5's transformer) and of `tiny-llama` (lesson 6's Llama) rises from
episode 1 to episode 10 with frozen weights, and it does not when the context is wiped at every episode
start (so the rise comes from the context).

Thresholds are confidence intervals, not numbers copied from a run: the claim must hold with a 95% paired
bootstrap CI over 100 test-split maps, whatever checkpoint is shipped. Lesson 5 prints the same numbers
for `paper-small` (same maps, seeds and bootstrap) in `# NBVAL_CHECK_OUTPUT` cells.
"""

import pandas as pd
import pytest

from icrl_course.checkpoints import load_agent
from icrl_course.evaluate import compare_agents, held_out_maps
from icrl_course.stats import paired_difference

N_MAPS, MAP_SEED, PLAY_SEED = 100, 0, 0


@pytest.fixture(scope="module", params=["paper-small", "tiny-llama"])
def table(request) -> pd.DataFrame:
    maps = held_out_maps(N_MAPS, seed=MAP_SEED)
    agents = {"model": load_agent(request.param),
              "context reset": load_agent(request.param, reset_context_every_episode=True)}
    return compare_agents(agents, maps, episodes=10, max_episode_steps=25, seed=PLAY_SEED)


def success_by_map(table: pd.DataFrame, agent: str) -> pd.DataFrame:
    """Maps x episodes (1..10) of 0/1 success for one agent."""
    wide = table[table["agent"] == agent].pivot(index="lake", columns="episode", values="success").astype(float)
    wide.columns = wide.columns + 1
    return wide


def test_the_shipped_checkpoint_learns_in_context_on_test_maps(table: pd.DataFrame):
    success = success_by_map(table, "model")
    assert len(success) == N_MAPS
    gain, low, high = paired_difference(success[10], success[1])
    assert low > 0, f"episode 10 - episode 1 success {gain:+.2f}, 95% CI [{low:+.2f}, {high:+.2f}] includes 0"


def test_the_context_reset_ablation_is_flat(table: pd.DataFrame):
    success = success_by_map(table, "context reset")
    gain, low, high = paired_difference(success[10], success[1])
    assert low <= 0 <= high, f"with the context wiped, episode 10 - episode 1 = {gain:+.2f}, CI [{low:+.2f}, {high:+.2f}]"
    full = success_by_map(table, "model")
    _, low, _ = paired_difference(full[10] - full[1], success[10] - success[1])
    assert low > 0, "the model's gain should exceed the ablation's with a paired CI excluding 0"
