"""Checkpoints (helpers.py 8): round trip, atomic saves, weights_only loading, mismatches named."""
import os
import stat
from pathlib import Path

import pytest
import torch

import helpers
from kit_support import leftovers, make_glove, make_model

CLASSES = ["neg", "pos"]
SAMPLE = torch.tensor([[4, 5, 6, 7, 3], [8, 9, 2, 1, 1]])


@pytest.fixture
def trained(tiny_glove):
    """A model whose weights are no longer the freshly initialised ones, with its vocabulary."""
    model = make_model(tiny_glove)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval(), helpers.build_vocab(tiny_glove)


@torch.no_grad()
def outputs(model):
    return model.eval()(SAMPLE)


def test_round_trip_gives_identical_outputs(tmp_path, tiny_glove, trained):
    model, vocab = trained
    path = helpers.save_checkpoint(tmp_path / "ck" / "imdb.pt", model, vocab, tiny_glove.name, CLASSES,
                                   epochs=3, valid_acc=0.875, data=Path("/somewhere"))
    loaded, info = helpers.load_checkpoint(path, tiny_glove, vocab, num_classes=2)
    assert torch.equal(outputs(loaded), outputs(model))
    assert info["class_names"] == CLASSES and info["glove"] == "glove.tiny" and info["config"] == model.config
    assert info["meta"] == {"epochs": 3, "valid_acc": 0.875, "data": "/somewhere"}
    assert leftovers(tmp_path) == [] and [p.name for p in path.parent.iterdir()] == ["imdb.pt"]


@pytest.mark.parametrize("settings", [dict(), dict(nhead=4, num_layers=1, dim_feedforward=24, dropout=0.3,
                                                  max_len=40, attention_dropout=0.2)], ids=["defaults", "others"])
@pytest.mark.parametrize("unfrozen", [False, True])
def test_a_loaded_model_has_the_saved_models_settings(tmp_path, tiny_glove, settings, unfrozen):
    """Same outputs in eval mode say nothing about dropout; the settings themselves must come back."""
    model, vocab = make_model(tiny_glove, num_classes=3, **settings), helpers.build_vocab(tiny_glove)
    if unfrozen:
        helpers.unfreeze(model)
    path = helpers.save_checkpoint(tmp_path / "a.pt", model, vocab, tiny_glove.name, ["a", "b", "c"])
    loaded, _ = helpers.load_checkpoint(path, tiny_glove, vocab)
    assert loaded.config == dict(model.config, trained_embedding=False)
    layer, want = loaded.encoder.layers[0], dict(make_model(tiny_glove).config, **settings)
    assert (layer.self_attn.dropout, layer.dropout.p, loaded.pos.dropout.p, len(loaded.encoder.layers)) == \
        (want["attention_dropout"], want["dropout"], want["dropout"], want["num_layers"])
    assert (layer.self_attn.num_heads, layer.linear1.out_features, loaded.pos.pe.shape[1]) == \
        (want["nhead"], want["dim_feedforward"], want["max_len"])


def test_frozen_glove_is_left_out_and_rebuilt(tmp_path, tiny_glove, trained):
    model, vocab = trained
    path = helpers.save_checkpoint(tmp_path / "a.pt", model, vocab, tiny_glove.name, CLASSES)
    blob = torch.load(path, weights_only=True)
    assert "emb.weight" not in blob["state_dict"] and blob["embedding_saved"] is False
    loaded, _ = helpers.load_checkpoint(path, tiny_glove, vocab)
    assert torch.equal(loaded.emb.weight, helpers.embedding_matrix(tiny_glove))


def test_a_trained_embedding_is_saved(tmp_path, tiny_glove, trained):
    model, vocab = trained
    model.emb.weight.requires_grad = True
    with torch.no_grad():
        model.emb.weight[4] += 1.0
    path = helpers.save_checkpoint(tmp_path / "a.pt", model, vocab, tiny_glove.name, CLASSES)
    loaded, _ = helpers.load_checkpoint(path, tiny_glove, vocab)
    assert torch.equal(loaded.emb.weight, model.emb.weight) and torch.equal(outputs(loaded), outputs(model))


def test_checkpoint_path_separates_sizes(kit_env):
    assert helpers.checkpoint_path("imdb", "smoke") == kit_env / "checkpoints" / "smoke" / "imdb.pt"
    assert helpers.checkpoint_path("imdb", "smoke") != helpers.checkpoint_path("imdb", "full")


def test_saved_file_has_ordinary_permissions(tmp_path, tiny_glove, trained):
    model, vocab = trained
    path = helpers.save_checkpoint(tmp_path / "a.pt", model, vocab, tiny_glove.name, CLASSES)
    (tmp_path / "plain").write_bytes(b"")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE((tmp_path / "plain").stat().st_mode)


