"""Offline DQN training of a Hugging Face model: config validation, a full train-evaluate cycle, resume, two processes."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from icrl_course.train.config import ConfigError
from icrl_course.train.hf import HFTrainConfig, load_trained, train
from icrl_course.tokenize import pack

TINY_RUN = dict(model="tiny", adapter="full", lr=1e-3, num_trials=12, episodes_per_trial=2, max_episode_steps=6,
                context_length=256, steps=4, batch_size=2, warmup_steps=1, eval_maps=2, eval_episodes=2,
                log_every=2, checkpoint_every=2, progress=False)


@pytest.mark.parametrize("field, value, message", [
    ("adapter", "prefix", "adapter='prefix' is invalid: choose 'ia3'"),
    ("lr", -1.0, "lr=-1.0 is invalid"),
    ("tau", 0.0, "tau=0.0 is invalid"),
    ("batch_size", 0, "batch_size=0 is invalid"),
    ("steps", 2.5, "steps=2.5 must be of type int"),
    ("behaviours", "genius:0.1", "behaviours='genius:0.1' is invalid"),
    ("eval_schedule", "paper", "eval_episodes=10 is invalid: the paper's schedule explores for 20 episodes"),
])
def test_a_bad_config_value_is_refused_naming_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("'", "'")):
        HFTrainConfig(**{field: value})


def test_unknown_config_fields_are_refused():
    with pytest.raises(ConfigError, match=r"unknown config field\(s\) \['learning_rate'\]"):
        HFTrainConfig.from_dict({"learning_rate": 0.1})


def test_the_shipped_llama_configs_are_valid_and_the_8b_one_has_the_papers_numbers():
    tiny = HFTrainConfig.named("hf_tiny_llama")
    paper = HFTrainConfig.named("hf_llama31_8b_paper")
    assert tiny.model == "tiny"
    assert (paper.model, paper.adapter, paper.lr, paper.gamma, paper.reward_scale, paper.tau, paper.batch_size,
            paper.context_length, paper.max_episode_steps) == (
        "meta-llama/Llama-3.1-8B-Instruct", "ia3", 1e-2, 0.9, 30.0, 0.1, 10, 4096, 100)


def test_a_tiny_llama_trains_evaluates_saves_and_loads_back(tmp_path):
    config = HFTrainConfig(**TINY_RUN, out_dir=str(tmp_path))
    result = train(config)
    assert result.step == 4 and len(result.metrics) == 2 and all(np.isfinite(m["loss"]) for m in result.metrics)
    table = result.evaluation.table
    assert len(table) == config.eval_maps * config.eval_episodes
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["eval_success_per_episode"]) == config.eval_episodes
    for name in ("config.json", "state.safetensors", "adapter.safetensors", "adapter.json", "metrics.jsonl"):
        assert (tmp_path / name).is_file(), name
    learner, chat = load_trained(tmp_path, device="cpu")
    encoded = [chat.encode(t) for t in result.evaluation.trials]
    batch = pack(encoded, sum(len(e) for e in encoded), pad_id=chat.pad_id)
    with torch.no_grad():
        torch.testing.assert_close(learner.online(batch), result.learner.online(batch))


def test_a_run_resumed_from_its_checkpoint_ends_with_the_same_weights(tmp_path):
    whole = train(HFTrainConfig(**TINY_RUN, out_dir=str(tmp_path / "whole")))
    train(HFTrainConfig(**{**TINY_RUN, "steps": 2}, out_dir=str(tmp_path / "cut")))
    resumed = train(HFTrainConfig(**TINY_RUN, out_dir=str(tmp_path / "cut")))
    for name, tensor in whole.learner.online_state().items():
        torch.testing.assert_close(resumed.learner.online_state()[name], tensor, rtol=0, atol=0)
    with pytest.raises(ConfigError, match=r"different config \(\['lr'\] differ\)"):
        train(HFTrainConfig(**{**TINY_RUN, "lr": 0.5}, out_dir=str(tmp_path / "cut")))


def test_two_processes_through_torchrun_end_with_identical_adapter_weights(tmp_path):
    config = {**TINY_RUN, "adapter": "ia3", "lr": 1e-2, "batch_size": 4, "steps": 3, "eval_maps": 1,
              "eval_episodes": 1, "out_dir": str(tmp_path / "run")}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "icrl_course.train.hf", "--config", str(path)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # torchrun and both workers
        raise
    assert process.returncode == 0, stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2
    weights, rows = summary["rank_weight_digests"], summary["rank_rows_digests"]
    assert weights[0] == weights[1]  # gradients were averaged: replicas stayed identical
    assert rows[0] != rows[1]  # ... although each process trained on its own rows
