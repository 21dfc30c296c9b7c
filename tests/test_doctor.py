"""`python -m ptcourse doctor`: passes on a good machine, fails with a one-line fix on a bad one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ptcourse import doctor, hub

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def caches_in_tmp(tmp_path, monkeypatch):
    for var, sub in (("PTCOURSE_DATA", "data"), ("PTCOURSE_CHECKPOINTS", "ckpt"), ("PTCOURSE_RESULTS", "results"),
                     ("TORCH_HOME", "torch"), ("HF_HOME", "hf")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("PTCOURSE_OFFLINE", "1")
    monkeypatch.setenv("PTCOURSE_DEVICE", "cpu")
    monkeypatch.setenv("PTCOURSE_PROFILE", "fast")


def run_command(tmp_path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-m", "ptcourse", "doctor"], env=full, capture_output=True, text=True,
                          timeout=300)


def test_the_doctor_passes_here(tmp_path):
    out = run_command(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    for section in ("platform:", "dependencies:", "caches:", "network:", "profile:", "run times:"):
        assert section in out.stdout
    assert "0 problem(s): ready for the course." in out.stdout
    assert "torch" in out.stdout and "fast" in out.stdout


def test_an_unwritable_cache_fails_with_the_variable_to_set(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where a folder should be created")
    out = run_command(tmp_path, PTCOURSE_CHECKPOINTS=str(blocker / "checkpoints"))
    assert out.returncode == 1
    assert "is not writable" in out.stdout and "fix: export PTCOURSE_CHECKPOINTS=" in out.stdout
    assert "1 problem(s)" in out.stdout


def test_a_dependency_below_its_bound_fails_with_the_pip_command(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "requirements", lambda: ["numpy>=99.0", "torch>=2.0", "not-a-package-xyz>=1.0",
                                                         'selenium-xyz>=1.0; extra == "test"'])
    monkeypatch.setattr(doctor, "SECTIONS", (doctor.check_dependencies,))
    assert doctor.main([]) == 1
    out = capsys.readouterr().out
    assert 'fix: pip install -U "numpy>=99.0"' in out and "is below the course's bound" in out
    assert 'fix: pip install "not-a-package-xyz>=1.0"' in out
    assert "only for the 'test' extra" in out and "hint: pip install -e '.[test]'" in out
    assert "2 problem(s)" in out, "a missing optional extra is a warning, not a problem"


def test_the_installed_requirements_are_read_from_the_package_metadata():
    import importlib.metadata

    try:
        expected = importlib.metadata.requires("ptcourse")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("ptcourse is not installed here, only importable")
    assert doctor.requirements() == expected and any(r.startswith("torch") for r in expected)


@pytest.mark.parametrize("variable, value, words", [
    ("PTCOURSE_PROFILE", "huge", "export PTCOURSE_PROFILE=standard"),
    ("PTCOURSE_DEVICE", "tpu", "unset PTCOURSE_DEVICE"),
])
def test_a_bad_setting_is_a_problem_with_a_fix(monkeypatch, capsys, variable, value, words):
    monkeypatch.setenv(variable, value)
    monkeypatch.setattr(doctor, "SECTIONS", (doctor.check_platform, doctor.check_profile, doctor.check_run_times))
    assert doctor.main([]) == 1
    assert words in capsys.readouterr().out


def test_a_crashing_check_is_reported_not_raised(monkeypatch, capsys):
    def broken():
        raise OSError("disk on fire")

    monkeypatch.setattr(doctor, "SECTIONS", (broken, doctor.check_profile))
    checks = doctor.run()
    assert [c.level for c in checks] == [doctor.PROBLEM, doctor.OK]
    assert "disk on fire" in capsys.readouterr().out


def test_dead_sources_are_warnings_and_cost_only_the_timeout(monkeypatch):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # a dead proxy: nothing answers
    monkeypatch.setenv("NO_PROXY", "")
    hub._probe_cache.clear()
    import ptcourse.data  # noqa: F401 - imported by check_network; not part of the time measured

    start = time.monotonic()
    checks = doctor.check_network(timeout=1.0)
    hub._probe_cache.clear()
    assert time.monotonic() - start < 5, "the probes run in parallel, each bounded by its timeout"
    assert len(checks) == 3 and all(c.level == doctor.WARN and "does not answer" in c.found for c in checks)


def test_run_time_estimates_scale_the_measured_cpu_time_by_the_speed_probe():
    table = {"fast": {"notebooks": {
        "notebooks/01_single_task.ipynb": {"cpu_s": 120.0, "probe_s": 0.05},
        "solutions/01_single_task_solutions.ipynb": {"cpu_s": 60.0, "probe_s": 0.05},
        "notebooks/02_multi_task.ipynb": {"cpu_s": None, "probe_s": 0.05},
        "notebooks/03_autoencoder_pretraining.ipynb": {"cpu_s": 600.0, "probe_s": 0.2,
                                                       "error": "stopped after more than 600 s of CPU"}}}}
    assert doctor.estimate_minutes("fast", 0.1, table) == {
        "notebooks/01_single_task.ipynb": (pytest.approx(4.0), False),
        "notebooks/03_autoencoder_pretraining.ipynb": (pytest.approx(5.0), True)}
    assert doctor.estimate_minutes("standard", 0.1, table) == {}


@pytest.mark.parametrize("offline", ["1", "0"])
def test_the_shipped_table_gives_an_estimate_for_every_measured_chapter(monkeypatch, offline):
    monkeypatch.setenv("PTCOURSE_OFFLINE", offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    table = json.loads(doctor.TIMES_FILE.read_text())
    key = "fast-offline" if offline == "1" and "fast-offline" in table else "fast"
    measured = [n for n in table.get(key, {}).get("notebooks", {}) if n.startswith("notebooks/")]
    assert measured, f"ptcourse/notebook_times.json has no {key} chapters"
    checks = doctor.check_run_times()
    names = {c.name for c in checks}
    assert all(Path(n).stem in names for n in measured)
    assert ("bundled data" in checks[0].found) == (key == "fast-offline")


def test_the_speed_probe_is_quick_and_positive():
    start = time.perf_counter()
    probe = doctor.speed_probe()
    assert 0 < probe < 5 and time.perf_counter() - start < 30


def test_a_cache_variable_naming_a_file_is_a_problem_with_its_fix_not_a_crash(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the data folder should be")
    out = run_command(tmp_path, PTCOURSE_DATA=str(blocker))
    assert out.returncode == 1
    assert "crashed" not in out.stdout and "is a file, not a folder" in out.stdout
    assert "fix: export PTCOURSE_DATA=" in out.stdout and "1 problem(s)" in out.stdout


def test_a_dead_proxy_is_named_in_the_network_hint(monkeypatch, capsys):
    monkeypatch.setenv("PTCOURSE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    hub._probe_cache.clear()
    import ptcourse.data  # noqa: F401 - imported by check_network; not part of the time measured

    start = time.monotonic()
    checks = doctor.check_network(timeout=1.0)
    hub._probe_cache.clear()
    assert time.monotonic() - start < 5
    assert all(c.level == doctor.WARN and "is the proxy http://127.0.0.1:9 (HTTPS_PROXY) up?" in c.fix for c in checks)
