"""Retry policy as small pure functions, used by the API client and the wait loop.

* ``should_retry_status`` / ``should_retry_error`` say whether a failure may be retried,
  and for submits (not idempotent: a retry could create a second paid task) only when the
  service certainly created nothing: a 429 answer, or a connection that was never made.
* ``retry_delay`` is exponential backoff with full jitter, capped, honouring Retry-After
  up to ``RETRY_AFTER_MAX``.
* ``wait_to_retry`` is the one way to sleep before a retry (the API client and downloads
  both use it): a wait of ``NOTICE_AFTER`` seconds or more is said in one line
  ("throttled by the service; retrying in 40 s"), and a wait that would end after the
  command's ``--timeout`` is not started: the deadline error is raised at once instead.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Protocol

from wanvid.errors import DeadlineExceeded

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BASE_DELAY = 1.0
MAX_DELAY = 30.0
RETRY_AFTER_MAX = 60.0  # a Retry-After beyond this is clamped (a day-long sleep helps no one)
NOTICE_AFTER = 5.0  # seconds: a wait before a retry at least this long is said on stderr


def should_retry_status(status: int, *, idempotent: bool) -> bool:
    """429 is always safe to retry (the request was refused); 5xx only if idempotent."""
    if status == 429:
        return True
    return idempotent and status in RETRY_STATUSES


def should_retry_error(exc: BaseException, *, idempotent: bool) -> bool:
    """A transport error. Non-idempotent requests only when the connection never opened."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True  # never connected: nothing was sent
    if isinstance(exc, requests.exceptions.ConnectionError):
        if connection_refused(exc):
            return True
        return idempotent
    if isinstance(exc, (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError)):
        return idempotent
    return False


def connection_refused(exc: BaseException) -> bool:
    """True when the error chain shows the TCP connection was never established."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError):
            return True
        name = type(cur).__name__
        if name in ("NewConnectionError", "NameResolutionError"):
            return True
        for arg in getattr(cur, "args", ()):
            if isinstance(arg, BaseException):
                if isinstance(arg, ConnectionRefusedError) or type(arg).__name__ in (
                    "NewConnectionError", "NameResolutionError"
                ):
                    return True
                reason = getattr(arg, "reason", None)
                if isinstance(reason, BaseException) and type(reason).__name__ in (
                    "NewConnectionError", "NameResolutionError"
                ):
                    return True
        cur = cur.__cause__ or cur.__context__
    return False


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if dt is None:
        return None
    import time

    return max(0.0, dt.timestamp() - (now if now is not None else time.time()))


def retry_delay(attempt: int, retry_after: str | None = None, *, base: float = BASE_DELAY,
                cap: float = MAX_DELAY, rand: Callable[[], float] = random.random,
                now: float | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based).

    Exponential (base * 2**(attempt-1)) with jitter between half and the full value,
    capped at ``cap``; a Retry-After header, when present, is a floor, itself clamped to
    ``RETRY_AFTER_MAX`` (``Retry-After: 999999`` means a minute, not eleven days). ``now``
    (epoch seconds, the caller's clock) is what an HTTP-date Retry-After is measured from.
    """
    exp = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = exp * (0.5 + 0.5 * rand())
    ra = parse_retry_after(retry_after, now)
    if ra is not None:  # honoured as a floor, within reason
        delay = max(delay, min(ra, RETRY_AFTER_MAX))
    return delay


class _Deadline(Protocol):
    def remaining(self) -> float | None: ...

    def message(self, what: str) -> str: ...


def wait_to_retry(delay: float, *, deadline: _Deadline | None, sleep: Callable[[float], None],
                  notify: Callable[[str], None] | None, throttled: bool,
                  who: str = "the service", after: str = "") -> None:
    """Sleep ``delay`` seconds before a retry. Longer than ``NOTICE_AFTER``: said through
    ``notify`` first. Ending after the deadline: not slept at all, ``DeadlineExceeded``
    (exit 6) instead, naming the wait (``after`` is added to its message, e.g. "; nothing
    was sent")."""
    why = f"throttled by {who}" if throttled else f"{who} kept failing"
    rem = deadline.remaining() if deadline is not None else None
    if rem is not None and delay > rem:
        assert deadline is not None
        raise DeadlineExceeded(deadline.message(
            f"({why}; the next try would be in {delay:.0f} s){after}"))
    if delay >= NOTICE_AFTER and notify is not None:
        shown = f"throttled by {who}" if throttled else f"{who} is failing"
        notify(f"{shown}; retrying in {delay:.0f} s")
    sleep(delay)
