"""Bootstrap confidence intervals over maps: the one resampling routine every summary in the course uses.

Why maps: the maps are the random sample an experiment draws (a new set of
maps would give a different number), while episodes and steps on one map are
not independent. So every interval resamples *maps* with replacement and keeps
each resampled map's whole record.

Why paired differences: two agents played on the same maps share each map's
difficulty. Resampling the map indices jointly for both (``paired_difference``)
keeps that shared part out of the difference's uncertainty; resampling them
independently (``unpaired_difference``) counts it twice and gives a far wider
interval when per-map values are correlated, as they are between any two
agents on easy and hard maps.

All intervals are percentile bootstraps: the central ``confidence`` share of
``n_boot`` resampled means. Everything is seeded: the same ``seed`` gives the
same interval, and with an int seed every call draws the same resamples for
the same number of maps.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from icrl_course.runtime import as_rng


class Interval(NamedTuple):
    """A mean with its bootstrap confidence interval (arrays when the values had extra axes)."""

    mean: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray


def _as_values(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0 or len(values) == 0:
        raise ValueError(f"{name} needs one value per map (a non-empty array whose first axis is maps), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} holds NaN or infinite values: every map needs a finite value")
    return values


def _check(confidence: float, n_boot: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie strictly between 0 and 1 (0.95 for a 95% interval)")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r} must be an int >= 1 (2000 is plenty for a 95% interval)")


def resample_counts(n: int, n_boot: int, seed: int | np.random.Generator | None) -> np.ndarray:
    """``(n_boot, n)``: how often each of ``n`` maps is drawn in each resample (each row sums to ``n``)."""
    return as_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot)


def bootstrap_means(values, n_boot: int = 2000, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """``(n_boot, ...)`` means of ``values`` (maps on the first axis) over maps resampled with replacement.

    Extra axes (episodes, say) are resampled together: one resample draws
    whole maps, so all episodes of a map come along.
    """
    values = _as_values(values, "values")
    counts = resample_counts(len(values), n_boot, seed)
    return np.tensordot(counts, values, axes=(1, 0)) / len(values)


def mean_ci(values, confidence: float = 0.95, n_boot: int = 2000,
            seed: int | np.random.Generator | None = 0) -> Interval:
    """The mean of ``values`` over maps (first axis) and its percentile bootstrap interval."""
    _check(confidence, n_boot)
    values = _as_values(values, "values")
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(bootstrap_means(values, n_boot, seed), [tail, 100 - tail], axis=0)
    mean = values.mean(axis=0)
    return Interval(*(float(x) if np.ndim(x) == 0 else x for x in (mean, low, high)))


def paired_difference(a, b, confidence: float = 0.95, n_boot: int = 2000,
                      seed: int | np.random.Generator | None = 0) -> Interval:
    """Mean of ``a - b`` with an interval from resampling map indices *jointly* for both.

    ``a[i]`` and ``b[i]`` must be the two agents' values on the same map ``i``
    (same maps, same play seed). Resampling pairs is resampling the per-map
    differences, so this is ``mean_ci(a - b)``.
    """
    a, b = _as_values(a, "a"), _as_values(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a has shape {a.shape} and b {b.shape}: a paired difference needs one value of each per map, same maps in the same order")
    return mean_ci(a - b, confidence, n_boot, seed)


def unpaired_difference(a, b, confidence: float = 0.95, n_boot: int = 2000,
                        seed: int | np.random.Generator | None = 0) -> Interval:
    """Mean of ``a`` minus mean of ``b`` with ``a``'s and ``b``'s maps resampled independently.

    The right interval when the two sets of maps are different samples; on
    the same maps it ignores the pairing and is too wide (see the module docstring).
    """
    _check(confidence, n_boot)
    a, b = _as_values(a, "a"), _as_values(b, "b")
    rng = as_rng(seed)
    diff = bootstrap_means(a, n_boot, rng) - bootstrap_means(b, n_boot, rng)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(diff, [tail, 100 - tail], axis=0)
    mean = a.mean(axis=0) - b.mean(axis=0)
    return Interval(*(float(x) if np.ndim(x) == 0 else x for x in (mean, low, high)))
