"""Refresh the expected output of the cells nbval compares (# NBVAL_CHECK_OUTPUT), from a real run.

    python tools/expected_outputs.py             # run notebooks 01-06 at the smoke size, store those outputs
    python tools/expected_outputs.py 02 03       # only these notebooks (04 first if 05 or 06 need its checkpoint)

Each notebook is executed in order in a temporary data folder (so 05 and 06 find 04's checkpoint
there), at KIT_SIZE=smoke, exactly as nbval runs it. Only the outputs of checked cells are kept; every
other cell stays clean (tools/clean_notebooks.py's policy). Read the diff before committing: a changed
expected output is a changed behaviour.
"""
import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clean_notebooks  # noqa: E402

ROOT = clean_notebooks.ROOT


def refresh(path: Path) -> int:
    """Execute `path`; copy the outputs of its checked cells into the file. Returns how many changed."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    changed = 0
    for stored, ran in zip(raw["cells"], nb.cells):
        if stored["cell_type"] == "code" and clean_notebooks.checks_output(stored):
            outputs = [clean_notebooks.clean_output(json.loads(json.dumps(o))) for o in ran.outputs]
            if outputs != stored.get("outputs"):
                stored["outputs"], stored["execution_count"] = outputs, stored.get("execution_count") or 1
                changed += 1
    path.write_text(clean_notebooks.dumps(clean_notebooks.clean(raw)), encoding="utf-8")
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("only", nargs="*", help="notebook numbers (default: all)")
    args = ap.parse_args(argv)
    paths = [p for p in sorted((ROOT / "notebooks").glob("0*.ipynb")) if not args.only or p.name[:2] in args.only]
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ.update(KIT_SIZE="smoke", KIT_DATA_DIR=data_dir, KIT_RESULTS_DIR=str(Path(data_dir) / "runs"))
        for path in paths:
            print(f"{path.name}: {refresh(path)} expected output(s) changed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
