"""One machine, one account: wanvid processes sharing a journal share the account's limits.

The service allows each account a few tasks of a model at once (``concurrent_tasks``) and a
few submissions of a model per second (``submits_per_second``), per the catalogue (``wanvid
models --json``; a user's ``models.toml`` overrides them). Several wanvid processes
(``xargs -P 8 wanvid generate ...``) know nothing of each other, so most of their submits
would be throttled and retried. Instead each takes a *lease* in the journal's database
before it submits:

* a lease is one row (model and API root, the holder's pid, the task once created); a
  submit goes ahead only while fewer than ``concurrent_tasks`` leases of that model are
  held, and at most ``submits_per_second`` leases of it were taken in the last second;
  otherwise the process waits, polling the table, and says so once on stderr;
* ``generate`` keeps its lease until its wait sees the task end (then the next process
  in line goes); a process that dies leaves a lease whose pid is gone, which the next
  process to look removes;
* task queries of all the processes together keep under the account's rate (20 a second
  by default): each books the next free moment in a shared schedule (``query_delay``);
* the decisions are pure functions (``admit``) over what the table holds; the table's
  reads and writes are one short ``BEGIN IMMEDIATE`` transaction each, on a connection of
  its own to the journal's file; the tables are the journal's (schema 4, ``wanvid.journal``),
  and this connection brings an older journal up to date as the journal itself would.
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

@dataclass(frozen=True)
class Limit:
    """The account's limits for one model (catalogue values)."""

    concurrent: int  # tasks at once; 0: no limit
    per_second: float  # submits per second; 0: no limit


def admit(held: int, recent: Sequence[float], limit: Limit, now: float) -> float:
    """0 when a new submit may go ahead now, given ``held`` live leases of the model and
    the times of its ``recent`` submits; else a hint of how long to wait (seconds)."""
    if limit.concurrent > 0 and held >= limit.concurrent:
        return POLL
    if limit.per_second > 0:
        window = [t for t in recent if now - 1.0 < t <= now]
        allowed = max(1, int(limit.per_second))
        if len(window) >= allowed:
            return max(0.001, min(window) + 1.0 - now)
        if limit.per_second < 1 and recent and now - max(recent) < 1 / limit.per_second:
            return max(0.001, max(recent) + 1 / limit.per_second - now)
    return 0.0


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


class Leases:
    """The lease table of one journal file (see the module docstring)."""

    def __init__(self, path: Path, *, now: Callable[[], float] = time.time,
                 pid: int | None = None, is_alive: Callable[[int], bool] = alive) -> None:
        self.path = Path(path)
        self.now = now
        self.pid = os.getpid() if pid is None else pid
        self.is_alive = is_alive
        self._db: sqlite3.Connection | None = None
        self.mine: set[int] = set()

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

    def _purge(self, db: sqlite3.Connection, now: float) -> None:
        for lid, pid, taken in db.execute("SELECT id, pid, taken_at FROM leases").fetchall():
            if (pid != self.pid and not self.is_alive(pid)) or now - taken > MAX_AGE:
                db.execute("DELETE FROM leases WHERE id = ?", (lid,))
        db.execute("DELETE FROM lease_submits WHERE at < ?", (now - 60.0,))

    def try_take(self, key: str, limit: Limit) -> tuple[int | None, float]:
        """(lease id, 0) when a slot was free and is now held; (None, seconds to wait)."""
        def body(db: sqlite3.Connection) -> tuple[int | None, float]:
            now = self.now()
            self._purge(db, now)
            held = db.execute("SELECT COUNT(*) FROM leases WHERE key = ?", (key,)).fetchone()[0]
            recent = [r[0] for r in db.execute(
                "SELECT at FROM lease_submits WHERE key = ? ORDER BY at DESC LIMIT 32",
                (key,)).fetchall()]
            wait = admit(int(held), recent, limit, now)
            if wait > 0:
                return None, wait
            cur = db.execute("INSERT INTO leases (key, pid, taken_at) VALUES (?, ?, ?)",
                             (key, self.pid, now))
            db.execute("INSERT INTO lease_submits (key, at) VALUES (?, ?)", (key, now))
            return int(cur.lastrowid or 0), 0.0

        got = self._tx(body)
        assert isinstance(got, tuple)
        if got[0] is not None:
            self.mine.add(got[0])
        return got

    def held(self, key: str) -> int:
        """Live leases of ``key`` (for messages)."""
        def body(db: sqlite3.Connection) -> int:
            self._purge(db, self.now())
            return int(db.execute("SELECT COUNT(*) FROM leases WHERE key = ?",
                                  (key,)).fetchone()[0])

        n = self._tx(body)
        assert isinstance(n, int)
        return n

    def take(self, key: str, limit: Limit, *, sleep: Callable[[float], None],
             deadline_left: Callable[[], float | None] = lambda: None,
             on_wait: Callable[[int], None] | None = None) -> int:
        """Wait for a slot and hold it; ``on_wait(held)`` is called once if it has to
        wait. ``DeadlineExceeded`` when ``deadline_left()`` runs out first."""
        told = False
        while True:
            lease, wait = self.try_take(key, limit)
            if lease is not None:
                return lease
            if not told and on_wait is not None and wait >= POLL:
                told = True
                on_wait(self.held(key))
            left = deadline_left()
            if left is not None and left <= wait:
                raise DeadlineExceeded("--timeout reached while waiting for the account's "
                                       "limit (other wanvid processes hold every slot); "
                                       "nothing was sent")
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
        a live process holds one for it already."""
        def body(db: sqlite3.Connection) -> int | None:
            now = self.now()
            self._purge(db, now)
            if db.execute("SELECT 1 FROM leases WHERE task_id = ?", (task_id,)).fetchone():
                return None
            cur = db.execute("INSERT INTO leases (key, pid, task_id, taken_at) "
                             "VALUES (?, ?, ?, ?)", (key, self.pid, task_id, now))
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

    def release(self, lease: int | None = None, *, task_id: str | None = None) -> None:
        if lease is not None:
            # Only this process's own: a lease id is never handed out twice (AUTOINCREMENT),
            # and the pid guards against a table written by something else.
            self._tx(lambda db: db.execute("DELETE FROM leases WHERE id = ? AND pid = ?",
                                           (lease, self.pid)))
            self.mine.discard(lease)
        if task_id is not None:
            self._tx(lambda db: db.execute("DELETE FROM leases WHERE task_id = ? AND pid = ?",
                                           (task_id, self.pid)))

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