def test_failed_save_leaves_the_old_checkpoint_intact(tmp_path, tiny_glove, trained, monkeypatch):
    model, vocab = trained
    path = helpers.save_checkpoint(tmp_path / "a.pt", model, vocab, tiny_glove.name, CLASSES)
    old = outputs(model)
    before = path.read_bytes()

    def save_half_then_fail(obj, f):
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    with torch.no_grad():
        model.head.bias += 5
    monkeypatch.setattr(helpers.torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        helpers.save_checkpoint(path, model, vocab, tiny_glove.name, CLASSES)
    monkeypatch.undo()
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["a.pt"]
    assert torch.equal(outputs(helpers.load_checkpoint(path, tiny_glove, vocab)[0]), old)


class _RunsCodeWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_load_never_runs_code_from_the_file(tmp_path, tiny_glove):
    """weights_only loading: a pickle that would run code on load is refused instead."""
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": helpers.CHECKPOINT_FORMAT, "payload": _RunsCodeWhenUnpickled(marker)}, path)
    with pytest.raises(helpers.KitError, match="is not a readable checkpoint"):
        helpers.load_checkpoint(path, tiny_glove, helpers.build_vocab(tiny_glove))
    assert not marker.exists()


# ---------------------------------------------------------------------------
# Mismatches and files that are not checkpoints
# ---------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path, tiny_glove, trained):
    model, vocab = trained
    return helpers.save_checkpoint(tmp_path / "imdb.pt", model, vocab, tiny_glove.name, CLASSES)


def test_different_vocabulary_order_is_named(saved, tiny_glove):
    other = make_glove(list(reversed(tiny_glove.words)))
    with pytest.raises(helpers.KitError, match=r"trained with vocabulary order [0-9a-f]{16}, but this run has"):
        helpers.load_checkpoint(saved, other, helpers.build_vocab(other))


def test_different_vocabulary_size_is_named(saved, tiny_glove):
    other = make_glove(tiny_glove.words[:-2])
    with pytest.raises(helpers.KitError, match="trained with vocabulary size 14, but this run has 12"):
        helpers.load_checkpoint(saved, other, helpers.build_vocab(other))


def test_different_glove_width_is_named(tmp_path, tiny_glove):
    g50 = make_glove(tiny_glove.words, dim=8, name="glove.6B.50d")
    g100 = make_glove(tiny_glove.words, dim=16, name="glove.6B.100d")
    path = helpers.save_checkpoint(tmp_path / "a.pt", make_model(g50), helpers.build_vocab(g50), g50.name, CLASSES)
    with pytest.raises(helpers.KitError, match=r"GloVe vectors glove.6B.50d, but this run has glove.6B.100d.*"
                                               r"KIT_GLOVE"):
        helpers.load_checkpoint(path, g100, helpers.build_vocab(g100), hint="Run 02 first.")


def test_different_class_count_is_named(saved, tiny_glove):
    with pytest.raises(helpers.KitError, match=r"2-class head \(neg, pos\), but 4 classes were expected"):
        helpers.load_checkpoint(saved, tiny_glove, helpers.build_vocab(tiny_glove), num_classes=4)


def test_missing_checkpoint_gives_the_hint(tmp_path, tiny_glove):
    with pytest.raises(helpers.KitError, match=r"No checkpoint at .*nope.pt\. Run notebook 02 first"):
        helpers.load_checkpoint(tmp_path / "nope.pt", tiny_glove, helpers.build_vocab(tiny_glove),
                                hint="Run notebook 02 first.")


@pytest.mark.parametrize("content,message", [
    (b"hello, I am a text file\n", "is not a readable checkpoint"),
    ("truncated", "is not a readable checkpoint"),
    ({"weights": torch.zeros(3)}, "is not a checkpoint of this kit"),
    ("state_dict", "is not a checkpoint of this kit"),
    ([1, 2, 3], "is not a checkpoint of this kit"),
])
def test_files_that_are_not_checkpoints(tmp_path, saved, tiny_glove, trained, content, message):
    path = tmp_path / "other.pt"
    if content == "truncated":
        path.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    elif content == "state_dict":
        torch.save(trained[0].state_dict(), path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(helpers.KitError, match=message):
        helpers.load_checkpoint(path, tiny_glove, helpers.build_vocab(tiny_glove))


def test_checkpoint_whose_weights_do_not_fit_is_named(tmp_path, tiny_glove, trained):
    model, vocab = trained
    path = helpers.save_checkpoint(tmp_path / "a.pt", model, vocab, tiny_glove.name, CLASSES)
    blob = torch.load(path, weights_only=True)
    blob["state_dict"]["head.weight"] = torch.zeros(2, 5)
    torch.save(blob, path)
    with pytest.raises(helpers.KitError, match=r"(?s)does not fit the model.*head.weight.*train again"):
        helpers.load_checkpoint(path, tiny_glove, vocab)
