"""Downloads beside the polling loop (wanvid.pool): the loop never waits for a download,
several videos come down at once (never more than the pool's size), outcomes and journal
rows are as before, and Ctrl-C stops the downloads where they are. Fake clock, fake
service, fake downloads: no network, no sleeping (threads only block on events)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.test_poll import FakeJournal, FakeResult, FakeService
from wanvid.errors import BusyError, ExitStatus
from wanvid.net import Deadline
from wanvid.poll import Outcome, Waiter, WaitOptions
from wanvid.pool import Abandoned, DownloadPool
from wanvid.progress import QuietReporter

LONG = 10.0  # seconds a test thread waits for an event before the test fails


def waiter(clock: FakeClock, svc: Any, tmp_path: Path, downloader: Any, *,
           on_outcome: Any = None, **opts: Any) -> tuple[Waiter, FakeJournal]:
    journal = FakeJournal()
    w = Waiter(client=svc, journal=journal, reporter=QuietReporter(),
               options=WaitOptions(**opts), dest_for=lambda tid, out: tmp_path / f"{tid}.mp4",
               clock=clock.now, wall=clock.now, sleep=clock.sleep, downloader=downloader,
               on_outcome=on_outcome)
    return w, journal


def test_polling_goes_on_while_a_video_downloads(clock: FakeClock, tmp_path: Path) -> None:
    """t1's download blocks until the loop has seen t2 finish: without the pool the loop
    would sit inside t1's download and t2 would never be queried again."""
    svc = FakeService(clock, {"t1": [(0, "RUNNING"), (10, "SUCCEEDED")],
                              "t2": [(0, "RUNNING"), (60, "SUCCEEDED")]})
    t2_done = threading.Event()
    real_get = svc.get_task

    def get_task(task_id: str, **kw: Any) -> dict[str, Any]:
        resp = real_get(task_id, **kw)
        if task_id == "t2" and resp["output"]["task_status"] == "SUCCEEDED":
            t2_done.set()
        return resp

    svc.get_task = get_task  # type: ignore[method-assign]
    seen_while_blocked: list[bool] = []

    def download(url: str, dest: Path, **kw: Any) -> FakeResult:
        if "t1" in url:
            seen_while_blocked.append(t2_done.wait(LONG))
        return FakeResult(dest)

    w, journal = waiter(clock, svc, tmp_path, download)
    outs = w.run(["t1", "t2"])
    assert seen_while_blocked == [True]
    assert [o.task_id for o in outs] == ["t1", "t2"] and all(o.ok for o in outs)
    assert set(journal.downloads) == {"t1", "t2"}
    # t2 was polled after t1 finished, on its own schedule
    assert [t for t, tid in svc.calls if tid == "t2" and t - svc.start >= 10]


@pytest.mark.parametrize("size", [1, 2, 4])
def test_finished_videos_come_down_together_at_most_pool_size(
        clock: FakeClock, tmp_path: Path, size: int) -> None:
    n = 2 * size  # the gate lets them through `size` at a time
    svc = FakeService(clock, {f"t{i}": [(0, "RUNNING"), (10, "SUCCEEDED")] for i in range(n)})
    lock = threading.Lock()
    running, peak = [0], [0]
    gate = threading.Barrier(size, timeout=LONG)  # passes only once `size` run at once

    def download(url: str, dest: Path, **kw: Any) -> FakeResult:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            gate.wait()
        finally:
            with lock:
                running[0] -= 1
        return FakeResult(dest)

    w, journal = waiter(clock, svc, tmp_path, download, downloads=size)
    outs = w.run([f"t{i}" for i in range(n)])
    assert all(o.ok for o in outs), [o.message for o in outs]
    assert peak[0] == size
    assert len(journal.downloads) == n
    assert [o.task_id for o in outs] == [f"t{i}" for i in range(n)]  # the order given


def test_outcomes_are_emitted_from_the_loop_thread(clock: FakeClock, tmp_path: Path) -> None:
    svc = FakeService(clock, {"a": [(0, "SUCCEEDED")], "b": [(0, "SUCCEEDED")]})
    threads: list[threading.Thread] = []
    download_threads: list[threading.Thread] = []

    def download(url: str, dest: Path, **kw: Any) -> FakeResult:
        download_threads.append(threading.current_thread())
        return FakeResult(dest)

    w, _ = waiter(clock, svc, tmp_path, download,
                  on_outcome=lambda o: threads.append(threading.current_thread()))
    w.run(["a", "b"])
    assert threads == [threading.main_thread()] * 2
    assert threading.main_thread() not in download_threads


def test_a_download_error_is_that_tasks_outcome_only(clock: FakeClock, tmp_path: Path) -> None:
    from wanvid.errors import NetworkError

    svc = FakeService(clock, {"bad": [(0, "SUCCEEDED")], "good": [(0, "SUCCEEDED")]})

    def download(url: str, dest: Path, **kw: Any) -> FakeResult:
        if "bad" in url:
            raise NetworkError("storage said no")
        return FakeResult(dest)

    w, journal = waiter(clock, svc, tmp_path, download)
    bad, good = w.run(["bad", "good"])
    assert (bad.exit_status, bad.message) == (ExitStatus.NETWORK, "storage said no")
    assert good.ok and set(journal.downloads) == {"good"}


