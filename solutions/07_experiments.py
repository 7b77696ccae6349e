"""Reference solutions to the exercises at the end of notebooks/07_experiments.ipynb."""


def pretraining_gain(grid, start, regime):
    """Test accuracy of (start, regime) minus that of ("scratch", regime), in points (a float)."""
    acc = {(r["start"], r["regime"]): r["test_acc"] for r in grid}
    return 100 * (acc[start, regime] - acc["scratch", regime])


def cheapest_near_best(grid, points=1.0):
    """The cell with the fewest training seconds among those within `points` of the best test accuracy."""
    best = max(r["test_acc"] for r in grid)
    return min((r for r in grid if 100 * (best - r["test_acc"]) <= points), key=lambda r: r["seconds"])
