"""Build the Colab copies: each course notebook as it runs when uploaded alone to Colab.

    python tools/colab_notebooks.py                  # write build/colab/*.ipynb (not committed; upload one)
    python tools/colab_notebooks.py --branch colab   # write them as the one commit of the branch `colab`
    python tools/colab_notebooks.py --check          # change nothing; exit 1 if build/colab/ is out of date

The copies are derived from notebooks/, helpers.py, solutions/ and data/samples, and each carries about
0.5 MB of packed files, so they are never committed on main (seven of them grew its history by about
1.8 MiB at every change). The README's Colab badges open them on the `colab` branch, which this tool
rewrites as a single commit with no parent each time (so that branch never accumulates history either);
the maintainers push it after a change.

A Colab runtime has the internet, the official data sources and the package index, but not this
repository, and each notebook gets a runtime of its own. So each copy carries what it needs from
the repository: helpers.py, the exercises' solutions and the shipped samples (data/samples), packed (tar, xz, base64) into its
first cell. That cell unpacks them beside the notebook, except files already there (a helpers.py
uploaded through Colab's file pane is used as it is), then calls helpers.colab_setup, which installs
the two packages Colab lacks (never torch). Colab shows the cell as a form, so the packed text stays
out of sight. Every other cell is the course notebook's own, unchanged.

tests/test_colab.py builds each copy itself and runs it alone in an empty folder.
"""
import argparse
import base64
import io
import json
import lzma
import os
import subprocess
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bootstrap_cell  # noqa: E402
import clean_notebooks  # noqa: E402
from derived import ROOT, report, settle  # noqa: E402

OUT = ROOT / "build" / "colab"
BRANCH_README = """# Colab copies of the course notebooks (generated)

Written by `python tools/colab_notebooks.py --branch colab` from {commit} on main: each notebook carries
helpers.py, the solutions and the samples in its first cell, so it runs uploaded alone. Do not edit them here;
this branch is rewritten as one fresh commit every time.
"""

SETUP = '''\
# @title Set up the kit (its code and samples are packed in this cell) {{ display-mode: "form" }}
import base64, io, os, sys, tarfile
KIT = "{payload}"
with tarfile.open(fileobj=io.BytesIO(base64.b64decode(KIT)), mode="r:xz") as packed:
    for member in packed.getmembers():
        if not os.path.exists(member.name):  # a helpers.py uploaded beside this notebook is used as it is
            packed.extract(member, ".", **({{"filter": "data"}} if hasattr(tarfile, "data_filter") else {{}}))
sys.path.insert(0, os.getcwd())
import helpers as H
H.colab_setup()  # installs the two packages Colab lacks (never torch)'''


def packed_files() -> list:
    """What a copy carries, as paths from the repository root: helpers.py, the solutions, every file of
    data/samples, and the recorded runs' timings (helpers.recorded_time quotes them)."""
    samples = sorted(p for p in (ROOT / "data" / "samples").rglob("*") if p.is_file())
    timings = sorted((ROOT / "results").glob("*/timings.json"))
    return [ROOT / "helpers.py"] + sorted((ROOT / "solutions").glob("*.py")) + samples + timings


def payload() -> str:
    """The files as an xz-compressed tar, base64: the same bytes every time for the same files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in packed_files():
            info = tarfile.TarInfo(path.relative_to(ROOT).as_posix())
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(lzma.compress(raw.getvalue(), preset=9 | lzma.PRESET_EXTREME)).decode("ascii")


def colab_copy(path: Path, packed: str) -> str:
    """The Colab copy of one notebook, as the text of an .ipynb file."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = bootstrap_cell.first_code_cell(nb)
    cell["source"] = bootstrap_cell.cell_lines(SETUP.format(payload=packed))
    cell["metadata"] = {"cellView": "form"}
    nb["metadata"]["colab"] = {"provenance": []}
    return clean_notebooks.dumps(nb)


def copies() -> dict:
    """{file name: text} of every Colab copy, built from the working tree."""
    packed = payload()
    return {p.name: colab_copy(p, packed) for p in sorted((ROOT / "notebooks").glob("0*.ipynb"))}


def git(*args, cwd=ROOT, text_in=None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, input=text_in, capture_output=True, text=True,
                          env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))
    if done.returncode:
        raise SystemExit(f"git {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def write_branch(branch: str, files: dict, repo: Path = ROOT) -> str:
    """Make `branch` point at one new commit, with no parent, holding exactly `files` ({name: text}).

    Git plumbing only (hash-object, mktree, commit-tree, update-ref): the working tree, the index and the
    checked-out branch are left alone, and the branch's earlier commit is dropped rather than built upon.
    """
    entries = [f"100644 blob {git('hash-object', '-w', '--stdin', cwd=repo, text_in=text)}\t{name}"
               for name, text in sorted(files.items())]
    tree = git("mktree", cwd=repo, text_in="\n".join(entries) + "\n")
    commit = git("commit-tree", tree, "-m", f"Colab copies of the course notebooks, from {files_source(repo)}",
                 cwd=repo)
    git("update-ref", f"refs/heads/{branch}", commit, cwd=repo)
    return commit


def files_source(repo: Path) -> str:
    """The commit the copies were built from, marked if the working tree had changes."""
    head = git("rev-parse", "--short", "HEAD", cwd=repo)
    return head + (" with uncommitted changes" if git("status", "--porcelain", cwd=repo) else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if build/colab/ is out of date")
    ap.add_argument("--branch", help="write the copies as the single commit of this branch instead (e.g. colab)")
    args = ap.parse_args(argv)
    built = copies()
    if args.branch:
        files = dict(built, **{"README.md": BRANCH_README.format(commit=files_source(ROOT))})
        commit = write_branch(args.branch, files)
        print(f"branch {args.branch} is now {commit[:12]}: {len(built)} notebooks, no history "
              f"(publish it with: git push --force origin {args.branch})")
        return 0
    stale = [OUT / name for name, text in built.items() if settle(OUT / name, text, args.check)]
    return report(stale, args.check, "the Colab copies", "tools/colab_notebooks.py")

if __name__ == "__main__":
    sys.exit(main())
