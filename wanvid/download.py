"""Fetch a finished task's video: resumable, atomic, and in constant memory.

The body streams into ``<dest>.part`` next to the destination, hashed as it is written.
A cut connection is resumed with an HTTP ``Range`` request (checked against the server's
``Content-Range``). Only a verified file is renamed onto ``dest``: its size agrees with
Content-Length and with the total of any Content-Range, its top-level MP4 boxes (``ftyp``
first) account exactly for its length (so a truncated ``mdat`` is caught without trusting
any header), and it matches a checksum of the whole object from the storage host: the
CRC-64 of ``x-oss-hash-crc64ecma`` (OSS sends it for every object, ranged answers
included; ``wanvid.crc64``), else the MD5 of a plain-MD5 ETag (OSS's for simply uploaded
objects). A download that fails verification starts again from byte 0 once; a second
failure is an error and nothing is saved. A host that sends neither checksum gives nothing
to check a spliced file against, so a cut download is never resumed there: it starts
again from byte 0 (a fresh whole body is checked by its length and MP4 boxes only). The API key never
goes to the storage host: the video URL is a pre-signed OSS URL and needs no credentials.

A small ``<dest>.part.json`` sidecar remembers which object (URL without its signature)
and which ETag/size/CRC-64 the ``.part`` belongs to, so a later download of a *different* video
to the same name starts afresh instead of splicing two videos together.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import queue
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.auth import AuthBase

from . import crc64
from .errors import (
    BadInputError,
    BusyError,
    DeadlineExceeded,
    NetworkError,
    TooLarge,
    URLExpiredError,
    WanvidError,
    WriteError,
)
from .journal import expires_from_url
from .net import Deadline, new_session, time_limit
from .outputs import PLACEHOLDERS, output_path, sanitize  # noqa: F401 - re-exported
from .retry import retry_delay, wait_to_retry

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("wanvid.download")

HTTP_RETRIES = 3  # 429 / 5xx answers retried this many times
MAX_RESTARTS = 3  # times the .part may be thrown away and the download started over
BACKOFF_BASE = 0.5  # seconds before the first retry; doubles, jittered (wanvid.retry)
MAX_BACKOFF = 8.0
HASH_BLOCK = 1 << 20
MAX_SIZE = 2 << 30  # bytes: the biggest video wanvid saves unless told (max_download_mb)
WRITEBACK_STEP = 16 << 20  # start writing to disk every 16 MiB rather than all at the end
CRC_HEADER = "x-oss-hash-crc64ecma"  # OSS: the whole object's CRC-64/XZ, in decimal


# Errors that mean "the connection broke"; anything else (a full disk...) is not a cut.
_CUT_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    urllib3.exceptions.HTTPError,
    http.client.IncompleteRead,
    ConnectionError,
    TimeoutError,
)




@dataclass
class DownloadResult:
    path: Path
    size: int
    sha256: str
    fetched: int  # bytes transferred over the network by this call
    resumed: bool  # an earlier partial download was continued
    skipped: bool  # the file was already there, identical; nothing was fetched


@dataclass(frozen=True)
class Limits:
    """What bounds one download in time and size (tests pass short values)."""

    connect: float = 10.0  # seconds to open a connection
    read: float = 30.0  # seconds without a byte before the connection counts as cut
    min_rate: float = 1024.0  # bytes/s: slower than this over `window` is a stall
    window: float = 30.0  # seconds the rate is averaged over
    stalls: int = 3  # stalled connections replaced by new ones before giving up
    max_size: int = MAX_SIZE  # bytes accepted when no Content-Length says (or it says more)
    # seconds from sending a request to the end of its response headers (None: connect +
    # read): a host that trickles its headers, or never sends a status line, is a stall
    headers: float | None = None

    def headers_limit(self) -> float:
        return self.headers if self.headers is not None else self.connect + self.read


class _Cut(Exception):
    """The body stopped before it was complete; resume from what is on disk."""


class _Stall(_Cut):
    """The body arrives too slowly; resume on a new connection."""


class _Restart(Exception):
    """What is on disk cannot be continued; start over from byte 0."""


class _Reverify(Exception):
    """The complete file failed verification: start over from byte 0 (once)."""


class _NoAuth(AuthBase):
    """Overrides any session auth (and ~/.netrc) and strips an Authorization header: the
    storage URL is pre-signed, and the API key must never reach the storage host."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.pop("Authorization", None)
        return r


# --- helpers -------------------------------------------------------------------------


