"""Exported models are refused when anything in them changed, before any network is allocated: root causes 5
(tampered checkpoints that load and play silently) and 6 (a tampered spec that allocates gigabytes) of issue 15,
and the property that random byte corruptions of a checkpoint are always refused cleanly."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import icrl_course.checkpoints as checkpoints
from icrl_course.checkpoints import CheckpointError, load_network, save_model
from icrl_course.cli import main
from icrl_course.io import DataFileError, file_sha256, json_digest, save_arrays, write_json
from icrl_course.train.build import build_network
from icrl_course.train.config import TrainConfig
from icrl_course.train.state import load_training_state, save_training_state

# edge_cap 4 pins the vocabulary (61 tokens) the hand-counted sizes below were computed for
SMALL = {"n_layer": 1, "n_embd": 16, "n_head": 2, "edge_cap": 4}


def exported(folder: Path, **model) -> Path:
    config = TrainConfig(model={**SMALL, **model})
    network = build_network(config.model, seed=3)
    save_model(folder / "m", network.trainable(), {"model": config.to_dict()["model"], "seed": 3,
                                                    "train_config": config.to_dict()})
    return folder / "m"


def edit_spec(stem: Path, change) -> None:
    """Edit the spec as a careless user would: a value changes, the file keeps export's layout and old digest."""
    spec = json.loads(stem.with_suffix(".json").read_text())
    change(spec)
    stem.with_suffix(".json").write_text(json.dumps(spec, indent=2) + "\n")


def forge(stem: Path, arrays=None, change_spec=None) -> None:
    """Rewrite a model as a deliberate forger would: new weights and/or spec, with every digest recomputed, so
    only the structural checks can refuse it."""
    weights, spec_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    spec = json.loads(spec_path.read_text())
    if arrays is not None:
        save_arrays(weights, arrays, {"format": "icrl-course/model", "version": "3"})
    if change_spec is not None:
        change_spec(spec)
    spec["weights_sha256"] = file_sha256(weights)
    spec["digest"] = json_digest(spec)
    write_json(spec_path, spec)


