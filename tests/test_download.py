"""Downloads (helpers.py 2) against a real HTTP server on 127.0.0.1: verify, resume, mirrors, failures."""
import hashlib
import os
import socket

import pytest

import helpers
from kit_support import imdb_members, leftovers, sha256, tar_bytes

pytestmark = pytest.mark.usefixtures("no_sleep")

PAYLOAD = os.urandom(300_000)  # several read chunks, so a dropped connection lands mid-file


def use_sources(monkeypatch, **sources):
    """Point helpers.SOURCES at test URLs: name=(urls, data) entries with the data's sha256."""
    table = {name.replace("__", "/").replace("_dot_", "."): dict(urls=urls, sha256=sha256(data))
             for name, (urls, data) in sources.items()}
    monkeypatch.setattr(helpers, "SOURCES", table)


def test_fetch_downloads_verifies_and_renames(kit_env, http_server, monkeypatch):
    use_sources(monkeypatch, f_dot_bin=([http_server.serve("f.bin", PAYLOAD)], PAYLOAD))
    path = helpers.fetch("f.bin")
    assert path == kit_env / "f.bin" and path.read_bytes() == PAYLOAD
    assert http_server.log == [("/f.bin", None)] and leftovers(kit_env) == []
    assert helpers.fetch("f.bin") == path and len(http_server.log) == 1  # present: not fetched again


def test_md5_sources_are_verified_too(tmp_path, http_server):
    url = http_server.serve("g.zip", PAYLOAD)
    good = helpers.download("g.zip", tmp_path / "g.zip", [url], md5=hashlib.md5(PAYLOAD).hexdigest())
    assert good.read_bytes() == PAYLOAD
    with pytest.raises(helpers.KitError, match=r"(?s)g.zip: Checksum mismatch for h.zip: its md5 is not 0123.*kept"):
        helpers.download("h.zip", tmp_path / "h.zip", [url], md5="0123" + "0" * 28)
    assert not (tmp_path / "h.zip").exists() and leftovers(tmp_path) == []


def test_wrong_bytes_fail_the_checksum_and_leave_nothing(kit_env, http_server, monkeypatch):
    url = http_server.serve("f.bin", PAYLOAD[:-1] + b"!")
    use_sources(monkeypatch, f_dot_bin=([url], PAYLOAD))
    with pytest.raises(helpers.KitError) as err:
        helpers.fetch("f.bin")
    message = str(err.value)
    assert f"{url}: Checksum mismatch for f.bin: its sha256 is not {sha256(PAYLOAD)}" in message
    assert list(kit_env.iterdir()) == []
    assert len(http_server.log) == 1  # wrong bytes are not worth a retry from the same URL


def test_dropped_connection_resumes_with_range(kit_env, http_server, monkeypatch, no_sleep):
    use_sources(monkeypatch, f_dot_bin=([http_server.serve("f.bin", PAYLOAD)], PAYLOAD))
    http_server.drops["/f.bin"] = 1
    assert helpers.fetch("f.bin").read_bytes() == PAYLOAD
    assert http_server.log == [("/f.bin", None), ("/f.bin", f"bytes={len(PAYLOAD) // 2}-")]
    assert no_sleep == [2] and leftovers(kit_env) == []


def test_server_ignoring_range_restarts_from_zero(kit_env, http_server, monkeypatch):
    use_sources(monkeypatch, f_dot_bin=([http_server.serve("f.bin", PAYLOAD)], PAYLOAD))
    http_server.drops["/f.bin"] = 1
    http_server.httpd.honour_range = False
    assert helpers.fetch("f.bin").read_bytes() == PAYLOAD
    assert [r for _, r in http_server.log] == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_a_stale_complete_part_file_is_not_a_dead_end(kit_env, http_server, monkeypatch):
    """A .part left whole by an interrupted run: the server answers the Range with 416."""
    use_sources(monkeypatch, f_dot_bin=([http_server.serve("f.bin", PAYLOAD)], PAYLOAD))
    (kit_env / "f.bin.part").write_bytes(PAYLOAD)
    assert helpers.fetch("f.bin").read_bytes() == PAYLOAD
    assert leftovers(kit_env) == []


