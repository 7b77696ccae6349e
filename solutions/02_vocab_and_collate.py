"""Reference solutions for the exercises at the end of notebooks/02_vocab_and_collate.ipynb."""
import torch
from torch.nn.utils.rnn import pad_sequence

import helpers as H


def course_collate(batch):
    """(label, tokens) pairs -> labels, tokens padded by pad_sequence with its default padding value."""
    labels = torch.tensor([label for label, _ in batch], dtype=torch.long)
    tokens = pad_sequence([t for _, t in batch], batch_first=True)  # pads with 0: <unk> in our vocabulary
    return labels, tokens


def padding_token(collate, vocab):
    """The token (a string) that `collate` puts after the end of a short text."""
    long, short = torch.tensor(vocab(["a", "fine", "film"])), torch.tensor(vocab(["dull"]))
    _, padded = collate([(0, long), (1, short)])
    return vocab.itos[padded[1, len(short)].item()]  # the first place after the short text's end


def share_dropped(texts, max_len):
    """The share of all the tokens of `texts` that a cut to max_len tokens leaves out."""
    lengths = [len(H.tokenize(text)) for text in texts]
    return sum(max(n - max_len, 0) for n in lengths) / sum(lengths)  # weighted by length: a share of tokens
