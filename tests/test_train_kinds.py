"""Both model kinds through the one trainer: the same protocol, the same command, a kill and a resume, an export.

Every test runs once for lesson 5's small transformer (``configs/paper-small.json``) and once for the tiny
Hugging Face Llama (``configs/tiny-llama.json``), each made tiny with ``--set`` overrides, so anything the
loop does for one kind it is shown to do for the other.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from icrl_course.checkpoints import load_agent, load_network
from icrl_course.data import Behaviour, generate_trials
from icrl_course.dqn import DQNConfig
from icrl_course.models.protocol import QNetwork
from icrl_course.tokenize import pack
from icrl_course.train.build import build_network
from icrl_course.train.config import CONFIG_DIR, TrainConfig
from icrl_course.train.log import read_metrics
from icrl_course.train.loop import dqn_update, train
from icrl_course.train.replay import sample_micro_batches
from icrl_course.trials import run_trials

CONFIGS = {"transformer": "paper-small", "hf": "tiny-llama"}
SMALL_MODEL = {"transformer": ["model.n_layer=1", "model.n_embd=16", "model.n_head=2"],
               "hf": ["model.tiny_hidden_size=16", "model.tiny_layers=1", "model.tiny_heads=2"]}
SMALL_RUN = ["episodes_per_trial=2", "max_episode_steps=6", "trials_per_iteration=4", "updates_per_iteration=2",
             "batch_trials=4", "warmup_trials=4", "replay_capacity=32", "eval_maps=4", "eval_every=0",
             "threads=1", "progress=false"]
ENV = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def overrides(kind: str, *more: str) -> list[str]:
    return [*SMALL_MODEL[kind], *SMALL_RUN, *more]


def config_path(kind: str) -> Path:
    return CONFIG_DIR / f"{CONFIGS[kind]}.json"


def small(kind: str, *more: str) -> TrainConfig:
    return TrainConfig.from_json(config_path(kind)).with_overrides(overrides(kind, *more))


def command(kind: str, run_dir: Path, *more: str) -> list[str]:
    sets = [arg for item in overrides(kind, *more) for arg in ("--set", item)]
    return [sys.executable, "-m", "icrl_course.train", "--config", str(config_path(kind)), "--run-dir", str(run_dir), *sets]


def trials(n: int = 3):
    return generate_trials(Behaviour("explorer", 0.3), n, episodes=2, max_episode_steps=6, seed=5)[0]


@pytest.fixture(params=list(CONFIGS))
def kind(request) -> str:
    return request.param


def test_each_kind_is_a_q_network_whose_target_is_a_frozen_float32_copy_that_follows_by_tau(kind):
    network = build_network(small(kind).model, seed=0)
    target = network.make_target()
    assert isinstance(network, QNetwork) and isinstance(target, QNetwork)
    encoded = [network.encode(t) for t in trials()]
    batch = pack(encoded, max(len(e) for e in encoded), pad_id=network.pad_id)
    q = network.q_values(batch)
    assert q.shape == (*batch.step_mask.shape, 4) and q.dtype == torch.float32
    assert {t.dtype for t in target.trainable().values()} == {torch.float32}
    assert not any(t.requires_grad for t in target.trainable().values())
    before = {k: v.detach().clone() for k, v in target.trainable().items()}
    optimizer = torch.optim.SGD([p for p in network.parameters() if p.requires_grad], lr=0.1)
    stats = dqn_update(network, target, optimizer, batch, DQNConfig(tau=0.25), grad_clip=1.0)
    assert np.isfinite(stats["loss"])
    for name, tensor in target.trainable().items():
        online = network.trainable()[name].detach()
        torch.testing.assert_close(tensor, before[name] + 0.25 * (online - before[name]), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("episode_discount", [0.0, 0.5])  # 0.5: episode ends have targets too, and count
def test_an_update_split_into_micro_batches_takes_the_step_of_one_packed_batch(kind, episode_discount):
    encoded = [build_network(small(kind).model, seed=0).encode(t) for t in trials(6)]
    results = []
    for parts in (1, 3):
        network = build_network(small(kind).model, seed=0)
        target = network.make_target()
        optimizer = torch.optim.SGD([p for p in network.parameters() if p.requires_grad], lr=0.5)
        batches = sample_micro_batches(encoded, 6, np.random.default_rng(0), 0, network.pad_id, parts)
        assert len(batches) == parts
        stats = dqn_update(network, target, optimizer, batches, DQNConfig(tau=0.25, episode_discount=episode_discount))
        results.append((stats, {k: v.detach().clone() for k, v in network.trainable().items()}))
    (one, weights_one), (three, weights_three) = results
    assert one.keys() == three.keys() and one["steps"] == three["steps"] > 0
    for name in one:
        assert three[name] == pytest.approx(one[name], rel=1e-5, abs=1e-7), name
    moved = [name for name in weights_one if not torch.equal(weights_one[name], build_network(small(kind).model, seed=0)
                                                                .trainable()[name])]
    assert moved  # the step changed the weights, and identically either way
    for name in weights_one:
        torch.testing.assert_close(weights_three[name], weights_one[name], rtol=1e-5, atol=1e-6)


def test_the_command_trains_prints_the_result_and_load_agent_plays_the_export(kind, tmp_path):
    run = tmp_path / "run"
    done = subprocess.run(command(kind, run, "iterations=3", "checkpoint_every=2"), env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trained 3 iterations" in done.stdout and "greedy success per episode on held-out maps" in done.stdout
    assert list(read_metrics(run, "train")["iteration"]) == [0, 1, 2]
    network, spec = load_network(run)
    assert spec["model"]["kind"] == kind and spec["trained"]["iterations"] == 3
    state, acting = load_file(run / "state.safetensors"), spec["train_config"]["act_with"]
    for name, tensor in network.trainable().items():  # the export is exactly the trained network that acts
        assert np.array_equal(tensor.detach().numpy(), state[f"{acting}/{name}"])
    maps = TrainConfig().map_distribution().sample_many(3, seed=1, split="test")
    played = run_trials(load_agent(run), maps, 2, seed=1, max_episode_steps=6)
    again = run_trials(network.agent(), maps, 2, seed=1, max_episode_steps=6)
    assert all(np.array_equal(a.actions, b.actions) for a, b in zip(played.trials, again.trials))


def test_a_run_killed_with_sigkill_resumes_to_the_weights_of_an_uninterrupted_run(kind, tmp_path):
    more = ("iterations=12", "checkpoint_every=3")
    train(small(kind, *more), tmp_path / "whole")  # in this process: the same code and thread count give the same numbers

    killed = tmp_path / "killed"
    process = subprocess.Popen(command(kind, killed, *more), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (killed / "state.safetensors").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert read_metrics(killed, "train")["iteration"].max() < 11, "the kill came too late to interrupt the run"

    subprocess.run(command(kind, killed, *more), check=True, env=ENV, capture_output=True, timeout=300)
    whole, resumed = load_file(tmp_path / "whole" / "state.safetensors"), load_file(killed / "state.safetensors")
    assert whole.keys() == resumed.keys()
    assert all(np.array_equal(whole[k], resumed[k]) for k in whole)  # weights, target, Adam, replay: bit for bit
    assert list(read_metrics(killed, "train")["iteration"]) == list(range(12))


def test_two_processes_under_torchrun_end_with_identical_weights_from_different_batches(tmp_path):
    run = tmp_path / "run"
    sets = [arg for item in overrides("hf", "model.adapter=ia3", "lr=0.01", "iterations=2", "checkpoint_every=2",
                                      "eval_maps=2", "micro_batches=2") for arg in ("--set", item)]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "icrl_course.train", "--config", str(config_path("hf")), "--run-dir", str(run), *sets]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # torchrun and both workers
        raise
    assert process.returncode == 0, stderr[-3000:]
    assert stdout.count("trained 2 iterations") == 1  # the first process reports, the other stays quiet
    summary = json.loads((run / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["updates"] == 4
    weights, batches = summary["weights_digest"], summary["batches_digest"]
    assert weights[0] == weights[1]  # gradients were averaged: the replicas stayed identical
    assert batches[0] != batches[1]  # ... although each process learned from its own share of every batch


def test_the_papers_8b_config_runs_through_the_trainer_on_a_local_folder(tmp_path):
    """The Llama 3.1 8B config, pointed at a local folder with a tiny Llama for the paper's text and made tiny:
    from_pretrained(path), IA3 on the paper's format, offline from a dataset, rows cut at a fixed length."""
    from icrl_course.data import save_dataset
    from icrl_course.models.hf import build_tiny_llama
    from icrl_course.tokenize.text import PAPER

    folder = build_tiny_llama(tmp_path / "llama", PAPER, hidden_size=16, num_layers=1, num_heads=2)
    data = save_dataset(tmp_path / "data.safetensors", trials(8))
    config = TrainConfig.named("llama31-8b-paper").with_overrides([
        f"model.model={folder}", "model.dtype=float32", f"dataset={data}", "iterations=2", "lr_warmup=1",
        "batch_trials=4", "context_length=128", "episodes_per_trial=2", "max_episode_steps=6", "eval_maps=2",
        "checkpoint_every=2", "threads=1", "progress=false"])
    result = train(config, tmp_path / "run")
    assert result.iterations == 2 and np.isfinite(read_metrics(tmp_path / "run", "train")["loss"]).all()
    network, spec = load_network(tmp_path / "run")
    assert spec["model"]["model"] == str(folder) and set(network.trainable()) == set(result.network.trainable())
    assert all("ia3" in name for name in network.trainable())  # only the adapter was trained and exported


def test_the_throughput_benchmark_runs_the_8b_code_path_on_a_tiny_shape():
    benchmark = Path(__file__).resolve().parents[1] / "benchmarks" / "llama_train_throughput.py"
    done = subprocess.run([sys.executable, str(benchmark), "--shape", "8b", "--layers", "1", "--hidden", "64",
                           "--vocab", "1000", "--context", "256", "--batch", "2", "--device", "cpu",
                           "--dtype", "float32", "--steps", "1", "--warmup", "0", "--threads", "1", "--micro-batches", "2"],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "steps/s" in done.stdout and "IA3, float32 + grad. checkpointing" in done.stdout
    assert "IA3, float32 + grad. ckpt, 2 micro-batches" in done.stdout
