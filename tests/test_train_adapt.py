"""``train.adapt``: one base, each fine-tuning method through the one trainer, one tidy table (tiny sizes)."""

from dataclasses import replace

import pytest

from icrl_course.train.adapt import BASE, COLUMNS, compare_methods, method_table
from icrl_course.train.config import ConfigError, TrainConfig
from tests.test_train_init_from import BASE as SECTION, exported_base

RUN = dict(map_preset="paper_ood", episodes_per_trial=2, max_episode_steps=6, iterations=2, trials_per_iteration=4,
           updates_per_iteration=1, batch_trials=4, warmup_trials=4, replay_capacity=8, eval_maps=3, eval_every=0,
           threads=1, progress=False, epsilon_start=0.3)


def test_each_method_is_measured_before_and_after_with_its_trained_values_and_time(tmp_path):
    _, base = exported_base(tmp_path)
    table = compare_methods(base, TrainConfig(model=SECTION, **RUN), tmp_path / "runs", test_maps=3)
    assert list(table.columns) == list(COLUMNS)
    assert table.groupby("method", sort=False).size().to_dict() == {BASE: 2, "full": 2, "lora": 2, "ia3": 2}
    assert set(table["split"]) == {"val", "test"} and set(table["maps"]) == {3}
    assert table[["mean_success", "low", "high", "episode_1", "episode_last"]].stack().between(0, 1).all()
    assert (table["low"] <= table["mean_success"]).all() and (table["mean_success"] <= table["high"]).all()
    trained = table.groupby("method")["trained_values"].first()
    assert trained[BASE] == 0 and 0 < trained["ia3"] < trained["lora"] < trained["full"]
    assert (table[table["method"] != BASE]["cpu_minutes"] > 0).all()
    assert set(table[table["method"] != BASE]["iterations"]) == {2}
    summary = method_table(table)
    assert list(summary.index) == ["full", "lora", "ia3"] and (summary["seeds"] == 1).all()
    assert (summary["gain"] == summary["after"] - summary["before"]).all()


def test_only_hf_models_and_known_methods_are_compared(tmp_path):
    with pytest.raises(ConfigError, match="model.kind must be 'hf'"):
        compare_methods("paper-small", TrainConfig(**RUN), tmp_path)
    with pytest.raises(ConfigError, match=r"methods \['prefix'\] are unknown"):
        compare_methods("x", TrainConfig(model=replace(SECTION), **RUN), tmp_path, methods=["prefix"])
