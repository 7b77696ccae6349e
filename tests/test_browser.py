"""The notebooks where learners run them: JupyterLab, in a real (headless) Chromium.

One JupyterLab server serves a temporary copy of the kit (helpers.py, data/samples and
notebooks/, in the repository's layout), so nothing the browser does can touch the
repository. Each notebook, in course order (04 writes the checkpoint 05 and 06 read), is
opened in a fresh tab; once its kernel is connected and idle, Run > Run All Cells is
clicked, and after the last cell has run the test checks what a learner would see:

- every code cell ran, and no cell shows an error or a traceback;
- tqdm progress bars render as ipywidgets progress bars, never as text or a widget error;
- every cell that draws a figure (a `plot_*` call or `plt.show()`) shows it as an image.

A screenshot of each notebook goes to $KIT_SCREENSHOTS (or a temporary folder, printed).

Needs the `playwright` Python package and Debian's `chromium` (`bash kit.sh test` installs
both; the browser is never downloaded by Playwright). Without them the test is skipped,
except under CI=true, where it fails.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))
CHROMIUM = os.environ.get("KIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
KERNEL_READY_S = 120     # opening a notebook until its kernel answers
RUN_ALL_S = 600          # Run All Cells until the last cell is done, per notebook

# Counts ipywidgets progress bars as they are added to the page: training bars (leave=False)
# are removed again when their loop ends, so looking only at the finished page would miss them.
WATCH_PROGRESS_BARS = """
window.__kitProgressBars = 0;
new MutationObserver(mutations => {
  for (const m of mutations) for (const n of m.addedNodes) {
    if (n.nodeType === 1 && (n.matches('.widget-hprogress') || n.querySelector('.widget-hprogress')))
      window.__kitProgressBars += 1;
  }
}).observe(document, {childList: true, subtree: true});
"""

# The open notebook's panel, found through the JupyterLab application object
# (exposed to the page by LabApp.expose_app_in_browser).
FIND_PANEL = """
const findPanel = path => [...window.jupyterapp.shell.widgets('main')]
    .find(w => w.context && w.context.path === path && w.sessionContext);
