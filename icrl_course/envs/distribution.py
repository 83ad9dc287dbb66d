"""Distributions over Frozen Lake maps, with train/val/test splits fixed by each map's digest.

Why: in-context learning is only shown on maps the model never trained on.
Splitting by seed ("train on seeds 0-999, test on 1000-1199") does not
guarantee that: two seeds can draw the same small map. Here a map's split is a
function of its digest, so a test map can never be drawn for training.

Three splits, as in any honest experiment: ``train`` maps are trained on,
``val`` maps make every choice (which network to export, when to stop, any
hyper-parameter), ``test`` maps give the reported number once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Literal, NamedTuple

import numpy as np

from icrl_course.envs.lake_map import LakeMap
from icrl_course.runtime import as_rng

TEST_FRACTION = 0.2
"""Share of all possible maps (by digest) that belong to the held-out ``test`` split."""
VAL_FRACTION = 0.1
"""Share of all possible maps (by digest) that belong to the ``val`` split, used for every model choice."""
SPLITS = ("train", "val", "test")


def split_of(lake_map: LakeMap) -> str:
    """``"train"``, ``"val"`` or ``"test"``, decided by the map's digest alone.

    The digest's first 32 bits, read as a number in [0, 1), fall in
    ``[0, TEST_FRACTION)`` for test, the next ``VAL_FRACTION`` for val and the
    rest for train, so the three splits are disjoint for every distribution.
    """
    bucket = int(lake_map.digest[:8], 16) / 16**8
    if bucket < TEST_FRACTION:
        return "test"
    return "val" if bucket < TEST_FRACTION + VAL_FRACTION else "train"


class DistributionError(ValueError):
    """Impossible or unsatisfiable map-distribution parameters; the message names the field."""


ENUMERATION_LIMIT = 4**9
"""Maps of one size are counted exactly by listing every tile layout when there are at most this many
(3x3 maps in the paper's style, 4x4 and 4x5 in gymnasium's); larger sizes are only bounded."""


class MapCount(NamedTuple):
    """How many distinct solvable maps a distribution holds: ``count`` is exact, or an upper bound."""

    count: int
    exact: bool

    def __str__(self) -> str:
        return f"{'exactly' if self.exact else 'at most'} {self.count}"


@dataclass(frozen=True)
class MapDistribution:
    """Random Frozen Lake maps in the paper's style or in gymnasium's.

    ``style="paper"`` (Rentschler & Roberts 2025): a size is drawn uniformly
    from ``rows`` x ``cols``, then every tile independently is a start with
    probability ``p_start``, a goal with ``p_goal``, a hole with ``p_hole`` and
    frozen otherwise. ``style="gymnasium"`` (``generate_random_map``): the start
    is top-left, the goal bottom-right, and every other tile is frozen with
    probability ``p_frozen``, else a hole.

    Both keep only maps where every start reaches a goal in at least
    ``min_hops`` moves, by rejection sampling bounded by ``max_tries`` draws.
    A distribution holds finitely many distinct maps (``count_maps`` says how
    many, exactly for small maps): asking for more fails at once, not after a
    search that can never end.
    """

    rows: tuple[int, int] = (3, 5)
    """Inclusive range of the number of rows."""
    cols: tuple[int, int] = (3, 5)
    """Inclusive range of the number of columns."""
    p_start: float = 0.1
    """Paper style: probability that a tile is a start (several starts are allowed)."""
    p_goal: float = 0.1
    """Paper style: probability that a tile is a goal (several goals are allowed)."""
    p_hole: float = 0.2
    """Paper style: probability that a tile is a hole."""
    min_hops: int = 4
    """Fewest moves from the nearest start to the nearest goal that a kept map needs."""
    style: Literal["paper", "gymnasium"] = "paper"
    """Which generator: the paper's per-tile probabilities or gymnasium's corner start/goal."""
    p_frozen: float = 0.8
    """Gymnasium style: probability that a non-corner tile is frozen (else a hole)."""
    max_tries: int = 10_000
    """Draws in a row that may bring no new map before sampling gives up with an error."""

    def __post_init__(self) -> None:
        for name in ("rows", "cols"):
            lo_hi = getattr(self, name)
            if not (isinstance(lo_hi, tuple) and len(lo_hi) == 2 and all(isinstance(v, (int, np.integer)) for v in lo_hi)):
                raise DistributionError(f"{name} must be a (min, max) tuple of ints, got {lo_hi!r}")
            if lo_hi[0] < 1 or lo_hi[0] > lo_hi[1]:
                raise DistributionError(f"{name}={lo_hi!r} must satisfy 1 <= min <= max")
        for name in ("p_start", "p_goal", "p_hole", "p_frozen"):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0.0 <= value <= 1.0:
                raise DistributionError(f"{name}={value!r} is a probability: it must be a number in [0, 1]")
        if self.style not in ("paper", "gymnasium"):
            raise DistributionError(f"style={self.style!r} must be 'paper' or 'gymnasium'")
        if self.style == "paper":
            total = self.p_start + self.p_goal + self.p_hole
            if total > 1.0:
                raise DistributionError(f"p_start + p_goal + p_hole = {total:g} exceeds 1: lower one of them")
            if self.p_start == 0.0:
                raise DistributionError("p_start=0 means no map ever has a start tile: make it positive")
            if self.p_goal == 0.0:
                raise DistributionError("p_goal=0 means no map ever has a goal tile: make it positive")
        elif self.rows[1] * self.cols[1] < 2:
            raise DistributionError(f"rows={self.rows}, cols={self.cols}: gymnasium style needs at least 2 tiles for start and goal")
        if not isinstance(self.min_hops, (int, np.integer)) or self.min_hops < 1:
            raise DistributionError(f"min_hops={self.min_hops!r} must be an int >= 1")
        # No path can be longer than visiting every tile once.
        longest = self.rows[1] * self.cols[1] - 1
        if self.min_hops > longest:
            raise DistributionError(
                f"min_hops={self.min_hops} is longer than any path on a map of at most "
                f"{self.rows[1]}x{self.cols[1]} tiles allows ({longest}): lower min_hops or enlarge rows/cols"
            )
        if not isinstance(self.max_tries, (int, np.integer)) or self.max_tries < 1:
            raise DistributionError(f"max_tries={self.max_tries!r} must be an int >= 1")

    # ---------------------------------------------------------------- presets
    @classmethod
    def paper(cls, **overrides) -> "MapDistribution":
        """The paper's in-distribution maps: 3-5 x 3-5, start/goal/hole 0.1/0.1/0.2, at least 4 moves."""
        return replace(cls(), **overrides)

    @classmethod
    def paper_ood(cls, **overrides) -> "MapDistribution":
        """The paper's out-of-distribution maps: the same tiles on 6-7 x 6-7 lakes."""
        return replace(cls(rows=(6, 7), cols=(6, 7)), **overrides)

    @classmethod
    def gymnasium(cls, size: int = 4, p: float = 0.8, **overrides) -> "MapDistribution":
        """Gymnasium's ``generate_random_map(size, p)``: start top-left, goal bottom-right."""
        base = cls(rows=(size, size), cols=(size, size), style="gymnasium", p_frozen=p, min_hops=1)
        return replace(base, **overrides)

    def with_(self, **changes) -> "MapDistribution":
        """A copy with some fields changed (validated again)."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise DistributionError(f"unknown field(s) {unknown}; MapDistribution has {sorted(names)}")
        return replace(self, **changes)

    # --------------------------------------------------------------- sampling
    def _draw_batch(self, rng: np.random.Generator, count: int) -> list[LakeMap]:
        """``count`` candidate draws, filtered to the solvable ones, in draw order.

        Drawing and checking a whole batch at once keeps sampling vectorised:
        the solvability test is one breadth-first search run on every candidate
        together (``solvable_mask``).
        """
        max_rows, max_cols = self.rows[1], self.cols[1]
        nrow = rng.integers(self.rows[0], self.rows[1] + 1, size=count)
        ncol = rng.integers(self.cols[0], self.cols[1] + 1, size=count)
        if self.style == "paper":
            p_frozen = max(1.0 - self.p_start - self.p_goal - self.p_hole, 0.0)
            probs = np.array([self.p_start, self.p_goal, self.p_hole, p_frozen])
            codes = rng.choice(4, size=(count, max_rows, max_cols), p=probs / probs.sum())
        else:
            codes = np.where(rng.random((count, max_rows, max_cols)) < self.p_frozen, 3, 2)
            codes[:, 0, 0] = 0
            codes[np.arange(count), nrow - 1, ncol - 1] = 1
        inside = (np.arange(max_rows)[None, :, None] < nrow[:, None, None]) & (
            np.arange(max_cols)[None, None, :] < ncol[:, None, None]
        )
        tiles = np.where(inside, np.array(list("SGHF"))[codes], "H")  # outside the lake acts as a wall
        keep = solvable_mask(tiles, self.min_hops)
        return [
            LakeMap(tuple("".join(row[:ncol[i]]) for row in tiles[i, : nrow[i]]))
            for i in np.flatnonzero(keep)
        ]

    def sample(self, seed: int | np.random.Generator | None = None) -> LakeMap:
        """One solvable map (either split), by rejection sampling."""
        return self.sample_many(1, seed)[0]

    def sample_many(
        self,
        n: int,
        seed: int | np.random.Generator | None = None,
        split: Literal["train", "val", "test"] | None = None,
    ) -> list[LakeMap]:
        """``n`` distinct solvable maps, all from ``split`` when it is given.

        Distinct means distinct digests. The split is decided by each map's
        digest (``split_of``), so ``split="test"`` (or ``"val"``) maps never
        appear among ``split="train"`` maps, whatever seeds the two calls use.

        Bounded: asking for more maps than the distribution holds
        (``count_maps``) fails before drawing, and ``max_tries`` draws in a row
        that bring no new map end the search with a ``DistributionError``
        naming how many were found and what to change.
        """
        if split not in (None, *SPLITS):
            raise DistributionError(f"split={split!r} must be 'train', 'val', 'test' or None")
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
            raise DistributionError(f"n={n!r} must be an int >= 0")
        # Counting costs about as much as drawing every layout once: do it when a search could cost more.
        held = self.count_maps(split, limit=self.max_tries * n) if n else None
        if held is not None and n > held.count:
            raise DistributionError(self._too_few_message(n, split, held))
        rng = as_rng(seed)
        kept: dict[str, LakeMap] = {}
        fruitless = 0  # draws since the last batch that brought a new map
        while len(kept) < n:
            if fruitless >= self.max_tries:
                raise DistributionError(self._exhausted_message(len(kept), n, split, fruitless))
            count = int(min(max(64, 8 * (n - len(kept))), 4096))
            before = len(kept)
            for candidate in self._draw_batch(rng, count):
                if split is None or split_of(candidate) == split:
                    kept.setdefault(candidate.digest, candidate)
                if len(kept) == n:
                    break
            fruitless = 0 if len(kept) > before else fruitless + count
        return list(kept.values())

    def count_maps(self, split: Literal["train", "val", "test"] | None = None, limit: int | None = None) -> MapCount:
        """How many distinct solvable maps (of ``split``, or of all splits) this distribution can draw.

        Sizes with at most ``ENUMERATION_LIMIT`` tile layouts are counted
        exactly by listing every layout (once per process); a larger size
        adds its number of layouts, so the total is then an upper bound.
        ``limit`` caps the layouts listed in all (the rest are bounded, not
        listed): ``sample_many`` uses it so that counting never costs more
        than the search it guards. The count depends on which tiles can
        appear, not on their probabilities.
        """
        if split not in (None, *SPLITS):
            raise DistributionError(f"split={split!r} must be 'train', 'val', 'test' or None")
        total, exact, listed = 0, True, 0
        for nrow in range(self.rows[0], self.rows[1] + 1):
            for ncol in range(self.cols[0], self.cols[1] + 1):
                letters, free = self._layouts(nrow, ncol)
                layouts = len(letters) ** free
                if layouts <= ENUMERATION_LIMIT and (limit is None or listed + layouts <= limit):
                    listed += layouts
                    by_split = _count_by_split(self.style, nrow, ncol, letters, self.min_hops)
                    total += sum(by_split.values()) if split is None else by_split.get(split, 0)
                else:
                    total, exact = total + layouts, False
        return MapCount(total, exact)

    def _layouts(self, nrow: int, ncol: int) -> tuple[str, int]:
        """The letters a free tile can take, and how many free tiles a ``nrow`` x ``ncol`` map has."""
        if self.style == "paper":
            p_frozen = 1.0 - self.p_start - self.p_goal - self.p_hole
            letters = "SG" + ("H" if self.p_hole > 0 else "") + ("F" if p_frozen > 0 else "")
            return letters, nrow * ncol
        letters = ("F" if self.p_frozen > 0 else "") + ("H" if self.p_frozen < 1 else "")
        return letters, max(nrow * ncol - 2, 0)

    def _describe(self) -> str:
        """The fields that decide how many maps there are, for error messages."""
        return f"rows={self.rows}, cols={self.cols}, min_hops={self.min_hops}, style={self.style!r}"

    def _too_few_message(self, n: int, split: str | None, held: MapCount) -> str:
        return (
            f"asked for {n} distinct {split or 'any'}-split maps, but this distribution ({self._describe()}) "
            f"holds {held} of them: ask for at most {held.count}, or widen rows/cols or lower min_hops"
        )

    def _exhausted_message(self, found: int, n: int, split: str | None, draws: int) -> str:
        if found == 0:
            return (
                f"no solvable map in {draws} draws (max_tries={self.max_tries}): with p_hole={self.p_hole}, "
                f"min_hops={self.min_hops} on {self.rows}x{self.cols} maps almost every draw is rejected; "
                "lower p_hole or min_hops, enlarge the maps, or raise max_tries"
            )
        held = self.count_maps(split)
        return (
            f"found only {found} distinct solvable {split or 'any'}-split maps of the {n} asked for: {draws} draws "
            f"in a row (max_tries={self.max_tries}) brought no new one; this distribution ({self._describe()}) holds "
            f"{held}; ask for fewer, widen rows/cols, lower min_hops, or raise max_tries"
        )


@lru_cache(maxsize=None)
def _count_by_split(style: str, nrow: int, ncol: int, letters: str, min_hops: int) -> Counter:
    """Solvable maps of one size per split, found by listing every layout of its free tiles.

    Paper style: every tile is free and takes any of ``letters``. Gymnasium
    style: the top-left tile is S, the bottom-right G (on a 1x1 map the G
    wins, as in sampling) and the others take ``letters``.
    """
    free = nrow * ncol if style == "paper" else max(nrow * ncol - 2, 0)
    codes = np.indices((len(letters),) * free, dtype=np.uint8).reshape(free, -1).T if free else np.zeros((1, 0), int)
    layouts = np.array(list(letters))[codes]
    if style == "paper":
        tiles = layouts.reshape(-1, nrow, ncol)
    else:
        flat = np.full((len(layouts), nrow * ncol), "F")
        flat[:, 1:-1] = layouts
        flat[:, 0], flat[:, -1] = "S", "G"
        tiles = flat.reshape(-1, nrow, ncol)
    counts: Counter = Counter()
    for chunk in range(0, len(tiles), 2**16):
        part = tiles[chunk:chunk + 2**16]
        for board in part[solvable_mask(part, min_hops)]:
            counts[split_of(LakeMap(tuple("".join(row) for row in board)))] += 1
    return counts


def solvable_mask(tiles: np.ndarray, min_hops: int) -> np.ndarray:
    """For a ``(K, R, C)`` array of tile letters: which maps have every start reach a goal in >= ``min_hops``.

    A breadth-first search from the goals run on all K maps at once: each round
    lowers a walkable tile's distance to one more than its best neighbour's.
    Holes keep an infinite distance and goals stay at 0, so no path passes
    through either (an episode ends there). R*C rounds always suffice.
    """
    count, max_rows, max_cols = tiles.shape
    big = max_rows * max_cols + 1
    walkable = (tiles == "F") | (tiles == "S")
    padded = np.full((count, max_rows + 2, max_cols + 2), big, dtype=np.int64)  # a border that relays nothing
    dist = padded[:, 1:-1, 1:-1]
    dist[tiles == "G"] = 0
    for _ in range(max_rows * max_cols):
        best = np.minimum(
            np.minimum(padded[:, :-2, 1:-1], padded[:, 2:, 1:-1]), np.minimum(padded[:, 1:-1, :-2], padded[:, 1:-1, 2:])
        )
        new = np.where(walkable, np.minimum(dist, best + 1), dist)
        if np.array_equal(new, dist):
            break
        dist[...] = new
    starts = tiles == "S"
    has_start = starts.any(axis=(1, 2))
    every_start_reaches = ~(starts & (dist >= big)).any(axis=(1, 2))  # also False when there is no goal
    nearest = np.where(starts, dist, big).min(axis=(1, 2))
    return has_start & every_start_reaches & (nearest >= min_hops)


PAPER_IN_DISTRIBUTION = MapDistribution.paper()
"""3-5 x 3-5 maps as in the paper's training and in-distribution evaluation."""

PAPER_OUT_OF_DISTRIBUTION = MapDistribution.paper_ood()
"""6-7 x 6-7 maps as in the paper's out-of-distribution evaluation."""
