"""One machine, one account: wanvid processes sharing a journal share the account's limits.

The service allows each account a few tasks of a model at once (``concurrent_tasks``) and a
few submissions of a model per second (``submits_per_second``), per the catalogue (``wanvid
models --json``; a user's ``models.toml`` overrides them). Several wanvid processes
(``xargs -P 8 wanvid generate ...``) know nothing of each other, so most of their submits
would be throttled and retried. Instead each takes a *lease* in the journal's database
before it submits:

* a lease is one row (model and API root, the holder: its pid and start time, the task
  once created); a submit goes ahead only while fewer than ``concurrent_tasks`` leases of
  that model are held, and at most ``submits_per_second`` leases of it were taken in the
  last second; otherwise the process waits, polling the table, and says once on stderr
  which of the two it waits for (``Wait.describe``);
* ``generate`` keeps its lease until its wait sees the task end (then the next process
  in line goes); ``submit``, which exits while its task runs, leaves its lease to the task
  (``Leases.leave``: an orphan from then on, below). A lease is dropped when the journal
  shows its task ended (a terminal status, or its video saved), whoever saw it end (a
  wait, ``status``, ``tasks --remote``);
* a holder that is gone (no process has its pid, or the process with that pid started at
  another time: the pid was reused, a container's pid 1 after a restart, a recycled pid
  after a reboot; Linux says when a process started, elsewhere the pid alone decides)
  does not free its slot by going: its task may still run at the service. The next
  process to look keeps such a lease *orphaned* (``orphan_keeps``): one whose task is
  known stays until any wanvid process sees that task end (its wait, ``wait --pending``,
  or a submit waiting for the slot, which asks the service about the orphans' tasks
  itself) or ``orphan_age`` passes; one that names no task yet follows the submit intent
  its holder wrote (``wanvid.intents``): none, or one closed as not created, means no
  task exists (dropped now); one that names the task makes the lease that task's; one
  still open (killed during the POST) keeps the slot ``POSTING_MAX_AGE`` at most;
* task queries of all the processes together keep under the account's rate (20 a second
  by default): each books the next free moment in a shared schedule (``query_delay``);
* the decisions are pure functions (``admit``, ``admission``) over what the table holds;
  the table's reads and writes are one short ``BEGIN IMMEDIATE`` transaction each, on a
  connection of its own to the journal's file; the tables are the journal's (schema 5,
  ``wanvid.journal``), and this connection brings an older journal up to date as the
  journal itself would.

Processes sharing a journal must see each other's pids (one pid namespace): the holder of
a lease is known by its pid and start time.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wanvid.errors import DeadlineExceeded, JournalError

POLL = 0.25  # seconds between looks at the table while waiting for a slot
ACCOUNT_QPS = 20.0  # task queries per second the account allows, all processes together
BUSY_TIMEOUT_MS = 30_000
MAX_AGE = 86400.0  # a lease older than this is dropped whatever its pid (24 h: tasks expire)
# An orphaned lease (its holder is gone, its task not seen to end) is kept at most this long
# after it was taken, or twice the longest the journal saw a task of its model take, if
# longer (never beyond MAX_AGE): a task nobody follows cannot block its slot for ever.
ORPHAN_MIN_AGE = 1800.0
# ... and one whose holder died during its submit's POST (its intent still open: a task may
# exist, and nothing names it) this long at most, unless the intent is settled sooner.
POSTING_MAX_AGE = 300.0
ORPHAN_POLL = 5.0  # seconds between a waiting submit's questions about orphaned tasks
# Submits counted for the submits-per-second rule are kept this long, and the last of each
# model always (the rule of a rate under one a second looks at the last one alone).
SUBMITS_KEPT = 60.0
# The holder of a lease that belongs to its task (``Leases.leave``): no process has pid 0.
TASK_OWNED = 0
SLOTS, RATE = "slots", "rate"  # what a submit waits for (``Wait.reason``)
# A task in one of these states (or saved) holds no slot at the service.
ENDED = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN", "EXPIRED")

@dataclass(frozen=True)
class Limit:
    """The account's limits for one model (catalogue values)."""

    concurrent: int  # tasks at once; 0: no limit
    per_second: float  # submits per second; 0: no limit


