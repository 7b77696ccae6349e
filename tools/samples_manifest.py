"""Write data/samples/MANIFEST.txt: the path of every sample file, one per line, from the repository root.

    python tools/samples_manifest.py          # rewrite it (after changing data/samples)
    python tools/samples_manifest.py --check  # exit status 1 if it is out of date

A notebook opened alone in Colab fetches this list from the kit's published location
(KIT_URL), then the files it names, so that KIT_SIZE=smoke works there too.
tests/test_colab.py checks that the list is up to date.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
MANIFEST = SAMPLES / "MANIFEST.txt"


def listing() -> str:
    files = sorted(p.relative_to(ROOT).as_posix() for p in SAMPLES.rglob("*")
                   if p.is_file() and p != MANIFEST and not any(part.startswith(".") for part in p.parts))
    return "".join(f"{f}\n" for f in files)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if the manifest is out of date")
    args = ap.parse_args(argv)
    current = MANIFEST.read_text(encoding="utf-8") if MANIFEST.exists() else None
    if current == listing():
        return 0
    if args.check:
        print(f"{MANIFEST.relative_to(ROOT)} is out of date: python tools/samples_manifest.py", file=sys.stderr)
        return 1
    MANIFEST.write_text(listing(), encoding="utf-8")
    print(f"wrote {MANIFEST.relative_to(ROOT)} ({len(listing().splitlines())} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
