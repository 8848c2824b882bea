"""HTTP plumbing that trusts nothing: the session every request goes through, deadlines,
and bounded reads.

* ``new_session()``: a ``requests.Session`` with ``trust_env`` off, so ``~/.netrc`` is
  never consulted (it would replace the API key, and follow a storage redirect to another
  host with that host's password). What ``trust_env`` also did and users rely on is done
  explicitly: proxies from ``http_proxy`` / ``https_proxy`` / ``all_proxy`` / ``no_proxy``
  (either case, lower case wins, as curl and urllib do) and a CA bundle from
  ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``. Cookies are never stored or sent.
* ``Deadline``: the whole command's ``--timeout``. ``Deadline.watch()`` arms a watchdog
  for the request in progress: when the time is up it shuts the request's socket down, so
  a server that sends one byte every 10 s (which no per-read timeout catches) cannot hold
  the command past its deadline. A ``watch`` also has a per-request limit, so one request
  never takes for ever even without ``--timeout``; ``time_limit()`` bounds one phase
  of a watched request the same way (a download's time to its response headers).
* ``read_capped()``: a response body read in chunks, refused once it passes a size cap,
  so an endless or huge answer never fills the memory. A body the watchdog cut (the
  deadline, or the per-request limit) is a ``ReadTimeout``, never a short answer: a body
  that ends with its connection looks complete when the watchdog shuts that connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from wanvid.errors import DeadlineExceeded, NetworkError, TooLarge  # noqa: F401 - re-exported

JSON_MAX = 4 << 20  # bytes: the biggest API answer wanvid reads (real ones are ~1 KiB)
REQUEST_MAX = 120.0  # seconds: the longest one API request may take, start to last byte




# --- proxies ---------------------------------------------------------------------------


def environ_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """``{scheme: proxy URL, 'no': hosts}`` from ``*_proxy`` variables, like urllib's
    ``getproxies_environment`` but from the given mapping."""
    proxies: dict[str, str] = {}
    for name, value in environ.items():
        low = name.lower()
        if value and low.endswith("_proxy"):
            proxies[low[:-6]] = value
    if "REQUEST_METHOD" in environ:  # CGI: HTTP_PROXY may come from a request header
        proxies.pop("http", None)
    for name, value in environ.items():  # lower case wins
        if name.endswith("_proxy"):
            if value:
                proxies[name[:-6]] = value
            else:
                proxies.pop(name[:-6], None)
    return proxies


def proxies_for(url: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The proxy for ``url`` per the environment: ``{scheme: proxy}`` or ``{}``."""
    proxies = environ_proxies(environ)
    no_proxy = proxies.pop("no", None)
    parts = urlsplit(url)
    if no_proxy and parts.hostname:
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        if urllib.request.proxy_bypass_environment(host, {"no": no_proxy}):
            return {}
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    return {parts.scheme: proxy} if proxy else {}


# --- watched connections ---------------------------------------------------------------

_local = threading.local()


