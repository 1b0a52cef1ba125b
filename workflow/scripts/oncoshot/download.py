"""Downloads that verify, retry and write atomically; archive extraction that cannot escape.

``fetch`` reads an ``http(s)://`` URL, a ``file://`` URL or a plain local path (SPEC §1.1), streams it
to a temporary file next to the destination, checks the sha256 when one is given and the gzip
stream when the name ends in ``.gz``/``.tgz``, and only then renames the file into place with
``os.replace``. Whatever fails, nothing is left under the final name (an older file there is kept
untouched) and no temporary file stays behind.

``safe_extract`` unpacks tar (plain, gzip, bzip2, xz) and zip archives (SPEC §3.1), recognised by
their content (magic bytes), not by the name: 3CA serves zip files named ``.tar.gz``. Every member is
checked before anything is written: absolute names, ``..`` escapes, links and special files are
rejected; a member naming the archive root itself (``/``, ``./``, as folder-download zips carry) is
skipped. Members are written by this module (never by ``tarfile.extractall``) into a temporary
folder next to the target, which is moved into place only when the whole archive went through.

Only the standard library is used (urllib, no ``requests``).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import lzma
import os
import re
import shutil
import socket
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from oncoshot import __version__
from oncoshot.errors import DownloadError
from oncoshot.io import give_default_mode

__all__ = ["sha256_file", "fetch", "safe_extract", "is_archive", "archive_kind", "ARCHIVE_SUFFIXES"]

LOG = logging.getLogger("oncoshot.download")

CHUNK = 1 << 20  # 1 MiB
USER_AGENT = f"oncoshot/{__version__} (+urllib)"
MAX_BACKOFF_S = 60.0
# Progress: size known -> each 10 % step (at most once a second), plus a line every 30 s when a
# step takes longer; size unknown -> a line every 5 s.
PROGRESS_MIN_GAP_S = 1.0
PROGRESS_HEARTBEAT_S = 30.0
PROGRESS_EVERY_S = 5.0
_HEX64 = re.compile(r"[0-9a-f]{64}")

# Longest suffixes first, so ".tar.gz" wins over ".gz".
ARCHIVE_SUFFIXES: dict[str, str] = {
    ".tar.gz": "tar",
    ".tar.bz2": "tar",
    ".tar.xz": "tar",
    ".tgz": "tar",
    ".tbz2": "tar",
    ".tbz": "tar",
    ".txz": "tar",
    ".tar": "tar",
    ".zip": "zip",
}


# --------------------------------------------------------------------------------------------
# small helpers


def sha256_file(path: str | os.PathLike) -> str:
    """Lower-case hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _human_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _redact(url: str) -> str:
    """The URL without a password, for messages and logs."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _normalise_sha256(expected: str | None, shown: str) -> str | None:
    if expected is None:
        return None
    value = str(expected).strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:"):].strip()
    if not _HEX64.fullmatch(value):
        raise DownloadError(
            f"{shown}: malformed sha256 checksum {expected!r} "
            "(expected 64 hexadecimal characters)"
        )
    return value


class _Transient(Exception):
    """A failure worth another attempt (connection, timeout, 5xx, short read)."""


class _Fatal(Exception):
    """A failure that another attempt will not fix (4xx, missing file, bad checksum)."""


class _Progress:
    """Throttled progress log: each 10 % step (or every 30 s), or every 5 s when the size is unknown."""

    def __init__(self, log: logging.Logger | logging.LoggerAdapter, shown: str, total: int | None):
        self.log = log
        self.shown = shown
        self.total = total if total and total > 0 else None
        self.start = time.monotonic()
        self.last = self.start
        self.next_step = 1  # next 10 % step to report

    def update(self, done: int) -> None:
        now = time.monotonic()
        since = now - self.last
        if self.total is not None:
            crossed = done * 10 >= self.next_step * self.total
            due = (crossed and since >= PROGRESS_MIN_GAP_S) or since >= PROGRESS_HEARTBEAT_S
        else:
            due = since >= PROGRESS_EVERY_S
        if not due:
            return
        if self.total is not None:
            self.next_step = done * 10 // self.total + 1
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        if self.total is not None:
            pct = 100.0 * done / self.total
            eta = (self.total - done) / rate if rate > 0 else float("inf")
            eta_s = _human_seconds(eta) if eta != float("inf") else "?"
            self.log.info(
                "%s: %s of %s (%.0f %%), %s/s, ETA %s",
                self.shown, _human_bytes(done), _human_bytes(self.total), pct,
                _human_bytes(rate), eta_s,
            )
        else:
            self.log.info("%s: %s, %s/s", self.shown, _human_bytes(done), _human_bytes(rate))

    def finish(self, done: int) -> None:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        self.log.info(
            "%s: fetched %s in %s (%s/s)",
            self.shown, _human_bytes(done), _human_seconds(elapsed), _human_bytes(done / elapsed),
        )


# --------------------------------------------------------------------------------------------
# fetch


def _classify_source(source: str) -> tuple[str, str]:
    """('http', url) or ('file', local path)."""
    text = os.fspath(source)
    if not isinstance(text, str):
        raise DownloadError(f"{text!r}: source must be a URL or a path given as text")
    scheme = urllib.parse.urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in ("http", "https"):
        return "http", text
    if scheme == "file":
        parts = urllib.parse.urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise DownloadError(f"{text}: file:// URL with a remote host {parts.netloc!r} is not supported")
        return "file", urllib.request.url2pathname(urllib.parse.unquote(parts.path))
    if scheme:
        raise DownloadError(f"{_redact(text)}: unsupported URL scheme {scheme!r} (use http, https, file or a path)")
    return "file", text


def _copy_stream(src, out, hasher, progress: _Progress | None) -> int:
    done = 0
    while True:
        block = src.read(CHUNK)
        if not block:
            return done
        out.write(block)
        hasher.update(block)
        done += len(block)
        if progress is not None:
            progress.update(done)


def _attempt_file(path: str, tmp: Path, hasher, log, shown: str) -> int:
    p = Path(path)
    if not p.exists():
        raise _Fatal(f"local file not found: {path}")
    if not p.is_file():
        raise _Fatal(f"not a regular file: {path}")
    try:
        size = p.stat().st_size
        progress = _Progress(log, shown, size)
        with open(p, "rb") as src, open(tmp, "wb") as out:
            done = _copy_stream(src, out, hasher, progress)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise _Fatal(f"cannot read {path}: {exc}") from exc
    progress.finish(done)
    return done


def _retry_after(headers) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _attempt_http(url: str, tmp: Path, hasher, log, shown: str, timeout: float) -> int:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            length_header = resp.headers.get("Content-Length")
            try:
                expected = int(length_header) if length_header is not None else None
            except ValueError:
                expected = None
            if resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", ""):
                raise _Fatal(f"unexpected Content-Encoding {resp.headers.get('Content-Encoding')!r}")
            progress = _Progress(log, shown, expected)
            with open(tmp, "wb") as out:
                done = _copy_stream(resp, out, hasher, progress)
                out.flush()
                os.fsync(out.fileno())
    except urllib.error.HTTPError as exc:
        exc.close()
        problem = f"HTTP {exc.code} {exc.reason}"
        if exc.code >= 500 or exc.code in (408, 425, 429):
            err = _Transient(problem)
            err.retry_after = _retry_after(exc.headers)  # type: ignore[attr-defined]
            raise err from exc
        raise _Fatal(problem) from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise _Transient(f"timed out after {timeout:g} s") from exc
        raise _Transient(f"connection failed: {reason}") from exc
    except (TimeoutError, socket.timeout) as exc:
        raise _Transient(f"timed out after {timeout:g} s") from exc
    except http.client.IncompleteRead as exc:
        raise _Transient(f"incomplete read ({len(exc.partial)} bytes, {exc.expected} more expected)") from exc
    except (http.client.HTTPException, ConnectionError) as exc:
        raise _Transient(f"connection failed: {type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        # Local write problems (disk full, permissions) are not worth retrying.
        if exc.filename is not None or exc.errno in (28, 13, 30):
            raise _Fatal(f"cannot write {tmp}: {exc}") from exc
        raise _Transient(f"connection failed: {exc}") from exc
    if expected is not None and done != expected:
        raise _Transient(f"incomplete read: received {done} of {expected} bytes (Content-Length)")
    progress.finish(done)
    return done


def _check_gzip(path: Path) -> None:
    """Read a gzip file to its end; raise _Fatal when it is truncated or corrupt."""
    if path.stat().st_size == 0:
        raise _Fatal("gzip file is empty")
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(CHUNK):
                pass
    except EOFError as exc:
        raise _Fatal(f"truncated gzip file ({exc})") from exc
    except (OSError, zlib.error) as exc:
        raise _Fatal(f"corrupt gzip file ({exc})") from exc


def _is_gzip_name(*names: str) -> bool:
    return any(n.lower().endswith((".gz", ".tgz")) for n in names if n)


def fetch(
    source: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float = 60,
    backoff: float = 1.0,
    logger: logging.Logger | logging.LoggerAdapter | None = None,
) -> Path:
    """Fetch ``source`` to ``dest`` atomically and return ``dest`` as a Path.

    source   -- ``http(s)://`` URL, ``file://`` URL, or a plain (relative or absolute) local path.
    sha256   -- expected hex digest (case-insensitive; a ``sha256:`` prefix is allowed).
    retries  -- further attempts after the first for transient failures (connection errors,
                timeouts, HTTP 5xx/408/429, bodies shorter than Content-Length); 4xx, a missing
                local file, a checksum mismatch or a corrupt gzip fail at once.
    timeout  -- socket timeout in seconds (connect and each read).
    backoff  -- the wait before retry k is ``backoff * 2**(k-1)`` s (capped at 60 s; a
                Retry-After header is honoured up to the same cap).

    Raises DownloadError naming the (password-redacted) URL and the problem. On failure nothing
    is written under ``dest`` (an existing file there is left as it was) and the temporary file is
    removed.
    """
    log = logger if logger is not None else LOG
    source = os.fspath(source)
    shown = _redact(str(source))
    kind, location = _classify_source(source)
    expected_sha = _normalise_sha256(sha256, shown)
    dest = Path(dest)
    if dest.is_dir():
        raise DownloadError(f"{shown}: destination {dest} is a directory")
    attempts = 1 + max(0, int(retries))

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise DownloadError(f"{shown}: cannot create a temporary file next to {dest}: {exc}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    moved = False
    try:
        log.info("fetching %s -> %s", shown, dest)
        last_problem = ""
        for attempt in range(1, attempts + 1):
            hasher = hashlib.sha256()
            try:
                if kind == "file":
                    _attempt_file(location, tmp, hasher, log, shown)
                else:
                    _attempt_http(location, tmp, hasher, log, shown, timeout)
                break
            except _Fatal as exc:
                raise DownloadError(f"{shown}: {exc}") from exc
            except _Transient as exc:
                last_problem = str(exc)
                if attempt >= attempts:
                    raise DownloadError(
                        f"{shown}: {last_problem} (gave up after {attempts} attempt"
                        f"{'s' if attempts != 1 else ''})"
                    ) from exc
                delay = min(MAX_BACKOFF_S, max(0.0, backoff) * 2 ** (attempt - 1))
                retry_after = getattr(exc, "retry_after", None)
                if retry_after is not None:
                    delay = max(delay, min(MAX_BACKOFF_S, retry_after))
                log.warning(
                    "%s: %s; retrying in %.1f s (attempt %d of %d)",
                    shown, last_problem, delay, attempt + 1, attempts,
                )
                if delay > 0:
                    time.sleep(delay)

        actual = hasher.hexdigest()
        if expected_sha is not None and actual != expected_sha:
            raise DownloadError(
                f"{shown}: sha256 mismatch: expected {expected_sha}, got {actual}"
            )
        url_path = urllib.parse.urlsplit(location).path if kind == "http" else location
        if _is_gzip_name(dest.name, url_path):
            if _content_kind(tmp) == "zip":
                # 3CA serves some older studies as zip files under a .tar.gz name: the archive is
                # recognised by its content when it is extracted (safe_extract), so keep it
                log.warning("%s: named %s but the content is a zip archive (kept; archives are "
                            "extracted by content)", shown, dest.name)
            else:
                try:
                    _check_gzip(tmp)
                except _Fatal as exc:
                    raise DownloadError(f"{shown}: {exc}: {dest.name}") from exc
        try:
            give_default_mode(tmp, directory=False)
            os.replace(tmp, dest)
        except OSError as exc:
            raise DownloadError(f"{shown}: cannot move the download into place at {dest}: {exc}") from exc
        moved = True
        log.debug("%s: sha256 %s", shown, actual)
        return dest
    finally:
        if not moved:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            except OSError:  # pragma: no cover - nothing more we can do
                log.warning("could not remove temporary file %s", tmp)


# --------------------------------------------------------------------------------------------
# archives


def _suffix_kind(path: str | os.PathLike) -> str | None:
    """The archive kind the file name promises ('tar' or 'zip'), or None."""
    name = os.fspath(path).lower()
    for suffix, kind in ARCHIVE_SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    return None


# magic bytes at the start of a file -> (kind of container, compression)
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty zip (end-of-central-directory record only)
)


def _content_kind(path: str | os.PathLike) -> str | None:
    """What the file's first bytes say: 'zip', 'gzip', 'bzip2', 'xz', 'tar' (ustar magic at
    offset 257) or None (unknown; old v7 tars have no magic)."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def _archive_kind(path: str | os.PathLike) -> str | None:
    """'tar' or 'zip', decided by the content (magic bytes), not by the name: 3CA serves zip files
    named ``.tar.gz`` and gzip-compressed tars named ``.zip``. A compressed stream (gzip, bzip2,
    xz) counts as a tar when tarfile can read a first member; a file without a known magic is a tar
    when tarfile accepts it (v7 tars). None when it is neither. A kind that contradicts the name is
    logged (warning) and the content wins."""
    content = _content_kind(path)
    if content == "zip":
        kind = "zip" if zipfile.is_zipfile(path) else None
    else:
        try:
            kind = "tar" if tarfile.is_tarfile(path) else None
        except (OSError, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError):
            kind = None
        if kind is None and content in ("gzip", "bzip2", "xz"):
            # a compressed stream that is not (or no longer) a readable tar: let the extraction
            # report the exact problem (truncated, corrupt) when the name says it is a tar
            kind = "tar" if _suffix_kind(path) == "tar" else None
    named = _suffix_kind(path)
    if kind is not None and named is not None and named != kind:
        LOG.warning("%s: named like a %s archive but the content is a %s archive; extracting it as %s",
                    path, named, kind, kind)
    return kind


