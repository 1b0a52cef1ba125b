"""Tests of oncoshot.download: fetch (local, file://, http on 127.0.0.1) and safe_extract."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import re
import stat
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from oncoshot.download import fetch, is_archive, safe_extract, sha256_file
from oncoshot.errors import DownloadError

PAYLOAD = b"gene\tS1\tS2\nENSG00000000003.15\t1.5\t2.5\n" * 200


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(directory: Path, keep: set[str] = frozenset()) -> list[str]:
    """Names in ``directory`` other than ``keep`` (temp files would show up here)."""
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


# --------------------------------------------------------------------------------------------
# a tiny HTTP server on 127.0.0.1


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.counts[self.path] = srv.counts.get(self.path, 0) + 1
            n = srv.counts[self.path]
        route = srv.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        route(self, n)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # e.g. the client gave up on a slow reply
        pass


class Server:
    def __init__(self):
        self.httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self.httpd.routes = {}
        self.httpd.counts = {}
        self.httpd.lock = threading.Lock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def route(self, path: str, fn) -> str:
        self.httpd.routes[path] = fn
        return self.url(path)

    def count(self, path: str) -> int:
        return self.httpd.counts.get(path, 0)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


def send_body(data: bytes, status: int = 200):
    def fn(h: BaseHTTPRequestHandler, n: int):
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
    return fn


def fail_then(times: int, code: int, data: bytes):
    ok = send_body(data)

    def fn(h: BaseHTTPRequestHandler, n: int):
        if n <= times:
            h.send_error(code)
        else:
            ok(h, n)
    return fn


def short_body(data: bytes, claimed: int):
    def fn(h: BaseHTTPRequestHandler, n: int):
        h.send_response(200)
        h.send_header("Content-Length", str(claimed))
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()
        h.close_connection = True
    return fn


# --------------------------------------------------------------------------------------------
# sha256_file, is_archive


def test_sha256_file(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(PAYLOAD)
    assert sha256_file(p) == sha(PAYLOAD)
    assert sha256_file(str(p)) == sha(PAYLOAD)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a.tar", True), ("a.tar.gz", True), ("A.TGZ", True), ("a.tar.bz2", True),
        ("a.tar.xz", True), ("a.zip", True), ("a.tsv.gz", False), ("a.txt", False), ("a.mtx", False),
    ],
)
def test_is_archive(name, expected):
    assert is_archive(name) is expected
    assert is_archive(Path("/some/dir") / name) is expected


# --------------------------------------------------------------------------------------------
# fetch: local sources


def test_fetch_local_absolute_path(tmp_path):
    src = tmp_path / "src.tsv"
    src.write_bytes(PAYLOAD)
    out = fetch(str(src), tmp_path / "out" / "copy.tsv", sha256=sha(PAYLOAD))
    assert out == tmp_path / "out" / "copy.tsv"
    assert out.read_bytes() == PAYLOAD
    assert leftovers(tmp_path / "out") == ["copy.tsv"]


def test_fetch_local_relative_path(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "src.tsv").write_bytes(PAYLOAD)
    monkeypatch.chdir(tmp_path)
    out = fetch("data/src.tsv", "dl/copy.tsv")
    assert Path(out).read_bytes() == PAYLOAD
    assert (tmp_path / "dl" / "copy.tsv").read_bytes() == PAYLOAD


def test_fetch_pathlike_source(tmp_path):
    src = tmp_path / "src.tsv"
    src.write_bytes(PAYLOAD)
    assert fetch(src, tmp_path / "copy.tsv").read_bytes() == PAYLOAD


def test_fetch_file_url(tmp_path):
    src = tmp_path / "dir with space" / "src.tsv"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    out = fetch(src.as_uri(), tmp_path / "copy.tsv", sha256=sha(PAYLOAD).upper())
    assert out.read_bytes() == PAYLOAD


def test_fetch_missing_local_file_names_path(tmp_path):
    missing = tmp_path / "nope.tsv"
    with pytest.raises(DownloadError, match="nope.tsv"):
        fetch(str(missing), tmp_path / "out" / "copy.tsv")
    assert not (tmp_path / "out" / "copy.tsv").exists()
    assert leftovers(tmp_path / "out") == []


def test_fetch_unsupported_scheme(tmp_path):
    with pytest.raises(DownloadError, match="ftp"):
        fetch("ftp://example.org/x.tsv", tmp_path / "x.tsv")


def test_fetch_sha256_mismatch_local(tmp_path):
    src = tmp_path / "src" / "a.tsv"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    dest_dir = tmp_path / "out"
    wrong = "0" * 64
    with pytest.raises(DownloadError) as err:
        fetch(str(src), dest_dir / "a.tsv", sha256=wrong)
    msg = str(err.value)
    assert "a.tsv" in msg and wrong in msg and sha(PAYLOAD) in msg and "mismatch" in msg
    assert leftovers(dest_dir) == []


@pytest.mark.parametrize("bad", ["xyz", "abc123", "g" * 64, "0" * 63])
def test_fetch_malformed_checksum(tmp_path, bad):
    src = tmp_path / "a.tsv"
    src.write_bytes(PAYLOAD)
    with pytest.raises(DownloadError, match="malformed sha256") as err:
        fetch(str(src), tmp_path / "out" / "a.tsv", sha256=bad)
    assert bad in str(err.value) and "a.tsv" in str(err.value)
    assert not (tmp_path / "out" / "a.tsv").exists()


def test_fetch_sha256_prefix_accepted(tmp_path):
    src = tmp_path / "a.tsv"
    src.write_bytes(PAYLOAD)
    assert fetch(str(src), tmp_path / "b.tsv", sha256="sha256:" + sha(PAYLOAD)).exists()


def test_fetch_good_gzip(tmp_path):
    src = tmp_path / "m.tsv.gz"
    src.write_bytes(gzip.compress(PAYLOAD))
    out = fetch(str(src), tmp_path / "out" / "m.tsv.gz")
    assert gzip.decompress(out.read_bytes()) == PAYLOAD


@pytest.mark.parametrize("cut", ["truncated", "garbage", "empty"])
def test_fetch_bad_gzip_detected(tmp_path, cut):
    blob = gzip.compress(os.urandom(50_000))
    data = {"truncated": blob[: len(blob) // 2], "garbage": b"not gzip at all" * 10, "empty": b""}[cut]
    src = tmp_path / "src" / "m.tsv.gz"
    src.parent.mkdir()
    src.write_bytes(data)
    with pytest.raises(DownloadError, match=r"m\.tsv\.gz") as err:
        fetch(str(src), tmp_path / "out" / "m.tsv.gz")
    assert "gzip" in str(err.value)
    assert leftovers(tmp_path / "out") == []


def test_fetch_overwrites_atomically_and_keeps_old_on_failure(tmp_path):
    dest = tmp_path / "out" / "a.tsv"
    dest.parent.mkdir()
    dest.write_bytes(b"old content")
    src = tmp_path / "a.tsv"
    src.write_bytes(PAYLOAD)
    # failure: old content survives, no temp files
    with pytest.raises(DownloadError):
        fetch(str(src), dest, sha256="1" * 64)
    assert dest.read_bytes() == b"old content"
    with pytest.raises(DownloadError):
        fetch(str(tmp_path / "missing.tsv"), dest)
    assert dest.read_bytes() == b"old content"
    assert leftovers(dest.parent) == ["a.tsv"]
    # success: replaced
    old_inode = dest.stat().st_ino
    fetch(str(src), dest)
    assert dest.read_bytes() == PAYLOAD
    assert dest.stat().st_ino != old_inode  # a new file renamed over the old one
    assert leftovers(dest.parent) == ["a.tsv"]


def test_fetch_dest_is_directory(tmp_path):
    src = tmp_path / "a.tsv"
    src.write_bytes(PAYLOAD)
    (tmp_path / "d").mkdir()
    with pytest.raises(DownloadError, match="directory"):
        fetch(str(src), tmp_path / "d")


# --------------------------------------------------------------------------------------------
# fetch: http on 127.0.0.1


def test_http_success_and_progress_logged(server, tmp_path, caplog):
    url = server.route("/data/a.tsv", send_body(PAYLOAD))
    with caplog.at_level(logging.INFO, logger="oncoshot.download"):
        out = fetch(url, tmp_path / "a.tsv", sha256=sha(PAYLOAD), backoff=0)
    assert out.read_bytes() == PAYLOAD
    assert server.count("/data/a.tsv") == 1
    assert any(url in r.getMessage() for r in caplog.records)
    assert any("fetched" in r.getMessage() for r in caplog.records)
    assert leftovers(tmp_path) == ["a.tsv"]


def test_progress_is_throttled(monkeypatch, caplog):
    from oncoshot import download

    clock = [0.0]
    monkeypatch.setattr(download.time, "monotonic", lambda: clock[0])
    log = logging.getLogger("test.download.progress")
    total = 100 * 2**20
    with caplog.at_level(logging.INFO, logger="test.download.progress"):
        prog = download._Progress(log, "http://127.0.0.1/x", total)
        for i in range(1, 1001):  # 1000 chunks over 100 s: ticks at every 0.1 s
            clock[0] = i * 0.1
            prog.update(i * total // 1000)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10  # one per 10 %, not one per chunk
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="test.download.progress"):
        clock[0] = 1000.0
        prog = download._Progress(log, "http://127.0.0.1/z", total)
        for i in range(1, 1001):  # a slow one: 10 % takes 60 s -> 30 s heartbeats in between
            clock[0] = 1000 + i * 0.6
            prog.update(i * total // 1000)
    assert 19 <= len(caplog.records) <= 21
    assert "ETA" in lines[0] and "%" in lines[0] and "/s" in lines[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="test.download.progress"):
        clock[0] = 2000.0
        prog = download._Progress(log, "http://127.0.0.1/y", None)  # size unknown
        for i in range(1, 1001):
            clock[0] = 2000 + i * 0.1
            prog.update(i * 1000)
    assert 15 <= len(caplog.records) <= 25  # every 5 s


def test_http_custom_logger(server, tmp_path, caplog):
    url = server.route("/a.tsv", send_body(PAYLOAD))
    mine = logging.getLogger("test.download.custom")
    with caplog.at_level(logging.INFO, logger="test.download.custom"):
        fetch(url, tmp_path / "a.tsv", logger=mine)
    assert any(r.name == "test.download.custom" for r in caplog.records)


def test_http_404_fails_at_once(server, tmp_path):
    url = server.url("/missing.tsv")
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "x.tsv", retries=3, backoff=5)
    assert time.monotonic() - t0 < 4  # no backoff sleep happened
    assert "404" in str(err.value) and url in str(err.value)
    assert server.count("/missing.tsv") == 1
    assert leftovers(tmp_path) == []


def test_http_503_twice_then_success(server, tmp_path, caplog):
    url = server.route("/flaky.tsv", fail_then(2, 503, PAYLOAD))
    with caplog.at_level(logging.WARNING, logger="oncoshot.download"):
        out = fetch(url, tmp_path / "flaky.tsv", retries=3, backoff=0.01, sha256=sha(PAYLOAD))
    assert out.read_bytes() == PAYLOAD
    assert server.count("/flaky.tsv") == 3
    assert sum("retrying" in r.getMessage() for r in caplog.records) == 2
    assert leftovers(tmp_path) == ["flaky.tsv"]


def test_http_503_gives_up(server, tmp_path):
    url = server.route("/down.tsv", fail_then(99, 503, PAYLOAD))
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "down.tsv", retries=2, backoff=0)
    assert "503" in str(err.value) and url in str(err.value) and "3 attempts" in str(err.value)
    assert server.count("/down.tsv") == 3
    assert leftovers(tmp_path) == []


def test_http_short_body_retried_then_error(server, tmp_path):
    url = server.route("/short.tsv", short_body(PAYLOAD[:500], claimed=len(PAYLOAD)))
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "short.tsv", retries=2, backoff=0)
    msg = str(err.value)
    assert url in msg and "incomplete" in msg and f"500 of {len(PAYLOAD)}" in msg
    assert server.count("/short.tsv") == 3
    assert leftovers(tmp_path) == []


def test_http_short_body_then_full_succeeds(server, tmp_path):
    full = send_body(PAYLOAD)
    short = short_body(PAYLOAD[:100], claimed=len(PAYLOAD))
    url = server.route("/once.tsv", lambda h, n: short(h, n) if n == 1 else full(h, n))
    assert fetch(url, tmp_path / "once.tsv", backoff=0).read_bytes() == PAYLOAD
    assert server.count("/once.tsv") == 2


def test_http_timeout_retried(server, tmp_path):
    def slow(h, n):
        time.sleep(0.6)
        send_body(PAYLOAD)(h, n)

    url = server.route("/slow.tsv", slow)
    with pytest.raises(DownloadError, match="timed out"):
        fetch(url, tmp_path / "slow.tsv", retries=1, timeout=0.15, backoff=0)
    assert server.count("/slow.tsv") == 2
    assert leftovers(tmp_path) == []


def test_http_connection_refused(tmp_path):
    s = Server()
    url = s.url("/gone.tsv")
    s.stop()  # nothing listens on that port any more
    with pytest.raises(DownloadError, match="connection failed|timed out") as err:
        fetch(url, tmp_path / "gone.tsv", retries=1, backoff=0, timeout=2)
    assert url in str(err.value)
    assert leftovers(tmp_path) == []


def test_http_sha256_match_and_mismatch(server, tmp_path):
    url = server.route("/s.tsv", send_body(PAYLOAD))
    assert fetch(url, tmp_path / "ok" / "s.tsv", sha256=sha(PAYLOAD).upper()).read_bytes() == PAYLOAD
    bad = "f" * 64
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "bad" / "s.tsv", sha256=bad, backoff=0)
    msg = str(err.value)
    assert url in msg and bad in msg and sha(PAYLOAD) in msg
    assert server.count("/s.tsv") == 2  # a mismatch is not retried
    assert leftovers(tmp_path / "bad") == []


def test_http_truncated_gz_detected(server, tmp_path):
    blob = gzip.compress(os.urandom(20_000))
    url = server.route("/m.tsv.gz", send_body(blob[:-30]))
    with pytest.raises(DownloadError, match="gzip") as err:
        fetch(url, tmp_path / "m.tsv.gz", backoff=0)
    assert "m.tsv.gz" in str(err.value)
    assert leftovers(tmp_path) == []


def test_http_failure_keeps_old_dest(server, tmp_path):
    dest = tmp_path / "a.tsv"
    dest.write_bytes(b"old")
    url = server.route("/short.tsv", short_body(PAYLOAD[:10], claimed=len(PAYLOAD)))
    with pytest.raises(DownloadError):
        fetch(url, dest, retries=0)
    assert dest.read_bytes() == b"old"
    assert leftovers(tmp_path) == ["a.tsv"]


def test_http_password_redacted(server, tmp_path):
    host, port = server.httpd.server_address[:2]
    url = f"http://user:secret@{host}:{port}/missing"
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "x", retries=0)
    assert "secret" not in str(err.value) and "user:***@" in str(err.value)


# --------------------------------------------------------------------------------------------
# safe_extract


FILES = {"study/Cells.csv": b"cell_name,sample\nc1,s1\n", "study/Genes.txt": b"TP53\nMT-CO1\n",
         "README": b"hello\n"}


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                name, data = m
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name_or_info, data in members:
            zf.writestr(name_or_info, data)
    return path


def assert_nothing_left(parent: Path, dest: Path, keep: set[str]):
    assert not dest.exists() or list(dest.iterdir()) == []
    assert leftovers(parent, keep) == [], "temporary extraction folder left behind"


@pytest.mark.parametrize("mode, suffix", [("w:gz", ".tar.gz"), ("w", ".tar"), ("w:bz2", ".tar.bz2"),
                                          ("w:xz", ".tar.xz"), ("w:gz", ".tgz")])
def test_safe_extract_good_tar(tmp_path, mode, suffix):
    folder = tarfile.TarInfo("study")
    folder.type = tarfile.DIRTYPE
    folder.mode = 0o755
    arc = make_tar(tmp_path / f"a{suffix}", [folder] + list(FILES.items()), mode)
    dest = tmp_path / "out"
    files = safe_extract(arc, dest)
    assert files == [dest / "study" / "Cells.csv", dest / "study" / "Genes.txt", dest / "README"]
    for name, data in FILES.items():
        assert (dest / name).read_bytes() == data
    assert leftovers(tmp_path) == sorted([arc.name, "out"])


def test_safe_extract_good_zip(tmp_path):
    arc = make_zip(tmp_path / "a.zip", [("study/", b"")] + list(FILES.items()))
    dest = tmp_path / "out"
    files = safe_extract(arc, dest)
    assert sorted(files) == sorted(dest / n for n in FILES)
    for name, data in FILES.items():
        assert (dest / name).read_bytes() == data
    assert leftovers(tmp_path) == ["a.zip", "out"]


def test_safe_extract_into_existing_folder_merges(tmp_path):
    dest = tmp_path / "out"
    (dest / "study").mkdir(parents=True)
    (dest / "keep.txt").write_text("keep")
    (dest / "study" / "Cells.csv").write_text("old")
    arc = make_tar(tmp_path / "a.tar.gz", list(FILES.items()))
    safe_extract(arc, dest)
    assert (dest / "keep.txt").read_text() == "keep"
    assert (dest / "study" / "Cells.csv").read_bytes() == FILES["study/Cells.csv"]
    assert leftovers(tmp_path) == ["a.tar.gz", "out"]


def test_safe_extract_strips_special_permission_bits(tmp_path):
    info = tarfile.TarInfo("run.sh")
    data = b"#!/bin/sh\n"
    info.size = len(data)
    info.mode = 0o4777  # setuid, world-writable
    arc = tmp_path / "a.tar"
    with tarfile.open(arc, "w") as tf:
        tf.addfile(info, io.BytesIO(data))
    (out,) = safe_extract(arc, tmp_path / "out")
    mode = stat.S_IMODE(out.stat().st_mode)
    assert mode & stat.S_ISUID == 0 and mode & 0o002 == 0 and mode & 0o100


def _sym(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def _special(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


MALICIOUS_TAR = {
    "dotdot": ([("good.txt", b"ok"), ("../evil.txt", b"x")], "../evil.txt"),
    "nested_dotdot": ([("good.txt", b"ok"), ("a/../../evil.txt", b"x")], "a/../../evil.txt"),
    "absolute": ([("good.txt", b"ok"), ("/tmp/oncoshot-evil.txt", b"x")], "/tmp/oncoshot-evil.txt"),
    "symlink_out": ([("good.txt", b"ok"), _sym("link", "../../etc/passwd")], "link"),
    "symlink_abs": ([("good.txt", b"ok"), _sym("link", "/etc/passwd")], "link"),
    "symlink_in": ([("good.txt", b"ok"), _sym("link", "good.txt")], "link"),
    "symlink_then_write": ([_sym("d", ".."), ("d/evil.txt", b"x")], "'d'"),
    "hardlink": ([("good.txt", b"ok"), _sym("hl", "/etc/passwd", hard=True)], "hl"),
    "fifo": ([("good.txt", b"ok"), _special("pipe", tarfile.FIFOTYPE)], "pipe"),
    "chardev": ([("good.txt", b"ok"), _special("dev", tarfile.CHRTYPE)], "dev"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS_TAR))
def test_safe_extract_rejects_malicious_tar(tmp_path, case):
    members, member_name = MALICIOUS_TAR[case]
    work = tmp_path / "work"
    work.mkdir()
    arc = make_tar(tmp_path / "bad.tar.gz", members)
    dest = work / "out"
    with pytest.raises(DownloadError) as err:
        safe_extract(arc, dest)
    msg = str(err.value)
    assert "bad.tar.gz" in msg and member_name in msg
    assert_nothing_left(work, dest, keep=set())
    assert not (tmp_path / "evil.txt").exists() and not (work / "evil.txt").exists()
    assert not Path("/tmp/oncoshot-evil.txt").exists()


def test_safe_extract_rejected_archive_leaves_existing_folder_untouched(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    arc = make_tar(tmp_path / "bad.tar.gz", [("good.txt", b"ok"), ("../evil.txt", b"x")])
    with pytest.raises(DownloadError):
        safe_extract(arc, dest)
    assert leftovers(dest) == ["old.txt"]
    assert leftovers(tmp_path) == ["bad.tar.gz", "out"]


def _zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


MALICIOUS_ZIP = {
    "dotdot": ([("good.txt", b"ok"), ("../evil.txt", b"x")], "../evil.txt"),
    "absolute": ([("good.txt", b"ok"), ("/tmp/oncoshot-evil.txt", b"x")], "/tmp/oncoshot-evil.txt"),
    "backslash": ([("good.txt", b"ok"), ("..\\evil.txt", b"x")], "evil.txt"),
    "symlink_out": ([("good.txt", b"ok"), _zip_symlink("link", "../../etc/passwd")], "link"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS_ZIP))
def test_safe_extract_rejects_malicious_zip(tmp_path, case):
    members, member_name = MALICIOUS_ZIP[case]
    work = tmp_path / "work"
    work.mkdir()
    arc = make_zip(tmp_path / "bad.zip", members)
    dest = work / "out"
    with pytest.raises(DownloadError) as err:
        safe_extract(arc, dest)
    msg = str(err.value)
    assert "bad.zip" in msg and member_name in msg
    assert_nothing_left(work, dest, keep=set())
    assert not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/oncoshot-evil.txt").exists()


def test_safe_extract_truncated_archive(tmp_path):
    arc = make_tar(tmp_path / "a.tar.gz", [("big.bin", os.urandom(200_000))])
    data = arc.read_bytes()
    arc.write_bytes(data[: len(data) // 2])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(DownloadError, match="a.tar.gz"):
        safe_extract(arc, work / "out")
    assert_nothing_left(work, work / "out", keep=set())


def test_safe_extract_missing_and_unsupported(tmp_path):
    with pytest.raises(DownloadError, match="nope.tar.gz"):
        safe_extract(tmp_path / "nope.tar.gz", tmp_path / "out")
    plain = tmp_path / "plain.txt"
    plain.write_text("just text\n")
    with pytest.raises(DownloadError, match="plain.txt"):
        safe_extract(plain, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# archives decided by content; harmless root members (3CA packaging, REAL_FORMATS.md)


def _root_dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


@pytest.mark.parametrize("root", ["/", "./", "."])
def test_safe_extract_tar_with_root_member(tmp_path, root):
    arc = make_tar(tmp_path / "a.tar.gz", [_root_dir(root)] + list(FILES.items()))
    dest = tmp_path / "out"
    files = safe_extract(arc, dest)
    assert sorted(files) == sorted(dest / n for n in FILES)
    assert leftovers(dest) == ["README", "study"]


def test_safe_extract_zip_with_root_member(tmp_path):
    arc = make_zip(tmp_path / "a.zip", [("/", b"")] + list(FILES.items()))
    dest = tmp_path / "out"
    files = safe_extract(arc, dest)
    assert sorted(files) == sorted(dest / n for n in FILES)
    for name, data in FILES.items():
        assert (dest / name).read_bytes() == data


def test_safe_extract_root_named_file_is_rejected(tmp_path):
    arc = make_zip(tmp_path / "a.zip", [("good.txt", b"ok"), ("./", b"")])  # a dir: fine
    safe_extract(arc, tmp_path / "ok")
    info = tarfile.TarInfo(".")  # a *file* named like the root
    info.size = 2
    arc = tmp_path / "b.tar"
    with tarfile.open(arc, "w") as tf:
        tf.addfile(info, io.BytesIO(b"xx"))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(DownloadError, match=r"b\.tar.*file without a name"):
        safe_extract(arc, work / "out")
    assert_nothing_left(work, work / "out", keep=set())


def test_safe_extract_root_member_does_not_excuse_escapes(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for i, bad in enumerate(["/..", "/../evil.txt", "//etc/passwd", "./../evil.txt"]):
        arc = make_tar(tmp_path / f"bad{i}.tar.gz", [_root_dir("/"), ("good.txt", b"ok"), (bad, b"x")])
        with pytest.raises(DownloadError, match=re.escape(repr(bad))):
            safe_extract(arc, work / "out")
        assert_nothing_left(work, work / "out", keep=set())
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("named, kind", [("study.tar.gz", "zip"), ("study.tgz", "zip"), ("study.zip", "tar.gz"),
                                         ("study.tar", "tar.gz"), ("study.tar.gz", "tar"),
                                         ("study", "zip"), ("study.bin", "tar.gz")])
def test_safe_extract_decides_by_content(tmp_path, named, kind, caplog):
    arc = tmp_path / named
    if kind == "zip":
        make_zip(arc, [("/", b"")] + list(FILES.items()))
    else:
        make_tar(arc, list(FILES.items()), "w:gz" if kind == "tar.gz" else "w")
    dest = tmp_path / "out"
    with caplog.at_level("WARNING", logger="oncoshot.download"):
        files = safe_extract(arc, dest)
    assert sorted(files) == sorted(dest / n for n in FILES)
    for name, data in FILES.items():
        assert (dest / name).read_bytes() == data
    suffix_says = {"study.tar.gz": "tar", "study.tgz": "tar", "study.zip": "zip", "study.tar": "tar"}.get(named)
    content = "zip" if kind == "zip" else "tar"
    mismatch = suffix_says is not None and suffix_says != content
    assert any("content is a" in r.getMessage() for r in caplog.records) == mismatch


@pytest.mark.parametrize("data", [b"just text\n" * 100, gzip.compress(b"a,b\n1,2\n" * 50, mtime=0), b"PK\x03\x04garbage" * 20],
                         ids=["text", "gzip-csv", "zip-magic-garbage"])
def test_safe_extract_rejects_non_archives_whatever_their_name(tmp_path, data):
    arc = tmp_path / "x.tar.gz"
    arc.write_bytes(data)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(DownloadError, match=r"x\.tar\.gz"):
        safe_extract(arc, work / "out")
    assert_nothing_left(work, work / "out", keep=set())


def test_safe_extract_malicious_zip_named_tar_gz_still_rejected(tmp_path):
    arc = make_zip(tmp_path / "bad.tar.gz", [("/", b""), ("good.txt", b"ok"), ("../evil.txt", b"x")])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(DownloadError, match=r"bad\.tar\.gz.*'\.\./evil\.txt'"):
        safe_extract(arc, work / "out")
    assert_nothing_left(work, work / "out", keep=set())
    arc = make_zip(tmp_path / "link.tar.gz", [("/", b""), _zip_symlink("link", "/etc/passwd")])
    with pytest.raises(DownloadError, match="symbolic link"):
        safe_extract(arc, work / "out")
    assert_nothing_left(work, work / "out", keep=set())


def test_fetch_keeps_a_zip_named_tar_gz(tmp_path, caplog):
    src = make_zip(tmp_path / "Data_X.tar.gz", list(FILES.items()))
    with caplog.at_level("WARNING", logger="oncoshot.download"):
        out = fetch(str(src), tmp_path / "out" / "Data_X.tar.gz")
    assert out.read_bytes() == src.read_bytes()
    assert any("content is a zip archive" in r.getMessage() for r in caplog.records)


def test_fetch_logged_writes_its_own_log_and_leaves_the_root_logger_alone(tmp_path):
    import logging

    from oncoshot.download import fetch_logged

    src = tmp_path / "src.txt"
    src.write_text("hello\n")
    root_handlers = list(logging.getLogger().handlers)
    log = tmp_path / "ok.log"
    out = fetch_logged(str(src), tmp_path / "out" / "copy.txt", log,
                       sha256="5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
    assert out.read_text() == "hello\n"
    assert "wrote" in log.read_text()
    bad_log = tmp_path / "bad.log"
    with pytest.raises(Exception, match="sha256"):
        fetch_logged(str(src), tmp_path / "out" / "bad.txt", bad_log, sha256="0" * 64, retries=1)
    assert "sha256 mismatch" in bad_log.read_text() and str(src) in bad_log.read_text()
    assert not (tmp_path / "out" / "bad.txt").exists()
    assert logging.getLogger().handlers == root_handlers  # nothing added to (or removed from) the root logger
