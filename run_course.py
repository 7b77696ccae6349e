"""Run the whole course: execute notebooks 01-06 (with 02b and 05b) in order and print what they measured.

    python run_course.py                  # size from KIT_SIZE (default: full on a GPU, quick on a CPU)
    python run_course.py --size smoke     # the shipped samples, a few minutes on a CPU
    python run_course.py --fresh          # discard saved training states: train everything again
    python run_course.py --results [DIR]  # a recorded run: fresh, then copy the run records, plots, executed
                                          # notebooks and timings into DIR (default results/<device>-<size>)
    python run_course.py --experiments    # notebooks 07, 07b and 08 instead (results/<device>-<size>-experiments)

Executed copies go to runs/<size>/ so the committed notebooks stay clean. Trainings resume from
their saved state (data/training-state/), so an interrupted run carries on where it stopped. When
the real data cannot be found or downloaded, it says so loudly and runs the course on the samples.
"""
import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import helpers as H

COURSE = sorted((H.ROOT / "notebooks").glob("0[1-6]*_*.ipynb"))
EXPERIMENTS = sorted((H.ROOT / "notebooks").glob("0[7-9]*_*.ipynb"))


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
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as sockets:
        # IPC sockets rather than TCP: the kernel then has no transport warning to print on every start.
        km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "kernel"),
                           connection_file=str(Path(sockets) / "kernel.json"))
        client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
        finally:
            nbformat.write(nb, out_dir / path.name)
            if km.has_kernel:  # a kernel handed to the client is ours to stop
                km.shutdown_kernel(now=True)
    return time.perf_counter() - start


def summarize(run_dir: Path) -> None:
    """Print the headline numbers each notebook saved with helpers.save_run."""
    for f in sorted(run_dir.glob("*.json")):
        if any(f.stem in names for names in RECORDS.values()):
            continue  # a notebook's second record; its own record summarizes the run
        info = json.loads(f.read_text())
        if "grid" in info:  # notebook 07b
            best = max(info.get("cells") or info["grid"], key=lambda r: r["test_acc"])  # a record before seeds: grid
            print(f"  {f.stem}: {len(info['grid'])} runs; best mean test accuracy {best['test_acc']:.4f} "
                  f"({best['start']}, {best['regime']}, {best.get('runs', 1)} seed(s))")
            continue
        if "mlm_history" in info and "grid" not in info:  # notebook 07; its losses are in masked_words.json too
            loss = info["mlm_history"]["valid_loss"][-1]
            epochs = len(info["mlm_history"]["valid_loss"])
            print(f"  {f.stem}: masked-word held-out loss {loss:.3f} after {epochs} epoch{'s' * (epochs != 1)}; the "
                  f"frequency-only guess {info['mlm_frequency_loss']:.3f}, chance {info['mlm_chance_loss']:.3f}")
            continue
        if "bag_all" in info:  # notebook 08; its rows are in learning_curve.json
            rows = json.loads((run_dir / "learning_curve.json").read_text())
            print(f"  {f.stem}: {len(rows)} fine-tunings of the learning curve; bag of n-grams on all labels "
                  f"{info['bag_all']['test_acc']:.4f}")
            continue
        print(f"  {f.stem}: test accuracy {info['test_acc']:.4f}, validation {info['valid_acc']:.4f}, "
              f"{info['seconds_per_epoch']:.1f} s per epoch, {info['trainable_params']:,} trainable parameters")


def machine() -> str:
    """The machine in words, for the timings of a recorded run."""
    if H.get_device().type == "cuda":
        return f"one {H.device_name(H.get_device())} GPU"
    return f"a {os.cpu_count()}-core CPU ({platform.machine()})"


WIDGET = "application/vnd.jupyter.widget-view+json"
RECORDS = {"07_masked_words": ["masked_words"], "08_learning_curve": ["learning_curve"]}  # beside <notebook>.json


def without_progress_bars(text: str) -> str:
    """An executed notebook without its progress-bar widgets and their saved state: they are no result, and the
    state of every bar a long run drew (notebook 08 draws hundreds) would make the recorded copy megabytes."""
    nb = json.loads(text)
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb["cells"]:
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"] if WIDGET not in o.get("data", {})]
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def record(results: Path, size: str, run_dir: Path, executed: Path, seconds: dict, notebooks: list) -> None:
    """Copy a run into results/: run records and plots, executed notebooks, and the notebooks' wall times."""
    results.mkdir(parents=True, exist_ok=True)
    names = {nb.stem for nb in notebooks} | {r for nb in notebooks for r in RECORDS.get(nb.stem, ())}
    for f in run_dir.glob("*"):
        if f.is_file() and f.stem in names:
            shutil.copy(f, results / f.name)
    (results / "notebooks").mkdir(exist_ok=True)
    for nb in notebooks:
        (results / "notebooks" / nb.name).write_text(without_progress_bars((executed / nb.name).read_text()))
    timings = dict(size=size, device=H.get_device().type, machine=machine(), machine_facts=H.machine_facts(),
                   date=time.strftime("%Y-%m-%d"),
                   notebooks={k: round(v, 1) for k, v in seconds.items()}, total=round(sum(seconds.values()), 1))
    (results / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(f"Recorded the run in {H.shown_path(results)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=list(H.SIZES), help="run size (default: $KIT_SIZE, else by device)")
    ap.add_argument("--fresh", action="store_true", help="discard saved training states and train from the start")
    ap.add_argument("--results", type=Path, nargs="?", const=Path("auto"),
                    help="record the run (fresh) in this folder (alone: results/<device>-<size>)")
    ap.add_argument("--experiments", action="store_true", help="run the experiments, notebooks 07-08, not the course")
    ap.add_argument("--timeout", type=int, default=4 * 3600, help="seconds allowed per cell")
    args = ap.parse_args()
    notebooks = EXPERIMENTS if args.experiments else COURSE
    logging.getLogger("traitlets").setLevel(logging.ERROR)  # the kernel manager's start-up notes
    size = real_data_or_samples(H.run_size(args.size)[0])
    os.environ["KIT_SIZE"] = size
    run_dir = Path(os.environ.get("KIT_RESULTS_DIR") or H.data_dir() / "runs" / size)
    os.environ["KIT_RESULTS_DIR"] = str(run_dir)
    if (args.fresh or args.results) and not args.experiments:  # a recorded run never resumes an old one
        shutil.rmtree(H.data_dir() / "training-state" / size, ignore_errors=True)
    executed = H.ROOT / "runs" / size
    print(f"Running {len(notebooks)} notebook(s) at size {size!r} on {H.get_device()}; "
          f"executed copies in runs/{size}/, run records in {H.shown_path(run_dir)}", flush=True)
    seconds = {}
    for nb in notebooks:
        print(f"-> {nb.name} ...", end=" ", flush=True)
        try:
            seconds[nb.stem] = run_notebook(nb, executed, args.timeout)
        except CellExecutionError as e:
            print(f"FAILED\n{e}\nThe executed copy with the error is runs/{size}/{nb.name}.", file=sys.stderr)
            return 1
        print(f"done in {seconds[nb.stem]:.0f} s", flush=True)
    if args.results:  # recorded first: a summary that fails must not lose the run
        results = H.results_folder(size, args.experiments) if args.results == Path("auto") else args.results
        record(results, size, run_dir, executed, seconds, notebooks)
    summarize(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
