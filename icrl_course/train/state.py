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

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from icrl_course.io import load_arrays, save_arrays

STATE_FORMAT = "icrl-course/train-state"
STATE_VERSION = "3"
"""Version 2: online and target tensors as ``online/...`` and ``target/...`` for either model kind.
Version 3: written with a content digest (``icrl_course.io``)."""


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
                          param_groups: list[dict[str, Any]]) -> None:
    """Restore what ``optimizer_arrays`` saved."""
    device = optimizer.param_groups[0]["params"][0].device
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in arrays.items():
        if name.startswith("optim/"):
            _, index, key = name.split("/", 2)
            tensor = torch.from_numpy(np.array(value))
            state.setdefault(int(index), {})[key] = tensor if key == "step" else tensor.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


def rng_arrays() -> dict[str, np.ndarray]:
    """Torch's global CPU random state as an array (dropout draws from it)."""
    return {"rng/torch": torch.get_rng_state().numpy().copy()}


def restore_rng(arrays: Mapping[str, np.ndarray]) -> None:
    torch.set_rng_state(torch.from_numpy(np.array(arrays["rng/torch"])))


def save_training_state(path: str | Path, arrays: Mapping[str, np.ndarray], header: Mapping[str, Any]) -> Path:
    """Write a training state atomically; ``header`` must be JSON-able (config, iteration, clocks, ...)."""
    return save_arrays(path, arrays, {"format": STATE_FORMAT, "version": STATE_VERSION, **header})


def load_training_state(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a training state, refusing a missing, damaged or foreign file, or one holding NaN."""
    return load_arrays(path, "training state", STATE_FORMAT, STATE_VERSION)
