"""HTTP client for the Wan video API (DashScope async task API).

* ``submit`` POSTs to the endpoint the model's kind needs, with ``X-DashScope-Async: enable``.
  It is retried only where the service certainly created no task (429, refused
  connection), so one submit can never make two paid tasks.
* ``get_task`` / ``list_tasks`` are idempotent and retried on 429, 5xx and transport
  errors with exponential backoff and jitter, honouring Retry-After.
* Every request has a timeout. The key travels only in the Authorization header to the
  API host; it never appears in an exception, a log line or ``--debug`` output.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from wanvid import __version__
from wanvid.config import check_key
from wanvid.errors import (
    AuthError,
    BadInputError,
    DeadlineExceeded,
    NetworkError,
    ProtocolAnswerError,
    RejectedError,
    ThrottledError,
    TooLarge,
    WanvidError,
)
from wanvid.net import JSON_MAX, REQUEST_MAX, Deadline, new_session, read_capped
from wanvid.retry import (
    NOTICE_AFTER,  # noqa: F401 - re-exported
    connection_refused,
    retry_delay,
    should_retry_error,
    should_retry_status,
    wait_to_retry,
)
from wanvid.sanitize import ProtocolError, one_line, scrub_secret
from wanvid.sanitize import task_id as checked_task_id

log = logging.getLogger("wanvid.client")

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
MAX_RETRIES = 4




def parse_error(resp: requests.Response) -> tuple[str | None, str, str | None]:
    """(code, message, request_id) from an error answer, whatever its shape."""
    code = message = request_id = None
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        src = data
        if isinstance(data.get("output"), dict) and not data.get("code"):
            src = data["output"]
        code = src.get("code") or None
        message = src.get("message") or None
        request_id = data.get("request_id") or None
    if not message:
        text = " ".join((resp.text or "").split())
        message = text[:200] if text else (resp.reason or f"HTTP {resp.status_code}")
    # All three come from the server: escaped before they reach any line of ours.
    return (one_line(code, 100) if code else None), one_line(message, 300), \
        (one_line(request_id, 100) if request_id else None)


def error_for(resp: requests.Response) -> WanvidError:
    """Map an HTTP error answer to the exception (and so the exit code) it deserves."""
    code, message, request_id = parse_error(resp)
    status = resp.status_code
    what = f"{code}: {message}" if code else message
    if status == 401 or (code or "").startswith("InvalidApiKey"):
        return AuthError(
            f"the service rejected the API key ({what}); check DASHSCOPE_API_KEY and "
            "that the key belongs to the region you call (--region)",
            code=code, request_id=request_id)
    if status == 429:
        return ThrottledError(f"rate limited by the service after retries ({what})",
                              code=code, request_id=request_id)
    if code == "ModelNotFound":  # the notes' 404: a wrong name, or not offered in the region
        return RejectedError(
            f"the service does not offer this model here ({status} {what}); check the name "
            "(`wanvid models`) and that the region you call (--region) offers it",
            code=code, request_id=request_id)
    if 400 <= status < 500:
        return RejectedError(f"the service rejected the request ({status} {what})",
                             code=code, request_id=request_id)
    return NetworkError(f"service error {status} ({what})", code=code, request_id=request_id)


class Client:
    def __init__(self, base_url: str, api_key: str, *, session: requests.Session | None = None,
                 timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
                 max_retries: int = MAX_RETRIES, sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[str], None] | None = None,
                 deadline: Deadline | None = None,
                 notify: Callable[[str], None] | None = None,
                 json_max: int = JSON_MAX, request_max: float = REQUEST_MAX,
                 now: Callable[[], float] = time.time) -> None:
        self.base_url = base_url.rstrip("/")
        self.now = now  # the wall clock an HTTP-date Retry-After is measured from
        check_key(api_key)
        self._key = api_key
        self.session = session if session is not None else new_session()
        self.timeout = timeout
        self.deadline = deadline if deadline is not None else Deadline(None)
        self.notify = notify  # one human line, e.g. "throttled by the service; retrying in 40 s"
        self.json_max = json_max
        self.request_max = request_max  # seconds one request may take, first byte to last
        self.max_retries = max_retries
        self.sleep = sleep
        self.on_retry = on_retry
        self._api_host = urlsplit(self.base_url).netloc

    def __repr__(self) -> str:  # never show the key
        return f"Client(base_url={self.base_url!r})"

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self._key}", "User-Agent": f"wanvid/{__version__}",
             "Accept": "application/json"}
        if extra:
            h.update(extra)
        return h

    def _request(self, method: str, path: str, *, idempotent: bool,
                 body: bytes | None = None, params: dict[str, Any] | None = None,
                 extra_headers: dict[str, str] | None = None,
                 max_retries: int | None = None) -> dict[str, Any]:
        url = self.base_url + path
        if urlsplit(url).netloc != self._api_host:  # pragma: no cover - defensive
            raise NetworkError("refusing to send the API key to another host")
        retries = self.max_retries if max_retries is None else max_retries
        attempt = 0
        while True:
            attempt += 1
            self.deadline.check(f"before {method} {path}" + (
                "; nothing was sent" if not idempotent else ""))
            try:
                with self.deadline.watch(self.request_max) as watch:
                    resp = self.session.request(
                        method, url, data=body, params=params,
                        timeout=self.deadline.timeout(*self.timeout),
                        headers=self._headers(extra_headers), allow_redirects=False,
                        stream=True)
                    with resp:
                        answer = read_capped(resp, self.json_max)
                    clean = scrub_secret(answer, self._key)  # an echoed key goes no further
                    if clean is not answer:
                        resp._content = clean  # type: ignore[attr-defined]
            except TooLarge as e:
                raise TooLarge(f"{method} {path}: {e.message}") from None
            except requests.exceptions.RequestException as e:
                if self.deadline.expired():
                    raise self._deadline_error(method, path, idempotent) from None
                if watch.fired:  # the per-request limit: count it as a read timeout
                    e = requests.exceptions.ReadTimeout(str(e))
                if attempt <= retries and should_retry_error(e, idempotent=idempotent):
                    delay = retry_delay(attempt)
                    self._note_retry(f"{method} {path}: {type(e).__name__}; retry {attempt} in {delay:.1f}s")
                    self._wait(delay, method, path, idempotent, throttled=False)
                    continue
                raise self._transport_error(e, method, idempotent) from None
            log.debug("%s %s -> %s", method, path, resp.status_code)
            if resp.status_code < 300:
                try:
                    data = resp.json()
                except ValueError:
                    raise NetworkError(f"{method} {path}: the service answered {resp.status_code} "
                                       "with a body that is not JSON") from None
                if not isinstance(data, dict):
                    raise NetworkError(f"{method} {path}: unexpected answer from the service")
                return data
            if 300 <= resp.status_code < 400:
                where = urlsplit(resp.headers.get("Location") or "").netloc or "elsewhere"
                raise NetworkError(
                    f"{method} {path}: the API answered with a redirect ({resp.status_code} to "
                    f"{one_line(where, 100)}), which wanvid does not follow (the key goes only "
                    "to the API root); check --base-url / DASHSCOPE_HTTP_BASE_URL")
            if attempt <= retries and should_retry_status(resp.status_code, idempotent=idempotent):
                delay = retry_delay(attempt, resp.headers.get("Retry-After"), now=self.now())
                code, _, _ = parse_error(resp)
                self._note_retry(f"{method} {path}: {resp.status_code} {code or ''}".rstrip()
                                 + f"; retry {attempt} in {delay:.1f}s")
                self._wait(delay, method, path, idempotent,
                           throttled=resp.status_code == 429)
                continue
            err = error_for(resp)
            if not idempotent and resp.status_code >= 500:
                err.message += ("; the service may or may not have created the task: check "
                                "`wanvid tasks --remote` before submitting again")
            raise err

    def _wait(self, delay: float, method: str, path: str, idempotent: bool, *,
              throttled: bool) -> None:
        """Sleep before a retry (the shared policy: said on stderr when long, never past
        the deadline)."""
        wait_to_retry(delay, deadline=self.deadline, sleep=self.sleep, notify=self.notify,
                      throttled=throttled,
                      after="; no task was created" if (throttled and not idempotent) else "")

    def _deadline_error(self, method: str, path: str, idempotent: bool) -> DeadlineExceeded:
        msg = self.deadline.message(f"during {method} {path}")
        if not idempotent:
            msg += ("; the service may or may not have created the task: check "
                    "`wanvid tasks --remote` before submitting again")
        return DeadlineExceeded(msg)

    def _note_retry(self, msg: str) -> None:
        log.debug(msg)
        if self.on_retry:
            self.on_retry(msg)

    def _transport_error(self, e: requests.exceptions.RequestException, method: str,
                         idempotent: bool) -> NetworkError:
        kind = "timed out" if isinstance(e, requests.exceptions.Timeout) else "connection failed"
        where = urlsplit(self.base_url).netloc
        msg = f"{method} to {where} {kind}"
        if not idempotent and connection_refused(e):
            msg += "; nothing was sent"
        elif not idempotent:
            msg += ("; the service may or may not have created the task: check "
                    "`wanvid tasks --remote` before submitting again")
        return NetworkError(msg)

    # --- the API -------------------------------------------------------------------------

    def submit(self, path: str, body: bytes) -> dict[str, Any]:
        """Create a task. ``body`` is the JSON request, already serialised."""
        headers = {"X-DashScope-Async": "enable", "Content-Type": "application/json"}
        if b'"oss://' in body:  # a temporary upload: the service resolves it only when asked
            headers["X-DashScope-OssResourceResolve"] = "enable"
        return self._request("POST", path, idempotent=False, body=body, extra_headers=headers)

    def upload_policy(self, model: str) -> dict[str, Any]:
        """A temporary-upload policy for ``model`` (``wanvid.upload`` uses it)."""
        return self._request("GET", "/uploads", idempotent=True,
                             params={"action": "getPolicy", "model": model})

    def get_task(self, task_id: str, *, max_retries: int | None = None) -> dict[str, Any]:
        return self._request("GET", f"/tasks/{_quote(task_id)}", idempotent=True,
                             max_retries=max_retries)

    def cancel(self, task_id: str) -> dict[str, Any]:
        # Canceling twice is harmless, so transport errors may be retried.
        return self._request("POST", f"/tasks/{_quote(task_id)}/cancel", idempotent=True)

    def list_tasks(self, **params: Any) -> dict[str, Any]:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._request("GET", "/tasks", idempotent=True, params=clean)


def submitted_task_id(resp: dict[str, Any]) -> str:
    """The task id in a submit answer, checked; a missing or unusable one is an error
    that says the task may exist (the service accepted the request)."""
    out = resp.get("output") if isinstance(resp.get("output"), dict) else {}
    rid = resp.get("request_id")
    ref = f"request_id {one_line(rid, 100)}" if isinstance(rid, str) and rid else "no request_id"
    try:
        return checked_task_id(out.get("task_id"))
    except ProtocolError as e:
        what = "no task id" if out.get("task_id") is None else f"a task id that is {e}"
        raise ProtocolAnswerError(
            f"the service accepted the request but answered with {what} ({ref}); a task may "
            "have been created: check `wanvid tasks --remote` before submitting again") from None




def _quote(task_id: str) -> str:
    from urllib.parse import quote

    return quote(task_id, safe="-_.")


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


class RoutingClient:
    """Queries each task where it was submitted: ``base_for(task_id)`` names the API root
    (from the journal), so `wanvid wait --pending` finds tasks submitted to another region
    or to an emulator, whatever --region/--base-url says now. A task's status is only
    trusted from its own root: asked anywhere else, a live task answers UNKNOWN and would
    be marked dead. Tasks without a journaled root go to the default client. One
    ``Client`` per API root, all with the same key; a journaled root is one the user
    configured for the submit (only a submit writes it), so the key may go there."""

    def __init__(self, default: Client, base_for: Callable[[str], str | None]) -> None:
        self.default = default
        self.base_for = base_for
        self._clients: dict[str, Client] = {default.base_url: default}

    def _for(self, task_id: str) -> Client:
        return self.for_root(self.base_for(task_id) or self.default.base_url, f"task {task_id}")

    def for_root(self, base: str, what: str = "a journaled submit") -> Client:
        """The client for one API root (the journal's, for a task or a submit intent)."""
        base = base.rstrip("/")
        if base not in self._clients:
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise BadInputError(f"{what}: the journal's API root {base!r} is not "
                                    "an http(s) URL; query it with --base-url")
            d = self.default
            self._clients[base] = Client(base, d._key, session=d.session, timeout=d.timeout,
                                         max_retries=d.max_retries, sleep=d.sleep,
                                         on_retry=d.on_retry, deadline=d.deadline,
                                         notify=d.notify, json_max=d.json_max,
                                         request_max=d.request_max, now=d.now)
        return self._clients[base]

    def get_task(self, task_id: str, *, max_retries: int | None = None) -> dict[str, Any]:
        return self._for(task_id).get_task(task_id, max_retries=max_retries)

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self._for(task_id).cancel(task_id)

    def submit(self, path: str, body: bytes) -> dict[str, Any]:
        return self.default.submit(path, body)
