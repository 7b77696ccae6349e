"""Plain helpers for the helpers.py tests (fixtures that use them are in conftest.py):
tiny GloVe vectors and models, tar and GloVe fixture writers, and a real HTTP file
server on 127.0.0.1 with Range support, 404s and a connection that drops once.

Nothing here touches the network or the repository's data/ folder.
"""
import gzip
import hashlib
import io
import re
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

import helpers


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(folder: Path) -> list:
    """Names under folder that an interrupted write or extraction would leave behind."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*")
                  if p.name.endswith((".part", ".tmp")) or p.name.startswith(".extract-"))


# ---------------------------------------------------------------------------
# Tiny GloVe and models
# ---------------------------------------------------------------------------
TINY_WORDS = ["the", ",", ".", "movie", "good", "bad", "great", "awful", "film", "plot", "!", "actor"]


def make_glove(words=TINY_WORDS, dim=8, seed=0, name="glove.tiny"):
    """A GloVe object with random vectors: enough to build a vocabulary and a model."""
    g = torch.Generator().manual_seed(seed)
    return helpers.GloVe(name, list(words), torch.randn(len(words), dim, generator=g), "made in a test")


def make_model(glove, num_classes=2, seed=0, **kw):
    """A small TextClassifier on `glove`, its weights fixed by `seed`."""
    torch.manual_seed(seed)
    kw = dict(dict(nhead=2, num_layers=2, dim_feedforward=16, max_len=64), **kw)
    return helpers.TextClassifier(helpers.embedding_matrix(glove), num_classes, **kw)


def glove_text(words, dim, seed=0) -> tuple[str, torch.Tensor]:
    """Stanford's text format for `words` with random `dim`-d vectors, and those vectors (as parsed)."""
    vectors = torch.randn(len(words), dim, generator=torch.Generator().manual_seed(seed)).round(decimals=5)
    lines = [" ".join([w] + [repr(float(v)) for v in row]) for w, row in zip(words, vectors)]
    return "\n".join(lines) + "\n", vectors


def write_glove(folder: Path, dim: int, words=TINY_WORDS, form: str = "txt", seed=0) -> torch.Tensor:
    """Put a tiny glove.6B.<dim>d file in folder as plain text, gzip or inside glove.6B.zip."""
    text, vectors = glove_text(words, dim, seed)
    name = f"glove.6B.{dim}d.txt"
    if form == "txt":
        (folder / name).write_text(text, encoding="utf-8")
    elif form == "gz":
        (folder / f"{name}.gz").write_bytes(gzip.compress(text.encode()))
    elif form == "zip":
        with zipfile.ZipFile(folder / "glove.6B.zip", "a") as z:
            z.writestr(name, text)
    return vectors


# ---------------------------------------------------------------------------
# Archives
# ---------------------------------------------------------------------------
def tar_bytes(members: dict, links: dict = None) -> bytes:
    """A .tar.gz in memory: members {name: bytes or None for a folder}, links {name: target} as symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def imdb_members(per_folder: int = 3, filler: bytes = b"") -> dict:
    """A tiny aclImdb tree: train|test/pos|neg/<i>_<rating>.txt reviews."""
    members = {}
    for split in ("train", "test"):
        for label, word in (("pos", b"great"), ("neg", b"awful")):
            for i in range(per_folder):
                members[f"aclImdb/{split}/{label}/{i}_{7 if label == 'pos' else 2}.txt"] = (
                    b"A " + word + b" movie, truly " + word + b"." + filler)
    return members


def write_imdb_tree(root: Path, per_folder: int = 2) -> Path:
    """The same tiny aclImdb tree, written straight to disk under root/aclImdb."""
    for name, data in imdb_members(per_folder).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root / "aclImdb"


# ---------------------------------------------------------------------------
# A real HTTP server
# ---------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        rng = self.headers.get("Range")
        server.log.append((self.path, rng))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if match and server.honour_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_error(416, "Range Not Satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        if server.drops.get(self.path, 0) > 0:  # promise everything, send half, hang up
            server.drops[self.path] -= 1
            self.wfile.write(rest[: len(rest) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(rest)

    def log_message(self, *args):
        pass


class FileServer:
    """Serves `files` ({'/name': bytes}) on 127.0.0.1 at an ephemeral port.

    `log` records every request as (path, Range header); `drops` {'/name': n} makes the next n
    requests for a path get half the bytes and a closed connection; `honour_range` False ignores Range.
    """

    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.files, self.httpd.log, self.httpd.drops = {}, [], {}
        self.httpd.honour_range = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs=dict(poll_interval=0.05),
                                       daemon=True)
        self.thread.start()

    def __getattr__(self, name):  # files, log, drops, honour_range live on the server object
        return getattr(self.httpd, name)

    def serve(self, name: str, data: bytes) -> str:
        """Serve data at /name; return its URL."""
        self.httpd.files["/" + name] = data
        return self.url(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
