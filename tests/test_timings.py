"""The recorded wall times come from results/*/timings.json, never typed in: helpers reads them when it runs,
and tools/record_timings.py writes the line at the top of each notebook."""
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import record_timings  # noqa: E402

import helpers  # noqa: E402


def test_recorded_timings_are_current():
    assert record_timings.main(["--check"]) == 0, "python tools/record_timings.py"


def test_the_recorded_runs_are_course_or_experiments_runs_with_their_notebooks():
    runs = helpers.recorded_runs()
    assert runs, "results/ holds at least one recorded run with its timings.json"
    course = {p.stem for p in (REPO / "notebooks").glob("0[1-6]*_*.ipynb")}
    experiments = {p.stem for p in (REPO / "notebooks").glob("0[7-9]*_*.ipynb")}
    for name, r in runs.items():  # a course run times notebooks 01-06; an experiments run, notebooks 07-08
        assert set(r["notebooks"]) == (experiments if name.endswith("-experiments") else course), name
        assert (REPO / "results" / name / "notebooks").is_dir(), f"results/{name} keeps its executed notebooks"


def test_helpers_holds_no_copy_of_the_timings():
    assert "RECORDED_SECONDS" not in (REPO / "helpers.py").read_text(), "read at run time from results/"


def test_every_notebook_states_its_recorded_time():
    for path in sorted((REPO / "notebooks").glob("0*.ipynb")):
        first = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")
        line = next(ln for ln in "".join(first["source"]).splitlines() if ln.startswith("**Time:**"))
        assert line == record_timings.time_line(path.stem, record_timings.runs()), path.name


def test_recorded_time_in_words(tmp_path, monkeypatch):
    """From the timings.json files of the results folder it is given; monkeypatch puts the real one back."""
    for name, size, seconds in (("cpu-quick", "quick", 12.4), ("cpu-quick-experiments", "quick", None)):
        (tmp_path / name).mkdir()
        notebooks = {"04_pretrain_ag_news": seconds} if seconds else {"07b_experiments": 400.0}
        (tmp_path / name / "timings.json").write_text(json.dumps(dict(size=size, device="cpu",
                                                                      machine="a 2-core CPU", notebooks=notebooks)))
    monkeypatch.setattr(helpers, "RESULTS_DIR", tmp_path)
    assert helpers.recorded_time("04_pretrain_ag_news", "quick") == "12 s on a 2-core CPU (cpu-quick)"
    assert helpers.recorded_time("04_pretrain_ag_news", "full") == ""


def test_machine_facts_name_the_cpu_threads_torch_and_blas():
    facts = helpers.machine_facts(helpers.torch.device("cpu"))
    assert set(facts) == {"cpu", "threads", "torch", "blas"} and facts["cpu"] and facts["blas"] != "?"
    assert facts["threads"] == helpers.torch.get_num_threads() and facts["torch"] == helpers.torch.__version__


def test_every_executed_copy_quotes_its_own_runs_time():
    """A recorded notebook's header says how long that run took, from the same folder's timings.json."""
    copies = record_timings.executed_copies(record_timings.runs())
    assert copies, "results/ keeps executed notebooks"
    for path, timings in copies:
        first = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")
        line = next((ln for ln in "".join(first["source"]).splitlines() if ln.startswith("**Time:**")), None)
        assert line == record_timings.own_time_line(path.stem, timings), path.relative_to(REPO)
        assert record_timings.duration(timings["notebooks"][path.stem]) in line
