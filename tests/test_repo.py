"""Repository checks: clean notebooks, README syllabus and badges, environment in sync, lab starts."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
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
    assert f"git+{sync_links.repository_url()}" in install


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


def test_readme_quick_start_is_two_commands_and_ci_runs_the_test_one():
    assert "make lab" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def _requirements() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text()
    specs = re.findall(r'^\s*"([A-Za-z0-9_.-]+)(>=[^"]*)?",?\s*$', text, flags=re.M)
    return {CONDA_NAMES.get(name.lower(), name.lower()): bound for name, bound in specs}


def _environment() -> dict[str, str]:
    text = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    deps = re.findall(r"^  - ([A-Za-z0-9_.-]+)(>=[^\s#]*)?\s*$", text, flags=re.M)
    return {name.lower(): bound for name, bound in deps if name not in ("python", "pip")}


def test_environment_yml_and_pyproject_name_the_same_packages_and_bounds():
    assert _environment() == _requirements()


def test_version_bounds_are_loose():
    for name, bound in _requirements().items():
        assert bound.startswith(">="), f"{name}: use a lower bound, not {bound or 'nothing'}"
        assert "==" not in bound and "<" not in bound.lstrip(">="), f"{name}: no exact pins or caps"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyter_lab_serves_the_course(tmp_path):
    """What `make lab` runs: JupyterLab starts and serves the first notebook."""
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.token=",
           "--ServerApp.password=", f"--ServerApp.root_dir={ROOT}", "--ServerApp.ip=127.0.0.1", "--allow-root"]
    env = {**__import__("os").environ, "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        url = f"http://127.0.0.1:{port}/api/contents/notebooks/00_setup.ipynb?content=0"
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    assert json.load(response)["type"] == "notebook"
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5) as response:
                    assert response.status == 200
                break
            except (OSError, ConnectionError):
                assert time.time() < deadline, "JupyterLab did not start within 60 s"
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=20)
