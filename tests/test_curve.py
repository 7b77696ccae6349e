"""Notebook 08's learning curve: which reviews a point trains on, how long it trains, that a point repeats whatever
ran before it, the bag of n-grams it is compared with, and how the seeds' runs are summed up.

Everything runs on tiny synthetic EncodedDatasets: review i of a pool is the one-word text [i + 2] (ids 0 and 1 are
<unk> and <pad>), so the reviews a draw returns name their own indices in the pool.
"""
import math
import random
import statistics

import pytest
import torch

import helpers
from kit_support import make_model

PAD = helpers.PAD_IDX
CPU = torch.device("cpu")
POOL = 400
FILMS = [f"tt{i % 61:07d}" for i in range(POOL)]  # 61 films, each reviewed 6-7 times, reviews of a film apart


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second thread only waits on the first, and on a loaded 2-core machine it made these tests
    ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_pool(n=POOL):
    return helpers.EncodedDataset([i % 2 for i in range(n)], [[i + 2] for i in range(n)])


def drawn(ds):
    """The pool indices of the reviews in ds (review i is the text [i + 2], label i % 2)."""
    idx = [int(t[0]) - 2 for t in ds.tokens]
    assert ds.labels == [i % 2 for i in idx], "each review keeps its own label"
    return idx


# ---------------------------------------------------------------------------
# draw_labelled: which reviews, and which of them validate
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("n", [60, 200, None])
def test_draw_labelled_with_films_keeps_each_film_on_one_side(n):
    for seed in range(3):
        train, valid = helpers.draw_labelled(make_pool(), FILMS, n, seed)
        t, v = drawn(train), drawn(valid)
        total = n or POOL
        assert len(t) + len(v) == len(set(t) | set(v)) == total, "exactly n different reviews, each on one side"
        assert not {FILMS[i] for i in t} & {FILMS[i] for i in v}, f"seed {seed}: a film on both sides"
        assert round(0.05 * total) <= len(v) < round(0.05 * total) + 7, "about 5%: whole films up to the 5%"
        if n is None:
            assert sorted(t + v) == list(range(POOL)), "n=None takes the whole pool"


def test_draw_labelled_without_films_splits_95_5_at_random():
    """Without films the split is split_indices': 190 and 10 of 200, disjoint; all 400: 380 and 20."""
    for seed in range(3):
        train, valid = helpers.draw_labelled(make_pool(), None, 200, seed)
        t, v = drawn(train), drawn(valid)
        assert (len(t), len(v)) == (190, 10)
        assert len(set(t) | set(v)) == 200
    train, valid = helpers.draw_labelled(make_pool(), None, None, 0)
    assert (len(train), len(valid)) == (380, 20)
    assert sorted(drawn(train) + drawn(valid)) == list(range(POOL))


def test_draw_labelled_draws_n_at_random_and_more_than_the_pool_is_the_pool():
    train, valid = helpers.draw_labelled(make_pool(), FILMS, 100, 0)
    chosen = drawn(train) + drawn(valid)
    assert max(chosen) > 200 and min(chosen) < 200, "drawn from the whole pool, not its first n reviews"
    train, valid = helpers.draw_labelled(make_pool(), FILMS, 10 * POOL, 0)
    assert sorted(drawn(train) + drawn(valid)) == list(range(POOL))


@pytest.mark.parametrize("films", [FILMS, None])
def test_draw_labelled_is_seeded(films):
    def draw(seed):
        train, valid = helpers.draw_labelled(make_pool(), films, 100, seed)
        return drawn(train), drawn(valid)

    torch.manual_seed(123)
    first = draw(0)
    torch.rand(1000)  # the global random state plays no part
    assert draw(0) == first
    other = draw(1)
    assert set(other[0] + other[1]) != set(first[0] + first[1]), "another seed draws other reviews"
    assert draw(2) != other


# ---------------------------------------------------------------------------
# curve_recipe: batch size and whole epochs
# ---------------------------------------------------------------------------
def test_curve_recipe_batch_size_grows_with_the_reviews():
    sizes = {n: helpers.curve_recipe(n, 100)[0] for n in (1, 500, 1_000, 1_001, 4_750, 5_000, 5_001, 23_750)}
    assert sizes == {1: 16, 500: 16, 1_000: 16, 1_001: 32, 4_750: 32, 5_000: 32, 5_001: 64, 23_750: 64}


@pytest.mark.parametrize("n_train", [1, 15, 16, 17, 95, 237, 950, 1_000, 1_001, 2_375, 5_000, 5_001, 9_500, 23_750])
def test_curve_recipe_takes_the_fewest_whole_epochs_that_reach_min_steps(n_train):
    for min_steps in (1, 7, 40, 200, 201, 1_000):
        batch_size, epochs = helpers.curve_recipe(n_train, min_steps)
        per_epoch = math.ceil(n_train / batch_size)  # the loader's batches, a short last one included
        assert epochs * per_epoch >= min_steps, (n_train, min_steps, batch_size, epochs)
        assert (epochs - 1) * per_epoch < min_steps, (n_train, min_steps, batch_size, epochs)


