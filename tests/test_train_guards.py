"""Training refuses what cannot work before it starts, stops on NaN keeping its last good checkpoint, and trusts
nothing in its run folder: root causes 3 (configs that pass field checks and then crash), 4 (NaN), 7 (run-folder
damage) and 8 (two runs in one folder) of issue 15."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import icrl_course.train.loop as loop
from icrl_course.cli import main
from icrl_course.data import Behaviour, generate_trials, save_dataset
from icrl_course.envs import MapDistribution
from icrl_course.io import DataFileError, load_arrays
from icrl_course.runtime import NumericalError
from icrl_course.train.config import ConfigError, TrainConfig
from icrl_course.train.lock import RunFolderError, RunFolderWarning
from icrl_course.train.log import METRICS_FILE, read_metrics
from icrl_course.train.state import load_training_state, save_training_state

TINY = dict(model={"n_layer": 1, "n_embd": 16, "n_head": 2}, episodes_per_trial=2, max_episode_steps=8,
            trials_per_iteration=4, updates_per_iteration=1, batch_trials=4, replay_capacity=16, warmup_trials=4,
            eval_maps=4, eval_every=0, threads=1, progress=False)


def tiny(**changes) -> TrainConfig:
    return TrainConfig(**{**TINY, **changes})


# ------------------------------------------------------------------ root cause 3: checked before any work
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


WHOLE_RUN = [
    pytest.param(dict(model={"kind": "hf", "model": "tiny"}, map_preset="gymnasium", map_options={"size": 10}),
                 r"the tiny Llama's vocabulary \(model.model='tiny'\) covers maps of at most 9 x 9", id="tiny-llama-maps"),
    pytest.param(dict(model={"cell_relations": True}, map_preset="gymnasium", map_options={"size": 17}),
                 r"cell names \(model.cell_relations\) cover maps of at most 16 x 16", id="cell-relations-maps"),
    pytest.param(dict(device="cuda"), "device='cuda' but no CUDA GPU is visible on this machine", id="cuda"),
    pytest.param(dict(device="cuda:3"), "device='cuda:3' but no CUDA GPU is visible", id="cuda-3"),
    pytest.param(dict(device="mps"), "Apple's MPS is not available", id="mps"),
    pytest.param(dict(episodes_per_trial=50, max_episode_steps=100), "5001 tokens, more than the transformer's context of 4096",
                 id="trial-too-long"),
    pytest.param(dict(context_length=8192), "context_length=8192 is longer than the transformer's context of 4096",
                 id="context_length"),
    pytest.param(dict(lr=5.0), r"lr=5 is invalid: an AdamW step moves every weight by about lr", id="lr-5"),
    pytest.param(dict(lr=1e6), "lr=1e\\+06 is invalid", id="lr-1e6"),
    pytest.param(dict(lr=0.5, weight_decay=2.0), r"lr \* weight_decay = 1 is invalid", id="weight-decay"),
    pytest.param(dict(map_preset="gymnasium", map_options={"size": 3}, eval_maps=100),
                 "eval_maps=100 is invalid: the map distribution holds exactly 6 distinct val-split maps", id="eval_maps"),
    pytest.param(dict(map_preset="gymnasium", map_options={"size": 3}, trials_per_iteration=40, replay_capacity=40,
                      eval_maps=2), "trials_per_iteration=40 is invalid: .* holds exactly 39 distinct train-split",
                 id="trials_per_iteration"),
]


@pytest.mark.parametrize(("changes", "message"), WHOLE_RUN)
def test_what_depends_on_several_fields_or_the_machine_is_refused_before_the_run_folder_is_touched(
        tmp_path, monkeypatch, changes, message):
    no_gpu(monkeypatch)
    with pytest.raises(ConfigError, match=message) as refused:
        loop.train(tiny(**changes), tmp_path / "run")
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "run").exists()


def test_the_counts_in_those_messages_are_the_distributions_own():
    small = MapDistribution.gymnasium(size=3)
    assert (small.count_maps("val").count, small.count_maps("train").count) == (6, 39)


@pytest.mark.parametrize(("behaviour", "preset", "changes", "message"), [
    pytest.param("oracle", "paper_ood", dict(model={"edge_cap": 2, "n_embd": 16, "n_head": 2}), None,
                 id="larger-maps-than-edge_cap-names-uniquely"),
    pytest.param("random", "paper", dict(), None, id="fits"),
])
def test_an_offline_dataset_the_model_cannot_read_is_refused_before_training(tmp_path, behaviour, preset, changes,
                                                                              message):
    trials, generation = generate_trials(Behaviour(behaviour), 8, getattr(MapDistribution, preset)(), episodes=2,
                                         max_episode_steps=8)
    data = save_dataset(tmp_path / "d.safetensors", trials, generation)
    config = tiny(source="offline", dataset=str(data), iterations=1, **changes)
    if message is None:
        assert loop.train(config, tmp_path / "run").iterations == 1
    else:
        with pytest.raises(ConfigError, match=message):
            loop.train(config, tmp_path / "run")


def test_a_tampered_dataset_never_trains(tmp_path, capsys):
    """A dataset whose trials were emptied (offsets all zero, digest recomputed) or whose bytes changed is refused."""
    from icrl_course.data import trials_to_arrays
    from icrl_course.io import save_arrays

    trials, generation = generate_trials(Behaviour("oracle"), 8, episodes=2, max_episode_steps=8)
    arrays = trials_to_arrays(trials)
    arrays["trial_offsets"] = np.zeros_like(arrays["trial_offsets"])
    emptied = save_arrays(tmp_path / "emptied.safetensors", arrays,
                          {"format": "icrl-course/trials", "version": "2", "num_trials": 8, "generation": generation})
    flipped = save_dataset(tmp_path / "flipped.safetensors", trials, generation)
    raw = bytearray(flipped.read_bytes())
    raw[-3] ^= 0x10
    flipped.write_bytes(bytes(raw))
    for path, message in ((emptied, "'trial_offsets' must run from 0 to the number of steps"),
                          (flipped, "does not match the digest written with it")):
        code = main(["train", "--set", "source=offline", "--set", f"dataset={path}", "--set", "iterations=1",
                     "--set", "progress=false", "--run-dir", str(tmp_path / f"run-{path.stem}")])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1 and message in err, err
        assert not (tmp_path / f"run-{path.stem}" / "metrics.jsonl").exists()


# ------------------------------------------------------------------ root cause 4: NaN stops the run, loudly
def poisoned_update(at_update: int, what: str):
    """``dqn_update`` that, from update ``at_update`` on, reports a non-finite value or leaves a NaN weight."""
    real, calls = loop.dqn_update, []

    def update(network, target, optimizer, batch, *args, **kwargs):
        stats = real(network, target, optimizer, batch, *args, **kwargs)
        calls.append(1)
        if len(calls) >= at_update:
            if what in ("loss", "grad_norm"):
                stats[what] = float("nan") if what == "loss" else float("inf")
            else:
                tensors = (network if what == "online weight" else target).trainable()
                with torch.no_grad():
                    next(iter(tensors.values())).view(-1)[0] = float("nan")
        return stats

    return update


@pytest.mark.parametrize(("what", "message"), [
    ("loss", "the loss is nan"),
    ("grad_norm", "the grad norm is inf"),
    ("online weight", "the online network's 'embed.table.weight' holds NaN or infinite values"),
    ("target weight", "the target network's 'embed.table.weight' holds NaN or infinite values"),
])
def test_a_run_that_goes_non_finite_stops_keeping_its_last_good_checkpoint(tmp_path, monkeypatch, what, message):
    config = tiny(iterations=6, checkpoint_every=2)
    loop.train(config, tmp_path, stop_at=2)
    good = load_training_state(tmp_path / "state.safetensors")[0]
    monkeypatch.setattr(loop, "dqn_update", poisoned_update(2, what))  # the 4th iteration's update goes bad
    with pytest.raises(NumericalError, match=f"training diverged in iteration 3 .*: {message}; the run stopped and "
                                             f".*state.safetensors still holds iteration 2") as stopped:
        loop.train(config, tmp_path)
    assert "Start a new run folder with a lower lr" in str(stopped.value)
    kept = load_training_state(tmp_path / "state.safetensors")[0]
    assert all(np.array_equal(kept[k], good[k]) for k in good)  # the good checkpoint, untouched
    assert not (tmp_path / "lock").exists()


def test_the_command_line_exits_non_zero_with_one_line_on_nan(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(loop, "dqn_update", poisoned_update(1, "loss"))
    code = main(["train", "--set", "iterations=2", "--set", "progress=false", "--set", "threads=1",
                 "--set", "trials_per_iteration=4", "--set", "warmup_trials=4", "--set", "eval_maps=4",
                 "--set", "model.n_layer=1", "--run-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "training diverged in iteration 0" in err
    assert "no checkpoint was written" in err and not (tmp_path / "state.safetensors").exists()


def test_evaluation_refuses_a_network_with_non_finite_weights(tmp_path, capsys):
    result = loop.train(tiny(iterations=1), tmp_path / "run")
    agent = result.agent()
    with torch.no_grad():
        result.network.trainable()["head.weight"][0, 0] = float("inf")
    from icrl_course.trials import run_trials

    with pytest.raises(NumericalError, match="the network computed NaN or infinite Q-values on 3 of 3 lakes"):
        run_trials(agent, MapDistribution.paper().sample_many(3, seed=0), 1)


# ------------------------------------------------------------------ root cause 7: run-folder damage
@pytest.fixture()
def paused_run(tmp_path) -> tuple[TrainConfig, Path]:
    config = tiny(iterations=4, checkpoint_every=2)
    loop.train(config, tmp_path, stop_at=2)
    return config, tmp_path


def rewrite_state(path: Path, change) -> None:
    """Edit a saved state as a forger would: the file is rewritten with a fresh digest, so only the checks catch it."""
    arrays, header = load_arrays(path, "state", finite=False)
    change(arrays, header)
    save_training_state(path, arrays, {k: v for k, v in header.items() if k not in ("format", "version")})


STATE_DAMAGE = [
    pytest.param(lambda a, h: h.update(iteration=9999), "iteration=9999 must be an int in 0..4 for a run of 4 iterations",
                 id="iteration-9999"),
    pytest.param(lambda a, h: h.update(iteration=-1), "iteration=-1 must be an int in 0..4", id="iteration-negative"),
    pytest.param(lambda a, h: h.update(iteration="2"), "iteration='2' must be an int", id="iteration-text"),
    pytest.param(lambda a, h: h.update(updates=1.5), "updates=1.5 must be an int", id="updates-float"),
    pytest.param(lambda a, h: h.pop("clock"), r"lacks \['clock'\]", id="no-clock"),
    pytest.param(lambda a, h: h["clock"].update(wall_seconds=-3), "clock=.* must hold the timers", id="clock-negative"),
    pytest.param(lambda a, h: h.update(config={"lr": "fast"}), "holds a config this library refuses", id="config-garbage"),
    pytest.param(lambda a, h: a.update({"online/head.weight": np.zeros((5, 16), np.float32)}),
                 r"'head.weight' has shape \(5, 16\) but the model expects \(4, 16\)", id="weight-shape"),
    pytest.param(lambda a, h: a.update({"online/head.weight": a["online/head.weight"].astype(np.float64)}),
                 "'head.weight' is float64 but float32 is expected", id="weight-dtype"),
    pytest.param(lambda a, h: a.pop("target/head.bias"), "do not fit this model: missing", id="weight-missing"),
    pytest.param(lambda a, h: a.update({"optim/0/exp_avg": np.zeros(3, np.float32)}),
                 r"'optim/0/exp_avg' has shape \(3,\)", id="adam-shape"),
    pytest.param(lambda a, h: a.update({"optim/999/exp_avg": np.zeros(3, np.float32)}),
                 "'optim/999/exp_avg' is not a slot of this model's optimiser", id="adam-extra-slot"),
    pytest.param(lambda a, h: a.pop("optim/0/exp_avg_sq"), "the optimiser state lacks some of", id="adam-missing"),
    pytest.param(lambda a, h: h.update(param_groups=[]), "param_groups do not fit this model", id="param-groups"),
    pytest.param(lambda a, h: a.update({"rng/torch": np.zeros(7, np.uint8)}), r"'rng/torch' has shape \(7,\)", id="rng"),
    pytest.param(lambda a, h: a.update({"rng/torch": a["rng/torch"].astype(np.int64)}), "'rng/torch' is int64", id="rng-dtype"),
    pytest.param(lambda a, h: a.update({"replay/trial_offsets": np.zeros_like(a["replay/trial_offsets"])}),
                 "its replay buffer is damaged", id="replay-emptied"),
    pytest.param(lambda a, h: a.update({"extra/thing": np.zeros(1)}), "holds arrays no training state has", id="extra-array"),
    pytest.param(lambda a, h: a.update({"online/head.weight": a["online/head.weight"] * np.nan}),
                 "holds NaN or infinite values", id="weight-nan"),
]


@pytest.mark.parametrize(("change", "message"), STATE_DAMAGE)
def test_a_damaged_state_is_refused_on_resume_naming_what_is_wrong(paused_run, change, message):
    config, run_dir = paused_run
    rewrite_state(run_dir / "state.safetensors", change)
    with pytest.raises(DataFileError, match=message) as refused:
        loop.train(config, run_dir)
    assert "\n" not in str(refused.value)
    assert not (run_dir / "lock").exists()


def test_a_state_changed_after_it_was_written_is_refused(paused_run):
    config, run_dir = paused_run
    state = run_dir / "state.safetensors"
    raw = bytearray(state.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    state.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match="does not match the digest written with it"):
        loop.train(config, run_dir)


@pytest.mark.parametrize(("damage", "dropped"), [
    pytest.param(lambda raw: raw + b'{"iteration": 1, "kind": "tr', r"a torn last line \(line 3, 28 bytes without a newline\)", id="torn-last-line"),
    pytest.param(lambda raw: raw.replace(b"\n", b"\nnot json at all\n", 1), r"1 line\(s\) that are not records \(line 2\)",
                 id="garbage-line"),
    pytest.param(lambda raw: raw.replace(b"\n", b"\n\xff\xfe\x00\n", 1), r"1 line\(s\) that are not records \(line 2\)",
                 id="binary-line"),
    pytest.param(lambda raw: raw.replace(b"\n", b'\n[1, 2]\n{"kind": "train"}\n', 1),
                 r"2 line\(s\) that are not records \(line 2, 3\)", id="not-records"),
])
def test_damaged_metrics_lines_are_dropped_and_reported_and_the_run_resumes(paused_run, damage, dropped):
    config, run_dir = paused_run
    metrics = run_dir / METRICS_FILE
    metrics.write_bytes(damage(metrics.read_bytes()))
    with pytest.warns(RunFolderWarning, match=f"dropped {dropped}.*while resuming after iteration 1"):
        loop.train(config, run_dir)
    assert read_metrics(run_dir, "train")["iteration"].tolist() == [0, 1, 2, 3]


def test_records_of_iterations_after_the_restored_state_are_dropped_without_fuss(paused_run):
    config, run_dir = paused_run
    metrics = run_dir / METRICS_FILE
    metrics.write_text(metrics.read_text() + json.dumps({"iteration": 2, "kind": "train", "loss": 9.0}) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunFolderWarning)
        loop.train(config, run_dir)
    assert read_metrics(run_dir, "train")["iteration"].tolist() == [0, 1, 2, 3]


# ------------------------------------------------------------------ root cause 8: one run per folder
HOLD_LOCK = "import sys, time; from icrl_course.train.lock import RunLock; RunLock(sys.argv[1]); print('held', flush=True); time.sleep(60)"


def test_a_second_training_run_into_a_held_folder_is_refused_and_changes_nothing(tmp_path, capsys):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError, match=f"run folder {tmp_path} is in use by process {holder.pid}"):
            loop.train(tiny(iterations=1), tmp_path)
        code = main(["train", "--set", "iterations=1", "--set", "progress=false", "--run-dir", str(tmp_path)])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1 and f"is in use by process {holder.pid}" in err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["lock"]
    finally:
        holder.kill()
        holder.wait()
    with pytest.warns(RunFolderWarning, match="took over the lock of a run that is no longer running"):
        loop.train(tiny(iterations=1), tmp_path)
    assert not (tmp_path / "lock").exists()
