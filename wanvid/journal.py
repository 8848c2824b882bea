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
import errno
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from .errors import JournalError
from .statuses import ACTIVE as ACTIVE_STATUSES  # noqa: F401 - re-exported
from .statuses import FAILED_STATES as FAILED_STATUSES
from .statuses import TERMINAL as TERMINAL_STATUSES

SCHEMA_VERSION = 5
BUSY_TIMEOUT_MS = 30_000
URL_VALIDITY_S = 24 * 3600  # the API reference: video_url is valid for 24 hours

STATE_DIR_ENV = "WANVID_STATE_DIR"
JOURNAL_NAME = "journal.db"
HISTORY_SUFFIX = ".history"  # "<journal>.history": a journal with task history lived here
SQLITE_MAGIC = b"SQLite format 3\x00"
QUICK_CHECK_MAX = 16 << 20  # journals up to this size get SQLite's quick_check on open


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
    2: (  # temporary uploads (wanvid.upload): one row per content, model and API root
        """CREATE TABLE IF NOT EXISTS uploads (
            sha256      TEXT NOT NULL,
            model       TEXT NOT NULL,
            base_url    TEXT NOT NULL,
            url         TEXT NOT NULL,
            expires_at  REAL NOT NULL,
            size        INTEGER,
            uploaded_at REAL NOT NULL,
            PRIMARY KEY (sha256, model, base_url)
        )""",
    ),
    3: (  # write-ahead submits (wanvid.intents): one row per submit, written before its POST
        """CREATE TABLE IF NOT EXISTS intents (
            intent_id   INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at  REAL NOT NULL,
            base_url    TEXT NOT NULL,
            model       TEXT NOT NULL,
            model_name  TEXT NOT NULL DEFAULT '',
            prompt      TEXT,
            fingerprint TEXT,
            params      TEXT NOT NULL DEFAULT '{}',
            inputs      TEXT NOT NULL DEFAULT '[]',
            output      TEXT,
            state       TEXT NOT NULL DEFAULT 'open',
            task_id     TEXT,
            closed_at   REAL,
            note        TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS intents_state ON intents (state)",
    ),
    # The history predictive polling learns from (wanvid.pacing), and the account limits
    # shared between processes (wanvid.leases). Before schema 4 these tables were created
    # by their first write with no version of their own, always in this shape: IF NOT
    # EXISTS keeps such a journal's tables and rows as they are.
    4: (
        """CREATE TABLE IF NOT EXISTS task_times (
            task_id     TEXT PRIMARY KEY,
            model       TEXT NOT NULL,
            resolution  TEXT NOT NULL,
            duration    INTEGER NOT NULL,
            submitted   REAL NOT NULL,
            scheduled   REAL NOT NULL,
            ended       REAL NOT NULL,
            recorded_at REAL NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS leases (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            key        TEXT NOT NULL,
            pid        INTEGER NOT NULL,
            task_id    TEXT,
            taken_at   REAL NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS leases_key ON leases (key)",
        """CREATE TABLE IF NOT EXISTS lease_submits (
            key  TEXT NOT NULL,
            at   REAL NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS lease_rates (
            key      TEXT PRIMARY KEY,
            next_at  REAL NOT NULL
        )""",
    ),
    # Who holds a lease or an open intent: the pid and its start time (wanvid.leases
    # .start_time), so a reused pid is not taken for the holder and an intent whose
    # process still runs is known to be in flight. NULL in older rows: the pid alone.
    5: (
        "ALTER TABLE leases ADD COLUMN started TEXT",
        "ALTER TABLE intents ADD COLUMN pid INTEGER",
        "ALTER TABLE intents ADD COLUMN started TEXT",
    ),
}

# An intent's states: written before the POST (open); closed by the answer (created), by an
# answer that proves no task exists (not_created), or by resolution (adopted, not_created).
INTENT_OPEN, INTENT_CREATED, INTENT_NOT_CREATED, INTENT_ADOPTED = (
    "open", "created", "not_created", "adopted")
_INTENT_COLUMNS = ("intent_id", "created_at", "base_url", "model", "model_name", "prompt",
                   "fingerprint", "params", "inputs", "output", "state", "task_id",
                   "closed_at", "note", "pid", "started")




def upgrade(db: sqlite3.Connection, path: Path) -> None:
    """Bring the journal ``db`` (inside a write transaction) to ``SCHEMA_VERSION``; refuse
    one written by a newer wanvid. The journal and the lease table's own connection
    (wanvid.leases) both open through it."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"{path}: this journal was written by a newer wanvid "
            f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade wanvid")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[target]:
            db.execute(statement)
    if version != SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def history_marker(path: Path) -> Path:
    """The small file that says a journal with task history existed at ``path``."""
    return path.with_name(path.name + HISTORY_SUFFIX)


def _way_out(path: Path) -> str:
    return (f"restore it from a backup; or, to start a new journal and forget the tasks it "
            f"held, move it away (mv {path} {path}.damaged) and delete "
            f"{history_marker(path)} (`wanvid tasks --remote` lists the service's last 24 h)")


def check_damage(path: Path) -> None:
    """Cheap checks before SQLite opens the file: a missing or empty journal where one with
    history existed, or a file that is not an SQLite database, is a ``JournalError`` naming
    the file and the way out. SQLite would silently start a fresh journal on an empty file,
    forgetting every task (and paid-for video) it recorded."""
    marker = history_marker(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = None
    except OSError:
        return  # let the open report it
    if size is None or size == 0:
        if marker.exists():
            what = "is missing" if size is None else "is empty (0 bytes)"
            raise JournalError(f"{path}: the task journal {what}, but one with task history "
                               f"was kept here ({marker} says so): {_way_out(path)}")
        return
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError:
        return
    if head != SQLITE_MAGIC:
        raise JournalError(f"{path}: the task journal is damaged (not an SQLite database): "
                           f"{_way_out(path)}")


@dataclass
class TaskRecord:
    """One task as the journal knows it (a row of the ``tasks`` table)."""

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


@dataclass
class IntentRecord:
    """A submit written down before its POST (see ``wanvid.intents``)."""

    intent_id: int
    created_at: float
    base_url: str
    model: str  # the catalogue's name (the task row's)
    model_name: str  # as sent (what the service's list shows)
    prompt: str | None
    fingerprint: str | None
    params: dict[str, Any]
    inputs: list[str]
    output: str | None
    state: str
    task_id: str | None
    closed_at: float | None
    note: str | None
    pid: int | None = None  # the process that wrote it (schema 5; None in older rows)
    started: str | None = None  # and when that process started (wanvid.leases.start_time)

    @property
    def open(self) -> bool:
        return self.state == INTENT_OPEN


# Called by ``Journal.open_intent`` inside its transaction: (task ids, open intents) of the
# submit's fingerprint; raising there writes no intent.
IntentCheck = Callable[[list[str], list[IntentRecord]], None]


def default_journal_path(environ: Mapping[str, str]) -> Path:
    """``$WANVID_STATE_DIR/journal.db``, else the platform's per-user state directory."""
    state_dir = environ.get(STATE_DIR_ENV, "").strip()
    if state_dir:
        return Path(state_dir).expanduser() / JOURNAL_NAME
    from platformdirs import user_state_dir

    return Path(user_state_dir("wanvid")) / JOURNAL_NAME


def _oss_v4_expiry(query: dict[str, str], date_key: str, expires_key: str) -> float | None:
    date, ttl = query.get(date_key), query.get(expires_key)
    if not date or not ttl or not ttl.isdigit():
        return None
    try:
        start = time.strptime(date, "%Y%m%dT%H%M%SZ")
    except ValueError:
        return None
    from calendar import timegm

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


_READ_ONLY_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def _not_writable(e: BaseException) -> bool:
    """A journal (or its directory) that cannot be written: permissions, a read-only file
    system (not damage, not a lock)."""
    if isinstance(e, OSError):
        return e.errno in _READ_ONLY_ERRNOS
    text = str(e).lower()
    return isinstance(e, sqlite3.Error) and ("readonly" in text or "read-only" in text
                                             or "unable to open database file" in text)


def _cannot_write(path: Path, e: BaseException) -> JournalError:
    why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    return JournalError(f"{path}: the task journal cannot be written ({why}), and this "
                        "command writes it: make it (and its directory) writable, or set "
                        f"{STATE_DIR_ENV} to a writable directory (`wanvid tasks` can still "
                        "list it; nothing was sent)")


class Journal:
    """The task journal. One instance per process; safe to share between threads.

    ``read_only``: for a command that only reads it (``wanvid tasks``): opened with
    SQLite's ``mode=ro`` (never created, migrated or switched to WAL), so a journal on a
    read-only file, directory or file system can still be listed; a journal that does not
    exist reads as empty (no file is made). Writes then fail with ``JournalError``."""

    def __init__(self, path: Path, *, now: Callable[[], float] = time.time,
                 read_only: bool = False) -> None:
        self.path = Path(path).expanduser()
        self._now = now
        self._lock = threading.RLock()
        self.opened: set[int] = set()  # the intents written through this instance
        self.read_only = read_only
        check_damage(self.path)
        try:
            if read_only:
                self._db = self._connect_read_only()
            else:
                _open_private(self.path)
                # SQLite creates the -wal and -shm files with the main file's permissions.
                self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                           isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            if not read_only and _not_writable(e):
                raise _cannot_write(self.path, e) from e
            raise JournalError(f"{self.path}: cannot open the task journal: {e}") from e
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._quick_check()
            if read_only:
                self._check_version()
                return
            self._set_wal()
            self._db.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL
            self._migrate()
        except sqlite3.Error as e:
            self._db.close()
            if not _is_damage(e):
                if not read_only and _not_writable(e):
                    raise _cannot_write(self.path, e) from e
                raise JournalError(f"{self.path}: cannot use the task journal: {e}") from e
            raise JournalError(f"{self.path}: the task journal is damaged ({e}): "
                               f"{_way_out(self.path)}") from e
        except JournalError:
            self._db.close()
            raise
        self._mark_history()

    # -- plumbing ---------------------------------------------------------------------

    def _connect_read_only(self) -> sqlite3.Connection:
        """A read-only connection: ``mode=ro``; on a read-only directory or file system
        where a WAL journal's ``-shm`` cannot be made (SQLite: "unable to open"), and no
        ``-wal`` holds writes not yet in the file, ``immutable=1`` (nobody can be writing
        there). No journal: an empty one in memory."""
        def connect(uri: str) -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)

        if not self.path.exists():
            db = connect("file::memory:")
            db.execute("BEGIN IMMEDIATE")
            upgrade(db, self.path)
            db.execute("COMMIT")
            return db
        uri = "file:" + quote(os.fsencode(os.path.abspath(self.path))) + "?mode=ro"
        db = connect(uri)
        try:
            db.execute("PRAGMA user_version").fetchone()
            return db
        except sqlite3.OperationalError as e:
            db.close()
            wal = self.path.with_name(self.path.name + "-wal")
            if "unable to open" not in str(e) or (wal.exists() and wal.stat().st_size):
                raise
        return connect(uri + "&immutable=1")

    def _check_version(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"{self.path}: this journal was written by a newer wanvid "
                f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade wanvid")

    def _quick_check(self) -> None:
        """SQLite's own consistency check (reads every page once, no index cross-checks:
        about a millisecond per MiB) so damage is found before a submit is paid for."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if not size or size > QUICK_CHECK_MAX:
            return
        rows = self._db.execute("PRAGMA quick_check(1)").fetchall()
        result = str(rows[0][0]) if rows else "ok"
        if result != "ok":
            raise JournalError(f"{self.path}: the task journal is damaged ({result}): "
                               f"{_way_out(self.path)}")

    def _mark_history(self) -> None:
        """Leave ``<journal>.history`` next to a journal that exists, so that losing the
        journal (emptied, deleted) is noticed instead of silently starting afresh."""
        marker = history_marker(self.path)
        if marker.exists():
            return
        with suppress(OSError):
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps({"journal": self.path.name, "created": self._now()}) + "\n")

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
        # Read first: a journal that is up to date needs no write lock to be opened, so a
        # journal another process holds locked can still be read (and waited from).
        if self._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        with self._write() as db:
            upgrade(db, self.path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _record(row: sqlite3.Row) -> TaskRecord:
        """A row as a record; a stored value that does not parse (hand-edited, or written
        by something else) reads as empty rather than breaking every command."""
        d = dict(row)
        d["params"] = _loads(d["params"], dict)
        d["inputs"] = [str(v) for v in _loads(d["inputs"], list)]
        for name in ("submitted_at", "updated_at", "expires_at", "downloaded_at"):
            d[name] = _number(d[name], float)
        d["size"] = _number(d["size"], int)
        if d["submitted_at"] is None:
            d["submitted_at"] = 0.0
        if d["updated_at"] is None:
            d["updated_at"] = d["submitted_at"]
        for name in ("task_id", "model", "base_url", "status"):
            d[name] = "" if d[name] is None else str(d[name])
        for name in ("video_url", "code", "message", "sha256", "fingerprint"):
            d[name] = None if d[name] is None else str(d[name])
        for name in ("path", "output"):  # a name that is not UTF-8 is kept as its bytes
            d[name] = _unname(d[name])
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
                      fingerprint: str | None = None, output: str | None = None,
                      intent: int | None = None, submitted_at: float | None = None) -> None:
        """Write a task down the moment the service returns its id; ``intent`` (the
        submit's write-ahead record) is closed with it, in the same transaction."""
        now = self._now()
        params_json = _dumps(_scrub(params))
        inputs_json = _dumps(_scrub(list(inputs)))
        status = status.upper()
        with self._write() as db:
            self._insert_task(db, task_id, model=model, base_url=base_url,
                              params_json=params_json, inputs_json=inputs_json, status=status,
                              fingerprint=fingerprint, output=output,
                              submitted_at=now if submitted_at is None else submitted_at)
            if intent is not None:
                db.execute(
                    "UPDATE intents SET state = ?, task_id = ?, closed_at = ? "
                    "WHERE intent_id = ? AND state IN (?, ?)",
                    (INTENT_CREATED, task_id, now, intent, INTENT_OPEN, INTENT_NOT_CREATED))

    @staticmethod
    def _insert_task(db: sqlite3.Connection, task_id: str, *, model: str, base_url: str,
                     params_json: str, inputs_json: str, status: str,
                     fingerprint: str | None, output: str | None, submitted_at: float) -> None:
        now = submitted_at
        row = db.execute("SELECT status FROM tasks WHERE task_id = ?",
                         (task_id,)).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO tasks (task_id, model, base_url, params, inputs, "
                "submitted_at, status, updated_at, fingerprint, output) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (task_id, model, base_url, params_json, inputs_json, now, status, now,
                 fingerprint, _name(output)))
        else:  # a poll got there first (another process): fill in what it lacked
            db.execute(
                "UPDATE tasks SET model = ?, base_url = ?, params = ?, inputs = ?, "
                "submitted_at = MIN(submitted_at, ?), status = ?, "
                "fingerprint = COALESCE(?, fingerprint), output = COALESCE(?, output) "
                "WHERE task_id = ?",
                (model, base_url, params_json, inputs_json, now,
                 _merge_status(row["status"], status), fingerprint, _name(output), task_id))

    def open_intent(self, *, model: str, model_name: str, base_url: str,
                    prompt: str | None, params: Mapping[str, Any], inputs: list[str],
                    fingerprint: str | None = None, output: str | None = None,
                    check: IntentCheck | None = None) -> int:
        """Write a submit down before its POST leaves, with this process as its holder;
        returns the intent's id. ``check`` (a batch's): called in the same write
        transaction first, with the task ids and the open intents the journal holds for
        ``fingerprint``; raising there writes nothing, so two processes never both decide
        that a job is theirs to submit."""
        from wanvid.leases import me

        params_json = _dumps(_scrub(params))
        inputs_json = _dumps(_scrub(list(inputs)))
        pid, started = me()
        with self._write() as db:
            if check is not None and fingerprint:
                tasks = [str(r[0]) for r in db.execute(
                    "SELECT task_id FROM tasks WHERE fingerprint = ? ORDER BY rowid",
                    (fingerprint,))]
                check(tasks, [_intent(r) for r in db.execute(
                    f"SELECT {', '.join(_INTENT_COLUMNS)} FROM intents WHERE fingerprint = ? "
                    "AND state = ? ORDER BY intent_id", (fingerprint, INTENT_OPEN))])
            cur = db.execute(
                "INSERT INTO intents (created_at, base_url, model, model_name, prompt, "
                "fingerprint, params, inputs, output, state, pid, started) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self._now(), base_url.rstrip("/"), model, model_name, _text(prompt),
                 fingerprint, params_json, inputs_json, _name(output), INTENT_OPEN, pid,
                 started))
            intent_id = int(cur.lastrowid or 0)
        self.opened.add(intent_id)
        return intent_id

    def close_intent(self, intent_id: int, *, note: str | None = None) -> bool:
        """Close an open intent as not created (its answer, or the service's list, proves
        no task exists). False when it was no longer open."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE intents SET state = ?, closed_at = ?, note = ? "
                "WHERE intent_id = ? AND state = ?",
                (INTENT_NOT_CREATED, self._now(), note, intent_id, INTENT_OPEN))
            return cur.rowcount > 0

    def adopt_intent(self, intent_id: int, task_id: str, *, status: str = "PENDING") -> bool:
        """Journal ``task_id`` as the task an open intent's submit created (with the
        intent's model, root, parameters, inputs, fingerprint and output) and close the
        intent, in one transaction. False when the intent was no longer open."""
        now = self._now()
        with self._write() as db:
            row = db.execute("SELECT * FROM intents WHERE intent_id = ? AND state = ?",
                             (intent_id, INTENT_OPEN)).fetchone()
            if row is None:
                return False
            self._insert_task(db, task_id, model=row["model"], base_url=row["base_url"],
                              params_json=row["params"], inputs_json=row["inputs"],
                              status=status.upper(), fingerprint=row["fingerprint"],
                              output=_unname(row["output"]),
                              submitted_at=float(row["created_at"]))
            db.execute("UPDATE intents SET state = ?, task_id = ?, closed_at = ? "
                       "WHERE intent_id = ?", (INTENT_ADOPTED, task_id, now, intent_id))
            return True

    def intents(self, *, state: str | None = None) -> builtins.list[IntentRecord]:
        """Submit intents, oldest first; optionally those in one state."""
        sql = f"SELECT {', '.join(_INTENT_COLUMNS)} FROM intents"
        args: tuple[Any, ...] = ()
        if state is not None:
            sql += " WHERE state = ?"
            args = (state,)
        with self._lock:
            try:
                rows = self._db.execute(sql + " ORDER BY created_at, intent_id",
                                        args).fetchall()
            except sqlite3.Error as e:
                raise JournalError(f"{self.path}: cannot read the task journal: {e}") from e
        return [_intent(r) for r in rows]

    def open_intents(self) -> builtins.list[IntentRecord]:
        return self.intents(state=INTENT_OPEN)

    def known(self, task_ids: Iterable[str]) -> set[str]:
        """Which of these task ids the journal holds."""
        ids = builtins.list(dict.fromkeys(task_ids))
        found: set[str] = set()
        with self._lock:
            try:
                for i in range(0, len(ids), 500):
                    chunk = ids[i:i + 500]
                    marks = ", ".join("?" * len(chunk))
                    found.update(str(r[0]) for r in self._db.execute(
                        f"SELECT task_id FROM tasks WHERE task_id IN ({marks})", chunk))
            except sqlite3.Error as e:
                raise JournalError(f"{self.path}: cannot read the task journal: {e}") from e
        return found

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
            cur = db.execute("UPDATE tasks SET output = ? WHERE task_id = ?",
                             (_name(output), task_id))
            if cur.rowcount == 0:
                db.execute(
                    "INSERT INTO tasks (task_id, submitted_at, status, updated_at, output) "
                    "VALUES (?, ?, 'PENDING', ?, ?)", (task_id, now, now, _name(output)))

    def record_download(self, task_id: str, *, path: str | os.PathLike[str], size: int,
                        sha256: str) -> None:
        """Record a saved video under its absolute path (a relative one is taken from the
        current directory), so the record means the same file from anywhere."""
        stored = _name(os.path.abspath(os.fspath(path)))
        now = self._now()
        with self._write() as db:
            cur = db.execute(
                "UPDATE tasks SET path = ?, size = ?, sha256 = ?, downloaded_at = ?, "
                "updated_at = ? WHERE task_id = ?",
                (stored, size, sha256, now, now, task_id))
            if cur.rowcount == 0:
                db.execute(
                    "INSERT INTO tasks (task_id, submitted_at, status, updated_at, path, "
                    "size, sha256, downloaded_at) VALUES (?, ?, 'SUCCEEDED', ?, ?, ?, ?, ?)",
                    (task_id, now, now, stored, size, sha256, now))

    def record_upload(self, sha256: str, *, model: str, base_url: str, url: str,
                      expires_at: float, size: int | None = None) -> None:
        """Remember a temporary upload (``oss://`` URL, wall-clock expiry) of a content."""
        now = self._now()
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO uploads (sha256, model, base_url, url, expires_at, "
                "size, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sha256, model, base_url.rstrip("/"), url, expires_at, size, now))

    # -- reads ------------------------------------------------------------------------

    def find_upload(self, sha256: str, *, model: str, base_url: str,
                    valid_after: float | None = None) -> tuple[str, float] | None:
        """(URL, expiry) of an upload of this content for this model at this API root that
        is still valid at ``valid_after`` (default: now), else None."""
        when = self._now() if valid_after is None else valid_after
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT url, expires_at FROM uploads WHERE sha256 = ? AND model = ? AND "
                    "base_url = ? AND expires_at > ?",
                    (sha256, model, base_url.rstrip("/"), when)).fetchone()
            except sqlite3.Error as e:
                raise JournalError(f"{self.path}: cannot read the task journal: {e}") from e
        if row is None or not str(row[0]).startswith("oss://"):
            return None
        return str(row[0]), float(row[1])

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

    def list(self, *, status: str | None = None, since: float | None = None,
             newest_first: bool = False, limit: int | None = None,
             ) -> builtins.list[TaskRecord]:
        """All tasks, oldest first (or ``newest_first``); optionally one status, or
        submitted at/after ``since``; at most ``limit`` of them (the newest ``limit`` when
        ``newest_first``, else the oldest)."""
        clauses: builtins.list[str] = []
        args: builtins.list[Any] = []
        if status is not None:
            clauses.append("status = ?")
            args.append(status.upper())
        if since is not None:
            clauses.append("submitted_at >= ?")
            args.append(since)
        order = "submitted_at DESC, rowid DESC" if newest_first else "submitted_at, rowid"
        if limit is not None:
            order += " LIMIT ?"
            args.append(max(0, int(limit)))
        return self._select(" AND ".join(clauses), tuple(args), order=order)

    def forget(self, task_ids: Iterable[str]) -> builtins.list[str]:
        """Remove these tasks' rows (their videos and sidecars stay on disk, and so do the
        timings predictive polling learns from); returns the ids that had a row, in the
        order given. One transaction: all or none."""
        ids = builtins.list(dict.fromkeys(task_ids))
        with self._write() as db:
            found = [t for t in ids
                     if db.execute("SELECT 1 FROM tasks WHERE task_id = ?", (t,)).fetchone()]
            db.executemany("DELETE FROM tasks WHERE task_id = ?", [(t,) for t in found])
        return found

    # -- task times: the history predictive polling learns from (wanvid.pacing) --------
    # The task_times table (schema 4): a journal with no finished task reads as no history.

    def record_times(self, task_id: str, *, model: str, resolution: str, duration: int,
                     submitted: float, scheduled: float, ended: float) -> None:
        """The service's submit, scheduled and end times of a task that SUCCEEDED (epoch
        seconds on the service's clock: only their differences are used)."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO task_times (task_id, model, resolution, duration, "
                "submitted, scheduled, ended, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (task_id, model, resolution, int(duration), submitted, scheduled, ended,
                 self._now()))

    def task_times(self, *, model: str, resolution: str, duration: int, limit: int = 20,
                   ) -> builtins.list[tuple[float, float, float]]:
        """(submitted, scheduled, ended) of the latest ``limit`` recorded tasks of this
        model, resolution and duration, latest first."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT submitted, scheduled, ended FROM task_times WHERE model = ? AND "
                    "resolution = ? AND duration = ? ORDER BY ended DESC LIMIT ?",
                    (model, resolution, int(duration), limit)).fetchall()
            except sqlite3.Error as e:
                raise JournalError(f"{self.path}: cannot read the task journal: {e}") from e
        return [(float(a), float(b), float(c)) for a, b, c in rows]


