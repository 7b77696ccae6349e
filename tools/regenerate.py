"""Regenerate every derived file, in the order each depends on the last; or check that none is stale.

    python tools/regenerate.py               # write what is out of date
    python tools/regenerate.py --check       # change nothing; exit 1 naming every stale file (the tests run this)
    python tools/regenerate.py --expected    # first re-run notebooks 01-08 at the smoke size for nbval's outputs
    python tools/regenerate.py --colab       # last, build the Colab copies in build/colab/
    python tools/regenerate.py --colab-branch colab   # ... or as the single commit of the branch `colab`

    bash kit.sh regenerate                   # the same, with the kit's environment

The order: the notebooks' set-up cell (tools/bootstrap_cell.py), helpers.py sections 01-08 from the #@save
cells (tools/sync_helpers.py), the nbval expected outputs when asked (tools/expected_outputs.py, slow: it runs
the notebooks with the new helpers.py), each notebook's recorded time (tools/record_timings.py), the notebooks'
committed form (tools/clean_notebooks.py), the README's results table (tools/results_table.py), and the Colab
copies when asked (tools/colab_notebooks.py), which pack all of the above.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bootstrap_cell  # noqa: E402
import clean_notebooks  # noqa: E402
import colab_notebooks  # noqa: E402
import record_timings  # noqa: E402
import results_table  # noqa: E402
import sync_helpers  # noqa: E402


def steps(args) -> list:
    """(name, function of a --check flag returning an exit status), in dependency order."""
    check = ["--check"] if args.check else []
    found = [("bootstrap cell", lambda: bootstrap_cell.main(check)),
             ("helpers.py sections 01-08", lambda: sync_helpers.main(check))]
    if args.expected and not args.check:
        import expected_outputs  # needs nbclient and a kernel; only imported when asked
        found.append(("nbval expected outputs", lambda: expected_outputs.main([])))
    found += [("recorded timings", lambda: record_timings.main(check)),
              ("clean notebooks", lambda: clean_notebooks.main(check)),
              ("README results table", lambda: results_table.main(check or ["--write"]))]
    if args.colab_branch and not args.check:
        found.append(("Colab branch", lambda: colab_notebooks.main(["--branch", args.colab_branch])))
    elif args.colab:
        found.append(("Colab copies", lambda: colab_notebooks.main(check)))
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if any derived file is stale")
    ap.add_argument("--expected", action="store_true", help="also refresh nbval's expected outputs (runs 01-08)")
    ap.add_argument("--colab", action="store_true", help="also build the Colab copies in build/colab/")
    ap.add_argument("--colab-branch", metavar="BRANCH", help="also write the Colab copies as this branch's one commit")
    args = ap.parse_args(argv)
    failed = [name for name, step in steps(args) if step() != 0]
    if failed:
        print(f"stale: {', '.join(failed)}. Run: python tools/regenerate.py", file=sys.stderr)
        return 1
    print("every derived file is current" if args.check else "regenerated: every derived file is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