def test_connection_that_keeps_dropping_gives_up_cleanly(tmp_path, http_server, no_sleep):
    url = http_server.serve("f.bin", PAYLOAD)
    http_server.drops["/f.bin"] = 10
    with pytest.raises(helpers.KitError, match=r"(?s)Could not download f.bin.*connection dropped at"):
        helpers.download("f.bin", tmp_path / "f.bin", [url], sha256(PAYLOAD), retries=3)
    assert len(http_server.log) == 3 and no_sleep[:2] == [2, 4]
    assert list(tmp_path.iterdir()) == []


def test_404_lists_the_urls_tried_and_where_to_put_the_file(kit_env, http_server, monkeypatch):
    urls = [http_server.url("a/f.bin"), http_server.url("b/f.bin")]
    use_sources(monkeypatch, f_dot_bin=(urls, PAYLOAD))
    with pytest.raises(helpers.KitError) as err:
        helpers.fetch("f.bin")
    message = str(err.value)
    assert all(u in message for u in urls) and message.count("Not Found") == 2
    assert f"put it at {kit_env / 'f.bin'}" in message and "KIT_MIRROR" in message
    assert len(http_server.log) == 2  # a 404 is final: no retries
    assert "No server could be reached" not in message  # the network works; the file is missing
    assert list(kit_env.iterdir()) == []


def test_next_url_is_tried_after_a_404(kit_env, http_server, monkeypatch):
    urls = [http_server.url("gone/f.bin"), http_server.serve("f.bin", PAYLOAD)]
    use_sources(monkeypatch, f_dot_bin=(urls, PAYLOAD))
    assert helpers.fetch("f.bin").read_bytes() == PAYLOAD
    assert [p for p, _ in http_server.log] == ["/gone/f.bin", "/f.bin"]


def test_offline_message(kit_env, closed_port_url, monkeypatch):
    url = f"{closed_port_url}/f.bin"
    use_sources(monkeypatch, f_dot_bin=([url], PAYLOAD))
    with pytest.raises(helpers.KitError) as err:
        helpers.fetch("f.bin")
    message = str(err.value)
    assert "Could not download f.bin" in message and f"{url} (try 3)" in message
    assert "refused" in message.lower() and "No server could be reached: is this computer offline" in message
    assert f"put it at {kit_env / 'f.bin'}" in message and "KIT_MIRROR" in message
    assert list(kit_env.iterdir()) == []


