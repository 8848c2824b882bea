"""The ``Emulator``: its clock, its tasks, and the routing of every request to the
checks, the task lifecycle, the storage and the admin routes."""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from wanvid.emulator.checks import check_auth, check_clip, check_submit
from wanvid.emulator.config import EmulatorConfig, EmulatorStats
from wanvid.emulator.storage import Storage
from wanvid.emulator.tasks import (
    Lifecycle,
    ListQuery,
    Task,
    list_page,
    list_rows,
    task_payload,
)
from wanvid.emulator.upload import OSS_URL_RE, RESOLVE_HEADER, UploadHost
from wanvid.emulator.wire import (
    ADMIN_PREFIX,
    API_PREFIX,
    CANCEL_MESSAGE,
    CANCEL_RE,
    CONCURRENT_CODE,
    CONCURRENT_MESSAGE,
    FAIL_CODE,
    FILE_RE,
    INTERNAL_CODE,
    INTERNAL_MESSAGE,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TASK_RE,
    THROTTLE_CODE,
    THROTTLE_MESSAGE,
    UNKNOWN,
    ApiError,
    Download,
    Headers,
    Response,
    error,
    first,
    json_response,
    model_not_found,
    oss_error,
    rid,
    task_fault,
)
from wanvid.models import I2V_PATH, KF2V_PATH, Model, find_model

if TYPE_CHECKING:
    from wanvid.emulator.server import Server

POLL_INTERVAL = 0.02  # how soon stop() is noticed by the serving thread


def _submit_paths() -> set[str]:
    """Every catalogue model's endpoint (a model may name its own), plus the two standard."""
    from wanvid.models import MODELS

    return {API_PREFIX + I2V_PATH, API_PREFIX + KF2V_PATH,
            *(API_PREFIX + m.path for m in MODELS)}


