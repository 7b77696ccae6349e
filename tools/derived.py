"""One rule for every derived file: compare what a tool would write with what is there; write it, or report it.

Each tool in tools/ that writes a derived file (sync_helpers, bootstrap_cell, record_timings, clean_notebooks,
results_table, colab_notebooks) calls settle() for every file, and report() once at the end, so that
`--check` means the same thing everywhere: change nothing, name each stale file, exit 1.
tools/regenerate.py runs them all in order.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shown(path: Path) -> str:
    path = Path(path)
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def settle(path: Path, new_text: str, check: bool) -> bool:
    """True if `path` does not hold `new_text` (a missing file does not); unless `check`, write it then."""
    path = Path(path)
    if path.exists() and path.read_text(encoding="utf-8") == new_text:
        return False
    if not check:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_text, encoding="utf-8")
    return True


def report(stale: list, check: bool, what: str, command: str) -> int:
    """Say which files were stale (with --check: and how to fix them); the exit status: 1 only for a failed check."""
    if not stale:
        return 0
    names = ", ".join(shown(p) for p in stale)
    if check:
        print(f"{what} out of date in {names}: run python {command}", file=sys.stderr)
        return 1
    print(f"{what}: rewrote {names}")
    return 0
