"""Plausible wrong answers to notebook 02's exercises; its check cells must reject each (helpers.check_exercise)."""
from collections import Counter

import helpers as H


def unknown_words__split_on_spaces(texts, vocab, k):
    """text.split() instead of the tokenizer: 'Zxq' and 'film.' are not the vocabulary's tokens"""
    counts = Counter(word for text in texts for word in text.split() if word not in vocab)
    return counts.most_common(k)


def unknown_words__texts_not_occurrences(texts, vocab, k):
    """the texts a word occurs in counted, not its occurrences"""
    counts = Counter(token for text in texts for token in set(H.tokenize(text)) if token not in vocab)
    return counts.most_common(k)


def share_dropped__share_of_reviews(texts, max_len):
    """the share of texts longer than max_len, not the share of tokens"""
    return sum(len(H.tokenize(t)) > max_len for t in texts) / len(texts)


def share_dropped__mean_of_shares(texts, max_len):
    """the mean of each text's share dropped: a short text weighs as much as a long one"""
    shares = [max(len(H.tokenize(t)) - max_len, 0) / max(len(H.tokenize(t)), 1) for t in texts]
    return sum(shares) / len(shares)