"""

KERNEL_STATE = FIND_PANEL + """
async path => {
  const within = (promise, ms) => Promise.race([promise.then(() => true),
                                                new Promise(r => setTimeout(() => r(false), ms))]);
  const panel = findPanel(path);
  if (!panel) return 'no notebook panel yet';
  if (!await within(panel.context.ready, 5000)) return 'notebook not loaded yet';
  if (!await within(panel.sessionContext.ready, 5000)) return 'session not ready yet';
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) return 'no kernel yet';
  // kernel.info resolves once a kernel_info request has made the round trip over the websocket
  if (!await within(kernel.info, 5000)) return 'kernel not answering yet';
  return `${kernel.connectionStatus}/${kernel.status}/${kernel.id}`;
}
"""

WATCH_BUSY = FIND_PANEL + """
path => {
  window.__kitBusy = false;
  findPanel(path).sessionContext.session.kernel.statusChanged.connect((kernel, status) => {
    if (status === 'busy') window.__kitBusy = true;
  });
}
"""

RUN_STATE = FIND_PANEL + """
path => {
  const panel = findPanel(path);
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const code = panel.content.widgets.filter(c => c.model.type === 'code');
  const prompts = [...panel.node.querySelectorAll('.jp-InputArea-prompt')].map(p => p.textContent);
  return {status: kernel ? `${kernel.connectionStatus}/${kernel.status}` : 'no kernel', busySeen: window.__kitBusy,
          running: prompts.filter(t => t.includes('*')).length,
          counts: code.map(c => c.model.executionCount)};
}
"""

REPORT = FIND_PANEL + """
path => {
  const panel = findPanel(path);
  const cells = panel.content.widgets;
  const out = {cells: [], progressBarsSeen: window.__kitProgressBars};
  cells.forEach((cell, index) => {
    if (cell.model.type !== 'code') return;
    const outputs = cell.model.outputs.toJSON();
    const node = cell.node;
    out.cells.push({
      index,
      source: cell.model.sharedModel.getSource(),
      count: cell.model.executionCount,
      errors: outputs.filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`),
      stderr: [...node.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
                .map(e => e.textContent),
      text: [...node.querySelectorAll('.jp-OutputArea-output')].map(e => e.textContent).join('\\n'),
      progressBars: node.querySelectorAll('.jp-OutputArea-output .widget-hprogress').length,
      images: [...node.querySelectorAll('.jp-OutputArea-output img')]
                .filter(i => i.complete && i.naturalWidth > 0).length,
    });
  });
  return out;
}
"""


def _browser_tools():
    """(sync_playwright, None) when the browser test can run, else (None, why not)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None, "the playwright Python package is not installed (bash kit.sh test installs it)"
    if not os.access(CHROMIUM, os.X_OK):
        return None, f"no Chromium at {CHROMIUM} (bash kit.sh test installs Debian's chromium as root)"
    return sync_playwright, None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET"):
    req = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 over a temporary copy of the kit; yields (base URL, token, root)."""
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = tmp / "kit"
    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(REPO / "data" / "samples", root / "data" / "samples")
    shutil.copytree(REPO / "solutions", root / "solutions")  # the exercises' check cells read them
    shutil.copy(REPO / "helpers.py", root / "helpers.py")
    config = tmp / "config"
    (config / "labconfig").mkdir(parents=True)
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "LabApp": {"expose_app_in_browser": True, "news_url": None,
                   "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}}))
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    settings = tmp / "settings"
    (settings / "@jupyterlab" / "docmanager-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosave": False}))
    env = dict(os.environ, KIT_SIZE="smoke", KIT_DATA_DIR=str(tmp / "data"),
               JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTER_DATA_DIR=str(tmp / "data-dir"),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               IPYTHONDIR=str(tmp / "ipython"), MPLCONFIGDIR=str(tmp / "matplotlib"))
    for name in ("KIT_MIRROR", "KIT_GLOVE", "KIT_AG_NEWS", "KIT_RESULTS_DIR", "MPLBACKEND"):
        env.pop(name, None)
    # Kernel specs stay findable with JUPYTER_DATA_DIR moved: the server's own Python provides python3
    # (as it does for nbval), and specs installed in its environment are on the system path.
    port, token = _free_port(), uuid.uuid4().hex
    log = open(tmp / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                _api(base, token, "/api/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (tmp / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield base, token, root, tmp / "jupyterlab.log"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium (Debian's, through Playwright) with a fresh profile."""
    sync_playwright, why_not = _browser_tools()
    if why_not:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the browser test cannot run: {why_not}")
        pytest.skip(why_not)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        context.add_init_script(WATCH_PROGRESS_BARS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = Path(os.environ.get("KIT_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots in {folder}")
    return folder


def _wait_for_kernel(page, base, token, path) -> str:
    """Wait until the notebook's kernel is connected, has answered, and is idle (browser and server agree)."""
    deadline, state, idle_polls = time.monotonic() + KERNEL_READY_S, "not polled", 0
    while time.monotonic() < deadline:
        state = page.evaluate(KERNEL_STATE, path)
        parts = state.split("/")
        if len(parts) == 3 and parts[:2] == ["connected", "idle"]:
            if _api(base, token, f"/api/kernels/{parts[2]}")["execution_state"] == "idle":
                idle_polls += 1
                if idle_polls >= 2:
                    return parts[2]
        else:
            idle_polls = 0
        time.sleep(0.5)
    pytest.fail(f"{path}: the kernel was not ready after {KERNEL_READY_S} s (last state: {state})")


def _run_all_cells(page, path) -> dict:
    """Click Run > Run All Cells, then wait until the kernel has been busy and nothing runs any more."""
    page.evaluate(WATCH_BUSY, path)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline, done_polls, state = time.monotonic() + RUN_ALL_S, 0, {}
    while time.monotonic() < deadline:
        time.sleep(0.5)
        state = page.evaluate(RUN_STATE, path)
        if state["busySeen"] and not state["running"] and state["status"] == "connected/idle":
            done_polls += 1
            if done_polls >= 3:
                return state
        else:
            done_polls = 0
    pytest.fail(f"{path}: still running after {RUN_ALL_S} s: {state}")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(notebook, browser, lab, screenshots):
    base, token, root, log = lab
    path = f"notebooks/{notebook.name}"
    repo_bytes = notebook.read_bytes()
    source = "".join("".join(c["source"]) for c in json.loads(repo_bytes)["cells"] if c["cell_type"] == "code")
    page = browser.new_page()
    start = time.monotonic()
    try:
        page.goto(f"{base}/lab/tree/{path}?reset&token={token}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=90_000)
        _wait_for_kernel(page, base, token, path)
        opened = time.monotonic() - start
        _run_all_cells(page, path)
        report = page.evaluate(REPORT, path)
        images = page.locator(".jp-OutputArea-output img")
        if images.count():
            images.last.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / f"{notebook.stem}.png"))
        kept, images_shown = (sum(c[k] for c in report["cells"]) for k in ("progressBars", "images"))
        print(f"{notebook.name}: kernel ready in {opened:.0f} s, ran in {time.monotonic() - start - opened:.0f} s; "
              f"{report['progressBarsSeen']} progress bars shown ({kept} kept), {images_shown} images")

        problems = []
        for cell in report["cells"]:
            where = f"cell {cell['index']} ({(cell['source'].splitlines() or [''])[0][:60]!r})"
            if cell["count"] is None:
                problems.append(f"{where} did not run")
            problems += [f"{where} raised {e}" for e in cell["errors"]]
            if not cell["errors"]:
                problems += [f"{where} shows a traceback on stderr:\n{t[-1500:]}" for t in cell["stderr"]
                             if "Traceback" in t]
            if any(re.search(r"\d+/\d+ \[\d", t) for t in cell["stderr"]):
                problems.append(f"{where}: tqdm printed a text progress bar instead of a widget")
            for bad in ("Error displaying widget", "IProgress not found", "HBox(children", "FloatProgress("):
                if bad in cell["text"]:
                    problems.append(f"{where}: a progress bar did not render as a widget ({bad!r} in its output)")
        if re.search(r"\b(train_model|make_splits)\(", source) and not report["progressBarsSeen"]:
            problems.append("no tqdm progress bar rendered as a widget, although the notebook trains or encodes")
        for cell in report["cells"]:
            draws = re.search(r"(?<!def )\bplot_\w+\(", cell["source"]) or "plt.show()" in cell["source"]
            if draws and not cell["images"]:  # a call, not a definition, of a plot_* function
                problems.append(f"cell {cell['index']} ({cell['source'].splitlines()[0][:60]!r}) draws a figure, "
                                "but shows no image")
        if "plot_history(" in source and not any(c["images"] for c in report["cells"]):
            problems.append("the training history figure did not render")
        assert not problems, f"{notebook.name} in JupyterLab (screenshot {screenshots / notebook.stem}.png):\n- " + \
            "\n- ".join(problems)
    finally:
        page.close()
        for session in _api(base, token, "/api/sessions"):  # free the kernel's memory before the next notebook
            _api(base, token, f"/api/sessions/{session['id']}", method="DELETE")
    assert notebook.read_bytes() == repo_bytes, f"{notebook.name} in the repository changed during the test"
