"""Root pytest plugin: shared settings for tests/ and the notebook runs, plus timings."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import defaultdict

os.environ.setdefault("PTCOURSE_PROFILE", "fast")
os.environ.setdefault("PTCOURSE_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The course's test-size models are tiny: one CPU thread is as fast as two, and it cannot
# fall into the OpenMP thread-contention slowdown (10-40x) seen on busy 2-core runners.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# A test run keeps its recorded results and checkpoints to itself (chapter 09 reads the
# records of chapters 01-08 from the same session; chapter 07 the checkpoint of chapter 06),
# so it never mixes fast-profile numbers into a learner's own cache.
_SESSION = tempfile.mkdtemp(prefix="ptcourse-tests-")
os.environ.setdefault("PTCOURSE_RESULTS", os.path.join(_SESSION, "results"))
os.environ.setdefault("PTCOURSE_CHECKPOINTS", os.path.join(_SESSION, "checkpoints"))

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


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SESSION, ignore_errors=True)
