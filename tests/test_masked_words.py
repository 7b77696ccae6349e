"""Notebook 07's masked-word pretraining: what is hidden, what is scored, the baselines it is measured against."""
import math

import pytest
import torch

import helpers
from kit_support import make_model

PAD = helpers.PAD_IDX


def texts(*rows):
    return helpers.collate_batch([(0, torch.tensor(r)) for r in rows])[1]


def test_target_words_and_the_frequency_only_loss_by_hand():
    """Word 4 three times, word 5 once (<unk> and <pad> never targets): log frequencies ln(3/4), ln(1/4); held-out
    text "4 5 5 9" scores the frequency guess on its target words only: -(ln 3/4 + 2 ln 1/4) / 3."""
    data = helpers.EncodedDataset([0, 1], [[4, 4, 0, 5], [4, 1, 1]])
    targets, log_freq = helpers.target_words(data, 10)
    assert targets.tolist() == [4, 5]
    torch.testing.assert_close(log_freq, torch.tensor([math.log(3 / 4), math.log(1 / 4)]))
    held_out = helpers.EncodedDataset([0], [[4, 5, 5, 9]])
    expected = -(math.log(3 / 4) + 2 * math.log(1 / 4)) / 3
    assert abs(helpers.frequency_loss(held_out, targets, log_freq) - expected) < 1e-6


def test_the_head_starts_as_the_frequency_guess(tiny_glove):
    targets = torch.tensor([4, 5, 6])
    log_freq = torch.tensor([0.5, 0.3, 0.2]).log()
    mlm = helpers.MaskedWords(make_model(tiny_glove), targets, log_freq, p=0.5)
    torch.testing.assert_close(mlm.out.bias.detach(), log_freq)
    assert mlm.out.weight.abs().max() < 0.2, "small output vectors: the scores start near the log frequencies"


def test_exactly_the_drawn_target_positions_are_hidden_and_scored(tiny_glove):
    """The positions scored are those whose draw is under p and whose word is a target, in order; their answers
    are those words' target indices. Padding and non-target words are never scored."""
    targets = torch.tensor([4, 5, 8])
    mlm = helpers.MaskedWords(make_model(tiny_glove, dropout=0.0), targets, torch.zeros(3), p=0.5).eval()
    x = texts([4, 5, 9, 8, 4, 5, 11, 3], [8, 8, 4, 9])
    draw = torch.rand(x.shape, generator=torch.Generator().manual_seed(7))
    target_of = {4: 0, 5: 1, 8: 2}
    expected = [(i, j) for i in range(x.shape[0]) for j in range(x.shape[1])
                if draw[i, j] < 0.5 and x[i, j].item() in target_of]
    assert 0 < len(expected) < sum(t.item() in target_of for t in x.flatten()), "some targets hidden, not all"
    scores, answers = mlm(x, torch.Generator().manual_seed(7))
    assert scores.shape == (len(expected), 3)
    assert answers.tolist() == [target_of[x[i, j].item()] for i, j in expected]


def test_a_hidden_word_cannot_be_seen(tiny_glove):
    """Swap the hidden words for other targets: the scores at the hidden positions do not change (the model sees
    the mask, not the word); swap a visible word and they do."""
    targets = torch.tensor([4, 5, 8, 9])
    mlm = helpers.MaskedWords(make_model(tiny_glove, dropout=0.0), targets, torch.zeros(4), p=0.5).eval()
    x = texts([4, 5, 9, 8, 4, 5, 8, 9])
    hidden = torch.rand(x.shape, generator=torch.Generator().manual_seed(3)) < 0.5
    assert 0 < hidden.sum() < x.numel()
    scores, _ = mlm(x, torch.Generator().manual_seed(3))
    swapped = torch.where(hidden, torch.where(x == 4, 5, 4), x)  # every hidden word replaced by another target
    scores_swapped, _ = mlm(swapped, torch.Generator().manual_seed(3))
    torch.testing.assert_close(scores_swapped, scores)
    visible = x.clone()
    j = int((~hidden[0]).nonzero()[0])
    visible[0, j] = 5 if x[0, j] != 5 else 4
    assert not torch.allclose(mlm(visible, torch.Generator().manual_seed(3))[0], scores)


