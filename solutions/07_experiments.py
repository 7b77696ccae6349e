"""Reference solutions to the exercises at the end of notebooks/07_experiments.ipynb."""
import math
import statistics

import helpers as H


def seeds_needed(diffs):
    """The fewest seeds (at least 2) at which mean(diffs) would be more than 2 standard errors from zero."""
    mean, spread = abs(statistics.mean(diffs)), statistics.stdev(diffs)
    if mean == 0:
        return math.inf
    n = 2
    while mean <= 2 * spread / math.sqrt(n):  # the standard error shrinks as 1/sqrt(n)
        n += 1
    return n


def cheapest_near_best(cells, points=1.0):
    """The cell with the fewest training seconds among those within `points` of the best test accuracy."""
    best = max(c["test_acc"] for c in cells)
    return min((c for c in cells if 100 * (best - c["test_acc"]) <= points), key=lambda c: c["seconds"])


def mask_rate_loss(p, texts, valid, targets, log_freq, seed):
    """Held-out masked-word loss after one epoch of pretraining a fresh body, hiding a share p of the targets."""
    cfg, device = H.run_size()[1], H.get_device()
    glove = H.load_glove()
    H.set_seed(seed)
    body = H.TextClassifier(H.embedding_matrix(glove), len(H.IMDB_CLASSES), max_len=cfg["max_len"])
    mlm = H.MaskedWords(body, targets, log_freq, p)
    history = H.pretrain_masked_words(mlm, H.make_loader(texts, cfg["batch_size"], train=True, seed=seed),
                                      H.make_loader(valid, cfg["batch_size"], train=False), 1, cfg["mlm_lr"], device)
    return history["valid_loss"][-1]
