"""Offline datasets of multi-episode trials: behaviour policies of controlled quality, and the file format.

Why a module of its own: offline in-context RL learns from trials someone else
played, and what it can learn depends on how good that someone was. Here a
dataset is made by a *behaviour policy* whose quality is a dial (an oracle that
knows the map, the map-memorising explorer, random play, each with some
probability of a random action instead, and mixtures of them), and the dial's
setting is written into the file next to the trials, so a result can always be
traced back to the data that produced it.

The format is open and pickle-free: one safetensors file holding every trial's
steps as flat arrays (a trial is a slice given by ``trial_offsets``) and every
map's tiles as ASCII codes, with a JSON header recording how it was made.
NumPy, PyTorch, Rust or JavaScript can read it without this library. The
training replay buffer is saved in the same layout.

Reading trusts nothing: ``icrl_course.io`` refuses a file whose content
digest no longer matches (any change after it was written), and the arrays
are checked for names, dtypes, shapes, offsets, map tiles and value ranges
before a single ``Trial`` is built. A damaged file is a one-line
``DataFileError``, never a traceback or a dataset of empty trials.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

import icrl_course
from icrl_course.baselines import ExplorerAgent, OracleAgent, QLearningAgent, RandomAgent
from icrl_course.envs import LakeMap, MapDistribution
from icrl_course.io import DataFileError, check_header, load_arrays, save_arrays
from icrl_course.runtime import as_rng
from icrl_course.trials import Schedule, Trial, run_trials

FORMAT_NAME = "icrl-course/trials"
"""Value of the ``format`` header field of a trial file."""
FORMAT_VERSION = "2"
"""Version 2: written with a content digest (``icrl_course.io``) and read with every array checked."""

STEP_FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "episode")
"""Per-step arrays of a ``Trial``, stored concatenated over all trials."""
_STEP_DTYPES = {"obs": np.int32, "actions": np.uint8, "rewards": np.float64, "next_obs": np.int32,
                "terminated": np.bool_, "truncated": np.bool_, "episode": np.int32}
_TRIAL_DTYPES = {"trial_offsets": np.int64, "map_tiles": np.uint8, "map_shape": np.int32, **_STEP_DTYPES}
"""Every array of the trial format and its dtype, as ``trials_to_arrays`` writes them."""
_TILE_CODES = np.frombuffer(b"SFHG", dtype=np.uint8)


# ------------------------------------------------------------------ arrays <-> trials
def trials_to_arrays(trials: Sequence[Trial]) -> dict[str, np.ndarray]:
    """Flatten trials into the arrays of the on-disk format.

    ``trial_offsets`` (N+1) marks where each trial's steps start in the step
    arrays; ``map_tiles`` (N, max tiles) holds each map's letters as ASCII
    codes in observation order, 0-padded; ``map_shape`` (N, 2) its rows and
    columns.
    """
    lengths = np.array([len(t) for t in trials], dtype=np.int64)
    arrays = {"trial_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)}
    for name in STEP_FIELDS:
        parts = [np.asarray(getattr(t, name)) for t in trials]
        arrays[name] = (np.concatenate(parts) if parts else np.zeros(0)).astype(_STEP_DTYPES[name])
    max_tiles = max((t.lake_map.n_states for t in trials), default=0)
    tiles = np.zeros((len(trials), max_tiles), dtype=np.uint8)
    for i, t in enumerate(trials):
        tiles[i, : t.lake_map.n_states] = np.frombuffer(t.lake_map.flat.encode("ascii"), dtype=np.uint8)
    arrays["map_tiles"] = tiles
    arrays["map_shape"] = np.array([t.lake_map.shape for t in trials], dtype=np.int32).reshape(len(trials), 2)
    return arrays


def check_trial_arrays(arrays: Mapping[str, np.ndarray], source: str = "trial arrays") -> None:
    """Refuse arrays that are not a well-formed set of trials, naming ``source``, the array and what is wrong.

    Checked, all vectorised: exactly the format's names and dtypes; 1-D step
    arrays of one length; offsets starting at 0, strictly increasing (no
    trial is empty) and ending at that length; one shape of 1 x 1 or more per
    trial that fits ``map_tiles``, whose tiles are S/F/H/G letters padded with
    zeros; observations inside their map, actions 0-3, finite rewards, and
    episodes numbered 0, 1, ... by the steps that end them.
    """

    def refuse(what: str) -> None:
        raise DataFileError(f"{source}: {what}; the file is damaged or was not written by icrl_course.data: re-create it")

    names = set(arrays)
    if names != set(_TRIAL_DTYPES):
        refuse(f"arrays {sorted(names)} are not the trial format's {sorted(_TRIAL_DTYPES)}")
    for name, dtype in _TRIAL_DTYPES.items():
        if arrays[name].dtype != dtype:
            refuse(f"array {name!r} has dtype {arrays[name].dtype}, not {np.dtype(dtype)}")
    offsets, shapes, tiles = arrays["trial_offsets"], arrays["map_shape"], arrays["map_tiles"]
    steps = arrays["obs"].shape
    for name in STEP_FIELDS:
        if arrays[name].ndim != 1 or arrays[name].shape != steps:
            refuse(f"array {name!r} has shape {arrays[name].shape}, not that of 'obs' {steps} (one entry per step)")
    n = len(offsets) - 1 if offsets.ndim == 1 else -1
    if n < 0 or offsets[0] != 0 or offsets[-1] != steps[0]:
        refuse(f"'trial_offsets' must run from 0 to the number of steps ({steps[0]})")
    if (np.diff(offsets) <= 0).any():
        refuse(f"trial {int(np.argmax(np.diff(offsets) <= 0))} has no steps ('trial_offsets' must increase)")
    if shapes.shape != (n, 2) or tiles.ndim != 2 or tiles.shape[0] != n:
        refuse(f"'map_shape' {shapes.shape} and 'map_tiles' {tiles.shape} must have one row per trial ({n})")
    cells = shapes[:, 0].astype(np.int64) * shapes[:, 1]
    if n and ((shapes < 1).any() or (cells > tiles.shape[1]).any()):
        refuse(f"'map_shape' holds sizes below 1x1 or beyond the {tiles.shape[1]} tiles stored per map")
    inside = np.arange(tiles.shape[1])[None, :] < cells[:, None]
    if not np.isin(tiles[inside], _TILE_CODES).all() or tiles[~inside].any():
        refuse("'map_tiles' holds bytes other than the letters S, F, H, G (and 0 after each map's tiles)")
    lengths = np.diff(offsets)
    limit = np.repeat(cells, lengths)
    for name in ("obs", "next_obs"):
        if ((arrays[name] < 0) | (arrays[name] >= limit)).any():
            refuse(f"array {name!r} holds a state outside its trial's map")
    if (arrays["actions"] > 3).any():
        refuse("array 'actions' holds a value above 3 (actions are 0 left, 1 down, 2 right, 3 up)")
    if not np.isfinite(arrays["rewards"]).all():
        refuse("array 'rewards' holds NaN or infinite values")
    # Episode k of a trial starts after the k-th step that ended one (terminated or truncated).
    ended = np.concatenate([[0], np.cumsum(arrays["terminated"] | arrays["truncated"])[:-1]])
    if steps[0] and (arrays["episode"] != ended - np.repeat(ended[offsets[:-1]], lengths)).any():
        refuse("array 'episode' does not number the episodes 0, 1, ... by the steps that end them")


def trials_from_arrays(arrays: Mapping[str, np.ndarray], source: str = "trial arrays") -> list[Trial]:
    """The inverse of ``trials_to_arrays``: the same trials, field for field.

    The arrays are checked first (``check_trial_arrays``); ``source`` names
    them in the ``DataFileError`` a malformed set gets.
    """
    check_trial_arrays(arrays, source)
    offsets = arrays["trial_offsets"]
    trials = []
    for i in range(len(offsets) - 1):
        nrow, ncol = (int(v) for v in arrays["map_shape"][i])
        flat = arrays["map_tiles"][i, : nrow * ncol].tobytes().decode("ascii")
        try:
            lake_map = LakeMap(tuple(flat[r * ncol:(r + 1) * ncol] for r in range(nrow)))
        except ValueError as err:
            raise DataFileError(f"{source}: the map of trial {i} is not a Frozen Lake map ({err})") from None
        sl = slice(int(offsets[i]), int(offsets[i + 1]))
        steps = {name: arrays[name][sl] for name in STEP_FIELDS}
        trials.append(Trial(
            lake_map,
            obs=steps["obs"].astype(np.int64), actions=steps["actions"].astype(np.int64),
            rewards=steps["rewards"].astype(np.float64), next_obs=steps["next_obs"].astype(np.int64),
            terminated=steps["terminated"].astype(bool), truncated=steps["truncated"].astype(bool),
            episode=steps["episode"].astype(np.int64),
        ))
    return trials


# ------------------------------------------------------------------ files
def save_dataset(path: str | Path, trials: Sequence[Trial], generation: Mapping[str, Any] | None = None) -> Path:
    """Store trials with the parameters that generated them (any JSON-able mapping) in one file.

    The file is ``safetensors``: step arrays concatenated over trials, maps as
    ASCII tile codes, and a header with ``format``, ``version``, ``num_trials``
    and ``generation``. Written atomically, with a content digest (``icrl_course.io``).
    """
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "num_trials": len(trials),
              "generation": dict(generation or {})}
    return save_arrays(path, trials_to_arrays(trials), header)


def read_dataset(path: str | Path) -> tuple[list[Trial], dict[str, Any]]:
    """The trials of a dataset file and its header (``generation`` holds how they were made).

    Refused with a ``DataFileError`` naming what is wrong: a file changed or
    damaged after it was written (``icrl_course.io``), another format or
    version, malformed arrays (``check_trial_arrays``) or a trial count that
    differs from the header's.
    """
    arrays, header = load_arrays(path, "dataset")
    if header.get("format") != FORMAT_NAME:
        raise DataFileError(f"{path} has format {header.get('format')!r}, not {FORMAT_NAME!r}: it is not a trial dataset")
    check_header(path, header, FORMAT_NAME, FORMAT_VERSION)
    trials = trials_from_arrays(arrays, f"dataset {path}")
    if len(trials) != header.get("num_trials"):
        raise DataFileError(f"{path} holds {len(trials)} trials but its header says {header.get('num_trials')}: the file is corrupted")
    return trials, header


def load_dataset(path: str | Path) -> list[Trial]:
    """The trials stored in a dataset file (see ``read_dataset`` for its header too)."""
    return read_dataset(path)[0]


# ------------------------------------------------------------------ behaviour policies
POLICIES = {"oracle": OracleAgent, "explorer": ExplorerAgent, "q-learning": QLearningAgent, "random": RandomAgent}
"""Agents a behaviour policy can be built on, from best to worst on non-slippery maps (q-learning learns slowly)."""


@dataclass(frozen=True)
class Behaviour:
    """One behaviour policy: an agent whose every action is replaced by a random one with probability ``epsilon``.

    ``weight`` is its share of the trials when several behaviours are mixed.
    The spec string ``"oracle:0.1*0.7"`` means oracle, epsilon 0.1, weight 0.7
    (``parse_behaviours`` reads comma-separated lists of them).
    """

    policy: Literal["oracle", "explorer", "q-learning", "random"]
    epsilon: float = 0.0
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy={self.policy!r} must be one of {list(POLICIES)}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon={self.epsilon} of {self.policy!r} is a probability: it must lie in [0, 1]")
        if not (self.weight > 0.0 and math.isfinite(self.weight)):
            raise ValueError(f"weight={self.weight} of {self.policy!r} must be a positive finite number")

    def __str__(self) -> str:
        return f"{self.policy}:{self.epsilon:g}*{self.weight:g}"


def parse_behaviours(spec: str) -> list[Behaviour]:
    """``"oracle:0.1*0.7,random*0.3"`` -> two ``Behaviour``s; epsilon defaults to 0 and weight to 1."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            raise ValueError(f"behaviour spec {spec!r} has an empty entry; write e.g. 'oracle:0.1*0.7,random*0.3'")
        rest, _, weight = part.partition("*")
        name, _, epsilon = rest.partition(":")
        try:
            out.append(Behaviour(name.strip(), float(epsilon) if epsilon else 0.0, float(weight) if weight else 1.0))
        except ValueError as err:
            raise ValueError(f"behaviour {part!r}: {err} (format: NAME[:EPSILON][*WEIGHT], NAME in {list(POLICIES)})") from None
    _check_shares(out)
    return out


