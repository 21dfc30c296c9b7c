"""Root pytest plugin: shared settings for tests/ and the notebook runs, plus timings."""

from __future__ import annotations

import os
from collections import defaultdict

os.environ.setdefault("PTCOURSE_PROFILE", "fast")
os.environ.setdefault("PTCOURSE_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The course's test-size models are tiny: one CPU thread is as fast as two, and it cannot
# fall into the OpenMP thread-contention slowdown (10-40x) seen on busy 2-core runners.
os.environ.setdefault("OMP_NUM_THREADS", "1")

_notebook_seconds: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    terminalreporter.section(f"notebook run times (profile {os.environ['PTCOURSE_PROFILE']})")
    for path, seconds in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_notebook_seconds.values()):7.1f} s  in all")
