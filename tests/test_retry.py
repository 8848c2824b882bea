"""Retry policy: which failures may be retried, and how long to wait."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ProtocolError

from wanvid.retry import (
    BASE_DELAY,
    MAX_DELAY,
    RETRY_AFTER_MAX,
    connection_refused,
    parse_retry_after,
    retry_delay,
    should_retry_error,
    should_retry_status,
)


def refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens on the port."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] "  # type: ignore[arg-type]
                                "Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/api/v1/x", reason=reason))  # type: ignore[arg-type]


def dns_failure() -> requests.exceptions.ConnectionError:
    reason = NameResolutionError("dashscope-intl.aliyuncs.com", None,  # type: ignore[arg-type]
                                 OSError("Name or service not known"))
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/api/v1/x", reason=reason))  # type: ignore[arg-type]


def refused_by_cause() -> requests.exceptions.ConnectionError:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as inner:
            raise requests.exceptions.ConnectionError("connect failed") from inner
    except requests.exceptions.ConnectionError as e:
        return e


def reset() -> requests.exceptions.ConnectionError:
    """The connection was made and then dropped: the request may have arrived."""
    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer")))


# --- should_retry_status ------------------------------------------------------------------------


@pytest.mark.parametrize("idempotent", [True, False])
def test_429_always_retried(idempotent: bool) -> None:
    assert should_retry_status(429, idempotent=idempotent) is True


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_retried_only_when_idempotent(status: int) -> None:
    assert should_retry_status(status, idempotent=True) is True
    assert should_retry_status(status, idempotent=False) is False


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 409, 501])
@pytest.mark.parametrize("idempotent", [True, False])
def test_other_statuses_not_retried(status: int, idempotent: bool) -> None:
    assert should_retry_status(status, idempotent=idempotent) is False


# --- should_retry_error -------------------------------------------------------------------------


@pytest.mark.parametrize("make", [refused, dns_failure, refused_by_cause,
                                  lambda: requests.exceptions.ConnectTimeout("connect timed out")],
                         ids=["refused", "dns", "refused-cause", "connect-timeout"])
@pytest.mark.parametrize("idempotent", [True, False])
def test_never_connected_is_retried_even_for_submit(make: object, idempotent: bool) -> None:
    exc = make()  # type: ignore[operator]
    assert should_retry_error(exc, idempotent=idempotent) is True


@pytest.mark.parametrize("make", [
    lambda: requests.exceptions.ReadTimeout("read timed out"),
    reset,
    lambda: requests.exceptions.ChunkedEncodingError("truncated"),
], ids=["read-timeout", "reset", "chunked"])
def test_maybe_delivered_not_retried_for_submit_but_for_queries(make: object) -> None:
    exc = make()  # type: ignore[operator]
    assert should_retry_error(exc, idempotent=False) is False
    assert should_retry_error(exc, idempotent=True) is True


@pytest.mark.parametrize("exc", [
    requests.exceptions.InvalidURL("bad"),
    requests.exceptions.TooManyRedirects("loop"),
    ValueError("not a transport error"),
], ids=["invalid-url", "redirects", "value-error"])
@pytest.mark.parametrize("idempotent", [True, False])
def test_other_errors_not_retried(exc: BaseException, idempotent: bool) -> None:
    assert should_retry_error(exc, idempotent=idempotent) is False


def test_connection_refused_detection() -> None:
    assert connection_refused(refused()) is True
    assert connection_refused(refused_by_cause()) is True
    assert connection_refused(ConnectionRefusedError()) is True
    assert connection_refused(reset()) is False
    assert connection_refused(requests.exceptions.ReadTimeout()) is False


# --- retry_delay --------------------------------------------------------------------------------


def test_defaults() -> None:
    assert BASE_DELAY == 1.0
    assert MAX_DELAY == 30.0


@pytest.mark.parametrize(("attempt", "full"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0)])
def test_exponential_growth(attempt: int, full: float) -> None:
    assert retry_delay(attempt, rand=lambda: 0.0) == full / 2
    assert retry_delay(attempt, rand=lambda: 1.0) == full


@pytest.mark.parametrize("attempt", [6, 7, 10, 50])
def test_capped(attempt: int) -> None:
    assert retry_delay(attempt, rand=lambda: 1.0) == MAX_DELAY
    assert retry_delay(attempt, rand=lambda: 0.0) == MAX_DELAY / 2


def test_custom_base_and_cap() -> None:
    assert retry_delay(3, base=0.5, cap=100.0, rand=lambda: 1.0) == 2.0
    assert retry_delay(9, base=0.5, cap=3.0, rand=lambda: 1.0) == 3.0


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6, 12])
def test_jitter_bounds(attempt: int) -> None:
    full = min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1))
    rng = random.Random(attempt)
    delays = [retry_delay(attempt, rand=rng.random) for _ in range(500)]
    assert all(full / 2 <= d <= full for d in delays)
    assert len(set(delays)) > 400  # really jittered, not a constant
    assert min(delays) < full * 0.55 and max(delays) > full * 0.95  # spans the range


def test_default_rand_stays_in_bounds() -> None:
    for _ in range(200):
        assert 2.0 <= retry_delay(3) <= 4.0


def test_retry_after_seconds_is_a_floor() -> None:
    assert retry_delay(1, "7", rand=lambda: 0.0) == 7.0
    assert retry_delay(1, " 2.5 ", rand=lambda: 0.0) == 2.5
    # Shorter than the backoff: the backoff stands.
    assert retry_delay(4, "1", rand=lambda: 0.0) == 4.0
    # Longer than the backoff's cap: the server's word wins over that cap...
    assert retry_delay(1, "50", rand=lambda: 0.0) == 50.0
    # ...up to RETRY_AFTER_MAX: a day-long Retry-After means a minute.
    assert retry_delay(1, "120", rand=lambda: 0.0) == RETRY_AFTER_MAX == 60.0
    assert retry_delay(1, "999999", rand=lambda: 0.0) == RETRY_AFTER_MAX


def test_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    assert retry_delay(1, formatdate(now + 20, usegmt=True), rand=lambda: 0.0, now=now) == 20.0
    # A date in the past means "now": the backoff stands.
    assert retry_delay(2, formatdate(now - 60, usegmt=True), rand=lambda: 0.0, now=now) == 1.0


def test_unparseable_retry_after_ignored() -> None:
    assert retry_delay(2, "soon", rand=lambda: 0.0) == 1.0
    assert retry_delay(2, "", rand=lambda: 0.0) == 1.0
    assert retry_delay(2, None, rand=lambda: 0.0) == 1.0


@pytest.mark.parametrize(("value", "want"), [
    ("0", 0.0), ("5", 5.0), ("1.5", 1.5), ("  3 ", 3.0), ("-5", 0.0),
    (None, None), ("", None), ("later", None),
])
def test_parse_retry_after_seconds(value: str | None, want: float | None) -> None:
    assert parse_retry_after(value) == want


def test_parse_retry_after_date() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now=now) == 90.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


# --- wait_to_retry: the one way to sleep before a retry -----------------------------------


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def test_a_long_wait_is_said_a_short_one_is_not() -> None:
    from wanvid.net import Deadline
    from wanvid.retry import NOTICE_AFTER, wait_to_retry

    clock, said = _Clock(), []
    dl = Deadline(None, clock=clock)
    wait_to_retry(2.0, deadline=dl, sleep=clock.sleep, notify=said.append, throttled=True)
    assert said == [] and clock.slept == [2.0]
    wait_to_retry(40.0, deadline=dl, sleep=clock.sleep, notify=said.append, throttled=True)
    assert said == ["throttled by the service; retrying in 40 s"]
    wait_to_retry(NOTICE_AFTER, deadline=dl, sleep=clock.sleep, notify=said.append,
                  throttled=False, who="the storage host x")
    assert said[-1] == "the storage host x is failing; retrying in 5 s"


def test_a_wait_past_the_deadline_is_not_started() -> None:
    from wanvid.errors import DeadlineExceeded
    from wanvid.net import Deadline
    from wanvid.retry import wait_to_retry

    clock, said = _Clock(), []
    dl = Deadline(15, clock=clock)
    clock.t = 10.0
    with pytest.raises(DeadlineExceeded) as ei:
        wait_to_retry(RETRY_AFTER_MAX, deadline=dl, sleep=clock.sleep, notify=said.append,
                      throttled=True, after="; no task was created")
    assert clock.slept == [] and said == []  # not a second of sleeping past --timeout
    assert ei.value.status == 6
    assert ei.value.message == ("--timeout 15 s reached (throttled by the service; the next "
                                "try would be in 60 s); no task was created")
    wait_to_retry(5.0, deadline=dl, sleep=clock.sleep, notify=None, throttled=True)
    assert clock.slept == [5.0]  # one that fits is slept

