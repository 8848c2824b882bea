"""Nothing a server does holds wanvid for ever or fills its memory or the disk: connect and
read timeouts, a per-request limit, the command's deadline cutting a request in progress,
a size cap on JSON answers and on videos, a minimum transfer rate, and Retry-After honoured
only up to a cap and only within --timeout.

The hostile servers are real sockets on loopback (``tests.standin``), with short limits
injected so each test takes well under a few seconds; whether a request was cut is told by
the exception it ends with, never by timing it."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import responses
import urllib3

from tests import standin
from tests.conftest import KEY, FakeClock, Result
from wanvid.client import Client
from wanvid.crc64 import crc64
from wanvid.download import Limits, download
from wanvid.errors import DeadlineExceeded, NetworkError, TooLarge
from wanvid.net import Deadline

Run = Callable[..., Result]

VIDEO = standin.MP4_HEAD + bytes(4000)
# Short limits: a stall is "under 1000 bytes/s over 0.3 s"; no stall limit is hit by the
# deadline tests (window of 60 s).
STALL = Limits(connect=2.0, read=5.0, min_rate=1000.0, window=0.3, stalls=2)
NO_STALL = Limits(connect=2.0, read=5.0, min_rate=1.0, window=60.0)


@pytest.fixture
def server() -> Iterator[Callable[[standin.Answer], standin.StandIn]]:
    started: list[standin.StandIn] = []

    def start(answer: standin.Answer) -> standin.StandIn:
        s = standin.StandIn(answer)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


def no_sleep(seconds: float) -> None:
    pass


# --- downloads ----------------------------------------------------------------------------


def test_trickling_download_is_resumed_on_new_connections_then_fails_clearly(
        server: Callable[..., standin.StandIn], tmp_path: Path) -> None:
    srv = server(standin.trickle(VIDEO, 0.02, content_type="video/mp4",  # ~50 bytes/s
                                 x_oss_hash_crc64ecma=str(crc64(VIDEO))))
    dest = tmp_path / "v.mp4"
    with pytest.raises(NetworkError) as ei:
        download(srv.url + "/v.mp4", dest, limits=STALL, sleep=no_sleep)
    msg = ei.value.message
    assert "stalled" in msg and "under the 1000 bytes/s minimum" in msg, msg
    assert "on 3 connections" in msg and ".part" in msg
    assert len(srv.requests) == STALL.stalls + 1  # replaced twice, then given up
    assert "range" in srv.requests[1].headers  # a resume, not a start from zero
    assert not dest.exists()
    assert dest.with_name("v.mp4.part").stat().st_size > 0  # kept for the next attempt


def test_deadline_cuts_a_download_that_sends_nothing(
        server: Callable[..., standin.StandIn], tmp_path: Path) -> None:
    # Headers, then silence: only the deadline (the watchdog) can end this read, since
    # the read timeout (5 s) is longer than the deadline and the server keeps it open.
    srv = server(standin.silent(Content_Type="video/mp4", Content_Length="4016"))
    dest = tmp_path / "v.mp4"
    with pytest.raises(DeadlineExceeded) as ei:
        download(srv.url + "/v.mp4", dest, limits=NO_STALL, sleep=no_sleep,
                 deadline=Deadline(0.4))
    assert ei.value.status == 6
    assert ei.value.message.startswith("--timeout 0.4 s reached while downloading v.mp4")
    assert len(srv.requests) == 1  # not resumed after the deadline
    assert not dest.exists()


def test_deadline_cuts_a_trickling_download_between_bytes(
        server: Callable[..., standin.StandIn], tmp_path: Path) -> None:
    srv = server(standin.trickle(VIDEO, 0.05, content_type="video/mp4",
                                 x_oss_hash_crc64ecma=str(crc64(VIDEO))))
    dest = tmp_path / "v.mp4"
    with pytest.raises(DeadlineExceeded) as ei:
        download(srv.url + "/v.mp4", dest, limits=NO_STALL, sleep=no_sleep,
                 deadline=Deadline(0.5))
    assert "bytes are kept in" in ei.value.message
    assert len(srv.requests) == 1
    assert 0 < dest.with_name("v.mp4.part").stat().st_size < len(VIDEO)


# Headers one byte every 0.05 s (~120 bytes: 6 s in all), or 100 Continue for ever: every
# read brings something, so only a bound on the time to the headers ends the wait.
HEADERS_STALL = Limits(connect=2.0, read=5.0, min_rate=1.0, window=60.0, stalls=2,
                       headers=0.3)


@pytest.mark.parametrize("answer", [standin.slow_headers(VIDEO, 0.05),
                                    standin.endless_continues(0.05)],
                         ids=["slow-headers", "endless-100-continue"])
def test_slow_headers_without_a_deadline_are_a_stall_replaced_then_reported(
        server: Callable[..., standin.StandIn], tmp_path: Path,
        answer: standin.Answer) -> None:
    srv = server(answer)
    dest = tmp_path / "v.mp4"
    with pytest.raises(NetworkError) as ei:  # no deadline at all: the limits alone end it
        download(srv.url + "/v.mp4", dest, limits=HEADERS_STALL, sleep=no_sleep)
    msg = ei.value.message
    assert ei.value.status == 7
    assert ("stalled (no response headers from 127.0.0.1 within 0.3 s) on 3 connections; "
            "no byte of the video had arrived yet") in msg, msg
    assert len(srv.requests) == HEADERS_STALL.stalls + 1  # a new connection each time
    assert not dest.exists() and not dest.with_name("v.mp4.part").exists()


def test_headers_bound_defaults_to_connect_plus_read() -> None:
    assert Limits().headers_limit() == 40.0
    assert Limits(connect=1.0, read=2.0).headers_limit() == 3.0
    assert Limits(headers=0.5).headers_limit() == 0.5


def test_slow_headers_then_a_good_answer_resume_on_a_new_connection(
        server: Callable[..., standin.StandIn], tmp_path: Path) -> None:
    slow = standin.slow_headers(VIDEO, 0.05)

    def answer(req: standin.Request) -> list[bytes | float]:
        if req.number == 1:
            return list(slow(req))  # all of it, slowly: only the headers bound cuts it
        return [standin.head(Content_Type="video/mp4", Content_Length=str(len(VIDEO))), VIDEO]

    srv = server(answer)
    dest = tmp_path / "v.mp4"
    res = download(srv.url + "/v.mp4", dest, limits=HEADERS_STALL, sleep=no_sleep)
    assert dest.read_bytes() == VIDEO and res.size == len(VIDEO)
    assert len(srv.requests) == 2


def test_deadline_ends_slow_headers_before_the_headers_bound(
        server: Callable[..., standin.StandIn], tmp_path: Path) -> None:
    srv = server(standin.slow_headers(VIDEO, 0.05))
    dest = tmp_path / "v.mp4"
    with pytest.raises(DeadlineExceeded) as ei:  # the 40 s default bound is not waited for
        download(srv.url + "/v.mp4", dest, sleep=no_sleep, deadline=Deadline(0.4))
    assert ei.value.message == ("--timeout 0.4 s reached while downloading v.mp4; no byte "
                                "of the video had arrived yet")
    assert len(srv.requests) == 1


def test_adopting_an_existing_file_gives_up_on_slow_headers(
        server: Callable[..., standin.StandIn], tmp_path: Path) -> None:
    from wanvid.download import same_as_remote

    srv = server(standin.slow_headers(VIDEO, 0.05))
    mine = tmp_path / "v.mp4"
    mine.write_bytes(VIDEO)
    assert same_as_remote(srv.url + "/v.mp4", mine, limits=HEADERS_STALL) is None


def test_read_timeout_counts_as_a_cut(server: Callable[..., standin.StandIn],
                                      tmp_path: Path) -> None:
    srv = server(standin.silent(Content_Type="video/mp4", Content_Length="4016"))
    with pytest.raises(NetworkError) as ei:
        download(srv.url + "/v.mp4", tmp_path / "v.mp4", max_resumes=1, sleep=no_sleep,
                 limits=Limits(connect=2.0, read=0.2, window=60.0))
    assert "kept failing" in ei.value.message and "after 1 resumes" in ei.value.message
    assert len(srv.requests) == 2


def test_endless_download_without_length_is_capped_and_nothing_kept(
        server: Callable[..., standin.StandIn], tmp_path: Path) -> None:
    srv = server(standin.endless_video())
    dest = tmp_path / "v.mp4"
    with pytest.raises(TooLarge) as ei:
        download(srv.url + "/v.mp4", dest, limits=Limits(max_size=3 << 20), sleep=no_sleep)
    assert ei.value.status == 7
    assert "sent more than 3.0 MiB without announcing a size" in ei.value.message
    assert "max_download_mb" in ei.value.message
    assert not dest.exists() and not dest.with_name("v.mp4.part").exists()
    assert srv.sent < 32 << 20  # stopped near the cap (plus socket buffers), not after 30 s


def test_announced_size_beyond_the_cap_is_refused_before_reading(
        server: Callable[..., standin.StandIn], tmp_path: Path) -> None:
    srv = server(standin.silent(Content_Type="video/mp4", Content_Length=str(5 << 30)))
    dest = tmp_path / "v.mp4"
    with pytest.raises(TooLarge) as ei:
        download(srv.url + "/v.mp4", dest, limits=Limits(max_size=2 << 30), sleep=no_sleep)
    assert "announced a video of 5.0 GiB, more than the 2.0 GiB" in ei.value.message
    assert not dest.with_name("v.mp4.part").exists()


@responses.activate
def test_download_retry_after_is_capped_said_and_kept_within_the_deadline(
        tmp_path: Path) -> None:
    url = "https://oss.example.com/v.mp4"
    responses.add(responses.GET, url, status=503, headers={"Retry-After": "999999"})
    clock = FakeClock()
    said: list[str] = []
    with pytest.raises(DeadlineExceeded) as ei:
        download(url, tmp_path / "v.mp4", sleep=clock.sleep, notify=said.append,
                 deadline=Deadline(100, clock=clock.now))
    # capped at 60 s: slept once (said on stderr), the second 60 s would pass the deadline
    assert clock.sleeps == [60.0]
    assert said == ["the storage host oss.example.com is failing; retrying in 60 s"]
    assert "the next try would be in 60 s" in ei.value.message


# --- API requests -------------------------------------------------------------------------


def test_trickling_api_answer_is_cut_by_the_per_request_limit(
        server: Callable[..., standin.StandIn]) -> None:
    srv = server(standin.trickle(b'{"output": {"task_status": "RUNNING"}}', 0.05))
    client = Client(srv.url + "/api/v1", KEY, request_max=0.4, max_retries=1,
                    sleep=no_sleep)
    with pytest.raises(NetworkError) as ei:
        client.get_task("t-1")
    assert ei.value.message.endswith("timed out")
    assert len(srv.requests) == 2  # retried once (a query is idempotent), then given up


@pytest.mark.parametrize("answer", [
    standin.slow_headers(b'{"output": {"task_status": "RUNNING"}}', 0.05,
                         content_type="application/json"),
    standin.endless_continues(0.05)], ids=["slow-headers", "endless-100-continue"])
def test_api_answer_with_slow_headers_is_cut_by_the_per_request_limit(
        server: Callable[..., standin.StandIn], answer: standin.Answer) -> None:
    srv = server(answer)
    client = Client(srv.url + "/api/v1", KEY, request_max=0.4, max_retries=1,
                    sleep=no_sleep)
    with pytest.raises(NetworkError) as ei:
        client.get_task("t-1")
    assert ei.value.message.endswith("timed out")
    assert len(srv.requests) == 2


def test_deadline_cuts_an_api_request_in_progress(
        server: Callable[..., standin.StandIn]) -> None:
    srv = server(standin.trickle(b'{"output": {"task_status": "RUNNING"}}', 0.05))
    client = Client(srv.url + "/api/v1", KEY, deadline=Deadline(0.4), sleep=no_sleep)
    with pytest.raises(DeadlineExceeded) as ei:
        client.get_task("t-1")
    assert ei.value.message == "--timeout 0.4 s reached during GET /tasks/t-1"
    assert len(srv.requests) == 1


def test_an_api_answer_announced_beyond_the_cap_is_refused_in_plain_words(
        server: Callable[..., standin.StandIn]) -> None:
    def announced(req: standin.Request) -> Iterator[bytes | float]:
        yield standin.head(Content_Type="application/json", Content_Length=str(5 << 20))
        yield b"{"

    srv = server(announced)
    client = Client(srv.url + "/api/v1", KEY, sleep=no_sleep)
    with pytest.raises(TooLarge) as ei:
        client.get_task("t-1")
    assert "announced an answer of 5242880 bytes; wanvid reads at most 4 MiB" in ei.value.message
    assert len(srv.requests) == 1


def test_endless_chunked_status_answer_is_refused_in_bounded_memory(
        server: Callable[..., standin.StandIn]) -> None:
    srv = server(standin.endless_chunked_json())
    client = Client(srv.url + "/api/v1", KEY, sleep=no_sleep)
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge) as ei:
            client.get_task("t-1")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "sent an answer longer than 4 MiB" in ei.value.message
    assert peak < 16 << 20, peak
    assert len(srv.requests) == 1  # a too-large answer is not retried


# --- Retry-After 999999 through the CLI (fake clock) ---------------------------------------

INTL = "https://dashscope-intl.aliyuncs.com/api/v1"
I2V_URL = INTL + "/services/aigc/video-generation/video-synthesis"
THROTTLE = {"code": "Throttling.RateQuota", "message": "Requests rate limit exceeded"}


@responses.activate
def test_huge_retry_after_on_submit_stays_within_timeout_and_is_said(
        run: Run, clock: FakeClock) -> None:
    responses.add(responses.POST, I2V_URL, status=429, json=THROTTLE,
                  headers={"Retry-After": "999999"})
    r = run(["generate", "https://example.com/cat.png", "-p", "x", "--timeout", "150"])
    assert r.code == 6, r.err
    assert clock.sleeps == [60.0, 60.0]  # capped; the third would end after --timeout
    assert r.err.count("wanvid: throttled by the service; retrying in 60 s\n") == 2
    assert ("--timeout 150 s reached (throttled by the service; the next try would be in "
            "60 s); no task was created") in r.err
    assert r.out == ""
    assert len(responses.calls) == 3


@responses.activate
def test_huge_retry_after_without_timeout_is_capped(run: Run, clock: FakeClock) -> None:
    responses.add(responses.POST, I2V_URL, status=429, json=THROTTLE,
                  headers={"Retry-After": "999999"})
    r = run(["submit", "https://example.com/cat.png", "-p", "x"])
    assert r.code == 7, r.err
    assert clock.sleeps == [60.0] * 4  # minutes, not 11 days nor 20 silent minutes
    assert r.err.count("retrying in 60 s") == 4


@responses.activate
def test_download_timeout_covers_the_status_query(run: Run, clock: FakeClock,
                                                  tmp_path: Path) -> None:
    tid = "0385dc79-5ff8-4d82-bcb6-0123456789ab"
    responses.add(responses.GET, f"{INTL}/tasks/{tid}", status=429, json=THROTTLE,
                  headers={"Retry-After": "60"})
    r = run(["download", tid, "-o", str(tmp_path / "v.mp4"), "--timeout", "100"])
    assert r.code == 6, r.err
    assert clock.sleeps == [60.0]  # the second retry would end after --timeout
    assert "--timeout 100 s reached" in r.err and r.err.count("\n") <= 3, r.err
    assert len(responses.calls) == 2
    assert not (tmp_path / "v.mp4").exists() and r.out == ""


# --- a trickling API answer cut by the watchdog is a timeout (review 2026-12-03, finding 9) ---

RUNNING = b'{"output": {"task_status": "RUNNING"}}'


def test_trickling_api_answer_without_a_length_cut_by_the_deadline_is_a_timeout(
        server: Callable[..., standin.StandIn]) -> None:
    """A body that ends with its connection: the watchdog's shutdown ends it like a clean
    end would. Its first bytes are not "an answer that is not JSON" (exit 7) but the
    deadline (exit 6)."""
    srv = server(standin.trickle(RUNNING, 0.05, length=False))
    client = Client(srv.url + "/api/v1", KEY, deadline=Deadline(0.4), sleep=no_sleep)
    with pytest.raises(DeadlineExceeded) as ei:
        client.get_task("t-1")
    assert ei.value.message == "--timeout 0.4 s reached during GET /tasks/t-1"
    assert len(srv.requests) == 1


def test_trickling_api_answer_without_a_length_is_cut_by_the_per_request_limit(
        server: Callable[..., standin.StandIn]) -> None:
    srv = server(standin.trickle(RUNNING, 0.05, length=False))
    client = Client(srv.url + "/api/v1", KEY, request_max=0.4, max_retries=1,
                    sleep=no_sleep)
    with pytest.raises(NetworkError) as ei:
        client.get_task("t-1")
    assert ei.value.message.endswith("timed out")
    assert len(srv.requests) == 2  # a read timeout: retried once, then given up


def test_a_complete_answer_is_kept_even_if_the_watchdog_fires_after_it() -> None:
    """Only a body cut short is a timeout: one whose Content-Length was all read is kept."""
    from wanvid.net import _local, _Watch, read_capped

    resp = requests.Response()
    resp.headers["Content-Length"] = str(len(RUNNING))
    resp.raw = urllib3.response.HTTPResponse(body=io.BytesIO(RUNNING), preload_content=False)
    resp.url = "http://x/"
    watch = _Watch()
    watch.fired = True
    _local.watch = watch
    try:
        assert read_capped(resp) == RUNNING
        short = requests.Response()
        short.raw = urllib3.response.HTTPResponse(body=io.BytesIO(RUNNING[:5]),
                                                  preload_content=False)
        short.url = "http://x/"
        with pytest.raises(requests.exceptions.ReadTimeout):
            read_capped(short)
    finally:
        _local.watch = None


TID = "0385dc79-5ff8-4d82-bcb6-0123456789ab"


@pytest.mark.parametrize("args", [
    ["status", TID, "--timeout", "1"],
    ["status", TID, "--timeout", "1", "--json"],
    ["download", TID, "-o", "{tmp}/v.mp4", "--timeout", "1", "--json"],
    ["generate", "https://example.com/cat.png", "-p", "x", "--timeout", "1", "--json"],
    ["wait", TID, "--timeout", "1", "--json"],
], ids=["status", "status-json", "download", "generate", "wait"])
def test_a_trickling_api_host_ends_each_command_at_its_timeout_with_exit_6(
        args: list[str], server: Callable[..., standin.StandIn], tmp_path: Path) -> None:
    """The API host sends its answer a byte at a time and never finishes (no length, so
    only the connection's end would end it): every command ends at --timeout with exit 6
    and says so, never "not JSON" (exit 7)."""
    from wanvid.cli import main
    from wanvid.context import Environment

    srv = server(standin.trickle(RUNNING * 100, 0.05, length=False))
    environ = dict(os.environ, DASHSCOPE_API_KEY=KEY, WANVID_STATE_DIR=str(tmp_path / "s"),
                   DASHSCOPE_HTTP_BASE_URL=srv.url + "/api/v1")
    out, err = io.StringIO(), io.StringIO()
    env = Environment(environ=environ, stdin=io.StringIO(""), stdout=out, stderr=err,
                      stdin_isatty=False, stderr_isatty=False, cwd=tmp_path)
    code = main([a.replace("{tmp}", str(tmp_path)) for a in args], env=env)
    assert code == 6, err.getvalue()
    assert "not JSON" not in out.getvalue() + err.getvalue()
    assert "--timeout 1 s reached" in err.getvalue() or "timed out" in err.getvalue()
    if "--json" in args:
        last = json.loads(out.getvalue().splitlines()[-1])
        assert last["exit_code"] == 6 and last["errors"][0]["code"] == "timeout"


def test_status_gives_each_task_its_own_bound_without_timeout(
        run: Run, clock: FakeClock) -> None:
    """Without --timeout a status query, retries included, has 90 s of its own (one capped
    Retry-After and the try after it): a host that keeps throttling no longer holds it for
    4 minutes (then exit 7); each task gets its own 90 s, so a slow first one does not
    starve the next."""
    with responses.RequestsMock() as rsps:
        for tid in ("t-1", "t-2"):
            rsps.add(responses.GET, f"{INTL}/tasks/{tid}", status=429, json=THROTTLE,
                     headers={"Retry-After": "60"})
            rsps.add(responses.GET, f"{INTL}/tasks/{tid}",
                     json={"output": {"task_id": tid, "task_status": "RUNNING"}})
        r = run(["status", "t-1", "t-2"])
    assert r.code == 0, r.err
    assert clock.sleeps == [60.0, 60.0]  # 120 s in all: each task within its own 90 s

    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{INTL}/tasks/t-1", status=429, json=THROTTLE,
                 headers={"Retry-After": "999999"})
        r = run(["status", "t-1"])
        assert len(rsps.calls) == 2
    assert r.code == 6, r.err
    assert clock.sleeps[2:] == [60.0]  # then the next try would be past the bound
    assert ("status's own 90 s bound per task (--timeout sets another) reached (throttled "
            "by the service; the next try would be in 60 s)") in r.err, r.err
    assert r.err.count("wanvid: error:") == 1


def test_status_timeout_bounds_the_whole_command(run: Run, clock: FakeClock) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{INTL}/tasks/t-1", status=429, json=THROTTLE,
                 headers={"Retry-After": "30"})
        r = run(["status", "t-1", "--timeout", "50"])
    assert r.code == 6, r.err
    assert clock.sleeps == [30.0]
    assert "--timeout 50 s reached" in r.err and r.out == ""