def _register(sock: Any) -> None:
    watch: _Watch | None = getattr(_local, "watch", None)
    if watch is not None and sock is not None:
        watch.add(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _register(sock)  # before a proxy tunnel or TLS handshake, which may trickle too
        return sock

    def connect(self) -> None:
        super().connect()
        _register(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _register(self.sock)  # a kept-alive connection, used again
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _register(sock)
        return sock

    def connect(self) -> None:
        super().connect()
        _register(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _register(self.sock)
        super().request(*args, **kwargs)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


class Session(requests.Session):
    """See the module docstring."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        import os

        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.trust_env = False  # no ~/.netrc, no ambient anything
        self.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # no cookies, ever
        ca = self.environ.get("REQUESTS_CA_BUNDLE") or self.environ.get("CURL_CA_BUNDLE")
        if ca:
            self.verify = ca
        adapter = _Adapter()
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def merge_environment_settings(self, url: str | bytes | None, proxies: Any, stream: Any,
                                   verify: Any, cert: Any) -> dict[str, Any]:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if not proxies and url:
            u = url.decode() if isinstance(url, bytes) else url
            settings["proxies"] = {**proxies_for(u, self.environ), **(settings["proxies"] or {})}
        return settings


def new_session(environ: Mapping[str, str] | None = None) -> Session:
    return Session(environ)


# --- deadlines -------------------------------------------------------------------------


class _Watch:
    """Sockets of the request in progress, shut down when the watchdog fires."""

    def __init__(self) -> None:
        self.fired = False
        self._socks: list[Any] = []
        self._lock = threading.Lock()

    def add(self, sock: Any) -> None:
        with self._lock:
            self._socks.append(sock)
            fired = self.fired
        if fired:
            _shutdown(sock)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            socks = list(self._socks)
        for s in socks:
            _shutdown(s)


def _shutdown(sock: Any) -> None:
    with contextlib.suppress(OSError, AttributeError, ValueError):
        sock.shutdown(socket.SHUT_RDWR)


class Deadline:
    """A point in time the command must end by; ``None`` seconds means no deadline."""

    def __init__(self, seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.seconds: float | None = None
        self.at: float | None = None
        self.interrupted = False
        self.label: str | None = None  # what the message calls it (None: --timeout)
        self._watches: set[_Watch] = set()
        self._lock = threading.Lock()
        self.start(seconds)

    def start(self, seconds: float | None, *, label: str | None = None) -> None:
        """Count ``seconds`` from now (None: no deadline). Everything holding this object
        (clients, downloads, the wait loop) sees the new deadline. ``label`` names it in
        the message when it is not the command's ``--timeout``."""
        self.seconds = seconds
        self.label = label
        self.at = self.clock() + seconds if seconds is not None else None

    def remaining(self) -> float | None:
        return None if self.at is None else max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.at is not None and self.clock() >= self.at

    def check(self, what: str) -> None:
        if self.expired():
            raise DeadlineExceeded(self.message(what))

    def message(self, what: str) -> str:
        if self.interrupted:
            return f"interrupted {what}"
        if self.label:
            return f"{self.label} reached {what}"
        return f"--timeout {self.seconds:g} s reached {what}"

    def interrupt(self) -> None:
        """End now, from any thread (Ctrl-C while downloads run beside the polling loop):
        everything holding this deadline stops as at a timeout, and the requests in
        progress in every thread have their sockets shut down."""
        self.interrupted = True
        self.at = self.clock()
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            w.fire()

    def timeout(self, connect: float, read: float) -> tuple[float, float]:
        """(connect, read) socket timeouts, none longer than the time left."""
        rem = self.remaining()
        if rem is None:
            return connect, read
        rem = max(rem, 0.05)
        return min(connect, rem), min(read, rem)

    @contextlib.contextmanager
    def watch(self, limit: float | None = REQUEST_MAX) -> Iterator[_Watch]:
        """Arm the watchdog for the requests made (in this thread) inside the block: at
        the deadline, or after ``limit`` seconds, their sockets are shut down."""
        rem = self.remaining()
        wait = min(x for x in (rem, limit) if x is not None) if (rem, limit) != (None, None) \
            else None
        w = _Watch()
        prev = getattr(_local, "watch", None)
        _local.watch = w
        with self._lock:
            self._watches.add(w)
        if self.interrupted:
            w.fire()
        timer = None
        if wait is not None:
            timer = threading.Timer(max(wait, 0.0), w.fire)
            timer.daemon = True
            timer.start()
        try:
            yield w
        finally:
            if timer is not None:
                timer.cancel()
            with self._lock:
                self._watches.discard(w)
            _local.watch = prev


class Alarm:
    """What ``time_limit`` yields: ``fired`` once it has shut the request's sockets."""

    def __init__(self) -> None:
        self.fired = False
        self.done = False
        self.lock = threading.Lock()


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[Alarm]:
    """Inside a ``Deadline.watch`` block: when the block (say, waiting for a response's
    headers, which a per-read timeout never bounds while the server trickles them) takes
    more than ``seconds``, shut the watched request's sockets down, as the deadline would.
    One timer thread per block, nothing per read. ``Alarm.fired`` tells whether it went off;
    a block that ended first is never cut."""
    alarm = Alarm()
    watch: _Watch | None = getattr(_local, "watch", None)
    if watch is None or seconds is None:
        yield alarm
        return

    def fire() -> None:
        with alarm.lock:
            if alarm.done:
                return
            alarm.fired = True
        watch.fire()

    timer = threading.Timer(max(seconds, 0.0), fire)
    timer.daemon = True
    timer.start()
    try:
        yield alarm
    finally:
        with alarm.lock:
            alarm.done = True
        timer.cancel()


NO_DEADLINE = Deadline(None)


# --- bounded reads ---------------------------------------------------------------------


def content_length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: "an answer", "a video"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def read_capped(resp: requests.Response, cap: int = JSON_MAX, *, what: str = "answer") -> bytes:
    """The body of a ``stream=True`` response, at most ``cap`` bytes (decoded), else
    ``TooLarge``. The bytes are also cached on ``resp`` (``resp.json()`` works after).
    Inside a ``Deadline.watch`` that fired before the body was complete (a server that
    trickles past the deadline or the request's limit), ``requests.exceptions.ReadTimeout``:
    the watchdog's shutdown ends a body without a length like a clean end would."""
    watch: _Watch | None = getattr(_local, "watch", None)
    declared = content_length(resp)
    host = urlsplit(resp.url or "").hostname or "the server"
    if declared is not None and declared > cap:
        resp.close()
        raise TooLarge(f"{host} announced {_a(what)} of {declared} bytes; wanvid reads at most "
                       f"{cap >> 20} MiB, so it was refused")
    buf = bytearray()
    raw = resp.raw
    if isinstance(raw, urllib3.response.BaseHTTPResponse):
        chunks: Iterator[bytes] = raw.stream(64 << 10, decode_content=True)
    else:  # pragma: no cover - not a urllib3 response
        chunks = resp.iter_content(64 << 10)
    try:
        for chunk in chunks:
            buf += chunk
            if len(buf) > cap:
                resp.close()
                raise TooLarge(f"{host} sent {_a(what)} longer than {cap >> 20} MiB; refused "
                               "(a sound answer is a few KiB)")
    # What urllib3 raises while reading a body, as requests would have named it: a
    # transport error the caller may retry.
    except urllib3.exceptions.ReadTimeoutError as e:
        raise requests.exceptions.ReadTimeout(e) from e
    except urllib3.exceptions.ProtocolError as e:
        raise requests.exceptions.ChunkedEncodingError(e) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise requests.exceptions.ConnectionError(e) from e
    if watch is not None and watch.fired and (declared is None or len(buf) != declared):
        resp.close()
        raise requests.exceptions.ReadTimeout(
            f"{host}: the {what} was cut off after {len(buf)} bytes: it came too slowly")
    body = bytes(buf)
    resp._content = body  # type: ignore[attr-defined]
    resp._content_consumed = True  # type: ignore[attr-defined]
    return body