def test_a_server_that_never_answers_times_out(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/f.bin"
        with pytest.raises(helpers.KitError, match="timed out") as err:
            helpers.download("f.bin", tmp_path / "f.bin", [url], sha256(PAYLOAD), retries=1, timeout=0.3)
    assert "No server could be reached" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# Mirrors: KIT_MIRROR folders and URLs come before the official URLs
# ---------------------------------------------------------------------------
def test_mirror_folder_is_used_before_official_urls(kit_env, tmp_path, http_server, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "ag_news_csv").mkdir(parents=True)
    (mirror / "ag_news_csv" / "train.csv").write_bytes(PAYLOAD)
    use_sources(monkeypatch, ag_news_csv__train_dot_csv=([http_server.serve("train.csv", PAYLOAD)], PAYLOAD))
    monkeypatch.setenv("KIT_MIRROR", f"{tmp_path / 'empty-mirror'} {mirror}")
    assert helpers.mirror_urls("ag_news_csv/train.csv") == [
        (tmp_path / "empty-mirror").as_uri() + "/ag_news_csv/train.csv", mirror.as_uri() + "/ag_news_csv/train.csv"]
    path = helpers.fetch("ag_news_csv/train.csv")
    assert path == kit_env / "ag_news_csv" / "train.csv" and path.read_bytes() == PAYLOAD
    assert http_server.log == []


def test_bad_mirror_copy_falls_back_to_the_official_url(kit_env, tmp_path, http_server, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "f.bin").write_bytes(b"an older, different file")
    use_sources(monkeypatch, f_dot_bin=([http_server.serve("f.bin", PAYLOAD)], PAYLOAD))
    monkeypatch.setenv("KIT_MIRROR", str(mirror))
    assert helpers.fetch("f.bin").read_bytes() == PAYLOAD
    assert len(http_server.log) == 1 and (mirror / "f.bin").read_bytes() == b"an older, different file"


def test_mirror_url_is_used_before_official_urls(kit_env, http_server, closed_port_url, monkeypatch):
    http_server.serve("classroom/f.bin", PAYLOAD)
    use_sources(monkeypatch, f_dot_bin=([f"{closed_port_url}/f.bin"], PAYLOAD))
    monkeypatch.setenv("KIT_MIRROR", http_server.url("classroom/"))
    assert helpers.fetch("f.bin").read_bytes() == PAYLOAD
    assert http_server.log == [("/classroom/f.bin", None)]


# ---------------------------------------------------------------------------
# The datasets' download paths
# ---------------------------------------------------------------------------
def test_imdb_downloads_and_extracts_once(kit_env, http_server, monkeypatch):
    archive = tar_bytes(imdb_members())
    use_sources(monkeypatch, aclImdb_v1_dot_tar_dot_gz=([http_server.serve("aclImdb_v1.tar.gz", archive)], archive))
    calls = []
    real_extract = helpers.extract_tar
    monkeypatch.setattr(helpers, "extract_tar", lambda *a: calls.append(a) or real_extract(*a))
    root = helpers.imdb_root("quick")
    assert root == kit_env / "aclImdb" and len(helpers.IMDBDataset(root)) == 6
    assert helpers.imdb_root("quick") == root
    assert len(http_server.log) == 1 and len(calls) == 1
    assert sorted(p.name for p in kit_env.iterdir()) == ["aclImdb", "aclImdb_v1.tar.gz"]


def test_imdb_archive_already_downloaded_is_extracted_without_network(kit_env, closed_port_url, monkeypatch):
    archive = tar_bytes(imdb_members())
    (kit_env / "aclImdb_v1.tar.gz").write_bytes(archive)
    use_sources(monkeypatch, aclImdb_v1_dot_tar_dot_gz=([f"{closed_port_url}/x"], archive))
    assert helpers.IMDBDataset(helpers.imdb_root("quick"), train=False).labels == [0, 0, 0, 1, 1, 1]


def test_ag_news_downloads_the_three_files(kit_env, http_server, monkeypatch):
    sample = helpers.SAMPLES_DIR / "ag_news_csv"
    files = {n: (sample / n).read_bytes() for n in ("classes.txt", "train.csv", "test.csv")}
    use_sources(monkeypatch, **{f"ag_news_csv__{n.replace('.', '_dot_')}": ([http_server.serve(n, b)], b)
                                for n, b in files.items()})
    root = helpers.ag_news_root("quick")
    assert root == kit_env / "ag_news_csv"
    assert {p.name: p.read_bytes() for p in root.iterdir()} == files
    train, test, _ = helpers.ag_news_splits(root)
    assert (len(train), len(test)) == (1000, 200)
    helpers.ag_news_root("quick")
    assert len(http_server.log) == 3


def test_ag_news_test_split_skips_train_csv(kit_env, http_server, monkeypatch):
    sample = helpers.SAMPLES_DIR / "ag_news_csv"
    files = {n: (sample / n).read_bytes() for n in ("classes.txt", "train.csv", "test.csv")}
    use_sources(monkeypatch, **{f"ag_news_csv__{n.replace('.', '_dot_')}": ([http_server.serve(n, b)], b)
                                for n, b in files.items()})
    monkeypatch.setenv("KIT_AG_NEWS", "test-split")
    root = helpers.ag_news_root("quick")
    assert sorted(p for p, _ in http_server.log) == ["/classes.txt", "/test.csv"]
    assert not (root / "train.csv").exists()
