"""Bootstrap intervals over maps, checked on cases whose answer is known by hand or in closed form."""

import numpy as np
import pytest

from icrl_course.stats import bootstrap_means, mean_ci, paired_difference, unpaired_difference


def test_two_maps_scoring_0_and_1_give_the_whole_range_as_the_95_percent_interval():
    # Resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: the 2.5% and 97.5% points are 0 and 1.
    ci = mean_ci([0.0, 1.0], n_boot=4000, seed=0)
    assert (ci.mean, ci.low, ci.high) == (0.5, 0.0, 1.0)


def test_resampled_means_of_two_maps_take_their_three_values_in_binomial_shares():
    boot = bootstrap_means([0.0, 1.0], n_boot=20_000, seed=1)
    shares = [np.mean(boot == v) for v in (0.0, 0.5, 1.0)]
    np.testing.assert_allclose(shares, [0.25, 0.5, 0.25], atol=0.01)


def test_equal_values_on_every_map_leave_no_uncertainty():
    assert tuple(mean_ci(np.full(7, 0.3))) == pytest.approx((0.3, 0.3, 0.3))


def test_interval_width_matches_the_normal_approximation_on_many_maps():
    values = np.arange(100) % 2  # mean 0.5, population sd 0.5: standard error 0.05
    ci = mean_ci(values, n_boot=4000, seed=2)
    assert ci.high - ci.low == pytest.approx(2 * 1.96 * 0.05, rel=0.1)


def test_paired_interval_sees_a_constant_gain_that_the_unpaired_one_drowns_in_map_difficulty():
    # Agent b is agent a plus exactly 1 on every map; maps differ a lot (0..9). Per-map differences are all 1,
    # so the paired interval is [1, 1]. Resampled independently, the difference has variance 2 * var(a) / n =
    # 2 * 8.25 / 10 = 1.65 (sd 1.285): the unpaired 95% interval is about 1 +- 1.96 * 1.285 and contains 0.
    a = np.arange(10.0)
    b = a + 1.0
    paired = paired_difference(b, a, n_boot=4000, seed=3)
    assert tuple(paired) == pytest.approx((1.0, 1.0, 1.0))
    unpaired = unpaired_difference(b, a, n_boot=4000, seed=3)
    assert unpaired.mean == pytest.approx(1.0)
    assert unpaired.low < 0 < unpaired.high
    assert (unpaired.high - unpaired.low) / 2 == pytest.approx(1.96 * np.sqrt(1.65), rel=0.15)


def test_extra_axes_are_resampled_together_with_their_map():
    values = np.array([[0.0, 0.0], [1.0, 1.0]])  # both episodes of a map always move together
    boot = bootstrap_means(values, n_boot=500, seed=4)
    np.testing.assert_array_equal(boot[:, 0], boot[:, 1])


def test_same_seed_same_interval():
    values = np.random.default_rng(0).random(30)
    assert mean_ci(values, seed=5) == mean_ci(values, seed=5)


@pytest.mark.parametrize("call, message", [
    (lambda: mean_ci([]), "one value per map"),
    (lambda: mean_ci([1.0, np.nan]), "NaN"),
    (lambda: mean_ci([1.0], confidence=95), "between 0 and 1"),
    (lambda: paired_difference([1.0, 2.0], [1.0]), "same maps"),
])
def test_bad_inputs_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
