"""Repository checks: clean notebooks, README syllabus and badges, environments in sync (conda,
Binder, Colab), lab starts."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import sync_links  # noqa: E402

NOTEBOOKS = sorted(ROOT.glob("notebooks/*.ipynb"))
ALL_NOTEBOOKS = NOTEBOOKS + sorted(ROOT.glob("solutions/*.ipynb")) + sorted(ROOT.glob("exercises/*.ipynb"))
README = (ROOT / "README.md").read_text()
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name where they differ


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:2] == ["00_setup.ipynb", "01_single_task.ipynb"]


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=rel)
def test_notebook_is_clean(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"cell {i} has outputs: clear them before committing"
            assert cell["execution_count"] is None, f"cell {i} has an execution count"
    assert nb["metadata"].get("kernelspec") == KERNELSPEC
    assert nb["metadata"].get("language_info", {}).get("name") == "python"
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    if not path.parent.name == "exercises":
        assert not re.search(r"\b(TODO|FIXME|XXX)\b", text), "unfinished-work markers in a shipped notebook"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=rel)
def test_notebook_starts_with_title_badges_and_colab_cell(path):
    cells = json.loads(path.read_text())["cells"]
    first = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and first.startswith(f"# {path.name[:2]} ")
    assert sync_links.badge_line(rel(path)) in first
    install = "".join(cells[1]["source"])
    assert cells[1]["cell_type"] == "code" and '"google.colab" in sys.modules' in install
    assert sync_links.install_address() in install


@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_notebook_is_in_the_readme_syllabus_with_badges(path):
    row = next((line for line in README.splitlines() if line.startswith("|") and f"({rel(path)})" in line), None)
    assert row is not None, f"{rel(path)} has no row in the README syllabus table"
    assert sync_links.badge_line(rel(path)) in row, f"the README row of {rel(path)} lacks its Colab/Binder badges"


def test_readme_links_point_at_files_that_exist():
    for target in re.findall(r"\]\(((?:notebooks|solutions|exercises|benchmarks)/[^)#]+)\)", README):
        assert (ROOT / target).exists(), f"README links to missing {target}"


def test_launch_links_are_in_sync():
    assert sync_links.planned_changes(sync_links.repository_url()) == {}, "run: python scripts/sync_links.py"


def test_retargeting_a_fork_leaves_no_old_address():
    fork = "https://github.com/some-teacher/course-fork"
    old = sync_links._owner_repo(sync_links.repository_url())
    for path, text in sync_links.planned_changes(fork).items():
        assert old not in text, f"{rel(path)} still points at {old} after retargeting"
    assert (ROOT / "README.md") in sync_links.planned_changes(fork)


def test_the_branch_comes_from_pyproject_and_retargets_in_one_command(tmp_path, monkeypatch):
    """`sync_links.py --repo URL --branch B` rewrites pyproject and every link to that branch."""
    ref = sync_links.branch()
    assert f"/blob/{ref}/" in sync_links.badge_line("notebooks/00_setup.ipynb")
    assert f"/{ref}?urlpath=" in sync_links.badge_line("notebooks/00_setup.ipynb")
    copy = tmp_path / "course"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info"))
    monkeypatch.setattr(sync_links, "ROOT", copy)
    assert sync_links.main(["--repo", "https://github.com/some-teacher/course-fork", "--branch", "spring-26"]) == 0
    assert sync_links.branch() == "spring-26"
    assert sync_links.repository_url() == "https://github.com/some-teacher/course-fork"
    assert sync_links.planned_changes(sync_links.repository_url()) == {}
    cell = "".join(json.loads((copy / "notebooks/00_setup.ipynb").read_text())["cells"][1]["source"])
    assert "git+https://github.com/some-teacher/course-fork@spring-26" in cell
    readme = (copy / "README.md").read_text()
    assert "/blob/spring-26/notebooks/00_setup.ipynb" in readme and "/blob/main/" not in readme
    with pytest.raises(SystemExit, match="not a branch name"):
        sync_links.main(["--branch", "feature/x"])


def test_readme_quick_start_is_two_commands_and_ci_runs_the_test_one():
    assert "make lab" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def _requirements(block: str | None = None) -> dict[str, str]:
    """pyproject's requirements as {conda name: bound}: all of them, or one list (e.g. "lab")."""
    text = (ROOT / "pyproject.toml").read_text()
    if block is not None:
        text = re.search(rf"^{block} = \[(.*?)^\]", text, flags=re.M | re.S).group(1)
    specs = re.findall(r'^\s*"([A-Za-z0-9_.-]+)(>=[^"]*)?",?\s*$', text, flags=re.M)
    return {CONDA_NAMES.get(name.lower(), name.lower()): bound for name, bound in specs}