def test_curve_recipe_by_hand_and_against_the_loader():
    """950 reviews: 60 batches of 16 an epoch, so 200 steps take 4 epochs (240 steps); 4,750: 149 batches of 32,
    2 epochs; 23,750: 372 batches of 64, one epoch. The loader makes as many batches as the recipe counts."""
    assert helpers.curve_recipe(950, 200) == (16, 4)
    assert helpers.curve_recipe(4_750, 200) == (32, 2)
    assert helpers.curve_recipe(23_750, 200) == (64, 1)
    for n in (17, 950, 1_001):
        batch_size, _ = helpers.curve_recipe(n, 1)
        loader = helpers.make_loader(make_pool(n), batch_size, train=True)
        assert len(list(loader)) == math.ceil(n / batch_size)


# ---------------------------------------------------------------------------
# fine_tune_point: a point repeats, whatever ran before it
# ---------------------------------------------------------------------------
def toy_reviews(n, seed):
    """Separable texts of 6-12 words: a positive one holds word 8 somewhere, a negative one word 9; filler 2-7."""
    g = torch.Generator().manual_seed(seed)
    labels, texts = [], []
    for i in range(n):
        words = torch.randint(2, 8, (int(torch.randint(6, 13, (1,), generator=g)),), generator=g)
        words[int(torch.randint(len(words), (1,), generator=g))] = 8 + i % 2
        labels.append(i % 2)
        texts.append(words)
    return helpers.EncodedDataset(labels, texts)


@pytest.fixture(scope="module")
def toy():
    return toy_reviews(48, 0), toy_reviews(16, 1), helpers.make_loader(toy_reviews(32, 2), 32, train=False)


def point(model, toy, seed, min_steps=9, lr=1e-2):
    train, valid, test_loader = toy
    return helpers.fine_tune_point(model, train, valid, test_loader, lr, min_steps, CPU, seed)


def test_fine_tune_point_repeats_whatever_random_draws_ran_before(tiny_glove, toy):
    """Same start, same seed: the same trained weights and test accuracy, though other draws from the global
    random state happened in between (the point seeds its dropout itself). Another seed trains otherwise."""
    def run(seed, draws):
        model = make_model(tiny_glove, dropout=0.2)  # the same initial weights every time (seed 0)
        torch.rand(draws)  # what trained before: other draws from the global random state
        random.random()
        return point(model, toy, seed), model.state_dict()

    (r1, w1), (r2, w2) = run(0, 1), run(0, 977)
    assert r1["test_acc"] == r2["test_acc"] and r1["valid_acc"] == r2["valid_acc"]
    for name, w in w1.items():
        assert torch.equal(w2[name], w), f"{name}: the same seed trained other weights"
    _, w3 = run(1, 1)
    assert any(not torch.equal(w3[name], w) for name, w in w1.items()), "another seed, the same weights"


def test_fine_tune_point_trains_by_the_recipe_and_reports_the_kept_model(tiny_glove, toy):
    train, valid, test_loader = toy
    model = make_model(tiny_glove)
    r = point(model, toy, 0, min_steps=9)
    assert helpers.curve_recipe(len(train), 9) == (16, 3)  # 48 reviews: 3 batches of 16 an epoch
    assert r["epochs"] == 3 and 1 <= r["best_epoch"] <= r["epochs"]
    assert r["train_seconds"] >= 0
    # the returned accuracies are those of the model it leaves behind: the best epoch's
    assert r["test_acc"] == helpers.evaluate(model, test_loader, CPU)[1]
    assert r["valid_acc"] == helpers.evaluate(model, helpers.make_loader(valid, 256, train=False), CPU)[1]


def test_fine_tune_point_trains_the_bag_of_ngrams(toy):
    """The bag learns the toy task: one word decides the label."""
    torch.manual_seed(0)
    r = point(helpers.NgramBag(2, dim=4, buckets=256), toy, 0, min_steps=60, lr=5e-2)
    assert r["epochs"] == 20 and r["test_acc"] >= 0.9, r


# ---------------------------------------------------------------------------
# NgramBag: words and pairs of words, hashed; padding ignored
# ---------------------------------------------------------------------------
def bag_by_hand(bag, words):
    """The mean of the rows of the words and adjacent pairs ((a + 1) * 1,000,003 + b), modulo buckets, then the head."""
    ids = list(words) + [(a + 1) * 1_000_003 + b for a, b in zip(words, words[1:])]
    rows = bag.bag.weight[[i % bag.buckets for i in ids]]
    return bag.head(rows.mean(0))


