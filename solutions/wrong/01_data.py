"""Plausible wrong answers to notebook 01's exercises; its check cells must reject each (helpers.check_exercise).

A function named `<exercise>__<mistake>` is a wrong answer to `<exercise>`; its docstring says what is wrong.
"""
from collections import Counter

from torch.utils.data import Dataset

import helpers as H


def reviews_per_rating__ratings_as_text(dataset):
    """the rating left as a string: '10' is not 10"""
    return dict(Counter(path.stem.split("_")[1] for path in dataset.files))


def reviews_per_rating__counts_the_ids(dataset):
    """the part before the underscore, the review's id, taken for its rating"""
    return dict(Counter(int(path.stem.split("_")[0]) for path in dataset.files))


class AGNewsTitles__classes_1_to_4(Dataset):
    """the CSV's classes 1-4 kept as labels, not shifted to 0-3"""

    def __init__(self, csv_path):
        self.rows = [(int(cls), title) for cls, title, _ in H.read_ag_news_rows(csv_path)]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


class AGNewsTitles__the_description(Dataset):
    """the description kept instead of the title"""

    def __init__(self, csv_path):
        self.rows = [(int(cls) - 1, description) for cls, _, description in H.read_ag_news_rows(csv_path)]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]