def _check_shares(behaviours: Sequence[Behaviour]) -> None:
    """Weights that can be turned into shares of the trials (their sum must be finite)."""
    if not math.isfinite(sum(b.weight for b in behaviours)):
        raise ValueError(f"the weights {[b.weight for b in behaviours]} add up to infinity: give shares such as 0.7 and 0.3")


def generate_trials(
    behaviours: Behaviour | Sequence[Behaviour],
    num_trials: int,
    distribution: MapDistribution | None = None,
    split: Literal["train", "val", "test"] | None = "train",
    episodes: int = 10,
    max_episode_steps: int = 25,
    is_slippery: bool = False,
    seed: int = 0,
    progress: bool = False,
) -> tuple[list[Trial], dict[str, Any]]:
    """Play ``num_trials`` trials on distinct maps with a behaviour policy (or a mixture); returns them and their recipe.

    Each trial's behaviour is drawn with probability proportional to its
    ``weight``; its random-action probability is its ``epsilon`` in every
    episode. Maps are distinct draws from ``distribution`` (the paper's by
    default) restricted to ``split``, so a training dataset never contains a
    test map. The second value is the JSON-able record of every parameter,
    which ``save_dataset`` stores in the file.
    """
    behaviours = [behaviours] if isinstance(behaviours, Behaviour) else list(behaviours)
    if not behaviours:
        raise ValueError("behaviours is empty: give at least one Behaviour")
    _check_shares(behaviours)
    if not isinstance(num_trials, (int, np.integer)) or num_trials < 0:
        raise ValueError(f"num_trials={num_trials!r} must be an int >= 0")
    distribution = MapDistribution.paper() if distribution is None else distribution
    rng = as_rng(seed)
    maps = distribution.sample_many(num_trials, rng, split=split)
    weights = np.array([b.weight for b in behaviours])
    choice = rng.choice(len(behaviours), size=num_trials, p=weights / weights.sum())
    trials: list[Trial | None] = [None] * num_trials
    for index, behaviour in enumerate(behaviours):
        rows = np.flatnonzero(choice == index)
        if len(rows) == 0:
            continue
        result = run_trials(POLICIES[behaviour.policy](), [maps[i] for i in rows], episodes,
                            Schedule.epsilon_greedy(behaviour.epsilon), seed=int(rng.integers(2**63)),
                            max_episode_steps=max_episode_steps, is_slippery=is_slippery, progress=progress)
        for i, trial in zip(rows, result.trials):
            trials[i] = trial
    generation = {
        "behaviours": [asdict(b) for b in behaviours],
        "behaviour_of_trial": choice.tolist(),
        "distribution": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(distribution).items()},
        "split": split, "episodes": episodes, "max_episode_steps": max_episode_steps,
        "is_slippery": is_slippery, "seed": seed, "num_trials": num_trials,
        "library_version": icrl_course.__version__,
    }
    return trials, generation
