"""The first code cell of every notebook (the set-up cell), kept identical in all of them.

    python tools/bootstrap_cell.py           # put CELL into the first code cell of notebooks/*.ipynb
    python tools/bootstrap_cell.py --check   # exit status 1 if a notebook's first code cell differs

In JupyterLab, VS Code or nbval the cell imports helpers.py from one folder up (or from beside the
notebook). Colab gets its own copies of the notebooks (tools/colab_notebooks.py writes them to
build/colab/ or to the colab branch), whose first cell carries helpers.py and the samples instead.
Only that one cell is touched: every other cell, and the notebook's metadata, stay as they are.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clean_notebooks import dumps, notebooks  # noqa: E402
from derived import report, settle  # noqa: E402

# The GitHub repository the README's Colab badges point at (the notebooks themselves need none).
KIT_REPO = "finetune-course-kit/finetune-course-kit"

CELL = """\
import os, sys
sys.path[:0] = [os.getcwd(), os.path.abspath("..")]  # helpers.py: one folder up, or beside this notebook
import helpers as H  # not found? Run this notebook from the kit's notebooks/ folder; on Colab, use the README's badge"""


def first_code_cell(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["cell_type"] == "code")


def cell_lines(text: str = CELL) -> list:
    """A cell's source the way Jupyter stores it: a list of lines, each but the last ending in a newline."""
    return text.splitlines(keepends=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a first code cell differs")
    args = ap.parse_args(argv)
    stale = []
    for path in notebooks(args.paths):
        nb = json.loads(path.read_text(encoding="utf-8"))
        first_code_cell(nb)["source"] = cell_lines()
        if settle(path, dumps(nb), args.check):
            stale.append(path)
    return report(stale, args.check, "the bootstrap cell", "tools/bootstrap_cell.py")

if __name__ == "__main__":
    sys.exit(main())
