"""Carry the recorded runs' wall times into the top of every notebook.

    python tools/record_timings.py           # rewrite each notebook's "**Time:**" line from results/*/timings.json
    python tools/record_timings.py --check   # change nothing; exit 1 if a notebook's line is out of date

`python run_course.py --results` writes results/<run>/timings.json: how long each notebook took, on
which machine. This tool writes one line in each notebook's first markdown cell, starting "**Time:**",
e.g. "**Time:** 9 s at the smoke size on a 2-core CPU (x86_64); ...", and in each recorded run's executed copies
(results/<run>/notebooks/) the line of that run alone, from its own timings.json. helpers.recorded_time reads the
same files when it runs, so no number is typed in or copied into code (tests/test_timings.py checks).
"""
import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clean_notebooks  # noqa: E402
from derived import ROOT, report, settle  # noqa: E402

sys.path.insert(0, str(ROOT))
import helpers  # noqa: E402


def runs() -> dict:
    return helpers.recorded_runs()


def duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60:02d} s"


def time_line(notebook: str, recorded: dict) -> str:
    parts, where = [], []
    for name, r in recorded.items():
        if notebook in r["notebooks"]:
            parts.append(f"{duration(r['notebooks'][notebook])} at the {r['size']} size on {r['machine']}")
            where.append(f"[results/{name}](../results/{name}/notebooks/{notebook}.ipynb)")
    if not parts:
        return "**Time:** no recorded run yet (`python run_course.py --results` records one)."
    return f"**Time:** {'; '.join(parts)}. Recorded runs, with their outputs: {', '.join(where)}."


def own_time_line(notebook: str, timings: dict) -> str:
    """The Time line of a recorded run's executed copy: that run's own time, from its timings.json."""
    facts = timings.get("machine_facts") or {}
    machine = f"{facts['cpu']}, {facts['threads']} threads" if facts.get("cpu") else timings["machine"]
    return (f"**Time:** {duration(timings['notebooks'][notebook])} at the {timings['size']} size on {machine}, "
            f"in this recorded run of {timings.get('date', 'an unrecorded date')} (its `timings.json` is one folder up).")


def with_time_line(nb: dict, line: str) -> dict:
    """The notebook with `line` as the Time line of its first markdown cell, after the title."""
    cell = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    text = re.sub(r"\n\n\*\*Time:\*\*[^\n]*", "", "".join(cell["source"]))
    title, _, rest = text.partition("\n\n")
    cell["source"] = f"{title}\n\n{line}\n\n{rest}".rstrip("\n").splitlines(keepends=True)
    return nb


def updated_notebook(path: Path, recorded: dict) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return clean_notebooks.dumps(with_time_line(nb, time_line(path.stem, recorded)))


def executed_copies(recorded: dict) -> list:
    """(executed copy, its run's timings) for every notebook a recorded run timed and kept."""
    return [(ROOT / "results" / run / "notebooks" / f"{nb}.ipynb", timings)
            for run, timings in recorded.items() for nb in timings["notebooks"]
            if (ROOT / "results" / run / "notebooks" / f"{nb}.ipynb").exists()]


def updated_copy(path: Path, timings: dict) -> str:
    """An executed copy with its own run's time; written as run_course.py writes it (no key sorting)."""
    nb = with_time_line(json.loads(path.read_text(encoding="utf-8")), own_time_line(path.stem, timings))
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    args = ap.parse_args(argv)
    recorded = runs()
    stale = [path for path in sorted((ROOT / "notebooks").glob("0*.ipynb"))
             if settle(path, updated_notebook(path, recorded), args.check)]
    stale += [path for path, timings in executed_copies(recorded)
              if settle(path, updated_copy(path, timings), args.check)]
    return report(stale, args.check, "recorded timings", "tools/record_timings.py")


if __name__ == "__main__":
    sys.exit(main())
