"""Temporary uploads: a local file -> an ``oss://`` URL the service resolves (48 h).

The flow (``docs``: the API notes, section 4):

1. ``GET {root}/uploads?action=getPolicy&model=M`` with the API key (through ``Client``):
   a signed POST policy for one upload directory, valid ``expire_in_seconds``.
2. ``POST {upload_host}``, ``multipart/form-data``: the policy's fields, then the file as the
   **last** field. No ``Authorization`` header: the key never goes to the upload host.
3. The URL is ``oss://{key}``; a submit whose body holds one carries
   ``X-DashScope-OssResourceResolve: enable`` (``RESOLVE_HEADER``).

What this module adds to that:

* the file's size is checked against the policy's ``max_file_size_mb`` before sending;
* object names cannot collide in one upload directory (it forbids overwriting): a random
  prefix per attempt, so even a retry after a lost answer uses a fresh name;
* the multipart body is a file-like object of known length read from disk as it is sent,
  so memory stays flat whatever the file's size;
* 429 and 5xx answers and transport errors are retried like task queries
  (``wanvid.retry``); an expired policy (403 "Policy expired") is fetched again, once;
* a policy is reused for later files while it is valid, with a safety margin;
* ``UploadsNotOffered``: the API root answered that it has no uploads; one line with the
  ways out.

The journal's upload cache (``Journal.find_upload`` / ``record_upload``) is consulted by
``Uploader.upload`` when a journal is given: same content, same model, same API root,
still valid -> the earlier URL, nothing sent.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import urlsplit

from wanvid.errors import (
    BadInputError,
    DeadlineExceeded,
    NetworkError,
    ProtocolAnswerError,
    RejectedError,
    ThrottledError,
)
from wanvid.retry import retry_delay, should_retry_error, should_retry_status
from wanvid.sanitize import one_line

if TYPE_CHECKING:
    import requests

    from wanvid.client import Client
    from wanvid.journal import Journal
    from wanvid.media import MediaInput

log = logging.getLogger("wanvid.upload")

RESOLVE_HEADER = "X-DashScope-OssResourceResolve"
OSS_SCHEME = "oss://"
URL_VALIDITY_S = 48 * 3600  # the notes: an uploaded file is usable for 48 hours
REUSE_MARGIN_S = 6 * 3600  # reuse a journaled upload only with at least this much life left
POLICY_MARGIN_S = 15.0  # a policy this close to its expiry is fetched again
MB = 1024 * 1024
READ_CHUNK = 1 << 20  # bytes read from disk per step of the multipart body
HASH_CHUNK = 1 << 20
MAX_RETRIES = 4
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0  # the upload host answers once the whole body is in
MIN_RATE = 64 * 1024  # bytes/s: the slowest link an upload is given time for

ProgressFn = Callable[[str, int, int], None]  # (label, bytes done, total)


class UploadsNotOffered(RejectedError):
    """The API root answered that it offers no temporary uploads (exit 4)."""


class UploadError(NetworkError):
    """The upload host refused the file, or kept failing (exit 7)."""


# --------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Policy:
    policy: str
    signature: str
    upload_dir: str
    upload_host: str
    access_key_id: str
    acl: str
    forbid_overwrite: str
    expires_at: float  # on the uploader's clock
    max_file_size: int | None  # bytes
    max_file_size_mb: float | None = None  # as the policy said it

    def expired(self, now: float, margin: float = POLICY_MARGIN_S) -> bool:
        return now >= self.expires_at - margin


def _number(value: object) -> float | None:
    """The doc types these as strings, its example returns numbers: accept both."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def parse_policy(answer: Mapping[str, object], *, fetched_at: float,
                 api_scheme: str = "https") -> Policy:
    """A ``getPolicy`` answer (``{"data": {...}}``) as a ``Policy``; anything missing or
    unusable is a ``ProtocolAnswerError`` naming the field."""
    data = answer.get("data")
    if not isinstance(data, dict):
        data = answer.get("output")
    if not isinstance(data, dict):
        raise ProtocolAnswerError("the upload policy answer has no `data` object")

    def text(name: str, default: str | None = None) -> str:
        v = data.get(name, default)
        if isinstance(v, bool) and default is not None:
            return "true" if v else "false"
        if not isinstance(v, str) or not v:
            raise ProtocolAnswerError(f"the upload policy answer lacks `{name}`")
        return v

    host = text("upload_host")
    parts = urlsplit(host)
    allowed = ("https",) if api_scheme == "https" else ("https", "http")
    if parts.scheme not in allowed or not parts.hostname or parts.username or parts.password:
        raise ProtocolAnswerError(
            f"the upload policy names an unusable upload host ({one_line(host, 100)}); "
            f"wanvid uploads only over {'/'.join(allowed)}")
    upload_dir = text("upload_dir").strip("/")
    if not re.fullmatch(r"[A-Za-z0-9._~/-]+", upload_dir) or ".." in upload_dir.split("/"):
        raise ProtocolAnswerError(f"the upload policy names an unusable upload directory "
                                  f"({one_line(upload_dir, 100)})")
    lifetime = _number(data.get("expire_in_seconds"))
    if lifetime is None or lifetime <= 0:
        lifetime = 300.0  # the doc's example; a policy without a lifetime is used at once
    size_mb = _number(data.get("max_file_size_mb"))
    return Policy(
        policy=text("policy"), signature=text("signature"), upload_dir=upload_dir,
        upload_host=host.rstrip("/"), access_key_id=text("oss_access_key_id"),
        acl=text("x_oss_object_acl", "private"),
        forbid_overwrite=text("x_oss_forbid_overwrite", "true"),
        expires_at=fetched_at + lifetime,
        max_file_size=int(size_mb * MB) if size_mb is not None and size_mb > 0 else None,
        max_file_size_mb=size_mb if size_mb is not None and size_mb > 0 else None)