@dataclass(frozen=True)
class Wait:
    """Why a submit of a model cannot go ahead now, as the lease table showed it in the
    same transaction that refused it."""

    seconds: float  # worth waiting before looking again
    reason: str  # SLOTS: every slot is held; RATE: the submits-per-second window is full
    limit: Limit
    others: int = 0  # leases of the model held by other processes
    mine: int = 0  # ... and by this one
    recent: int = 0  # submits of the model in the last second (RATE), all processes
    since_last: float = 0.0  # seconds since the model's last submit (RATE)
    orphans: tuple[str, ...] = ()  # task ids of ``others`` whose holder is gone (SLOTS)
    unnamed: int = 0  # ``others`` whose holder died during its POST (no task id known)

    def describe(self, model: str) -> str:
        """The wait in words, for the one line on stderr that says a submit waits."""
        if self.reason == SLOTS:
            own = f" (and {self.mine} of this one)" if self.mine else ""
            gone = len(self.orphans) + self.unnamed
            left = (f" ({gone} of them left by a wanvid process that exited, not seen to "
                    "end yet)" if gone else "")
            return (f"{self.others} {model} task(s) of other wanvid processes{left}{own} "
                    f"hold the account's {self.limit.concurrent} slot(s); waiting for one "
                    "to end")
        if self.limit.per_second < 1:
            return (f"the last {model} submit was {self.since_last:.1f} s ago; the account "
                    f"allows one every {1 / self.limit.per_second:g} s; waiting "
                    f"{self.seconds:.1f} s")
        return (f"{self.recent} {model} submit(s) in the last second; the account allows "
                f"{self.limit.per_second:g} per second; waiting {self.seconds:.1f} s")


def admission(held: int, recent: Sequence[float], limit: Limit, now: float,
              ) -> tuple[float, str]:
    """(0, "") when a new submit may go ahead now, given ``held`` live leases of the model
    and the times of its ``recent`` submits; else (a hint of how long to wait in seconds,
    ``SLOTS`` or ``RATE``: what is full)."""
    if limit.concurrent > 0 and held >= limit.concurrent:
        return POLL, SLOTS
    if limit.per_second > 0:
        window = [t for t in recent if now - 1.0 < t <= now]
        allowed = max(1, int(limit.per_second))
        if len(window) >= allowed:
            return max(0.001, min(window) + 1.0 - now), RATE
        if limit.per_second < 1 and recent and now - max(recent) < 1 / limit.per_second:
            return max(0.001, max(recent) + 1 / limit.per_second - now), RATE
    return 0.0, ""


def admit(held: int, recent: Sequence[float], limit: Limit, now: float) -> float:
    """``admission``'s wait alone: 0 when a new submit may go ahead now."""
    return admission(held, recent, limit, now)[0]


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


_boot: list[str] = []


def _boot_id() -> str:
    """This boot's id (Linux), "" where there is none: start times count from boot."""
    if not _boot:
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
                _boot.append(f.read().strip())
        except (OSError, ValueError):
            _boot.append("")
    return _boot[0]


