"""Training resumes from its saved state and ends exactly where an uninterrupted run ends.

Two loops resume: notebook 04's train_model with a state file (what every notebook trains with) and
train.py's fit (the same, plus several processes). Both are checked against the plain
train_model, and against interruptions. tests/test_kill_resume.py kills a real process.
"""
import sys
from pathlib import Path

import pytest
import torch

import helpers
from kit_support import make_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import train  # noqa: E402

CPU = torch.device("cpu")
PROCS = train.Procs(device=CPU)


def loaders(seed=0, sharded=False):
    """A small seeded task: the label is whether word 4 or word 5 appears, in texts of varied length."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (96,), generator=g).tolist()
    texts = [torch.randint(6, 12, (int(torch.randint(2, 9, (1,), generator=g)),), generator=g).tolist() + [4 + y]
             for y in labels]
    data = helpers.EncodedDataset(labels, texts)
    train_loader = helpers.make_loader(data, 16, train=True, seed=seed)
    if sharded:
        train_loader = train.shard_loader(train_loader, PROCS, train=True)
    return train_loader, helpers.make_loader(data, 32, train=False)


def run(glove, loop, state_file=None, epochs=3, dropout_seed=1):
    model = make_model(glove, seed=0)
    torch.manual_seed(dropout_seed)  # the same dropout randomness from the start in every run
    train_loader, valid_loader = loaders(sharded=loop == "fit")
    if loop == "fit":
        history = train.fit(model, train_loader, valid_loader, epochs, 1e-2, PROCS, "test", state_file=state_file)
    elif loop == "resumable":
        history = helpers.train_model(model, train_loader, valid_loader, epochs, 1e-2, CPU, state_file=state_file)
    else:
        history = helpers.train_model(model, train_loader, valid_loader, epochs, 1e-2, CPU)
    return model, history


def assert_same_weights(a, b):
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("loop", ["resumable", "fit"])
def test_an_unbroken_run_trains_as_train_model_does(tiny_glove, tmp_path, loop):
    """Saving the state changes nothing: the same weights and history as the plain loop, bit for bit."""
    reference, ref_history = run(tiny_glove, "plain")
    model, history = run(tiny_glove, loop, tmp_path / "state.pt")
    assert {k: v for k, v in history.items() if k != "seconds"} == \
        {k: v for k, v in ref_history.items() if k != "seconds"}
    assert_same_weights(reference, model)


@pytest.mark.parametrize("loop", ["resumable", "fit"])
def test_an_interrupted_run_resumes_to_the_same_weights(tiny_glove, tmp_path, monkeypatch, loop):
    reference, ref_history = run(tiny_glove, "plain")
    state = tmp_path / "training-state.pt"

    evaluate, calls = helpers.evaluate, []

    def dies_in_epoch_two(*args, **kw):  # the kernel "dies" after epoch 1 was saved
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(*args, **kw)

    monkeypatch.setattr(helpers, "evaluate", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_glove, loop, state_file=state)
    monkeypatch.setattr(helpers, "evaluate", evaluate)
    assert torch.load(state, weights_only=True)["history"]["epoch"] == [1]

    calls.clear()
    monkeypatch.setattr(helpers, "evaluate", lambda *a, **kw: calls.append(1) or evaluate(*a, **kw))
    # Another dropout seed: only a resume that restores the random generators ends at the reference weights.
    resumed, history = run(tiny_glove, loop, state_file=state, dropout_seed=7)
    assert len(calls) == 2  # epochs 2 and 3 only
    assert history["epoch"] == [1, 2, 3]
    assert history["valid_acc"] == ref_history["valid_acc"]
    assert_same_weights(reference, resumed)


def test_a_finished_run_is_not_trained_again(tiny_glove, tmp_path, monkeypatch, capsys):
    state = tmp_path / "state.pt"
    first, history = run(tiny_glove, "resumable", state)
    monkeypatch.setattr(helpers, "train_step", lambda *a, **kw: pytest.fail("trained again"))
    again, history_again = run(tiny_glove, "resumable", state)
    assert history_again == history  # seconds too: the recorded ones, not a new measurement
    assert_same_weights(first, again)  # the best epoch's weights, restored from the state
    assert "already trained: all 3 epochs" in capsys.readouterr().out


def test_a_state_from_another_run_is_refused(tiny_glove, tmp_path):
    state = tmp_path / "training-state.pt"
    run(tiny_glove, "resumable", state_file=state, epochs=2)
    with pytest.raises(helpers.KitError, match="state of another run .*2-epoch run"):
        run(tiny_glove, "resumable", state_file=state, epochs=3)
    other = make_model(tiny_glove, seed=3)  # other starting weights: say, another pretrained checkpoint
    with pytest.raises(helpers.KitError, match="from other starting weights"):
        helpers.train_model(other, *loaders(), 2, 1e-2, CPU, state_file=state)


def test_a_damaged_state_is_named(tiny_glove, tmp_path):
    state = tmp_path / "training-state.pt"
    run(tiny_glove, "resumable", state_file=state, epochs=2)
    state.write_bytes(state.read_bytes()[:1000])
    with pytest.raises(helpers.KitError, match=r"training state .*training-state.pt cannot be read.*Delete it"):
        run(tiny_glove, "resumable", state_file=state, epochs=2)


def test_frozen_weights_are_not_saved_in_the_state(tiny_glove, tmp_path):
    """The frozen GloVe rows never change, so the state leaves them out (80 MB at 50d) and restores them."""
    state = tmp_path / "state.pt"
    model = make_model(tiny_glove, seed=0)  # its embedding is frozen
    helpers.train_model(model, *loaders(), 1, 1e-2, CPU, state_file=state)
    saved = torch.load(state, weights_only=True)
    assert "emb.weight" not in saved["model"] and "emb.weight" not in saved["best_state"]
    assert "encoder.layers.0.linear1.weight" in saved["model"]


def test_fit_ends_with_the_best_epochs_weights(tiny_glove, tmp_path, monkeypatch):
    """The equality above holds on a task whose best epoch is the last; with scripted scores, epoch 2 of 3
    is the best, so fit must end with the weights of epoch 2 (test_model.py does the same for the notebooks')."""
    snapshots, accuracies = [], [0.5, 0.9, 0.7]

    def scripted_evaluate(model, loader, device):
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return 0.0, accuracies[len(snapshots) - 1]

    monkeypatch.setattr(helpers, "evaluate", scripted_evaluate)
    model, history = run(tiny_glove, "fit", tmp_path / "state.pt")
    assert history["best_epoch"] == 2 and len(snapshots) == 3
    assert not torch.equal(snapshots[1]["head.weight"], snapshots[2]["head.weight"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[1][k]), k