def test_pretraining_keeps_glove_frozen_gives_back_dropout_and_measures_the_same_draw(tiny_glove):
    """After pretraining, GloVe's rows are unchanged, dropout is the body's again (it is off only while pretraining),
    and the held-out loss it reports is masked_words_loss's: the same seeded words hidden every time."""
    rows = [[4, 5, 7, 6, 4, 5, 8, 9] for _ in range(24)]
    data = helpers.EncodedDataset([0] * len(rows), rows)
    train, held_out = data.select(range(16)), data.select(range(16, 24))
    targets, log_freq = helpers.target_words(train, 10)
    body = make_model(tiny_glove, dropout=0.1)
    glove_rows = body.emb.weight.detach().clone()
    mlm = helpers.MaskedWords(body, targets, log_freq, p=0.3)
    valid_loader = helpers.make_loader(held_out, 8, train=False)
    history = helpers.pretrain_masked_words(mlm, helpers.make_loader(train, 8, train=True), valid_loader, 2, 1e-2,
                                            torch.device("cpu"))
    assert len(history["train_loss"]) == len(history["valid_loss"]) == 2
    assert torch.equal(body.emb.weight, glove_rows)
    assert {m.p for m in mlm.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}
    assert helpers.masked_words_loss(mlm, valid_loader, torch.device("cpu")) == history["valid_loss"][-1]


# ---------------------------------------------------------------------------
# pretraining_text: the training reviews, and train/unsup at the full size
# ---------------------------------------------------------------------------
def unsup_setup(tmp_path, reviews):
    root = tmp_path / "aclImdb"
    if reviews is not None:
        (root / "train" / "unsup").mkdir(parents=True)
        for i, text in enumerate(reviews):
            (root / "train" / "unsup" / f"{i}_0.txt").write_text(text, encoding="utf-8")
    vocab = helpers.Vocab(["<unk>", "<pad>", "a", "good", "film", "bad"])
    train = helpers.EncodedDataset([0, 1], [[2, 3, 4], [2, 5, 4]])
    return root, vocab, train


def test_pretraining_text_adds_train_unsup_at_the_full_size(tmp_path):
    root, vocab, train = unsup_setup(tmp_path, ["A good film.", "Bad bad film, a film"])
    text, used = helpers.pretraining_text(train, root, "full", vocab, max_len=4)
    assert len(text) == 4 and text.labels == [0, 1, -1, -1]
    assert [t.tolist() for t in text.tokens[2:]] == [[2, 3, 4, 0], [5, 5, 4, 0]]  # cut to 4 tokens, "." and "," unknown
    assert "2 training reviews and the 2 unlabelled ones of train/unsup" in used


def test_pretraining_text_is_the_training_reviews_otherwise(tmp_path):
    root, vocab, train = unsup_setup(tmp_path, ["A good film."])
    text, used = helpers.pretraining_text(train, root, "quick", vocab, max_len=4)
    assert text is train and used == "the 2 training reviews"  # only the full size reads train/unsup
    root, vocab, train = unsup_setup(tmp_path / "none", None)
    text, used = helpers.pretraining_text(train, root, "full", vocab, max_len=4)
    assert text is train and "has no train/unsup" in used


def test_pretraining_text_names_an_empty_or_damaged_unsup_folder(tmp_path):
    root, vocab, train = unsup_setup(tmp_path, [])
    with pytest.raises(helpers.KitError, match="holds no .txt reviews"):
        helpers.pretraining_text(train, root, "full", vocab, max_len=4)
    root, vocab, train = unsup_setup(tmp_path / "empty", ["   "])
    with pytest.raises(helpers.KitError, match="is empty"):
        helpers.pretraining_text(train, root, "full", vocab, max_len=4)
