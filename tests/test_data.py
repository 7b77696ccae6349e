"""Datasets (helpers.py 3) and safe extraction (helpers.py 2): the shipped samples and bad input."""
import io
import os
import tarfile
from pathlib import Path

import pytest

import helpers
from kit_support import imdb_members, leftovers, tar_bytes, write_imdb_tree

SAMPLES = helpers.SAMPLES_DIR

pytestmark = pytest.mark.usefixtures("kit_env")


# ---------------------------------------------------------------------------
# The shipped samples
# ---------------------------------------------------------------------------
def test_imdb_sample_reads_negatives_then_positives():
    for train, per_label in ((True, 500), (False, 200)):  # tools/make_samples.py's COUNTS
        ds = helpers.IMDBDataset(SAMPLES / "aclImdb", train=train)
        assert len(ds) == 2 * per_label and ds.pos_start == per_label
        assert ds.labels == [0] * per_label + [1] * per_label
        label, text = ds[0]
        assert label == 0 and isinstance(text, str) and len(text) > 20
        assert ds.files[0].parent.name == "neg" and ds.files[-1].parent.name == "pos"
        assert all(f.parent.parent.name == ("train" if train else "test") for f in ds.files)


def test_ag_news_sample_reads_labels_0_to_3_and_joins_title_and_text():
    ds = helpers.AGNewsDataset(SAMPLES / "ag_news_csv" / "train.csv")
    assert len(ds) == 1000 and set(ds.labels) == {0, 1, 2, 3}
    assert ds[0] == (1, "Lima gem ends LA drought Jose Lima came to the Los Angeles Dodgers in February as a "
                        "journeyman pitcher with a 71-77 win-loss record, a 5.13 ERA and a reputation as one of "
                        "baseball #39;s hot dogs.")
    assert (SAMPLES / "ag_news_csv" / "classes.txt").read_text().split() == ["World", "Sports", "Business",
                                                                             "Sci/Tech"]


def test_smoke_size_uses_the_samples_without_touching_data_dir(kit_env):
    assert helpers.imdb_root("smoke") == SAMPLES / "aclImdb"
    assert helpers.ag_news_root("smoke") == SAMPLES / "ag_news_csv"
    assert list(kit_env.iterdir()) == []


def test_ag_news_test_split_when_train_csv_is_missing(kit_env, monkeypatch):
    (kit_env / "ag").mkdir()
    (kit_env / "ag" / "test.csv").write_bytes((SAMPLES / "ag_news_csv" / "test.csv").read_bytes())
    monkeypatch.setenv("KIT_AG_NEWS", "test-split")
    train, test, what = helpers.ag_news_splits(kit_env / "ag")
    assert (len(train), len(test)) == (160, 40) and "test.csv only" in what
    assert not set(train.indices) & set(test.indices)
    monkeypatch.delenv("KIT_AG_NEWS")
    with pytest.raises(helpers.KitError, match="train.csv does not exist"):
        helpers.ag_news_splits(kit_env / "ag")


# ---------------------------------------------------------------------------
# IMDB bad input
# ---------------------------------------------------------------------------
def test_missing_imdb_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(helpers.KitError, match=r"does not exist.*imdb_root\(\)"):
        helpers.IMDBDataset(tmp_path / "nowhere")


def test_imdb_folder_without_pos_is_rejected(tmp_path):
    root = write_imdb_tree(tmp_path)
    for f in (root / "train" / "pos").iterdir():
        f.unlink()
    (root / "train" / "pos").rmdir()
    with pytest.raises(helpers.KitError, match=r"train/pos is missing.*aclImdb layout"):
        helpers.IMDBDataset(root)


def test_imdb_folder_with_no_reviews_is_rejected(tmp_path):
    root = write_imdb_tree(tmp_path)
    for f in (root / "test" / "neg").iterdir():
        f.unlink()
    with pytest.raises(helpers.KitError, match=r"test/neg is missing or holds no \.txt reviews"):
        helpers.IMDBDataset(root, train=False)


def test_empty_review_file_is_named(tmp_path):
    root = write_imdb_tree(tmp_path)
    bad = sorted((root / "train" / "neg").glob("*.txt"))[0]
    bad.write_text("  \n")
    ds = helpers.IMDBDataset(root)
    with pytest.raises(helpers.KitError, match=rf"{bad.name} is empty.*extract"):
        ds[0]
    assert ds[1][0] == 0


def test_review_that_is_not_utf8_is_named(tmp_path):
    root = write_imdb_tree(tmp_path)
    bad = sorted((root / "train" / "pos").glob("*.txt"))[1]
    bad.write_bytes(b"caf\xe9 au lait \xff\xfe")
    ds = helpers.IMDBDataset(root)
    with pytest.raises(helpers.KitError, match=rf"{bad.name} is not valid UTF-8 \(byte 3\)"):
        ds[ds.pos_start + 1]


