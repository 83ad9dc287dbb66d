"""Run-time settings: a device the machine lacks is refused by name, before any computation (root cause 3)."""

import pytest
import torch

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
