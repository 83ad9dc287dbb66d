"""Run-time settings shared by the whole library: the CI switch, devices and seeds.

Why one module: the course promises that every long computation shrinks under
one documented switch, and that every random thing takes a seed. Keeping the
switch and the seed handling here means a lesson, a test and a benchmark all
read them the same way.
"""

from __future__ import annotations

import os

import numpy as np

SMOKE_ENV_VAR = "ICRL_COURSE_SMOKE"
"""Environment variable that shrinks long computations (training, big evaluations) for CI."""


def smoke() -> bool:
    """True when ``ICRL_COURSE_SMOKE`` is set to a true value ("1", "true", "yes").

    CI sets it so every notebook runs in seconds; a learner leaves it unset and
    gets the full-size computation each lesson describes.
    """
    return os.environ.get(SMOKE_ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


def full_or_smoke(full, smoke_value):
    """Return ``smoke_value`` under the CI switch and ``full`` otherwise."""
    return smoke_value if smoke() else full


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy generator from a seed, or the generator itself when one is given.

    Passing a generator lets a caller thread one random stream through several
    functions; passing an int makes the call reproducible on its own.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, a numpy Generator or None, got {type(seed).__name__}")
    return np.random.default_rng(seed)


class NumericalError(FloatingPointError):
    """A computation produced NaN or infinity (a diverged training run, a damaged network); the message says where."""


class DeviceError(ValueError):
    """A device that this machine does not have; the message names it and what to use instead."""


def pick_device(device: str = "auto") -> "torch.device":  # noqa: F821 - torch imported lazily
    """Resolve ``"auto"`` to CUDA when a GPU is visible (else Apple MPS, else CPU).

    Any other string ("cpu", "cuda:1", ...) is checked against the machine, so
    asking for a GPU it lacks fails here, with a ``DeviceError`` that says
    what is missing, and not deep inside the first computation; a learner can
    always force the CPU.
    """
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"device={device!r} is not a device name: use auto, cpu, cuda, cuda:N or mps") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise DeviceError(f"device={device!r} but {why} on this machine: use device='auto' (a GPU when there "
                              "is one) or 'cpu'")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise DeviceError(f"device={device!r} but this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                              f"numbered from 0: use cuda:0 to cuda:{torch.cuda.device_count() - 1}, or 'auto'")
    elif chosen.type == "mps" and not _mps_available():
        raise DeviceError(f"device={device!r} but Apple's MPS is not available on this machine: use 'auto' or 'cpu'")
    elif chosen.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device={device!r}: this library runs on cpu, cuda or mps")
    return chosen


def _mps_available() -> bool:
    import torch

    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
