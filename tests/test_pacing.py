"""Predictive polling (wanvid.pacing): the pure schedule, the journal's history table, and
the polling loop using both, on a fake clock against a fake service that reports the
service's submit, scheduled and end times."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.test_poll import FakeResult
from wanvid.journal import Journal
from wanvid.pacing import (
    DENSE_FAR,
    DENSE_NEAR,
    DENSE_QUERIES,
    SPARSE_CAP,
    Sample,
    Window,
    dense_interval,
    likely_end,
    next_delay,
    next_interval,
    sample,
    service_epoch,
)
from wanvid.poll import Waiter, WaitOptions
from wanvid.progress import QuietReporter

MODEL, RES, DUR = "wan2.2-i2v-flash", "480P", 5
SIXTY = [Sample(5.0, t - 5.0) for t in (55.0, 57.0, 60.0, 63.0, 66.0)]  # ~60 s, +-10 %


def sdk_queries(duration: float) -> int:
    """Queries the official SDK's ``wait()`` makes for a task of this length (dashscope's
    client/base_api.py: sleeps 1 s, doubling every 3rd query, at most 5 s)."""
    t, n, wait, step = 0.0, 0, 1, 0
    while True:
        step += 1
        if wait < 5 and step % 3 == 0:
            wait = min(wait * 2, 5)
        n += 1
        if t >= duration:
            return n
        t += wait


def fmt(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}"


# --- the pure schedule ------------------------------------------------------------------

def test_service_epoch_reads_the_documented_format_and_refuses_the_rest() -> None:
    assert service_epoch("2026-01-02 03:04:05.250") == pytest.approx(
        service_epoch("2026-01-02 03:04:05") + 0.25)
    assert service_epoch("2026-01-02 03:04:06") - service_epoch("2026-01-02 03:04:05") == 1
    for bad in (None, "", "yesterday", "2026-13-01 00:00:00", 5, "2026-01-02 03:04:05.x"):
        assert service_epoch(bad) is None


def test_sample_needs_three_ordered_times() -> None:
    assert sample(100.0, 105.0, 160.0) == Sample(5.0, 55.0)
    assert sample(100.0, 105.0, 160.0).total == 60.0
    assert sample(None, 105.0, 160.0) is None
    assert sample(100.0, 99.0, 160.0) is None  # scheduled before submitted
    assert sample(100.0, 105.0, 105.0) is None  # ran for no time


def test_likely_end_needs_history_and_widens_the_range() -> None:
    assert likely_end([], running=False) is None
    assert likely_end(SIXTY[:1], running=False) is None
    w = likely_end(SIXTY, running=False)
    assert (w.lo, w.mid, w.hi) == pytest.approx((55 - 1.2, 60, 66 + 1.2))  # 2 % of the median
    w = likely_end(SIXTY, running=True)  # running times: 50..61
    assert (w.lo, w.mid, w.hi) == pytest.approx((50 - 1.1, 55, 61 + 1.1))
    assert likely_end([Sample(0, 10), Sample(0, 11)], running=False) == Window(9, 10.5, 12)


def test_next_delay_without_history_is_todays_schedule() -> None:
    for age in (0, 10, 30, 60, 300):
        assert next_delay(age=age, base=5) == next_interval(age, 5)
        assert next_delay(age=age, base=5, since=age, window=None) == next_interval(age, 5)


WIN = Window(53.8, 60.0, 67.2)


def test_next_delay_is_sparse_before_the_window_dense_in_it_and_backs_off_after() -> None:
    assert next_delay(age=0, base=5, since=0, window=WIN) == pytest.approx(52.8)
    assert next_delay(age=45, base=5, since=45, window=WIN) == pytest.approx(7.8)
    # just before the window: not two queries in a row
    assert next_delay(age=52.5, base=5, since=52.5, window=WIN) == DENSE_NEAR
    # densest around the median, wider toward the edges
    steps = [next_delay(age=t, base=5, since=t, window=WIN) for t in (54, 57, 60, 63, 67)]
    assert steps[2] == DENSE_NEAR and steps[0] > steps[1] > steps[2] < steps[3] < steps[4]
    assert max(steps) <= DENSE_FAR
    late = [next_delay(age=a, base=5, since=a, window=WIN) for a in (75, 100, 200, 900)]
    assert late == sorted(late) and late[-1] == 15


def test_a_long_window_is_approached_with_a_query_at_least_every_sparse_cap() -> None:
    w = Window(600.0, 650.0, 700.0)
    assert next_delay(age=0, base=5, since=0, window=w) == SPARSE_CAP
    assert dense_interval(w, 5, 600) == pytest.approx(100 / DENSE_QUERIES)
    assert dense_interval(w, 5, 650) == DENSE_NEAR


def test_an_interval_above_the_default_is_honoured_inside_the_window() -> None:
    assert dense_interval(WIN, 20, 60) == 20
    assert dense_interval(WIN, 0.5, 60) == dense_interval(WIN, 5, 60) == DENSE_NEAR


# --- the journal's history --------------------------------------------------------------

def test_journal_records_and_returns_times_latest_first(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    assert j.task_times(model=MODEL, resolution=RES, duration=DUR) == []  # no history yet
    j.record_times("a", model=MODEL, resolution=RES, duration=DUR, submitted=0, scheduled=5,
                   ended=60)
    j.record_times("b", model=MODEL, resolution=RES, duration=DUR, submitted=100,
                   scheduled=103, ended=170)
    j.record_times("c", model=MODEL, resolution="720P", duration=DUR, submitted=0,
                   scheduled=1, ended=2)
    assert j.task_times(model=MODEL, resolution=RES, duration=DUR) == [
        (100.0, 103.0, 170.0), (0.0, 5.0, 60.0)]
    j.record_times("a", model=MODEL, resolution=RES, duration=DUR, submitted=0, scheduled=5,
                   ended=61)  # again: replaced, not doubled
    assert len(j.task_times(model=MODEL, resolution=RES, duration=DUR)) == 2
    j.close()
    assert len(Journal(tmp_path / "j.db").task_times(model=MODEL, resolution=RES,
                                                     duration=DUR)) == 2


# --- the polling loop -------------------------------------------------------------------

class TimedService:
    """One task: PENDING for ``queued`` s, RUNNING until ``total`` s, then SUCCEEDED, with
    the service's times in every answer (by a service clock ``skew`` s off ours)."""

    def __init__(self, clock: FakeClock, queued: float, total: float,
                 skew: float = 8 * 3600) -> None:
        self.clock, self.start = clock, clock.now()
        self.queued, self.total, self.skew = queued, total, skew
        self.calls: list[float] = []

    def get_task(self, task_id: str, **kw: Any) -> dict[str, Any]:
        t = self.clock.now() - self.start
        self.calls.append(t)
        svc = self.start + self.skew
        out: dict[str, Any] = {"task_id": task_id, "submit_time": fmt(svc)}
        if t < self.queued:
            out["task_status"] = "PENDING"
        else:
            out["scheduled_time"] = fmt(svc + self.queued)
            out["task_status"] = "RUNNING" if t < self.total else "SUCCEEDED"
        if out["task_status"] == "SUCCEEDED":
            out["end_time"] = fmt(svc + self.total)
            out["video_url"] = f"https://oss.example/{task_id}.mp4?Expires=9999999999"
        return {"request_id": "r", "output": out}


