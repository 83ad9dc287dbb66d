"""Exported models: what a training run hands out, the shipped ones by name, and loading any of them as an agent.

Why ship checkpoints: training lesson 5's learner to its full curve takes
tens of minutes on a laptop CPU; later lessons (and impatient learners) load
the one made by the library's own command instead, with one call::

    from icrl_course.checkpoints import load_agent
    agent = load_agent("paper-small")          # a shipped checkpoint, by name (icrl_course/pretrained)
    agent = load_agent("runs/my-run")          # or any run folder / exported model path

An exported model is two files: ``NAME.safetensors``, exactly the tensors
that training changed (every weight of a small model, or only a peft
adapter of a large one), and ``NAME.json``, the config's model section that
rebuilds the network around them, the seed, the whole training config and
how long it trained.

Loading trusts neither file: the spec holds the SHA-256 of the weights file
and a digest of itself, so an edit to either (a changed ``n_head``, a flipped
bit) is refused; the model section is checked against bounds, and against
the number of values the weights file holds, before any network is
allocated; then every tensor's name, shape and dtype must fit the network
and every value must be finite. Both kinds of model (``transformer``, ``hf``) load the
same way; ``icrl_course/configs/NAME.json`` is the config a shipped model was
trained with (``icrl-course train --config``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from icrl_course.io import (
    DIGEST,
    DataFileError,
    atomic_path,
    check_array,
    file_sha256,
    json_digest,
    load_arrays,
    read_json,
    save_arrays,
    write_json,
)

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
"""Folder of the shipped checkpoints."""
MODEL_FORMAT = "icrl-course/model"
MODEL_VERSION = "3"
"""Version 2: the spec holds the config's model section (version 1 held the transformer's own config).
Version 3: the spec holds ``weights_sha256`` and its own ``digest``."""
WEIGHTS_SHA256 = "weights_sha256"
"""Spec field holding the SHA-256 of the weights file's bytes."""


class CheckpointError(DataFileError):
    """A checkpoint that is missing or does not fit the model it is loaded into; the message says which."""


# ------------------------------------------------------------------ tensors <-> arrays
def tensor_arrays(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, np.ndarray]:
    """Named tensors as NumPy arrays named ``prefix/<name>``, bit-exact (bfloat16, which NumPy lacks, as float32,
    which holds every bfloat16 value exactly)."""
    return {f"{prefix}/{k}": (v.detach().float() if v.dtype == torch.bfloat16 else v.detach()).cpu().contiguous().numpy().copy()
            for k, v in tensors.items()}


def load_tensors(tensors: Mapping[str, torch.Tensor], arrays: Mapping[str, np.ndarray], prefix: str, where: str) -> None:
    """Copy ``prefix/<name>`` arrays into live tensors, refusing missing or unexpected names, wrong shapes and types."""
    mine = {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}
    if set(mine) != set(tensors):
        raise CheckpointError(f"{where}: the weights for {prefix!r} do not fit this model: missing "
                              f"{sorted(set(tensors) - set(mine))[:3]}, unexpected {sorted(set(mine) - set(tensors))[:3]}; "
                              "was it written for another model config?")
    with torch.no_grad():
        for name, tensor in tensors.items():
            stored = torch.float32 if tensor.dtype == torch.bfloat16 else tensor.dtype  # as tensor_arrays writes it
            check_array(name, mine[name], tuple(tensor.shape), torch.empty(0, dtype=stored).numpy().dtype, where)
            tensor.copy_(torch.from_numpy(np.array(mine[name])))



# ------------------------------------------------------------------ exported models
def model_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, spec)`` paths of an exported model given either file or their common stem."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".json", ".safetensors") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_model(path: str | Path, tensors: Mapping[str, torch.Tensor], spec: Mapping[str, Any]) -> tuple[Path, Path]:
    """Export trained tensors and their spec (``model`` section, ``seed``, ...) as ``path.{safetensors,json}``."""
    weights, spec_path = model_paths(path)
    header = {"format": MODEL_FORMAT, "version": MODEL_VERSION}
    save_arrays(weights, tensor_arrays(tensors, "model"), header)
    document = {**header, **{k: v for k, v in spec.items() if k not in (WEIGHTS_SHA256, DIGEST)},
                WEIGHTS_SHA256: file_sha256(weights)}
    document = json.loads(json.dumps(document))  # exactly what a reader will parse
    write_json(spec_path, {**document, DIGEST: json_digest(document)})
    return weights, spec_path


