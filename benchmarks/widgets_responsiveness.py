"""How quickly the lab answers: a tile click on a 5x5 map and one trial-player step, kernel side and in a browser.

Two numbers per action, median and 95th percentile over ``--tries`` (50):

* **kernel**: the Python handler alone (``MapEditor.click``, ``TrialPlayer.move``),
  wall and CPU time, with one torch thread;
* **browser**: click to updated figure, measured in headless Chromium on a
  JupyterLab page: the click travels to the kernel, the handler runs, the
  new figure travels back and plotly redraws; the timer stops when the
  plot's SVG differs from before the click.

The goal is under 200 ms for both on a 2-core laptop. The browser part needs
Playwright and Debian's ``chromium`` (``--chromium`` to point elsewhere);
``--kernel-only`` skips it.

    python benchmarks/widgets_responsiveness.py [--tries 50] [--kernel-only]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAP = ("SFFFF", "FHFHF", "FFFHF", "HFFFF", "FFHFG")
SETUP = f"""
import torch
torch.set_num_threads(1)
from icrl_course import widgets as lab
from icrl_course.envs import LakeMap
editor = lab.MapEditor({MAP!r})
player = lab.TrialPlayer(maps=[LakeMap.from_rows({list(MAP)!r})], episodes=30)
player.run()
"""


def summary(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000
    return f"median {np.median(ms):6.1f} ms, p95 {np.percentile(ms, 95):6.1f} ms"


def kernel_side(tries: int) -> dict[str, dict[str, list[float]]]:
    namespace: dict = {}
    exec(SETUP, namespace)
    editor, player = namespace["editor"], namespace["player"]
    actions = {"tile click (5x5 map)": lambda i: editor.click(1, 2),  # cycles F -> H -> G -> S -> F
               "trial-player step": lambda i: player.move(+1 if (i // (len(player.playback) - 1)) % 2 == 0 else -1)}
    out = {}
    for name, action in actions.items():
        wall, cpu = [], []
        for i in range(tries):
            w0, c0 = time.perf_counter(), time.process_time()
            action(i)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        out[name] = {"wall": wall, "cpu": cpu}
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser_side(tries: int, chromium: str) -> dict[str, list[float]]:
    import nbformat
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="icrl-lab-bench-"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell("editor"),
                                         nbformat.v4.new_code_cell("player")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "bench.ipynb")
    port, token = free_port(), "bench"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(root / "runtime"), OMP_WAIT_POLICY="PASSIVE",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
         "--LabApp.expose_app_in_browser=True"], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                time.sleep(1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            page.set_default_timeout(300_000)
            page.goto(f"{base}/lab/tree/bench.ipynb?token={token}&reset")
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                                   "&& window.jupyterapp.shell.currentWidget.sessionContext")
            page.evaluate("""async () => { const p = window.jupyterapp.shell.currentWidget;
                await p.context.ready; await p.sessionContext.ready;
                await window.jupyterapp.commands.execute('notebook:run-all-cells'); }""")
            page.locator(".icrl-trial-player .icrl-step-label").wait_for()
            page.locator(".icrl-map-editor .js-plotly-plot .main-svg").first.wait_for()
            out = {}
            for name, view, button in (("tile click (5x5 map)", "icrl-map-editor", ".icrl-tile >> nth=7"),
                                       ("trial-player step", "icrl-trial-player", ".icrl-step")):
                svg = f"document.querySelector('.{view} .js-plotly-plot .main-svg')"
                page.locator(f".{view}").scroll_into_view_if_needed()
                times = []
                for _ in range(tries):
                    before = page.evaluate(f"() => {svg}.innerHTML")
                    t0 = time.perf_counter()
                    page.locator(f".{view} {button}").click()
                    page.wait_for_function(f"(before) => {svg}.innerHTML !== before", arg=before, polling="raf")
                    times.append(time.perf_counter() - t0)
                out[name] = times
            browser.close()
        return out
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=50)
    parser.add_argument("--kernel-only", action="store_true", help="skip the browser round trip")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--json", action="store_true", help="print the raw timings as JSON too")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {args.tries} tries each")
    kernel = kernel_side(args.tries)
    for name, t in kernel.items():
        print(f"kernel  {name:22s} wall {summary(t['wall'])}; CPU {summary(t['cpu'])}")
    browser = {}
    if not args.kernel_only:
        if not Path(args.chromium).exists():
            print(f"browser: no Chromium at {args.chromium} (apt-get install chromium, or --chromium PATH)")
        else:
            browser = browser_side(args.tries, args.chromium)
            for name, t in browser.items():
                print(f"browser {name:22s} click to redrawn figure: {summary(t)}")
    if args.json:
        print(json.dumps({"kernel": kernel, "browser": browser}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
