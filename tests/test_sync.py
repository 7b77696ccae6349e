"""One source: the code a notebook teaches (#@save cells) is what helpers.py holds, and what later notebooks import.

tools/sync_helpers.py writes sections 01-08 of helpers.py from the notebooks; these tests fail,
naming the cell, when the two disagree, and check the rules that make an edited cell take effect
in its own notebook.
"""
import ast
import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import sync_helpers  # noqa: E402

# Issue 9's list: each piece is defined in a visible cell of the notebook that teaches it.
TAUGHT = {
    "01": ["IMDBDataset", "AGNewsDataset"],
    "02": ["tokenize", "Vocab", "build_vocab", "embedding_matrix", "cut", "encode", "EncodedDataset"],
    "02b": ["collate_batch", "split_indices", "split_by_group", "BucketBatchSampler", "make_loader", "make_splits"],
    "03": ["PositionalEncoding", "masked_mean", "TextClassifier", "CourseNet"],
    "04": ["evaluate", "make_optimizer", "train_step", "train_model"],
    "05": ["replace_head", "TrainedRows", "training_words", "unfreeze", "predict"],
    "05b": ["test_predictions"],
    "06": ["freeze_body", "pooled_features", "feature_loader"],
    "07": ["MaskedWords", "masked_words_loss", "pretrain_masked_words", "target_words", "frequency_loss"],
    "07b": ["configure", "plot_grid"],
    "08": ["draw_labelled", "curve_recipe", "fine_tune_point", "NgramBag", "curve_summary", "plot_curve"],
}


def saved_names(number: str) -> list:
    path = next(p for p in sync_helpers.notebooks() if p.name.split("_")[0] == number)
    return [n for _, code in sync_helpers.saved_cells(path) for n in sync_helpers.defined_names(code)]


def test_helpers_sections_are_the_notebooks_saved_cells():
    text = sync_helpers.HELPERS.read_text(encoding="utf-8")
    problems = sync_helpers.mismatches(text) + sync_helpers.style_problems()
    assert not problems, "\n".join(problems) + "\nFix: python tools/sync_helpers.py"


@pytest.mark.parametrize("number", sorted(TAUGHT))
def test_each_piece_is_taught_in_its_notebook(number):
    missing = [n for n in TAUGHT[number] if n not in saved_names(number)]
    assert not missing, f"notebook {number} has no #@save cell defining {missing}"


def test_sections_read_in_notebook_order():
    import helpers
    source = Path(helpers.__file__).read_text(encoding="utf-8")
    order = [source.index(f"\n{'class' if n[0].isupper() else 'def'} {n}") for number in sorted(TAUGHT)
             for n in TAUGHT[number]]
    assert order == sorted(order)
    assert source.index(sync_helpers.END) < source.index("\ndef download(") < source.index("\ndef save_checkpoint(")


def test_train_model_fits_on_one_screen():
    path = next(p for p in sync_helpers.notebooks() if p.name.startswith("04"))
    code = next(code for _, code in sync_helpers.saved_cells(path) if "def train_model" in code)
    node = next(n for n in ast.parse(code).body if getattr(n, "name", "") == "train_model")
    assert node.end_lineno - node.lineno + 1 <= 35, "the loop a learner reads: about 35 lines at most"


def test_the_setup_cell_is_short():
    import bootstrap_cell
    assert len(bootstrap_cell.CELL.splitlines()) <= 7


def edited_copy(tmp_path, monkeypatch, defines: str, old: str, new: str) -> tuple:
    """A copy of the notebooks in which notebook 02b's cell defining `defines` has `old` replaced by `new`;
    sync_helpers then reads the copy. Returns the edited notebook's path and the cell's index."""
    copy = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", copy)
    path = copy / next(p.name for p in sync_helpers.notebooks() if p.name.startswith("02b"))
    nb = json.loads(path.read_text(encoding="utf-8"))
    index = next(i for i, c in enumerate(nb["cells"]) if f"def {defines}" in "".join(c["source"]))
    source = "".join(nb["cells"][index]["source"])
    assert old in source
    nb["cells"][index]["source"] = source.replace(old, new)
    path.write_text(json.dumps(nb), encoding="utf-8")
    monkeypatch.setattr(sync_helpers, "ROOT", tmp_path)
    return path, index


def test_an_edited_cell_is_named(tmp_path, monkeypatch):
    """The check can fail: edit one saved cell in a copy of the notebooks, and it names that cell."""
    path, index = edited_copy(tmp_path, monkeypatch, "collate_batch", "padding_value=pad_idx", "padding_value=0")
    problems = sync_helpers.mismatches(sync_helpers.HELPERS.read_text(encoding="utf-8"))
    assert problems == [f"notebooks/{path.name}, cell {index} (defines collate_batch) differs from helpers.py"]


def test_a_notebook_calls_its_own_definitions_not_the_saved_copies(tmp_path, monkeypatch):
    """Calling H.collate_batch in notebook 02b would ignore a learner's edit of its cell: the check says so."""
    edited_copy(tmp_path, monkeypatch, "make_loader", "collate_fn=collate_batch", "collate_fn=H.collate_batch")
    assert any("calls H.collate_batch, which this notebook defines itself" in p for p in sync_helpers.style_problems())


def test_no_notebook_calls_H_for_what_it_defines():
    """Outside the saved cells too: every cell of a notebook uses its own version of what it teaches."""
    import re
    bad = []
    for path in sync_helpers.notebooks():
        own = {n for _, code in sync_helpers.saved_cells(path) for n in sync_helpers.defined_names(code)}
        for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            if cell["cell_type"] == "code":
                used = set(re.findall(r"\bH\.(\w+)", "".join(cell["source"]))) & own
                bad += [f"{path.name} cell {i}: H.{n}" for n in sorted(used)]
    assert not bad, bad
