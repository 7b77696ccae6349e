"""Plausible wrong answers to notebook 01's exercises; its check cells must reject each (helpers.check_exercise).

A function named `<exercise>__<mistake>` is a wrong answer to `<exercise>`; its docstring says what is wrong.
"""
from collections import Counter


def reviews_per_rating__ratings_as_text(dataset):
    """the rating left as a string: '10' is not 10"""
    return dict(Counter(path.stem.split("_")[1] for path in dataset.files))


def reviews_per_rating__counts_the_ids(dataset):
    """the part before the underscore, the review's id, taken for its rating"""
    return dict(Counter(int(path.stem.split("_")[0]) for path in dataset.files))


def leaked__whole_items(train, test):
    """(label, text) items compared, so a text that comes back with another label is missed"""
    items = set(train)
    return [i for i, item in enumerate(test) if item in items]


def leaked__each_text_once(train, test):
    """a text that occurs twice in test counted once"""
    texts, found, out = {text for _, text in train}, set(), []
    for i, (_, text) in enumerate(test):
        if text in texts and text not in found:
            found.add(text)
            out.append(i)
    return out
