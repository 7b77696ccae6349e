"""Run the whole course: execute notebooks 01-06 in order and print what they measured.

    python run_course.py                  # size from KIT_SIZE (default: full on a GPU, quick on a CPU)
    python run_course.py --size smoke     # the shipped samples, a few minutes on a CPU
    python run_course.py --results [DIR]  # also copy metrics and plots into DIR (default results/<device>-<size>)

Executed copies go to runs/<size>/ so the committed notebooks stay clean. When the real
data cannot be found or downloaded, it says so loudly and runs the course on the samples.
"""
import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import helpers as H

NOTEBOOKS = sorted((H.ROOT / "notebooks").glob("0*.ipynb"))


def real_data_or_samples(size: str) -> str:
    """Fetch the real data for `size`; if that fails, explain loudly and fall back to smoke."""
    if H.SIZES[size]["data"] == "samples":
        return size
    try:
        H.imdb_root(size)
        H.ag_news_root(size)
        return size
    except H.KitError as e:
        bar = "!" * 78
        print(f"\n{bar}\n  REAL DATA NOT AVAILABLE, so this run uses the small samples shipped in data/samples.\n"
              f"  Its numbers show the course works, not what the model can do.\n\n  {e}\n\n"
              "  To get the real data, see data/README.md: put aclImdb_v1.tar.gz (or an extracted aclImdb/)\n"
              "  and ag_news_csv/ in data/, or set KIT_MIRROR to a folder holding them, then run again.\n"
              f"{bar}\n", flush=True)
        return "smoke"


def run_notebook(path: Path, out_dir: Path, timeout: int) -> float:
    """Execute one notebook with the notebooks/ folder as working directory; save the executed copy."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    finally:
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_dir / path.name)
    return time.perf_counter() - start


def summarize(run_dir: Path) -> None:
    """Print the headline numbers each notebook saved with helpers.save_run."""
    for f in sorted(run_dir.glob("*.json")):
        info = json.loads(f.read_text())
        keys = [k for k in ("test_acc", "valid_acc", "seconds_per_epoch", "trainable_params") if k in info]
        print(f"  {f.stem}: " + ", ".join(f"{k} {info[k]}" for k in keys))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=list(H.SIZES), help="run size (default: $KIT_SIZE, else by device)")
    ap.add_argument("--results", type=Path, nargs="?", const=Path("auto"),
                    help="copy metrics JSON and plots into this folder (alone: results/<device>-<size>)")
    ap.add_argument("--timeout", type=int, default=4 * 3600, help="seconds allowed per cell")
    args = ap.parse_args()
    size = real_data_or_samples(H.run_size(args.size)[0])
    os.environ["KIT_SIZE"] = size
    run_dir = Path(os.environ.get("KIT_RESULTS_DIR") or H.data_dir() / "runs" / size)
    os.environ["KIT_RESULTS_DIR"] = str(run_dir)
    print(f"Running {len(NOTEBOOKS)} notebooks at size {size!r} on {H.get_device()}; "
          f"executed copies in runs/{size}/, metrics in {run_dir}", flush=True)
    for nb in NOTEBOOKS:
        print(f"-> {nb.name} ...", end=" ", flush=True)
        try:
            seconds = run_notebook(nb, H.ROOT / "runs" / size, args.timeout)
        except CellExecutionError as e:
            print(f"FAILED\n{e}\nThe executed copy with the error is runs/{size}/{nb.name}.", file=sys.stderr)
            return 1
        print(f"done in {seconds:.0f} s", flush=True)
    summarize(run_dir)
    if args.results == Path("auto"):
        args.results = H.ROOT / "results" / f"{H.get_device().type}-{size}"
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        for f in run_dir.glob("*"):
            shutil.copy(f, args.results / f.name)
        print(f"Copied metrics and plots to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