def test_ngram_bag_pair_starting_with_unk_is_not_its_second_word():
    """<unk> is id 0: a pair (<unk>, w) must get a row of its own, not count w twice."""
    torch.manual_seed(0)
    bag = helpers.NgramBag(2, dim=4, buckets=2**18)
    w = 7
    got = bag(torch.tensor([[helpers.UNK_IDX, w]]))[0]
    twice = bag.head(bag.bag.weight[[helpers.UNK_IDX, w, w]].mean(0))
    assert not torch.allclose(got, twice)
    torch.testing.assert_close(got, bag_by_hand(bag, [helpers.UNK_IDX, w]))


def test_ngram_bag_is_the_mean_of_its_words_and_pairs_rows():
    torch.manual_seed(0)
    bag = helpers.NgramBag(2, dim=4, buckets=64)
    assert bag.config == dict(num_classes=2, dim=4, buckets=64)
    words = [5, 9, 7, 300_001]
    torch.testing.assert_close(bag(torch.tensor([words]))[0], bag_by_hand(bag, words))


def test_ngram_bag_ignores_padding():
    torch.manual_seed(0)
    bag = helpers.NgramBag(2, dim=4, buckets=64)
    alone = bag(torch.tensor([[5, 9, 7]]))
    padded = bag(torch.tensor([[5, 9, 7, PAD, PAD, PAD], [3, 4, 5, 6, 7, 8]]))
    torch.testing.assert_close(padded[:1], alone)
    torch.testing.assert_close(padded[1], bag_by_hand(bag, [3, 4, 5, 6, 7, 8]))


def test_ngram_bag_word_order_counts_through_the_pairs():
    """Swapping two words keeps the words' rows (their mean is the same) but changes the pairs, so the output."""
    torch.manual_seed(0)
    bag = helpers.NgramBag(2, dim=4, buckets=4096)
    for text, swapped in (([5, 9], [9, 5]), ([5, 9, 7], [9, 5, 7])):
        words = bag.bag.weight[text].mean(0), bag.bag.weight[swapped].mean(0)
        torch.testing.assert_close(words[0], words[1])  # the words alone cannot tell the two apart
        out = bag(torch.tensor([text, swapped]))
        assert not torch.allclose(out[0], out[1]), f"{text} and {swapped} give the same output"


def test_ngram_bag_hashes_every_id_into_its_buckets():
    torch.manual_seed(0)
    bag = helpers.NgramBag(2, dim=4, buckets=16)
    seen = []
    bag.bag.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    words = torch.tensor([[3, 40_000, 399_999, 17, 2]])
    out = bag(words)
    assert 0 <= seen[0].min() and seen[0].max() < 16
    assert seen[0].shape == (1, 2 * words.shape[1] - 1), "each word and each adjacent pair"
    # ids that differ by multiples of the bucket count share the buckets: words, and so pairs too
    torch.testing.assert_close(bag(words % 16 + 16 * torch.tensor([[1, 0, 5, 2, 0]])), out)


# ---------------------------------------------------------------------------
# curve_summary and plot_curve
# ---------------------------------------------------------------------------
def test_curve_summary_mean_sample_spread_and_count_in_points():
    rows = [dict(start="GloVe", labels=100, test_acc=a, seed=s) for s, a in enumerate((0.80, 0.82, 0.87))]
    rows += [dict(start="GloVe", labels=400, test_acc=0.9, seed=0),
             dict(start="bag of n-grams", labels=100, test_acc=0.7, seed=0),
             dict(start="bag of n-grams", labels=100, test_acc=0.75, seed=1)]
    summary = helpers.curve_summary(rows)
    assert set(summary) == {("GloVe", 100), ("GloVe", 400), ("bag of n-grams", 100)}
    mean, spread, runs = summary["GloVe", 100]
    assert runs == 3 and mean == pytest.approx(83.0)
    assert spread == pytest.approx(math.sqrt((3 ** 2 + 1 ** 2 + 4 ** 2) / 2)), "the sample standard deviation"
    assert summary["GloVe", 400] == (pytest.approx(90.0), 0.0, 1), "one run: no spread"
    assert summary["bag of n-grams", 100] == (pytest.approx(72.5), pytest.approx(statistics.stdev([70, 75])), 2)


def test_plot_curve_draws_each_start_against_its_sorted_label_counts():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    summary = {("GloVe", 1_000): (85.0, 1.0, 3), ("GloVe", 100): (70.0, 3.0, 3), ("bag", 100): (60.0, 0.5, 3),
               ("bag", 1_000): (80.0, 2.0, 3)}
    fig = helpers.plot_curve(summary, "test")
    try:
        bars = fig.axes[0].containers
        assert [c.get_label() for c in bars] == ["GloVe", "bag"]
        for c, name in zip(bars, ["GloVe", "bag"]):
            x, y = c.lines[0].get_data()
            assert list(x) == [100, 1_000] and list(y) == [summary[name, 100][0], summary[name, 1_000][0]]
    finally:
        plt.close(fig)
