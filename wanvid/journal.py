"""Durable task journal: every task id the service hands out, and what became of it.

A task costs money the moment the service returns its id, and its video URL is only good
for 24 hours, so the id is written down *before* anything else can go wrong. The journal is
one SQLite file in WAL mode; each write is one short ``BEGIN IMMEDIATE`` transaction and
every connection waits (``busy_timeout``) rather than failing, so many wanvid processes
(``xargs -P 8``) can share it.

The journal never holds image data or the API key: ``record_submit`` abbreviates any
``data:`` URI and drops any parameter whose name looks like a credential.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import sqlite3
import threading
import time
from calendar import timegm
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import platformdirs

from .errors import WanvidError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
URL_VALIDITY_S = 24 * 3600  # the API reference: video_url is valid for 24 hours

STATE_DIR_ENV = "WANVID_STATE_DIR"
JOURNAL_NAME = "journal.db"

ACTIVE_STATUSES = frozenset({"PENDING", "RUNNING"})
# EXPIRED: SUCCEEDED, never downloaded, and the service no longer knows it (24 h passed).
FAILED_STATUSES = frozenset({"FAILED", "CANCELED", "UNKNOWN", "EXPIRED"})
TERMINAL_STATUSES = FAILED_STATUSES | {"SUCCEEDED"}

# A later poll must not move a task backwards (two processes may poll the same task and
# commit out of order): PENDING < RUNNING < UNKNOWN < a real outcome. UNKNOWN only means
# the service forgot the id after 24 h, so it never overrides a known outcome.
_RANK = {"PENDING": 0, "RUNNING": 1, "UNKNOWN": 2, "SUCCEEDED": 3, "FAILED": 3, "CANCELED": 3,
         "EXPIRED": 4}

_SECRET_KEY = re.compile(r"(api[_-]?key|authorization|token|secret|password)", re.IGNORECASE)
_DATA_URI_KEEP = 40  # characters of a data: URI kept, enough to show its media type

_COLUMNS = (
    "task_id", "model", "base_url", "params", "inputs", "submitted_at", "status",
    "updated_at", "video_url", "expires_at", "code", "message", "path", "size", "sha256",
    "downloaded_at", "fingerprint", "output",
)

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # version reached -> statements that get there from the version before
    1: (
        """CREATE TABLE IF NOT EXISTS tasks (
            task_id       TEXT PRIMARY KEY,
            model         TEXT NOT NULL DEFAULT '',
            base_url      TEXT NOT NULL DEFAULT '',
            params        TEXT NOT NULL DEFAULT '{}',
            inputs        TEXT NOT NULL DEFAULT '[]',
            submitted_at  REAL NOT NULL,
            status        TEXT NOT NULL,
            updated_at    REAL NOT NULL,
            video_url     TEXT,
            expires_at    REAL,
            code          TEXT,
            message       TEXT,
            path          TEXT,
            size          INTEGER,
            sha256        TEXT,
            downloaded_at REAL,
            fingerprint   TEXT,
            output        TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS tasks_submitted ON tasks (submitted_at)",
        "CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status)",
        "CREATE INDEX IF NOT EXISTS tasks_fingerprint ON tasks (fingerprint)",
    ),
}


class JournalError(WanvidError):
    """The journal cannot be opened, read or written, or is from a newer wanvid.
    (Exit status: WanvidError's default.)"""


@dataclass
class TaskRecord:
    task_id: str
    model: str
    base_url: str
    params: dict[str, Any]
    inputs: list[str]
    submitted_at: float
    status: str
    updated_at: float
    video_url: str | None
    expires_at: float | None
    code: str | None
    message: str | None
    path: str | None
    size: int | None
    sha256: str | None
    downloaded_at: float | None
    fingerprint: str | None
    output: str | None  # the -o template/path requested at submit time, if any

    @property
    def downloaded(self) -> bool:
        return self.downloaded_at is not None

    @property
    def done(self) -> bool:
        """Nothing left to do: the video is on disk, or the task ended without one."""
        return self.downloaded or self.status in FAILED_STATUSES

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def to_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in _COLUMNS}


def default_journal_path(environ: Mapping[str, str]) -> Path:
    """``$WANVID_STATE_DIR/journal.db``, else the platform's per-user state directory."""
    state_dir = environ.get(STATE_DIR_ENV, "").strip()
    base = Path(state_dir).expanduser() if state_dir else Path(
        platformdirs.user_state_dir("wanvid"))
    return base / JOURNAL_NAME


def _oss_v4_expiry(query: dict[str, str], date_key: str, expires_key: str) -> float | None:
    date, ttl = query.get(date_key), query.get(expires_key)
    if not date or not ttl or not ttl.isdigit():
        return None
    try:
        start = time.strptime(date, "%Y%m%dT%H%M%SZ")
    except ValueError:
        return None
    return float(timegm(start) + int(ttl))


