"""Notebook hygiene: every notebook is valid nbformat 4 and committed clean (policy in tools/clean_notebooks.py).

Clean means: no outputs and no execution counts (except the expected output of cells nbval
checks), only kernelspec and language_info.name as notebook metadata, no cell metadata but
nbval tags. A failure names the notebook and the cell; `python tools/clean_notebooks.py` fixes it.
"""
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import clean_notebooks  # noqa: E402
import learner_time  # noqa: E402

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# `import torchtext`, `import os, torchtext`, `from torchtext.x import y`, `!pip install torchtext`, `%pip install ...`
TORCHTEXT = re.compile(r"^\s*(?:from\s+torchtext\b|import\s+(?:[\w.]+\s*,\s*)*torchtext\b"
                       r"|[!%]\s*pip\s+install\b.*\btorchtext\b)", re.MULTILINE)
ids = [p.stem for p in NOTEBOOKS]


def test_the_eleven_notebooks_are_there_in_reading_order():
    assert [p.name.split("_")[0] for p in NOTEBOOKS] == ["01", "02", "02b", "03", "04", "05", "05b", "06", "07", "07b", "08"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_notebook_is_much_over_an_hour_of_a_learners_time(path):
    """tools/learner_time.py's yardstick (prose, code and exercises): split a chapter that grows past it."""
    minutes = learner_time.learner_minutes(path)["minutes"]
    assert minutes <= 65, f"{path.name}: about {minutes} min of a learner's time by tools/learner_time.py; split it"


def test_the_learner_time_yardstick_counts_what_a_learner_reads(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(" ".join(["word"] * 300)),
                                         nbformat.v4.new_code_cell("a = 1\n\nb = 2\n" * 4),
                                         nbformat.v4.new_code_cell('H.check_exercise("01_data", f, test)')])
    path = tmp_path / "nb.ipynb"
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    assert learner_time.learner_minutes(path) == dict(words=300, code_lines=9, exercises=1, minutes=round(2 + 9 / 8 + 8))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_valid_nbformat_4(path):
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw.get("nbformat") == 4, f"{path.name} is nbformat {raw.get('nbformat')}, not 4"
    nbformat.validate(nbformat.from_dict(raw))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_clean(path):
    raw = path.read_text(encoding="utf-8")
    issues = clean_notebooks.problems(json.loads(raw))
    if clean_notebooks.dumps(json.loads(raw)) != raw:
        issues.append("not written the way Jupyter writes notebooks (sorted keys, indent 1)")
    assert not issues, f"{path.name} is not clean (run: python tools/clean_notebooks.py):\n- " + "\n- ".join(issues)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_torchtext(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    bad = [clean_notebooks.cell_name(i, c) for i, c in enumerate(nb["cells"])
           if c["cell_type"] == "code" and TORCHTEXT.search(clean_notebooks.source(c))]
    assert not bad, f"{path.name} imports or installs torchtext (it loads only with torch 2.3): {bad}"


def test_helpers_does_not_import_torchtext():
    assert not TORCHTEXT.search((REPO / "helpers.py").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------
# The cleaner itself
# ---------------------------------------------------------------------------
def _dirty_notebook() -> dict:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python", "version": "3.11.7", "mimetype": "text/x-python"},
                   "widgets": {"application/vnd.jupyter.widget-state+json": {}}, "colab": {"provenance": []}}
    run = nbformat.v4.new_code_cell("print(1)", execution_count=3, metadata={"scrolled": True, "tags": ["x"]},
                                    outputs=[nbformat.v4.new_output("stream", text="1\n")])
    checked = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\n2", execution_count=4, outputs=[
        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=4, metadata={"a": 1})])
    tagged = nbformat.v4.new_code_cell("1/0", metadata={"tags": ["raises-exception", "nbval-skip"]})
    text = nbformat.v4.new_markdown_cell("# Title", metadata={"jp-MarkdownHeadingCollapsed": True})
    nb.cells = [text, run, checked, tagged]
    return json.loads(json.dumps(nb))


def test_cleaner_finds_each_problem_and_names_the_cell():
    found = "\n".join(clean_notebooks.problems(_dirty_notebook()))
    for expected in ["notebook metadata has colab, widgets", "language_info holds more than the name",
                     "cell 0 (markdown", "jp-MarkdownHeadingCollapsed", "cell 1 (code", "execution count 3",
                     "1 outputs (stream)", "tags ['x']", "cell 2 (code", "carries an execution count or metadata"]:
        assert expected in found, f"{expected!r} not reported in:\n{found}"
    assert "cell 3" not in found, "nbval tags are allowed"


def test_cleaning_fixes_everything_and_keeps_what_nbval_needs(tmp_path):
    path = tmp_path / "dirty.ipynb"
    path.write_text(json.dumps(_dirty_notebook(), indent=2))
    assert clean_notebooks.main(["--check", str(path)]) == 1
    assert clean_notebooks.main([str(path)]) == 0
    assert clean_notebooks.main(["--check", str(path)]) == 0
    nb = json.loads(path.read_text())
    nbformat.validate(nbformat.from_dict(nb))
    assert nb["metadata"] == {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                              "language_info": {"name": "python"}}
    text, run, checked, tagged = nb["cells"]
    assert text["metadata"] == {} and run["metadata"] == {}
    assert (run["outputs"], run["execution_count"]) == ([], None)
    assert checked["execution_count"] == 4, "nbval needs the count on a cell whose output it checks"
    assert checked["outputs"] == [{"output_type": "execute_result", "data": {"text/plain": "2"},
                                   "metadata": {}, "execution_count": None}]
    assert tagged["metadata"] == {"tags": ["raises-exception", "nbval-skip"]}
    before = path.read_bytes()
    clean_notebooks.main([str(path)])
    assert path.read_bytes() == before, "cleaning a clean notebook changes nothing"
