"""Training resumes from its saved state and ends exactly where an uninterrupted run ends.

Resume lives in train.py's loop (`fit`), beside DistributedDataParallel, not in the notebooks'
train_model: the extras a long run needs stay out of the loop a learner reads.
"""
import sys
from pathlib import Path

import pytest
import torch

import helpers
from kit_support import make_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import train  # noqa: E402

CPU = train.Procs(device=torch.device("cpu"))


def loaders(seed=0):
    """A small seeded task: the label is whether word 4 or word 5 appears, in texts of varied length."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (96,), generator=g).tolist()
    texts = [torch.randint(6, 12, (int(torch.randint(2, 9, (1,), generator=g)),), generator=g).tolist() + [4 + y]
             for y in labels]
    data = helpers.EncodedDataset(labels, texts)
    train_loader = train.shard_loader(helpers.make_loader(data, 16, train=True, seed=seed), CPU, train=True)
    return train_loader, helpers.make_loader(data, 32, train=False)


def run(glove, state_path=None, epochs=3, init_seed=0):
    model = make_model(glove, seed=init_seed)
    torch.manual_seed(1)  # the same dropout randomness from the start in every run
    train_loader, valid_loader = loaders()
    history = train.fit(model, train_loader, valid_loader, epochs, 1e-2, CPU, "test", state_path=state_path)
    return model, history


def test_fit_without_extras_trains_as_train_model_does(tiny_glove):
    """In one process and without a state file, fit is the notebooks' loop: the same weights, bit for bit."""
    fitted, history = run(tiny_glove)
    model = make_model(tiny_glove, seed=0)
    torch.manual_seed(1)
    train_loader, valid_loader = loaders()
    reference = helpers.train_model(model, train_loader, valid_loader, 3, 1e-2, torch.device("cpu"))
    assert history["valid_acc"] == reference["valid_acc"] and history["train_loss"] == reference["train_loss"]
    for (name, a), b in zip(model.state_dict().items(), fitted.state_dict().values()):
        assert torch.equal(a, b), name


def test_an_interrupted_run_resumes_to_the_same_weights(tiny_glove, tmp_path, monkeypatch):
    reference, ref_history = run(tiny_glove)
    state = tmp_path / "training-state.pt"

    evaluate, calls = helpers.evaluate, []

    def dies_in_epoch_two(*args, **kw):  # the kernel "dies" after epoch 1 was saved
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(*args, **kw)

    monkeypatch.setattr(helpers, "evaluate", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_glove, state_path=state)
    monkeypatch.setattr(helpers, "evaluate", evaluate)
    assert torch.load(state, weights_only=True)["history"]["epoch"] == [1]

    calls.clear()
    monkeypatch.setattr(helpers, "evaluate", lambda *a, **kw: calls.append(1) or evaluate(*a, **kw))
    # Other initial weights and another dropout seed: only a true resume can end at the reference weights.
    resumed, history = run(tiny_glove, state_path=state, init_seed=5)
    assert len(calls) == 2  # epochs 2 and 3 only
    assert history["epoch"] == [1, 2, 3]
    assert history["valid_acc"] == ref_history["valid_acc"]
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_state_from_another_run_is_refused(tiny_glove, tmp_path):
    state = tmp_path / "training-state.pt"
    run(tiny_glove, state_path=state, epochs=2)
    with pytest.raises(helpers.KitError, match="2-epoch run"):
        run(tiny_glove, state_path=state, epochs=3)
