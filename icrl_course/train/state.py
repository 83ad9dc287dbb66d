"""The training state of a run: everything needed to continue it exactly where it stopped.

One safetensors file (``state.safetensors`` in a run folder), written
atomically: the online and target networks' trained tensors, AdamW's moments,
the replay buffer (online runs), torch's random state and, in its JSON
header, the config, the iteration and the clocks. A run killed at any moment
continues from its last checkpoint and ends with the same weights, bit for
bit, as a run that was never interrupted (same machine and thread count).
NumPy needs no saved state: the training loop draws every number of
iteration ``i`` from a generator seeded by ``(seed, i)``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from icrl_course.checkpoints import CheckpointError
from icrl_course.io import check_array, load_arrays, save_arrays

STATE_FORMAT = "icrl-course/train-state"
STATE_VERSION = "3"
"""Version 2: online and target tensors as ``online/...`` and ``target/...`` for either model kind.
Version 3: written with a content digest (``icrl_course.io``)."""


ADAM_SLOTS = ("step", "exp_avg", "exp_avg_sq")
"""What AdamW keeps per parameter once it has stepped."""


def optimizer_arrays(optimizer: torch.optim.Optimizer) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Adam's per-parameter tensors as arrays ``optim/<i>/<key>``, and its param groups as JSON-able dicts."""
    state = optimizer.state_dict()
    arrays = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            arrays[f"optim/{index}/{key}"] = tensor.detach().cpu().contiguous().numpy().copy()
    return arrays, state["param_groups"]


def load_optimizer_arrays(optimizer: torch.optim.Optimizer, arrays: Mapping[str, np.ndarray],
                          param_groups: list[dict[str, Any]], where: str = "training state") -> None:
    """Restore what ``optimizer_arrays`` saved, refusing slots that do not fit the optimiser's parameters."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    device = params[0].device
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in arrays.items():
        if not name.startswith("optim/"):
            continue
        parts = name.split("/")
        index = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else len(params)
        key = parts[-1]
        if index >= len(params) or key not in ADAM_SLOTS:
            raise CheckpointError(f"{where}: {name!r} is not a slot of this model's optimiser ({len(params)} "
                                  f"parameters, slots {list(ADAM_SLOTS)})")
        shape = (1,) if key == "step" else tuple(params[index].shape)  # a scalar is written as one value
        check_array(name, value, shape, np.dtype(np.float32), where)
        tensor = torch.from_numpy(np.array(value))
        state.setdefault(index, {})[key] = tensor.reshape(()) if key == "step" else tensor.to(device)
    if any(set(slots) != set(ADAM_SLOTS) for slots in state.values()):
        raise CheckpointError(f"{where}: the optimiser state lacks some of {list(ADAM_SLOTS)} for a parameter")
    try:
        optimizer.load_state_dict({"state": state, "param_groups": param_groups})
    except (ValueError, KeyError, TypeError, IndexError) as err:
        raise CheckpointError(f"{where}: the optimiser's param_groups do not fit this model ({err})") from None


def rng_arrays() -> dict[str, np.ndarray]:
    """Torch's global CPU random state as an array (dropout draws from it)."""
    return {"rng/torch": torch.get_rng_state().numpy().copy()}


def restore_rng(arrays: Mapping[str, np.ndarray], where: str = "training state") -> None:
    if "rng/torch" not in arrays:
        raise CheckpointError(f"{where} lacks the torch random state 'rng/torch'")
    current = torch.get_rng_state()
    check_array("rng/torch", arrays["rng/torch"], tuple(current.shape), np.dtype(np.uint8), where)
    torch.set_rng_state(torch.from_numpy(np.array(arrays["rng/torch"])))


def check_state_header(header: Mapping[str, Any], iterations: int, clocks: tuple[str, ...], where: str) -> None:
    """Refuse a state header whose counters cannot belong to a run of ``iterations`` iterations, naming the field."""
    missing = [k for k in ("config", "iteration", "env_steps", "updates", "clock", "param_groups") if k not in header]
    if missing:
        raise CheckpointError(f"{where} lacks {missing} in its header: it was not written by this library's training")

    def count(name: str, value: Any, most: int | None = None) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (most is not None and value > most):
            bound = f"0..{most}" if most is not None else ">= 0"
            raise CheckpointError(f"{where}: {name}={value!r} must be an int in {bound} for a run of "
                                  f"{iterations} iterations")

    count("iteration", header["iteration"], iterations)
    count("env_steps", header["env_steps"])
    count("updates", header["updates"])
    clock = header["clock"]
    if not isinstance(clock, dict) or set(clock) != set(clocks) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in clock.values()):
        raise CheckpointError(f"{where}: clock={clock!r} must hold the timers {list(clocks)} as seconds >= 0")
    if not isinstance(header["param_groups"], list) or not all(isinstance(g, dict) for g in header["param_groups"]):
        raise CheckpointError(f"{where}: param_groups must be a list of the optimiser's groups")


def save_training_state(path: str | Path, arrays: Mapping[str, np.ndarray], header: Mapping[str, Any]) -> Path:
    """Write a training state atomically; ``header`` must be JSON-able (config, iteration, clocks, ...)."""
    return save_arrays(path, arrays, {"format": STATE_FORMAT, "version": STATE_VERSION, **header})


def load_training_state(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a training state, refusing a missing, damaged or foreign file, or one holding NaN."""
    return load_arrays(path, "training state", STATE_FORMAT, STATE_VERSION)
