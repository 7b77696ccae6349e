"""Carry the recorded runs' wall times into helpers.py and into the top of every notebook.

    python tools/record_timings.py           # rewrite both from results/*/timings.json
    python tools/record_timings.py --check   # change nothing; exit 1 if either is out of date

`python run_course.py --results` writes results/<run>/timings.json: how long each notebook took, on
which machine. From those files this tool writes
- the RECORDED_MACHINES and RECORDED_SECONDS tables in helpers.py, between their markers (the
  notebooks quote them when they must redo an earlier notebook's work in a fresh runtime), and
- one line in each notebook's first markdown cell, starting "**Time:**", e.g. "**Time:** 9 s at
  the smoke size, 2 min 10 s at the quick size on a 2-core CPU (results/cpu-smoke, results/cpu-quick)."
No number is typed in: change a recorded run, then run this tool (tests/test_timings.py checks).
"""
import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clean_notebooks  # noqa: E402

ROOT = clean_notebooks.ROOT
HELPERS = ROOT / "helpers.py"
START = "# >>> recorded timings: written by tools/record_timings.py from results/*/timings.json; do not edit"
END = "# <<< end of recorded timings"
SIZE_ORDER = {"smoke": 0, "quick": 1, "full": 2}


def runs() -> dict:
    """{run folder name: its timings.json}, smoke before quick before full, CPU before GPU."""
    found = {p.parent.name: json.loads(p.read_text()) for p in (ROOT / "results").glob("*/timings.json")}
    return dict(sorted(found.items(), key=lambda kv: (kv[1]["device"] != "cpu", SIZE_ORDER.get(kv[1]["size"], 9))))


def duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60:02d} s"


def helpers_block(recorded: dict) -> str:
    machines = {name: r["machine"] for name, r in recorded.items()}
    seconds = {name: r["notebooks"] for name, r in recorded.items()}
    return (f"{START}\nRECORDED_MACHINES = {json.dumps(machines, indent=4)}\n"
            f"RECORDED_SECONDS = {json.dumps(seconds, indent=4)}\n{END}")


def time_line(notebook: str, recorded: dict) -> str:
    parts, where = [], []
    for name, r in recorded.items():
        if notebook in r["notebooks"]:
            parts.append(f"{duration(r['notebooks'][notebook])} at the {r['size']} size on {r['machine']}")
            where.append(f"[results/{name}](../results/{name}/notebooks/{notebook}.ipynb)")
    if not parts:
        return "**Time:** no recorded run yet (`python run_course.py --results` records one)."
    return f"**Time:** {'; '.join(parts)}. Recorded runs, with their outputs: {', '.join(where)}."


def updated_notebook(path: Path, recorded: dict) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    text = re.sub(r"\n\n\*\*Time:\*\*[^\n]*", "", "".join(cell["source"]))
    title, _, rest = text.partition("\n\n")
    cell["source"] = f"{title}\n\n{time_line(path.stem, recorded)}\n\n{rest}".rstrip("\n").splitlines(keepends=True)
    return clean_notebooks.dumps(nb)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    args = ap.parse_args(argv)
    recorded, stale = runs(), []
    text = HELPERS.read_text(encoding="utf-8")
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: helpers_block(recorded), text, flags=re.S)
    if new != text:
        stale.append(HELPERS)
        if not args.check:
            HELPERS.write_text(new, encoding="utf-8")
    for path in sorted((ROOT / "notebooks").glob("0*.ipynb")):
        new = updated_notebook(path, recorded)
        if new != path.read_text(encoding="utf-8"):
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    names = ", ".join(p.relative_to(ROOT).as_posix() for p in stale)
    if args.check and stale:
        print(f"recorded timings out of date in {names}: python tools/record_timings.py", file=sys.stderr)
    elif stale:
        print(f"updated {names}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
