"""Every derived file is current: what tools/regenerate.py would write is what is committed.

A failure names the stale file and the command that rewrites it (python tools/regenerate.py does them all).
"""
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import derived  # noqa: E402
import regenerate  # noqa: E402


def test_no_derived_file_is_stale(capsys):
    assert regenerate.main(["--check"]) == 0, capsys.readouterr().err


def test_settle_writes_only_a_changed_file_and_check_writes_nothing(tmp_path):
    path = tmp_path / "sub" / "f.txt"
    assert derived.settle(path, "a\n", check=True), "a missing file is stale"
    assert not path.exists(), "check writes nothing"
    assert derived.settle(path, "a\n", check=False) and path.read_text() == "a\n"
    assert not derived.settle(path, "a\n", check=False), "the same text again: current"
    assert derived.settle(path, "b\n", check=True) and path.read_text() == "a\n"


@pytest.mark.parametrize("stale", ["results_table", "record_timings"])
def test_check_fails_naming_the_file_when_a_derived_file_is_edited_by_hand(stale, tmp_path, monkeypatch, capsys):
    """A hand edit of the README table or of a notebook's Time line is caught, and the message says what to run."""
    import record_timings
    import results_table
    readme = tmp_path / "README.md"
    readme.write_text((REPO / "README.md").read_text().replace("| cpu-quick |", "| cpu-quick-edited |", 1))
    if stale == "results_table":
        monkeypatch.setattr(results_table, "ROOT", tmp_path)
        assert results_table.main(["--check"]) == 1
        assert "README.md" in capsys.readouterr().err
    else:
        monkeypatch.setattr(record_timings, "ROOT", tmp_path)
        (tmp_path / "notebooks").mkdir()
        nb = (REPO / "notebooks" / "01_data.ipynb").read_text()
        (tmp_path / "notebooks" / "01_data.ipynb").write_text(nb.replace("**Time:** ", "**Time:** about ", 1))
        assert record_timings.main(["--check"]) == 1
        err = capsys.readouterr().err
        assert "01_data.ipynb" in err and "python tools/record_timings.py" in err