_NOT_OFFERED_CODES = re.compile(r"(NotSupported|Unsupported|NotFound|NotAvailable|"
                                r"NotOpen|FeatureNotEnabled)", re.IGNORECASE)


def is_not_offered(e: RejectedError) -> bool:
    """Does a 4xx answer to the policy request mean "no uploads at this API root"?

    The live wording is unknown (the notes, section 4); a 404 (the route does not exist
    there), a code saying "not supported / not found", or the gateway's "url error" count.
    """
    if e.code == "ModelNotFound":  # the model is unknown there, not the uploads
        return False
    if e.code and _NOT_OFFERED_CODES.search(e.code):
        return True
    if re.match(r"the service rejected the request \((404|405|501)\b", e.message):
        return True
    return "url error" in e.message.lower()


def not_offered_message(root: str) -> str:
    host = urlsplit(root).netloc or root
    return (f"{host} does not offer temporary uploads for local files; pass the audio or "
            "video as a public http(s) URL, or submit through a region that offers uploads "
            "(--region cn-beijing), and send local images inline with --upload never")


# --------------------------------------------------------------------------- multipart


def object_name(filename: str) -> str:
    """A name for one object in an upload directory: a random 128-bit prefix and the
    file's basename, reduced to safe characters (the directory forbids overwriting, so two
    uploads, or two tries of one upload, never share a name)."""
    base = os.path.basename(filename) or "file"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "file"
    if len(safe) > 80:
        stem, dot, ext = safe.rpartition(".")
        safe = (stem[:80 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else safe[:80]
    return f"{secrets.token_hex(16)}-{safe}"


def _quote_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartBody:
    """``multipart/form-data`` with text fields first and one file last, read from disk as
    it is sent. ``len()`` is the exact body length (so it goes out with a Content-Length,
    not chunked, as object storage requires); ``read(n)`` hands out the next bytes.

    The file is opened at the first read and must keep the size it had when checked:
    a file that grows or shrinks meanwhile raises ``BadInputError``.
    """

    def __init__(self, fields: list[tuple[str, str]], *, file_field: str, path: Path,
                 filename: str, content_type: str, size: int,
                 progress: Callable[[int], None] | None = None,
                 chunk: int = READ_CHUNK) -> None:
        self.boundary = "wanvid-" + secrets.token_hex(16)
        b = self.boundary
        head = bytearray()
        for name, value in fields:
            head += (f"--{b}\r\nContent-Disposition: form-data; name=\"{_quote_field(name)}\""
                     f"\r\n\r\n").encode() + value.encode() + b"\r\n"
        head += (f"--{b}\r\nContent-Disposition: form-data; name=\"{_quote_field(file_field)}\"; "
                 f"filename=\"{_quote_field(filename)}\"\r\nContent-Type: {content_type}"
                 "\r\n\r\n").encode()
        self._head = bytes(head)
        self._tail = f"\r\n--{b}--\r\n".encode()
        self.path = path
        self.size = size
        self._chunk = max(64 * 1024, chunk)
        self._progress = progress
        self._f: BinaryIO | None = None
        self._pos = 0  # bytes of the body handed out
        self._file_done = 0

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self.size + len(self._tail)

    def read(self, n: int | None = -1) -> bytes:
        """The next piece of the body. Pieces of the file are ``chunk`` bytes whatever
        ``n`` asks for (fewer, larger writes to the socket); b"" at the end. ``n`` < 0
        (``read()``) is the whole rest, as for a file: only tests do that."""
        if n is None or n < 0:
            rest = bytearray()
            while piece := self.read(self._chunk):
                rest += piece
            return bytes(rest)
        head_len = len(self._head)
        if self._pos < head_len:
            piece = self._head[self._pos:]
            self._pos = head_len
            return piece
        if self._file_done < self.size:
            if self._f is None:
                try:
                    self._f = open(self.path, "rb")  # noqa: SIM115 - closed in close()
                except OSError as e:
                    raise BadInputError(f"{self.path}: cannot read it any more "
                                        f"({e.strerror or e}).") from None
            want = min(self._chunk, self.size - self._file_done)
            data = self._f.read(want)
            if len(data) != want:
                self.close()
                raise BadInputError(f"{self.path}: the file changed while wanvid was "
                                    f"uploading it ({self.size} bytes when checked). Try again.")
            self._file_done += len(data)
            self._pos += len(data)
            if self._progress is not None:
                self._progress(self._file_done)
            return data
        if self._f is not None:
            extra = self._f.read(1)
            self.close()
            if extra:
                raise BadInputError(f"{self.path}: the file grew while wanvid was uploading "
                                    f"it ({self.size} bytes when checked). Try again.")
        end = head_len + self.size
        if self._pos < end + len(self._tail):
            self._pos = end + len(self._tail)
            return self._tail
        return b""

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __iter__(self) -> Iterator[bytes]:  # pragma: no cover - requests uses read()
        while piece := self.read():
            yield piece


def form_fields(policy: Policy, key: str, content_type: str) -> list[tuple[str, str]]:
    """The text fields of the upload form, in the SDK's order (the file follows them)."""
    return [
        ("OSSAccessKeyId", policy.access_key_id),
        ("Signature", policy.signature),
        ("policy", policy.policy),
        ("key", key),
        ("x-oss-object-acl", policy.acl),
        ("x-oss-forbid-overwrite", policy.forbid_overwrite),
        ("success_action_status", "200"),
        ("x-oss-content-type", content_type),
    ]


# --------------------------------------------------------------------------- uploader


@dataclass(frozen=True)
class Uploaded:
    url: str  # oss://...
    expires_at: float  # wall clock
    size: int
    reused: bool  # found in the journal, nothing sent


class PolicySource(Protocol):
    base_url: str

    def upload_policy(self, model: str) -> dict[str, object]: ...


def file_sha256(path: Path, chunk: int = HASH_CHUNK) -> str:
    h = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    try:
        with open(path, "rb") as f:
            while n := f.readinto(buf):
                h.update(view[:n])
    except OSError as e:
        raise BadInputError(f"{path}: cannot read it ({e.strerror or e}).") from None
    return h.hexdigest()


def guess_type(name: str, default: str = "application/octet-stream") -> str:
    return mimetypes.guess_type(name)[0] or default


class Uploader:
    """Uploads local files for one API root (``client``'s), for any model.

    ``journal``: the upload cache (optional). ``progress(label, done, total)`` is called
    as bytes go out. ``clock`` (monotonic) times policies; ``wall`` dates journal entries.
    """

    def __init__(self, client: Client | PolicySource, *, session: requests.Session | None = None,
                 journal: Journal | None = None, progress: ProgressFn | None = None,
                 notify: Callable[[str], None] | None = None,
                 max_retries: int = MAX_RETRIES, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.client = client
        self.root = client.base_url.rstrip("/")
        self._session = session
        self.journal = journal
        self.progress = progress
        self.notify = notify
        self.max_retries = max_retries
        self.sleep = sleep
        self.clock = clock
        self.wall = wall
        self._policies: dict[str, Policy] = {}
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._done: dict[tuple[str, str], Uploaded] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.uploads = 0  # files actually sent (not reused)

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            from wanvid.net import new_session

            self._session = new_session()
        return self._session

    def policy(self, model: str, *, fresh: bool = False) -> Policy:
        """The upload policy for ``model``, fetched at this API root unless a valid one is
        at hand."""
        cached = self._policies.get(model)
        if cached is not None and not fresh and not cached.expired(self.clock()):
            return cached
        started = self.clock()
        try:
            answer = self.client.upload_policy(model)
        except UploadsNotOffered:
            raise
        except ThrottledError:
            raise
        except RejectedError as e:
            if is_not_offered(e):
                raise UploadsNotOffered(not_offered_message(self.root), code=e.code,
                                        request_id=e.request_id) from None
            raise
        pol = parse_policy(answer, fetched_at=started,
                           api_scheme=urlsplit(self.root).scheme or "https")
        self._policies[model] = pol
        return pol

    def check_size(self, policy: Policy, size: int, label: str, model: str) -> None:
        if policy.max_file_size is not None and size > policy.max_file_size:
            raise BadInputError(
                f"{label}: {_size(size)} is more than the {policy.max_file_size_mb:g} MiB "
                f"the service accepts as a temporary upload for {model}; make it smaller or "
                "pass it as a public http(s) URL")

    def upload(self, path: Path, model: str, *, label: str | None = None,
               content_type: str | None = None, sha256: str | None = None) -> Uploaded:
        """Upload ``path`` for ``model``, or reuse an upload of the same content for the
        same model (made by this process, or journaled and valid for REUSE_MARGIN_S more).
        Safe to call from several threads: one content is uploaded once."""
        label = label or str(path)
        try:
            st = path.stat()
        except OSError as e:
            raise BadInputError(f"{label}: cannot read it ({e.strerror or e}).") from None
        size = st.st_size
        ident = (str(path.resolve()), size, st.st_mtime_ns)
        digest = sha256
        if digest is None and self.journal is not None:
            digest = self._hashes.get(ident)
            if digest is None:
                digest = self._hashes[ident] = file_sha256(path)
        memo_key = (digest or repr(ident), model)
        with self._guard:
            lock = self._locks.setdefault(memo_key, threading.Lock())
        with lock:
            done = self._done.get(memo_key)
            if done is not None and done.expires_at - REUSE_MARGIN_S > self.wall():
                return Uploaded(url=done.url, expires_at=done.expires_at, size=size, reused=True)
            if self.journal is not None and digest is not None:
                hit = self.journal.find_upload(digest, model=model, base_url=self.root,
                                               valid_after=self.wall() + REUSE_MARGIN_S)
                if hit is not None:
                    log.debug("reusing the upload of %s (%s)", label, hit[0])
                    got = Uploaded(url=hit[0], expires_at=hit[1], size=size, reused=True)
                    self._done[memo_key] = got
                    return got
            ctype = content_type or guess_type(path.name)
            started_wall = self.wall()
            url = self._send(path, size, model, label=label, content_type=ctype)
            self.uploads += 1
            expires = started_wall + URL_VALIDITY_S
            if self.journal is not None and digest is not None:
                self.journal.record_upload(digest, model=model, base_url=self.root, url=url,
                                           expires_at=expires, size=size)
            got = Uploaded(url=url, expires_at=expires, size=size, reused=False)
            self._done[memo_key] = got
            return got

    def _send(self, path: Path, size: int, model: str, *, label: str,
              content_type: str) -> str:
        import requests

        deadline = getattr(self.client, "deadline", None)
        policy = self.policy(model)
        self.check_size(policy, size, label, model)
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            if policy.expired(self.clock()):
                policy = self.policy(model, fresh=True)
                self.check_size(policy, size, label, model)
            key = f"{policy.upload_dir}/{object_name(path.name)}"

            def report(done: int) -> None:
                if self.progress is not None:
                    self.progress(label, done, size)

            body = MultipartBody(form_fields(policy, key, content_type), file_field="file",
                                 path=path, filename=path.name, content_type=content_type,
                                 size=size, progress=report)
            headers = {"Content-Type": body.content_type, "Accept": "application/json",
                       "Content-Length": str(len(body)),
                       "User-Agent": _user_agent()}  # no Authorization: never the key here
            limit = 120.0 + size / MIN_RATE
            try:
                if deadline is not None:
                    deadline.check(f"before uploading {label}")
                    timeout = deadline.timeout(CONNECT_TIMEOUT, READ_TIMEOUT)
                    ctx = deadline.watch(limit)
                else:
                    from wanvid.net import NO_DEADLINE

                    timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
                    ctx = NO_DEADLINE.watch(limit)
                with ctx:
                    resp = self.session.post(policy.upload_host, data=body, headers=headers,
                                             timeout=timeout, allow_redirects=False, stream=True)
                    with resp:
                        from wanvid.net import read_capped

                        text = read_capped(resp, 64 << 10, what="upload answer")
            except requests.exceptions.RequestException as e:
                body.close()
                if deadline is not None and deadline.expired():
                    raise DeadlineExceeded(deadline.message(f"while uploading {label}")) from None
                if attempt <= self.max_retries and should_retry_error(e, idempotent=True):
                    self._pause(attempt, None, f"{type(e).__name__}")
                    continue
                host = urlsplit(policy.upload_host).netloc
                raise UploadError(f"uploading {label} to {host} failed "
                                  f"({type(e).__name__}); nothing was submitted") from None
            finally:
                body.close()
            status = resp.status_code
            log.debug("POST %s (%s) -> %s", urlsplit(policy.upload_host).netloc, key, status)
            if 200 <= status < 300:
                return OSS_SCHEME + key
            code, message = _oss_error(text)
            if status == 403 and "expired" in message.lower() and not refreshed:
                refreshed = True
                policy = self.policy(model, fresh=True)
                self.check_size(policy, size, label, model)
                continue
            if attempt <= self.max_retries and should_retry_status(status, idempotent=True):
                self._pause(attempt, resp.headers.get("Retry-After"), f"{status} {code}")
                continue
            host = urlsplit(policy.upload_host).netloc
            what = f"{code}: {message}" if code else message
            if status == 429:
                raise ThrottledError(f"the upload host {host} kept throttling ({what}); "
                                     "nothing was submitted", code=code)
            if status == 400 and "size" in (code + message).lower():
                raise BadInputError(f"{label}: the upload host refused its size ({what}); "
                                    "pass it as a public http(s) URL")
            raise UploadError(f"the upload host {host} refused {label} ({status} {what}); "
                              "nothing was submitted", code=code or None)

    def _pause(self, attempt: int, retry_after: str | None, why: str) -> None:
        delay = retry_delay(attempt, retry_after, now=self.wall())
        log.debug("upload: %s; retry %d in %.1fs", why, attempt, delay)
        if delay >= 5 and self.notify is not None:
            self.notify(f"the upload host is failing ({one_line(why, 60)}); retrying in "
                        f"{delay:.0f} s")
        self.sleep(delay)


def _size(n: int) -> str:
    from wanvid.units import human_size

    return human_size(n)


def _user_agent() -> str:
    from wanvid import __version__

    return f"wanvid/{__version__}"


def _oss_error(body: bytes) -> tuple[str, str]:
    """(Code, Message) from an OSS XML error body, escaped for one line."""
    text = body.decode("utf-8", "replace")
    code = re.search(r"<Code>(.*?)</Code>", text, re.S)
    msg = re.search(r"<Message>(.*?)</Message>", text, re.S)
    c = one_line(code.group(1), 80) if code else ""
    m = one_line(msg.group(1), 200) if msg else one_line(" ".join(text.split())[:200], 200)
    return c, m or "no message"


def has_oss_url(body: bytes) -> bool:
    """Does a request body carry an ``oss://`` URL (the submit then needs RESOLVE_HEADER)?"""
    return b'"oss://' in body


# --------------------------------------------------------------------------- submit plans

MODES = ("auto", "always", "never")
DEFAULT_MODE = "auto"
# auto: an image goes inline unless its data: URI would pass this (base64 adds a third, so
# a file over 7.5 MB); the request body then stays small and the image is sent as a file.
DATA_URI_MAX = 10 * MB


def check_mode(value: str | None, where: str = "--upload") -> str:
    mode = (value or DEFAULT_MODE).strip().lower()
    if mode not in MODES:
        raise BadInputError(f"{where} {value}: use one of {', '.join(MODES)}")
    return mode


def is_av(m: MediaInput) -> bool:
    """Audio or video: the service documents only URLs (public or oss://) for these."""
    mime = (m.mime or "").lower()
    return m.audio is not None or mime.startswith(("audio/", "video/")) or \
        m.role in ("audio", "first clip", "clip", "video")


def plan(media: list[MediaInput], mode: str) -> list[MediaInput]:
    """The inputs to upload before the submit, per ``mode`` (see README, "Local files").

    * ``auto``: local audio and video files; local images whose data: URI would be over
      ``DATA_URI_MAX``.
    * ``always``: every local file.
    * ``never``: none; local audio or video is refused here (nothing is sent).

    In-memory inputs (data: URIs given as such, --fit results) are never uploaded.
    """
    out: list[MediaInput] = []
    for m in media:
        if m.kind != "file" or m.path is None:
            continue
        if mode == "never":
            if is_av(m):
                what = "audio" if m.audio is not None or m.role == "audio" else "video"
                raise BadInputError(
                    f"{m.flag or m.role} {m.arg}: --upload never sends no local {what}; the "
                    f"service takes {what} only as a URL: pass a public http(s) URL of the "
                    "file, or drop --upload never (nothing was sent)")
            continue
        if mode == "always" or is_av(m) or m.encoded_length() > DATA_URI_MAX:
            out.append(m)
    return out


def substitute(payload: object, values: Mapping[int, str]) -> object:
    """``payload`` with each MediaInput whose ``id`` is in ``values`` replaced by the string."""
    if id(payload) in values:
        return values[id(payload)]
    if isinstance(payload, dict):
        return {k: substitute(v, values) for k, v in payload.items()}
    if isinstance(payload, list):
        return [substitute(v, values) for v in payload]
    return payload


def placeholder(m: MediaInput) -> str:
    """How --dry-run shows an input that would be uploaded."""
    name = object_name(m.path.name if m.path else "file").split("-", 1)[1]
    return f"oss://<upload dir>/<random>-{name}"
