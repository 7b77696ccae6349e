"""Notebook 05's TrainedRows: training only the embedding rows of the training texts' words is the same
training as the dense update of the whole table (AdamW leaves a row that never gets a gradient where it is),
and the merged table saves and loads like any trained embedding."""
import copy

import pytest
import torch

import helpers
from kit_support import make_glove, make_model

WORDS = ["the", ",", ".", "movie", "good", "bad", "great", "awful", "film", "plot", "!", "actor", "unseen", "rare"]


def batches(vocab, n=6, seed=0):
    """Padded (labels, tokens) batches that never use the words 'unseen' and 'rare'."""
    g = torch.Generator().manual_seed(seed)
    pool = torch.tensor([vocab[w] for w in WORDS[:-2]] + [helpers.UNK_IDX])
    out = []
    for _ in range(n):
        items = [(int(torch.randint(2, (1,), generator=g)), pool[torch.randint(len(pool), (int(k),), generator=g)])
                 for k in torch.randint(3, 12, (8,), generator=g)]
        out.append(helpers.collate_batch(items))
    return out


def train(model, data, steps_each=1):
    opt, sched = helpers.make_optimizer(model, 1e-2, steps=len(data) * steps_each)
    model.train()
    torch.manual_seed(0)
    for labels, tokens in data:
        helpers.train_step(model, labels, tokens, opt, sched)
    return model


@pytest.fixture
def setup():
    glove = make_glove(WORDS, dim=8)
    vocab = helpers.build_vocab(glove)
    data = batches(vocab)
    seen = helpers.EncodedDataset([0] * len(data), [t[t != helpers.PAD_IDX] for _, t in data])
    return glove, vocab, data, helpers.training_words(seen)


def test_training_words_are_the_ids_in_the_texts(setup):
    glove, vocab, data, word_ids = setup
    assert set(word_ids.tolist()) == {vocab[w] for w in WORDS[:-2]} | {helpers.UNK_IDX}
    assert helpers.PAD_IDX not in word_ids.tolist()


def test_trained_rows_give_the_dense_update_of_the_whole_table(setup):
    glove, vocab, data, word_ids = setup
    dense = make_model(glove, dropout=0.0)
    for p in dense.parameters():  # the kit before: every parameter, the whole embedding too
        p.requires_grad = True
    rows = helpers.unfreeze(copy.deepcopy(dense), word_ids)
    assert isinstance(rows.emb, helpers.TrainedRows)
    assert helpers.count_trainable(rows) == helpers.count_trainable(dense) - (len(vocab) - len(word_ids)) * glove.dim
    train(dense, data)
    train(rows, data)
    rows.emb = rows.emb.merged()
    for (name, a), b in zip(dense.state_dict().items(), rows.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    before = helpers.embedding_matrix(glove)
    assert not torch.equal(rows.emb.weight[word_ids], before[word_ids]), "the training words' rows moved"
    for w in ("unseen", "rare"):  # words the training texts never use keep their GloVe vectors exactly
        assert torch.equal(rows.emb.weight[vocab[w]], before[vocab[w]])
    assert not rows.emb.weight.requires_grad


def test_only_the_rows_and_the_body_get_gradients(setup):
    glove, vocab, data, word_ids = setup
    model = helpers.unfreeze(make_model(glove), word_ids)
    labels, tokens = data[0]
    torch.nn.functional.cross_entropy(model(tokens), labels).backward()
    assert model.emb.table.weight.grad is None and model.emb.rows.grad.shape == (len(word_ids), glove.dim)
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith("emb.table"))


def test_unfreeze_without_words_keeps_the_embedding_frozen(setup):
    glove, vocab, data, word_ids = setup
    model = helpers.unfreeze(make_model(glove), None)
    assert isinstance(model.emb, torch.nn.Embedding) and not model.emb.weight.requires_grad
    assert model.config["trained_embedding"] is False
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("emb."))


def test_a_checkpoint_keeps_the_trained_rows(setup, tmp_path):
    glove, vocab, data, word_ids = setup
    model = train(helpers.unfreeze(make_model(glove), word_ids), data)
    path = helpers.save_checkpoint(tmp_path / "a.pt", model, vocab, glove.name, ["neg", "pos"])  # rows not merged yet
    loaded, blob = helpers.load_checkpoint(path, glove, vocab, num_classes=2)
    assert blob["embedding_saved"] and loaded.config["trained_embedding"]
    # compared with what the trained model itself looks up for every word, not with merged(), which saving uses
    every_word = torch.arange(len(vocab))
    with torch.no_grad():
        looked_up = model.emb(every_word)
        assert not torch.equal(looked_up, helpers.embedding_matrix(glove))  # training moved some rows
        assert torch.equal(loaded.emb(every_word), looked_up)
        assert torch.equal(loaded.eval()(data[0][1]), model.eval()(data[0][1]))
    path2 = helpers.save_checkpoint(tmp_path / "b.pt", loaded, vocab, glove.name, ["neg", "pos"])  # saved again
    assert torch.equal(helpers.load_checkpoint(path2, glove, vocab)[0].emb.weight, looked_up)
