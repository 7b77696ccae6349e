"""Clean the course notebooks in place, so they are committed the same way every time.

    python tools/clean_notebooks.py            # clean notebooks/*.ipynb (or the files given)
    python tools/clean_notebooks.py --check    # only list what is not clean; exit status 1 if anything is

The policy (tests/test_hygiene.py checks it):
- no outputs and no execution counts, except in cells that nbval compares (marked
  `# NBVAL_CHECK_OUTPUT` or tagged nbval-check-output): their output is the expected one, kept
  without output metadata, and their execution count stays because nbval refuses a cell with
  outputs but none ("Unrun reference cell has outputs");
- notebook metadata: only the kernelspec and language_info.name;
- cell metadata: nothing but nbval tags (nbval-*, raises-exception).
Written the way Jupyter writes notebooks (sorted keys, indent 1, UTF-8), so cleaning a clean
notebook changes no byte. Needs only the standard library.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from derived import ROOT, settle  # noqa: E402

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
CHECK_MARKER, CHECK_TAG = "NBVAL_CHECK_OUTPUT", "nbval-check-output"


def is_nbval_tag(tag: str) -> bool:
    return tag.startswith("nbval-") or tag == "raises-exception"


def source(cell) -> str:
    return "".join(cell.get("source", []))


def checks_output(cell) -> bool:
    """True for a cell whose stored output nbval compares (--nbval-lax): the output must stay."""
    marked = any(line.strip().lstrip("#").strip() == CHECK_MARKER
                 for line in source(cell).splitlines() if line.strip().startswith("#"))
    return marked or CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def cell_name(i: int, cell) -> str:
    first = next((line for line in source(cell).splitlines() if line.strip()), "")
    ident = f", id {cell['id']}" if "id" in cell else ""
    return f"cell {i} ({cell['cell_type']}{ident}, starting {first[:50]!r})"


def clean_output(out: dict) -> dict:
    out = dict(out)
    if "execution_count" in out:
        out["execution_count"] = None
    if "metadata" in out:
        out["metadata"] = {}
    return out


def problems(nb: dict) -> list:
    """Every way `nb` breaks the policy, one message per problem, naming the cell."""
    found = []
    extra = sorted(set(nb.get("metadata", {})) - {"kernelspec", "language_info"})
    if extra:
        found.append(f"notebook metadata has {', '.join(extra)} (only kernelspec and language_info belong)")
    if "kernelspec" not in nb.get("metadata", {}):
        found.append("notebook metadata has no kernelspec")
    lang = nb.get("metadata", {}).get("language_info")
    if lang is not None and lang != {"name": "python"}:
        found.append(f"notebook language_info holds more than the name: {sorted(lang)}")
    for i, cell in enumerate(nb.get("cells", [])):
        name = cell_name(i, cell)
        meta = cell.get("metadata", {})
        if set(meta) - {"tags"}:
            found.append(f"{name}: metadata {sorted(set(meta) - {'tags'})}")
        odd_tags = [t for t in meta.get("tags", []) if not is_nbval_tag(t)]
        if odd_tags or ("tags" in meta and not meta["tags"]):
            found.append(f"{name}: tags {odd_tags or '[] (empty)'} (only nbval tags belong)")
        if cell["cell_type"] != "code":
            if cell.get("attachments"):
                found.append(f"{name}: attachments")
            continue
        outputs = cell.get("outputs", [])
        if outputs and checks_output(cell):
            if [clean_output(o) for o in outputs] != outputs:
                found.append(f"{name}: its expected output carries an execution count or metadata")
            if cell.get("execution_count") is None:
                found.append(f"{name}: nbval checks its output, so it needs an execution count")
            continue
        if outputs:
            kinds = sorted({o.get("output_type", "?") for o in outputs})
            found.append(f"{name}: {len(outputs)} outputs ({', '.join(kinds)}) in a cell nbval does not check")
        if cell.get("execution_count") is not None:
            found.append(f"{name}: execution count {cell['execution_count']}")
    return found


def clean(nb: dict) -> dict:
    """A copy of `nb` that follows the policy."""
    nb = json.loads(json.dumps(nb))
    meta = nb.get("metadata", {})
    nb["metadata"] = {"kernelspec": meta.get("kernelspec") or dict(KERNELSPEC),
                      "language_info": {"name": meta.get("language_info", {}).get("name", "python")}}
    for cell in nb.get("cells", []):
        tags = [t for t in cell.get("metadata", {}).get("tags", []) if is_nbval_tag(t)]
        cell["metadata"] = {"tags": tags} if tags else {}
        if cell["cell_type"] == "code":
            if checks_output(cell) and cell.get("outputs"):
                cell["outputs"] = [clean_output(o) for o in cell["outputs"]]
                cell["execution_count"] = cell.get("execution_count") or 1
            else:
                cell["outputs"], cell["execution_count"] = [], None
        else:
            cell.pop("attachments", None)
    return nb


def dumps(nb: dict) -> str:
    """The bytes Jupyter itself would write (nbformat: sorted keys, indent 1, no ASCII escapes)."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def notebooks(paths=None) -> list:
    return [Path(p) for p in paths] if paths else sorted((ROOT / "notebooks").glob("*.ipynb"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    ap.add_argument("--check", action="store_true", help="change nothing; list problems, exit 1 if any")
    args = ap.parse_args(argv)
    dirty = 0
    for path in notebooks(args.paths):
        raw = path.read_text(encoding="utf-8")
        nb = json.loads(raw)
        if args.check:
            issues = problems(nb) + ([] if dumps(nb) == raw else ["not written the way Jupyter writes notebooks"])
            for issue in issues:
                print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {issue}")
            dirty += bool(issues)
        elif settle(path, dumps(clean(nb)), check=False):
            print(f"cleaned {path}")
            dirty += 1
    if args.check and dirty:
        print(f"{dirty} notebook(s) need cleaning: python tools/clean_notebooks.py", file=sys.stderr)
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
