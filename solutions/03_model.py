"""Reference solutions for the exercises at the end of notebooks/03_model.ipynb."""
import torch


def valid_nheads(d_model, max_heads=10):
    """The head counts 1..max_heads that nn.MultiheadAttention accepts for embed_dim=d_model, in increasing order."""
    # Each head works on d_model / nhead dimensions, so nhead must divide d_model: 50 splits into 1, 2, 5 or 10
    # heads, not 3 (PyTorch says "embed_dim must be divisible by num_heads").
    return [h for h in range(1, max_heads + 1) if d_model % h == 0]


def masked_max(h, pad_mask):
    """Max over the sequence of h (batch, seq, dim), counting only positions where pad_mask is False."""
    # -inf can never be the max, so padding never wins, whatever the sign of the real values.
    return h.masked_fill(pad_mask.unsqueeze(-1), float("-inf")).max(dim=1).values
