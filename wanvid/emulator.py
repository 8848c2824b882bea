"""A faithful local emulator of the Wan image-to-video API (DashScope async tasks + OSS result).

Standard library only: ``http.server.ThreadingHTTPServer``. Start it in-process
(``Emulator(EmulatorConfig()).start()`` returns the base URL) or as a process
(``serve_forever`` / ``python -m wanvid.emulator``), then point a client at the base URL,
e.g. ``http://127.0.0.1:8765/api/v1``.

Routes (all under ``/api/v1``, as on the service):

* ``POST /services/aigc/video-generation/video-synthesis``: submit an i2v task (first frame).
* ``POST /services/aigc/image2video/video-synthesis``: submit a kf2v task (first + last frame).
* ``GET /tasks/{task_id}``: query one task. Unknown ids, and tasks older than 24 h on the
  emulator's clock, answer 200 with ``task_status: UNKNOWN``, like the service.
* ``POST /tasks/{task_id}/cancel``: only PENDING tasks cancel (then CANCELED); anything else
  is 400 ``UnsupportedOperation``.
* ``GET /tasks``: task list (``start_time``, ``end_time`` as ``YYYY-MM-DD HH:mm:ss``,
  ``model_name``, ``status``, ``page_no``, ``page_size`` <= 100). Without a time window it
  lists the last 24 h. Answer: ``{request_id, data: [...], total, total_page, page_no,
  page_size}``, newest first.
* ``GET|HEAD /files/{task_id}.mp4?Expires=EPOCH&OSSAccessKeyId=...&Signature=...``: the
  result video, standing in for the OSS bucket. The URL is signed (HMAC with a per-process
  secret) and expires ``url_ttl`` seconds after the task ends; errors answer OSS-style XML
  (403 ``AccessDenied`` "Request has expired.", 403 ``SignatureDoesNotMatch``, 404
  ``NoSuchKey``). No API key is needed (or checked) here, as on OSS; the ``Authorization``
  header of every download request is recorded in ``stats.download_auth`` so tests can check
  that a client never sends the key to storage. Single ranges (``bytes=N-``, ``bytes=N-M``,
  ``bytes=-N``) answer 206; ``N`` >= size answers 416 with ``Content-Range: bytes */SIZE``.

Emulator-only admin routes (no key, not under ``/api/v1``), for driving a subprocess
emulator from end-to-end tests without sleeping:

* ``POST /_emulator/advance?seconds=N``: move the emulator's clock forward N seconds.
  Answers ``{"advanced": N, "offset": TOTAL}``.
* ``GET /_emulator/stats``: the counters of ``EmulatorStats`` as JSON.

Behaviour and its limits:

* Every API request needs ``Authorization: Bearer <key>`` (any non-empty key, or exactly
  ``EmulatorConfig.key`` when set), else 401 ``InvalidApiKey``. Submits need
  ``X-DashScope-Async: enable``, else 403 ``AccessDenied``.
* Submits are validated against ``wanvid.models`` (model, endpoint, resolution, duration,
  audio support, seed range, field types); errors use the service's JSON shape
  ``{request_id, code, message}``. Prompts longer than the model's limit are truncated, not
  refused (as the service does); the truncated text is the task's ``orig_prompt``.
* ``data:`` image URIs are decoded and inspected with ``wanvid.media.probe_image`` (format
  JPEG/PNG/BMP/WEBP by magic bytes and matching the declared MIME type, 360..2000 px per side,
  <= 10 MB, no PNG alpha); failures are 400 ``InvalidParameter.DataInspection``. ``http(s)://``
  and ``oss://`` URLs are accepted as given: the emulator never fetches anything, so a bad
  remote image only fails on the real service. Audio ``data:`` URIs are checked with
  ``wanvid.media.probe_audio`` (WAV/MP3, 3..30 s, <= 15 MB).
* Task lifecycle runs on the emulator clock (``config.clock()`` plus everything ``advance``
  added): PENDING for ``pending`` s, RUNNING for ``running`` s, then SUCCEEDED (or FAILED
  with ``InternalError.Algo`` for the ``fail_rate`` share, deterministically: task n fails
  when ``floor(n * fail_rate)`` steps up). Wall-clock fields (``submit_time`` ...,
  ``Expires``) are the real time at start plus emulator-clock elapsed time, formatted like
  the service (``YYYY-MM-DD HH:MM:SS.mmm``) in UTC+8 (Beijing time, the service's zone).
* Every video is the bundled fixture ``wanvid/data/sample.mp4`` (real H.264, 1.2 s),
  optionally padded to ``video_mb`` MiB with a trailing top-level ``free`` box (still a
  valid MP4, byte-identical on every fetch).
* Fault injection: ``throttle_every`` (429 ``Throttling.RateQuota`` on every Nth API
  request, no ``Retry-After``, as the service documents none), ``error_every`` (500
  ``InternalError`` on every Nth task query), ``drop_download_at`` (the first download of
  each (task, range start) is cut at that fraction of the file, so resuming with Range
  completes).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs, quote, urlsplit
from xml.sax.saxutils import escape

from wanvid.models import (
    AUDIO_MAX_BYTES,
    AUDIO_MAX_S,
    AUDIO_MIN_S,
    I2V_PATH,
    IMAGE_MAX_BYTES,
    IMAGE_MAX_PX,
    IMAGE_MIN_PX,
    KF2V_PATH,
    SEED_MAX,
    SEED_MIN,
    Model,
    find_model,
    normalize_resolution,
)

API_PREFIX = "/api/v1"
ADMIN_PREFIX = "/_emulator"
TASK_TTL = 86400.0  # task ids (and their results) live 24 h
SERVICE_TZ = timezone(timedelta(hours=8))
OSS_ACCESS_KEY_ID = "LTAI5tWanvidEmulator"
CHUNK = 1 << 20  # download write size
MAX_BODY = 64 << 20  # largest request body accepted
MIB = 1 << 20
POLL_INTERVAL = 0.02  # how soon stop() is noticed by the serving thread

FAIL_CODE = "InternalError.Algo"
FAIL_MESSAGE = "An internal error has occured during algorithm execution."
THROTTLE_CODE = "Throttling.RateQuota"
THROTTLE_MESSAGE = "Requests rate limit exceeded, please try again later."
INTERNAL_CODE = "InternalError"
INTERNAL_MESSAGE = ("An internal error has occured, please try again later or contact service "
                    "support.")
CANCEL_MESSAGE = ("Failed to cancel the task, please confirm if the task is in PENDING status "
                  "(only PENDING tasks can be canceled).")
DATA_INSPECTION = "InvalidParameter.DataInspection"

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, UNKNOWN = (
    "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")

_MIME_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg",
                 "image/x-ms-bmp": "image/bmp", "image/x-bmp": "image/bmp"}

_TASK_RE = re.compile(r"^/api/v1/tasks/([^/]+)$")
_CANCEL_RE = re.compile(r"^/api/v1/tasks/([^/]+)/cancel$")
_FILE_RE = re.compile(r"^/api/v1/files/([^/]+)\.mp4$")
_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    pending: float = 1.0  # seconds a task stays PENDING
    running: float = 3.0  # seconds RUNNING before SUCCEEDED/FAILED
    url_ttl: float = 86400.0  # validity of the signed video URL
    fail_rate: float = 0.0  # share of tasks that end FAILED (deterministic)
    throttle_every: int = 0  # every Nth API request gets 429 Throttling.RateQuota
    error_every: int = 0  # every Nth task query gets 500 InternalError
    drop_download_at: float = 0.0  # cut the first download per (task, range start) here
    video_mb: float = 0.0  # pad the served MP4 to this many MiB (0: the bare fixture)
    key: str | None = None  # if set, only "Bearer KEY" is accepted
    clock: Callable[[], float] = time.monotonic

    def check(self) -> None:
        """Raise ValueError naming the first field out of range."""
        for name in ("pending", "running", "url_ttl", "video_mb"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        for name in ("fail_rate", "drop_download_at"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {v!r}")
        for name in ("throttle_every", "error_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 = off)")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if self.key is not None and not self.key.strip():
            raise ValueError("key must not be empty (leave it unset to accept any key)")


@dataclass
class EmulatorStats:
    """Counters. ``submits``/``queries``/``cancels``/``lists`` count answered (2xx) calls;
    ``throttled``/``errors`` count injected 429/500s; ``rejected`` other 4xx API answers;
    ``downloads`` video bodies started (200/206), ``downloads_cut`` those cut on purpose;
    ``paths`` counts every request by ``"METHOD /route/{template}"``; ``download_auth`` is
    the ``Authorization`` header (None when absent) of every download request."""

    requests: int = 0
    submits: int = 0
    queries: int = 0
    cancels: int = 0
    lists: int = 0
    downloads: int = 0
    downloads_cut: int = 0
    bytes_served: int = 0
    throttled: int = 0
    errors: int = 0
    rejected: int = 0
    max_in_flight: int = 0
    paths: dict[str, int] = field(default_factory=dict)
    download_auth: list[str | None] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Task:
    task_id: str
    seq: int
    model: Model
    model_name: str  # as sent
    request_id: str
    created: float  # emulator clock
    fails: bool
    prompt: str | None
    prompt_extend: bool
    resolution: str
    duration: int
    canceled_at: float | None = None


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Download:
    status: int  # 200 or 206
    data: memoryview
    start: int
    end: int  # inclusive
    cut_at: int | None  # absolute offset where the connection is cut, or None
    headers: dict[str, str]


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _invalid(message: str) -> _ApiError:
    return _ApiError(400, "InvalidParameter", message)


def _inspection(message: str) -> _ApiError:
    return _ApiError(400, DATA_INSPECTION, message)


def _rid() -> str:
    return str(uuid.uuid4())


def _json(status: int, payload: dict[str, Any]) -> _Response:
    return _Response(status, json.dumps(payload, ensure_ascii=False).encode())


def _error(status: int, code: str, message: str) -> _Response:
    return _json(status, {"request_id": _rid(), "code": code, "message": message})


def _fmt_time(epoch: float, *, millis: bool = True) -> str:
    dt = datetime.fromtimestamp(epoch, SERVICE_TZ)
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if millis else dt.strftime(
        "%Y-%m-%d %H:%M:%S")


def _parse_time(value: str) -> float:
    dt = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=SERVICE_TZ)
    return dt.timestamp()


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


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


class _Unsatisfiable(Exception):
    pass


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """A single byte range as (start, end inclusive); None means "serve it all" (no header,
    a multi-range or a malformed one, which RFC 9110 lets a server ignore). Raises
    ``_Unsatisfiable`` for a range that starts at or beyond ``size``."""
    if not value or "," in value:
        return None
    m = _RANGE_RE.match(value)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise _Unsatisfiable
        return max(0, size - n), size - 1
    start = int(first)
    if start >= size:
        raise _Unsatisfiable
    end = int(last) if last else size - 1
    if end < start:
        return None
    return start, min(end, size - 1)


class Emulator:
    """The emulator: state, clock and an HTTP server on a daemon thread."""

    def __init__(self, config: EmulatorConfig | None = None, *,
                 log: Callable[[str], None] | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.config.check()
        self.stats = EmulatorStats()
        self.base_url = ""
        self._log = log
        self._lock = threading.Lock()
        self._offset = 0.0
        self._clock0 = self.config.clock()
        self._wall0 = time.time()
        self._secret = os.urandom(32)
        self._tasks: dict[str, _Task] = {}
        self._active: list[_Task] = []
        self._seq = 0
        self._api_count = 0
        self._query_count = 0
        self._cut: set[tuple[str, int]] = set()
        self._video: memoryview | None = None
        self._etag = ""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- clock
    def now(self) -> float:
        """The emulator clock: ``config.clock()`` plus everything ``advance`` added."""
        return self.config.clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the emulator clock forward (tasks progress, URLs expire)."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("seconds must be a finite number >= 0")
        with self._lock:
            self._offset += seconds

    def wall(self, t: float | None = None) -> float:
        """The epoch time the emulator shows for emulator-clock instant ``t`` (default now)."""
        return self._wall0 + ((self.now() if t is None else t) - self._clock0)

    # ---------------------------------------------------------------- server
    def start(self) -> str:
        """Serve on a daemon thread; returns the base URL, e.g. http://127.0.0.1:PORT/api/v1."""
        if self._server is not None:
            return self.base_url
        cls = _Server6 if ":" in self.config.host else _Server
        server = cls((self.config.host, self.config.port), _Handler)
        server.emulator = self
        self._server = server
        port = server.server_address[1]
        host = self.config.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        self.base_url = f"http://{host}:{port}{API_PREFIX}"
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": POLL_INTERVAL},
                                        name="wanvid-emulator", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- video
    def video_bytes(self) -> memoryview:
        """The served MP4 (built once, then shared by every download)."""
        with self._lock:
            if self._video is None:
                fixture = load_fixture()
                data: bytes | bytearray = fixture
                if self.config.video_mb > 0:
                    data = padded_video(fixture, int(round(self.config.video_mb * MIB)))
                digest = hashlib.md5(fixture + str(len(data)).encode(), usedforsecurity=False)
                self._etag = '"' + digest.hexdigest().upper() + '"'
                self._video = memoryview(data).toreadonly()
            return self._video

    # ------------------------------------------------------------- lifecycle
    def _status(self, task: _Task, now: float) -> str:
        if now - task.created >= TASK_TTL:
            return UNKNOWN
        if task.canceled_at is not None:
            return CANCELED
        elapsed = now - task.created
        if elapsed < self.config.pending:
            return PENDING
        if elapsed < self.config.pending + self.config.running:
            return RUNNING
        return FAILED if task.fails else SUCCEEDED

    def _ended_at(self, task: _Task) -> float:
        return task.created + self.config.pending + self.config.running

    def _sign(self, task_id: str, expires: int) -> str:
        msg = f"GET\n\nvideo/mp4\n{expires}\n/{task_id}.mp4".encode()
        return base64.b64encode(hmac.new(self._secret, msg, hashlib.sha1).digest()).decode()

    def video_url(self, task_id: str, host: str | None = None) -> str:
        """The signed URL of a task's video (valid ``url_ttl`` s after the task ended)."""
        task = self._tasks[task_id]
        expires = int(self.wall(self._ended_at(task)) + self.config.url_ttl)
        root = f"http://{host}" if host else self.base_url[: -len(API_PREFIX)]
        return (f"{root}{API_PREFIX}/files/{task_id}.mp4?Expires={expires}"
                f"&OSSAccessKeyId={OSS_ACCESS_KEY_ID}"
                f"&Signature={quote(self._sign(task_id, expires), safe='')}")

    def _usage(self, task: _Task) -> dict[str, Any]:
        if task.model.name.startswith("wan2.1"):
            return {"video_duration": task.duration, "video_ratio": "standard",
                    "video_count": 1}
        return {"duration": task.duration, "video_count": 1,
                "SR": int(task.resolution.rstrip("P"))}

    def _task_payload(self, task: _Task, now: float, host: str | None) -> dict[str, Any]:
        status = self._status(task, now)
        out: dict[str, Any] = {"task_id": task.task_id, "task_status": status}
        payload: dict[str, Any] = {"request_id": _rid(), "output": out}
        if status == UNKNOWN:
            return payload
        out["submit_time"] = _fmt_time(self.wall(task.created))
        if status == CANCELED:
            assert task.canceled_at is not None
            out["end_time"] = _fmt_time(self.wall(task.canceled_at))
            return payload
        if status == PENDING:
            return payload
        out["scheduled_time"] = _fmt_time(self.wall(task.created + self.config.pending))
        if status == RUNNING:
            return payload
        out["end_time"] = _fmt_time(self.wall(self._ended_at(task)))
        if status == FAILED:
            out["code"], out["message"] = FAIL_CODE, FAIL_MESSAGE
            return payload
        if task.prompt is not None:
            out["orig_prompt"] = task.prompt
        out["video_url"] = self.video_url(task.task_id, host)
        if task.prompt_extend:
            lead = f"{task.prompt} " if task.prompt else ""
            out["actual_prompt"] = (lead + "The camera pushes in slowly while soft light moves "
                                    "across the scene; the motion is smooth and natural.")
        payload["usage"] = self._usage(task)
        return payload

    # -------------------------------------------------------------- requests
    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + n)

    def _route(self, method: str, path: str, query: dict[str, list[str]],
               headers: Any, body: bytes | None) -> _Response | _Download:
        api = False
        m: re.Match[str] | None = None
        if path.startswith(ADMIN_PREFIX + "/"):
            key = f"{method} {path}"
        elif (m := _FILE_RE.match(path)) is not None:
            key = f"{method} {API_PREFIX}/files/{{task_id}}.mp4"
        elif _CANCEL_RE.match(path):
            key, api = f"{method} {API_PREFIX}/tasks/{{task_id}}/cancel", True
        elif _TASK_RE.match(path):
            key, api = f"{method} {API_PREFIX}/tasks/{{task_id}}", True
        elif path in (API_PREFIX + I2V_PATH, API_PREFIX + KF2V_PATH, API_PREFIX + "/tasks"):
            key, api = f"{method} {path}", True
        else:
            key = f"{method} {path}"
        with self._lock:
            self.stats.requests += 1
            self.stats.paths[key] = self.stats.paths.get(key, 0) + 1

        if m is not None:
            if method not in ("GET", "HEAD"):
                return _oss_error(405, "MethodNotAllowed",
                                  "The specified method is not allowed against this resource.")
            with self._lock:
                self.stats.download_auth.append(headers.get("Authorization"))
            return self._download(method, m.group(1), query, headers)
        if path.startswith(ADMIN_PREFIX + "/"):
            return self._admin(method, path, query)
        if not api:
            return _error(404, "NotFound", f"No route for {method} {path}.")
        try:
            return self._api(method, path, query, headers, body)
        except _ApiError as e:
            self._count("rejected")
            return _error(e.status, e.code, e.message)

    def _api(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
             body: bytes | None) -> _Response:
        self._check_auth(headers.get("Authorization"))
        if self.config.throttle_every > 0:
            with self._lock:
                self._api_count += 1
                throttled = self._api_count % self.config.throttle_every == 0
                if throttled:
                    self.stats.throttled += 1
            if throttled:
                return _error(429, THROTTLE_CODE, THROTTLE_MESSAGE)
        host = headers.get("Host")
        if path in (API_PREFIX + I2V_PATH, API_PREFIX + KF2V_PATH):
            if method != "POST":
                raise _ApiError(405, "MethodNotAllowed", f"{method} is not allowed here.")
            return self._submit(path[len(API_PREFIX):], headers, body or b"")
        if path == API_PREFIX + "/tasks":
            if method not in ("GET", "HEAD"):
                raise _ApiError(405, "MethodNotAllowed", f"{method} is not allowed here.")
            return self._list(query)
        if (m := _CANCEL_RE.match(path)) is not None:
            if method != "POST":
                raise _ApiError(405, "MethodNotAllowed", f"{method} is not allowed here.")
            return self._cancel(m.group(1))
        m = _TASK_RE.match(path)
        assert m is not None
        if method not in ("GET", "HEAD"):
            raise _ApiError(405, "MethodNotAllowed", f"{method} is not allowed here.")
        return self._query(m.group(1), host)

    def _check_auth(self, value: str | None) -> None:
        scheme, _, token = (value or "").strip().partition(" ")
        token = token.strip()
        ok = scheme.lower() == "bearer" and bool(token)
        if ok and self.config.key is not None:
            ok = hmac.compare_digest(token.encode(), self.config.key.encode())
        if not ok:
            raise _ApiError(401, "InvalidApiKey", "Invalid API-key provided.")

    # ----------------------------------------------------------------- submit
    def _submit(self, route: str, headers: Any, body: bytes) -> _Response:
        if (headers.get("X-DashScope-Async") or "").strip().lower() != "enable":
            raise _ApiError(403, "AccessDenied",
                            "current user api does not support synchronous calls")
        try:
            req = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise _invalid(f"The request body is not valid JSON: {e}") from None
        if not isinstance(req, dict):
            raise _invalid("The request body must be a JSON object.")
        name = req.get("model")
        if not isinstance(name, str) or not name.strip():
            raise _invalid("Model not exist.")
        model = find_model(name)
        if model is None:
            raise _invalid("Model not exist.")
        if model.path != route:
            raise _invalid("url error, please check url!")
        inp = req.get("input")
        if not isinstance(inp, dict):
            raise _invalid("Required parameter 'input' missing or not an object.")
        params = req.get("parameters", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise _invalid("Field 'parameters' must be an object.")

        frames = ("img_url",) if model.kind == "i2v" else ("first_frame_url", "last_frame_url")
        for f in frames:
            value = inp.get(f)
            if not isinstance(value, str) or not value.strip():
                raise _invalid(f"Required parameter 'input.{f}' missing.")

        prompt = inp.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise _invalid("Field 'input.prompt' must be a string.")
        neg = inp.get("negative_prompt")
        if neg is not None and not isinstance(neg, str):
            raise _invalid("Field 'input.negative_prompt' must be a string.")
        if prompt is not None:
            prompt = prompt[: model.prompt_max]  # the service truncates, never refuses

        res = params.get("resolution")
        if res is None:
            resolution = model.default_resolution
        elif not isinstance(res, str) or normalize_resolution(res) not in model.resolutions:
            raise _invalid(f"Field 'parameters.resolution' value {res!r} is not supported by "
                           f"{model.name}; allowed: {', '.join(model.resolutions)}.")
        else:
            resolution = normalize_resolution(res)
        dur = params.get("duration")
        if dur is None:
            duration = model.default_duration
        elif type(dur) is not int or dur not in model.durations:
            allowed = ", ".join(str(d) for d in model.durations)
            raise _invalid(f"Field 'parameters.duration' value {dur!r} is not supported by "
                           f"{model.name}; allowed: {allowed}.")
        else:
            duration = dur
        for flag in ("prompt_extend", "watermark", "audio"):
            if flag in params and params[flag] is not None and not isinstance(params[flag], bool):
                raise _invalid(f"Field 'parameters.{flag}' must be a boolean.")
        if not model.audio:
            if params.get("audio") is not None:
                raise _invalid(f"Field 'parameters.audio' is not supported by {model.name}.")
            if inp.get("audio_url") is not None:
                raise _invalid(f"Field 'input.audio_url' is not supported by {model.name}.")
        seed = params.get("seed")
        if seed is not None and (type(seed) is not int or not SEED_MIN <= seed <= SEED_MAX):
            raise _invalid(f"Field 'parameters.seed' must be an integer in "
                           f"[{SEED_MIN}, {SEED_MAX}].")

        for f in frames:
            self._check_image(f"input.{f}", inp[f].strip())
        audio_url = inp.get("audio_url")
        if audio_url is not None:
            if not isinstance(audio_url, str) or not audio_url.strip():
                raise _invalid("Field 'input.audio_url' must be a non-empty URL.")
            self._check_audio(audio_url.strip())

        prompt_extend = params.get("prompt_extend")
        with self._lock:
            now = self.now()
            self._seq += 1
            seq = self._seq
            rate = self.config.fail_rate
            fails = math.floor(seq * rate + 1e-9) > math.floor((seq - 1) * rate + 1e-9)
            task = _Task(task_id=str(uuid.uuid4()), seq=seq, model=model, model_name=name,
                         request_id=_rid(), created=now, fails=fails, prompt=prompt,
                         prompt_extend=prompt_extend is not False, resolution=resolution,
                         duration=duration)
            self._tasks[task.task_id] = task
            self._active = [t for t in self._active if self._status(t, now) in (PENDING, RUNNING)]
            self._active.append(task)
            self.stats.max_in_flight = max(self.stats.max_in_flight, len(self._active))
            self.stats.submits += 1
        return _json(200, {"request_id": task.request_id,
                           "output": {"task_id": task.task_id, "task_status": PENDING}})

    @staticmethod
    def _decode_data_uri(where: str, uri: str) -> tuple[str, bytes]:
        head, sep, payload = uri.partition(",")
        if not sep or not head.lower().endswith(";base64"):
            raise _inspection(f"{where}: a data URI must look like data:<mime>;base64,<data>.")
        mime = head[5:].split(";")[0].strip().lower()
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _inspection(f"{where}: the base64 data cannot be decoded.") from None
        return mime, data

    def _check_url(self, where: str, url: str) -> bool:
        """True for a data: URI to inspect; accepts http(s)/oss URLs as given."""
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            return True
        if scheme in ("http", "https", "oss") and len(url) > len(scheme) + 3:
            return False
        raise _invalid(f"{where}: expected a public http(s) URL or a data: URI, got "
                       f"{url[:40]!r}.")

    def _check_image(self, where: str, url: str) -> None:
        if not self._check_url(where, url):
            return
        mime, data = self._decode_data_uri(where, url)
        if len(data) > IMAGE_MAX_BYTES:
            raise _inspection(f"{where}: the image is {len(data)} bytes; the limit is "
                              f"{IMAGE_MAX_BYTES} bytes (10 MB).")
        from wanvid.media import probe_image  # lazy: keeps the emulator's import light

        info = probe_image(data)
        if info is None:
            raise _inspection(f"{where}: The media format is not supported or incorrect for "
                              "the data inspection (JPEG, PNG, BMP or WEBP expected).")
        declared = _MIME_ALIASES.get(mime, mime)
        actual = _MIME_ALIASES.get(info.mime.lower(), info.mime.lower())
        if declared != actual:
            raise _inspection(f"{where}: the declared MIME type {mime or '(none)'} does not "
                              f"match the image data ({actual}).")
        if not (IMAGE_MIN_PX <= info.width <= IMAGE_MAX_PX
                and IMAGE_MIN_PX <= info.height <= IMAGE_MAX_PX):
            raise _inspection(f"{where}: the image is {info.width}x{info.height}; width and "
                              f"height must be between {IMAGE_MIN_PX} and {IMAGE_MAX_PX} px.")
        if info.has_alpha and actual == "image/png":
            raise _inspection(f"{where}: PNG images with an alpha channel are not supported.")

    def _check_audio(self, url: str) -> None:
        where = "input.audio_url"
        if not self._check_url(where, url):
            return
        _, data = self._decode_data_uri(where, url)
        if len(data) > AUDIO_MAX_BYTES:
            raise _inspection(f"{where}: the audio is {len(data)} bytes; the limit is "
                              f"{AUDIO_MAX_BYTES} bytes (15 MB).")
        from wanvid.media import probe_audio  # lazy, like probe_image

        info = probe_audio(data)
        if info is None:
            raise _inspection(f"{where}: The media format is not supported or incorrect for "
                              "the data inspection (WAV or MP3 expected).")
        if not AUDIO_MIN_S <= info.duration <= AUDIO_MAX_S:
            raise _inspection(f"{where}: the audio lasts {info.duration:.1f} s; it must last "
                              f"{AUDIO_MIN_S:g} to {AUDIO_MAX_S:g} s.")

    # ------------------------------------------------------------------ admin
    def _admin(self, method: str, path: str, query: dict[str, list[str]]) -> _Response:
        if path == ADMIN_PREFIX + "/advance":
            if method != "POST":
                return _error(405, "MethodNotAllowed", "Use POST.")
            try:
                seconds = float(_first(query, "seconds") or "")
                self.advance(seconds)
            except ValueError:
                return _error(400, "InvalidParameter",
                              "Query parameter 'seconds' must be a finite number >= 0.")
            return _json(200, {"advanced": seconds, "offset": self._offset})
        if path == ADMIN_PREFIX + "/stats":
            if method not in ("GET", "HEAD"):
                return _error(405, "MethodNotAllowed", "Use GET.")
            with self._lock:
                return _json(200, self.stats.to_dict())
        return _error(404, "NotFound", f"No admin route {path}.")

    # ------------------------------------------------------- query/cancel/list
    def _query(self, task_id: str, host: str | None) -> _Response:
        if self.config.error_every > 0:
            with self._lock:
                self._query_count += 1
                failed = self._query_count % self.config.error_every == 0
                if failed:
                    self.stats.errors += 1
            if failed:
                return _error(500, INTERNAL_CODE, INTERNAL_MESSAGE)
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                payload = {"request_id": _rid(),
                           "output": {"task_id": task_id, "task_status": UNKNOWN}}
            else:
                payload = self._task_payload(task, self.now(), host)
            self.stats.queries += 1
        return _json(200, payload)

    def _cancel(self, task_id: str) -> _Response:
        with self._lock:
            now = self.now()
            task = self._tasks.get(task_id)
            if task is None or self._status(task, now) != PENDING:
                raise _ApiError(400, "UnsupportedOperation", CANCEL_MESSAGE)
            task.canceled_at = now
            self.stats.cancels += 1
        return _json(200, {"request_id": _rid()})

    def _list(self, query: dict[str, list[str]]) -> _Response:
        def number(name: str, default: int, lo: int, hi: int) -> int:
            raw = _first(query, name)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise _invalid(f"Parameter '{name}' must be an integer.") from None
            if not lo <= value <= hi:
                raise _invalid(f"Parameter '{name}' must be between {lo} and {hi}.")
            return value

        page_no = number("page_no", 1, 1, 1 << 30)
        page_size = number("page_size", 10, 1, 100)
        bounds: list[float | None] = []
        for name in ("start_time", "end_time"):
            raw = _first(query, name)
            if raw:
                try:
                    bounds.append(_parse_time(raw))
                except ValueError:
                    raise _invalid(f"Parameter '{name}' must look like "
                                   "'YYYY-MM-DD HH:mm:ss'.") from None
            else:
                bounds.append(None)
        start, end = bounds
        model_name = (_first(query, "model_name") or "").strip()
        want_model = find_model(model_name) if model_name else None
        status = (_first(query, "status") or "").strip().upper()
        with self._lock:
            now = self.now()
            wall_now = self.wall(now)
            if start is None and end is None:
                start = wall_now - TASK_TTL
            rows = []
            for task in sorted(self._tasks.values(), key=lambda t: t.seq, reverse=True):
                st = self._status(task, now)
                submitted = self.wall(task.created)
                if st == UNKNOWN:
                    continue
                if (start is not None and submitted < start) or (
                        end is not None and submitted > end):
                    continue
                if model_name and not (task.model is want_model
                                       or task.model_name.lower() == model_name.lower()):
                    continue
                if status and st != status:
                    continue
                out = self._task_payload(task, now, None)["output"]
                row = {"task_id": task.task_id, "task_status": st,
                       "model_name": task.model_name, "request_id": task.request_id,
                       "submit_time": out["submit_time"]}
                for k in ("scheduled_time", "end_time"):
                    if k in out:
                        row[k] = out[k]
                rows.append(row)
            self.stats.lists += 1
        total = len(rows)
        page = rows[(page_no - 1) * page_size: page_no * page_size]
        return _json(200, {"request_id": _rid(), "data": page, "total": total,
                           "total_page": math.ceil(total / page_size), "page_no": page_no,
                           "page_size": page_size})

    # --------------------------------------------------------------- download
    def _download(self, method: str, task_id: str, query: dict[str, list[str]],
                  headers: Any) -> _Response | _Download:
        expires_s, sig = _first(query, "Expires"), _first(query, "Signature")
        if not expires_s or not sig:
            return _oss_error(403, "AccessDenied",
                              "You have no right to access this object because of bucket acl.")
        try:
            expires = int(expires_s)
        except ValueError:
            return _oss_error(403, "AccessDenied", "Invalid Expires.")
        if not hmac.compare_digest(sig.encode(), self._sign(task_id, expires).encode()):
            return _oss_error(403, "SignatureDoesNotMatch",
                              "The request signature we calculated does not match the "
                              "signature you provided. Check your key and signing method.")
        with self._lock:
            now = self.now()
            wall_now = self.wall(now)
            task = self._tasks.get(task_id)
            status = self._status(task, now) if task else UNKNOWN
        if wall_now > expires:
            return _oss_error(403, "AccessDenied", "Request has expired.", extra={
                "Expires": datetime.fromtimestamp(expires, UTC).strftime(
                    "%Y-%m-%dT%H:%M:%S.000Z"),
                "ServerTime": datetime.fromtimestamp(wall_now, UTC).strftime(
                    "%Y-%m-%dT%H:%M:%S.000Z")})
        if status != SUCCEEDED:
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        data = self.video_bytes()
        size = len(data)
        common = {"Accept-Ranges": "bytes", "ETag": self._etag,
                  "Last-Modified": _http_date(self.wall(self._ended_at(task))),
                  "x-oss-request-id": uuid.uuid4().hex[:24].upper()}
        if_range = headers.get("If-Range")
        range_value = headers.get("Range")
        if if_range and if_range.strip() != self._etag:
            range_value = None
        try:
            rng = parse_range(range_value, size)
        except _Unsatisfiable:
            return _oss_error(416, "InvalidRange", "The requested range is not satisfiable",
                              headers={"Content-Range": f"bytes */{size}", **common})
        start, end = rng if rng else (0, size - 1)
        cut_at: int | None = None
        if method == "GET" and self.config.drop_download_at > 0:
            point = int(size * self.config.drop_download_at)
            if start < point <= end:
                with self._lock:
                    if (task_id, start) not in self._cut:
                        self._cut.add((task_id, start))
                        cut_at = point
        if rng:
            common["Content-Range"] = f"bytes {start}-{end}/{size}"
        return _Download(206 if rng else 200, data, start, end, cut_at, common)


def _http_date(epoch: float) -> str:
    from email.utils import formatdate

    return formatdate(epoch, usegmt=True)


def _oss_error(status: int, code: str, message: str, *, extra: dict[str, str] | None = None,
               headers: dict[str, str] | None = None) -> _Response:
    rid = uuid.uuid4().hex[:24].upper()
    parts = [f"  <Code>{escape(code)}</Code>", f"  <Message>{escape(message)}</Message>",
             f"  <RequestId>{rid}</RequestId>",
             "  <HostId>dashscope-result.emulator.local</HostId>"]
    parts += [f"  <{k}>{escape(v)}</{k}>" for k, v in (extra or {}).items()]
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n' + "\n".join(parts)
            + "\n</Error>\n").encode()
    return _Response(status, body, "application/xml",
                     {"x-oss-request-id": rid, **(headers or {})})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        if self.emulator._log:
            self.emulator._log("emulator error: " + traceback.format_exc().rstrip())


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "wanvid-emulator"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request goes to the emulator's log callback instead

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            return None
        if n < 0 or n > MAX_BODY:
            return None
        return self.rfile.read(n)

    def _dispatch(self, method: str) -> None:
        emu = self.server.emulator
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        body = self._read_body()
        if body is None:
            self.close_connection = True
            resp: _Response | _Download = _error(413, "RequestEntityTooLarge",
                                                 "The request body is too large.")
        else:
            try:
                resp = emu._route(method, split.path, query, self.headers, body)
            except Exception:  # an emulator bug: answer like the service would, and log it
                if emu._log:
                    emu._log("emulator error: " + traceback.format_exc().rstrip())
                resp = _error(500, INTERNAL_CODE, INTERNAL_MESSAGE)
        if emu._log:
            emu._log(f"{method} {self.path[:120]} -> {resp.status}")
        if isinstance(resp, _Download):
            self._send_download(method, resp)
        else:
            self._send(method, resp)

    def _send(self, method: str, resp: _Response) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(resp.body)

    def _send_download(self, method: str, d: _Download) -> None:
        emu = self.server.emulator
        self.send_response(d.status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(d.end - d.start + 1))
        for k, v in d.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if method == "HEAD":
            return
        emu._count("downloads")
        stop = d.cut_at if d.cut_at is not None else d.end + 1
        pos = d.start
        while pos < stop:
            n = min(CHUNK, stop - pos)
            emu._count("bytes_served", n)
            try:
                self.wfile.write(d.data[pos: pos + n])
            except OSError:
                emu._count("bytes_served", -n)
                self.close_connection = True
                return
            pos += n
        if d.cut_at is not None:
            emu._count("downloads_cut")
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve_forever(config: EmulatorConfig, *, out: TextIO | None = None,
                  err: TextIO | None = None) -> None:
    """Run the emulator until Ctrl-C (or SIGTERM): the base URL goes to ``out`` as one line,
    human-readable notes and a line per request to ``err``. Returns normally when stopped.
    A bad config or a port that cannot be bound raises ``wanvid.errors.BadInputError``."""
    from wanvid.errors import BadInputError

    out = out or sys.stdout
    err = err or sys.stderr

    def log(line: str) -> None:
        print(line, file=err, flush=True)

    try:
        emu = Emulator(config, log=log)
    except ValueError as e:
        raise BadInputError(f"emulator: {e}") from None
    try:
        url = emu.start()
    except OSError as e:
        raise BadInputError(f"cannot listen on {config.host}:{config.port}: "
                            f"{e.strerror or e}") from None
    stop = threading.Event()
    restore: Any = None
    try:
        if threading.current_thread() is threading.main_thread():
            restore = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print(url, file=out, flush=True)
        root = url[: -len(API_PREFIX)]
        c = config
        log(f"wanvid emulator: Wan video API at {url}")
        log(f"  tasks PENDING {c.pending:g}s, RUNNING {c.running:g}s; video URLs valid "
            f"{c.url_ttl:g}s; video {f'{c.video_mb:g} MiB' if c.video_mb > 0 else 'fixture'}")
        faults = [f"{n}={v:g}" for n, v in (
            ("fail_rate", c.fail_rate), ("throttle_every", c.throttle_every),
            ("error_every", c.error_every), ("drop_download_at", c.drop_download_at)) if v]
        log("  faults: " + (", ".join(faults) if faults else "none"))
        log("  API key: " + ("only the configured key" if c.key is not None
                             else "any Bearer key"))
        log(f"  admin: POST {root}{ADMIN_PREFIX}/advance?seconds=N, "
            f"GET {root}{ADMIN_PREFIX}/stats")
        log("  press Ctrl-C to stop")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        if restore is not None:
            signal.signal(signal.SIGTERM, restore)
    s = emu.stats
    log(f"wanvid emulator stopped ({s.submits} submits, {s.queries} queries, "
        f"{s.downloads} downloads)")