def _environment(path: str = "environment.yml") -> dict[str, str]:
    text = (ROOT / path).read_text().split("dependencies:", 1)[1]
    deps = re.findall(r"^  - ([A-Za-z0-9_.-]+)((?:>=|=)[^\s#]*)?\s*$", text, flags=re.M)
    return {name.lower(): bound for name, bound in deps}


def test_environment_yml_and_pyproject_name_the_same_packages_and_bounds():
    conda = _environment()
    assert conda.pop("python") == ">=3.10" and conda.pop("pip") == ""
    assert conda == _requirements()


def test_binder_environment_pins_python_and_has_the_course_dependencies():
    """repo2docker reads binder/ first and honours only an exact python=X.Y; the conda layer
    holds every runtime dependency (and JupyterLab), so postBuild installs with --no-deps."""
    binder = _environment("binder/environment.yml")
    assert re.fullmatch(r"=3\.1[0-9]", binder.pop("python")), "binder/environment.yml needs python=3.X"
    assert binder.pop("pip") == ""
    assert binder == {**_requirements("dependencies"), **_requirements("lab")}
    assert "  - pip:" not in (ROOT / "binder/environment.yml").read_text(), "install the package in postBuild"


def _binder_settings() -> tuple[str, bool]:
    """The profile binder/start sets, and whether it switches the network off."""
    text = (ROOT / "binder" / "start").read_text()
    profile = re.search(r'^export PTCOURSE_PROFILE="\$\{PTCOURSE_PROFILE:-(\w+)\}"', text, flags=re.M).group(1)
    offline = re.search(r'^export PTCOURSE_OFFLINE="\$\{PTCOURSE_OFFLINE:-1\}"', text, flags=re.M) is not None
    return profile, offline


def test_binder_post_build_and_start():
    post_build, start = ROOT / "binder" / "postBuild", ROOT / "binder" / "start"
    for script in (post_build, start):
        assert os.access(script, os.X_OK), f"{rel(script)} must be executable"
        assert script.read_text().startswith("#!/bin/bash\n")
    assert re.search(r"^python -m pip install --no-deps .*\.$", post_build.read_text(), flags=re.M)
    text = start.read_text()
    assert re.search(r'^export OMP_NUM_THREADS=1\b', text, flags=re.M)
    assert text.rstrip().endswith('exec "$@"'), "start must end by running the command it was given"
    profile, offline = _binder_settings()
    env = {k: v for k, v in os.environ.items() if k not in ("PTCOURSE_PROFILE", "PTCOURSE_OFFLINE")}
    env["OMP_NUM_THREADS"] = "4"
    out = subprocess.run(["bash", str(start), "sh", "-c", "echo $PTCOURSE_PROFILE $PTCOURSE_OFFLINE $OMP_NUM_THREADS"],
                         env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == [profile] + (["1"] if offline else []) + ["1"]


def test_binder_profile_fits_binder_in_the_measured_table():
    """Every chapter measured as Binder runs it (its profile, offline or not, one thread)
    ran within 10 minutes of CPU and 1.5 GB."""
    profile, offline = _binder_settings()
    key = f"{profile}-offline" if offline else profile
    table = json.loads((ROOT / "ptcourse" / "notebook_times.json").read_text())
    assert key in table, f"no measured times for {key}: run scripts/measure_notebooks.py"
    rows = table[key]["notebooks"]
    for name, row in rows.items():
        assert row["cpu_s"] is not None and row["cpu_s"] < 600, f"{name} exceeds Binder's 10 minutes: {row}"
        assert row["peak_mib"] < 1536, f"{name} exceeds 1.5 GB: {row}"
    missing = [rel(p) for p in NOTEBOOKS if rel(p) not in rows]
    if missing:
        warnings.warn(f"not yet measured as Binder runs them ({key}): {missing} (scripts/measure_notebooks.py)")


def _colab_command(path: Path) -> list[str]:
    """The argument list the Colab install cell passes to subprocess.run."""
    tree = ast.parse("".join(json.loads(path.read_text())["cells"][1]["source"]))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "run"]
    assert len(calls) == 1, "the Colab cell should run one pip command"
    args = calls[0].args[0]
    return [ast.unparse(a) if not isinstance(a, ast.Constant) else a.value for a in args.elts]


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=rel)
def test_colab_cell_keeps_what_colab_already_has(path):
    """pip without --upgrade leaves an installed torch / transformers that meets the bound alone."""
    command = _colab_command(path)
    assert command[:4] == ["sys.executable", "-m", "pip", "install"]
    flags = [a for a in command[4:] if a.startswith("-")]
    assert flags == ["-q"], f"no upgrade or reinstall flags in the Colab cell: {flags}"
    assert [a for a in command[4:] if not a.startswith("-")] == [f"ptcourse @ {sync_links.install_address()}"]


