"""Account limits shared through the journal (wanvid.leases): the pure admission rule, and
the lease table as several "processes" (Leases objects with their own pids) see it, on a
fake clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import FakeClock
from wanvid.errors import DeadlineExceeded
from wanvid.journal import Journal
from wanvid.leases import POLL, RATE, SLOTS, Leases, Limit, Wait, admit, alive, key_for

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
    b.release(lb)  # b's own lease, by id
    assert b.release(la) is None and c.held(KEY) == 1  # a's lease, by id: not b's to give
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
    told: list[Wait] = []
    naps = 0

    def sleep(s: float) -> None:
        nonlocal naps
        naps += 1
        clock.sleep(s)
        if naps == 8:
            a.release(la)

    lb = b.take(KEY, lim, sleep=sleep, on_wait=told.append)
    assert lb is not None and [(w.reason, w.others) for w in told] == [(SLOTS, 1)]
    assert naps == 8
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


# --- the holder: pid and start time; a task the journal shows ended (review of issue 19) --


def test_a_live_process_with_the_holders_pid_but_another_start_time_is_not_the_holder(
        tmp_path: Path, clock: FakeClock) -> None:
    """pid reuse: the holder died and its pid went to another process (a recycled pid after
    a crash or a reboot). The lease used to be kept while that pid was alive: up to 24 h."""
    started = {201: "boot/1000", 202: "boot/2000"}
    a = Leases(tmp_path / "journal.db", now=clock.now, pid=201, is_alive=lambda p: True,
               started_of=started.get)
    b = Leases(tmp_path / "journal.db", now=clock.now, pid=202, is_alive=lambda p: True,
               started_of=started.get)
    lim = Limit(concurrent=1, per_second=0)
    assert a.try_take(KEY, lim)[0] is not None
    assert b.try_take(KEY, lim)[0] is None  # 201 is the holder, alive
    started[201] = "boot/5000"  # pid 201 is another process now
    assert b.try_take(KEY, lim)[0] is not None
    assert b.held(KEY) == 1


def test_a_former_process_with_this_processes_pid_holds_nothing(tmp_path: Path,
                                                                clock: FakeClock) -> None:
    """A container restarted: wanvid is pid 1 again, and the lease the killed run left is
    pid 1's, alive (it is this process). Its start time says it is not."""
    path = tmp_path / "journal.db"
    lim = Limit(concurrent=1, per_second=0)
    first = Leases(path, now=clock.now, pid=1, is_alive=lambda p: True,
                   started_of=lambda p: "boot/100")
    assert first.try_take(KEY, lim)[0] is not None  # then killed: never released
    again = Leases(path, now=clock.now, pid=1, is_alive=lambda p: True,
                   started_of=lambda p: "boot/900")
    assert again.try_take(KEY, lim)[0] is not None
    # Two Leases of one process (the same pid and start time) are one holder: kept.
    same = Leases(path, now=clock.now, pid=1, is_alive=lambda p: True,
                  started_of=lambda p: "boot/900")
    assert same.try_take(KEY, lim)[0] is None


def test_a_row_without_a_start_time_is_judged_by_its_pid(tmp_path: Path,
                                                        clock: FakeClock) -> None:
    """Leases an older wanvid wrote (schema 4) and systems that say no start time."""
    import sqlite3

    path = tmp_path / "journal.db"
    probe = Leases(path, now=clock.now, pid=5, is_alive=lambda p: p in {5, 4242},
                   started_of=lambda p: f"boot/{p}")
    probe.held(KEY)  # creates the tables
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO leases (key, pid, taken_at) VALUES (?, 4242, ?)",
                   (KEY, clock.now()))
    db.close()
    assert probe.held(KEY) == 1  # 4242 is alive: kept
    nowhere = Leases(path, now=clock.now, pid=6, is_alive=lambda p: p in {6, 4242},
                     started_of=lambda p: None)
    assert nowhere.try_take(KEY, Limit(2, 0))[0] is not None
    assert nowhere.held(KEY) == 2  # no start times anywhere: pids alone, as before


