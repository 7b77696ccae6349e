"""Reference solutions for the exercises at the end of notebooks/02b_batches_and_splits.ipynb."""
import torch

import helpers as H


def padding_token(collate, vocab):
    """The token (a string) that `collate` puts after the end of a short text."""
    long, short = torch.tensor(vocab(["a", "fine", "film"])), torch.tensor(vocab(["dull"]))
    _, padded = collate([(0, long), (1, short)])
    return vocab.itos[padded[1, len(short)].item()]  # the first place after the short text's end
