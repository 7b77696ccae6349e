"""Plausible wrong answers to notebook 08's exercises; its check cells must reject each (helpers.check_exercise)."""
import copy

import helpers as H


def gain_in_spreads__smaller_spread(summary, start, baseline, labels):
    """divided by the smaller of the two spreads, which flatters the difference"""
    (m_start, s_start, _), (m_base, s_base, _) = summary[start, labels], summary[baseline, labels]
    spread = min(s_start, s_base)
    return (m_start - m_base) / spread if spread else float("inf")


def gain_in_spreads__absolute(summary, start, baseline, labels):
    """the size of the difference without its sign"""
    (m_start, s_start, _), (m_base, s_base, _) = summary[start, labels], summary[baseline, labels]
    difference, spread = abs(m_start - m_base), max(s_start, s_base)
    if difference == 0:
        return 0.0
    return difference / spread if spread else float("inf")


def gain_in_spreads__unsigned_infinity(summary, start, baseline, labels):
    """+inf for any difference with no spread, even when start is behind"""
    (m_start, s_start, _), (m_base, s_base, _) = summary[start, labels], summary[baseline, labels]
    spread = max(s_start, s_base)
    if m_start == m_base:
        return 0.0
    return (m_start - m_base) / spread if spread else float("inf")


def curve_point__head_before_seed(start, pool, movies, n, seed, test_loader, cfg, device):
    """the fresh head made before the seed is set"""
    train_ds, valid_ds = H.draw_labelled(pool, movies, n, seed)
    model = H.unfreeze(H.replace_head(copy.deepcopy(start), len(H.IMDB_CLASSES)), H.training_words(train_ds))
    return H.fine_tune_point(model, train_ds, valid_ds, test_loader, cfg["finetune_lr"], cfg["curve_min_steps"],
                             device, seed)["test_acc"]


def curve_point__random_split(start, pool, movies, n, seed, test_loader, cfg, device):
    """the labelled reviews split at random, not by film"""
    train_ds, valid_ds = H.draw_labelled(pool, None, n, seed)
    H.set_seed(seed)
    model = H.unfreeze(H.replace_head(copy.deepcopy(start), len(H.IMDB_CLASSES)), H.training_words(train_ds))
    return H.fine_tune_point(model, train_ds, valid_ds, test_loader, cfg["finetune_lr"], cfg["curve_min_steps"],
                             device, seed)["test_acc"]
