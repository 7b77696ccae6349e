"""The cut rule travels with the model: max_len and tail live in model.config and in checkpoints, and predict and
the loaders built for a loaded model cut a long text exactly as training cut it."""
import pytest
import torch
import torch.nn.functional as F

import helpers
from kit_support import make_model

CPU = torch.device("cpu")
# 13 tokens: head+tail (max_len 6, tail 4) keeps "good movie" and the last four; the first six differ from that
LONG = "good movie great plot awful film bad actor the plot awful bad good"


def probs_of(model, ids):
    with torch.no_grad():
        p = F.softmax(model.eval()(torch.tensor([ids])), dim=1)[0]
    return ["neg", "pos"][p.argmax()], round(p.max().item(), 4)


def test_the_model_config_carries_the_cut_rule(tiny_glove):
    model = make_model(tiny_glove, max_len=6, tail=4)
    assert helpers.cut_rule(model) == dict(max_len=6, tail=4) == {k: model.config[k] for k in ("max_len", "tail")}
    assert helpers.cut_rule(make_model(tiny_glove, max_len=6)) == dict(max_len=6, tail=0), "tail 0: the head only"


def test_a_head_and_tail_model_classifies_a_long_text_as_training_cut_it(tiny_glove):
    """predict's default is the model's rule: the same answer as the text cut by encode with training's settings,
    and not the answer for the first max_len tokens (which is what predict gave before the rule travelled)."""
    model, vocab = make_model(tiny_glove, max_len=6, tail=4), helpers.build_vocab(tiny_glove)
    as_trained = helpers.encode(LONG, vocab, max_len=6, tail=4)
    head_only = helpers.encode(LONG, vocab, max_len=6)
    assert as_trained != head_only
    [got] = helpers.predict(model, vocab, LONG, ["neg", "pos"], CPU)
    assert got == probs_of(model, as_trained)
    assert got != probs_of(model, head_only), "the two cuts must give different answers for this test to mean much"
    [overridden] = helpers.predict(model, vocab, LONG, ["neg", "pos"], CPU, tail=0)
    assert overridden == probs_of(model, head_only), "an explicit tail still wins"


def test_make_splits_cuts_by_the_models_rule(tiny_glove):
    model, vocab = make_model(tiny_glove, max_len=6, tail=4), helpers.build_vocab(tiny_glove)
    data = [(i % 2, LONG) for i in range(20)]
    datasets, _ = helpers.make_splits(data, data[:4], vocab, batch_size=4, **helpers.cut_rule(model))
    for ds in datasets.values():
        assert all(t.tolist() == helpers.encode(LONG, vocab, max_len=6, tail=4) for t in ds.tokens)


def test_a_checkpoint_keeps_the_rule_and_an_old_one_loads_with_a_note(tiny_glove, tmp_path, capsys):
    model, vocab = make_model(tiny_glove, max_len=6, tail=4), helpers.build_vocab(tiny_glove)
    path = helpers.save_checkpoint(tmp_path / "m.pt", model, vocab, tiny_glove.name, ["neg", "pos"])
    loaded, _ = helpers.load_checkpoint(path, tiny_glove, vocab)
    assert helpers.cut_rule(loaded) == dict(max_len=6, tail=4)
    assert "note:" not in capsys.readouterr().out
    blob = torch.load(path, weights_only=True)
    del blob["config"]["tail"]  # as saved before the rule travelled with the model
    torch.save(blob, tmp_path / "old.pt")
    old, _ = helpers.load_checkpoint(tmp_path / "old.pt", tiny_glove, vocab)
    out = capsys.readouterr().out
    assert "does not say how its texts were cut" in out and "tail 0" in out
    assert helpers.cut_rule(old) == dict(max_len=6, tail=0)
    with pytest.raises(ValueError, match="empty text"):  # and it still works as a model
        helpers.predict(old, vocab, "", ["neg", "pos"], CPU)
