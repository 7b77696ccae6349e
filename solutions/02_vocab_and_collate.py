"""Reference solutions for the exercises at the end of notebooks/02_vocab_and_collate.ipynb."""
from collections import Counter

import helpers as H


def unknown_words(texts, vocab, k):
    """The k most frequent tokens of `texts` not in `vocab`: (token, count) pairs, most frequent first."""
    counts = Counter(token for text in texts for token in H.tokenize(text) if token not in vocab)
    return counts.most_common(k)


def share_dropped(texts, max_len):
    """The share of all the tokens of `texts` that a cut to max_len tokens leaves out."""
    lengths = [len(H.tokenize(text)) for text in texts]
    return sum(max(n - max_len, 0) for n in lengths) / sum(lengths)  # weighted by length: a share of tokens
