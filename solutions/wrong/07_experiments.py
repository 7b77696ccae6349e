"""Plausible wrong answers to notebook 07's exercises; its check cells must reject each (helpers.check_exercise)."""
import math
import statistics

import helpers as H


def seeds_needed__at_the_edge(diffs):
    """stops when the mean reaches two standard errors; 'outside noise' needs more than two"""
    mean, spread = abs(statistics.mean(diffs)), statistics.stdev(diffs)
    if mean == 0:
        return math.inf
    n = 2
    while mean < 2 * spread / math.sqrt(n):
        n += 1
    return n


def seeds_needed__population_spread(diffs):
    """statistics.pstdev (divides by n), not the sample spread the notebook's gains use"""
    mean, spread = abs(statistics.mean(diffs)), statistics.pstdev(diffs)
    if mean == 0:
        return math.inf
    n = 2
    while mean <= 2 * spread / math.sqrt(n):
        n += 1
    return n


def seeds_needed__gains_only(diffs):
    """a negative mean never counted as outside noise: a loss is as measurable as a gain"""
    mean, spread = statistics.mean(diffs), statistics.stdev(diffs)
    if mean <= 0:
        return math.inf
    n = 2
    while mean <= 2 * spread / math.sqrt(n):
        n += 1
    return n


def cheapest_near_best__the_best(cells, points=1.0):
    """the most accurate cell, whatever it cost"""
    return max(cells, key=lambda c: c["test_acc"])


def cheapest_near_best__cheapest_overall(cells, points=1.0):
    """the cheapest cell, however far from the best"""
    return min(cells, key=lambda c: c["seconds"])


def mask_rate_loss__ignores_p(p, texts, valid, targets, log_freq, seed):
    """the notebook's own rate, CFG["mlm_p"], instead of p"""
    cfg = H.run_size()[1]
    return _pretrain(cfg["mlm_p"], texts, valid, targets, log_freq, seed)


def mask_rate_loss__unseeded_body(p, texts, valid, targets, log_freq, seed):
    """the body made before the seed is set"""
    cfg, glove = H.run_size()[1], H.load_glove()
    body = H.TextClassifier(H.embedding_matrix(glove), len(H.IMDB_CLASSES), max_len=cfg["max_len"])
    H.set_seed(seed)
    return _fit(body, p, texts, valid, targets, log_freq, seed)


def _pretrain(p, texts, valid, targets, log_freq, seed):
    cfg, glove = H.run_size()[1], H.load_glove()
    H.set_seed(seed)
    body = H.TextClassifier(H.embedding_matrix(glove), len(H.IMDB_CLASSES), max_len=cfg["max_len"])
    return _fit(body, p, texts, valid, targets, log_freq, seed)


def _fit(body, p, texts, valid, targets, log_freq, seed):
    cfg, device = H.run_size()[1], H.get_device()
    history = H.pretrain_masked_words(H.MaskedWords(body, targets, log_freq, p),
                                      H.make_loader(texts, cfg["batch_size"], train=True, seed=seed),
                                      H.make_loader(valid, cfg["batch_size"], train=False), 1, cfg["mlm_lr"], device)
    return history["valid_loss"][-1]
