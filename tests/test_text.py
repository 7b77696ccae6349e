"""Tokenizer, vocabulary, embedding matrix, text pipeline, collate, sampler and splits (helpers.py 4-5)."""
import json
from collections import Counter
from pathlib import Path

import pytest
import torch

import helpers
from kit_support import make_glove

PARITY = Path(__file__).parent / "fixtures" / "basic_english_parity.json"


# ---------------------------------------------------------------------------
# Tokenizer: token-for-token parity with torchtext's basic_english
# ---------------------------------------------------------------------------
def parity_cases():
    return json.loads(PARITY.read_text(encoding="utf-8"))["cases"]


def test_tokenize_matches_torchtext_on_the_tricky_and_the_real_texts():
    """The fixture holds the cases that tell tokenizers apart, and tokenize gets every one right."""
    cases = {c["text"]: c["tokens"] for c in parity_cases()}
    assert len(cases) >= 70
    tricky = ["", "a<br  />b", "a<br\t/>b", "a<br\xa0/>b"]  # <br /> goes before whitespace is collapsed
    tricky += [t for t in cases if "<br />" in t or "\u00a0" in t][:5]
    real = [t for t in cases if len(t) > 300]  # the real reviews and articles
    assert len(real) >= 20 and all(t in cases for t in tricky)
    for text in tricky + real:
        assert helpers.tokenize(text) == cases[text], repr(text[:40])


@pytest.mark.parametrize("case", parity_cases(), ids=lambda c: repr(c["text"][:30]))
def test_tokenize_matches_torchtext_basic_english(case):
    assert helpers.tokenize(case["text"]) == case["tokens"]


def test_tokenize_examples_a_reader_can_check():
    assert helpers.tokenize("Great movie!<br /><br />Loved it.") == ["great", "movie", "!", "loved", "it", "."]
    assert helpers.tokenize("It's \"fine\"; really: ok") == ["it", "'", "s", "fine", "really", "ok"]


# ---------------------------------------------------------------------------
# Vocabulary and embedding rows
# ---------------------------------------------------------------------------
def test_vocab_puts_specials_first_and_maps_unknown_to_unk(tiny_glove):
    vocab = helpers.build_vocab(tiny_glove)
    assert vocab.itos[:2] == ["<unk>", "<pad>"]
    assert (vocab["<unk>"], vocab["<pad>"]) == (helpers.UNK_IDX, helpers.PAD_IDX) == (0, 1)
    assert len(vocab) == len(tiny_glove.words) + 2
    assert vocab["the"] == 2 and vocab["actor"] == len(vocab) - 1
    assert vocab["zzzqqq"] == 0 and "zzzqqq" not in vocab
    assert vocab(["good", "nonsenseword", "film"]) == [vocab["good"], 0, vocab["film"]]
    assert vocab.lookup_tokens(vocab(["movie", "plot"])) == ["movie", "plot"]


def test_embedding_row_of_each_word_is_its_glove_vector(tiny_glove):
    vocab, emb = helpers.build_vocab(tiny_glove), helpers.embedding_matrix(tiny_glove)
    assert emb.shape == (len(vocab), tiny_glove.dim)
    for i, word in enumerate(tiny_glove.words):
        assert torch.equal(emb[vocab[word]], tiny_glove.vectors[i]), word
    assert not emb[helpers.PAD_IDX].any() and not emb[helpers.UNK_IDX].any()


def test_model_embedding_keeps_pad_row_zero(tiny_glove):
    model = helpers.TextClassifier(helpers.embedding_matrix(tiny_glove), 2, nhead=2, max_len=16)
    assert not model.emb.weight[helpers.PAD_IDX].any()
    assert torch.equal(model.emb.weight[helpers.build_vocab(tiny_glove)["good"]],
                       tiny_glove.vectors[tiny_glove.words.index("good")])


def test_duplicate_words_keep_their_first_index():
    vocab = helpers.build_vocab(make_glove(["a", "b", "a"], dim=2))
    assert vocab["a"] == 2 and vocab["b"] == 3


def test_fingerprint_depends_on_word_order(tiny_glove):
    same = helpers.build_vocab(make_glove(list(tiny_glove.words), seed=5))
    swapped = helpers.build_vocab(make_glove(list(reversed(tiny_glove.words))))
    vocab = helpers.build_vocab(tiny_glove)
    assert helpers.vocab_fingerprint(vocab) == helpers.vocab_fingerprint(same) != helpers.vocab_fingerprint(swapped)


@pytest.fixture(scope="module")
def real_glove_50d():
    return helpers._glove_from_package()