def _intent(row: sqlite3.Row) -> IntentRecord:
    d = dict(row)
    return IntentRecord(
        intent_id=int(d["intent_id"]), created_at=_number(d["created_at"], float) or 0.0,
        base_url=str(d["base_url"] or ""), model=str(d["model"] or ""),
        model_name=str(d["model_name"] or ""),
        prompt=None if d["prompt"] is None else str(d["prompt"]),
        fingerprint=None if d["fingerprint"] is None else str(d["fingerprint"]),
        params=_loads(d["params"], dict), inputs=[str(v) for v in _loads(d["inputs"], list)],
        output=_unname(d["output"]), state=str(d["state"]),
        task_id=None if d["task_id"] is None else str(d["task_id"]),
        closed_at=_number(d["closed_at"], float),
        note=None if d["note"] is None else str(d["note"]),
        pid=_number(d["pid"], int), started=None if d["started"] is None else str(d["started"]))


def _dumps(value: object) -> str:
    """JSON text for a column: readable (UTF-8); a string that is no valid UTF-8 (a file
    name's undecodable bytes, as ``os.fsdecode`` surrogates) is kept ``\\udcxx``-escaped,
    which SQLite can store and ``json.loads`` gives back unchanged."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, sort_keys=True, default=str)
    return text


def _name(value: str | None) -> str | bytes | None:
    """A path or template for a TEXT column: as it is, or, when it is no valid UTF-8 (a
    file name's undecodable bytes), its bytes (``os.fsencode``), which SQLite stores as a
    BLOB and ``_unname`` turns back into the same name."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape" if _fs_bytes(value) else "replace")
    return value


def _fs_bytes(value: str) -> bool:
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def _unname(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def _text(value: str | None) -> str | None:
    """Free text (a prompt) for a TEXT column: what is no valid UTF-8 replaced."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _is_damage(e: sqlite3.Error) -> bool:
    """SQLITE_CORRUPT or SQLITE_NOTADB: the file itself is bad (not a lock, not EACCES)."""
    return type(e) is sqlite3.DatabaseError or "malformed" in str(e) or (
        "not a database" in str(e))


def _loads(value: object, kind: type) -> Any:
    """JSON text as ``kind`` (dict or list); anything that does not parse is empty."""
    try:
        parsed = json.loads(value) if isinstance(value, (str, bytes)) and value else None
    except (ValueError, RecursionError):
        parsed = None
    return parsed if isinstance(parsed, kind) else kind()


def _number(value: object, kind: type) -> Any:
    if value is None or isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _merge_status(old: str, new: str) -> str:
    """The status to keep when ``new`` arrives for a task currently at ``old``."""
    return old if _RANK.get(old, 0) > _RANK.get(new, 0) else new
