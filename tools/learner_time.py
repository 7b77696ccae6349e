"""A yardstick of a learner's time per notebook, for keeping each chapter to about an hour.

    python tools/learner_time.py            # every notebook: words, code lines, exercises, minutes

Prose at 150 words a minute, code at 8 non-blank lines a minute, 8 minutes an exercise (write it, run it, read
the check). It compares notebooks with each other; it is not a measurement of any learner. The time a notebook
takes to *run* is its header's Time line, from the recorded runs.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS_A_MINUTE, LINES_A_MINUTE, EXERCISE_MINUTES = 150, 8, 8


def learner_minutes(path: Path) -> dict:
    """Words of prose, non-blank code lines, exercises (check cells) and the yardstick's minutes of a notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = {kind: ["".join(c["source"]) for c in cells if c["cell_type"] == kind] for kind in ("markdown", "code")}
    words = sum(len(s.split()) for s in text["markdown"])
    lines = sum(1 for s in text["code"] for line in s.splitlines() if line.strip())
    exercises = sum("check_exercise(" in s for s in text["code"])
    minutes = words / WORDS_A_MINUTE + lines / LINES_A_MINUTE + exercises * EXERCISE_MINUTES
    return dict(words=words, code_lines=lines, exercises=exercises, minutes=round(minutes))


def main() -> int:
    for path in sorted((ROOT / "notebooks").glob("0*.ipynb")):
        m = learner_minutes(path)
        print(f"{path.stem:28}{m['words']:>6} words{m['code_lines']:>5} code lines{m['exercises']:>3} exercises"
              f"  about {m['minutes']} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
