"""Plausible wrong answers to notebook 07b's exercises; its check cells must reject each (helpers.check_exercise)."""
import math
import statistics


def seeds_needed__at_the_edge(diffs):
    """stops when the mean reaches two standard errors; 'outside noise' needs more than two"""
    mean, spread = abs(statistics.mean(diffs)), statistics.stdev(diffs)
    if mean == 0:
        return math.inf
    n = 2
    while mean < 2 * spread / math.sqrt(n):
        n += 1
    return n


def seeds_needed__population_spread(diffs):
    """statistics.pstdev (divides by n), not the sample spread the notebook's gains use"""
    mean, spread = abs(statistics.mean(diffs)), statistics.pstdev(diffs)
    if mean == 0:
        return math.inf
    n = 2
    while mean <= 2 * spread / math.sqrt(n):
        n += 1
    return n


def seeds_needed__gains_only(diffs):
    """a negative mean never counted as outside noise: a loss is as measurable as a gain"""
    mean, spread = statistics.mean(diffs), statistics.stdev(diffs)
    if mean <= 0:
        return math.inf
    n = 2
    while mean <= 2 * spread / math.sqrt(n):
        n += 1
    return n


def cheapest_near_best__the_best(cells, points=1.0):
    """the most accurate cell, whatever it cost"""
    return max(cells, key=lambda c: c["test_acc"])


def cheapest_near_best__cheapest_overall(cells, points=1.0):
    """the cheapest cell, however far from the best"""
    return min(cells, key=lambda c: c["seconds"])