def read_model(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and the spec of an exported model (either file or their stem), checked.

    Refused: a spec edited after export (its ``digest``, or a layout other
    than the one export writes, so even whitespace counts), weights that are
    not the ones exported with it (their SHA-256), and whatever
    ``io.load_arrays`` refuses (a damaged file, NaN or infinite values). The spec comes back
    without its two digests.
    """
    weights, spec_path = model_paths(path)
    spec = read_json(spec_path, "model spec", MODEL_FORMAT, MODEL_VERSION)
    if spec_path.read_bytes().replace(b"\r\n", b"\n") != (json.dumps(spec, indent=2) + "\n").encode():
        raise CheckpointError(f"model spec {spec_path} is not laid out as export writes it: it was edited or damaged "
                              "after it was exported; export the model again, or use an earlier copy")
    if spec.get(DIGEST) != json_digest(spec):
        raise CheckpointError(f"model spec {spec_path} was changed after it was exported (its digest does not match): "
                              "export the model again, or use an earlier copy")
    arrays, _ = load_arrays(weights, "model weights", MODEL_FORMAT, MODEL_VERSION)
    if file_sha256(weights) != spec.get(WEIGHTS_SHA256):
        raise CheckpointError(f"model weights {weights} are not the ones exported with {spec_path.name} (their "
                              "SHA-256 differs): export the model again, or use an earlier copy")
    return arrays, {k: v for k, v in spec.items() if k not in (WEIGHTS_SHA256, DIGEST)}


def copy_model(source: str | Path, destination: str | Path) -> tuple[Path, Path]:
    """Copy an exported model (both files, each atomically), e.g. from a run folder to ``icrl_course/pretrained``."""
    read_model(source)  # refuse to copy a broken model
    for src, dst in zip(model_paths(source), model_paths(destination)):
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
    return model_paths(destination)


# ------------------------------------------------------------------ by name, as networks and agents
def available() -> list[str]:
    """Names of the shipped checkpoints."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.json") if p.with_suffix(".safetensors").exists())


def resolve(name_or_path: str | Path) -> Path:
    """The stem (path without suffix) of an exported model, from a shipped name, a run folder or a file path."""
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "model"
    weights, spec = model_paths(path)
    if weights.exists() or spec.exists():
        return spec.with_suffix("")
    if str(name_or_path) in available():
        return PRETRAINED_DIR / str(name_or_path)
    raise CheckpointError(f"no exported model at {name_or_path!r} and no shipped checkpoint of that name; "
                          f"shipped: {available()}; or pass a run folder or a .json/.safetensors path")


def load_network(name_or_path: str | Path, device: str = "cpu"):
    """The Q-network (``models.protocol.QNetwork``, in eval mode) and its spec (training config, time, last evaluation).

    The network is rebuilt from the spec's model section and seed, exactly as
    training built it, then receives the trained tensors.
    """
    from icrl_course.train.build import build_network, parameters_at_least
    from icrl_course.train.config import ConfigError, model_section

    stem = resolve(name_or_path)
    arrays, spec = read_model(stem)
    try:
        section = model_section(spec["model"])
    except (ConfigError, KeyError) as err:
        raise CheckpointError(f"{stem}.json does not describe a model this library builds: {err}") from None
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CheckpointError(f"{stem}.json: seed={seed!r} must be an int >= 0")
    least, stored = parameters_at_least(section), sum(int(a.size) for a in arrays.values())
    if least is not None and least > stored:
        raise CheckpointError(f"{stem}.json describes a model of at least {least:,} values but {stem}.safetensors "
                              f"holds {stored:,}: the spec does not belong to these weights")
    network = build_network(section, seed=seed, device=device)
    load_tensors(network.trainable(), arrays, "model", f"{stem}.safetensors")
    return network.eval(), spec


def load_agent(name_or_path: str | Path, reset_context_every_episode: bool = False, epsilon: float = 0.0,
               device: str = "cpu", name: str | None = None):
    """A shipped or saved model, of either kind, as an agent for ``run_trials`` (greedy by default).

    ``reset_context_every_episode=True`` gives the first-episode-only ablation:
    the context is wiped at every episode start, so nothing can carry over.
    """
    network, spec = load_network(name_or_path, device)
    label = name or ("transformer" if spec["model"]["kind"] == "transformer" else "llm")
    if reset_context_every_episode and name is None:
        label += " (context reset every episode)"
    return network.agent(epsilon=epsilon, reset_context_every_episode=reset_context_every_episode, name=label)