def test_real_50d_vectors_line_up_with_the_vocabulary(real_glove_50d):
    words, vectors, _ = real_glove_50d
    glove = helpers.GloVe("glove.6B.50d", words, vectors, "package")
    vocab, emb = helpers.build_vocab(glove), helpers.embedding_matrix(glove)
    assert emb.shape == (400_002, 50)
    for word in ("the", "movie", "brilliant", "awful", "paris"):
        assert torch.equal(emb[vocab[word]], vectors[words.index(word)]), word
    assert vocab["the"] == 2 and vocab["qwertyuiopasdf"] == helpers.UNK_IDX
    # rows read by vocabulary index mean what GloVe says: 'good' sits near 'great', far from 'paris'
    cos = torch.nn.functional.cosine_similarity
    good, great, paris = (emb[vocab[w]] for w in ("good", "great", "paris"))
    assert cos(good, great, dim=0) > 0.7 > cos(good, paris, dim=0)


# ---------------------------------------------------------------------------
# Text pipeline, collate, bucketed batches and splits
# ---------------------------------------------------------------------------
def test_encode_tokenizes_maps_and_truncates(tiny_glove):
    vocab = helpers.build_vocab(tiny_glove)
    ids = helpers.encode("Good movie, GREAT plot!!! xyzzy", vocab)
    assert vocab.lookup_tokens(ids) == ["good", "movie", ",", "great", "plot", "!", "!", "!", "<unk>"]
    assert helpers.encode("Good movie, GREAT plot", vocab, max_len=2) == ids[:2]


@pytest.mark.parametrize("max_len, tail", [(4, 0), (4, 1), (4, 3), (4, 4), (9, 3), (20, 5)])
def test_encode_keeps_the_head_and_the_tail_of_a_long_text(tiny_glove, max_len, tail):
    vocab = helpers.build_vocab(tiny_glove)
    text = "the movie , good film . bad plot ! actor"  # 10 tokens, each word once
    ids = helpers.encode(text, vocab)
    cut = helpers.encode(text, vocab, max_len, tail)
    if len(ids) <= max_len:
        assert cut == ids, "a text that fits stays whole"
    else:
        assert cut == ids[:max_len - tail] + ids[len(ids) - tail:] and len(cut) == max_len
        assert cut[len(cut) - tail:] == (ids[-tail:] if tail else []), "the last `tail` tokens are the text's last"


def test_make_splits_passes_tail_to_every_split(tiny_glove):
    vocab = helpers.build_vocab(tiny_glove)
    long = "good " * 8 + "bad " * 8
    data = [(i % 2, long) for i in range(40)]
    datasets, _ = helpers.make_splits(data, data[:4], vocab, max_len=6, batch_size=4, tail=2)
    for ds in datasets.values():
        assert all(t.tolist() == [vocab["good"]] * 4 + [vocab["bad"]] * 2 for t in ds.tokens)


def test_encoded_dataset_gives_texts_without_tokens_one_unk(tiny_glove):
    vocab = helpers.build_vocab(tiny_glove)
    ds = helpers.EncodedDataset.from_dataset([(1, "good film"), (0, "\"\"\" ;;"), (1, "bad " * 50)], vocab, 10)
    assert ds.labels == [1, 0, 1] and ds.lengths == [2, 1, 10]
    assert ds[1][1].tolist() == [helpers.UNK_IDX] and ds[0][1].dtype == torch.long
    sub = ds.select([2, 0])
    assert sub.labels == [1, 1] and sub.lengths == [10, 2]


def test_collate_pads_with_pad_index_not_zero():
    batch = [(1, torch.tensor([5, 6, 7])), (0, torch.tensor([8])), (1, torch.tensor([0, 9]))]
    labels, tokens = helpers.collate_batch(batch)
    assert labels.tolist() == [1, 0, 1] and labels.dtype == torch.long
    assert tokens.shape == (3, 3) and tokens.dtype == torch.long
    assert tokens.tolist() == [[5, 6, 7], [8, 1, 1], [0, 9, 1]]  # <unk> (0) stays, padding is 1


def lengths_for(n, seed=0):
    return torch.randint(1, 300, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


@pytest.mark.parametrize("n,batch_size", [(1, 4), (7, 3), (1000, 32), (1601, 16)])
def test_bucket_sampler_covers_every_index_exactly_once(n, batch_size):
    lengths = lengths_for(n)
    for shuffle in (True, False):
        sampler = helpers.BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=1)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert Counter(i for b in batches for i in b) == Counter(range(n))
        assert all(1 <= len(b) <= batch_size for b in batches)