def expires_from_url(url: str) -> float | None:
    """Epoch seconds at which a signed URL stops working, or None if it doesn't say.

    OSS V1 signatures carry ``Expires=<epoch seconds>`` (what the service returns today);
    V4 signatures carry a start date plus a lifetime (``x-oss-date`` + ``x-oss-expires``,
    or the S3-style ``X-Amz-Date`` + ``X-Amz-Expires``).
    """
    try:
        pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        return None
    query = {k.lower(): v for k, v in pairs}
    value = query.get("expires", "").strip()
    if value.isdigit() and len(value) <= 12:
        return float(value)
    return (_oss_v4_expiry(query, "x-oss-date", "x-oss-expires")
            or _oss_v4_expiry(query, "x-amz-date", "x-amz-expires"))


def _scrub(value: Any) -> Any:
    """Drop anything that must never reach the disk: image data and credentials."""
    if isinstance(value, str):
        if value[:5].lower() == "data:":
            head = value[:_DATA_URI_KEEP].split(",", 1)[0]
            return f"{head},…({len(value)} chars omitted)"
        return value
    if isinstance(value, Mapping):
        return {str(k): _scrub(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes omitted>"
    return value


def _open_private(path: Path) -> None:
    """Create the journal file (and its directory) readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    if os.name == "posix" and (os.stat(path).st_mode & 0o077):
        os.chmod(path, 0o600)


class Journal:
    """The task journal. One instance per process; safe to share between threads."""

    def __init__(self, path: Path, *, now: Callable[[], float] = time.time) -> None:
        self.path = Path(path).expanduser()
        self._now = now
        self._lock = threading.RLock()
        try:
            _open_private(self.path)
            # SQLite creates the -wal and -shm files with the main file's permissions.
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                       isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise JournalError(f"{self.path}: cannot open the task journal: {e}") from e
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._set_wal()
            self._db.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL
            self._migrate()
        except sqlite3.Error as e:
            self._db.close()
            raise JournalError(f"{self.path}: cannot use the task journal: {e}") from e

    # -- plumbing ---------------------------------------------------------------------

    def _set_wal(self) -> None:
        # Switching to WAL needs a moment of exclusive access; when many processes open a
        # fresh journal at once, some can see SQLITE_BUSY despite the busy timeout.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL").fetchone()
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, holding the write lock from the start."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise JournalError(f"{self.path}: cannot write the task journal: {e}") from e
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as e:
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise JournalError(
                        f"{self.path}: cannot write the task journal: {e}") from e
                raise

    def _migrate(self) -> None:
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"{self.path}: this journal was written by a newer wanvid "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade wanvid")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    db.execute(statement)
            if version != SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _record(row: sqlite3.Row) -> TaskRecord:
        d = dict(row)
        d["params"] = json.loads(d["params"] or "{}")
        d["inputs"] = json.loads(d["inputs"] or "[]")
        return TaskRecord(**{c: d[c] for c in _COLUMNS})

    def _select(self, where: str = "", args: tuple[Any, ...] = (),
                order: str = "submitted_at, rowid") -> list[TaskRecord]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM tasks"
        if where:
            sql += f" WHERE {where}"
        sql += f" ORDER BY {order}"
        with self._lock:
            try:
                rows = self._db.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise JournalError(f"{self.path}: cannot read the task journal: {e}") from e
        return [self._record(r) for r in rows]

    # -- writes -----------------------------------------------------------------------

    def record_submit(self, task_id: str, *, model: str, base_url: str,
                      params: Mapping[str, Any], inputs: list[str], status: str = "PENDING",
                      fingerprint: str | None = None, output: str | None = None) -> None:
        """Write a task down the moment the service returns its id."""
        now = self._now()
        params_json = json.dumps(_scrub(params), ensure_ascii=False, sort_keys=True, default=str)
        inputs_json = json.dumps(_scrub(list(inputs)), ensure_ascii=False, default=str)
        status = status.upper()
        with self._write() as db:
            row = db.execute("SELECT status FROM tasks WHERE task_id = ?",
                             (task_id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO tasks (task_id, model, base_url, params, inputs, "
                    "submitted_at, status, updated_at, fingerprint, output) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (task_id, model, base_url, params_json, inputs_json, now, status, now,
                     fingerprint, output))
            else:  # a poll got there first (another process): fill in what it lacked
                db.execute(
                    "UPDATE tasks SET model = ?, base_url = ?, params = ?, inputs = ?, "
                    "submitted_at = MIN(submitted_at, ?), status = ?, "
                    "fingerprint = COALESCE(?, fingerprint), output = COALESCE(?, output) "
                    "WHERE task_id = ?",
                    (model, base_url, params_json, inputs_json, now,
                     _merge_status(row["status"], status), fingerprint, output, task_id))

    def update_status(self, task_id: str, status: str, *, video_url: str | None = None,
                      code: str | None = None, message: str | None = None) -> None:
        """Record a poll result. Unknown ids get a minimal record (``wait ID`` for a task
        submitted elsewhere is still journaled)."""
        status = status.upper()
        now = self._now()
        with self._write() as db:
            row = db.execute("SELECT submitted_at, status FROM tasks WHERE task_id = ?",
                             (task_id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO tasks (task_id, submitted_at, status, updated_at) "
                    "VALUES (?, ?, ?, ?)", (task_id, now, status, now))
                submitted_at, new_status = now, status
            else:
                submitted_at = row["submitted_at"]
                new_status = _merge_status(row["status"], status)
            expires_at = None
            if video_url:
                expires_at = expires_from_url(video_url) or submitted_at + URL_VALIDITY_S
            db.execute(
                "UPDATE tasks SET status = ?, updated_at = ?, "
                "video_url = COALESCE(?, video_url), expires_at = COALESCE(?, expires_at), "
                "code = COALESCE(?, code), message = COALESCE(?, message) "
                "WHERE task_id = ?",
                (new_status, now, video_url or None, expires_at, code, message, task_id))

    def set_output(self, task_id: str, output: str) -> None:
        """Remember the -o a later command asked for (``wait ID -o X``), so that resuming
        with ``wait --pending`` after an interrupt saves under the same name."""
        now = self._now()
        with self._write() as db:
            cur = db.execute("UPDATE tasks SET output = ? WHERE task_id = ?", (output, task_id))
            if cur.rowcount == 0:
                db.execute(
                    "INSERT INTO tasks (task_id, submitted_at, status, updated_at, output) "
                    "VALUES (?, ?, 'PENDING', ?, ?)", (task_id, now, now, output))

    def record_download(self, task_id: str, *, path: str | os.PathLike[str], size: int,
                        sha256: str) -> None:
        now = self._now()
        with self._write() as db:
            cur = db.execute(
                "UPDATE tasks SET path = ?, size = ?, sha256 = ?, downloaded_at = ?, "
                "updated_at = ? WHERE task_id = ?",
                (os.fspath(path), size, sha256, now, now, task_id))
            if cur.rowcount == 0:
                db.execute(
                    "INSERT INTO tasks (task_id, submitted_at, status, updated_at, path, "
                    "size, sha256, downloaded_at) VALUES (?, ?, 'SUCCEEDED', ?, ?, ?, ?, ?)",
                    (task_id, now, now, os.fspath(path), size, sha256, now))

    # -- reads ------------------------------------------------------------------------

    def get(self, task_id: str) -> TaskRecord | None:
        found = self._select("task_id = ?", (task_id,))
        return found[0] if found else None

    def pending(self, *, include_expired: bool = True) -> list[TaskRecord]:
        """Tasks with something left to do, oldest first: still queued or running, or
        SUCCEEDED but not downloaded. ``include_expired=False`` leaves out SUCCEEDED tasks
        whose video URL has already expired (they can never be downloaded)."""
        where = ("status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELED', 'UNKNOWN', 'EXPIRED') "
                 "OR (status = 'SUCCEEDED' AND downloaded_at IS NULL")
        args: tuple[Any, ...] = ()
        if not include_expired:
            where += " AND (expires_at IS NULL OR expires_at > ?)"
            args = (self._now(),)
        return self._select(where + ")", args)

    def expiring(self, within: float = 7200) -> list[TaskRecord]:
        """SUCCEEDED, not downloaded, and the URL dies within ``within`` seconds (but is
        still alive): soonest first."""
        now = self._now()
        return self._select(
            "status = 'SUCCEEDED' AND downloaded_at IS NULL AND expires_at IS NOT NULL "
            "AND expires_at > ? AND expires_at <= ?", (now, now + within),
            order="expires_at, rowid")

    def find_by_fingerprint(self, fingerprint: str) -> TaskRecord | None:
        """The newest task submitted with this fingerprint (for batch re-runs)."""
        found = self._select("fingerprint = ?", (fingerprint,),
                             order="submitted_at DESC, rowid DESC")
        return found[0] if found else None

    def list(self, *, status: str | None = None, since: float | None = None
             ) -> builtins.list[TaskRecord]:
        """All tasks, oldest first; optionally one status, or submitted at/after ``since``."""
        clauses: builtins.list[str] = []
        args: builtins.list[Any] = []
        if status is not None:
            clauses.append("status = ?")
            args.append(status.upper())
        if since is not None:
            clauses.append("submitted_at >= ?")
            args.append(since)
        return self._select(" AND ".join(clauses), tuple(args))


def _merge_status(old: str, new: str) -> str:
    """The status to keep when ``new`` arrives for a task currently at ``old``."""
    return old if _RANK.get(old, 0) > _RANK.get(new, 0) else new
