"""Checkpoints: the full training state for resuming, and exported models for handing out.

Two kinds of file, both safetensors (weights never go through pickle):

- the *training state* (``state.safetensors`` in a run folder): online and
  target weights, Adam's moments, the replay buffer, the torch random state
  and the iteration, so a run killed at any moment continues
  from its last checkpoint and ends with the same numbers as a run that was
  never interrupted;
- an *exported model* (``NAME.safetensors`` + ``NAME.json``): the online
  network's weights and a JSON file that says how to rebuild and feed it. It
  is small (a few hundred kB) and is what ``load_agent`` reads.

Every file is written to a temporary name and renamed into place, so a crash
mid-write leaves the previous complete file, never a torn one; a truncated or
corrupted file is reported as such, not as a low-level parser error.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from icrl_course.data import DataFileError, atomic_path, load_arrays, save_arrays

STATE_FORMAT = "icrl-course/train-state"
MODEL_FORMAT = "icrl-course/model"
FORMAT_VERSION = "1"


class CheckpointError(DataFileError):
    """A checkpoint that is missing, truncated, corrupted or of another kind; the message says which."""


# ------------------------------------------------------------------ module / optimizer <-> arrays
def module_arrays(module: torch.nn.Module, prefix: str) -> dict[str, np.ndarray]:
    """A module's state dict as NumPy arrays named ``prefix/<name>`` (bit-exact copies)."""
    return {f"{prefix}/{k}": v.detach().cpu().contiguous().numpy().copy() for k, v in module.state_dict().items()}


def load_module_arrays(module: torch.nn.Module, arrays: Mapping[str, np.ndarray], prefix: str) -> None:
    """Load ``prefix/<name>`` arrays into a module, refusing missing or unexpected names."""
    mine = {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}
    expected = set(module.state_dict())
    if set(mine) != expected:
        raise CheckpointError(
            f"checkpoint weights for {prefix!r} do not fit this model: missing {sorted(expected - set(mine))[:5]}, "
            f"unexpected {sorted(set(mine) - expected)[:5]}; was it written for another model config?"
        )
    device = next(iter(module.state_dict().values())).device
    module.load_state_dict({k: torch.from_numpy(np.array(v)).to(device) for k, v in mine.items()})


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


# ------------------------------------------------------------------ training state
def save_training_state(path: str | Path, arrays: Mapping[str, np.ndarray], header: Mapping[str, Any]) -> Path:
    """Write a training state atomically; ``header`` must be JSON-able (config, iteration, RNG state, ...)."""
    return save_arrays(path, arrays, {"format": STATE_FORMAT, "version": FORMAT_VERSION, **header})


def load_training_state(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a training state, with a clear ``CheckpointError`` when it is unusable."""
    try:
        arrays, header = load_arrays(path, "checkpoint")
    except DataFileError as err:
        raise CheckpointError(str(err)) from err.__cause__
    _expect_format(path, header, STATE_FORMAT)
    return arrays, header


def _expect_format(path: str | Path, header: Mapping[str, Any], fmt: str) -> None:
    if header.get("format") != fmt:
        raise CheckpointError(f"{path} is a {header.get('format')!r} file, not a {fmt!r} file")
    if header.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is version {header.get('version')!r} of {fmt}; this library reads {FORMAT_VERSION!r}")


def rng_arrays() -> dict[str, np.ndarray]:
    """Torch's global CPU random state as an array.

    NumPy needs no saved state: the training loop draws every number of
    iteration ``i`` from a generator seeded by ``(seed, i)``.
    """
    return {"rng/torch": torch.get_rng_state().numpy().copy()}


def restore_rng(arrays: Mapping[str, np.ndarray]) -> None:
    torch.set_rng_state(torch.from_numpy(np.array(arrays["rng/torch"])))


# ------------------------------------------------------------------ exported model
def model_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, spec)`` paths of an exported model given either file or their common stem."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".json", ".safetensors") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_model(path: str | Path, module: torch.nn.Module, spec: Mapping[str, Any]) -> tuple[Path, Path]:
    """Export a module's weights and a JSON spec (how to rebuild and feed it) as ``path.{safetensors,json}``."""
    weights, spec_path = model_paths(path)
    save_arrays(weights, module_arrays(module, "model"), {"format": MODEL_FORMAT, "version": FORMAT_VERSION})
    _write_text_atomic(spec_path, json.dumps({"format": MODEL_FORMAT, "version": FORMAT_VERSION, **spec}, indent=2) + "\n")
    return weights, spec_path


def read_model(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The weights and the spec of an exported model (either file or their stem)."""
    weights, spec_path = model_paths(path)
    if not spec_path.is_file():
        raise CheckpointError(f"model spec {spec_path} does not exist (an exported model is a .json and a .safetensors)")
    try:
        spec = json.loads(spec_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"model spec {spec_path} is truncated or corrupted: {err}") from err
    _expect_format(spec_path, spec, MODEL_FORMAT)
    try:
        arrays, header = load_arrays(weights, "model weights")
    except DataFileError as err:
        raise CheckpointError(str(err)) from err.__cause__
    _expect_format(weights, header, MODEL_FORMAT)
    return arrays, spec


def copy_model(source: str | Path, destination: str | Path) -> tuple[Path, Path]:
    """Copy an exported model (both files, each atomically), e.g. from a run folder to the shipped checkpoints."""
    read_model(source)  # refuse to copy a broken model
    for src, dst in zip(model_paths(source), model_paths(destination)):
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
    return model_paths(destination)


def _write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