def _source(url: str) -> str:
    """The object a signed URL points at, without the signature (which changes)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{parts.path}"


def _hash_file(path: Path | int, md5: bool = False,
               crc: bool = False) -> tuple[int, Any, Any, crc64.Crc64 | None]:
    """(size, sha256 object, md5 object or None, CRC-64 or None) of a file (a path, or an
    open fd read from offset 0 without moving it), read in blocks."""
    h = hashlib.sha256()
    m = hashlib.md5(usedforsecurity=False) if md5 else None
    c = crc64.Crc64() if crc else None
    size = 0
    buf = bytearray(HASH_BLOCK)
    view = memoryview(buf)

    def add(n: int) -> None:
        h.update(view[:n])
        if m is not None:
            m.update(view[:n])
        if c is not None:
            c.update(view[:n])

    if isinstance(path, int):
        while n := os.preadv(path, [buf], size):
            add(n)
            size += n
        return size, h, m, c
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            add(n)
            size += n
    return size, h, m, c


def crc_header(headers: Any) -> str | None:
    """The whole object's CRC-64 from ``x-oss-hash-crc64ecma`` (unsigned decimal, as OSS
    writes it), or None when absent or not a 64-bit number."""
    value = (headers.get(CRC_HEADER) or "").strip()
    if not value.isdigit() or len(value) > 20 or int(value) >= 1 << 64:
        return None
    return str(int(value))


def plain_md5(etag: str | None) -> str | None:
    """The MD5 (lower-case hex) a strong ETag of 32 hex digits stands for, else None
    (weak ETags, multipart ETags like ``"...-3"``, and opaque ones say nothing)."""
    if not etag:
        return None
    value = etag.strip()
    if value.startswith("W/"):
        return None
    value = value.strip('"')
    return value.lower() if re.fullmatch(r"[0-9a-fA-F]{32}", value) else None


MAX_BOXES = 100_000


def mp4_problem(read_at: Callable[[int, int], bytes], size: int) -> str | None:
    """Why a file of ``size`` bytes is not a complete MP4, or None when it is: the top-level
    boxes must start with ``ftyp`` and add up to exactly ``size`` (a size-0 box runs to the
    end). ``read_at(offset, n)`` reads n bytes at offset."""
    offset = 0
    count = 0
    while offset < size:
        count += 1
        if count > MAX_BOXES:
            return f"more than {MAX_BOXES} top-level boxes"
        head = read_at(offset, 16)
        if len(head) < 8:
            return f"{size - offset} stray bytes at the end (after {count - 1} boxes)"
        box_size, kind = int.from_bytes(head[:4], "big"), head[4:8]
        if count == 1 and kind != b"ftyp":
            return "no 'ftyp' box at the start"
        if not all(0x20 <= c < 0x7F for c in kind):
            return f"no box header at byte {offset} (damaged or spliced data)"
        name = kind.decode("ascii")
        header = 8
        if box_size == 1:
            if len(head) < 16:
                return f"box '{name}' at byte {offset} is cut off"
            box_size, header = int.from_bytes(head[8:16], "big"), 16
        elif box_size == 0:
            box_size = size - offset  # runs to the end of the file
        if box_size < header:
            return f"box '{name}' at byte {offset} has an impossible size {box_size}"
        if offset + box_size > size:
            return (f"box '{name}' at byte {offset} needs {box_size} bytes but the file "
                    f"ends after {size - offset}: the video is truncated")
        offset += box_size
    return None if count else "the file is empty"


def _backoff(n: int, retry_after: str | None = None, now: float | None = None) -> float:
    """The shared retry policy (``wanvid.retry``), with a download's shorter steps."""
    return retry_delay(n, retry_after, base=BACKOFF_BASE, cap=MAX_BACKOFF, now=now)


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)\s*/\s*(\d+|\*)\s*$", re.I)


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None] | None:
    """``bytes 10-99/100`` -> (10, 99, 100); ``bytes */100`` -> (None, None, 100)."""
    m = _CONTENT_RANGE.match(value or "")
    if not m:
        return None
    start = int(m.group(1)) if m.group(1) is not None else None
    end = int(m.group(2)) if m.group(2) is not None else None
    total = int(m.group(3)) if m.group(3) != "*" else None
    return start, end, total


def _content_length(resp: requests.Response) -> int | None:
    enc = resp.headers.get("Content-Encoding", "identity").strip().lower()
    value = resp.headers.get("Content-Length", "")
    if enc not in ("", "identity") or not value.strip().isdigit():
        return None  # a decoded body's length is not the header's
    return int(value)


def _body_chunks(resp: requests.Response, chunk_size: int) -> Iterator[bytes]:
    """The body as it arrives. ``read1`` hands over whatever one socket read brought, so a
    cut loses nothing already received (``iter_content`` drops a partly filled chunk)."""
    raw = resp.raw
    if not hasattr(raw, "read1") or not isinstance(raw, urllib3.response.BaseHTTPResponse):
        yield from resp.iter_content(chunk_size)  # urllib3 1.x
        return
    while data := raw.read1(chunk_size, decode_content=True):
        yield data


