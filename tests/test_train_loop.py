"""The training loop on tiny transformer configs: loss falls, runs are reproducible, checkpoints resume and fail
loudly. ``test_train_kinds.py`` runs both model kinds through the command, a kill and a reload."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from icrl_course.data import Behaviour, generate_trials, save_dataset
from icrl_course.io import DataFileError
from icrl_course.train.config import ConfigError, TrainConfig
from icrl_course.train.log import read_metrics
from icrl_course.train.loop import train

TINY = dict(model={"n_layer": 1, "n_embd": 16, "n_head": 2}, episodes_per_trial=3, max_episode_steps=10,
            trials_per_iteration=8, updates_per_iteration=2, batch_trials=8, replay_capacity=64, warmup_trials=8,
            eval_maps=8, threads=1, progress=False)


def tiny(**changes) -> TrainConfig:
    return TrainConfig(**{**TINY, **changes})


@pytest.fixture(scope="module")
def oracle_dataset(tmp_path_factory) -> Path:
    trials, generation = generate_trials(Behaviour("oracle", 0.2), 64, episodes=3, max_episode_steps=10, seed=0)
    return save_dataset(tmp_path_factory.mktemp("data") / "oracle.safetensors", trials, generation)


def weights(path: Path) -> dict[str, np.ndarray]:
    return load_file(path / "model.safetensors")


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_offline_training_on_a_tiny_config_lowers_the_loss(tmp_path, oracle_dataset):
    config = tiny(source="offline", dataset=str(oracle_dataset), iterations=10, updates_per_iteration=3,
                  batch_trials=16, lr=3e-3, eval_every=0, checkpoint_every=10)
    train(config, tmp_path)
    loss = read_metrics(tmp_path, "train")["loss"].to_numpy()
    assert loss[-3:].mean() < 0.7 * loss[:3].mean()


def test_online_run_writes_its_files_and_metrics(tmp_path):
    result = train(tiny(iterations=4, eval_every=2, checkpoint_every=2), tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "metrics.jsonl", "state.safetensors",
                                                     "model.safetensors", "model.json"}
    metrics = read_metrics(tmp_path)
    assert list(metrics[metrics.kind == "train"].iteration) == [0, 1, 2, 3]
    evals = metrics[metrics.kind == "eval"]
    assert list(evals.iteration) == [1, 3] and len(evals.success_by_episode.iloc[0]) == 3
    assert result.iterations == 4 and result.last_eval["explorer_mean_success"] > 0


def test_same_seed_and_config_give_the_same_weights_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train(tiny(iterations=3, eval_every=0, checkpoint_every=3, seed=seed), tmp_path / name)
    assert same_weights(tmp_path / "a", tmp_path / "b")
    assert not same_weights(tmp_path / "a", tmp_path / "c")


@pytest.mark.parametrize("changes", [{}, {"exploration_bonus": 0.2}, {"average_from": 2, "average_every": 1}])
def test_run_paused_and_resumed_matches_an_uninterrupted_one_bit_for_bit(tmp_path, changes):
    config = tiny(iterations=4, eval_every=2, checkpoint_every=3, **changes)
    train(config, tmp_path / "whole")
    paused = train(config, tmp_path / "sliced", stop_at=2)
    assert paused.iterations == 2
    train(config, tmp_path / "sliced")
    assert same_weights(tmp_path / "whole", tmp_path / "sliced")
    whole, sliced = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "sliced")
    clocks = ["wall_seconds", "cpu_seconds", "play_seconds", "update_seconds"]
    assert whole.drop(columns=clocks).equals(sliced.drop(columns=clocks))


def test_an_exploration_bonus_changes_what_is_learned(tmp_path):
    for name, bonus in (("plain", 0.0), ("bonus", 0.2)):
        train(tiny(iterations=3, eval_every=0, checkpoint_every=3, exploration_bonus=bonus), tmp_path / name)
    assert not same_weights(tmp_path / "plain", tmp_path / "bonus")


def test_average_from_exports_the_mean_of_the_acting_weights_at_its_iterations(tmp_path):
    # Iterations 2 and 4 of 5 are averaged (average_every=2). The weights at those iterations are read from a
    # run without averaging, paused there: averaging must not change what is trained, only what is exported.
    plain = tiny(iterations=5, eval_every=0, checkpoint_every=5, act_with="target")
    at = {}
    for stop in (2, 4, 5):
        train(plain, tmp_path / "plain", stop_at=stop)
        state = load_file(tmp_path / "plain" / "state.safetensors")
        at[stop] = {k[len("target/"):]: v for k, v in state.items() if k.startswith("target/")}
    result = train(plain.replace(average_from=2, average_every=2), tmp_path / "mean")
    exported = {k[len("model/"):]: v for k, v in weights(tmp_path / "mean").items()}
    assert exported.keys() == at[2].keys()
    for name, value in exported.items():
        mean = ((at[2][name].astype(np.float64) + at[4][name]) / 2).astype(np.float32)
        assert np.array_equal(value, mean), name
        assert not np.array_equal(value, at[5][name])
    state = load_file(tmp_path / "mean" / "state.safetensors")
    assert all(np.array_equal(state["target/" + k], v) for k, v in at[5].items())  # training itself is unchanged
    assert all(np.array_equal(t.detach().numpy(), exported[k]) for k, t in result.network.trainable().items())
    spec = json.loads((tmp_path / "mean" / "model.json").read_text())
    assert spec["trained"]["averaged_weights"] == 2


def test_a_run_averaging_weights_refuses_to_resume_averaging_another_network(tmp_path):
    config = tiny(iterations=4, eval_every=0, checkpoint_every=2, act_with="target", average_from=1)
    train(config, tmp_path, stop_at=2)
    with pytest.raises(ConfigError, match=r"averages the target network's weights .*resume with act_with='target'"):
        train(config.replace(act_with="online"), tmp_path)


def test_truncated_checkpoint_stops_resume_with_a_clear_error(tmp_path):
    train(tiny(iterations=2, eval_every=0, checkpoint_every=2), tmp_path)
    state = tmp_path / "state.safetensors"
    state.write_bytes(state.read_bytes()[:1000])
    with pytest.raises(DataFileError, match="state.safetensors is truncated or corrupted"):
        train(tiny(iterations=4, eval_every=0, checkpoint_every=2), tmp_path)


def test_resuming_with_another_config_names_the_changed_field(tmp_path):
    train(tiny(iterations=2, eval_every=0, checkpoint_every=2), tmp_path)
    with pytest.raises(ConfigError, match=r"lr: 0.001 -> 0.0005"):
        train(tiny(iterations=2, eval_every=0, checkpoint_every=2, lr=5e-4), tmp_path)


def test_a_run_resumes_with_more_micro_batches_when_an_update_needs_less_memory(tmp_path):
    train(tiny(iterations=4, eval_every=0, checkpoint_every=2), tmp_path, stop_at=2)
    resumed = train(tiny(iterations=4, eval_every=0, checkpoint_every=2, micro_batches=3), tmp_path)
    assert resumed.iterations == 4
    assert list(read_metrics(tmp_path, "train")["iteration"]) == [0, 1, 2, 3]


def test_fresh_run_refuses_to_overwrite_a_state(tmp_path):
    train(tiny(iterations=1, eval_every=0, checkpoint_every=1), tmp_path)
    with pytest.raises(FileExistsError, match="already holds a training state"):
        train(tiny(iterations=1, eval_every=0, checkpoint_every=1), tmp_path, resume=False)


def test_records_written_after_the_last_checkpoint_are_dropped_on_resume(tmp_path):
    config = tiny(iterations=4, eval_every=0, checkpoint_every=2)
    train(config, tmp_path, stop_at=2)
    with open(tmp_path / "metrics.jsonl", "a") as log:  # what a run killed during iteration 2 leaves behind
        log.write(json.dumps({"iteration": 2, "kind": "train", "loss": 1.0}) + "\n")
    train(config, tmp_path)
    assert list(read_metrics(tmp_path, "train")["iteration"]) == [0, 1, 2, 3]


def test_act_with_target_exports_the_polyak_averaged_network(tmp_path):
    train(tiny(iterations=2, eval_every=0, checkpoint_every=2, act_with="target"), tmp_path)
    state = load_file(tmp_path / "state.safetensors")
    exported = weights(tmp_path)
    assert all(np.array_equal(v, state["target/" + k[len("model/"):]]) for k, v in exported.items())
    assert not all(np.array_equal(v, state["online/" + k[len("model/"):]]) for k, v in exported.items())


def test_a_finished_run_trained_again_only_re_exports_with_the_new_act_with(tmp_path):
    config = tiny(iterations=2, eval_every=0, checkpoint_every=2)
    train(config, tmp_path)
    before = (tmp_path / "metrics.jsonl").read_text()
    result = train(config.replace(act_with="target"), tmp_path)
    state = load_file(tmp_path / "state.safetensors")
    assert all(np.array_equal(v, state["target/" + k[len("model/"):]]) for k, v in weights(tmp_path).items())
    assert (tmp_path / "metrics.jsonl").read_text() == before and result.iterations == 2


def test_rows_of_a_fixed_context_length_keep_each_trials_first_tokens(tmp_path, oracle_dataset):
    config = tiny(source="offline", dataset=str(oracle_dataset), iterations=2, context_length=8, eval_every=0,
                  checkpoint_every=2)
    train(config, tmp_path)
    assert np.isfinite(read_metrics(tmp_path, "train")["loss"]).all()


@pytest.mark.parametrize("goal_relation", [False, True])
def test_a_run_with_cell_relations_trains_resumes_bit_for_bit_and_exports_a_model_that_plays(tmp_path, goal_relation):
    from icrl_course.checkpoints import load_agent
    from icrl_course.envs import MapDistribution
    from icrl_course.trials import run_trials

    config = tiny(model={**TINY["model"], "cell_relations": True, "goal_relation": goal_relation}, iterations=4,
                  eval_every=2, checkpoint_every=3)
    train(config, tmp_path / "whole")
    train(config, tmp_path / "sliced", stop_at=2)
    train(config, tmp_path / "sliced")
    assert same_weights(tmp_path / "whole", tmp_path / "sliced")
    biases = weights(tmp_path / "whole")["model/relation_bias"]
    assert biases.shape[0] == 6 + goal_relation and np.abs(biases).max() > 0  # one bias per relation; they trained
    maps = MapDistribution.paper_ood().sample_many(3, seed=0, split="test")  # larger than the training maps
    table = run_trials(load_agent(tmp_path / "whole"), maps, 2, seed=0, max_episode_steps=10).table
    assert len(table) == 6
