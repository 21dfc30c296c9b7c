"""The course in a real browser: JupyterLab driven by headless Chromium through Selenium.

Chapter 00 and chapter 04 run top to bottom through JupyterLab's own "Run All Cells"
command; every cell must execute without an error output. In chapter 00 the progress
bar of ``fit`` must appear while it trains and its live loss plot must be drawn; in
chapter 04 the attention explorer's widgets must be drawn and moving the "head" slider
must redraw the figure. Screenshots are saved in ``$PTCOURSE_ARTIFACTS`` (default
``tests/artifacts/``, git-ignored).

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); nothing
downloads a browser: Selenium is given both paths, so Selenium Manager never runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("PTCOURSE_ARTIFACTS") or ROOT / "tests" / "artifacts")

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")

# JupyterLab settings for a test run: every cell in the DOM, no autosave, no news pop-ups.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}

# Runs in the page: count progress-bar widgets that appear (fit's bar is removed when it ends).
WATCH_PROGRESS = """
window.ptcourseSeen = {bars: 0, texts: []};
new MutationObserver(() => {
  for (const bar of document.querySelectorAll('.widget-hprogress, .widget-progress')) {
    if (bar.getBoundingClientRect().width <= 0) continue;
    if (!bar.dataset.seen) { bar.dataset.seen = '1'; window.ptcourseSeen.bars += 1; }
    const row = bar.closest('.widget-hbox') || bar.parentElement;
    const text = row ? row.textContent.trim() : '';
    const texts = window.ptcourseSeen.texts;
    if (text && texts.length < 100 && !texts.includes(text)) texts.push(text);
  }
}).observe(document.body, {childList: true, subtree: true, characterData: true});
"""

# Runs in the page: start JupyterLab's "Run All Cells"; window.ptcourseDone is set when it ends.
RUN_ALL = """
window.ptcourseDone = null;
window.jupyterapp.commands.execute('notebook:run-all-cells').then(
  () => { window.ptcourseDone = true; }, e => { window.ptcourseDone = String(e); });
"""

# Runs in the page: each code cell's execution count and error outputs.
CELL_REPORT = """
const cells = window.jupyterapp.shell.currentWidget.content.widgets;
return cells.filter(c => c.model.type === 'code').map((c, i) => {
  const outs = [];
  for (let k = 0; k < c.model.outputs.length; k++) outs.push(c.model.outputs.get(k).toJSON());
  return {count: c.model.executionCount,
          errors: outs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
          images: outs.filter(o => o.data && o.data['image/png']).length};
});
"""

KERNEL_READY = """
const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
return !!(kernel && kernel.status === 'idle' && w.context.isReady);
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {seconds:.0f} s waiting for {what}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab from this environment, serving a copy of the chapters (the originals stay clean)."""
    tmp = tmp_path_factory.mktemp("lab")
    course = tmp / "course"
    shutil.copytree(ROOT / "notebooks", course / "notebooks")
    for name, value in LAB_SETTINGS.items():
        (tmp / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "settings" / name).write_text(json.dumps(value))
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the notebook's inline backend
    env.update(PYTHONPATH=str(ROOT), PTCOURSE_PROFILE="fast", PTCOURSE_OFFLINE="1", HF_HUB_OFFLINE="1",
               OMP_NUM_THREADS="1", JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               PTCOURSE_DATA=str(tmp / "data"), PTCOURSE_CHECKPOINTS=str(tmp / "ckpt"),
               PTCOURSE_RESULTS=str(tmp / "results"))
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={course}", "--allow-root",
           "--LabApp.expose_app_in_browser=True"]
    log = open(tmp / "jupyter.log", "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        _wait(up, 90, "JupyterLab to start")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # belt and braces: Selenium Manager must never download anything
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(420)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    try:
        yield driver
    finally:
        driver.quit()


def open_and_run_all(driver, lab_url: str, notebook: str, timeout: float = 420) -> list[dict]:
    """Open a notebook in JupyterLab, run all its cells through the UI, return the cell report.

    While the cells run, the first progress bar drawn is photographed (it vanishes when done)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    driver.get(f"{lab_url}/lab/tree/notebooks/{notebook}?reset")
    _wait(lambda: driver.execute_script(KERNEL_READY), 120, f"{notebook} to open with an idle kernel")
    driver.execute_script(WATCH_PROGRESS)
    driver.execute_script(RUN_ALL)
    photographed, deadline = False, time.monotonic() + timeout
    while (result := driver.execute_script("return window.ptcourseDone")) is None:
        assert time.monotonic() < deadline, f"{notebook} did not finish within {timeout:.0f} s"
        bars = driver.find_elements(By.CSS_SELECTOR, ".widget-hprogress")
        if bars and not photographed:
            try:
                row = bars[0].find_element(By.XPATH, "ancestor::div[contains(@class, 'jp-OutputArea-output')]")
                driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
                row.screenshot(str(ARTIFACTS / f"{Path(notebook).stem}_progress_bar.png"))
                photographed = True
            except WebDriverException:
                pass  # the bar vanished meanwhile: fit finished
        time.sleep(0.1)
    assert result is True, f"Run All Cells failed: {result}"
    _wait(lambda: driver.execute_script(KERNEL_READY), 60, "the kernel to be idle")
    return driver.execute_script(CELL_REPORT)


