"""``LakeMap``: one Frozen Lake map, immutable, hashable, with its shortest paths.

Why a class of its own: every experiment in the course is a claim about maps
(seen in training or not, solvable or not, how far the goal is). A frozen value
with a stable digest lets us hold test maps out *by construction* and lets any
two processes agree on which map is which.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

TILES = "SFHG"
"""Tile letters, as in gymnasium: Start, Frozen, Hole, Goal."""

LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3
ACTION_NAMES = ("left", "down", "right", "up")
"""Action words indexed by gymnasium's action numbers."""

# (row, col) offsets of the four actions, in gymnasium's numbering.
ACTION_DELTAS = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], dtype=np.int64)


class MapError(ValueError):
    """A map that cannot be a Frozen Lake; the message names what is wrong."""


@dataclass(frozen=True)
class LakeMap:
    """A rectangular Frozen Lake map given by rows of ``S F H G`` letters.

    Observations are ``row * ncol + col`` and actions are 0 left, 1 down,
    2 right, 3 up, as in gymnasium's ``FrozenLake-v1``. Several ``S`` tiles mean
    the episode starts on one of them uniformly at random; several ``G`` tiles
    are several goals.
    """

    rows: tuple[str, ...]

    def __post_init__(self) -> None:
        rows = self.rows
        if isinstance(rows, str) or not isinstance(rows, tuple):
            raise MapError(f"rows must be a tuple of strings, got {type(rows).__name__}; use LakeMap.from_rows")
        if len(rows) == 0:
            raise MapError("rows is empty: a map needs at least one row")
        for i, row in enumerate(rows):
            if not isinstance(row, str) or len(row) == 0:
                raise MapError(f"rows[{i}] must be a non-empty string of S/F/H/G, got {row!r}")
        widths = {len(row) for row in rows}
        if len(widths) != 1:
            lengths = [len(row) for row in rows]
            raise MapError(f"rows are ragged (lengths {lengths}): every row must have the same number of tiles")
        for i, row in enumerate(rows):
            bad = sorted(set(row) - set(TILES))
            if bad:
                raise MapError(f"rows[{i}]={row!r} has unknown letter(s) {bad}: tiles are S (start), F (frozen), H (hole), G (goal)")
        text = "".join(rows)
        if "S" not in text:
            raise MapError("the map has no start tile 'S': put at least one S")
        if "G" not in text:
            raise MapError("the map has no goal tile 'G': put at least one G")

    # ----------------------------------------------------------------- creation
    @classmethod
    def from_rows(cls, rows: Iterable[str] | Iterable[Sequence[str]] | np.ndarray) -> "LakeMap":
        """Build a map from strings (``["SF", "HG"]``), lists of letters, or gymnasium's byte ``desc``."""
        if isinstance(rows, str):
            raise MapError("from_rows takes a list of row strings, not one string; split it, e.g. text.split()")
        out = []
        for row in rows:
            if isinstance(row, (bytes, np.bytes_)):
                out.append(row.decode())
            elif isinstance(row, str):
                out.append(row)
            else:
                out.append("".join(c.decode() if isinstance(c, (bytes, np.bytes_)) else str(c) for c in row))
        return cls(tuple(out))

    # --------------------------------------------------------------- geometry
    @property
    def nrow(self) -> int:
        return len(self.rows)

    @property
    def ncol(self) -> int:
        return len(self.rows[0])

    @property
    def shape(self) -> tuple[int, int]:
        return self.nrow, self.ncol

    @property
    def n_states(self) -> int:
        return self.nrow * self.ncol

    @property
    def tiles(self) -> np.ndarray:
        """The letters as a ``(nrow, ncol)`` array of 1-character strings."""
        return np.array([list(row) for row in self.rows])

    @property
    def desc(self) -> np.ndarray:
        """The map as gymnasium stores it: a ``(nrow, ncol)`` array of bytes."""
        return np.asarray(self.tiles, dtype="c")

    @property
    def flat(self) -> str:
        """All tiles in observation order (``row * ncol + col``)."""
        return "".join(self.rows)

    def states_of(self, letter: str) -> tuple[int, ...]:
        """Observation indices of every tile with the given letter."""
        return tuple(i for i, c in enumerate(self.flat) if c == letter)

    @property
    def starts(self) -> tuple[int, ...]:
        return self.states_of("S")

    @property
    def goals(self) -> tuple[int, ...]:
        return self.states_of("G")

    @property
    def holes(self) -> tuple[int, ...]:
        return self.states_of("H")

    def to_state(self, row: int, col: int) -> int:
        return row * self.ncol + col

    def to_row_col(self, state: int) -> tuple[int, int]:
        return divmod(int(state), self.ncol)

    def next_state(self, state: int, action: int) -> int:
        """Where ``action`` leads from ``state`` without slipping (walls stop you)."""
        row, col = self.to_row_col(state)
        dr, dc = ACTION_DELTAS[action]
        return self.to_state(min(max(row + dr, 0), self.nrow - 1), min(max(col + dc, 0), self.ncol - 1))

    # ----------------------------------------------------------------- paths
    def distances_to_goal(self) -> np.ndarray:
        """Fewest moves from every tile to its nearest goal (-1 if none is reachable).

        Holes end the episode, so paths never pass through them; goals end it
        too, so a path stops at the first goal it meets. A hole's own distance
        is -1.
        """
        flat = self.flat
        dist = np.full(self.n_states, -1, dtype=np.int64)
        queue = deque()
        for g in self.goals:
            dist[g] = 0
            queue.append(g)
        while queue:
            s = queue.popleft()
            for a in range(4):
                # Breadth-first search backwards: p reaches s if some move from p lands on s.
                p = self.next_state(s, (a + 2) % 4)
                if dist[p] == -1 and flat[p] not in "HG" and self.next_state(p, a) == s:
                    dist[p] = dist[s] + 1
                    queue.append(p)
        return dist

    def start_distances(self) -> tuple[int | None, ...]:
        """Fewest moves from each start tile (in ``starts`` order) to a goal, None if cut off."""
        dist = self.distances_to_goal()
        return tuple(int(dist[s]) if dist[s] >= 0 else None for s in self.starts)

    def shortest_path_length(self) -> int | None:
        """Fewest moves from any start to any goal; None when no start reaches a goal."""
        reachable = [d for d in self.start_distances() if d is not None]
        return min(reachable) if reachable else None

    def shortest_path(self) -> tuple[int, ...] | None:
        """The states of one shortest route from the nearest start to a goal, both included; None if none exists.

        Each move goes to a neighbour one step closer to a goal; among equal
        moves the lowest action number wins, so the route is the same every time.
        """
        dist = self.distances_to_goal()
        starts = [s for s in self.starts if dist[s] >= 0]
        if not starts:
            return None
        state = min(starts, key=lambda s: (dist[s], s))
        path = [state]
        while dist[state] > 0:
            state = next(n for n in (self.next_state(state, a) for a in range(4)) if dist[n] == dist[state] - 1)
            path.append(state)
        return tuple(path)

    def is_solvable(self, min_hops: int = 1) -> bool:
        """Every start reaches a goal, and the nearest goal is at least ``min_hops`` moves away.

        Every start must be connected because an episode starts on any of them:
        a map where one start is cut off has episodes nobody can win.
        """
        dists = self.start_distances()
        return all(d is not None for d in dists) and min(dists) >= min_hops

    # ---------------------------------------------------------- identity/show
    @property
    def digest(self) -> str:
        """A stable 16-hex-digit fingerprint: the same map gives the same string everywhere.

        It is a SHA-256 of the rows joined by "/", so it does not depend on
        Python's per-process ``hash`` salt, the platform or the library version.
        """
        return hashlib.sha256("/".join(self.rows).encode("ascii")).hexdigest()[:16]

    def __str__(self) -> str:
        return "\n".join(self.rows)

    def __repr__(self) -> str:
        return f"LakeMap.from_rows({list(self.rows)!r})"
