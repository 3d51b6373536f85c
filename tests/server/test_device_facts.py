"""The device reported before torch is loaded follows pick_device's rules: a GPU index the
machine lacks is not silently another GPU, and an explicit mps is honoured."""

from __future__ import annotations

import pytest

from bridge import device

ONE_GPU = [{"name": "NVIDIA Test", "gpu_memory": {"total": 24 << 30}}]


@pytest.fixture
def cuda_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "torch_build", lambda: ("2.14.1", "12.8"))
    monkeypatch.setattr(device, "nvidia_gpus", lambda: ONE_GPU)


@pytest.mark.parametrize("preference", ["auto", "cuda", "cuda:0"])
def test_a_gpu_the_machine_has_is_reported(cuda_build: None, preference: str) -> None:
    info = device.device_facts(preference)
    assert (info["kind"], info["name"], info["probed"]) == ("cuda", "NVIDIA Test", False)


def test_a_gpu_index_the_machine_lacks_is_said_not_replaced(cuda_build: None) -> None:
    info = device.device_facts("cuda:5")
    assert info["kind"] == "cpu"
    assert info["warning"] == "device 'cuda:5' was requested but there are 1 GPUs"


def test_an_explicit_mps_is_honoured_as_pick_device_does(cuda_build: None) -> None:
    assert device.device_facts("mps")["kind"] == "mps"


def test_cuda_without_a_driver_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "torch_build", lambda: ("2.14.1", "12.8"))
    monkeypatch.setattr(device, "nvidia_gpus", lambda: [])
    info = device.device_facts("cuda")
    assert info["kind"] == "cpu" and "CUDA is not available" in info["warning"]
