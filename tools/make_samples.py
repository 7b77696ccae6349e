"""Cut the IMDB samples the kit ships (data/samples/aclImdb) from the Large Movie Review Dataset.

    python tools/make_samples.py SOURCE             # SOURCE: aclImdb_v1.tar.gz, or an extracted aclImdb/ folder
    python tools/make_samples.py SOURCE --check     # change nothing; exit 1 if data/samples/aclImdb differs
    python tools/regenerate.py --colab              # then rebuild what is derived, the Colab copies too

The rule, the same for each of train/neg, train/pos, test/neg and test/pos:
  1. candidates: the split's reviews of that label with at most MAX_TOKENS tokens (helpers.tokenize,
     as the notebooks count them), so that no sample is cut at the smoke size's max_len, and whose
     text occurs only once in all 50,000 labelled reviews (IMDB repeats a few hundred texts; a repeat
     could land in both train and test);
  2. sorted by file name's id, then random.Random(f"{SEED}/{split}/{label}").sample(candidates, n)
     with n = COUNTS[split].
The chosen files are copied byte for byte, under their own names (<id>_<rating>.txt), and each split gets
urls_neg.txt and urls_pos.txt in the archive's form (line i: the IMDB page of review i's film), with the lines
of the reviews not chosen left empty, so that notebook 02b can split the samples by film. Anything else in
data/samples/aclImdb is removed first. The AG News samples (data/samples/ag_news_csv) are
not touched.
"""
import argparse
import random
import re
import shutil
import sys
import tarfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from helpers import tokenize  # noqa: E402

OUT = ROOT / "data" / "samples" / "aclImdb"
SEED = 2011  # the year of Maas et al.; any fixed number would do
MAX_TOKENS = 128  # helpers.SIZES["smoke"]["max_len"]
COUNTS = {"train": 500, "test": 200}  # per label: 1,000 train and 400 test reviews
NAME = re.compile(r"(?:^|/)(train|test)/(neg|pos)/(\d+_\d+\.txt)$")  # train/unsup is not labelled: skipped
URLS = re.compile(r"(?:^|/)(train|test)/urls_(neg|pos)\.txt$")


def read_source(source: Path) -> tuple[dict, dict]:
    """({(split, label): {file name: bytes}}, {(split, label): lines of urls_<label>.txt}) for the 50,000
    labelled reviews of an aclImdb tarball or folder."""
    reviews = {(s, lab): {} for s in COUNTS for lab in ("neg", "pos")}
    urls = {}

    def take(name: str, read) -> None:
        if m := NAME.search(name):
            reviews[m[1], m[2]][m[3]] = read()
        elif m := URLS.search(name):
            urls[m[1], m[2]] = read().decode("utf-8").splitlines()

    if source.is_dir():
        for path in source.rglob("*.txt"):
            take(path.relative_to(source).as_posix(), path.read_bytes)
    else:
        with tarfile.open(source) as tar:
            for member in tar:
                if member.isfile():
                    take(member.name, tar.extractfile(member).read)
    counts = {k: len(v) for k, v in reviews.items()}
    if any(n != 12_500 for n in counts.values()):
        sys.exit(f"{source}: expected 12,500 reviews in each of train|test/neg|pos, found {counts}")
    if sorted(urls) != sorted(reviews):
        sys.exit(f"{source}: expected urls_neg.txt and urls_pos.txt in train/ and test/, found {sorted(urls)}")
    return reviews, urls


def sample_urls(chosen: dict, urls: dict) -> dict:
    """{"<split>/urls_<label>.txt": bytes}: the archive's lines for the chosen reviews, the others empty."""
    out = {}
    for (split, label), files in chosen.items():
        ids = {int(name.split("_")[0]) for name in files}
        lines = [line if i in ids else "" for i, line in enumerate(urls[split, label])]
        out[f"{split}/urls_{label}.txt"] = ("\n".join(lines) + "\n").encode("utf-8")
    return out


def choose(reviews: dict) -> dict:
    """{(split, label): {file name: bytes}}: the samples, by the rule in the docstring."""
    seen = Counter(text for files in reviews.values() for text in files.values())
    chosen = {}
    for (split, label), files in reviews.items():
        candidates = sorted((name for name, text in files.items()
                             if seen[text] == 1 and len(tokenize(text.decode("utf-8"))) <= MAX_TOKENS),
                            key=lambda name: int(name.split("_")[0]))
        picked = random.Random(f"{SEED}/{split}/{label}").sample(candidates, COUNTS[split])
        chosen[split, label] = {name: files[name] for name in picked}
    return chosen


def differences(chosen: dict, urls: dict, out: Path) -> list:
    """What in `out` is not exactly the chosen samples and their urls files."""
    want = {f"{s}/{lab}/{name}": text for (s, lab), files in chosen.items() for name, text in files.items()}
    want |= sample_urls(chosen, urls)
    have = {p.relative_to(out).as_posix(): p for p in out.rglob("*") if p.is_file()} if out.exists() else {}
    return sorted([f"missing {k}" for k in want.keys() - have.keys()]
                  + [f"extra {k}" for k in have.keys() - want.keys()]
                  + [f"changed {k}" for k in want.keys() & have.keys() if have[k].read_bytes() != want[k]])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="aclImdb_v1.tar.gz (or any tarball of aclImdb/), or the aclImdb folder")
    ap.add_argument("--out", type=Path, default=OUT, help="where the aclImdb samples go (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if OUT differs from the rule's choice")
    args = ap.parse_args(argv)
    reviews, urls = read_source(args.source)
    chosen = choose(reviews)
    diff = differences(chosen, urls, args.out)
    if args.check:
        for line in diff[:20]:
            print(line, file=sys.stderr)
        return 1 if diff else 0
    if args.out.exists():
        shutil.rmtree(args.out)
    for (split, label), files in chosen.items():
        folder = args.out / split / label
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_bytes(text)
    for name, text in sample_urls(chosen, urls).items():
        (args.out / name).write_bytes(text)
    total = sum(map(len, chosen.values()))
    print(f"wrote {total:,} reviews to {args.out} ({', '.join(f'{s}/{lab} {len(f)}' for (s, lab), f in chosen.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
