"""The result storage standing in for OSS: the served MP4, signed expiring URLs, and
downloads with single byte ranges, the whole object's MD5 ETag and CRC-64
(``x-oss-hash-crc64ecma``) on every answer, and switches that cut the first download
short, leave both checksums out, or answer ranges with the wrong bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import threading
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from wanvid.crc64 import crc64
from wanvid.emulator.wire import API_PREFIX, MIB, Download, Headers, Response, http_date, oss_error

OSS_ACCESS_KEY_ID = "LTAI5tWanvidEmulator"
_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def load_fixture() -> bytes:
    """The bundled sample video (``wanvid/data/sample.mp4``)."""
    from importlib import resources

    return (resources.files("wanvid") / "data" / "sample.mp4").read_bytes()


def padded_video(fixture: bytes, size: int) -> bytearray:
    """``fixture`` followed by one top-level ``free`` box so the whole is ``size`` bytes.

    Players skip ``free`` boxes, so the result is still a valid MP4. When ``size`` leaves
    no room for a box header the fixture is returned unchanged."""
    pad = size - len(fixture)
    if pad < 8:
        return bytearray(fixture)
    out = bytearray(size)  # zero-filled: the free box's payload
    out[: len(fixture)] = fixture
    if pad <= 0xFFFFFFFF:
        out[len(fixture): len(fixture) + 8] = pad.to_bytes(4, "big") + b"free"
    else:  # 64-bit box: size field 1, then the real size after the type
        if pad < 16:  # pragma: no cover - unreachable for pad > 4 GiB
            return bytearray(fixture)
        header = (1).to_bytes(4, "big") + b"free" + pad.to_bytes(8, "big")
        out[len(fixture): len(fixture) + 16] = header
    return out


class Unsatisfiable(Exception):
    pass


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """A single byte range as (start, end inclusive); None means "serve it all" (no header,
    a multi-range or a malformed one, which RFC 9110 lets a server ignore). Raises
    ``Unsatisfiable`` for a range that starts at or beyond ``size``."""
    if not value or "," in value:
        return None
    m = _RANGE_RE.match(value)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - n), size - 1
    start = int(first)
    if start >= size:
        raise Unsatisfiable
    end = int(last) if last else size - 1
    if end < start:
        return None
    return start, min(end, size - 1)


def _oss_etag(data: bytes | bytearray) -> str:
    """OSS: a simply uploaded object's ETag is the upper-case MD5 of its bytes, quoted."""
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest().upper() + '"'


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def task_video(fixture: bytes, task_id: str) -> bytes:
    """``fixture`` followed by a top-level ``free`` box naming ``task_id``: each task's
    video differs from every other's (players skip ``free`` boxes), so a client that saves
    one task's video under another's name, or takes an old file for a new task's, is seen."""
    payload = b"wanvid-emulator task " + task_id.encode("utf-8", "replace")
    return fixture + (8 + len(payload)).to_bytes(4, "big") + b"free" + payload


