"""TrainConfig: invalid values are refused with the field's name; configs survive JSON and overrides."""

import pytest

from icrl_course.train.config import ConfigError, TrainConfig


@pytest.mark.parametrize("field, value", [
    ("lr", -1e-3), ("lr", 0.0), ("gamma", 1.5), ("tau", 0.0), ("n_head", 0), ("episodes_per_trial", 0),
    ("max_episode_steps", 0), ("epsilon_end", 2.0), ("map_preset", "mars"), ("edge_cap", 0),
    ("batch_trials", 0), ("lr_schedule", "step"), ("source", "tape"), ("device", "tpu"), ("iterations", 0), ("checkpoint_every", 0),
])
def test_invalid_value_is_rejected_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"^{field}="):
        TrainConfig(**{field: value})


def test_wrong_type_is_rejected_naming_the_field():
    with pytest.raises(ConfigError, match="^iterations=.*int"):
        TrainConfig(iterations=10.5)
    with pytest.raises(ConfigError, match="^double_dqn=.*bool"):
        TrainConfig(double_dqn="yes")


def test_n_embd_must_split_into_heads_of_even_size():
    with pytest.raises(ConfigError, match="n_embd=.*multiple of 2 \\* n_head = 6"):
        TrainConfig(n_embd=64, n_head=3)


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


def test_json_round_trip_gives_an_equal_config(tmp_path):
    config = TrainConfig(seed=3, lr=3e-4, map_preset="gymnasium", map_options={"size": 4})
    config.to_json(tmp_path / "c.json")
    assert TrainConfig.from_json(tmp_path / "c.json") == config


def test_overrides_parse_json_values_and_plain_text():
    config = TrainConfig().with_overrides(["lr=3e-4", "iterations=12", "double_dqn=false", "device=cpu",
                                           'map_options={"rows": [3, 4]}'])
    assert (config.lr, config.iterations, config.double_dqn, config.device) == (3e-4, 12, False, "cpu")
    assert config.map_options == {"rows": [3, 4]}


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


def test_changes_lists_the_fields_that_differ():
    assert TrainConfig().changes(TrainConfig(lr=5e-4, seed=2)) == {"seed": (0, 2), "lr": (1e-3, 5e-4)}


def test_configs_kept_in_the_library_load_by_name_and_unknown_names_list_the_known():
    assert TrainConfig.named("paper-small").map_preset == "paper"
    with pytest.raises(ConfigError, match="known: .*paper-small"):
        TrainConfig.named("paper-huge")


def test_cosine_learning_rate_falls_from_lr_to_zero_and_constant_stays():
    cosine = TrainConfig(iterations=100, lr=1e-3, lr_schedule="cosine")
    assert cosine.learning_rate(0) == 1e-3
    assert cosine.learning_rate(50) == pytest.approx(5e-4)
    assert cosine.learning_rate(100) == pytest.approx(0.0)
    assert TrainConfig(lr=1e-3).learning_rate(70) == 1e-3