@pytest.mark.parametrize("end", ["SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN", "saved"])
def test_a_lease_whose_task_the_journal_shows_ended_is_dropped_whoever_holds_it(
        tmp_path: Path, clock: FakeClock, end: str) -> None:
    """The holder is alive but never saw its task end (another process's `wait --pending`
    or `status` did): the slot is free at the service, so it is free here."""
    from wanvid.journal import Journal

    dead: set[int] = set()
    a, b = leases(tmp_path, clock, 701, dead), leases(tmp_path, clock, 702, dead)
    lim = Limit(concurrent=1, per_second=0)
    la, _ = a.try_take(KEY, lim)
    assert la is not None
    a.bind(la, "task-x")
    with Journal(tmp_path / "journal.db", now=clock.now) as j:
        j.record_submit("task-x", model="m", base_url="http://h", params={}, inputs=[])
        j.update_status("task-x", "RUNNING")
        assert b.try_take(KEY, lim)[0] is None  # running: a holds the slot
        if end == "saved":
            (tmp_path / "x.mp4").write_bytes(b"v")
            j.record_download("task-x", path=tmp_path / "x.mp4", size=1, sha256="0" * 64)
        else:
            j.update_status("task-x", end)
    assert b.try_take(KEY, lim)[0] is not None


def test_a_task_end_releases_its_lease_whichever_process_took_it(tmp_path: Path,
                                                                 clock: FakeClock) -> None:
    dead: set[int] = set()
    a, c = leases(tmp_path, clock, 801, dead), leases(tmp_path, clock, 803, dead)
    lim = Limit(concurrent=1, per_second=0)
    la, _ = a.try_take(KEY, lim)
    assert la is not None
    a.bind(la, "task-a")
    assert c.try_take(KEY, lim)[0] is None
    c.release(task_id="task-a")  # c's wait (`wait --pending`) saw task-a end
    assert c.try_take(KEY, lim)[0] is not None


def test_start_time_reads_field_22_after_the_last_parenthesis() -> None:
    from wanvid.leases import start_time, stat_starttime

    tail = b" S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 19 20\n"
    assert stat_starttime(b"77 (a) b) (c d)" + tail) == "424242"
    assert stat_starttime(b"77 (short) S 1 2") is None
    zombie = tail.replace(b" S ", b" Z ", 1)
    assert stat_starttime(b"77 (a)" + zombie) == "424242 exited"  # never a holder's
    assert start_time(0) is None and start_time(2 ** 22 + 12345) is None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc only")
def test_start_time_tells_a_process_from_another_with_its_pid() -> None:
    import os
    import subprocess
    import sys

    from wanvid.leases import holder_alive, me, start_time

    pid, started = me()
    assert pid == os.getpid() and started is not None and start_time(pid) == started
    assert holder_alive(pid, started) and holder_alive(pid, None)
    assert not holder_alive(pid, started + "0")  # the pid, but not the same process
    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    try:
        theirs = start_time(child.pid)
        assert theirs is not None and theirs != started
        assert holder_alive(child.pid, theirs)
        child.stdin.write(b"\n")  # type: ignore[union-attr]
        child.stdin.close()  # type: ignore[union-attr]
        # Exited, not reaped yet (WNOWAIT): kill(pid, 0) still finds a zombie; it holds
        # nothing.
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        assert start_time(child.pid) == theirs + " exited"
        assert alive(child.pid) and not holder_alive(child.pid, theirs)
    finally:
        child.wait(timeout=30)
    assert not holder_alive(child.pid, theirs)


# --- what a submit waits for, in words (review of issue 19, item 2) ------------------------


def test_a_wait_for_slots_names_the_holders_counted_when_it_was_refused(
        tmp_path: Path, clock: FakeClock) -> None:
    dead: set[int] = set()
    a, b, c = (leases(tmp_path, clock, pid, dead) for pid in (901, 902, 903))
    lim = Limit(concurrent=2, per_second=0)
    held = [a.try_take(KEY, lim)[0], b.try_take(KEY, lim)[0]]
    told: list[Wait] = []

    def sleep(s: float) -> None:  # both holders end right after the refusal
        clock.sleep(s)
        for p, lease in zip((a, b), held, strict=True):
            p.release(lease)

    assert c.take(KEY, lim, sleep=sleep, on_wait=told.append) is not None
    (why,) = told
    assert (why.reason, why.others, why.mine) == (SLOTS, 2, 0)
    assert why.describe("wan2.2-i2v-flash") == (
        "2 wan2.2-i2v-flash task(s) of other wanvid processes hold the account's 2 slot(s); "
        "waiting for one to end")


