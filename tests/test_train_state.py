"""Training states: bit-for-bit round trips of weights, Adam and random state, and clear errors for broken files."""

import numpy as np
import pytest
import torch

from icrl_course.checkpoints import CheckpointError, load_tensors, tensor_arrays
from icrl_course.io import DataFileError
from icrl_course.train.state import (
    load_optimizer_arrays, load_training_state, optimizer_arrays, restore_rng, rng_arrays, save_training_state,
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
    save_training_state(tmp_path / "s.safetensors", {**tensor_arrays(dict(net.named_parameters()), "online"), **arrays},
                        {"param_groups": groups, "iteration": 3})
    loaded, header = load_training_state(tmp_path / "s.safetensors")
    fresh, fresh_opt = trained_linear(seed=1)
    load_tensors(dict(fresh.named_parameters()), loaded, "online", "test")
    load_optimizer_arrays(fresh_opt, loaded, header["param_groups"])
    for a, b in zip(net.parameters(), fresh.parameters()):
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


def test_bfloat16_tensors_round_trip_exactly_through_float32_arrays():
    tensor = torch.randn(7).bfloat16()
    arrays = tensor_arrays({"w": tensor}, "online")
    assert arrays["online/w"].dtype == np.float32
    back = {"w": torch.zeros(7, dtype=torch.bfloat16)}
    load_tensors(back, arrays, "online", "test")
    assert torch.equal(back["w"], tensor)


def test_torch_random_state_round_trips():
    saved = rng_arrays()
    first = torch.rand(3)
    restore_rng(saved)
    assert torch.equal(torch.rand(3), first)


def test_weights_for_another_architecture_are_refused_with_the_names():
    net, _ = trained_linear()
    other = torch.nn.Linear(3, 2)
    with pytest.raises(CheckpointError, match="do not fit this model"):
        load_tensors(dict(other.named_parameters()), tensor_arrays(dict(net.named_parameters()), "online"), "online", "t")


def test_weights_of_another_shape_are_refused_naming_the_tensor():
    arrays = tensor_arrays({"weight": torch.zeros(2, 3)}, "online")
    with pytest.raises(DataFileError, match=r"'weight' has shape \(2, 3\) but the model expects \(3, 2\)"):
        load_tensors({"weight": torch.zeros(3, 2)}, arrays, "online", "test")


def test_truncated_training_state_gives_a_clear_error(tmp_path):
    net, _ = trained_linear()
    path = save_training_state(tmp_path / "s.safetensors", tensor_arrays(dict(net.named_parameters()), "online"), {})
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DataFileError, match="truncated or corrupted"):
        load_training_state(path)


def test_a_training_state_holding_nan_is_refused(tmp_path):
    path = save_training_state(tmp_path / "s.safetensors", {"online/w": np.array([1.0, np.nan])}, {})
    with pytest.raises(DataFileError, match="'online/w' holds NaN"):
        load_training_state(path)


def test_weights_of_another_type_are_refused_naming_the_tensor():
    arrays = {"online/steps": np.zeros(3, dtype=np.float64)}
    with pytest.raises(DataFileError, match=r"'steps' is float64 but float32 is expected"):
        load_tensors({"steps": torch.zeros(3)}, arrays, "online", "test")