def test_colab_ipywidgets_and_torch_versions_are_accepted():
    from packaging.requirements import Requirement

    bounds = {Requirement(r).name: Requirement(r).specifier for r in
              re.findall(r'^\s*"([^"]+)",?\s*$', re.search(r"^dependencies = \[(.*?)^\]",
                         (ROOT / "pyproject.toml").read_text(), flags=re.M | re.S).group(1), flags=re.M)}
    assert bounds["ipywidgets"].contains("7.7.1"), "Colab ships ipywidgets 7.7.1: the bound must accept it"
    assert bounds["ipywidgets"].contains("8.1.5")


def test_pip_keeps_satisfied_dependencies(tmp_path):
    """What the Colab cell asks of pip, tried here: pip resolves the course's dependencies
    (those of the package it builds from git) and, without --upgrade, installs none that
    is already there at an allowed version (its default only-if-needed strategy)."""
    block = re.search(r"^dependencies = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(), flags=re.M | re.S)
    requirements = re.findall(r'^\s*"([^"]+)",?\s*$', block.group(1), flags=re.M)
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "-q", "--disable-pip-version-check",
           "--report", str(report), *requirements]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    installs = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
    assert installs == [], f"pip would install {installs} although every dependency is satisfied"


def test_measuring_without_stand_ins_reads_the_machines_own_data_cache(monkeypatch, tmp_path):
    """--no-mnist-stand-in used to point the notebooks at an empty temporary cache, not the real MNIST."""
    import measure_notebooks

    from ptcourse import doctor

    seen = []

    class FakeRun:
        def __init__(self, cmd, env, **kwargs):
            seen.append(env)
            self.pid = 0

        def communicate(self, timeout):
            return json.dumps({"ok": True, "error": None, "wall_s": 1, "cpu_s": 1, "peak_mib": 1}), None

    monkeypatch.setattr(measure_notebooks.subprocess, "Popen", FakeRun)
    monkeypatch.setattr(measure_notebooks, "save", lambda *args: {})
    monkeypatch.setattr(doctor, "speed_probe", lambda: 0.03)
    monkeypatch.setenv("PTCOURSE_DATA", str(tmp_path / "my-data"))
    notebook = [ROOT / "notebooks" / "00_setup.ipynb"]
    measure_notebooks.measure(notebook, "fast", tmp_path / "cache", 60)
    measure_notebooks.measure(notebook, "fast", tmp_path / "cache", 60, data=tmp_path / "stand-in")
    assert [env["PTCOURSE_DATA"] for env in seen] == [str(tmp_path / "my-data"), str(tmp_path / "stand-in")]
    assert seen[0]["PTCOURSE_RESULTS"] == str(tmp_path / "cache" / "results")