class Storage:
    """The bucket: each task's own small video (the fixture with the task id in a ``free``
    box), or, padded to ``video_mb``, one large video shared by every task (built once: a
    copy per task of hundreds of MiB would not fit), URLs signed with a per-process secret."""

    def __init__(self, video_mb: float, drop_download_at: float) -> None:
        self.video_mb = video_mb
        self.drop_download_at = drop_download_at
        self._secret = os.urandom(32)
        self._lock = threading.Lock()
        self._video: memoryview | None = None
        self._fixture: bytes | None = None
        self._per_task: dict[str, tuple[memoryview, str, str]] = {}
        self._cut: set[tuple[str, int]] = set()
        self.etag = ""
        self.crc = ""  # the shared video's CRC-64 (decimal), as OSS sends it

    def video_bytes(self, task_id: str | None = None) -> memoryview:
        """The MP4 served for ``task_id``: its own (see ``task_video``) unless the video is
        padded to ``video_mb``, then the one shared by every task (built once); no task id:
        the shared one (the bare fixture when not padded)."""
        return self._video_and_etag(task_id)[0]

    def _video_and_etag(self, task_id: str | None) -> tuple[memoryview, str, str]:
        """The video served for ``task_id``, its ETag and its CRC-64 (decimal)."""
        if task_id is not None and self.video_mb <= 0:
            with self._lock:
                got = self._per_task.get(task_id)
                if got is None:
                    if self._fixture is None:
                        self._fixture = load_fixture()
                    data = task_video(self._fixture, task_id)
                    got = (memoryview(data).toreadonly(), _oss_etag(data), str(crc64(data)))
                    self._per_task[task_id] = got
                return got
        with self._lock:
            if self._video is None:
                fixture = load_fixture()
                data: bytes | bytearray = fixture
                if self.video_mb > 0:
                    data = padded_video(fixture, int(round(self.video_mb * MIB)))
                self.etag = _oss_etag(data)
                self.crc = str(crc64(data))
                self._video = memoryview(data).toreadonly()
            return self._video, self.etag, self.crc

    def sign(self, task_id: str, expires: int) -> str:
        msg = f"GET\n\nvideo/mp4\n{expires}\n/{task_id}.mp4".encode()
        return base64.b64encode(hmac.new(self._secret, msg, hashlib.sha1).digest()).decode()

    def url(self, root: str, task_id: str, expires: int) -> str:
        """The signed URL of a task's video under ``root`` (``http://host:port``)."""
        return (f"{root}{API_PREFIX}/files/{task_id}.mp4?Expires={expires}"
                f"&OSSAccessKeyId={OSS_ACCESS_KEY_ID}"
                f"&Signature={quote(self.sign(task_id, expires), safe='')}")

    def check_signature(self, task_id: str, expires_s: str | None,
                        sig: str | None) -> Response | int:
        """The URL's expiry epoch when its signature holds, else the OSS error to answer."""
        if not expires_s or not sig:
            return oss_error(403, "AccessDenied",
                             "You have no right to access this object because of bucket acl.")
        try:
            expires = int(expires_s)
        except ValueError:
            return oss_error(403, "AccessDenied", "Invalid Expires.")
        if not hmac.compare_digest(sig.encode(), self.sign(task_id, expires).encode()):
            return oss_error(403, "SignatureDoesNotMatch",
                             "The request signature we calculated does not match the "
                             "signature you provided. Check your key and signing method.")
        return expires

    def serve(self, method: str, task_id: str, expires: int, wall_now: float,
              ready: bool, modified: float, headers: Headers, *, checksums: bool = True,
              corrupt_ranges: bool = False) -> Response | Download:
        """Answer a download of a URL whose signature held: expired (403), no such object
        (404, ``ready`` false), a bad range (416), else the whole file or one range. Every
        answer carries the whole object's ETag (its MD5) and ``x-oss-hash-crc64ecma`` (its
        CRC-64/XZ, ranged answers too, as OSS does), unless ``checksums`` is off (an object
        without either: nothing to verify a download against). ``corrupt_ranges``: a 206's
        body is the wrong bytes (each byte inverted), its headers right."""
        if wall_now > expires:
            return oss_error(403, "AccessDenied", "Request has expired.", extra={
                "Expires": _iso(expires), "ServerTime": _iso(wall_now)})
        if not ready:
            return oss_error(404, "NoSuchKey", "The specified key does not exist.")
        data, etag, crc = self._video_and_etag(task_id)
        size = len(data)
        common = {"Accept-Ranges": "bytes", "Last-Modified": http_date(modified),
                  "x-oss-request-id": uuid.uuid4().hex[:24].upper()}
        if checksums:
            common.update({"ETag": etag, "x-oss-hash-crc64ecma": crc})
        if_range = headers.get("If-Range")
        range_value = headers.get("Range")
        if if_range and (not checksums or if_range.strip() != etag):
            range_value = None
        try:
            rng = parse_range(range_value, size)
        except Unsatisfiable:
            return oss_error(416, "InvalidRange", "The requested range is not satisfiable",
                             headers={"Content-Range": f"bytes */{size}", **common})
        start, end = rng if rng else (0, size - 1)
        cut_at: int | None = None
        if method == "GET" and self.drop_download_at > 0:
            point = int(size * self.drop_download_at)
            if start < point <= end:
                with self._lock:
                    if (task_id, start) not in self._cut:
                        self._cut.add((task_id, start))
                        cut_at = point
        if rng:
            common["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Download(206 if rng else 200, data, start, end, cut_at, common,
                        corrupt=bool(rng) and corrupt_ranges)
