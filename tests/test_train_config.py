"""TrainConfig: invalid values are refused with the field's name; configs survive JSON and overrides."""

import json

import pytest

from icrl_course.dqn import DQNConfig
from icrl_course.train.config import ConfigError, HFModel, TrainConfig, TransformerModel


@pytest.mark.parametrize("field, value", [
    ("lr", -1e-3), ("lr", 0.0), ("gamma", 1.5), ("tau", 0.0), ("episodes_per_trial", 0), ("lr_warmup", -1),
    ("max_episode_steps", 0), ("epsilon_end", 2.0), ("map_preset", "mars"), ("context_length", -1),
    ("batch_trials", 0), ("lr_schedule", "step"), ("source", "tape"), ("device", "tpu"), ("iterations", 0), ("checkpoint_every", 0),
    ("micro_batches", 0), ("micro_batches", 65), ("episode_discount", 1.5), ("exploration_bonus", -0.1),
    ("exploration_bonus", 1.5), ("exploration_bonus", float("nan")), ("average_from", -1), ("average_from", 1001),
    ("average_every", 0),
])
def test_invalid_value_is_rejected_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"^{field}="):
        TrainConfig(**{field: value})


def test_episode_discount_needs_one_step_targets():
    with pytest.raises(ConfigError, match=r"^episode_discount=0.9 is invalid: works with one-step targets only: set "
                                          r"n_step=1 \(it is 3\)"):
        TrainConfig(episode_discount=0.9, n_step=3)
    assert TrainConfig(episode_discount=0.9).dqn_config().episode_discount == 0.9


@pytest.mark.parametrize("section, field, value", [
    ({"kind": "transformer"}, "n_head", 0), ({"kind": "transformer"}, "edge_cap", 0),
    ({"kind": "transformer"}, "dropout", 1.0), ({"kind": "transformer"}, "relative_cap", -1),
    ({"kind": "transformer"}, "cell_relations", 1), ({"kind": "transformer"}, "goal_relation", True),
    ({"kind": "transformer", "cell_relations": True}, "goal_relation", "yes"),
    ({"kind": "transformer", "cell_relations": True}, "direction_relations", 1), ({"kind": "hf"}, "adapter", "prefix"), ({"kind": "hf"}, "format", "yaml"),
    ({"kind": "hf"}, "dtype", "fp8"), ({"kind": "hf"}, "tiny_heads", 0), ({"kind": "hf"}, "target_modules", []),
    ({"kind": "hf"}, "tiny_kv_heads", 3), ({"kind": "hf"}, "tiny_kv_heads", -1), ({"kind": "hf"}, "tiny_mlp_ratio", 0),
    ({"kind": "hf"}, "tiny_embedding_init", "xavier"), ({"kind": "hf", "format": "paper"}, "tiny_embedding_init", "fields"),
])
def test_invalid_model_values_are_rejected_naming_the_model_field(section, field, value):
    with pytest.raises(ConfigError, match=rf"^model\.{field}="):
        TrainConfig(model={**section, field: value})


def test_goal_relation_says_it_needs_cell_relations():
    with pytest.raises(ConfigError, match=r"^model.goal_relation=True is invalid: it is one more relation of "
                                          r"cell_relations: set model.cell_relations=true too"):
        TrainConfig(model={"kind": "transformer", "goal_relation": True})
    assert TrainConfig(model={"kind": "transformer", "cell_relations": True, "goal_relation": True}).model.goal_relation
    with pytest.raises(ConfigError, match=r"^model.direction_relations=True is invalid: they are more relations of "
                                          r"cell_relations: set model.cell_relations=true too"):
        TrainConfig(model={"kind": "transformer", "direction_relations": True})


def test_the_model_section_says_which_kind_and_an_unknown_kind_is_refused():
    assert isinstance(TrainConfig().model, TransformerModel)
    assert isinstance(TrainConfig(model={"kind": "hf", "adapter": "ia3"}).model, HFModel)
    with pytest.raises(ConfigError, match=r"model.kind='rnn' is invalid: choose one of \['transformer', 'hf'\]"):
        TrainConfig(model={"kind": "rnn"})
    with pytest.raises(ConfigError, match=r"unknown config field\(s\) \['model.adapter'\]"):
        TrainConfig(model={"kind": "transformer", "adapter": "ia3"})


def test_the_objectives_defaults_are_dqn_configs_defaults():
    config, dqn = TrainConfig(), DQNConfig()
    assert config.dqn_config() == dqn
    assert (config.tau, config.gamma, config.reward_scale) == (dqn.tau, dqn.gamma, dqn.reward_scale)


def test_wrong_type_is_rejected_naming_the_field():
    with pytest.raises(ConfigError, match="^iterations=.*int"):
        TrainConfig(iterations=10.5)
    with pytest.raises(ConfigError, match="^double_dqn=.*bool"):
        TrainConfig(double_dqn="yes")


def test_n_embd_must_split_into_heads_of_even_size():
    with pytest.raises(ConfigError, match="model.n_embd=.*multiple of 2 \\* n_head = 6"):
        TrainConfig(model={"n_embd": 64, "n_head": 3})


def test_offline_training_needs_a_dataset_and_online_refuses_one():
    with pytest.raises(ConfigError, match="^dataset="):
        TrainConfig(source="offline")
    with pytest.raises(ConfigError, match="^dataset="):
        TrainConfig(dataset="d.safetensors")


