"""Plausible wrong answers to notebook 03's exercises; its check cells must reject each (helpers.check_exercise)."""


def valid_nheads__stops_before_max(d_model, max_heads=10):
    """range(1, max_heads) leaves out max_heads itself"""
    return [h for h in range(1, max_heads) if d_model % h == 0]


def valid_nheads__powers_of_two(d_model, max_heads=10):
    """only powers of two, as if heads had to split evenly in halves"""
    return [h for h in (1, 2, 4, 8) if h <= max_heads and d_model % h == 0]


def masked_max__padding_counts(h, pad_mask):
    """the max over every position, padding included"""
    return h.max(dim=1).values


def masked_max__fills_with_zero(h, pad_mask):
    """padding filled with 0, which beats every negative value"""
    return h.masked_fill(pad_mask.unsqueeze(-1), 0.0).max(dim=1).values