def journal_with(tmp_path: Path, clock: FakeClock, samples: list[Sample]) -> Journal:
    j = Journal(tmp_path / "journal.db", now=clock.now)
    base = 1_700_000_000.0
    for i, s in enumerate(samples):
        j.record_submit(f"old{i}", model=MODEL, base_url="x", params={"resolution": RES,
                        "duration": DUR}, inputs=[])
        j.record_times(f"old{i}", model=MODEL, resolution=RES, duration=DUR,
                       submitted=base + 100 * i, scheduled=base + 100 * i + s.queued,
                       ended=base + 100 * i + s.total)
    j.record_submit("new", model=MODEL, base_url="x", params={"resolution": RES,
                    "duration": DUR}, inputs=[])
    return j


def wait_new(clock: FakeClock, svc: TimedService, journal: Journal, tmp_path: Path,
             ) -> tuple[float, int]:
    """(seconds from the task's end to the query that saw it, queries)."""
    w = Waiter(client=svc, journal=journal, reporter=QuietReporter(),
               options=WaitOptions(download=False), dest_for=lambda t, o: tmp_path / "x.mp4",
               clock=clock.now, wall=clock.now, sleep=clock.sleep,
               downloader=lambda *a, **k: FakeResult(tmp_path / "x.mp4"))
    [out] = w.run(["new"])
    assert out.ok and out.status == "SUCCEEDED"
    return svc.calls[-1] - svc.total, len(svc.calls)


def test_sdk_model() -> None:
    assert sdk_queries(60) == 17


@pytest.mark.parametrize("total", [54.0, 57.0, 58.0, 59.0, 60.0, 61.0, 62.0, 63.0, 66.0])
def test_with_history_the_end_is_noticed_soon_with_fewer_queries(
        clock: FakeClock, tmp_path: Path, total: float) -> None:
    journal = journal_with(tmp_path, clock, SIXTY)
    lag, queries = wait_new(clock, TimedService(clock, 5.0, total), journal, tmp_path)
    assert 0 <= lag <= DENSE_FAR
    assert queries <= sdk_queries(total), queries
    if 58 <= total <= 62:  # a typical task: within 2 s, half the SDK's queries
        assert lag <= 2.0 and queries <= 0.5 * sdk_queries(total), (lag, queries)


def test_without_history_it_polls_as_before(clock: FakeClock, tmp_path: Path) -> None:
    journal = journal_with(tmp_path, clock, SIXTY[:1])  # one earlier task: not enough
    svc = TimedService(clock, 5.0, 60.0)
    lag, queries = wait_new(clock, svc, journal, tmp_path)
    expected, t = [], 0.0
    while t < 60:
        expected.append(t)
        t += next_interval(t, 5.0)
    assert svc.calls[:len(expected)] == pytest.approx(expected, abs=0.01)
    assert queries <= sdk_queries(60) and lag <= 15


def test_a_task_later_than_all_history_is_still_noticed(clock: FakeClock,
                                                        tmp_path: Path) -> None:
    journal = journal_with(tmp_path, clock, SIXTY)
    lag, queries = wait_new(clock, TimedService(clock, 5.0, 200.0), journal, tmp_path)
    assert lag <= 15 and queries <= sdk_queries(200)


def test_a_long_queue_is_left_out_once_the_task_runs(clock: FakeClock, tmp_path: Path) -> None:
    """Queued 40 s instead of 5: the window moves with the service's scheduled time."""
    journal = journal_with(tmp_path, clock, SIXTY)
    lag, _ = wait_new(clock, TimedService(clock, 40.0, 95.0), journal, tmp_path)
    assert lag <= 2.0


def test_a_finished_task_becomes_history(clock: FakeClock, tmp_path: Path) -> None:
    journal = journal_with(tmp_path, clock, [])
    wait_new(clock, TimedService(clock, 5.0, 60.0), journal, tmp_path)
    [(sub, sch, end)] = journal.task_times(model=MODEL, resolution=RES, duration=DUR)
    assert (sch - sub, end - sub) == pytest.approx((5.0, 60.0))
