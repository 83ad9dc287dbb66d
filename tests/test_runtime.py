"""Run-time settings: a device the machine lacks is refused by name, before any computation (root cause 3); the
smoke switch reads its environment variable; a seed gives a reproducible generator."""

import numpy as np
import pytest
import torch

from icrl_course import runtime
from icrl_course.runtime import DeviceError, pick_device


@pytest.mark.parametrize(("device", "message"), [
    ("cuda", "no CUDA GPU is visible on this machine: use device='auto'"),
    ("cuda:0", "no CUDA GPU is visible"),
    ("mps", "Apple's MPS is not available on this machine"),
    ("tpu", "is not a device name: use auto, cpu, cuda, cuda:N or mps"),
    ("gpu", "is not a device name"),
    ("meta", "this library runs on cpu, cuda or mps"),
])
def test_a_device_this_machine_lacks_is_refused_naming_it(monkeypatch, device, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "12.4")  # a CUDA build on a machine without a GPU
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=message) as refused:
        pick_device(device)
    assert f"device={device!r}" in str(refused.value)


def test_a_pytorch_without_cuda_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(DeviceError, match="this PyTorch is built without CUDA"):
        pick_device("cuda")


def test_a_gpu_number_beyond_the_machines_gpus_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(DeviceError, match="has 2 CUDA GPU\\(s\\), numbered from 0: use cuda:0 to cuda:1"):
        pick_device("cuda:2")


def test_auto_and_cpu_always_work(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu") == pick_device("cpu")


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), (" YES ", True), ("on", True),
                                       ("0", False), ("", False), ("no", False), ("off", False)])
def test_the_smoke_switch_reads_the_environment_variable(monkeypatch, value, on):
    monkeypatch.setenv(runtime.SMOKE_ENV_VAR, value)
    assert runtime.smoke() is on
    assert runtime.full_or_smoke("full", "smoke") == ("smoke" if on else "full")


def test_the_smoke_switch_is_off_when_the_variable_is_unset(monkeypatch):
    monkeypatch.delenv(runtime.SMOKE_ENV_VAR, raising=False)
    assert not runtime.smoke() and runtime.full_or_smoke(20_000, 200) == 20_000


def test_as_rng_makes_a_seed_reproducible_and_passes_a_generator_through():
    generator = np.random.default_rng(3)
    assert runtime.as_rng(generator) is generator
    assert runtime.as_rng(7).integers(1000, size=5).tolist() == np.random.default_rng(7).integers(1000, size=5).tolist()
    with pytest.raises(TypeError, match="seed must be an int"):
        runtime.as_rng(1.5)
