"""Device choice, profiles, seeding and a fast import."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import ptcourse
from ptcourse import by_profile, get_device, hardware_summary, profile, seed_everything


def test_import_is_fast_and_lazy():
    code = ("import sys, time; t = time.perf_counter(); import ptcourse; "
            "print(time.perf_counter() - t, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seconds, torch_loaded = out.split()
    assert float(seconds) < 2.0 and torch_loaded == "False"


def test_device_override(monkeypatch):
    monkeypatch.setenv("PTCOURSE_DEVICE", "CPU")
    assert get_device() == torch.device("cpu")
    monkeypatch.setenv("PTCOURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="not a device"):
        get_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("PTCOURSE_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            get_device()


def test_default_device_order(monkeypatch):
    monkeypatch.delenv("PTCOURSE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert get_device().type == expected


def test_hardware_summary():
    info = hardware_summary("cpu")
    assert info["torch"] == torch.__version__ and info["device"] == "cpu"
    assert info["default autocast"] == "off"


@pytest.mark.parametrize("name", ["fast", "standard", "full"])
def test_profiles(monkeypatch, name):
    monkeypatch.setenv("PTCOURSE_PROFILE", name)
    assert profile() == name
    assert by_profile(fast=1, standard=2, full=3) == {"fast": 1, "standard": 2, "full": 3}[name]


def test_auto_profile(monkeypatch):
    monkeypatch.setenv("PTCOURSE_PROFILE", "auto")
    assert profile() == ("full" if torch.cuda.is_available() else "standard")
    monkeypatch.setenv("PTCOURSE_PROFILE", "huge")
    with pytest.raises(ValueError, match="not a profile"):
        profile()
    monkeypatch.setenv("PTCOURSE_PROFILE", "fast")
    assert "fast" in ptcourse.profiles.describe() and "PTCOURSE_PROFILE" in ptcourse.profiles.describe()


def test_seed_everything_reproduces():
    import random

    import numpy as np

    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first
    with pytest.raises(TypeError, match="int"):
        seed_everything("7")
    with pytest.raises(ValueError, match="2\\*\\*32"):
        seed_everything(-1)


def test_deterministic_mode_is_switchable():
    seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    seed_everything(0)
    assert not torch.are_deterministic_algorithms_enabled()


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute"):
        ptcourse.does_not_exist  # noqa: B018
