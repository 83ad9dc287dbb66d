"""Lesson 8 in a real browser: JupyterLab serves the notebook, headless Chromium runs it and clicks the lab.

Why a browser: the headless tests (``test_widgets.py``) call the handlers
directly; only a browser shows that the front end is wired to them (the
widget manager renders the views, plotly's ``FigureWidget`` draws, a click
travels to the kernel and the change travels back). The test copies the
notebook to a temporary folder (JupyterLab autosaves what it runs), starts
JupyterLab on a free loopback port, runs every cell, clicks a tile of the map
editor and the trial player's step button, and asserts that text and plot
SVG changed. Screenshots go to the folder the test prints
(``ICRL_LAB_SHOTS`` to choose it).

It needs Playwright (the test extra) and a Chromium: Debian's ``chromium``
package (``apt-get install chromium``; ``.ci/run`` installs it), found at
``ICRL_CHROMIUM`` or on the PATH. Playwright's own browser download is never
used. Without a Chromium the test skips with one line; in CI (``CI=true``) it fails.
"""

from __future__ import annotations

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
NOTEBOOK = ROOT / "notebooks" / "08_the_interactive_lab.ipynb"
STARTUP_S = 120
RUN_ALL_S = 300


def chromium_path() -> str | None:
    """Debian's Chromium (or the one ``ICRL_CHROMIUM`` names), None when there is none."""
    candidates = [os.environ.get("ICRL_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")]
    return next((c for c in candidates if c and Path(c).exists()), None)


def missing(reason: str) -> None:
    """Skip locally, fail in CI: a browser test that cannot run must never pass unnoticed there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: .ci/run must install it)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        missing("no Chromium found: apt-get install chromium (or set ICRL_CHROMIUM) to run the lab in a browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """A JupyterLab on a free loopback port serving a copy of lesson 8; yields its base URL and token."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port, token = free_port(), "icrl-lab-test"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(root / "runtime"), PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    log = open(root / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start in {STARTUP_S} s; its log: {root / 'jupyterlab.log'}")
                time.sleep(1)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("ICRL_LAB_SHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the lab: {folder}")
    return folder


RUN_ALL = """async () => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    await panel.context.ready;
    await panel.sessionContext.ready;
    await app.commands.execute('notebook:run-all-cells');
}"""
ALL_RAN = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return kernel && kernel.status === 'idle' &&
        panel.content.widgets.every(c => c.model.type !== 'code' || c.model.executionCount !== null);
}"""
NO_ERRORS = """() => window.jupyterapp.shell.currentWidget.content.widgets
    .filter(c => c.model.type === 'code')
    .flatMap(c => c.model.outputs.toJSON())
    .filter(o => o.output_type === 'error')
    .map(o => o.ename + ': ' + o.evalue)"""


def plot_svg(page, view: str) -> str:
    """The SVG markup of the first plotly figure inside the view with CSS class ``view``."""
    return page.locator(f".{view} .js-plotly-plot .main-svg").first.inner_html()


def test_lesson_8_runs_in_jupyterlab_and_the_lab_answers_clicks(browser, jupyterlab, shots):
    from playwright.sync_api import expect  # importable here: the browser fixture skipped or failed without playwright

    base, token = jupyterlab
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.set_default_timeout(RUN_ALL_S * 1000)
    page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}&reset")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext")
    page.evaluate(RUN_ALL)
    page.wait_for_function(ALL_RAN, polling=500)
    assert page.evaluate(NO_ERRORS) == []

    # The map editor: clicking tile (0, 1) turns F into H; the rows, the tile and the figure follow.
    editor = page.locator(".icrl-map-editor").first
    editor.scroll_into_view_if_needed()
    editor.locator(".js-plotly-plot .main-svg").first.wait_for()
    text = editor.locator(".icrl-map-text textarea")
    rows_before, svg_before = text.input_value(), plot_svg(page, "icrl-map-editor")
    page.screenshot(path=str(shots / "map_editor_before.png"))
    editor.locator(".icrl-tile").nth(1).click()
    page.wait_for_function("(before) => document.querySelector('.icrl-map-editor .icrl-map-text textarea').value "
                           "!== before", arg=rows_before)
    rows_after = text.input_value()
    assert rows_after.splitlines()[0] == rows_before.splitlines()[0][0] + "H" + rows_before.splitlines()[0][2:]
    assert editor.locator(".icrl-tile").nth(1).inner_text().strip() == "H"
    page.wait_for_function("(before) => document.querySelector('.icrl-map-editor .js-plotly-plot .main-svg')"
                           ".innerHTML !== before", arg=svg_before)
    assert "solvable" in editor.locator(".icrl-map-status").inner_text()
    editor.screenshot(path=str(shots / "map_editor.png"))

    # The trial player: one step forward moves the label on and redraws the agent on the map.
    player = page.locator(".icrl-trial-player").first
    player.scroll_into_view_if_needed()
    label = player.locator(".icrl-step-label")
    label.wait_for()
    label_before, svg_before = label.inner_text(), plot_svg(page, "icrl-trial-player")
    assert "episode 1, step 1" in label_before
    player.locator(".icrl-step").click()
    page.wait_for_function("(before) => document.querySelector('.icrl-trial-player .icrl-step-label').innerText "
                           "!== before", arg=label_before)
    assert "episode 1, step 2" in label.inner_text() or "episode 2, step 1" in label.inner_text()
    page.wait_for_function("(before) => document.querySelector('.icrl-trial-player .js-plotly-plot .main-svg')"
                           ".innerHTML !== before", arg=svg_before)
    player.screenshot(path=str(shots / "trial_player.png"))

    # The stitching lab ran in the notebook: its figure shows the recorded episodes and the agents' first episodes.
    stitching = page.locator(".icrl-stitching-lab").first
    stitching.scroll_into_view_if_needed()
    assert "a stitching case" in stitching.inner_text()
    # Plotly draws axes before legends: wait for the text (expect retries) instead of reading it once.
    expect(stitching.locator(".js-plotly-plot").first).to_contain_text("first greedy episode", timeout=30_000)
    stitching.screenshot(path=str(shots / "stitching_lab.png"))

    # The OOD probe: one click runs lesson 7's protocol on fresh maps and fills the status and both figures.
    probe = page.locator(".icrl-ood-probe").first
    probe.scroll_into_view_if_needed()
    probe.locator("button", has_text="evaluate").click()
    page.wait_for_function("() => document.querySelector('.icrl-ood-probe').innerText.includes('Mean success')")
    expect(probe.locator(".js-plotly-plot").first).to_contain_text("ICRL / explorer", timeout=30_000)
    probe.screenshot(path=str(shots / "ood_probe.png"))