def start_time(pid: int) -> str | None:
    """When process ``pid`` started, as text that another process with the same pid never
    shares (Linux: ``/proc/<pid>/stat`` field 22, clock ticks since boot, with the boot's
    id); None where the system does not say (then the pid alone names a process). A
    process that has exited but not been reaped yet (a zombie: ``kill`` still finds its
    pid) gets a time no live process has, so it is never taken for a holder."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            ticks = stat_starttime(f.read())
    except OSError:
        return None
    if ticks is None:
        return None
    boot = _boot_id()
    return f"{boot}/{ticks}" if boot else ticks


def stat_starttime(stat: bytes) -> str | None:
    """Field 22 (starttime) of a ``/proc/<pid>/stat`` line, with " exited" after it when
    field 3 (state) says the process is a zombie or dead. The line is "pid (comm) state
    ppid ...", and comm may hold spaces and parentheses: the fields after its last ')'
    start at field 3, so starttime is the 20th of them."""
    fields = stat[stat.rfind(b")") + 1:].split()
    if len(fields) < 20 or not fields[19].isdigit():
        return None
    gone = " exited" if fields[0] in (b"Z", b"X", b"x") else ""
    return fields[19].decode() + gone


def holder_alive(pid: int | None, started: str | None, *,
                 is_alive: Callable[[int], bool] | None = None,
                 started_of: Callable[[int], str | None] | None = None) -> bool:
    """Whether the process that wrote ``pid`` and ``started`` (``start_time``) is still
    running: a live process with that pid that started at another time is not it. A row
    that names no start time (an older wanvid's, or a system that does not say) is judged
    by its pid alone. (``alive`` and ``start_time`` unless given.)"""
    if pid is None or not (is_alive or alive)(pid):
        return False
    if started is None:
        return True
    now_started = (started_of or start_time)(pid)
    return now_started is None or now_started == started


_me: dict[int, str | None] = {}


def me() -> tuple[int, str | None]:
    """This process: (pid, start time); asked of the system once per pid (a fork is
    another process)."""
    pid = os.getpid()
    if pid not in _me:
        _me.clear()
        _me[pid] = start_time(pid)
    return pid, _me[pid]


class Leases:
    """The lease table of one journal file (see the module docstring)."""

    def __init__(self, path: Path, *, now: Callable[[], float] = time.time,
                 pid: int | None = None, is_alive: Callable[[int], bool] = alive,
                 started_of: Callable[[int], str | None] = start_time) -> None:
        self.path = Path(path)
        self.now = now
        self.pid = os.getpid() if pid is None else pid
        self.is_alive = is_alive
        self.started_of = started_of
        self.started = (me()[1] if pid is None and started_of is start_time
                        else started_of(self.pid))
        self._db: sqlite3.Connection | None = None
        self.mine: set[int] = set()
        self.last_wait: Wait | None = None  # why the last try_take found no slot

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                from wanvid.journal import _open_private

                # Owner-only, as the journal creates it; never an open/close of a file a
                # connection of this process holds: closing any descriptor of a file drops
                # the process's POSIX locks on it, SQLite's too (lost journal writes).
                if not self.path.exists():
                    _open_private(self.path)
                db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                     isolation_level=None, check_same_thread=False)
                db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            except (OSError, sqlite3.Error) as e:
                raise JournalError(f"{self.path}: cannot open the task journal: {e}") from e
            try:
                self._upgrade(db)
            except JournalError:
                db.close()
                raise
            self._db = db
        return self._db

    def _upgrade(self, db: sqlite3.Connection) -> None:
        """The journal's own schema steps (``wanvid.journal.upgrade``), for a file this
        connection opens before any ``Journal`` did (or one an older wanvid left)."""
        from wanvid.journal import SCHEMA_VERSION, upgrade

        try:
            if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                upgrade(db, self.path)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise JournalError(f"{self.path}: cannot use the task journal's leases: {e}") from e

    def _tx(self, body: Callable[[sqlite3.Connection], object]) -> object:
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                out = body(db)
                db.execute("COMMIT")
                return out
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise JournalError(f"{self.path}: cannot use the task journal's leases: {e}") from e

    def _holds(self, pid: int, started: str | None) -> bool:
        """Whether the holder a lease names is still running (this process included); a
        lease left to its task (``TASK_OWNED``) has none."""
        if pid == TASK_OWNED:
            return False
        if pid == self.pid and (started is None or self.started is None
                                or started == self.started):
            return True
        return holder_alive(pid, started, is_alive=self.is_alive, started_of=self.started_of)

    def _purge(self, db: sqlite3.Connection, now: float) -> dict[int, str | None]:
        """Drop the leases that hold no slot; the orphaned ones kept (their holder is
        gone), by id: their task id, None when no task is named yet."""
        # A task the journal shows ended holds no slot, whoever took the lease for it and
        # whoever saw it end (``wait --pending`` in another process, ``status``).
        marks = ", ".join("?" * len(ENDED))
        db.execute("DELETE FROM leases WHERE task_id IS NOT NULL AND EXISTS (SELECT 1 FROM "
                   "tasks t WHERE t.task_id = leases.task_id AND (t.status IN "
                   f"({marks}) OR t.downloaded_at IS NOT NULL))", ENDED)
        orphans: dict[int, str | None] = {}
        for lid, key, pid, started, task, taken in db.execute(
                "SELECT id, key, pid, started, task_id, taken_at FROM leases").fetchall():
            st = None if started is None else str(started)
            if now - taken <= MAX_AGE and self._holds(int(pid), st):
                continue
            kept, task = orphan_keeps(db, now, key=str(key), pid=int(pid), started=st,
                                      task_id=None if task is None else str(task),
                                      taken_at=float(taken))
            if not kept:
                db.execute("DELETE FROM leases WHERE id = ?", (lid,))
                continue
            if task is not None:
                db.execute("UPDATE leases SET task_id = ? WHERE id = ?", (task, lid))
            orphans[int(lid)] = task
        # Every submit of the last minute, and each model's last one whatever its age: a
        # rate under one a second (``submits_per_second = 0.01`` in models.toml: one every
        # 100 s) is judged by the time of the last submit (``admission``).
        db.execute("DELETE FROM lease_submits WHERE at < ? AND at < (SELECT MAX(s.at) FROM "
                   "lease_submits s WHERE s.key = lease_submits.key)", (now - SUBMITS_KEPT,))
        return orphans

    def try_take(self, key: str, limit: Limit) -> tuple[int | None, float]:
        """(lease id, 0) when a slot was free and is now held; (None, seconds to wait),
        and ``last_wait`` says why."""
        def body(db: sqlite3.Connection) -> tuple[int | None, float | Wait]:
            now = self.now()
            orphans = self._purge(db, now)
            ids = [int(r[0]) for r in db.execute("SELECT id FROM leases WHERE key = ?",
                                                  (key,)).fetchall()]
            recent = [float(r[0]) for r in db.execute(
                "SELECT at FROM lease_submits WHERE key = ? ORDER BY at DESC LIMIT ?",
                (key, max(32, int(limit.per_second) + 1))).fetchall()]
            wait, reason = admission(len(ids), recent, limit, now)
            if wait > 0:
                mine = sum(1 for i in ids if i in self.mine)
                left = [orphans[i] for i in ids if i in orphans and i not in self.mine]
                return None, Wait(wait, reason, limit, others=len(ids) - mine, mine=mine,
                                  recent=sum(1 for t in recent if now - 1.0 < t <= now),
                                  since_last=now - max(recent) if recent else 0.0,
                                  orphans=tuple(sorted({t for t in left if t is not None})),
                                  unnamed=sum(1 for t in left if t is None))
            cur = db.execute("INSERT INTO leases (key, pid, started, taken_at) "
                             "VALUES (?, ?, ?, ?)", (key, self.pid, self.started, now))
            db.execute("INSERT INTO lease_submits (key, at) VALUES (?, ?)", (key, now))
            return int(cur.lastrowid or 0), 0.0

        got = self._tx(body)
        assert isinstance(got, tuple)
        lease, wait = got
        if isinstance(wait, Wait):
            self.last_wait = wait
            return None, wait.seconds
        assert lease is not None
        self.mine.add(lease)
        return lease, 0.0

    def held(self, key: str) -> int:
        """Live leases of ``key``."""
        def body(db: sqlite3.Connection) -> int:
            self._purge(db, self.now())
            return int(db.execute("SELECT COUNT(*) FROM leases WHERE key = ?",
                                  (key,)).fetchone()[0])

        n = self._tx(body)
        assert isinstance(n, int)
        return n

    def take(self, key: str, limit: Limit, *, sleep: Callable[[float], None],
             deadline_left: Callable[[], float | None] = lambda: None,
             on_wait: Callable[[Wait], None] | None = None) -> int:
        """Wait for a slot and hold it; ``on_wait(why)`` is called once for each reason it
        has to wait (every slot held; the submit rate), with what the table showed when it
        refused. ``DeadlineExceeded`` when ``deadline_left()`` runs out first."""
        told: set[str] = set()
        while True:
            lease, wait = self.try_take(key, limit)
            if lease is not None:
                return lease
            why = self.last_wait
            if (why is not None and why.reason not in told and on_wait is not None
                    and wait >= POLL):
                told.add(why.reason)
                on_wait(why)
            left = deadline_left()
            if left is not None and left <= wait:
                what = ("other wanvid processes hold every slot" if why is None
                        or why.reason == SLOTS else "the account's submits per second")
                raise DeadlineExceeded("--timeout reached while waiting for the account's "
                                       f"limit ({what}); nothing was sent")
            sleep(wait)

    def query_delay(self, rate: float, key: str = "task queries") -> float:
        """Seconds to wait before the next task query, so that all the processes sharing
        this journal make at most ``rate`` per second together (a shared schedule: each
        call books the next free moment)."""
        def body(db: sqlite3.Connection) -> float:
            now = self.now()
            row = db.execute("SELECT next_at FROM lease_rates WHERE key = ?", (key,)).fetchone()
            at = max(now, float(row[0])) if row is not None else now
            if at - now > 60.0:  # a clock that went back, or a bad row: start afresh
                at = now
            db.execute("INSERT OR REPLACE INTO lease_rates (key, next_at) VALUES (?, ?)",
                       (key, at + 1.0 / rate))
            return at - now

        wait = self._tx(body)
        assert isinstance(wait, float)
        return wait

    def adopt(self, key: str, task_id: str) -> int | None:
        """Hold a lease for a task already created (an earlier run's, waited for now):
        taken whatever the limit (the task runs either way), no submit counted; None when
        a lease holds its slot already (a live process's, or one its gone holder left)."""
        def body(db: sqlite3.Connection) -> int | None:
            now = self.now()
            self._purge(db, now)
            if db.execute("SELECT 1 FROM leases WHERE task_id = ?", (task_id,)).fetchone():
                return None
            cur = db.execute("INSERT INTO leases (key, pid, started, task_id, taken_at) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (key, self.pid, self.started, task_id, now))
            return int(cur.lastrowid or 0)

        got = self._tx(body)
        assert got is None or isinstance(got, int)
        if got is not None:
            self.mine.add(got)
        return got

    def bind(self, lease: int, task_id: str) -> None:
        """The lease now stands for this task (released when a wait sees it end)."""
        self._tx(lambda db: db.execute("UPDATE leases SET task_id = ? WHERE id = ? AND pid = ?",
                                       (task_id, lease, self.pid)))

    def leave(self, lease: int, task_id: str) -> None:
        """The lease now stands for this task and belongs to it, no longer to this process
        (``wanvid submit``: the task runs on after the process exits): held by no process
        (pid ``TASK_OWNED``), so never given back by this one's exit, it is an orphan whose
        task is known (``orphan_keeps``): kept until a wanvid process sees the task end or
        ``orphan_age`` passes."""
        self._tx(lambda db: db.execute(
            "UPDATE leases SET task_id = ?, pid = ?, started = NULL WHERE id = ? AND pid = ?",
            (task_id, TASK_OWNED, lease, self.pid)))
        self.mine.discard(lease)

    def release(self, lease: int | None = None, *, task_id: str | None = None) -> None:
        """Give back ``lease`` (this process's own only), and every lease of ``task_id``
        (its task ended)."""
        if lease is not None:
            # Only this process's own: a lease id is never handed out twice (AUTOINCREMENT),
            # and the pid guards against a table written by something else.
            self._tx(lambda db: db.execute("DELETE FROM leases WHERE id = ? AND pid = ?",
                                           (lease, self.pid)))
            self.mine.discard(lease)
        if task_id is not None:
            # The task ended: whoever holds its lease (another process waiting for it too,
            # or one that took it before this one adopted it), its slot is free.
            self._tx(lambda db: db.execute("DELETE FROM leases WHERE task_id = ?",
                                           (task_id,)))

    def release_mine(self) -> None:
        """Give back every lease this process still holds (its tasks ended or it exits)."""
        for lease in list(self.mine):
            try:
                self.release(lease)
            except JournalError:
                pass

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def key_for(model: str, base_url: str) -> str:
    """Leases are per model and API root (a root stands for a region's account)."""
    return f"{base_url.rstrip('/')}|{model}"


def orphan_age(db: sqlite3.Connection, model: str) -> float:
    """How long after it was taken an orphaned lease of ``model`` is kept at most: twice
    the longest a task of the model took from submit to end in the journal's history,
    at least ``ORPHAN_MIN_AGE``, at most ``MAX_AGE``."""
    row = db.execute("SELECT MAX(ended - submitted) FROM task_times WHERE model = ?",
                     (model,)).fetchone()
    longest = float(row[0]) if row is not None and row[0] is not None else 0.0
    return min(MAX_AGE, max(ORPHAN_MIN_AGE, 2 * longest))


def orphan_keeps(db: sqlite3.Connection, now: float, *, key: str, pid: int,
                 started: str | None, task_id: str | None, taken_at: float,
                 ) -> tuple[bool, str | None]:
    """Whether a lease whose holder is gone still holds its slot, and the task it stands
    for (None: unknown). The holder's death ends nothing at the service:

    * a lease that names its task holds the slot until the task is seen to end (its lease
      is dropped then, by the journal's status or by whoever saw it) or ``orphan_age``
      passes since the lease was taken;
    * one that names no task (the holder died between taking the slot and binding the
      task to it) follows the intent its holder wrote before the POST (``wanvid.intents``:
      the first of the lease's model and root, by that pid and start time, at or after
      the lease): no intent means no POST was made, and one closed as not created that
      no task exists: the slot is free. An intent that names its task (the answer came;
      or ``wait --pending`` found the task) makes the lease that task's. An open one (the
      POST was in flight: a task may exist) keeps the slot ``POSTING_MAX_AGE`` at most.
    """
    base, _, model = key.rpartition("|")
    if now - taken_at > MAX_AGE:
        return False, task_id
    if task_id is None:
        row = db.execute(
            "SELECT state, task_id FROM intents WHERE pid = ? AND started IS ? AND model = ? "
            "AND rtrim(base_url, '/') = ? AND created_at >= ? "
            "ORDER BY created_at, intent_id LIMIT 1",
            (pid, started, model, base, taken_at)).fetchone()
        if row is None:
            return False, None  # died before its POST: nothing was sent
        state, named = row
        if named is None:
            return state == "open" and now - taken_at <= POSTING_MAX_AGE, None
        task_id = str(named)
        marks = ", ".join("?" * len(ENDED))
        if db.execute(f"SELECT 1 FROM tasks WHERE task_id = ? AND (status IN ({marks}) OR "
                      "downloaded_at IS NOT NULL)", (task_id, *ENDED)).fetchone():
            return False, task_id
    return now - taken_at <= orphan_age(db, model), task_id