def archive_kind(path: str | os.PathLike) -> str | None:
    """'tar' or 'zip' when the file's *content* is a supported archive, else None."""
    return _archive_kind(path)


def is_archive(path: str | os.PathLike) -> bool:
    """True when the file name ends in a supported archive suffix.

    Supported: .tar, .tar.gz/.tgz, .tar.bz2/.tbz2/.tbz, .tar.xz/.txz and .zip. Decided by the name
    only (the file need not exist), so ``data.tsv.gz`` is not an archive. (:func:`safe_extract`
    decides by the content.)
    """
    return _suffix_kind(path) is not None


_DRIVE = re.compile(r"^[A-Za-z]:")


def _safe_relpath(archive: Path, name: str) -> PurePosixPath | None:
    """The member's path relative to the target, or None for the archive root ('./').

    Raises DownloadError for absolute paths, drive letters, '..' components and NUL bytes.
    """
    if "\x00" in name:
        raise DownloadError(f"{archive}: member {name!r} has a NUL byte in its name")
    norm = name.replace("\\", "/")
    if all(p in ("", ".") for p in norm.split("/")):
        # '/', './', '.', '//': the archive root itself (folder-download zips carry a '/' member,
        # libarchive issue #982); harmless, the caller skips it (a file of that name is an error)
        return None
    if norm.startswith("/") or _DRIVE.match(norm):
        raise DownloadError(f"{archive}: member {name!r} has an absolute path")
    parts = [p for p in PurePosixPath(norm).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise DownloadError(f"{archive}: member {name!r} escapes the target folder ('..')")
    if not parts:
        return None
    return PurePosixPath(*parts)


def _inside(root: Path, target: Path) -> bool:
    root_r = os.path.realpath(root)
    target_r = os.path.realpath(target)
    return target_r == root_r or target_r.startswith(root_r + os.sep)


def _plan_tar(archive: Path, tf: tarfile.TarFile) -> list[tuple[str, PurePosixPath, tarfile.TarInfo]]:
    plan = []
    for m in tf.getmembers():
        if m.issym() or m.islnk():
            where = "outside the target folder" if _link_escapes(m) else "to " + repr(m.linkname)
            raise DownloadError(
                f"{archive}: member {m.name!r} is a {'symbolic' if m.issym() else 'hard'} link "
                f"{where}; links are not allowed"
            )
        if m.ischr() or m.isblk() or m.isfifo() or m.isdev():
            raise DownloadError(f"{archive}: member {m.name!r} is a device or FIFO; not allowed")
        if not (m.isfile() or m.isdir()):
            raise DownloadError(f"{archive}: member {m.name!r} has unsupported type {m.type!r}")
        rel = _safe_relpath(archive, m.name)
        if rel is None:
            if m.isfile():
                raise DownloadError(f"{archive}: member {m.name!r} is a file without a name")
            continue
        plan.append(("dir" if m.isdir() else "file", rel, m))
    return plan


def _link_escapes(m: tarfile.TarInfo) -> bool:
    target = m.linkname.replace("\\", "/")
    if target.startswith("/") or _DRIVE.match(target):
        return True
    base = PurePosixPath(m.name.replace("\\", "/")).parent if m.issym() else PurePosixPath()
    depth = 0
    for part in list(base.parts) + list(PurePosixPath(target).parts):
        if part in ("", "."):
            continue
        depth = depth - 1 if part == ".." else depth + 1
        if depth < 0:
            return True
    return False


def _plan_zip(archive: Path, zf: zipfile.ZipFile) -> list[tuple[str, PurePosixPath, zipfile.ZipInfo]]:
    plan = []
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if info.create_system == 3 and mode:  # Unix attributes present
            if stat.S_ISLNK(mode):
                raise DownloadError(f"{archive}: member {info.filename!r} is a symbolic link; links are not allowed")
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                raise DownloadError(f"{archive}: member {info.filename!r} is a device, FIFO or socket; not allowed")
        if info.flag_bits & 0x1:
            raise DownloadError(f"{archive}: member {info.filename!r} is encrypted; not supported")
        rel = _safe_relpath(archive, info.filename)
        if rel is None:
            if not info.is_dir():
                raise DownloadError(f"{archive}: member {info.filename!r} is a file without a name")
            continue
        plan.append(("dir" if info.is_dir() else "file", rel, info))
    return plan


def _write_member(archive: Path, root: Path, rel: PurePosixPath, kind: str, opener, mode: int | None,
                  mtime: float | None) -> Path | None:
    target = root.joinpath(*rel.parts)
    if not _inside(root, target):  # belt and braces: names were already checked
        raise DownloadError(f"{archive}: member {str(rel)!r} escapes the target folder")
    if kind == "dir":
        target.mkdir(parents=True, exist_ok=True)
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    if not _inside(root, target.parent):
        raise DownloadError(f"{archive}: member {str(rel)!r} escapes the target folder")
    if target.is_dir() and not target.is_symlink():
        raise DownloadError(f"{archive}: member {str(rel)!r} is a file but a folder of that name exists")
    with opener() as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out, CHUNK)
    # Only the permission bits that matter: never setuid/setgid/sticky, always owner-writable.
    perm = 0o755 if (mode is not None and mode & 0o111) else 0o644
    os.chmod(target, perm)
    if mtime is not None:
        try:
            os.utime(target, (mtime, mtime))
        except (OSError, OverflowError, ValueError):
            pass
    return target


