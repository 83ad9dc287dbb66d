"""Pre-trained in-context learners shipped with the course, and loading any exported model as an agent.

Why ship checkpoints: training the lesson-5 learner to its full curve takes
tens of minutes on a laptop CPU; later lessons (and impatient learners) load
the one made by the library's own command instead, with one call::

    from icrl_course.checkpoints import load_agent
    agent = load_agent("paper-small")          # a shipped checkpoint, by name
    agent = load_agent("runs/my-run")          # or any run folder / exported model path

Each shipped checkpoint is a ``NAME.safetensors`` (weights) and a
``NAME.json`` (model size, tokenizer, the training config that made it and
how long it trained); ``icrl_course/configs/NAME.json`` is the config to
retrain it with ``icrl-course train --config``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from icrl_course.models.agent import TransformerAgent
from icrl_course.models.transformer import QTransformer, TransformerConfig
from icrl_course.runtime import pick_device
from icrl_course.tokenize.compact import CompactTokenizer
from icrl_course.train.checkpoint import CheckpointError, load_module_arrays, model_paths, read_model

CHECKPOINT_DIR = Path(__file__).resolve().parent
"""Folder of the shipped checkpoints."""


def available() -> list[str]:
    """Names of the shipped checkpoints."""
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.json") if p.with_suffix(".safetensors").exists())


def resolve(name_or_path: str | Path) -> Path:
    """The stem (path without suffix) of an exported model, from a shipped name, a run folder or a file path."""
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "model"
    weights, spec = model_paths(path)
    if weights.exists() or spec.exists():
        return spec.with_suffix("")
    if str(name_or_path) in available():
        return CHECKPOINT_DIR / str(name_or_path)
    raise CheckpointError(f"no exported model at {name_or_path!r} and no shipped checkpoint of that name; "
                          f"shipped: {available()}; or pass a run folder or a .json/.safetensors path")


def load_model(name_or_path: str | Path, device: str = "cpu") -> tuple[QTransformer, CompactTokenizer, dict[str, Any]]:
    """The Q-network, its tokenizer and its spec (training config, training time, last evaluation)."""
    arrays, spec = read_model(resolve(name_or_path))
    model = QTransformer(TransformerConfig.from_dict(spec["model"]), seed=None)
    load_module_arrays(model, arrays, "model")
    tokenizer = CompactTokenizer(edge_cap=spec["tokenizer"]["edge_cap"],
                                 reward_values=tuple(spec["tokenizer"]["reward_values"]))
    return model.to(pick_device(device)).eval(), tokenizer, spec


def load_agent(name_or_path: str | Path, reset_context_every_episode: bool = False, epsilon: float = 0.0,
               device: str = "cpu", name: str | None = None) -> TransformerAgent:
    """A shipped or saved model as an agent for ``run_trials`` (greedy by default).

    ``reset_context_every_episode=True`` gives the first-episode-only ablation:
    the context is wiped at every episode start, so nothing can carry over.
    """
    model, tokenizer, _ = load_model(name_or_path, device)
    label = name or ("transformer (context reset every episode)" if reset_context_every_episode else "transformer")
    return TransformerAgent(model, tokenizer, epsilon=epsilon,
                            reset_context_every_episode=reset_context_every_episode, name=label)