def test_bad_map_options_name_the_field_and_the_reason():
    with pytest.raises(ConfigError, match="map_options=.*p_hole"):
        TrainConfig(map_options={"p_hole": 3.0})


def test_unknown_field_is_refused_listing_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown config field\(s\) \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 1e-3})


@pytest.mark.parametrize("model", [{"kind": "transformer", "n_layer": 2}, {"kind": "hf", "adapter": "lora", "lora_r": 4}])
def test_json_round_trip_gives_an_equal_config(tmp_path, model):
    config = TrainConfig(model=model, seed=3, lr=3e-4, map_preset="gymnasium", map_options={"size": 4})
    config.to_json(tmp_path / "c.json")
    assert TrainConfig.from_json(tmp_path / "c.json") == config


def test_overrides_parse_json_values_and_plain_text():
    config = TrainConfig().with_overrides(["lr=3e-4", "iterations=12", "double_dqn=false", "device=cpu",
                                           'map_options={"rows": [3, 4]}'])
    assert (config.lr, config.iterations, config.double_dqn, config.device) == (3e-4, 12, False, "cpu")
    assert config.map_options == {"rows": [3, 4]}


def test_overrides_reach_into_the_model_section_and_can_replace_it():
    config = TrainConfig().with_overrides(["model.n_layer=4", "model.dropout=0"])
    assert (config.model.n_layer, config.model.dropout) == (4, 0.0)
    llama = config.with_overrides(['model={"kind": "hf", "adapter": "ia3"}', "model.lora_r=2"])
    assert (llama.model.adapter, llama.model.lora_r) == ("ia3", 2)
    with pytest.raises(ConfigError, match="'lr' is not a section"):
        config.with_overrides(["lr.x=1"])


def test_override_of_an_int_into_a_float_field_is_accepted():
    assert TrainConfig().with_overrides(["lr=1"]).lr == 1.0


def test_malformed_override_says_what_it_should_look_like():
    with pytest.raises(ConfigError, match="key=value"):
        TrainConfig().with_overrides(["lr"])


def test_epsilon_falls_linearly_over_its_fraction_then_stays():
    config = TrainConfig(iterations=100, epsilon_start=1.0, epsilon_end=0.1, epsilon_fraction=0.3)
    assert config.epsilon(0) == 1.0
    assert config.epsilon(15) == pytest.approx(0.55)
    assert config.epsilon(30) == pytest.approx(0.1)
    assert config.epsilon(99) == pytest.approx(0.1)


def test_changes_lists_the_fields_that_differ_model_fields_by_their_dotted_name():
    assert TrainConfig().changes(TrainConfig(lr=5e-4, seed=2, model={"n_layer": 2})) == {
        "model.n_layer": (3, 2), "seed": (0, 2), "lr": (1e-3, 5e-4)}


def test_configs_kept_in_the_library_load_by_name_and_unknown_names_list_the_known():
    assert TrainConfig.named("paper-small").map_preset == "paper"
    assert TrainConfig.named("tiny-llama").model.kind == "hf"
    with pytest.raises(ConfigError, match="known: .*paper-small"):
        TrainConfig.named("paper-huge")


def test_named_also_reads_a_json_path_and_a_missing_file_is_named(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({**TrainConfig.named("paper-small").to_dict(), "lr": 3e-4}))
    assert TrainConfig.named(str(path)).lr == 3e-4
    assert TrainConfig.named("icrl_course/configs/paper-small.json") == TrainConfig.named("paper-small")
    with pytest.raises(ConfigError, match=r"config file .*nope\.json does not exist"):
        TrainConfig.named(str(tmp_path / "nope.json"))
    (tmp_path / "latin1.json").write_bytes(b"\xff{}")
    with pytest.raises(ConfigError, match=r"latin1\.json is not UTF-8 text \(byte 0\)"):
        TrainConfig.named(str(tmp_path / "latin1.json"))
    with pytest.raises(ConfigError, match=r"cannot be read \(Is a directory\)"):
        TrainConfig.from_json(tmp_path)


def test_cosine_learning_rate_falls_from_lr_to_zero_and_constant_stays():
    cosine = TrainConfig(iterations=100, lr=1e-3, lr_schedule="cosine")
    assert cosine.learning_rate(0) == 1e-3
    assert cosine.learning_rate(50) == pytest.approx(5e-4)
    assert cosine.learning_rate(100) == pytest.approx(0.0)
    assert TrainConfig(lr=1e-3).learning_rate(70) == 1e-3


def test_warm_up_raises_the_learning_rate_linearly_then_the_schedule_holds():
    config = TrainConfig(iterations=100, lr=1e-2, lr_warmup=4)
    assert [config.learning_rate(i) for i in range(5)] == pytest.approx([2.5e-3, 5e-3, 7.5e-3, 1e-2, 1e-2])


def test_the_papers_llama_config_has_the_papers_numbers():
    paper = TrainConfig.named("llama31-8b-paper")
    assert (paper.model.model, paper.model.adapter, paper.model.format, paper.model.dtype) == (
        "meta-llama/Llama-3.1-8B-Instruct", "ia3", "paper", "auto")
    assert (paper.lr, paper.gamma, paper.reward_scale, paper.tau, paper.context_length, paper.max_episode_steps,
            paper.source) == (1e-2, 0.9, 30.0, 0.1, 4096, 100, "offline")