def main(argv: list[str] | None = None) -> int:
    """``python -m wanvid.emulator``: the same as ``wanvid emulator`` without the CLI."""
    d = EmulatorConfig()
    p = argparse.ArgumentParser(prog="python -m wanvid.emulator",
                                description="Local emulator of the Wan video API.")
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port (default 8765)")
    p.add_argument("--pending", type=float, default=d.pending)
    p.add_argument("--running", type=float, default=d.running)
    p.add_argument("--url-ttl", type=float, default=d.url_ttl)
    p.add_argument("--fail-rate", type=float, default=d.fail_rate)
    p.add_argument("--throttle-every", type=int, default=d.throttle_every)
    p.add_argument("--error-every", type=int, default=d.error_every)
    p.add_argument("--drop-download-at", type=float, default=d.drop_download_at)
    p.add_argument("--video-mb", type=float, default=d.video_mb)
    p.add_argument("--key", default=None)
    a = p.parse_args(argv)
    config = EmulatorConfig(host=a.host, port=a.port, pending=a.pending, running=a.running,
                            url_ttl=a.url_ttl, fail_rate=a.fail_rate,
                            throttle_every=a.throttle_every, error_every=a.error_every,
                            drop_download_at=a.drop_download_at, video_mb=a.video_mb, key=a.key)
    from wanvid.errors import WanvidError

    try:
        serve_forever(config)
    except WanvidError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return int(e.status)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
