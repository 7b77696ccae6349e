"""Copy the notebooks' `#@save` cells into helpers.py: one section per notebook, in notebook order.

    python tools/sync_helpers.py           # rewrite sections 01-08 of helpers.py from the notebooks
    python tools/sync_helpers.py --check   # change nothing; exit 1, naming each cell that differs

A code cell whose first line is `#@save` is the source of what it defines (d2l's pattern): the
learner reads and changes it in the notebook that teaches it, and later notebooks import it from
helpers.py. Everything between START and END in helpers.py is written by this tool; the header
above it and the appendix below it are edited by hand.

A saved cell must also name its notebook in each docstring ("(notebook 02)"), and refer to the
kit's other pieces either by bare name (defined in the same notebook, so an edit there takes
effect there) or as H.<name> (from another notebook or the appendix). --check reports both.
"""
import argparse
import ast
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from derived import settle  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HELPERS = ROOT / "helpers.py"
MARK = "#@save"
START = "# >>> sections 01-08: written by tools/sync_helpers.py from the notebooks' #@save cells; edit them there"
END = "# <<< end of the sections written by tools/sync_helpers.py"
RULE = "# " + "=" * 98


def notebooks() -> list:
    return sorted((ROOT / "notebooks").glob("0*.ipynb"))


def saved_cells(path: Path) -> list:
    """(cell index, code without the marker line) of every #@save cell of a notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    out = []
    for i, cell in enumerate(cells):
        text = "".join(cell["source"])
        if cell["cell_type"] == "code" and text.splitlines()[:1] == [MARK]:
            out.append((i, text.split("\n", 1)[1].strip("\n")))
    return out


def title(path: Path) -> str:
    """The notebook's first heading, e.g. '2. Vocabulary, text pipeline and batches'."""
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            return "".join(cell["source"]).splitlines()[0].lstrip("# ").strip()
    return path.stem


def defined_names(code: str) -> list:
    """The top-level names a piece of code defines (functions, classes, assignments)."""
    names = []
    for node in ast.parse(code).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names += [n.id for n in ast.walk(t) if isinstance(n, ast.Name)]
    return names


def section(path: Path) -> str:
    head = f"{RULE}\n# {title(path)}: notebooks/{path.name}\n{RULE}\n"
    return head + "\n\n\n".join(code for _, code in saved_cells(path))


def sections() -> str:
    return "\n\n\n".join(section(p) for p in notebooks() if saved_cells(p))


def render(helpers_text: str) -> str:
    """helpers.py with the text between START and END replaced by the notebooks' saved cells."""
    if START not in helpers_text or END not in helpers_text:
        raise SystemExit(f"helpers.py lacks the marker lines:\n{START}\n{END}")
    before, rest = helpers_text.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n\n\n{sections()}\n\n\n{END}{after}"


def style_problems() -> list:
    """Saved cells that break the two rules in this module's docstring."""
    found, owner = [], {}
    for path in notebooks():
        number = path.name.split("_")[0]
        own = {n for _, code in saved_cells(path) for n in defined_names(code)}
        for i, code in saved_cells(path):
            where = f"notebooks/{path.name}, cell {i}"
            for node in ast.parse(code).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    doc = ast.get_docstring(node) or ""
                    if f"(notebook {number})" not in doc:
                        found.append(f"{where}: the docstring of {node.name} does not name its notebook, "
                                     f"'(notebook {number})'")
            for name in sorted(set(re.findall(r"\bH\.(\w+)", code)) & own):
                found.append(f"{where}: calls H.{name}, which this notebook defines itself; call {name} so that "
                             "an edit of its cell takes effect here")
            for name in defined_names(code):
                if name in owner:
                    found.append(f"{where}: defines {name} again (first saved in {owner[name]})")
                owner.setdefault(name, where)
    return found


def mismatches(helpers_text: str) -> list:
    """Each saved cell whose code is not in helpers.py as written, and each stale name in helpers.py."""
    if render(helpers_text) == helpers_text:
        return []
    current = helpers_text.split(START, 1)[1].split(END, 1)[0]
    found = []
    for path in notebooks():
        for i, code in saved_cells(path):
            if code not in current:
                found.append(f"notebooks/{path.name}, cell {i} (defines {', '.join(defined_names(code)) or '-'}) "
                             "differs from helpers.py")
    wanted = {n for p in notebooks() for _, code in saved_cells(p) for n in defined_names(code)}
    try:
        stale = sorted(set(defined_names(current)) - wanted)
    except SyntaxError:
        stale = []
    found += [f"helpers.py defines {name} in sections 01-08, but no #@save cell does" for name in stale]
    return found or ["helpers.py sections 01-08 differ from the notebooks in order or spacing"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if helpers.py is out of date")
    args = ap.parse_args(argv)
    text = HELPERS.read_text(encoding="utf-8")
    problems = style_problems()
    if args.check:
        problems += mismatches(text)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print("fix the cells named above, then: python tools/sync_helpers.py", file=sys.stderr)
        return 1 if problems else 0
    if settle(HELPERS, render(text), check=False):
        print("helpers.py sections 01-08 rewritten from the notebooks")
    for p in problems:
        print("warning:", p, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
