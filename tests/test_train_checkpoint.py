"""Checkpoint files: bit-for-bit round trips, atomic writes, clear errors for broken files."""

import numpy as np
import pytest
import torch

from icrl_course.train.checkpoint import (
    CheckpointError,
    load_module_arrays,
    load_optimizer_arrays,
    load_training_state,
    module_arrays,
    optimizer_arrays,
    read_model,
    restore_rng,
    rng_arrays,
    save_model,
    save_training_state,
)


def trained_linear(seed: int = 0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(4, 3)).pow(2).mean().backward()
        opt.step()
    return net, opt


def test_weights_and_adam_state_round_trip_bit_for_bit(tmp_path):
    net, opt = trained_linear()
    arrays, groups = optimizer_arrays(opt)
    save_training_state(tmp_path / "s.safetensors", {**module_arrays(net, "model"), **arrays},
                        {"param_groups": groups, "iteration": 3})
    loaded, header = load_training_state(tmp_path / "s.safetensors")
    fresh, fresh_opt = trained_linear(seed=1)
    load_module_arrays(fresh, loaded, "model")
    load_optimizer_arrays(fresh_opt, loaded, header["param_groups"])
    for a, b in zip(net.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    # One more identical step from both keeps them identical: Adam's moments and step count came back.
    x = torch.randn(4, 3)
    for model, optim in ((net, opt), (fresh, fresh_opt)):
        optim.zero_grad()
        model(x).pow(2).mean().backward()
        optim.step()
    for a, b in zip(net.parameters(), fresh.parameters()):
        assert torch.equal(a, b)
    assert header["iteration"] == 3


def test_torch_random_state_round_trips():
    saved = rng_arrays()
    first = torch.rand(3)
    restore_rng(saved)
    assert torch.equal(torch.rand(3), first)


def test_weights_for_another_architecture_are_refused_with_the_names(tmp_path):
    net, _ = trained_linear()
    other = torch.nn.Linear(3, 2)
    with pytest.raises(CheckpointError, match="do not fit this model"):
        load_module_arrays(other, module_arrays(net, "model"), "model")


def test_truncated_training_state_gives_a_clear_error(tmp_path):
    net, _ = trained_linear()
    path = save_training_state(tmp_path / "s.safetensors", module_arrays(net, "model"), {"iteration": 1})
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_training_state(path)


def test_corrupted_training_state_header_gives_a_clear_error(tmp_path):
    net, _ = trained_linear()
    path = save_training_state(tmp_path / "s.safetensors", module_arrays(net, "model"), {"iteration": 1})
    data = bytearray(path.read_bytes())
    data[8:20] = b"\xff" * 12
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_training_state(path)


def test_exported_model_is_a_safetensors_and_a_json_that_load_back(tmp_path):
    net, _ = trained_linear()
    weights, spec = save_model(tmp_path / "tiny", net, {"model": {"width": 5}})
    assert (weights.name, spec.name) == ("tiny.safetensors", "tiny.json")
    for path in (tmp_path / "tiny", weights, spec):
        arrays, got = read_model(path)
        assert got["model"] == {"width": 5}
        assert np.array_equal(arrays["model/0.weight"], net[0].weight.detach().numpy())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json", "tiny.safetensors"]


def test_exported_model_without_its_json_says_so(tmp_path):
    net, _ = trained_linear()
    weights, spec = save_model(tmp_path / "tiny", net, {})
    spec.unlink()
    with pytest.raises(CheckpointError, match="does not exist"):
        read_model(weights)


def test_a_training_state_is_not_mistaken_for_an_exported_model(tmp_path):
    net, _ = trained_linear()
    save_model(tmp_path / "tiny", net, {})
    save_training_state(tmp_path / "tiny.safetensors", module_arrays(net, "model"), {})
    with pytest.raises(CheckpointError, match="not a 'icrl-course/model' file"):
        read_model(tmp_path / "tiny")