class Emulator:
    """The emulator: state, clock and an HTTP server on a daemon thread."""

    def __init__(self, config: EmulatorConfig | None = None, *,
                 log: Callable[[str], None] | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.config.check()
        c = self.config
        self.stats = EmulatorStats()
        self.base_url = ""
        self.log = log
        self.life = self._lifecycle()
        self.storage = Storage(video_mb=c.video_mb, drop_download_at=c.drop_download_at)
        self._lock = threading.Lock()
        self._offset = 0.0
        self._clock0 = c.clock()
        self._wall0 = time.time()
        self._tasks: dict[str, Task] = {}
        self._active: list[Task] = []
        self._seq = 0
        self._api_count = 0
        self._query_count = 0
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._others: list[tuple[Server, threading.Thread]] = []  # storage, upload host
        self.storage_url = ""  # http://host:port of the result videos (not the API's port)
        self.uploads = UploadHost(wall=self.wall, max_mb=c.upload_max_mb,
                                  policy_ttl=c.policy_ttl, stats=self.stats,
                                  stats_lock=self._lock)

    def _lifecycle(self) -> Lifecycle:
        c = self.config
        rate = c.fail_rate if c.fail_rate or not c.fail_with else 1.0
        return Lifecycle(pending=c.pending, running=c.running, fail_rate=rate)

    def concurrency_limit(self, model: Model) -> int:
        """How many tasks of ``model`` may be PENDING/RUNNING at once (0: no limit)."""
        c = self.config
        if c.max_concurrent > 0:
            return c.max_concurrent
        return model.concurrent_tasks if c.model_limits else 0

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
        """Serve on daemon threads: the API (returned, e.g. http://127.0.0.1:PORT/api/v1),
        the storage of result videos (``storage_url``) and the upload host
        (``uploads.url``), each on its own port."""
        if self._server is not None:
            return self.base_url
        c = self.config
        self._server, self._thread, root = self._serve(c.port, "api")
        try:
            server, thread, self.storage_url = self._serve(c.storage_port, "storage")
            self._others.append((server, thread))
            server, thread, self.uploads.url = self._serve(c.upload_port, "upload")
            self._others.append((server, thread))
        except OSError:
            self.stop()
            raise
        self.base_url = root + API_PREFIX
        return self.base_url

    def _serve(self, port: int, role: str) -> tuple[Server, threading.Thread, str]:
        from wanvid.emulator.server import Handler, Server, Server6

        cls = Server6 if ":" in self.config.host else Server
        server = cls((self.config.host, port), Handler)
        server.emulator = self
        server.role = role
        host = self.config.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        thread = threading.Thread(target=server.serve_forever,
                                  kwargs={"poll_interval": POLL_INTERVAL},
                                  name=f"wanvid-emulator-{role}", daemon=True)
        thread.start()
        return server, thread, f"http://{host}:{server.server_address[1]}"

    def stop(self) -> None:
        server, self._server = self._server, None
        others, self._others = self._others, []
        for srv, thread in ([(server, self._thread)] if server is not None else []) + others:
            assert srv is not None
            srv.shutdown()
            srv.server_close()
            if thread is not None:
                thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- video
    def video_bytes(self, task_id: str | None = None) -> memoryview:
        """The MP4 served for ``task_id`` (each task's own, unless padded to ``video_mb``:
        then one shared by every task; see ``Storage.video_bytes``)."""
        return self.storage.video_bytes(task_id)

    def video_url(self, task_id: str, host: str | None = None) -> str:
        """The signed URL of a task's video (valid ``url_ttl`` s after the task ended)."""
        task = self._tasks[task_id]
        expires = int(self.wall(self.life.ended_at(task)) + self.config.url_ttl)
        root = self.storage_url
        if host:  # the name the client used for the API, with the storage's port
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            root = f"http://{name}:{root.rsplit(':', 1)[1]}"
        return self.storage.url(root, task_id, expires)

    # -------------------------------------------------------------- requests
    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + n)

    def route(self, method: str, path: str, query: dict[str, list[str]],
              headers: Headers, body: bytes | None, role: str = "api") -> Response | Download:
        """Answer one request to the API or the storage port (the HTTP layer only reads and
        writes bytes). Videos are served by the storage port only, the API by the API's."""
        api = False
        m: re.Match[str] | None = None
        if role == "storage":
            m = FILE_RE.match(path)
            key = f"{method} {API_PREFIX}/files/{{task_id}}.mp4" if m else f"{method} {path}"
            with self._lock:
                self.stats.requests += 1
                self.stats.paths[key] = self.stats.paths.get(key, 0) + 1
            if m is None:
                return oss_error(404, "NoSuchKey", "The specified key does not exist.")
        elif path.startswith(ADMIN_PREFIX + "/"):
            key = f"{method} {path}"
        elif (FILE_RE.match(path)) is not None:
            key = f"{method} {path}"  # the API port serves no files
        elif path == API_PREFIX + "/uploads":
            key, api = f"{method} {path}", True
            key = f"{method} {API_PREFIX}/files/{{task_id}}.mp4"
        elif CANCEL_RE.match(path):
            key, api = f"{method} {API_PREFIX}/tasks/{{task_id}}/cancel", True
        elif TASK_RE.match(path):
            key, api = f"{method} {API_PREFIX}/tasks/{{task_id}}", True
        elif path in (*_submit_paths(), API_PREFIX + "/tasks"):
            key, api = f"{method} {path}", True
        else:
            key = f"{method} {path}"
        if role != "storage":
            with self._lock:
                self.stats.requests += 1
                self.stats.paths[key] = self.stats.paths.get(key, 0) + 1

        if m is not None:
            if method not in ("GET", "HEAD"):
                return oss_error(405, "MethodNotAllowed",
                                 "The specified method is not allowed against this resource.")
            with self._lock:
                self.stats.download_auth.append(headers.get("Authorization"))
            return self._download(method, m.group(1), query, headers)
        if path.startswith(ADMIN_PREFIX + "/"):
            return self._admin(method, path, query)
        if not api:
            return error(404, "NotFound", f"No route for {method} {path}.")
        try:
            return self._api(method, path, query, headers, body)
        except ApiError as e:
            self.count("rejected")
            return error(e.status, e.code, e.message)

    def _api(self, method: str, path: str, query: dict[str, list[str]], headers: Headers,
             body: bytes | None) -> Response:
        check_auth(headers.get("Authorization"), self.config.key)
        if self.config.throttle_every > 0:
            with self._lock:
                self._api_count += 1
                throttled = self._api_count % self.config.throttle_every == 0
                if throttled:
                    self.stats.throttled += 1
            if throttled:
                return error(429, THROTTLE_CODE, THROTTLE_MESSAGE)
        host = headers.get("Host")
        if path == API_PREFIX + "/uploads":
            if method not in ("GET", "HEAD"):
                raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here.")
            return self._policy(query)
        if path in _submit_paths():
            if method != "POST":
                raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here.")
            return self._submit(path[len(API_PREFIX):], headers, body or b"")
        if path == API_PREFIX + "/tasks":
            if method not in ("GET", "HEAD"):
                raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here.")
            return self._list(query)
        if (m := CANCEL_RE.match(path)) is not None:
            if method != "POST":
                raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here.")
            return self._cancel(m.group(1))
        m = TASK_RE.match(path)
        assert m is not None
        if method not in ("GET", "HEAD"):
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here.")
        return self._query(m.group(1), host)

    def _policy(self, query: dict[str, list[str]]) -> Response:
        if first(query, "action") != "getPolicy":
            raise ApiError(400, "InvalidParameter", "url error, please check url!")
        model = first(query, "model") or ""
        if find_model(model) is None:
            raise model_not_found(model)
        if not self.config.uploads:
            raise ApiError(404, "NotFound", "Temporary file upload is not offered in this "
                                            "region.")
        return json_response(200, {"request_id": rid(), "data": self.uploads.policy(model)})

    def _submit(self, route: str, headers: Headers, body: bytes) -> Response:
        sub = check_submit(route, headers, body)
        for url in OSS_URL_RE.findall(body):
            self.uploads.resolve(url.decode("utf-8", "replace"), sub.model_name,
                                 headers.get(RESOLVE_HEADER))
        clip_seconds = None
        if sub.clip_url is not None:  # a URL's length is unknown: taken as the shortest
            clip_seconds = sub.model.clip_min_s or 2.0
            obj = self.uploads.stored(sub.clip_url) if sub.clip_url.startswith("oss://") \
                else None
            if obj is not None:
                where = f"input.media[{sub.media_types.index('first_clip')}].url"
                seconds = check_clip(where, obj.head, obj.size, sub.model.clip_limits)
                clip_seconds = seconds if seconds is not None else clip_seconds
        with self._lock:
            now = self.now()
            self._active = [t for t in self._active
                            if self.life.status(t, now) in (PENDING, RUNNING)]
            limit = self.concurrency_limit(sub.model)
            if limit and sum(t.model is sub.model for t in self._active) >= limit:
                self.stats.throttled += 1
                self.stats.concurrent_throttled += 1
                return error(429, CONCURRENT_CODE, CONCURRENT_MESSAGE)
            self._seq += 1
            seq = self._seq
            fail_code = task_fault(self.config.fail_with) if self.config.fail_with else None
            task = Task(task_id=str(uuid.uuid4()), seq=seq, model=sub.model,
                        model_name=sub.model_name, request_id=rid(), created=now,
                        fails=self.life.fails(seq), prompt=sub.prompt,
                        prompt_extend=sub.prompt_extend, resolution=sub.resolution,
                        duration=sub.duration, fail_code=fail_code or FAIL_CODE,
                        template=sub.template, audio=sub.audio, clip_seconds=clip_seconds)
            self._tasks[task.task_id] = task
            self._active.append(task)
            self.stats.max_in_flight = max(self.stats.max_in_flight, len(self._active))
            self.stats.submits += 1
            latency = self.config.submit_latency
        if latency > 0:  # the task exists; a client killed now never hears of it
            self.config.sleep(latency)
        return json_response(200, {"request_id": task.request_id,
                                   "output": {"task_id": task.task_id, "task_status": PENDING}})

    # ------------------------------------------------------------------ admin
    def _admin(self, method: str, path: str, query: dict[str, list[str]]) -> Response:
        if path == ADMIN_PREFIX + "/advance":
            if method != "POST":
                return error(405, "MethodNotAllowed", "Use POST.")
            try:
                seconds = float(first(query, "seconds") or "")
                self.advance(seconds)
            except ValueError:
                return error(400, "InvalidParameter",
                             "Query parameter 'seconds' must be a finite number >= 0.")
            return json_response(200, {"advanced": seconds, "offset": self._offset})
        if path == ADMIN_PREFIX + "/config":
            if method == "POST":
                try:
                    self.configure(query)
                except ValueError as e:
                    return error(400, "InvalidParameter", str(e))
            elif method not in ("GET", "HEAD"):
                return error(405, "MethodNotAllowed", "Use GET or POST.")
            return json_response(200, self.runtime_config())
        if path == ADMIN_PREFIX + "/tasks":
            with self._lock:
                rows = [{"task_id": t.task_id, "seq": t.seq, "model_name": t.model_name,
                         "prompt": t.prompt, "status": self.life.status(t, self.now()),
                         "submit_time": self.wall(t.created)}
                        for t in sorted(self._tasks.values(), key=lambda t: t.seq)]
            return json_response(200, {"tasks": rows})
        if path == ADMIN_PREFIX + "/hosts":
            return json_response(200, {"api": self.base_url[: -len(API_PREFIX)],
                                       "storage": self.storage_url,
                                       "upload": self.uploads.url})
        if path == ADMIN_PREFIX + "/stats":
            if method not in ("GET", "HEAD"):
                return error(405, "MethodNotAllowed", "Use GET.")
            with self._lock:
                return json_response(200, self.stats.to_dict())
        return error(404, "NotFound", f"No admin route {path}.")

    _RUNTIME = ("max_concurrent", "model_limits", "fail_with", "fail_rate", "submit_latency",
                "slow_headers", "storage_checksums", "corrupt_ranges")

    def runtime_config(self) -> dict[str, object]:
        """The switches ``POST /_emulator/config`` may change, with their values."""
        return {k: getattr(self.config, k) for k in self._RUNTIME}

    def configure(self, query: dict[str, list[str]]) -> None:
        """Change switches at run time (``max_concurrent=N``, ``model_limits=true``,
        ``fail_with=CODE``, ``fail_rate=R``, ``submit_latency=S``, ``slow_headers=S``,
        ``storage_checksums=true|false``, ``corrupt_ranges=true|false``); all or nothing;
        ValueError
        names the bad one."""
        import dataclasses

        changes: dict[str, object] = {}
        for name, values in query.items():
            raw = values[0] if values else ""
            if name not in self._RUNTIME:
                raise ValueError(f"unknown switch {name!r}; one of: {', '.join(self._RUNTIME)}")
            if name == "max_concurrent":
                try:
                    changes[name] = int(raw)
                except ValueError:
                    raise ValueError("max_concurrent must be a whole number >= 0") from None
            elif name in ("model_limits", "storage_checksums", "corrupt_ranges"):
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(f"{name} must be true or false")
                changes[name] = raw.lower() in ("true", "1")
            elif name == "fail_rate":
                try:
                    changes[name] = float(raw)
                except ValueError:
                    raise ValueError("fail_rate must be a number between 0 and 1") from None
            elif name in ("submit_latency", "slow_headers"):
                try:
                    changes[name] = float(raw)
                except ValueError:
                    raise ValueError(f"{name} must be a finite number >= 0") from None
            else:
                changes[name] = raw
        new = dataclasses.replace(self.config, **changes)  # type: ignore[arg-type]
        new.check()
        with self._lock:
            for k, v in changes.items():
                setattr(self.config, k, v)
            self.life = self._lifecycle()

    # ------------------------------------------------------- query/cancel/list
    def _query(self, task_id: str, host: str | None) -> Response:
        if self.config.error_every > 0:
            with self._lock:
                self._query_count += 1
                failed = self._query_count % self.config.error_every == 0
                if failed:
                    self.stats.errors += 1
            if failed:
                return error(500, INTERNAL_CODE, INTERNAL_MESSAGE)
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                payload = {"request_id": rid(),
                           "output": {"task_id": task_id, "task_status": UNKNOWN}}
            else:
                payload = task_payload(task, self.now(), self.life, self.wall,
                                       lambda: self.video_url(task_id, host))
            self.stats.queries += 1
        return json_response(200, payload)

    def _cancel(self, task_id: str) -> Response:
        with self._lock:
            now = self.now()
            task = self._tasks.get(task_id)
            if task is None or self.life.status(task, now) != PENDING:
                raise ApiError(400, "UnsupportedOperation", CANCEL_MESSAGE)
            task.canceled_at = now
            self.stats.cancels += 1
        return json_response(200, {"request_id": rid()})

    def _list(self, query: dict[str, list[str]]) -> Response:
        q = ListQuery.parse(query)
        with self._lock:
            rows = list_rows(self._tasks.values(), q, self.now(), self.life, self.wall)
            self.stats.lists += 1
        return json_response(200, list_page(rows, q))

    # --------------------------------------------------------------- download
    def _download(self, method: str, task_id: str, query: dict[str, list[str]],
                  headers: Headers) -> Response | Download:
        checked = self.storage.check_signature(task_id, first(query, "Expires"),
                                               first(query, "Signature"))
        if isinstance(checked, Response):
            return checked
        with self._lock:
            now = self.now()
            wall_now = self.wall(now)
            task = self._tasks.get(task_id)
            status = self.life.status(task, now) if task else UNKNOWN
            modified = self.wall(self.life.ended_at(task)) if task else wall_now
        return self.storage.serve(method, task_id, checked, wall_now, status == SUCCEEDED,
                                  modified, headers, checksums=self.config.storage_checksums,
                                  corrupt_ranges=self.config.corrupt_ranges)
