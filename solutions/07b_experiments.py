"""Reference solutions to the exercises at the end of notebooks/07b_experiments.ipynb."""
import math
import statistics


def seeds_needed(diffs):
    """The fewest seeds (at least 2) at which mean(diffs) would be more than 2 standard errors from zero."""
    mean, spread = abs(statistics.mean(diffs)), statistics.stdev(diffs)
    if mean == 0:
        return math.inf
    n = 2
    while mean <= 2 * spread / math.sqrt(n):  # the standard error shrinks as 1/sqrt(n)
        n += 1
    return n


def cheapest_near_best(cells, points=1.0):
    """The cell with the fewest training seconds among those within `points` of the best test accuracy."""
    best = max(c["test_acc"] for c in cells)
    return min((c for c in cells if 100 * (best - c["test_acc"]) <= points), key=lambda c: c["seconds"])