def test_a_wait_for_the_submit_rate_says_so_not_that_slots_are_held(
        tmp_path: Path, clock: FakeClock) -> None:
    """Three `submit`s at once (the README's xargs recipe), wan2.2: 2 per second. The third
    waits for the rate, not for a slot: both earlier submits have given theirs back."""
    dead: set[int] = set()
    procs = [leases(tmp_path, clock, 950 + i, dead) for i in range(3)]
    lim = Limit(concurrent=2, per_second=2)
    for p in procs[:2]:
        lease = p.take(KEY, lim, sleep=clock.sleep)
        clock.sleep(0.1)
        p.release(lease)  # `submit` holds its slot only while it posts
    told: list[Wait] = []
    procs[2].take(KEY, lim, sleep=clock.sleep, on_wait=told.append)
    (why,) = told
    assert (why.reason, why.others, why.recent) == (RATE, 0, 2)
    assert why.describe("wan2.2-i2v-flash") == (
        "2 wan2.2-i2v-flash submit(s) in the last second; the account allows 2 per second; "
        "waiting 0.8 s")
    slow = Wait(1.5, RATE, Limit(0, 0.5), since_last=0.5)
    assert slow.describe("m") == ("the last m submit was 0.5 s ago; the account allows one "
                                  "every 2 s; waiting 1.5 s")


# --- a gone holder's task still runs: its lease is orphaned, not dropped (review finding 5)


M = "wan2.2-i2v-flash"
ROOT = "http://127.0.0.1:1/api/v1/"


def proc(tmp_path: Path, clock: FakeClock, pid: int, dead: set[int]) -> Leases:
    """A process of its own: pid, a start time of its own, dead once in ``dead``."""
    return Leases(tmp_path / "journal.db", now=clock.now, pid=pid,
                  is_alive=lambda p: p not in dead, started_of=lambda p: f"boot/{p}")


def journal(tmp_path: Path, clock: FakeClock) -> Journal:
    return Journal(tmp_path / "journal.db", now=clock.now)


def submitted(tmp_path: Path, clock: FakeClock, task_id: str, status: str = "RUNNING",
              ) -> None:
    with journal(tmp_path, clock) as j:
        j.record_submit(task_id, model=M, base_url=ROOT, params={}, inputs=[])
        j.update_status(task_id, status)


@pytest.mark.parametrize("end", ["journal", "another wait", "max age"])
def test_a_dead_holders_lease_keeps_its_slot_while_its_task_runs(
        tmp_path: Path, clock: FakeClock, end: str) -> None:
    """`generate` killed -9 after its submit: the service still runs its task. The slot
    used to be free at once, and the next process's submit was throttled (3 throttled
    submits against --max-concurrent 2)."""
    from wanvid.leases import ORPHAN_MIN_AGE

    dead: set[int] = set()
    a, b, c = (proc(tmp_path, clock, pid, dead) for pid in (211, 212, 213))
    lim = Limit(concurrent=1, per_second=0)
    la, _ = a.try_take(KEY, lim)
    assert la is not None
    a.bind(la, "task-a")
    submitted(tmp_path, clock, "task-a")
    dead.add(211)  # kill -9: the task runs on
    clock.sleep(60)
    assert b.try_take(KEY, lim)[0] is None
    why = b.last_wait
    assert why is not None and (why.reason, why.others, why.orphans) == (SLOTS, 1, ("task-a",))
    assert why.describe(M) == (
        f"1 {M} task(s) of other wanvid processes (1 of them left by a wanvid process that "
        "exited, not seen to end yet) hold the account's 1 slot(s); waiting for one to end")
    assert c.adopt(KEY, "task-a") is None  # `wait --pending` follows it: still one slot
    assert b.held(KEY) == 1
    if end == "journal":  # whoever saw it end wrote it down
        with journal(tmp_path, clock) as j:
            j.update_status("task-a", "SUCCEEDED")
    elif end == "another wait":
        c.release(task_id="task-a")
    else:  # nobody follows it: not for ever
        clock.sleep(ORPHAN_MIN_AGE - 60 - 1)
        assert b.try_take(KEY, lim)[0] is None
        clock.sleep(2)
    assert b.try_take(KEY, lim)[0] is not None