class _HashPipe:
    """sha256 (and the MD5 or CRC-64 verified against) computed on a worker thread, so
    hashing overlaps the network reads and disk writes (hashlib and the liblzma CRC release
    the GIL). At most ``depth`` chunks wait in the queue."""

    def __init__(self, h: Any, count: int = 0, depth: int = 8, md5: Any = None,
                 crc: crc64.Crc64 | None = None) -> None:
        self._h = h
        self._md5 = md5
        self._crc = crc
        self.count = count  # bytes handed over so far
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._t = threading.Thread(target=self._run, name="wanvid-sha256", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while True:
            data = self._q.get()
            try:
                if data is None:
                    return
                self._h.update(data)
                if self._md5 is not None:
                    self._md5.update(data)
                if self._crc is not None:
                    self._crc.update(data)
            finally:
                self._q.task_done()

    def update(self, data: bytes) -> None:
        self._q.put(data)
        self.count += len(data)

    def hexdigest(self) -> str:
        self._q.join()
        return str(self._h.hexdigest())

    @property
    def has_md5(self) -> bool:
        return self._md5 is not None

    def md5(self) -> str | None:
        self._q.join()
        return None if self._md5 is None else str(self._md5.hexdigest())

    @property
    def has_crc(self) -> bool:
        return self._crc is not None

    def crc(self) -> str | None:
        self._q.join()
        return None if self._crc is None else self._crc.digest()

    def close(self) -> None:
        if self._t.is_alive():
            self._q.put(None, timeout=30)
            self._t.join(timeout=30)

    def abandon(self) -> None:
        """Stop without waiting: never blocks (the thread is a daemon). A Ctrl-C that
        landed inside ``Queue.put`` can leave the queue's lock held, and even
        ``put_nowait`` takes that lock: only try when the lock can be had at once."""
        if not self._q.mutex.acquire(blocking=False):
            return  # the thread stays parked; it is a daemon and holds nothing of ours
        self._q.mutex.release()
        with contextlib.suppress(queue.Full):
            self._q.put_nowait(None)


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing this range to disk now, so the final fsync has
    little left to wait for (Linux starts writeback on POSIX_FADV_DONTNEED)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        with contextlib.suppress(OSError):
            advise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _write_all(f: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = f.write(view)
        view = view[n or 0:]


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_video_url(url: str) -> None:
    """A video URL from the service must be http(s) with a host and a valid port: anything
    else (``file://``, ``ftp://``, no scheme, port 99999) is a ``NetworkError`` naming the
    problem, never an unexpected exception."""
    problem = None
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError as e:
        problem, parts, port = str(e), None, None
    if parts is not None and problem is None:
        if parts.scheme.lower() not in ("http", "https"):
            problem = (f"scheme {parts.scheme!r} is not http(s)" if parts.scheme
                       else "it has no scheme")
        elif not parts.hostname:
            problem = "it has no host"
        elif port == 0:
            problem = "port 0"
    if problem is not None:
        shown = url if len(url) <= 80 else url[:77] + "..."
        shown = "".join(c if c.isprintable() else "?" for c in shown)
        raise NetworkError(f"the service gave a video URL that cannot be fetched ({problem}): "
                           f"{shown}")


def _unusable(url: str, e: requests.exceptions.RequestException) -> str:
    host = urlsplit(url).hostname
    if isinstance(e, requests.exceptions.TooManyRedirects):
        return f"{host}: the video URL redirects in a loop (or more than 30 times)"
    what = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
    return f"{host}: the video URL cannot be fetched ({type(e).__name__}: {what})"


def _expired_message(url: str, status: int, now: float) -> str:
    expires = expires_from_url(url)
    if expires is not None and expires <= now:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires))
        return (f"the video URL expired at {when}: its 24-hour window has passed, so the "
                "task must be generated again")
    return (f"the storage host refused the video URL (HTTP {status}): its 24-hour window "
            "has probably passed, so the task must be generated again")


def _size(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n} bytes"


