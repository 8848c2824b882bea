"""Retry policy as small pure functions, used by the API client and the wait loop.

* ``should_retry_status`` / ``should_retry_error`` say whether a failure may be retried,
  and for submits (not idempotent: a retry could create a second paid task) only when the
  service certainly created nothing: a 429 answer, or a connection that was never made.
* ``retry_delay`` is exponential backoff with full jitter, capped, honouring Retry-After.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BASE_DELAY = 1.0
MAX_DELAY = 30.0
RETRY_AFTER_MAX = 300.0  # a Retry-After beyond this is clamped (a day-long sleep helps no one)


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
                cap: float = MAX_DELAY, rand: Callable[[], float] = random.random) -> float:
    """Delay before retry number ``attempt`` (1-based).

    Exponential (base * 2**(attempt-1)) with jitter between half and the full value,
    capped at ``cap``; a Retry-After header, when present, is a floor.
    """
    exp = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = exp * (0.5 + 0.5 * rand())
    ra = parse_retry_after(retry_after)
    if ra is not None:  # honoured as a floor, within reason
        delay = max(delay, min(ra, RETRY_AFTER_MAX))
    return delay