def test_an_orphans_task_unknown_to_the_journal_still_holds_its_slot(
        tmp_path: Path, clock: FakeClock) -> None:
    """Killed between binding the task to its lease and journaling it: the task id is
    known (the lease's), its end is not."""
    dead: set[int] = set()
    a, b = proc(tmp_path, clock, 221, dead), proc(tmp_path, clock, 222, dead)
    lim = Limit(concurrent=1, per_second=0)
    la, _ = a.try_take(KEY, lim)
    assert la is not None
    a.bind(la, "task-x")
    dead.add(221)
    assert b.try_take(KEY, lim)[0] is None
    assert b.last_wait is not None and b.last_wait.orphans == ("task-x",)


def test_an_orphan_is_kept_twice_as_long_as_the_models_longest_task(
        tmp_path: Path, clock: FakeClock) -> None:
    from wanvid.leases import ORPHAN_MIN_AGE

    with journal(tmp_path, clock) as j:  # a task of the model once took 1500 s, end to end
        j.record_times("old", model=M, resolution="480P", duration=5,
                       submitted=clock.now() - 9000, scheduled=clock.now() - 8000,
                       ended=clock.now() - 7500)
    dead: set[int] = set()
    a, b = proc(tmp_path, clock, 231, dead), proc(tmp_path, clock, 232, dead)
    lim = Limit(concurrent=1, per_second=0)
    la, _ = a.try_take(KEY, lim)
    assert la is not None
    a.bind(la, "task-a")
    dead.add(231)
    clock.sleep(ORPHAN_MIN_AGE + 1)
    assert b.try_take(KEY, lim)[0] is None
    clock.sleep(3000 - ORPHAN_MIN_AGE)
    assert b.try_take(KEY, lim)[0] is not None


