"""``model.init_from``: an hf run starts from an exported model's weights, whole or under a peft adapter.

Lesson 6 fine-tunes the shipped tiny Llama this way; the checks here use a
Llama of width 16 so they take seconds.
"""

from dataclasses import asdict, replace

import pytest
import torch

from icrl_course.checkpoints import load_network, save_model
from icrl_course.data import Behaviour, generate_trials
from icrl_course.tokenize import pack
from icrl_course.train.build import build_network, check_run
from icrl_course.train.config import ConfigError, HFModel, TrainConfig

BASE = HFModel(tiny_hidden_size=16, tiny_layers=1, tiny_heads=2)


def exported_base(tmp_path, section: HFModel = BASE, seed: int = 1):
    """A "trained" tiny Llama: built from ``seed``, every weight moved by noise, exported as a run would."""
    network = build_network(section, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in network.trainable().values():
            tensor.add_(0.1 * torch.randn(tensor.shape, generator=generator))
    save_model(tmp_path / "base", network.trainable(), {"model": asdict(section), "seed": seed})
    return network, str(tmp_path / "base")


def q_values(network):
    trials = generate_trials(Behaviour("explorer", 0.3), 2, episodes=2, max_episode_steps=6, seed=5)[0]
    encoded = [network.encode(t) for t in trials]
    with torch.no_grad():
        return network.q_values(pack(encoded, max(len(e) for e in encoded), pad_id=network.pad_id))


@pytest.mark.parametrize("adapter", ["full", "lora", "ia3"])
def test_a_run_starts_with_the_exported_models_weights_and_q_values(tmp_path, adapter):
    source, path = exported_base(tmp_path)
    network = build_network(replace(BASE, adapter=adapter, init_from=path), seed=0)
    base = {n.replace(".base_layer", ""): p for n, p in network._lm().named_parameters()  # peft wraps adapted layers
            if not any(part in n for part in ("lora_", "ia3_"))}
    assert base.keys() == source.trainable().keys()
    assert all(torch.equal(base[name], tensor) for name, tensor in source.trainable().items())
    # LoRA's second matrix and IA3's scales start at 0 and 1: the adapted network computes what its source did
    torch.testing.assert_close(q_values(network), q_values(source), rtol=0, atol=1e-6)
    trained = sum(t.numel() for t in network.trainable().values())
    whole = sum(t.numel() for t in source.trainable().values())
    assert (trained == whole) if adapter == "full" else (0 < trained < whole / 10)


def test_an_exported_fine_tune_loads_back_through_its_init_from(tmp_path):
    _, path = exported_base(tmp_path)
    tuned = build_network(replace(BASE, adapter="lora", init_from=path), seed=0)
    with torch.no_grad():
        for tensor in tuned.trainable().values():
            tensor.add_(0.05)
    section = replace(BASE, adapter="lora", init_from=path)
    save_model(tmp_path / "tuned", tuned.trainable(), {"model": asdict(section), "seed": 0})
    loaded, spec = load_network(tmp_path / "tuned")
    assert spec["model"]["init_from"] == path
    torch.testing.assert_close(q_values(loaded), q_values(tuned), rtol=0, atol=1e-6)


def test_a_model_on_another_base_or_not_trained_whole_is_refused_naming_the_field(tmp_path):
    _, path = exported_base(tmp_path)
    with pytest.raises(ConfigError, match=r"model.init_from=.*another base \(tiny_hidden_size: 16 there, 32 here\)"):
        check_run(TrainConfig(model=replace(BASE, tiny_hidden_size=32, init_from=path)))
    with pytest.raises(ConfigError, match=r"another base \(tiny_rope_theta: 10000.0 there, 500000.0 here\)"):
        check_run(TrainConfig(model=replace(BASE, tiny_rope_theta=500_000.0, init_from=path)))  # positions differ
    adapted = build_network(replace(BASE, adapter="ia3"), seed=0)
    save_model(tmp_path / "ia3", adapted.trainable(), {"model": asdict(replace(BASE, adapter="ia3")), "seed": 0})
    with pytest.raises(ConfigError, match=r"it is a hf with adapter='ia3' model, but a run starts only from"):
        check_run(TrainConfig(model=replace(BASE, init_from=str(tmp_path / "ia3"))))
    with pytest.raises(ConfigError, match=r"^model.init_from='nowhere' is invalid: no exported model at 'nowhere'"):
        check_run(TrainConfig(model=replace(BASE, init_from="nowhere")))
    with pytest.raises(ConfigError, match=r"^model.init_from='paper-small' is invalid: it is a transformer model"):
        check_run(TrainConfig(model=replace(BASE, init_from="paper-small")))
    with pytest.raises(ConfigError, match=r"^model.init_from=' x' is invalid: remove the spaces"):
        HFModel(init_from=" x")
