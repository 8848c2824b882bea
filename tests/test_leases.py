"""Account limits shared through the journal (wanvid.leases): the pure admission rule, and
the lease table as several "processes" (Leases objects with their own pids) see it, on a
fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FakeClock
from wanvid.errors import DeadlineExceeded
from wanvid.leases import POLL, Leases, Limit, admit, alive, key_for

KEY = key_for("wan2.2-i2v-flash", "http://127.0.0.1:1/api/v1/")


def test_admit_counts_held_leases_against_concurrent_tasks() -> None:
    lim = Limit(concurrent=2, per_second=0)
    assert admit(0, [], lim, 100.0) == 0
    assert admit(1, [], lim, 100.0) == 0
    assert admit(2, [], lim, 100.0) == POLL
    assert admit(5, [], Limit(0, 0), 100.0) == 0  # no limit


def test_admit_paces_submits_per_second() -> None:
    lim = Limit(concurrent=0, per_second=2)
    assert admit(0, [99.5], lim, 100.0) == 0
    assert admit(0, [99.5, 99.8], lim, 100.0) == pytest.approx(0.5)  # two in the last second
    assert admit(0, [98.9, 99.8], lim, 100.0) == 0  # one of them is older than a second
    slow = Limit(concurrent=0, per_second=0.5)  # one every 2 s
    assert admit(0, [99.0], slow, 100.0) == pytest.approx(1.0)
    assert admit(0, [97.9], slow, 100.0) == 0


def leases(tmp_path: Path, clock: FakeClock, pid: int, dead: set[int]) -> Leases:
    return Leases(tmp_path / "journal.db", now=clock.now, pid=pid,
                  is_alive=lambda p: p not in dead)


def test_a_third_process_waits_until_a_holder_releases(tmp_path: Path,
                                                       clock: FakeClock) -> None:
    dead: set[int] = set()
    a, b, c = (leases(tmp_path, clock, pid, dead) for pid in (101, 102, 103))
    lim = Limit(concurrent=2, per_second=0)
    la, _ = a.try_take(KEY, lim)
    lb, _ = b.try_take(KEY, lim)
    assert la is not None and lb is not None
    assert c.try_take(KEY, lim) == (None, POLL)
    assert c.try_take(key_for("wan2.7-i2v", "http://127.0.0.1:1/api/v1"), lim)[0] is not None
    a.bind(la, "task-a")
    c.release(task_id="task-a")  # not c's lease: nothing happens
    assert c.try_take(KEY, lim)[0] is None
    a.release(task_id="task-a")  # a's wait saw task-a end
    lc, _ = c.try_take(KEY, lim)
    assert lc is not None
    assert c.held(KEY) == 2


def test_a_released_id_is_never_anothers(tmp_path: Path, clock: FakeClock) -> None:
    """SQLite would hand a freed rowid out again; releasing one's own old lease must never
    free the lease another process took since."""
    dead: set[int] = set()
    a, b = leases(tmp_path, clock, 501, dead), leases(tmp_path, clock, 502, dead)
    lim = Limit(concurrent=1, per_second=0)
    la, _ = a.try_take(KEY, lim)
    a.release(la)
    lb, _ = b.try_take(KEY, lim)
    assert lb is not None and lb != la
    a.mine.add(lb)  # even if a got confused about its ids
    a.release_mine()
    assert a.try_take(KEY, lim)[0] is None  # b still holds the only slot


def test_a_dead_holders_lease_is_dropped(tmp_path: Path, clock: FakeClock) -> None:
    dead: set[int] = set()
    a, b = leases(tmp_path, clock, 201, dead), leases(tmp_path, clock, 202, dead)
    lim = Limit(concurrent=1, per_second=0)
    assert a.try_take(KEY, lim)[0] is not None
    assert b.try_take(KEY, lim)[0] is None
    dead.add(201)  # kill -9
    assert b.try_take(KEY, lim)[0] is not None


def test_take_waits_says_so_once_and_respects_the_deadline(tmp_path: Path,
                                                           clock: FakeClock) -> None:
    dead: set[int] = set()
    a, b = leases(tmp_path, clock, 301, dead), leases(tmp_path, clock, 302, dead)
    lim = Limit(concurrent=1, per_second=0)
    la = a.take(KEY, lim, sleep=clock.sleep)
    told: list[int] = []
    naps = 0

    def sleep(s: float) -> None:
        nonlocal naps
        naps += 1
        clock.sleep(s)
        if naps == 8:
            a.release(la)

    lb = b.take(KEY, lim, sleep=sleep, on_wait=told.append)
    assert lb is not None and told == [1] and naps == 8
    b.release_mine()
    assert b.held(KEY) == 0

    a.take(KEY, lim, sleep=clock.sleep)
    start = clock.now()
    with pytest.raises(DeadlineExceeded, match="nothing was sent"):
        b.take(KEY, lim, sleep=clock.sleep, deadline_left=lambda: 3.0 - (clock.now() - start))
    assert clock.now() - start <= 3.0


def test_submits_are_paced_across_processes(tmp_path: Path, clock: FakeClock) -> None:
    dead: set[int] = set()
    procs = [leases(tmp_path, clock, 400 + i, dead) for i in range(6)]
    lim = Limit(concurrent=0, per_second=2)
    times = []
    for p in procs:
        lease = p.take(KEY, lim, sleep=clock.sleep)
        times.append(clock.now())
        p.release(lease)
    for i in range(len(times) - 2):
        assert times[i + 2] - times[i] >= 1.0 - 1e-9  # never 3 within a second


def test_alive_knows_this_process_and_not_a_free_pid() -> None:
    import os

    assert alive(os.getpid())
    assert not alive(0)
    assert not alive(2 ** 22 + 12345)  # above pid_max's default


def test_task_queries_share_one_schedule_across_processes(tmp_path: Path,
                                                          clock: FakeClock) -> None:
    dead: set[int] = set()
    procs = [leases(tmp_path, clock, 600 + i, dead) for i in range(4)]
    # 4 processes asking at the same instant, 20/s in all: booked 50 ms apart
    assert [p.query_delay(20) for p in procs] == pytest.approx([0, 0.05, 0.10, 0.15])
    clock.sleep(1.0)
    assert procs[0].query_delay(20) == 0  # the schedule has passed: no wait


def test_the_lease_connection_never_reopens_a_journal_file_this_process_holds(
        tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing any descriptor of a file drops the process's POSIX locks on it, SQLite's
    too: an open/close of the journal beside the journal's connection lost its writes
    (8 parallel submits journaled 7). Only a file that does not exist yet is created."""
    import wanvid.journal
    from wanvid.journal import Journal

    path = tmp_path / "journal.db"
    created: list[Path] = []
    real = wanvid.journal._open_private
    monkeypatch.setattr(wanvid.journal, "_open_private",
                        lambda p: (created.append(Path(p)), real(p))[-1])
    j = Journal(path)
    created.clear()
    Leases(path, now=clock.now, pid=1).held(KEY)
    assert created == []
    j.close()
    fresh = tmp_path / "other" / "journal.db"
    Leases(fresh, now=clock.now, pid=1).held(KEY)
    assert created == [fresh] and (fresh.stat().st_mode & 0o077) == 0