def assert_every_cell_ran_cleanly(report: list[dict], notebook: str) -> None:
    errors = [(i, e) for i, cell in enumerate(report) for e in cell["errors"]]
    assert not errors, f"{notebook}: error outputs in code cells {errors}"
    not_run = [i for i, cell in enumerate(report) if cell["count"] is None]
    assert not not_run, f"{notebook}: code cells {not_run} did not run"


def test_chapter_00_runs_with_a_progress_bar_and_a_live_plot(lab, browser):
    from selenium.webdriver.common.by import By

    report = open_and_run_all(browser, lab, "00_setup.ipynb")
    browser.save_screenshot(str(ARTIFACTS / "00_setup_end.png"))
    assert_every_cell_ran_cleanly(report, "00_setup.ipynb")
    seen = browser.execute_script("return window.ptcourseSeen")
    assert seen["bars"] >= 1, "no progress-bar widget was drawn while fit trained"
    assert any(t.startswith("fit") and "batch" in t for t in seen["texts"]), f"not fit's progress bar: {seen['texts']}"
    live = [el for el in browser.find_elements(By.CSS_SELECTOR, ".jp-CodeCell") if "live_plot=True" in el.text]
    assert live, "chapter 00 has no cell that calls fit(..., live_plot=True)"
    images = live[0].find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")
    assert images and images[0].size["width"] > 100, "the live loss plot was not drawn"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", images[0])
    images[0].screenshot(str(ARTIFACTS / "00_setup_live_plot.png"))


def test_chapter_04_attention_explorer_redraws_when_the_head_changes(lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    report = open_and_run_all(browser, lab, "04_self_attention.ipynb")
    assert_every_cell_ran_cleanly(report, "04_self_attention.ipynb")
    sliders = [s for s in browser.find_elements(By.CSS_SELECTOR, ".widget-slider")
               if s.find_element(By.CSS_SELECTOR, ".widget-label").text.strip() == "head"]
    assert sliders, "the explorer's 'head' slider was not drawn"
    explorer = sliders[0].find_element(By.XPATH, "ancestor::div[contains(@class, 'jp-OutputArea')]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", explorer)

    def figure() -> str:
        images = explorer.find_elements(By.CSS_SELECTOR, ".widget-output img, .jupyter-widgets-output-area img")
        return images[-1].get_attribute("src") if images else ""

    before = _wait(figure, 60, "the explorer's figure")
    explorer.screenshot(str(ARTIFACTS / "04_explorer_head1.png"))
    readout = sliders[0].find_element(By.CSS_SELECTOR, ".widget-readout")
    assert readout.text.strip() == "1"
    handle = sliders[0].find_element(By.CSS_SELECTOR, ".noUi-handle, .ui-slider-handle")
    handle.click()
    handle.send_keys(Keys.ARROW_LEFT)
    _wait(lambda: readout.text.strip() == "0", 30, "the head slider to move to 0")
    after = _wait(lambda: figure() if figure() not in ("", before) else "", 60, "the figure to be redrawn")
    assert after != before
    explorer.screenshot(str(ARTIFACTS / "04_explorer_head0.png"))
