"""Write colab/<notebook>.ipynb: each course notebook as it runs when uploaded alone to Colab.

    python tools/colab_notebooks.py           # (re)write colab/*.ipynb from notebooks/*.ipynb
    python tools/colab_notebooks.py --check   # change nothing; exit 1 naming each copy that is out of date

A Colab runtime has the internet, the official data sources and the package index, but not this
repository, and each notebook gets a runtime of its own. So each copy carries what it needs from
the repository: helpers.py, the exercises' solutions and the shipped samples (data/samples), packed (tar, xz, base64) into its
first cell. That cell unpacks them beside the notebook, except files already there (a helpers.py
uploaded through Colab's file pane is used as it is), then calls helpers.colab_setup, which installs
the two packages Colab lacks (never torch). Colab shows the cell as a form, so the packed text stays
out of sight. Every other cell is the course notebook's own, unchanged.

tests/test_colab.py runs each copy alone in an empty folder and checks that the copies are current.
"""
import argparse
import base64
import io
import json
import lzma
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bootstrap_cell  # noqa: E402
import clean_notebooks  # noqa: E402

ROOT = clean_notebooks.ROOT
OUT = ROOT / "colab"

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
    """What a copy carries: helpers.py and every file of data/samples, as paths from the repository root."""
    samples = sorted(p for p in (ROOT / "data" / "samples").rglob("*") if p.is_file())
    return [ROOT / "helpers.py"] + sorted((ROOT / "solutions").glob("*.py")) + samples


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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a copy is out of date")
    args = ap.parse_args(argv)
    packed, stale = payload(), []
    for path in sorted((ROOT / "notebooks").glob("0*.ipynb")):
        target, text = OUT / path.name, colab_copy(path, packed)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(target.relative_to(ROOT).as_posix())
        if not args.check:
            OUT.mkdir(exist_ok=True)
            target.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("out of date: " + ", ".join(stale) + "; run: python tools/colab_notebooks.py", file=sys.stderr)
    elif stale:
        print("wrote " + ", ".join(stale))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
