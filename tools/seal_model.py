"""Re-export an exported model of version 2 (written before models carried digests) as version 3, tensors unchanged.

Why: version 3 specs hold the SHA-256 of their weights file and a digest of
themselves, and loading refuses a model without them. A model exported by
version 2 of the library (e.g. a shipped checkpoint) is sealed here once,
without retraining: its tensors are read, checked (finite, and fitting the
network its spec describes) and written back bit for bit with the new spec.

Usage (from the repository root)::

    python tools/seal_model.py icrl_course/pretrained/paper-small
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from safetensors.numpy import load_file

from icrl_course.checkpoints import load_tensors, model_paths, save_model
from icrl_course.train.build import build_network
from icrl_course.train.config import model_section


def seal(stem: str) -> None:
    weights, spec_path = model_paths(stem)
    spec = json.loads(spec_path.read_text())
    if (spec.get("format"), spec.get("version")) != ("icrl-course/model", "2"):
        raise SystemExit(f"{spec_path} is {spec.get('format')!r} version {spec.get('version')!r}, not an "
                         "icrl-course/model of version 2: nothing to seal")
    arrays = load_file(weights)
    bad = [name for name, value in arrays.items() if not np.isfinite(value).all()]
    if bad:
        raise SystemExit(f"{weights}: {bad} hold NaN or infinite values; such a model cannot be sealed")
    network = build_network(model_section(spec["model"]), seed=spec.get("seed", 0))
    load_tensors(network.trainable(), arrays, "model", str(weights))  # names, shapes and dtypes must fit
    save_model(stem, network.trainable(), {k: v for k, v in spec.items() if k not in ("format", "version")})
    resealed = load_file(weights)
    assert resealed.keys() == arrays.keys() and all(np.array_equal(resealed[k], arrays[k]) for k in arrays)
    print(f"sealed {weights} and {spec_path} (version 3; {len(arrays)} tensors unchanged, bit for bit)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="exported models (stem, .json or .safetensors)")
    for stem in parser.parse_args().models:
        with torch.no_grad():
            seal(stem)


if __name__ == "__main__":
    main()
