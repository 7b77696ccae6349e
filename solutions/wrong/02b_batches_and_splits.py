"""Plausible wrong answers to notebook 02b's exercises; its check cells must reject each (helpers.check_exercise)."""
import torch

import helpers as H


def padding_token__assumes_pad(collate, vocab):
    """the padding assumed to be <pad>, not read from the batch"""
    return H.PAD


def padding_token__reads_the_last_position(collate, vocab):
    """the last position of the longest text read, which is a word, not padding"""
    long, short = torch.tensor(vocab(["a", "fine", "film"])), torch.tensor(vocab(["dull"]))
    _, padded = collate([(0, long), (1, short)])
    return vocab.itos[padded[0, -1].item()]


def padding_token__smallest_index(collate, vocab):
    """the smallest index in the batch taken for the padding, which holds only while padding sorts below every word"""
    long, short = torch.tensor(vocab(["a", "fine", "film"])), torch.tensor(vocab(["dull"]))
    _, padded = collate([(0, long), (1, short)])
    return vocab.itos[padded.min().item()]
