"""The polling loop, on a fake clock with a fake service: no sleeping, no network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock
from wanvid.errors import AuthError, ExitStatus, NetworkError, URLExpiredError
from wanvid.poll import (
    MAX_INTERVAL,
    Outcome,
    RateLimiter,
    Waiter,
    WaitOptions,
    next_interval,
    overall_exit,
)
from wanvid.progress import QuietReporter


def sdk_queries(duration: float) -> int:
    """Queries the official SDK's wait() makes for a task of this length: it sleeps 1 s,
    adding 1 s every 3 queries up to 5 s (dashscope's default wait loop)."""
    t, n, wait = 0.0, 0, 1
    while True:
        n += 1
        if t >= duration:
            return n
        t += wait
        if n % 3 == 0:
            wait = min(5, wait + 1)


class FakeService:
    """Answers get_task from a per-task timeline: [(seconds_from_start, status), ...]."""

    def __init__(self, clock: FakeClock, timelines: dict[str, list[tuple[float, str]]],
                 faults: dict[int, Exception] | None = None) -> None:
        self.clock = clock
        self.start = clock.now()
        self.timelines = timelines
        self.faults = faults or {}
        self.calls: list[tuple[float, str]] = []

    def get_task(self, task_id: str, *, max_retries: int | None = None) -> dict[str, Any]:
        self.calls.append((self.clock.now(), task_id))
        n = len(self.calls)
        if n in self.faults:
            raise self.faults[n]
        t = self.clock.now() - self.start
        status = "UNKNOWN"
        for at, st in self.timelines.get(task_id, []):
            if t >= at:
                status = st
        out: dict[str, Any] = {"task_id": task_id, "task_status": status}
        if status == "SUCCEEDED":
            out["video_url"] = f"https://oss.example/{task_id}.mp4?Expires=9999999999"
        if status == "FAILED":
            out["code"], out["message"] = "InternalError.Algo", "algorithm failed"
        return {"request_id": "r", "output": out}


@dataclass
class FakeResult:
    path: Path
    size: int = 10
    sha256: str = "abc"
    skipped: bool = False


class FakeJournal:
    def __init__(self) -> None:
        self.statuses: dict[str, list[str]] = {}
        self.downloads: dict[str, str] = {}

    def get(self, task_id: str) -> None:
        return None

    def update_status(self, task_id: str, status: str, **kw: Any) -> None:
        self.statuses.setdefault(task_id, []).append(status)

    def record_download(self, task_id: str, *, path: str, size: int, sha256: str) -> None:
        self.downloads[task_id] = path


def make_waiter(clock: FakeClock, service: FakeService, tmp_path: Path, *,
                downloader: Any = None, **opts: Any) -> tuple[Waiter, FakeJournal, list[str]]:
    journal = FakeJournal()
    fetched: list[str] = []

    def fake_download(url: str, dest: Path, **kw: Any) -> FakeResult:
        fetched.append(url)
        return FakeResult(dest)

    w = Waiter(client=service, journal=journal, reporter=QuietReporter(),
               options=WaitOptions(**opts), dest_for=lambda tid, out: tmp_path / f"{tid}.mp4",
               clock=clock.now, wall=clock.now, sleep=clock.sleep,
               downloader=downloader or fake_download)
    return w, journal, fetched


@pytest.mark.parametrize("age,base,expected", [
    (0, 5, 5), (10, 5, 5), (30, 5, 6), (60, 5, 12), (75, 5, 15), (600, 5, 15),
    (0, 20, 20), (600, 20, 20), (0, 1, 1), (10, 1, 2),
])
def test_next_interval_backs_off_toward_15s_never_below_base(age: float, base: float,
                                                            expected: float) -> None:
    assert next_interval(age, base) == pytest.approx(expected)


def test_rate_limiter_spaces_calls(clock: FakeClock) -> None:
    rl = RateLimiter(5, clock.now, clock.sleep)
    times = []
    for _ in range(11):
        rl.acquire()
        times.append(clock.now())
    assert times[-1] - times[0] == pytest.approx(2.0)
    rl.penalize(10)
    before = clock.now()
    rl.acquire()
    assert clock.now() - before == pytest.approx(10)


def test_sequence_pending_running_succeeded_downloads(clock: FakeClock, tmp_path: Path) -> None:
    svc = FakeService(clock, {"t1": [(0, "PENDING"), (10, "RUNNING"), (40, "SUCCEEDED")]})
    w, journal, fetched = make_waiter(clock, svc, tmp_path)
    [out] = w.run(["t1"])
    assert out.ok and out.status == "SUCCEEDED"
    assert out.path == tmp_path / "t1.mp4"
    assert journal.statuses["t1"] == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert journal.downloads["t1"] == str(tmp_path / "t1.mp4")
    assert fetched == ["https://oss.example/t1.mp4?Expires=9999999999"]
    # noticed within one interval of completion
    assert svc.calls[-1][0] - svc.start - 40 <= MAX_INTERVAL


@pytest.mark.parametrize("duration", [30, 90, 180, 300])
def test_fewer_queries_than_sdk_and_completion_noticed_within_15s(
        clock: FakeClock, tmp_path: Path, duration: float) -> None:
    svc = FakeService(clock, {"t": [(0, "PENDING"), (5, "RUNNING"), (duration, "SUCCEEDED")]})
    w, _, _ = make_waiter(clock, svc, tmp_path)
    [out] = w.run(["t"])
    assert out.ok
    assert len(svc.calls) <= sdk_queries(duration)
    assert svc.calls[-1][0] - svc.start - duration <= MAX_INTERVAL
    gaps = [b[0] - a[0] for a, b in zip(svc.calls, svc.calls[1:], strict=False)]
    assert min(gaps) >= 5 - 1e-9  # never more often than --interval


@pytest.mark.parametrize("final,code", [("FAILED", "InternalError.Algo"), ("CANCELED", "CANCELED"),
                                        ("UNKNOWN", "UNKNOWN")])
def test_terminal_failures_exit_5_with_code(clock: FakeClock, tmp_path: Path, final: str,
                                            code: str) -> None:
    svc = FakeService(clock, {"t": [(0, "PENDING"), (20, final)]} if final != "UNKNOWN" else {})
    w, _, fetched = make_waiter(clock, svc, tmp_path)
    [out] = w.run(["t"])
    assert out.exit_status == ExitStatus.TASK_FAILED
    assert out.code == code and out.message
    assert fetched == []
    assert overall_exit([out]) == ExitStatus.TASK_FAILED


def test_timeout_gives_6_and_resume_command_while_others_finish(clock: FakeClock,
                                                               tmp_path: Path) -> None:
    svc = FakeService(clock, {"fast": [(0, "RUNNING"), (20, "SUCCEEDED")],
                              "slow": [(0, "RUNNING"), (1000, "SUCCEEDED")]})
    w, _, fetched = make_waiter(clock, svc, tmp_path, timeout=60)
    outs = {o.task_id: o for o in w.run(["fast", "slow"])}
    assert outs["fast"].ok and fetched == ["https://oss.example/fast.mp4?Expires=9999999999"]
    assert outs["slow"].exit_status == ExitStatus.TIMEOUT
    assert outs["slow"].to_dict()["resume"] == "wanvid wait slow"
    assert clock.now() - svc.start <= 60 + 1e-6
    assert overall_exit(list(outs.values())) == ExitStatus.TIMEOUT


def test_429_and_500_while_polling_are_retried_not_fatal(clock: FakeClock, tmp_path: Path) -> None:
    faults = {2: NetworkError("rate limited by the service after retries", code="Throttling"),
              3: NetworkError("service error 500 (InternalError)"),
              5: NetworkError("service error 500 (InternalError)")}
    svc = FakeService(clock, {"t": [(0, "PENDING"), (30, "SUCCEEDED")]}, faults=faults)
    w, _, _ = make_waiter(clock, svc, tmp_path)
    [out] = w.run(["t"])
    assert out.ok and out.status == "SUCCEEDED"
    assert len(svc.calls) > 5


def test_rejected_key_is_fatal(clock: FakeClock, tmp_path: Path) -> None:
    svc = FakeService(clock, {"t": [(0, "PENDING")]}, faults={1: AuthError("bad key")})
    w, _, _ = make_waiter(clock, svc, tmp_path)
    with pytest.raises(AuthError):
        w.run(["t"])


def test_200_tasks_stay_under_the_query_rate(clock: FakeClock, tmp_path: Path) -> None:
    ids = [f"t{i}" for i in range(200)]
    svc = FakeService(clock, {t: [(0, "RUNNING"), (120, "SUCCEEDED")] for t in ids})
    w, _, fetched = make_waiter(clock, svc, tmp_path, max_qps=5)
    outs = w.run(ids)
    assert all(o.ok for o in outs) and len(fetched) == 200
    times = [c[0] for c in svc.calls]
    for i in range(len(times) - 5):  # any 6 consecutive queries span at least 1 s
        assert times[i + 5] - times[i] >= 1.0 - 1e-9


def test_no_download_reports_url_only(clock: FakeClock, tmp_path: Path) -> None:
    svc = FakeService(clock, {"t": [(0, "SUCCEEDED")]})
    w, journal, fetched = make_waiter(clock, svc, tmp_path, download=False)
    [out] = w.run(["t"])
    assert out.ok and out.path is None and out.video_url and fetched == []
    assert journal.downloads == {}


def test_expired_url_is_exit_5(clock: FakeClock, tmp_path: Path) -> None:
    svc = FakeService(clock, {"t": [(0, "SUCCEEDED")]})

    def expired(url: str, dest: Path, **kw: Any) -> Any:
        raise URLExpiredError("the video URL's 24-hour window has passed")

    w, _, _ = make_waiter(clock, svc, tmp_path, downloader=expired)
    [out] = w.run(["t"])
    assert out.exit_status == ExitStatus.TASK_FAILED and "24-hour" in (out.message or "")


def test_overall_exit_priorities() -> None:
    ok = Outcome("a", "SUCCEEDED")
    assert overall_exit([ok]) == ExitStatus.OK
    assert overall_exit([ok, Outcome("b", "RUNNING", ExitStatus.TIMEOUT)]) == ExitStatus.TIMEOUT
    assert overall_exit([Outcome("b", "RUNNING", ExitStatus.TIMEOUT),
                         Outcome("c", "FAILED", ExitStatus.TASK_FAILED)]) == ExitStatus.TASK_FAILED


def test_sdk_reference_model() -> None:
    # 1,1,1,2,2,2,3,3,3,4,4,4,5,...: 30 s after 12 sleeps
    assert sdk_queries(0) == 1
    assert sdk_queries(3) == 4
    assert sdk_queries(30) == 13


def test_a_task_the_wait_gives_up_on_frees_its_slot_and_leaves_the_heartbeat(
        clock: FakeClock, tmp_path: Path) -> None:
    """A refused query (400), ten failed ones in a row (500) and a query that breaks end
    the wait of their tasks, which the loop never saw end: each goes to on_drop (its slot
    is given back: a batch's next job goes ahead), never to on_end, and the heartbeat says
    nothing more about it (it said "still QUERYING" for ever)."""
    import io

    from wanvid.context import Environment
    from wanvid.errors import RejectedError
    from wanvid.poll import MAX_QUERY_ERRORS
    from wanvid.progress import PlainReporter

    class Faulty(FakeService):
        def get_task(self, task_id: str, *, max_retries: int | None = None) -> dict[str, Any]:
            self.calls.append((self.clock.now(), task_id))
            if task_id == "refused":
                raise RejectedError("the service rejected the request (400)")
            if task_id == "broken":
                raise ValueError("a bug")
            if task_id == "flaky":
                raise NetworkError("service error 500 (InternalError)")
            return super().get_task(task_id)

    svc = Faulty(clock, {"ok": [(0, "RUNNING"), (30, "SUCCEEDED")]})
    err = io.StringIO()
    rep = PlainReporter(Environment(environ={"CI": "true"}, stderr=err), heartbeat=30,
                        clock=clock.now)
    dropped: list[str] = []
    ended: list[str] = []
    w = Waiter(client=svc, journal=FakeJournal(), reporter=rep, options=WaitOptions(),
               dest_for=lambda tid, out: tmp_path / f"{tid}.mp4", clock=clock.now,
               wall=clock.now, sleep=clock.sleep,
               downloader=lambda url, dest, **kw: FakeResult(dest),
               on_end=ended.append, on_drop=dropped.append)
    outs = {o.task_id: o for o in w.run(["refused", "flaky", "broken", "ok"])}
    assert sorted(dropped) == ["broken", "flaky", "refused"]
    assert ended == ["ok"]
    assert outs["refused"].exit_status == ExitStatus.REJECTED
    assert outs["flaky"].exit_status == ExitStatus.NETWORK
    assert sum(1 for _, t in svc.calls if t == "flaky") == MAX_QUERY_ERRORS + 1
    assert outs["ok"].ok
    for tid in ("refused", "flaky", "broken"):
        assert f"wanvid: {tid} ERROR (" in err.getvalue()
    err.truncate(0), err.seek(0)
    clock.t += 300
    rep.beat()
    assert err.getvalue() == ""  # none of them is "still QUERYING"
