"""Fixtures for the helpers.py tests (plain helpers they use are in kit_support.py).

Every fixture keeps the tests offline and out of the repository's data/ folder.
"""
import socket
import time
import types

import pytest

import helpers
from kit_support import FileServer, make_glove

KIT_VARIABLES = ("KIT_MIRROR", "KIT_GLOVE", "KIT_AG_NEWS", "KIT_RESULTS_DIR")


@pytest.fixture
def kit_env(tmp_path, monkeypatch):
    """An empty data folder in tmp_path as KIT_DATA_DIR, and none of the other KIT_ switches set."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("KIT_DATA_DIR", str(data))
    for name in KIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return data


@pytest.fixture
def tiny_glove():
    return make_glove()


@pytest.fixture
def http_server():
    server = FileServer()
    yield server
    server.close()


@pytest.fixture
def closed_port_url():
    """A base URL on 127.0.0.1 where nothing listens: connecting is refused, as when offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def no_sleep(monkeypatch):
    """Skip the retry back-off in helpers so that failing downloads fail fast; records the waits asked for."""
    waits = []
    monkeypatch.setattr(helpers, "time", types.SimpleNamespace(sleep=waits.append, perf_counter=time.perf_counter))
    return waits
