"""The recorded copies of executed notebooks keep results, not progress bars (run_course.without_progress_bars)."""
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import run_course  # noqa: E402

WIDGET = "application/vnd.jupyter.widget-view+json"


def test_progress_bars_and_their_state_are_dropped_and_everything_else_kept():
    nb = {"metadata": {"widgets": {"state": {"x": 1}}, "kernelspec": {"name": "python3"}}, "nbformat": 4,
          "nbformat_minor": 5, "cells": [
              {"cell_type": "code", "source": "train()", "metadata": {}, "execution_count": 1, "outputs": [
                  {"output_type": "display_data", "data": {WIDGET: {"model_id": "a"}, "text/plain": "HBox()"},
                   "metadata": {}},
                  {"output_type": "stream", "name": "stdout", "text": "epoch 1: valid acc 0.87\n"},
                  {"output_type": "display_data", "data": {"image/png": "iVBOR"}, "metadata": {}}]},
              {"cell_type": "markdown", "source": "prose", "metadata": {}}]}
    out = json.loads(run_course.without_progress_bars(json.dumps(nb)))
    assert out["metadata"] == {"kernelspec": {"name": "python3"}}
    assert [o.get("name") or list(o["data"]) for o in out["cells"][0]["outputs"]] == ["stdout", ["image/png"]]
    assert out["cells"][1] == nb["cells"][1]


def test_no_recorded_notebook_keeps_a_progress_bar():
    for path in REPO.glob("results/*/notebooks/*.ipynb"):
        assert WIDGET not in path.read_text(), f"{path}: run python run_course.py --results, or strip it"