class _RateWatch:
    """Counts a connection's bytes per ``window`` seconds; fewer than ``min_rate`` per second
    over a whole window is a stall (``_Stall``): the connection is replaced, as curl's
    ``--speed-limit``/``--speed-time`` would abort it. A connection that sends nothing at
    all is caught by the read timeout instead."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.since = clock()
        self.count = 0

    def add(self, n: int) -> None:
        self.count += n
        now = self.clock()
        elapsed = now - self.since
        if elapsed < self.limits.window:
            return
        if self.count < self.limits.min_rate * elapsed:
            raise _Stall(f"{self.count / elapsed:.0f} bytes/s over {elapsed:.0f} s, under the "
                         f"{self.limits.min_rate:.0f} bytes/s minimum")
        self.since, self.count = now, 0


# --- the .part file ------------------------------------------------------------------


class _Part:
    """``<dest>.part`` opened and (on POSIX) locked for the whole download, plus its
    ``.part.json`` resume record.

    Nothing here follows a symlink: the ``.part`` is opened with ``O_NOFOLLOW`` (and
    created with ``O_CREAT|O_EXCL``), must be a regular file with no other hard link, and
    the resume record is read with ``O_NOFOLLOW`` and written as a fresh file renamed into
    place. In a shared output directory someone else may plant a link where wanvid's file
    should be; it is refused (``WriteError`` naming it), never written through."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.path = dest.with_name(dest.name + ".part")
        self.meta_path = dest.with_name(dest.name + ".part.json")
        refuse_link(self.meta_path, "its resume record")
        self.f: IO[bytes] = self._open_locked()

    def _open(self) -> int:
        """An fd on the .part: the existing file, or a new one created exclusively."""
        while True:
            try:
                return os.open(self.path, os.O_RDWR | _NOFOLLOW | _NONBLOCK)
            except FileNotFoundError:
                pass
            except OSError as e:
                refuse_link(self.path, "a partial download")
                raise WriteError(f"{self.path}: cannot open file: {e.strerror}") from e
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW,
                               0o644)
            except FileExistsError:
                continue  # created (or planted) meanwhile: look again
            except OSError as e:
                raise WriteError(f"{self.path}: cannot create file: {e.strerror}") from e

    def _open_locked(self) -> IO[bytes]:
        while True:
            fd = self._open()
            f = os.fdopen(fd, "r+b", buffering=0)
            try:
                _regular_alone(self.path, os.fstat(fd))
            except WriteError:
                f.close()
                raise
            if fcntl is None:
                return f
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                f.close()
                raise BusyError(
                    f"{self.dest}: another wanvid process is downloading to this file") from e
            try:  # the file we locked may have been renamed onto dest meanwhile
                if os.lstat(self.path).st_ino == os.fstat(fd).st_ino:
                    return f
            except FileNotFoundError:
                pass
            f.close()

    def size(self) -> int:
        return os.fstat(self.f.fileno()).st_size

    def read_meta(self) -> dict[str, Any] | None:
        refuse_link(self.meta_path, "its resume record")
        try:
            fd = os.open(self.meta_path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            with os.fdopen(fd, "rb") as f:
                fd = -1
                raw = f.read(64 << 10)
            meta = json.loads(raw)
        except (OSError, ValueError):
            return None
        finally:
            if fd >= 0:
                os.close(fd)
        return meta if isinstance(meta, dict) else None

    def write_meta(self, meta: dict[str, Any]) -> None:
        """A fresh file (``O_EXCL``) renamed over the record: a link planted at its name
        is refused, and one planted in between is replaced, never written through."""
        refuse_link(self.meta_path, "its resume record")
        tmp = self.meta_path.with_name(f".{self.meta_path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(meta).encode())
            os.replace(tmp, self.meta_path)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise WriteError(f"{self.meta_path}: cannot write: {e.strerror}") from e

    def truncate(self) -> None:
        self.f.seek(0)
        self.f.truncate(0)
        with contextlib.suppress(FileNotFoundError):
            self.meta_path.unlink()  # unlinking a link removes the link, not its target

    def head(self) -> bytes:
        return os.pread(self.f.fileno(), 8, 0) if hasattr(os, "pread") else self._head()

    def _head(self) -> bytes:  # pragma: no cover - Windows
        pos = self.f.tell()
        self.f.seek(0)
        data = self.f.read(8)
        self.f.seek(pos)
        return data

    def discard(self) -> None:
        self.f.close()
        for p in (self.path, self.meta_path):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def commit(self) -> None:
        """fsync, then atomically rename onto dest (keeping the lock across the rename
        on POSIX, so nobody can open the file under its .part name in between). A symlink
        at dest is refused (the .part is kept: remove the link and run again); a rename
        replaces whatever is at the name and never writes through it."""
        os.fsync(self.f.fileno())
        refuse_link(self.dest, "the video's name")
        if os.name != "posix":  # pragma: no cover - Windows can't rename an open file
            self.f.close()
        try:
            os.replace(self.path, self.dest)
        except OSError as e:
            raise WriteError(f"{self.dest}: cannot write: {e.strerror}") from e
        finally:
            self.f.close()
        with contextlib.suppress(FileNotFoundError):
            self.meta_path.unlink()
        _fsync_dir(self.dest.parent)

    def close(self) -> None:
        self.f.close()


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted at the name must not block open


def refuse_link(path: Path, what: str) -> None:
    """``WriteError`` (exit 9) naming ``path`` when a symbolic link is there: wanvid never
    writes through, over or beside a link where its own file belongs."""
    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise WriteError(f"{path}: is a symbolic link where wanvid keeps {what}; refused, "
                         "nothing written through it (remove the link, or choose another -o)")


def _regular_alone(path: Path, st: os.stat_result) -> None:
    """A .part must be a regular file with no other name (a hard link to someone else's
    file would be overwritten just like a symlink's target)."""
    if not stat.S_ISREG(st.st_mode):
        raise WriteError(f"{path}: is not a regular file; refused, nothing written to it "
                         "(remove it, or choose another -o)")
    if st.st_nlink > 1:
        raise WriteError(f"{path}: has {st.st_nlink - 1} other hard link(s); refused, nothing "
                         "written to it (remove it, or choose another -o)")


# --- download ------------------------------------------------------------------------


def download(url: str, dest: Path, *, force: bool = False,
             session: requests.Session | None = None,
             on_progress: Callable[[int, int | None], None] | None = None,
             max_resumes: int = 5, chunk_size: int = 1 << 20,
             expected_sha256: str | None = None, adopt: bool = False,
             sleep: Callable[[float], None] = time.sleep, limits: Limits | None = None,
             deadline: Deadline | None = None,
             notify: Callable[[str], None] | None = None,
             now: Callable[[], float] = time.time) -> DownloadResult:
    """Download ``url`` to ``dest`` (see the module docstring).

    Bounded: every connection has ``limits`` (connect and read timeouts, a minimum rate
    below which it is replaced, a size cap), and ``deadline`` (the command's --timeout)
    ends the download wherever it is with ``DeadlineExceeded``, the ``.part`` kept.
    ``notify`` hears about long waits before a retry. ``now`` is the wall clock (epoch
    seconds) the URL's expiry is compared with.

    Raises ``BadInputError`` if ``dest`` exists (unless ``force``, or ``expected_sha256``
    matches it, or ``adopt`` is set and it is a complete copy of the object at ``url``:
    then ``skipped`` is set), ``URLExpiredError`` when
    the storage host refuses the URL, ``NetworkError`` when the connection keeps failing
    (the ``.part`` is kept for a later resume) or the body is not an MP4 video.
    """
    check_video_url(url)
    lim = limits or Limits()
    deadline = deadline if deadline is not None else Deadline(None)
    dest = Path(dest).expanduser()
    refuse_link(dest, "the video's name")
    if dest.is_dir():
        raise BadInputError(f"{dest}: is a directory; choose a file name with -o")
    if dest.exists() and not force:  # returns only if identical
        size, digest = _check_existing(dest, expected_sha256, url if adopt else None,
                                       session, lim, deadline)
        return DownloadResult(dest, size, digest, 0, False, True)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(f"{dest.parent}: cannot create directory: {e.strerror}") from e

    part = _Part(dest)
    own_session = session is None
    sess = session if session is not None else new_session()
    committed = False
    try:
        if dest.exists() and not force:  # another process finished it meanwhile
            size, digest = _check_existing(dest, expected_sha256, url if adopt else None,
                                           sess, lim, deadline)
            part.discard()
            return DownloadResult(dest, size, digest, 0, False, True)
        fetcher = _Fetcher(url, part, sess, on_progress=on_progress, max_resumes=max_resumes,
                           limits=lim, chunk_size=chunk_size, sleep=sleep, deadline=deadline,
                           notify=notify, now=now)
        size, digest = fetcher.run()
        if expected_sha256 and digest != expected_sha256.lower():
            part.discard()
            raise NetworkError(f"{dest}: downloaded video's sha256 {digest} does not match "
                               f"the expected {expected_sha256}")
        part.commit()
        committed = True
        return DownloadResult(dest, size, digest, fetcher.fetched, fetcher.resumed, False)
    except URLExpiredError:
        part.discard()  # the URL is dead for good: these bytes can never be completed
        raise
    finally:
        if not committed and not part.f.closed and part.size() == 0:
            part.discard()  # nothing worth keeping
        part.close()
        if own_session:
            sess.close()


def _check_existing(dest: Path, expected_sha256: str | None, adopt_url: str | None = None,
                    session: requests.Session | None = None, limits: Limits | None = None,
                    deadline: Deadline | None = None) -> tuple[int, str]:
    """(size, sha256) of ``dest`` if it is the expected file (or, with ``adopt_url``, a
    complete verified copy of that object); otherwise BadInputError."""
    if expected_sha256:
        size, h, _, _ = _hash_file(dest)
        if h.hexdigest() == expected_sha256.lower():
            return size, h.hexdigest()
    if adopt_url is not None:
        found = same_as_remote(adopt_url, dest, session=session, limits=limits,
                               deadline=deadline)
        if found is not None:
            return found
    raise BadInputError(
        f"{dest}: file exists; pass --force to overwrite it, or choose another -o")


def same_as_remote(url: str, path: Path, *, session: requests.Session | None = None,
                   limits: Limits | None = None,
                   deadline: Deadline | None = None) -> tuple[int, str] | None:
    """(size, sha256) of ``path`` when it is a complete MP4 identical to the object at
    ``url``, else None. This is how a video saved by a run that died (or could not write
    the journal) before recording it is recognised: with the object's CRC-64
    (``x-oss-hash-crc64ecma``) or a plain-MD5 ETag, size and that checksum are compared
    and no body is fetched; otherwise the body is compared with the file as
    it streams, stopping at the first difference. Network trouble counts as "not known
    to be the same" (None); so does a body that runs past the file's size. The deadline
    (``DeadlineExceeded``) is not network trouble."""
    lim = limits or Limits()
    deadline = deadline if deadline is not None else Deadline(None)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if mp4_problem(lambda off, n: os.pread(f.fileno(), n, off), size) is not None:
                return None
    except OSError:
        return None
    sess = session if session is not None else new_session()
    doing = "while comparing a file with the storage host's copy"
    try:
        with deadline.watch(None):
            return _compare_remote(sess, url, path, size, lim, deadline, doing)
    except (requests.exceptions.RequestException, *_CUT_ERRORS, OSError, _Cut):
        deadline.check(doing)
        return None
    finally:
        if session is None:
            sess.close()


def _compare_remote(sess: requests.Session, url: str, path: Path, size: int, lim: Limits,
                    deadline: Deadline, doing: str) -> tuple[int, str] | None:
    with time_limit(lim.headers_limit()) as alarm:  # as for a download: headers in time
        resp = sess.get(url, headers={"Accept-Encoding": "identity"}, stream=True,
                        timeout=deadline.timeout(lim.connect, lim.read), auth=_NoAuth())
    if alarm.fired:
        resp.close()
        return None
    rate = _RateWatch(lim)  # a trickling body is "not known to be the same"
    with resp:
        if resp.status_code != 200:
            return None
        length = _content_length(resp)
        if length is not None and length != size:
            return None
        md5 = plain_md5(resp.headers.get("ETag"))
        crc = crc_header(resp.headers)
        if crc is not None and length is not None and (md5 is None or crc64.fast()):
            got_size, h, _, c = _hash_file(path, crc=True)
            return (got_size, h.hexdigest()) if c is not None and c.digest() == crc else None
        if md5 is not None and length is not None:
            got_size, h, m, _ = _hash_file(path, md5=True)
            return (got_size, h.hexdigest()) if m.hexdigest() == md5 else None
        h = hashlib.sha256()
        seen = 0
        with open(path, "rb") as f:
            for chunk in _body_chunks(resp, 1 << 20):
                mine = f.read(len(chunk))
                if mine != chunk:
                    return None  # also ends a body longer than the file
                h.update(chunk)
                seen += len(chunk)
                deadline.check(doing)
                rate.add(len(chunk))
        return (size, h.hexdigest()) if seen == size else None


class _Fetcher:
    def __init__(self, url: str, part: _Part, session: requests.Session, *,
                 on_progress: Callable[[int, int | None], None] | None, max_resumes: int,
                 limits: Limits, chunk_size: int, sleep: Callable[[float], None],
                 deadline: Deadline, notify: Callable[[str], None] | None,
                 now: Callable[[], float] = time.time) -> None:
        self.url = url
        self.now = now
        self.part = part
        self.session = session
        self.on_progress = on_progress
        self.max_resumes = max_resumes
        self.limits = limits
        self.deadline = deadline
        self.notify = notify
        self.host = urlsplit(url).hostname or "the storage host"
        self.chunk_size = max(int(chunk_size), 8)
        self.sleep = sleep
        self.source = _source(url)
        self.fetched = 0
        self.resumed = False
        self.cuts = 0
        self.stalls = 0
        self.http_errors = 0
        self.restarts = 0
        # sha256 of the first `pipe.count` bytes of the .part, carried across resumes
        self.pipe: _HashPipe | None = None
        self.meta: dict[str, Any] | None = None
        self.verify_restarted = False  # a verification failure has restarted it once

    # -- bookkeeping --

    def _restart(self) -> None:
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            raise NetworkError(f"{urlsplit(self.url).hostname}: the server keeps answering "
                               "range requests inconsistently; giving up")
        self.part.truncate()
        self._drop_pipe()
        self.meta = None

    def _kept(self) -> str:
        size = self.part.size()
        if not size:
            return "no byte of the video had arrived yet"
        if self.meta is not None and "crc64" in self.meta and not self._verifiable():
            return (f"{size} bytes had arrived, but the storage host sends no checksum of "
                    "the whole video to verify a resumed file with, so the next attempt "
                    "starts again from byte 0")
        return (f"{size} bytes are kept in {self.part.path} and the next attempt "
                "continues from there")

    def _cut(self, cut: _Cut) -> None:
        """A connection that broke or stalled: resume on a new one, a few times."""
        self._check_deadline()
        if isinstance(cut, _Stall):  # a new connection at once: waiting helps nothing
            self.stalls += 1
            if self.stalls > self.limits.stalls:
                raise NetworkError(
                    f"download of {self.part.dest.name} stalled ({cut}) on "
                    f"{self.stalls} connections; {self._kept()}")
            log.debug("%s: %s; resuming on a new connection", self.part.dest.name, cut)
            return
        self.cuts += 1
        if self.cuts > self.max_resumes:
            raise NetworkError(
                f"download of {self.part.dest.name} kept failing ({cut}) after "
                f"{self.max_resumes} resumes; {self._kept()}")
        self._pause(_backoff(self.cuts), throttled=False)

    def _pause(self, delay: float, *, throttled: bool) -> None:
        try:
            wait_to_retry(delay, deadline=self.deadline, sleep=self.sleep, notify=self.notify,
                          throttled=throttled, who=f"the storage host {self.host}")
        except DeadlineExceeded as e:
            raise DeadlineExceeded(f"{e.message}; {self._kept()}") from None

    def _check_deadline(self) -> None:
        if self.deadline.expired():
            raise DeadlineExceeded(self.deadline.message(
                f"while downloading {self.part.dest.name}") + f"; {self._kept()}")

    def _drop_pipe(self) -> None:
        if self.pipe is not None:
            self.pipe.close()
            self.pipe = None

    def _checks(self) -> tuple[str | None, str | None]:
        """(CRC-64, MD5) the complete file is verified against: the CRC when the host sent
        one (unless only the slow pure-Python CRC is at hand and an MD5 ETag will do), else
        the MD5 of a plain-MD5 ETag; (None, None) when the host sent neither."""
        meta = self.meta or {}
        crc = meta.get("crc64") if isinstance(meta.get("crc64"), str) else None
        md5 = plain_md5(meta.get("etag"))
        if crc is not None and (md5 is None or crc64.fast()):
            return crc, None
        return None, md5

    def _verifiable(self) -> bool:
        return self._checks() != (None, None)

    def _pipe_at(self, offset: int) -> _HashPipe:
        """A hash pipe holding the sha256 (and the CRC-64 or MD5 of ``_checks``) of the
        first ``offset`` bytes of the .part."""
        want_crc, want_md5 = (x is not None for x in self._checks())
        if self.pipe is None or self.pipe.count != offset or (
                want_md5 and not self.pipe.has_md5) or (want_crc and not self.pipe.has_crc):
            self._drop_pipe()
            if offset:
                size, h, m, c = _hash_file(self.part.f.fileno(), md5=want_md5, crc=want_crc)
                if size != offset:
                    raise _Restart
            else:
                h = hashlib.sha256()
                m = hashlib.md5(usedforsecurity=False) if want_md5 else None
                c = crc64.Crc64() if want_crc else None
            self.pipe = _HashPipe(h, offset, md5=m, crc=c)
        return self.pipe

    def _adopt_checks(self, resp: requests.Response, total: int | None) -> None:
        """Before continuing the .part with a ranged answer (206, or a 416 saying it is
        complete): take the whole object's checksums it carries into the resume record
        (a CRC that differs from the recorded one means the object changed), and refuse
        to continue (``_Restart``: from byte 0) when nothing can verify the spliced file."""
        meta = dict(self.meta or {"source": self.source, "etag": resp.headers.get("ETag"),
                                  "total": total})
        crc = crc_header(resp.headers)
        if crc is not None and meta.get("crc64") not in (None, crc):
            raise _Restart  # the object changed since the .part was started
        changed = self.meta is None or (crc is not None and meta.get("crc64") != crc)
        if crc is not None:
            meta["crc64"] = crc
        self.meta = meta
        if not self._verifiable():
            log.debug("%s: the storage host sends no checksum of the whole object, so a "
                      "resumed file could not be verified; starting again from byte 0",
                      self.part.dest.name)
            raise _Restart
        if changed:
            self.part.write_meta(meta)

    def _verify(self, size: int, pipe: _HashPipe) -> str:
        """The sha256 of the complete .part once it is verified (see the module docstring);
        a failure starts the download again from byte 0 once, then is an error."""
        problem = mp4_problem(self._read_at, size)
        expected_crc, expected_md5 = self._checks()
        if problem is None and expected_crc is not None:
            got = pipe.crc()
            if got != expected_crc:
                problem = (f"its CRC-64 {got} does not match the storage host's "
                           f"{CRC_HEADER} {expected_crc}")
        elif problem is None and expected_md5 is not None:
            got = pipe.md5()
            if got is not None and got != expected_md5:
                problem = (f"its MD5 {got} does not match the storage host's ETag "
                           f"{expected_md5}")
        if problem is None:
            return pipe.hexdigest()
        if not self.verify_restarted:
            self.verify_restarted = True
            raise _Reverify(problem)
        self.part.discard()
        raise NetworkError(f"{urlsplit(self.url).hostname}: the downloaded video failed "
                           f"verification twice ({problem}); nothing was saved")

    def _read_at(self, offset: int, n: int) -> bytes:
        return os.pread(self.part.f.fileno(), n, offset)

    # -- main loop --

    def run(self) -> tuple[int, str]:
        self.meta = self.part.read_meta()
        offset = self.part.size()
        if offset and self.meta is not None and self.meta.get("source") != self.source:
            self.part.truncate()  # a different video's leftovers
            self.meta = None
        try:
            while True:
                self._check_deadline()
                try:
                    with self.deadline.watch(None):  # shuts the connection at the deadline
                        result = self._attempt()
                except _Cut as cut:
                    self._cut(cut)
                    continue
                except _Restart:
                    self._restart()
                    continue
                except _Reverify as why:
                    log.debug("%s failed verification (%s); starting again from byte 0",
                              self.part.dest.name, why)
                    self.part.truncate()
                    self._drop_pipe()
                    self.meta = None
                    continue
                if result is not None:
                    return result
        except BaseException:
            # Unwinding (Ctrl-C, errors): abandon the hashing thread (a daemon) instead of
            # joining it; a KeyboardInterrupt that landed inside Queue.put may have left
            # the queue unable to wake it, and a join would hang forever.
            if self.pipe is not None:
                self.pipe.abandon()
                self.pipe = None
            raise
        finally:
            self._drop_pipe()

    def _request(self, offset: int) -> requests.Response:
        headers = {"Accept-Encoding": "identity"}  # _NoAuth drops any Authorization
        if offset:
            headers["Range"] = f"bytes={offset}-"
            etag = (self.meta or {}).get("etag")
            if etag and not etag.startswith("W/"):
                headers["If-Range"] = etag
        limit = self.limits.headers_limit()
        stuck = f"no response headers from {self.host} within {limit:g} s"
        with time_limit(limit) as alarm:  # a per-read timeout never ends a trickle
            try:
                resp = self.session.get(
                    self.url, headers=headers, stream=True, auth=_NoAuth(),
                    timeout=self.deadline.timeout(self.limits.connect, self.limits.read))
            except _CUT_ERRORS as e:
                if alarm.fired:
                    raise _Stall(stuck) from e
                raise _Cut(type(e).__name__) from e
            except requests.exceptions.RequestException as e:  # a redirect loop, a bad Location
                if alarm.fired:
                    raise _Stall(stuck) from e
                raise NetworkError(_unusable(self.url, e)) from None
        if alarm.fired:  # went off as the headers came: the socket is shut, start anew
            resp.close()
            raise _Stall(stuck)
        return resp

    def _attempt(self) -> tuple[int, str] | None:
        offset = self.part.size()
        if offset and self.meta is not None and "crc64" in self.meta and not self._verifiable():
            # The host sent no checksum of the whole object (no CRC-64, no MD5 ETag): a
            # spliced file could hold wrong bytes that nothing would show, so never resume.
            # (A record without the key is an older wanvid's: the 206 tells, _adopt_checks.)
            log.debug("%s: no checksum to verify a resumed file against; fetching it whole "
                      "again", self.part.dest.name)
            self.part.truncate()
            self._drop_pipe()
            self.meta = None
            offset = 0
        # Said before the request, so a display shows the download (not the status query
        # before it) while a slow host has not answered yet.
        total = (self.meta or {}).get("total") if offset else None
        self._progress(offset, total if isinstance(total, int) else None)
        resp = self._request(offset)
        with resp:
            status = resp.status_code
            if status == 416 and offset:
                rng = _content_range(resp.headers.get("Content-Range"))
                if rng is not None and rng[2] == offset:  # the .part is already complete
                    self._adopt_checks(resp, offset)
                    self._check_mp4(offset)
                    digest = self._verify(offset, self._pipe_at(offset))
                    self.resumed = True
                    self._progress(offset, offset)
                    return offset, digest
                raise _Restart
            if status == 403 or (status == 404 and self._url_expired()):
                raise URLExpiredError(_expired_message(self.url, status, self.now()),
                                      code="URLExpired")
            if status == 429 or status >= 500:
                self.http_errors += 1
                if self.http_errors > HTTP_RETRIES:
                    raise NetworkError(f"{urlsplit(self.url).hostname} answered HTTP {status} "
                                       f"{resp.reason or ''}".rstrip() + " after retries")
                self._pause(_backoff(self.http_errors, resp.headers.get("Retry-After"),
                                     self.now()),
                            throttled=status == 429)
                return None
            if status not in (200, 206):
                raise NetworkError(f"{urlsplit(self.url).hostname} answered HTTP {status} "
                                   f"{resp.reason or ''} for the video URL".rstrip())

            start, total = self._body_start(resp, offset)
            self._check_size(total, start)
            if start == 0:
                self.part.truncate()  # whatever was there is replaced, tail included
                self.meta = {"source": self.source, "etag": resp.headers.get("ETag"),
                             "total": total, "crc64": crc_header(resp.headers)}
                self.part.write_meta(self.meta)
            else:
                self.resumed = True
            pipe = self._pipe_at(start)
            done = self._stream(resp, start, total, pipe)
        if total is not None and done < total:
            raise _Cut(f"connection closed after {done} of {total} bytes")
        if total is not None and done > total:
            self.part.discard()
            raise NetworkError(f"{urlsplit(self.url).hostname} sent {done} bytes, more than "
                               f"the {total} it announced")
        if self.part.size() != done:
            raise _Restart  # the file is not what we wrote: start clean
        self._check_mp4(done)
        return done, self._verify(done, pipe)

    def _url_expired(self) -> bool:
        expires = expires_from_url(self.url)
        return expires is not None and expires <= self.now()

    def _body_start(self, resp: requests.Response, offset: int) -> tuple[int, int | None]:
        """Where the body starts in the file and the file's total size (if known)."""
        if resp.status_code == 200:
            return 0, _content_length(resp)  # a fresh full body (Range ignored or unsent)
        rng = _content_range(resp.headers.get("Content-Range"))
        if rng is None or rng[0] is None or rng[0] != offset:
            raise _Restart  # not the bytes we asked for
        total = rng[2]
        length = _content_length(resp)
        if total is not None and (rng[1] != total - 1 or (
                length is not None and length != total - offset)):
            raise _Restart  # the range, its total and the body's length disagree
        meta = self.meta or {}
        etag = resp.headers.get("ETag")
        if offset and ((meta.get("total") is not None and total != meta["total"])
                       or (etag and meta.get("etag") and etag != meta["etag"])):
            raise _Restart  # the object changed since the .part was started
        self._adopt_checks(resp, total)
        return offset, total

    def _check_size(self, total: int | None, start: int) -> None:
        cap = self.limits.max_size
        if total is not None and total > cap:
            if start == 0:
                self.part.discard()
            raise TooLarge(f"{self.host} announced a video of {_size(total)}, more than the "
                           f"{_size(cap)} wanvid saves (raise max_download_mb to allow it); "
                           "nothing more was fetched")

    def _too_long(self, done: int, total: int | None) -> WanvidError:
        self.part.discard()
        if total is not None:
            return NetworkError(f"{self.host} sent more than the {total} bytes it announced; "
                                "nothing was saved")
        return TooLarge(f"{self.host} sent more than {_size(self.limits.max_size)} without "
                        "announcing a size; refused and nothing was saved (raise "
                        "max_download_mb if the video really is that big)")

    def _progress(self, done: int, total: int | None) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total)

    def _stream(self, resp: requests.Response, start: int, total: int | None,
                pipe: _HashPipe) -> int:
        f = self.part.f
        f.seek(start)
        done = flushed = start
        self._progress(done, total)
        chunks = _body_chunks(resp, self.chunk_size)
        checked = start >= 8
        limit = total if total is not None else self.limits.max_size
        rate = _RateWatch(self.limits)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except _CUT_ERRORS as e:
                self._check_deadline()  # the watchdog shut the connection
                raise _Cut(type(e).__name__) from e
            self._check_deadline()
            if not chunk:
                continue
            if done + len(chunk) > limit:
                raise self._too_long(done + len(chunk), total)
            try:
                _write_all(f, chunk)
            except OSError as e:
                raise WriteError(f"{self.part.path}: cannot write: {e.strerror}") from e
            pipe.update(chunk)
            n = len(chunk)
            done += n
            self.fetched += n
            if done - flushed >= WRITEBACK_STEP:
                _start_writeback(f.fileno(), flushed, done - flushed)
                flushed = done
            if not checked and done >= 8:
                self._check_mp4(done)  # fail fast on an error page
                checked = True
            self._progress(done, total)
            rate.add(n)  # raises _Stall when the body trickles
        return done

    def _check_mp4(self, size: int) -> None:
        head = self.part.head()
        if size >= 8 and head[4:8] == b"ftyp":
            return
        self.part.discard()
        raise NetworkError(f"{urlsplit(self.url).hostname} did not return an MP4 video "
                           "(no 'ftyp' box at the start); nothing was saved")