def weights_of(stem: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(stem.with_suffix(".safetensors"))


# ------------------------------------------------------------------ root cause 5: any edit is caught
SPEC_EDITS = [
    pytest.param(lambda s: s["model"].update(n_head=4), id="n_head"),
    pytest.param(lambda s: s["model"].update(dropout=0.5), id="dropout"),
    pytest.param(lambda s: s.update(seed=4), id="seed"),
    pytest.param(lambda s: s["train_config"].update(lr=1.0), id="train_config"),
    pytest.param(lambda s: s.update(trained={"last_eval": {"mean_success": 0.99}}), id="claimed-result"),
    pytest.param(lambda s: s.update(digest="0" * 64), id="digest-itself"),
]


@pytest.mark.parametrize("change", SPEC_EDITS)
def test_a_spec_edited_after_export_is_refused(tmp_path, change):
    stem = exported(tmp_path)
    edit_spec(stem, change)
    with pytest.raises(CheckpointError, match="was changed after it was exported .*export the model again"):
        load_network(stem)


def test_a_spec_whose_layout_changed_is_refused(tmp_path):
    stem = exported(tmp_path)
    spec = stem.with_suffix(".json")
    spec.write_text(spec.read_text().replace("\n  ", "\n\t", 1))  # same values, other whitespace
    with pytest.raises(CheckpointError, match="is not laid out as export writes it"):
        load_network(stem)


def test_a_spec_with_windows_line_endings_still_loads(tmp_path):
    stem = exported(tmp_path)
    spec = stem.with_suffix(".json")
    spec.write_bytes(spec.read_bytes().replace(b"\n", b"\r\n"))  # a git checkout with autocrlf
    load_network(stem)


@pytest.mark.parametrize(("damage", "message"), [
    pytest.param(lambda raw: raw[:-1] + bytes([raw[-1] ^ 0x40]), "does not match the digest written with it", id="bit-flip"),
    pytest.param(lambda raw: raw[:-4], "truncated or corrupted", id="truncated"),
    pytest.param(lambda raw: b"", "truncated or corrupted", id="emptied"),
])
def test_weights_changed_after_export_are_refused(tmp_path, damage, message):
    stem = exported(tmp_path)
    weights = stem.with_suffix(".safetensors")
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(DataFileError, match=message):
        load_network(stem)


def test_weights_of_another_export_are_refused_by_their_sha256(tmp_path):
    stem, other = exported(tmp_path), exported(tmp_path / "other", n_layer=1)
    save_arrays(stem.with_suffix(".safetensors"), {k: v * 2 for k, v in weights_of(other).items()},
                {"format": "icrl-course/model", "version": "3"})  # a valid file, just not the exported one
    with pytest.raises(CheckpointError, match="are not the ones exported with m.json \\(their SHA-256 differs\\)"):
        load_network(stem)


FORGERIES = [
    pytest.param(lambda w: {k: v.astype(np.int32) for k, v in w.items()}, None,
                 r"'embed.table.weight' is int32 but float32 is expected", id="int32-weights"),
    pytest.param(lambda w: {k: v.astype(np.float64) for k, v in w.items()}, None, "is float64 but float32", id="float64"),
    pytest.param(lambda w: {**w, "model/head.weight": w["model/head.weight"] * np.nan}, None,
                 "array 'model/head.weight' holds NaN or infinite values", id="nan-weights"),
    pytest.param(lambda w: {**w, "model/head.weight": w["model/head.weight"] + np.inf}, None,
                 "holds NaN or infinite values", id="inf-weights"),
    pytest.param(lambda w: {k: v for k, v in w.items() if "head" not in k}, None, "do not fit this model: missing",
                 id="weights-missing"),
    pytest.param(None, lambda s: s["model"].update(n_layer=2), "describes a model of at least 7,120 values but .*m.safetensors "
                 "holds 4,356", id="n_layer-up"),
    pytest.param(None, lambda s: s["model"].update(n_embd=8, n_head=2), r"'embed.table.weight' has shape \(61, 16\) but the model expects \(61, 8\)",
                 id="n_embd-down"),
    pytest.param(None, lambda s: s["model"].update(kind="gpt5"), "does not describe a model this library builds",
                 id="unknown-kind"),
    pytest.param(None, lambda s: s["model"].update(n_layers=2), "does not describe a model .* unknown config field",
                 id="unknown-field"),
    pytest.param(None, lambda s: s.update(seed=-5), "seed=-5 must be an int >= 0", id="seed"),
]


@pytest.mark.parametrize(("arrays", "spec", "message"), FORGERIES)
def test_a_forged_checkpoint_with_valid_digests_is_refused_by_its_checks(tmp_path, arrays, spec, message):
    stem = exported(tmp_path)
    forge(stem, arrays(weights_of(stem)) if arrays else None, spec)
    with pytest.raises(DataFileError, match=message) as refused:
        load_network(stem)
    assert "\n" not in str(refused.value)


def test_evaluate_refuses_a_tampered_checkpoint_in_one_line(tmp_path, capsys):
    stem = exported(tmp_path)
    edit_spec(stem, lambda s: s["model"].update(n_head=4))
    code = main(["evaluate", "--checkpoint", str(stem.with_suffix(".json")), "--maps", "2", "--episodes", "1"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "was changed after it was exported" in err


def test_the_shipped_checkpoint_carries_digests_that_match():
    spec = json.loads((checkpoints.PRETRAINED_DIR / "paper-small.json").read_text())
    assert spec["version"] == "3" and spec["digest"] == json_digest(spec)
    assert spec["weights_sha256"] == file_sha256(checkpoints.PRETRAINED_DIR / "paper-small.safetensors")


# ------------------------------------------------------------------ root cause 6: no allocation before the checks
HUGE = [
    pytest.param({"n_embd": 4096, "n_head": 64}, "at least 201,[0-9,]+ values but .*m.safetensors holds 4,356", id="n_embd"),
    pytest.param({"n_layer": 64, "n_embd": 4096, "n_head": 64}, "at least 12,[0-9,]+ values", id="n_layer-and-n_embd"),
    pytest.param({"n_embd": 1_000_000}, r"model.n_embd=1000000 is invalid: use an int from 1 to 4096", id="n_embd-1e6"),
    pytest.param({"n_layer": 10**9}, r"model.n_layer=1000000000 is invalid: use an int from 1 to 64", id="n_layer-1e9"),
    pytest.param({"edge_cap": 10**6}, r"model.edge_cap=1000000 is invalid", id="edge_cap"),
    pytest.param({"mlp_ratio": 10**4}, r"model.mlp_ratio=10000 is invalid", id="mlp_ratio"),
]


@pytest.mark.parametrize(("sizes", "message"), HUGE)
def test_a_spec_asking_for_a_huge_model_is_refused_before_any_network_is_built(tmp_path, monkeypatch, sizes, message):
    stem = exported(tmp_path)
    forge(stem, change_spec=lambda s: s["model"].update(sizes))

    def must_not_build(*args, **kwargs):
        raise AssertionError("a network was built before the spec was checked")

    monkeypatch.setattr("icrl_course.train.build.build_network", must_not_build)
    with pytest.raises(DataFileError, match=message):
        load_network(stem)


# ------------------------------------------------------------------ property: any byte corruption is refused
@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("model")
    stem = exported(folder)
    save_training_state(folder / "state.safetensors", {"online/w": np.arange(6, dtype=np.float32)},
                        {"config": TrainConfig(model=SMALL).to_dict(), "iteration": 0})
    return {"m.safetensors": stem.with_suffix(".safetensors").read_bytes(), "m.json": stem.with_suffix(".json").read_bytes(),
            "state.safetensors": (folder / "state.safetensors").read_bytes()}


CORRUPTIONS = st.one_of(
    st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), min_size=1, max_size=6).map(lambda e: ("set", e)),
    st.integers(0, 10**7).map(lambda n: ("cut", n)),
    st.binary(min_size=1, max_size=32).map(lambda b: ("append", b)),
    st.tuples(st.integers(0, 10**7), st.binary(min_size=1, max_size=16)).map(lambda e: ("insert", e)),
)


def corrupt(raw: bytes, corruption) -> bytes:
    kind, what = corruption
    if kind == "cut":
        return raw[: what % len(raw)]
    if kind == "append":
        return raw + what
    if kind == "insert":
        at = what[0] % len(raw)
        return raw[:at] + what[1] + raw[at:]
    data = bytearray(raw)
    for position, value in what:
        data[position % len(data)] = value
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(["m.safetensors", "m.json", "state.safetensors"]), corruption=CORRUPTIONS)
def test_any_byte_corruption_of_a_checkpoint_is_refused_cleanly(tmp_path, pristine, target, corruption):
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    for name, data in pristine.items():
        (folder / name).write_bytes(data)
    damaged = corrupt(pristine[target], corruption)
    if damaged == pristine[target]:
        return  # the corruption wrote the bytes that were there
    (folder / target).write_bytes(damaged)
    with pytest.raises(DataFileError) as refused:
        if target == "state.safetensors":
            load_training_state(folder / target)
        else:
            load_network(folder / "m")
    assert "\n" not in str(refused.value)
