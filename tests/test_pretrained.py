"""Every shipped checkpoint learns in context: on unseen test maps its last episode beats its first.

The claim of lessons 5 and 6 for the models they ship (``paper-small``, the
small transformer; ``tiny-llama``, the Hugging Face Llama), checked on
held-out maps with frozen weights: the paired bootstrap over maps of
(success in episode 10 - success in episode 1) must lie above zero, at 95%.
On 60 maps it takes seconds; ``benchmarks/icl_curve.py`` gives the full
curve on 200 maps.
"""

import numpy as np
import pytest

from icrl_course.checkpoints import available, load_agent
from icrl_course.evaluate import held_out_maps
from icrl_course.trials import run_trials

MAPS = 60


def paired_gain_interval(first: np.ndarray, last: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of ``last - first`` over maps (maps resampled in pairs)."""
    diff = np.asarray(last, dtype=np.float64) - np.asarray(first, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def test_the_paired_interval_is_right_on_hand_made_maps():
    assert paired_gain_interval(np.zeros(10), np.ones(10)) == (1.0, 1.0)  # every map gains 1
    low, high = paired_gain_interval(np.array([0, 1] * 10), np.array([1, 0] * 10))  # gains +1 and -1 cancel
    assert low < 0 < high


@pytest.mark.parametrize("name", available())
def test_a_shipped_model_succeeds_more_in_episode_10_than_in_episode_1_on_unseen_maps(name):
    table = run_trials(load_agent(name), held_out_maps(MAPS, seed=1), episodes=10, seed=1, max_episode_steps=25).table
    success = table.pivot(index="lake", columns="episode", values="success").to_numpy(dtype=np.float64)
    low, _ = paired_gain_interval(success[:, 0], success[:, -1])
    assert low > 0, f"{name}: episode 10 - episode 1 success {success[:, -1].mean() - success[:, 0].mean():.2f}, " \
                    f"95% CI low {low:.2f}"