@pytest.fixture
def as_holder(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Intents written as process ``pid`` (the journal asks ``wanvid.leases.me``)."""
    import wanvid.leases

    def be(pid: int) -> None:
        monkeypatch.setattr(wanvid.leases, "me", lambda: (pid, f"boot/{pid}"))

    return be


def intent(tmp_path: Path, clock: FakeClock, *, model: str = M) -> int:
    with journal(tmp_path, clock) as j:
        return j.open_intent(model=model, model_name=model, base_url=ROOT, prompt="p",
                             params={}, inputs=[])


def test_a_holder_that_died_before_writing_its_intent_sent_nothing(
        tmp_path: Path, clock: FakeClock, as_holder: Callable[[int], None]) -> None:
    """No intent of its own after the lease (only another process's, another model's, or
    one from before the lease): no POST was made, the slot is free at once."""
    dead: set[int] = set()
    a, b = proc(tmp_path, clock, 241, dead), proc(tmp_path, clock, 242, dead)
    lim = Limit(concurrent=1, per_second=0)
    as_holder(241)
    intent(tmp_path, clock)  # an earlier submit's, before this lease
    clock.sleep(1)
    assert a.try_take(KEY, lim)[0] is not None
    clock.sleep(1)
    intent(tmp_path, clock, model="wan2.7-i2v")
    as_holder(242)
    intent(tmp_path, clock)
    dead.add(241)
    assert b.try_take(KEY, lim)[0] is not None


@pytest.mark.parametrize("answer", ["none yet", "not created", "created", "adopted"])
def test_a_holder_that_died_in_its_post_keeps_the_slot_as_its_intent_says(
        tmp_path: Path, clock: FakeClock, as_holder: Callable[[int], None],
        answer: str) -> None:
    """Killed with the POST in flight: a task may exist. The open intent keeps the slot a
    short while; an intent settled as not created frees it; one that names its task (the
    answer was journaled, or `wait --pending` found the task) makes the lease that task's."""
    from wanvid.leases import POSTING_MAX_AGE

    dead: set[int] = set()
    a, b = proc(tmp_path, clock, 251, dead), proc(tmp_path, clock, 252, dead)
    lim = Limit(concurrent=1, per_second=0)
    assert a.try_take(KEY, lim)[0] is not None
    as_holder(251)
    clock.sleep(0.01)
    iid = intent(tmp_path, clock)
    dead.add(251)
    assert b.try_take(KEY, lim)[0] is None
    assert b.last_wait is not None and (b.last_wait.orphans, b.last_wait.unnamed) == ((), 1)
    with journal(tmp_path, clock) as j:
        if answer == "not created":
            j.close_intent(iid, note="throttled")
        elif answer == "created":
            j.record_submit("task-p", model=M, base_url=ROOT, params={}, inputs=[],
                            status="RUNNING", intent=iid)
        elif answer == "adopted":
            j.adopt_intent(iid, "task-p", status="RUNNING")
    if answer == "not created":
        assert b.try_take(KEY, lim)[0] is not None
        return
    clock.sleep(POSTING_MAX_AGE - 1)
    assert b.try_take(KEY, lim)[0] is None
    clock.sleep(2)
    if answer == "none yet":  # nothing names a task: not for long
        assert b.try_take(KEY, lim)[0] is not None
        return
    assert b.try_take(KEY, lim)[0] is None  # the task's now: kept while it runs
    assert b.last_wait is not None and b.last_wait.orphans == ("task-p",)
    b.release(task_id="task-p")  # a wait saw task-p end
    assert b.try_take(KEY, lim)[0] is not None


# --- a submit rate under one a minute (review finding 7) -------------------------------------


def test_a_submit_rate_slower_than_a_minute_is_kept(tmp_path: Path, clock: FakeClock) -> None:
    """`submits_per_second = 0.01` in models.toml: one every 100 s. The purge forgot every
    submit older than 60 s and admitted the next at 61 s."""
    dead: set[int] = set()
    a, b = proc(tmp_path, clock, 261, dead), proc(tmp_path, clock, 262, dead)
    lim = Limit(concurrent=0, per_second=0.01)
    a.release(a.take(KEY, lim, sleep=clock.sleep))
    clock.sleep(61)
    b.held(key_for("wan2.7-i2v", ROOT))  # another model's look purges too
    assert b.try_take(KEY, lim) == (None, pytest.approx(39.0))
    clock.sleep(38.9)
    assert b.try_take(KEY, lim)[0] is None
    clock.sleep(0.2)
    assert b.try_take(KEY, lim)[0] is not None


def test_old_submits_are_still_forgotten(tmp_path: Path, clock: FakeClock) -> None:
    import sqlite3

    dead: set[int] = set()
    a = proc(tmp_path, clock, 271, dead)
    lim = Limit(concurrent=0, per_second=2)
    for _ in range(400):  # 200 s of submits at 2 a second
        a.release(a.take(KEY, lim, sleep=clock.sleep))
    with sqlite3.connect(tmp_path / "journal.db") as db:
        (n,), = db.execute("SELECT COUNT(*) FROM lease_submits").fetchall()
    db.close()
    assert 100 <= n <= 122  # the last minute's, no more


def test_a_fast_submit_rate_counts_every_submit_of_its_second(tmp_path: Path,
                                                              clock: FakeClock) -> None:
    """A user's 40 a second: only 32 submits were read back, so the window never filled."""
    dead: set[int] = set()
    a = proc(tmp_path, clock, 281, dead)
    lim = Limit(concurrent=0, per_second=40)
    for _ in range(40):
        lease, _ = a.try_take(KEY, lim)
        assert lease is not None
        a.release(lease)
    assert a.try_take(KEY, lim)[0] is None


def test_a_lease_left_to_its_task_outlives_its_holder_until_the_task_ends(
        tmp_path: Path, clock: FakeClock) -> None:
    """`wanvid submit` (review F13): its lease belongs to its task once the POST named it;
    the holder giving back all it holds, exiting, dying frees nothing; the task's end
    (the journal's status, or a release by task) does, and so does the orphan bound."""
    from wanvid.journal import Journal
    from wanvid.leases import ORPHAN_MIN_AGE

    dead: set[int] = set()
    a, b = leases(tmp_path, clock, 901, dead), leases(tmp_path, clock, 902, dead)
    lim = Limit(concurrent=2, per_second=0)
    la, _ = a.try_take(KEY, lim)
    lx, _ = a.try_take(KEY, lim)
    assert la is not None and lx is not None
    a.leave(la, "task-a")
    a.leave(lx, "task-x")
    assert a.mine == set()
    a.release(la)
    a.release_mine()  # the submit's exit
    dead.add(901)
    assert b.held(KEY) == 2
    assert b.try_take(KEY, lim)[0] is None
    assert b.last_wait is not None and b.last_wait.orphans == ("task-a", "task-x")
    with Journal(tmp_path / "journal.db", now=clock.now) as j:
        j.record_submit("task-a", model="m", base_url="http://h", params={}, inputs=[])
        j.update_status("task-a", "SUCCEEDED")  # `wanvid status` saw it end
    assert b.held(KEY) == 1
    clock.sleep(ORPHAN_MIN_AGE + 1)  # task-x: nobody saw it end; the bound frees it
    assert b.held(KEY) == 0
