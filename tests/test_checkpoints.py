"""Exported models: two files that load back as a network of either kind, shipped ones by name, broken ones refused."""

import numpy as np
import pytest
import torch

from icrl_course.checkpoints import (
    CheckpointError, available, copy_model, load_agent, load_network, read_model, save_model,
)
from icrl_course.io import DataFileError
from icrl_course.models.agent import TransformerAgent
from icrl_course.train.build import build_network
from icrl_course.train.config import TrainConfig
from icrl_course.train.state import save_training_state


def exported(tmp_path, **model):
    config = TrainConfig(model={"n_layer": 1, "n_embd": 16, "n_head": 2, **model})
    network = build_network(config.model, seed=3)
    weights, spec = save_model(tmp_path / "m", network.trainable(),
                               {"model": config.to_dict()["model"], "seed": 3, "train_config": config.to_dict()})
    return network, weights, spec


def test_an_exported_model_is_a_safetensors_and_a_json_that_load_back_the_same_network(tmp_path):
    network, weights, spec = exported(tmp_path)
    assert (weights.name, spec.name) == ("m.safetensors", "m.json")
    for path in (tmp_path / "m", weights, spec):
        loaded, got = load_network(path)
        assert got["seed"] == 3 and got["model"]["n_layer"] == 1
        for name, tensor in network.trainable().items():
            assert torch.equal(loaded.trainable()[name], tensor)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]


def test_the_rotary_base_of_the_model_section_is_built_and_loads_back(tmp_path):
    """``model.rope_base`` reaches the rotary table: angle = position * base ** (-2i / head_dim), so at position 1
    the slowest pair of a head of width 8 turns by base ** (-3/4) radians."""
    network, _, _ = exported(tmp_path, rope_base=500_000.0)
    loaded, spec = load_network(tmp_path / "m")
    assert spec["model"]["rope_base"] == 500_000.0
    for net in (network, loaded):
        slowest = torch.atan2(net.model.rotary.sin[1, -1], net.model.rotary.cos[1, -1])
        torch.testing.assert_close(slowest, torch.tensor(500_000.0 ** -0.75))


def test_direction_relations_are_built_and_load_back(tmp_path):
    network, _, _ = exported(tmp_path, cell_relations=True, direction_relations=True)
    loaded, spec = load_network(tmp_path / "m")
    assert spec["model"]["direction_relations"] and loaded.model.config.direction_relations
    assert loaded.model.relation_bias.shape == (10, 1, 2)
    assert torch.equal(loaded.trainable()["relation_bias"], network.trainable()["relation_bias"])


def test_the_shipped_checkpoint_loads_by_name_as_an_agent():
    assert "paper-small" in available()
    agent = load_agent("paper-small", reset_context_every_episode=True)
    assert isinstance(agent, TransformerAgent) and agent.reset_context_every_episode
    assert agent.name == "transformer (context reset every episode)"


def test_the_shipped_tiny_llama_loads_by_name_as_a_hugging_face_agent():
    from icrl_course.models.hf import HFAgent

    assert "tiny-llama" in available()
    agent = load_agent("tiny-llama", reset_context_every_episode=True)
    assert isinstance(agent, HFAgent) and agent.reset_context_every_episode
    assert type(agent.qnet._lm()).__name__ == "LlamaForCausalLM"


def test_an_exported_model_without_its_json_says_so(tmp_path):
    _, weights, spec = exported(tmp_path)
    spec.unlink()
    with pytest.raises(DataFileError, match="does not exist"):
        read_model(weights)


def test_a_training_state_is_not_mistaken_for_an_exported_model(tmp_path):
    _, weights, _ = exported(tmp_path)
    save_training_state(weights, {"online/w": np.zeros(1)}, {})
    with pytest.raises(DataFileError, match="not a 'icrl-course/model' file"):
        read_model(tmp_path / "m")


def test_weights_that_do_not_fit_the_spec_are_refused(tmp_path):
    _, weights, _ = exported(tmp_path)
    other = build_network(TrainConfig(model={"n_layer": 2, "n_embd": 16, "n_head": 2}).model)
    save_model(tmp_path / "m", other.trainable(), read_model(tmp_path / "m")[1])
    with pytest.raises(CheckpointError, match="do not fit this model"):
        load_network(tmp_path / "m")


def test_copying_refuses_a_broken_model_and_copies_a_good_one(tmp_path):
    _, weights, _ = exported(tmp_path)
    copy_model(tmp_path / "m", tmp_path / "copy" / "m2")
    assert read_model(tmp_path / "copy" / "m2")[1]["seed"] == 3
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(DataFileError, match="truncated or corrupted"):
        copy_model(tmp_path / "m", tmp_path / "copy" / "m3")


def test_an_unknown_name_lists_the_shipped_checkpoints():
    with pytest.raises(CheckpointError, match=r"no shipped checkpoint of that name; shipped: \[.*'paper-small'"):
        load_agent("paper-huge")
