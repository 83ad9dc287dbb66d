"""The course's central claim, guarded on the shipped checkpoint: on test maps it never saw, `paper-small`'s
success rises from episode 1 to episode 10 with frozen weights, and it does not when its context is wiped
at every episode start (so the rise comes from the context).

Thresholds are confidence intervals, not numbers copied from a run: the claim must hold with a 95% paired
bootstrap CI over 100 test-split maps, whatever checkpoint is shipped. Lesson 5 prints the same numbers
(same maps, seeds and bootstrap) in `# NBVAL_CHECK_OUTPUT` cells.
"""

import numpy as np
import pandas as pd
import pytest

from icrl_course.checkpoints import load_agent
from icrl_course.evaluate import compare_agents, held_out_maps

N_MAPS, MAP_SEED, PLAY_SEED, BOOT_SEED = 100, 0, 0, 0


def paired_bootstrap(after: np.ndarray, before: np.ndarray, n_boot: int = 10_000, seed: int = 0,
                     confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``after - before`` (paired by map) and its percentile bootstrap CI, resampling maps."""
    diff = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    rows = np.random.default_rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(diff[rows].mean(axis=1), [tail, 100 - tail])
    return float(diff.mean()), float(low), float(high)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    maps = held_out_maps(N_MAPS, seed=MAP_SEED)
    agents = {"transformer": load_agent("paper-small"),
              "context reset": load_agent("paper-small", reset_context_every_episode=True)}
    return compare_agents(agents, maps, episodes=10, max_episode_steps=25, seed=PLAY_SEED)


def success_by_map(table: pd.DataFrame, agent: str) -> pd.DataFrame:
    """Maps x episodes (1..10) of 0/1 success for one agent."""
    wide = table[table["agent"] == agent].pivot(index="lake", columns="episode", values="success").astype(float)
    wide.columns = wide.columns + 1
    return wide


def test_paired_bootstrap_on_a_hand_case():
    after, before = np.array([1, 1, 1, 0]), np.array([0, 0, 1, 0])
    mean, low, high = paired_bootstrap(after, before, n_boot=4000, seed=0)
    assert mean == 0.5 and 0.0 <= low < 0.5 < high <= 1.0  # differences 1, 1, 0, 0: every resample lies in [0, 1]
    assert paired_bootstrap(before, before) == (0.0, 0.0, 0.0)


def test_the_shipped_checkpoint_learns_in_context_on_test_maps(table: pd.DataFrame):
    success = success_by_map(table, "transformer")
    assert len(success) == N_MAPS
    gain, low, high = paired_bootstrap(success[10], success[1], seed=BOOT_SEED)
    assert low > 0, f"episode 10 - episode 1 success {gain:+.2f}, 95% CI [{low:+.2f}, {high:+.2f}] includes 0"


def test_the_context_reset_ablation_is_flat(table: pd.DataFrame):
    success = success_by_map(table, "context reset")
    gain, low, high = paired_bootstrap(success[10], success[1], seed=BOOT_SEED)
    assert low <= 0 <= high, f"with the context wiped, episode 10 - episode 1 = {gain:+.2f}, CI [{low:+.2f}, {high:+.2f}]"
    full = success_by_map(table, "transformer")
    _, low, _ = paired_bootstrap(full[10] - full[1], success[10] - success[1], seed=BOOT_SEED)
    assert low > 0, "the transformer's gain should exceed the ablation's with a paired CI excluding 0"
