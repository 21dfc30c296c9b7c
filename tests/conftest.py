"""Fixtures shared by the tests of the network code (hub, prefetch, doctor)."""

from __future__ import annotations

import pytest

from ptcourse import hub


@pytest.fixture
def online(monkeypatch):
    """Let the network code run (the suite switches it off); the tests only ever reach 127.0.0.1."""
    monkeypatch.setenv("PTCOURSE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    hub._probe_cache.clear()
    yield
    hub._probe_cache.clear()