# ---------------------------------------------------------------------------
# AG News bad input
# ---------------------------------------------------------------------------
def write_csv(tmp_path, content, name="train.csv"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_missing_ag_news_file_says_how_to_get_it(tmp_path):
    with pytest.raises(helpers.KitError, match=r"does not exist.*ag_news_root\(\)"):
        helpers.AGNewsDataset(tmp_path / "train.csv")


@pytest.mark.parametrize("row,shown", [
    ('"3","title only"', "'3', 'title only'"),
    ('"3","a","b","extra"', "'extra'"),
    ('"5","title","text"', "'5'"),
    ('"0","title","text"', "'0'"),
    ('"Sports","title","text"', "'Sports'"),
])
def test_ag_news_row_with_wrong_columns_or_class_names_the_row(tmp_path, row, shown):
    path = write_csv(tmp_path, f'"1","ok","fine"\n{row}\n"2","ok","fine"\n')
    with pytest.raises(helpers.KitError, match=r"row 2: expected 3 columns class,title,description with class 1-4"
                       ) as err:
        helpers.AGNewsDataset(path)
    assert shown in str(err.value)


def test_ag_news_empty_file_is_rejected(tmp_path):
    with pytest.raises(helpers.KitError, match="holds no rows"):
        helpers.AGNewsDataset(write_csv(tmp_path, ""))


def test_ag_news_non_utf8_is_rejected(tmp_path):
    with pytest.raises(helpers.KitError, match="not valid UTF-8"):
        helpers.AGNewsDataset(write_csv(tmp_path, b'"1","caf\xe9","x"\n'))


def test_ag_news_with_an_unclosed_quote_is_rejected_clearly(tmp_path):
    rows = '"1","fine","row"\n"2","broken,row\n' + '3,a,b\n' * 30_000  # the quote swallows the rest
    with pytest.raises(helpers.KitError, match=r"row 2: not readable as CSV.*damaged"):
        helpers.AGNewsDataset(write_csv(tmp_path, rows))


def test_ag_news_saved_with_a_byte_order_mark_still_reads(tmp_path):
    ds = helpers.AGNewsDataset(write_csv(tmp_path, '\ufeff"4","Chips","get faster"\n"1","Talks","resume"\n'))
    assert ds.labels == [3, 0] and ds[0][1] == "Chips get faster"


def test_ag_news_multiline_quoted_fields_are_one_row(tmp_path):
    ds = helpers.AGNewsDataset(write_csv(tmp_path, '"2","Two\nlines","with ""quotes"", commas"\n'))
    assert len(ds) == 1 and ds[0] == (1, 'Two\nlines with "quotes", commas')


# ---------------------------------------------------------------------------
# extract_tar: safe, all-or-nothing, once
# ---------------------------------------------------------------------------
def test_extract_tar_extracts_once(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_bytes(imdb_members()))
    dest = tmp_path / "out"
    root = helpers.extract_tar(archive, dest, "aclImdb")
    assert root == dest / "aclImdb"
    assert (root / "train" / "pos" / "0_7.txt").read_bytes() == b"A great movie, truly great."
    helpers.check_imdb_layout(root)
    archive.write_bytes(b"not read again")
    assert helpers.extract_tar(archive, dest, "aclImdb") == root  # already there: the archive is not opened
    assert leftovers(tmp_path) == []


def corrupt_cases():
    good = tar_bytes(imdb_members(filler=os.urandom(20_000)))
    flipped = bytearray(good)
    for i in range(len(good) // 3, len(good) // 3 + 64):
        flipped[i] ^= 0xFF
    return {"truncated": good[: len(good) // 2], "random bytes": os.urandom(5000),
            "flipped bytes": bytes(flipped), "empty": b""}


@pytest.mark.parametrize("kind", list(corrupt_cases()))
def test_corrupt_archive_leaves_nothing_half_extracted(tmp_path, kind):
    work = tmp_path / "work"
    work.mkdir()
    archive = work / "aclImdb_v1.tar.gz"
    archive.write_bytes(corrupt_cases()[kind])
    with pytest.raises(helpers.KitError, match=r"(?s)truncated or corrupt.*Delete it and download it again"):
        helpers.extract_tar(archive, work, "aclImdb")
    assert sorted(p.name for p in work.iterdir()) == ["aclImdb_v1.tar.gz"]


@pytest.mark.parametrize("members,links,bad", [
    ({"aclImdb/": None, "../evil.txt": b"x"}, {}, "../evil.txt"),
    ({"aclImdb/": None, "aclImdb/../../evil.txt": b"x"}, {}, "aclImdb/../../evil.txt"),
    ({"/tmp/evil.txt": b"x"}, {}, "/tmp/evil.txt"),
    ({"aclImdb/": None}, {"aclImdb/passwd": "/etc/passwd"}, "aclImdb/passwd"),
    ({"aclImdb/": None}, {"aclImdb/up": "../../.."}, "aclImdb/up"),
])
def test_archive_escaping_its_folder_is_refused(tmp_path, members, links, bad):
    work = tmp_path / "work"
    work.mkdir()
    archive = work / "a.tar.gz"
    archive.write_bytes(tar_bytes(members, links))
    with pytest.raises(helpers.KitError, match="unsafe member") as err:
        helpers.extract_tar(archive, work / "dest", "aclImdb")
    assert repr(bad) in str(err.value)
    assert not (tmp_path / "evil.txt").exists() and not (work / "evil.txt").exists()
    assert not (work / "dest" / "aclImdb").exists() and leftovers(work) == []


@pytest.fixture
def no_python_tar_filter(monkeypatch):
    """Python's own guard (tarfile's extraction filters) switched off, as on a Python without them:
    helpers.extract_tar then passes no filter, and tarfile extracts whatever the archive says."""
    if hasattr(tarfile, "data_filter"):
        monkeypatch.delattr(tarfile, "data_filter")
        # Python 3.14 applies the data filter when none is given; make the default "trust everything"
        monkeypatch.setattr(tarfile.TarFile, "extraction_filter", staticmethod(tarfile.fully_trusted_filter))


def tar_of(entries) -> bytes:
    """A .tar.gz of (name, kind, payload): kind file (payload bytes), dir, symlink or hardlink (payload: target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
            info.linkname = payload or ""
            tar.addfile(info)
    return buf.getvalue()


def escaping_archives(outside):
    """Archives whose members would land outside the extraction folder, each with the first such member.
    `outside` (a folder in tmp_path) is where absolute paths and links point: what escaped would be there."""
    top = ("aclImdb/", "dir", None)
    ok = ("aclImdb/train/ok.txt", "file", b"fine")
    return {
        "dotdot": ([top, ok, ("../evil.txt", "file", b"x")], "../evil.txt"),
        "dotdot inside": ([top, ok, ("aclImdb/../../evil.txt", "file", b"x")], "aclImdb/../../evil.txt"),
        "absolute": ([top, ok, (str(outside / "absolute.txt"), "file", b"x")], str(outside / "absolute.txt")),
        "symlink out, then a file through it": ([top, ("aclImdb/out", "symlink", str(outside)),
                                                 ("aclImdb/out/through.txt", "file", b"x")], "aclImdb/out"),
        "relative symlink": ([top, ok, ("aclImdb/up", "symlink", "../../..")], "aclImdb/up"),
        "hard link": ([top, ok, ("aclImdb/secret", "hardlink", str(outside / "secret.txt"))], "aclImdb/secret"),
    }


def files_under(folder):
    """Every file, folder and link under folder (links not followed), relative to it."""
    found = []
    for root, dirs, files in os.walk(folder):
        found += [os.path.relpath(os.path.join(root, n), folder) for n in dirs + files]
    return sorted(found)


@pytest.mark.parametrize("case", list(escaping_archives(Path())))
def test_the_kits_own_check_refuses_escaping_members(tmp_path, no_python_tar_filter, case):
    base = tmp_path / "case"  # everything the test makes, and anything that escaped, is in here
    outside = base / "outside"
    outside.mkdir(parents=True)
    (outside / "secret.txt").write_bytes(b"secret")
    entries, bad = escaping_archives(outside)[case]
    work = base / "work"
    (work / "dest").mkdir(parents=True)
    archive = work / "a.tar.gz"
    archive.write_bytes(tar_of(entries))
    with pytest.raises(helpers.KitError, match="unsafe member") as err:
        helpers.extract_tar(archive, work / "dest", "aclImdb")
    assert repr(bad) in str(err.value)
    assert files_under(base) == ["outside", "outside/secret.txt", "work", "work/a.tar.gz", "work/dest"]
    assert (outside / "secret.txt").read_bytes() == b"secret"


def test_archive_without_the_expected_top_folder(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    archive = work / "a.tar.gz"
    archive.write_bytes(tar_bytes({"other/x.txt": b"x"}))
    with pytest.raises(helpers.KitError, match="no top folder aclImdb/"):
        helpers.extract_tar(archive, work, "aclImdb")
    assert sorted(p.name for p in work.iterdir()) == ["a.tar.gz"]


def test_extract_tar_creates_a_missing_destination(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_bytes(imdb_members()))
    assert helpers.extract_tar(archive, tmp_path / "new" / "dir", "aclImdb").is_dir()


def test_imdb_root_uses_already_extracted_data(kit_env, monkeypatch):
    write_imdb_tree(kit_env)
    monkeypatch.setattr(helpers, "fetch", lambda *a, **k: pytest.fail("must not download"))
    assert helpers.imdb_root("quick") == kit_env / "aclImdb"


def test_imdb_root_rejects_a_broken_extracted_folder(kit_env, monkeypatch):
    (write_imdb_tree(kit_env) / "test" / "pos" / "0_7.txt").unlink()
    (kit_env / "aclImdb" / "test" / "pos" / "1_7.txt").unlink()
    monkeypatch.setattr(helpers, "fetch", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(helpers.KitError, match="test/pos is missing or holds no .txt reviews"):
        helpers.imdb_root("quick")
