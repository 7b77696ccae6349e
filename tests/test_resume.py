"""Training resumes from its saved state and ends exactly where an uninterrupted run ends."""
import pytest
import torch

import helpers
from kit_support import make_model


def loaders(seed=0):
    """A small seeded task: the label is whether word 4 or word 5 appears, in texts of varied length."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (96,), generator=g).tolist()
    texts = [torch.randint(6, 12, (int(torch.randint(2, 9, (1,), generator=g)),), generator=g).tolist() + [4 + y]
             for y in labels]
    data = helpers.EncodedDataset(labels, texts)
    return helpers.make_loader(data, 16, train=True, seed=seed), helpers.make_loader(data, 32, train=False)


def train(glove, resume_path=None, epochs=3, init_seed=0):
    model = make_model(glove, seed=init_seed)
    torch.manual_seed(1)  # the same dropout randomness from the start in every run
    train_loader, valid_loader = loaders()
    history = helpers.train_model(model, train_loader, valid_loader, epochs, 1e-2, torch.device("cpu"),
                                  resume_path=resume_path)
    return model, history


def test_an_interrupted_run_resumes_to_the_same_weights(tiny_glove, tmp_path, monkeypatch):
    reference, ref_history = train(tiny_glove)
    state = tmp_path / "training-state.pt"

    evaluate, calls = helpers.evaluate, []

    def dies_in_epoch_two(*args, **kw):  # the kernel "dies" after epoch 1 was saved
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(*args, **kw)

    monkeypatch.setattr(helpers, "evaluate", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_glove, resume_path=state)
    monkeypatch.setattr(helpers, "evaluate", evaluate)
    assert torch.load(state, weights_only=True)["history"]["epoch"] == [1]

    calls.clear()
    monkeypatch.setattr(helpers, "evaluate", lambda *a, **kw: calls.append(1) or evaluate(*a, **kw))
    # Other initial weights and another dropout seed: only a true resume can end at the reference weights.
    resumed, history = train(tiny_glove, resume_path=state, init_seed=5)
    assert len(calls) == 2  # epochs 2 and 3 only
    assert history["epoch"] == [1, 2, 3]
    assert history["valid_acc"] == ref_history["valid_acc"]
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_state_from_another_run_is_refused(tiny_glove, tmp_path):
    state = tmp_path / "training-state.pt"
    train(tiny_glove, resume_path=state, epochs=2)
    with pytest.raises(helpers.KitError, match="2-epoch run"):
        train(tiny_glove, resume_path=state, epochs=3)
