"""Plausible wrong answers to notebook 02's exercises; its check cells must reject each (helpers.check_exercise)."""
import torch
from torch.nn.utils.rnn import pad_sequence

import helpers as H


def course_collate__pads_with_pad(batch):
    """the kit's collate (padding with <pad>), not the course's"""
    labels = torch.tensor([label for label, _ in batch], dtype=torch.long)
    return labels, pad_sequence([t for _, t in batch], batch_first=True, padding_value=H.PAD_IDX)


def course_collate__time_first(batch):
    """pad_sequence's default layout, (longest, batch), not batch_first"""
    labels = torch.tensor([label for label, _ in batch], dtype=torch.long)
    return labels, pad_sequence([t for _, t in batch])


def padding_token__assumes_pad(collate, vocab):
    """the padding assumed to be <pad>, not read from the batch"""
    return H.PAD


def padding_token__reads_the_last_position(collate, vocab):
    """the last position of the longest text read, which is a word, not padding"""
    long, short = torch.tensor(vocab(["a", "fine", "film"])), torch.tensor(vocab(["dull"]))
    _, padded = collate([(0, long), (1, short)])
    return vocab.itos[padded[0, -1].item()]


def share_dropped__share_of_reviews(texts, max_len):
    """the share of texts longer than max_len, not the share of tokens"""
    return sum(len(H.tokenize(t)) > max_len for t in texts) / len(texts)


def share_dropped__mean_of_shares(texts, max_len):
    """the mean of each text's share dropped: a short text weighs as much as a long one"""
    shares = [max(len(H.tokenize(t)) - max_len, 0) / max(len(H.tokenize(t)), 1) for t in texts]
    return sum(shares) / len(shares)