def test_bucket_sampler_is_seeded_and_reshuffles_each_epoch():
    lengths = lengths_for(2000)
    a = helpers.BucketBatchSampler(lengths, 16, seed=3)
    b = helpers.BucketBatchSampler(lengths, 16, seed=3)
    first = list(a)
    assert first == list(b)  # same seed, same batches
    assert list(a) != first  # the next epoch is shuffled differently
    assert list(helpers.BucketBatchSampler(lengths, 16, seed=4)) != first


def test_bucket_sampler_shuffles_the_batches_not_only_their_contents():
    """Batches are sorted within a pool; their order must not be: consecutive batches get longer about as
    often as shorter, over an epoch, and the next epoch and another seed order them differently."""
    lengths = lengths_for(3200)  # batches of 32 in pools of 50: two pools

    def longest(batches):
        return [max(lengths[i] for i in b) for b in batches]

    sampler = helpers.BucketBatchSampler(lengths, 32, seed=0)
    for epoch in range(2):
        seq = longest(list(sampler))
        drops = sum(a > b for a, b in zip(seq, seq[1:]))
        assert 0.3 < drops / (len(seq) - 1) < 0.7, f"epoch {epoch}: {drops} drops in {len(seq) - 1}"
    first, second = (longest(list(helpers.BucketBatchSampler(lengths, 32, seed=s))) for s in (0, 1))
    assert first != second and sorted(first) != first


def test_bucket_sampler_batches_similar_lengths():
    lengths = lengths_for(3200)
    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
    bucketed = list(helpers.BucketBatchSampler(lengths, 32, seed=0))
    perm = torch.randperm(3200, generator=torch.Generator().manual_seed(0)).tolist()
    random_batches = [perm[i:i + 32] for i in range(0, 3200, 32)]
    assert padding(bucketed) < padding(random_batches) / 5
    ordered = list(helpers.BucketBatchSampler(lengths, 32, shuffle=False))
    flat = [lengths[i] for b in ordered for i in b]
    assert flat == sorted(flat)


def test_make_loader_yields_padded_batches_of_every_text(tiny_glove):
    vocab = helpers.build_vocab(tiny_glove)
    texts = [(i % 2, " ".join(["good"] * (1 + i % 7))) for i in range(50)]
    ds = helpers.EncodedDataset.from_dataset(texts, vocab, None)
    seen = 0
    for labels, tokens in helpers.make_loader(ds, 8, train=True):
        assert tokens.shape[0] == labels.shape[0] <= 8
        real = (tokens != helpers.PAD_IDX).sum(1)
        assert real.max() == tokens.shape[1] and (real >= 1).all()
        seen += len(labels)
    assert seen == 50


@pytest.mark.parametrize("n", [0, 1, 20, 101, 25_000])
def test_split_indices_is_a_seeded_95_5_partition(n):
    train, valid = helpers.split_indices(n, 0.95, seed=7)
    assert sorted(train + valid) == list(range(n))
    assert len(train) == round(n * 0.95)
    assert helpers.split_indices(n, 0.95, seed=7) == (train, valid)
    if n > 20:
        assert helpers.split_indices(n, 0.95, seed=8)[1] != valid
        assert train != sorted(train)  # shuffled, not the first 95%


def test_split_by_group_keeps_each_film_on_one_side():
    groups = [f"tt{(7 * i) % 61}" for i in range(1000)]  # 61 films, 16-17 reviews each, interleaved
    train, valid = helpers.split_by_group(groups, 0.95, seed=7)
    assert sorted(train + valid) == list(range(1000))
    assert not {groups[i] for i in train} & {groups[i] for i in valid}
    assert 50 <= len(valid) <= 50 + 17  # whole films until 5% is reached
    assert helpers.split_by_group(groups, 0.95, seed=7) == (train, valid)
    assert helpers.split_by_group(groups, 0.95, seed=8)[1] != valid
    reordered = groups[::-1]  # the same films in another order: the same films held out
    assert {reordered[i] for i in helpers.split_by_group(reordered, 0.95, seed=7)[1]} == {groups[i] for i in valid}


def test_make_splits_shuffles_only_training(tiny_glove):
    vocab = helpers.build_vocab(tiny_glove)
    data = [(i % 2, " ".join(["good"] * (1 + (7 * i) % 13))) for i in range(200)]
    _, loaders = helpers.make_splits(data, data[:60], vocab, max_len=20, batch_size=8)
    for name in ("valid", "test"):  # the same batches every time, shortest first
        first = [b.tolist() for _, b in loaders[name]]
        assert first == [b.tolist() for _, b in loaders[name]]
        widths = [len(b[0]) for b in first]
        assert widths == sorted(widths), name
    assert [b.tolist() for _, b in loaders["train"]] != [b.tolist() for _, b in loaders["train"]]