def _merge_into(src_root: Path, dest_root: Path, archive: Path) -> None:
    """Move the extracted tree into dest_root (which exists), replacing files of the same name."""
    # Check for conflicts first so that a clash leaves dest_root untouched.
    for dirpath, dirnames, filenames in os.walk(src_root):
        rel = Path(dirpath).relative_to(src_root)
        for d in dirnames:
            t = dest_root / rel / d
            if (t.exists() or t.is_symlink()) and not (t.is_dir() and not t.is_symlink()):
                raise DownloadError(f"{archive}: cannot extract folder {str(rel / d)!r}: {t} exists and is not a folder")
        for f in filenames:
            t = dest_root / rel / f
            if t.is_dir() and not t.is_symlink():
                raise DownloadError(f"{archive}: cannot extract file {str(rel / f)!r}: {t} is a folder")
    for entry in sorted(src_root.iterdir()):
        target = dest_root / entry.name
        if entry.is_dir() and target.is_dir() and not target.is_symlink():
            _merge_into(entry, target, archive)
        else:
            os.replace(entry, target)


def safe_extract(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> list[Path]:
    """Extract a tar (plain/gz/bz2/xz) or zip archive into ``dest_dir``; return the files written.

    The kind of archive is decided by the content (a zip named ``.tar.gz`` is extracted as a zip,
    with a warning). A directory member naming the root itself (``/``, ``./``) is skipped. Every
    member is checked before anything is written. Absolute names, ``..`` escapes, symbolic
    and hard links, devices and FIFOs raise DownloadError naming the archive and the member. The
    archive is unpacked into a temporary folder next to ``dest_dir`` and moved into place only when
    it went through completely (renamed when ``dest_dir`` is absent or empty, merged file by file
    otherwise), so a rejected or corrupt archive leaves nothing in ``dest_dir``. The returned
    paths are the regular files, under ``dest_dir``, in archive order.
    """
    archive = Path(archive)
    dest_dir = Path(dest_dir)
    if not archive.is_file():
        raise DownloadError(f"{archive}: archive not found")
    try:
        kind = _archive_kind(archive)
    except OSError as exc:
        raise DownloadError(f"{archive}: cannot read: {exc}") from exc
    if kind is None:
        raise DownloadError(f"{archive}: not a supported archive (tar, tar.gz, tar.bz2, tar.xz, zip; "
                            f"decided by the content, which is {_content_kind(archive) or 'none of these'})")
    if dest_dir.exists() and not dest_dir.is_dir():
        raise DownloadError(f"{archive}: extraction target {dest_dir} exists and is not a folder")

    try:
        dest_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.extract-", dir=dest_dir.parent))
    except OSError as exc:
        raise DownloadError(f"{archive}: cannot create a temporary folder next to {dest_dir}: {exc}") from exc
    written: dict[PurePosixPath, None] = {}  # ordered set: a name repeated in the archive counts once
    try:
        try:
            if kind == "tar":
                with tarfile.open(archive, "r:*") as tf:
                    plan = _plan_tar(archive, tf)
                    for what, rel, m in plan:
                        out = _write_member(
                            archive, staging, rel, what,
                            (lambda m=m: tf.extractfile(m)), m.mode, m.mtime,
                        )
                        if out is not None:
                            written[rel] = None
            else:
                with zipfile.ZipFile(archive) as zf:
                    plan = _plan_zip(archive, zf)
                    for what, rel, info in plan:
                        mode = (info.external_attr >> 16) if info.create_system == 3 else None
                        mtime = time.mktime(info.date_time + (0, 0, -1)) if info.date_time else None
                        out = _write_member(
                            archive, staging, rel, what,
                            (lambda info=info: zf.open(info)), mode, mtime,
                        )
                        if out is not None:
                            written[rel] = None
        except DownloadError:
            raise
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError,
                OSError, RuntimeError, ValueError, NotImplementedError) as exc:
            raise DownloadError(f"{archive}: cannot extract: {type(exc).__name__}: {exc}") from exc

        try:
            give_default_mode(staging, directory=True)  # mkdtemp made it private
            if not dest_dir.exists():
                os.replace(staging, dest_dir)
            elif not any(dest_dir.iterdir()):
                dest_dir.rmdir()
                os.replace(staging, dest_dir)
            else:
                _merge_into(staging, dest_dir, archive)
        except DownloadError:
            raise
        except OSError as exc:
            raise DownloadError(f"{archive}: cannot move the extracted files into {dest_dir}: {exc}") from exc
        LOG.info("extracted %d files from %s into %s", len(written), archive, dest_dir)
        return [dest_dir.joinpath(*rel.parts) for rel in written]
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def fetch_logged(source: str, dest: str | os.PathLike, log_path: str | os.PathLike, **kwargs) -> Path:
    """:func:`fetch` with its messages written to ``log_path`` (overwritten) through a logger of its
    own that does not propagate: for the workflow's download job, which runs inside Snakemake's
    process (rule ``download``), so Snakemake's own logging must not be touched. A failure is
    logged and re-raised."""
    from .runtime import LOG_FORMAT

    logger = logging.getLogger(f"oncoshot.download.job.{os.fspath(dest)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    logger.addHandler(handler)
    try:
        path = fetch(source, dest, logger=logger, **kwargs)
        logger.info("wrote %s", path)
        return path
    except Exception as exc:
        logger.error("%s", exc)
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()
