"""Reference solutions for the exercises at the end of notebooks/01_data.ipynb."""
from collections import Counter

from torch.utils.data import Dataset

import helpers as H


def reviews_per_rating(dataset):
    """{star rating: number of reviews} from the names of dataset.files (`<id>_<rating>.txt`)."""
    # The stem of 7_10.txt is "7_10"; the rating is what follows the underscore. IMDB has no 5s or 6s:
    # its authors left the middling reviews out, so every review is clearly negative or clearly positive.
    return dict(sorted(Counter(int(path.stem.split("_")[1]) for path in dataset.files).items()))


class AGNewsTitles(Dataset):
    """AG News rows of a `class,title,description` CSV; an item is (label 0-3, title)."""

    def __init__(self, csv_path):
        self.labels, self.titles = [], []
        for cls, title, _description in H.read_ag_news_rows(csv_path):
            self.labels.append(int(cls) - 1)  # classes 1-4 become labels 0-3
            self.titles.append(title)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.labels[i], self.titles[i]
