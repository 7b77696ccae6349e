"""The recorded wall times in helpers.py and at the top of each notebook come from results/, never typed in."""
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import record_timings  # noqa: E402

import helpers  # noqa: E402


def test_recorded_timings_are_current():
    assert record_timings.main(["--check"]) == 0, "python tools/record_timings.py"


def test_helpers_tables_match_the_recorded_runs():
    runs = record_timings.runs()
    assert runs, "results/ holds at least one recorded run with its timings.json"
    assert helpers.RECORDED_SECONDS == {name: r["notebooks"] for name, r in runs.items()}
    course = {p.stem for p in (REPO / "notebooks").glob("0[1-6]_*.ipynb")}
    experiments = {p.stem for p in (REPO / "notebooks").glob("0[7-9]_*.ipynb")}
    for name, r in runs.items():  # a course run times notebooks 01-06; an experiments run, notebook 07
        assert set(r["notebooks"]) == (experiments if name.endswith("-experiments") else course), name
        assert (REPO / "results" / name / "notebooks").is_dir(), f"results/{name} keeps its executed notebooks"


def test_every_notebook_states_its_recorded_time():
    for path in sorted((REPO / "notebooks").glob("0*.ipynb")):
        first = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")
        line = next(ln for ln in "".join(first["source"]).splitlines() if ln.startswith("**Time:**"))
        assert line == record_timings.time_line(path.stem, record_timings.runs()), path.name


def test_recorded_time_in_words():
    helpers_seconds = dict(helpers.RECORDED_SECONDS)
    try:
        helpers.RECORDED_SECONDS.clear()
        helpers.RECORDED_SECONDS["cpu-quick"] = {"04_pretrain_ag_news": 12.4}
        helpers.RECORDED_MACHINES["cpu-quick"] = "a 2-core CPU"
        assert helpers.recorded_time("04_pretrain_ag_news", "quick") == "12 s on a 2-core CPU (cpu-quick)"
        assert helpers.recorded_time("04_pretrain_ag_news", "full") == ""
    finally:
        helpers.RECORDED_SECONDS.clear()
        helpers.RECORDED_SECONDS.update(helpers_seconds)