def test_busy_elsewhere_is_looked_at_again_later(clock: FakeClock, tmp_path: Path) -> None:
    svc = FakeService(clock, {"t": [(0, "SUCCEEDED")]})
    tries: list[float] = []

    def download(url: str, dest: Path, **kw: Any) -> FakeResult:
        tries.append(clock.now())
        if len(tries) == 1:
            raise BusyError("locked by another process")
        return FakeResult(dest)

    w, journal = waiter(clock, svc, tmp_path, download, busy_interval=2.0)
    [out] = w.run(["t"])
    assert out.ok and len(tries) == 2 and tries[1] - tries[0] >= 2.0
    assert len(svc.calls) == 2 and journal.downloads == {"t": str(tmp_path / "t.mp4")}


def test_ctrl_c_stops_the_downloads_where_they_are(clock: FakeClock, tmp_path: Path) -> None:
    """A Ctrl-C in the loop (here: raised by a query) abandons the running downloads: their
    progress callback raises, the deadline is interrupted (sockets shut), nothing is
    journaled as downloaded, and the KeyboardInterrupt reaches the caller."""
    svc = FakeService(clock, {"slow": [(0, "SUCCEEDED")], "other": [(0, "RUNNING")]})
    started = threading.Event()
    stopped: list[BaseException] = []
    real_get = svc.get_task

    def get_task(task_id: str, **kw: Any) -> dict[str, Any]:
        if task_id == "other" and started.is_set():
            raise KeyboardInterrupt
        return real_get(task_id, **kw)

    svc.get_task = get_task  # type: ignore[method-assign]
    deadline = Deadline(None, clock=clock.now)

    def download(url: str, dest: Path, *, on_progress: Any, **kw: Any) -> FakeResult:
        started.set()
        try:
            for i in range(10_000):
                on_progress(i, 10_000)
                if deadline.expired():
                    break
                threading.Event().wait(0.001)
        except BaseException as e:
            stopped.append(e)
            raise
        stopped.append(RuntimeError("ran to the end"))
        return FakeResult(dest)

    w, journal = waiter(clock, svc, tmp_path, download, deadline=deadline)
    with pytest.raises(KeyboardInterrupt):
        w.run(["slow", "other"])
    assert len(stopped) == 1 and isinstance(stopped[0], (Abandoned, RuntimeError))
    assert deadline.interrupted and deadline.expired()
    assert journal.downloads == {}


def test_deadline_interrupt_shuts_a_request_in_another_thread() -> None:
    d = Deadline(None)
    inside, fired = threading.Event(), threading.Event()

    def worker() -> None:
        with d.watch(None) as w:
            inside.set()
            for _ in range(1000):
                if w.fired:
                    fired.set()
                    return
                threading.Event().wait(0.01)

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(LONG)
    d.interrupt()
    t.join(LONG)
    assert fired.is_set() and d.expired()
    assert d.message("while downloading x.mp4") == "interrupted while downloading x.mp4"


def test_pool_collects_values_and_errors() -> None:
    pool: DownloadPool[int] = DownloadPool(2)
    pool.submit("a", lambda: 1)
    pool.submit("b", lambda: 1 // 0)
    got: dict[str, Any] = {}
    while pool.pending:
        pool.wait(None)
        for d in pool.collect():
            got[d.key] = d.value if d.error is None else type(d.error)
    pool.close()
    assert got == {"a": 1, "b": ZeroDivisionError}
    assert pool.peak <= 2


def test_no_download_uses_no_pool(clock: FakeClock, tmp_path: Path) -> None:
    svc = FakeService(clock, {"t": [(0, "SUCCEEDED")]})
    w, journal = waiter(clock, svc, tmp_path, lambda *a, **k: pytest.fail("downloaded"),
                        download=False)
    [out] = w.run(["t"])
    assert isinstance(out, Outcome) and out.ok and out.video_url and out.path is None
    assert w._pool is not None and w._pool.peak == 0


def test_outcomes_come_in_the_order_the_tasks_finished(clock: FakeClock,
                                                       tmp_path: Path) -> None:
    """b's download ends first, but a was seen finished first: a is reported first (the
    order the loop reported them in when it downloaded them itself)."""
    svc = FakeService(clock, {"a": [(0, "SUCCEEDED")], "b": [(0, "SUCCEEDED")]})
    b_saved = threading.Event()
    order: list[str] = []

    def download(url: str, dest: Path, **kw: Any) -> FakeResult:
        if "/a.mp4" in url:
            assert b_saved.wait(LONG)
        else:
            b_saved.set()
        return FakeResult(dest)

    w, journal = waiter(clock, svc, tmp_path, download,
                        on_outcome=lambda o: order.append(o.task_id))
    w.run(["a", "b"])
    assert order == ["a", "b"] and set(journal.downloads) == {"a", "b"}
