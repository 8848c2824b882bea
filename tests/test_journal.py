"""wanvid.journal: the durable task journal."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
from pathlib import Path

import platformdirs
import pytest

from wanvid.journal import (
    SCHEMA_VERSION,
    URL_VALIDITY_S,
    Journal,
    JournalError,
    default_journal_path,
    expires_from_url,
)

T0 = 1_760_000_000.0  # a fixed "now"
OSS = "https://dashscope-result-sh.oss-cn-shanghai.aliyuncs.com/1d/task.mp4"


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def journal(tmp_path: Path, clock: Clock) -> Journal:
    return Journal(tmp_path / "state" / "journal.db", now=clock)


def submit(j: Journal, task_id: str, **kw: object) -> None:
    args: dict[str, object] = {"model": "wan2.2-i2v-flash",
                               "base_url": "https://dashscope-intl.aliyuncs.com/api/v1",
                               "params": {"resolution": "720P"}, "inputs": ["cat.png"]}
    args.update(kw)
    j.record_submit(task_id, **args)  # type: ignore[arg-type]


# --- lifecycle -----------------------------------------------------------------------


def test_submit_poll_download_lifecycle(journal: Journal, clock: Clock) -> None:
    submit(journal, "t1", params={"resolution": "720P", "seed": 7}, fingerprint="fp",
           output="{stem}.mp4")
    rec = journal.get("t1")
    assert rec is not None
    assert (rec.task_id, rec.model, rec.status, rec.submitted_at, rec.updated_at) == (
        "t1", "wan2.2-i2v-flash", "PENDING", T0, T0)
    assert rec.params == {"resolution": "720P", "seed": 7} and rec.inputs == ["cat.png"]
    assert (rec.fingerprint, rec.output) == ("fp", "{stem}.mp4")
    assert not rec.done and rec.video_url is None and rec.expires_at is None

    clock.t += 30
    journal.update_status("t1", "RUNNING")
    assert journal.get("t1").status == "RUNNING"  # type: ignore[union-attr]

    clock.t += 60
    url = f"{OSS}?Expires={int(T0) + 86_000}&Signature=x"
    journal.update_status("t1", "SUCCEEDED", video_url=url)
    rec = journal.get("t1")
    assert rec is not None
    assert (rec.status, rec.video_url, rec.expires_at, rec.updated_at) == (
        "SUCCEEDED", url, T0 + 86_000, T0 + 90)
    assert not rec.done  # succeeded but not on disk yet

    clock.t += 5
    journal.record_download("t1", path=Path("/videos/t1.mp4"), size=1234, sha256="ab" * 32)
    rec = journal.get("t1")
    assert rec is not None
    assert (rec.path, rec.size, rec.sha256, rec.downloaded_at) == (
        "/videos/t1.mp4", 1234, "ab" * 32, T0 + 95)
    assert rec.done
    assert journal.get("nope") is None


def test_failed_task_is_done_and_keeps_code_and_message(journal: Journal) -> None:
    submit(journal, "t1")
    journal.update_status("t1", "FAILED", code="DataInspectionFailed", message="nope")
    rec = journal.get("t1")
    assert rec is not None
    assert (rec.status, rec.code, rec.message, rec.done) == (
        "FAILED", "DataInspectionFailed", "nope", True)
    for status in ("CANCELED", "UNKNOWN"):
        submit(journal, status)
        journal.update_status(status, status)
        assert journal.get(status).done  # type: ignore[union-attr]


def test_expiry_falls_back_to_submitted_plus_24h(journal: Journal, clock: Clock) -> None:
    submit(journal, "t1")
    clock.t += 600
    journal.update_status("t1", "SUCCEEDED", video_url=f"{OSS}?Signature=x")
    assert journal.get("t1").expires_at == T0 + URL_VALIDITY_S  # type: ignore[union-attr]


def test_a_later_poll_without_url_keeps_the_url(journal: Journal) -> None:
    submit(journal, "t1")
    url = f"{OSS}?Expires=1760086400"
    journal.update_status("t1", "SUCCEEDED", video_url=url)
    journal.update_status("t1", "SUCCEEDED")
    rec = journal.get("t1")
    assert rec is not None and (rec.video_url, rec.expires_at) == (url, 1760086400.0)


def test_status_never_moves_backwards(journal: Journal) -> None:
    submit(journal, "t1")
    journal.update_status("t1", "SUCCEEDED", video_url=f"{OSS}?Expires=1760086400")
    journal.update_status("t1", "RUNNING")  # a slower poller commits late
    assert journal.get("t1").status == "SUCCEEDED"  # type: ignore[union-attr]
    journal.update_status("t1", "UNKNOWN")  # the service forgot the id after 24 h
    assert journal.get("t1").status == "SUCCEEDED"  # type: ignore[union-attr]
    submit(journal, "t2")
    journal.update_status("t2", "UNKNOWN")
    assert journal.get("t2").status == "UNKNOWN"  # type: ignore[union-attr]


def test_update_for_an_unknown_task_inserts_a_minimal_record(
        journal: Journal, clock: Clock) -> None:
    journal.update_status("elsewhere", "RUNNING")
    rec = journal.get("elsewhere")
    assert rec is not None
    assert (rec.model, rec.base_url, rec.params, rec.inputs, rec.status, rec.submitted_at) == (
        "", "", {}, [], "RUNNING", T0)
    assert [r.task_id for r in journal.pending()] == ["elsewhere"]


def test_set_output_remembers_a_later_o_for_resuming(journal: Journal) -> None:
    submit(journal, "t1", output="{task_id}.mp4")
    journal.set_output("t1", "out.mp4")  # `wanvid wait t1 -o out.mp4`
    journal.set_output("elsewhere", "x.mp4")  # a task this journal never saw
    assert journal.get("t1").output == "out.mp4"  # type: ignore[union-attr]
    rec = journal.get("elsewhere")
    assert rec is not None and (rec.output, rec.status, rec.model) == ("x.mp4", "PENDING", "")


def test_submit_after_a_poll_fills_in_the_details(journal: Journal) -> None:
    journal.update_status("t1", "RUNNING")  # another process polled first
    submit(journal, "t1", status="PENDING", fingerprint="fp")
    rec = journal.get("t1")
    assert rec is not None
    assert (rec.model, rec.status, rec.fingerprint) == ("wan2.2-i2v-flash", "RUNNING", "fp")


# --- queries -------------------------------------------------------------------------


def test_pending_lists_unfinished_work_oldest_first(journal: Journal, clock: Clock) -> None:
    for i, tid in enumerate(["queued", "running", "succ", "done", "failed", "gone", "canc"]):
        clock.t = T0 + 10 * (7 - i)  # submitted newest-first
        submit(journal, tid)
    journal.update_status("running", "RUNNING")
    journal.update_status("succ", "SUCCEEDED", video_url=f"{OSS}?Expires=1")
    journal.update_status("done", "SUCCEEDED", video_url=f"{OSS}?Expires=1")
    journal.record_download("done", path="d.mp4", size=1, sha256="0" * 64)
    journal.update_status("failed", "FAILED")
    journal.update_status("gone", "UNKNOWN")
    journal.update_status("canc", "CANCELED")

    assert [r.task_id for r in journal.pending()] == ["succ", "running", "queued"]
    # "succ"'s URL expired in 1970: it can never be fetched
    assert [r.task_id for r in journal.pending(include_expired=False)] == ["running", "queued"]


def test_expiring_lists_undownloaded_videos_about_to_expire(
        journal: Journal, clock: Clock) -> None:
    now = int(T0)
    cases = {"soon": now + 600, "later": now + 3 * 3600, "edge": now + 7200,
             "expired": now - 1, "downloaded": now + 600}
    for tid, expires in cases.items():
        submit(journal, tid)
        journal.update_status(tid, "SUCCEEDED", video_url=f"{OSS}?Expires={expires}")
    journal.record_download("downloaded", path="x.mp4", size=1, sha256="0" * 64)
    submit(journal, "running")

    assert [r.task_id for r in journal.expiring()] == ["soon", "edge"]
    assert [r.task_id for r in journal.expiring(within=4 * 3600)] == ["soon", "edge", "later"]
    clock.t = T0 + 3 * 3600 + 1
    assert journal.expiring(within=7200) == []  # all expired by then (or downloaded)


def test_list_filters_by_status_and_since(journal: Journal, clock: Clock) -> None:
    for i, tid in enumerate(["a", "b", "c"]):
        clock.t = T0 + i * 100
        submit(journal, tid)
    journal.update_status("b", "FAILED")
    assert [r.task_id for r in journal.list()] == ["a", "b", "c"]
    assert [r.task_id for r in journal.list(status="failed")] == ["b"]
    assert [r.task_id for r in journal.list(since=T0 + 100)] == ["b", "c"]
    assert [r.task_id for r in journal.list(status="PENDING", since=T0 + 100)] == ["c"]


def test_list_newest_first_with_a_limit(journal: Journal, clock: Clock) -> None:
    for i, tid in enumerate(["a", "b", "c", "d"]):
        clock.t = T0 + i * 100
        submit(journal, tid)
    assert [r.task_id for r in journal.list(newest_first=True)] == ["d", "c", "b", "a"]
    assert [r.task_id for r in journal.list(newest_first=True, limit=2)] == ["d", "c"]
    assert [r.task_id for r in journal.list(limit=2)] == ["a", "b"]
    assert [r.task_id for r in journal.list(since=T0 + 100, newest_first=True, limit=1)] == ["d"]


def test_forget_removes_only_the_rows_it_has(journal: Journal) -> None:
    for tid in ("a", "b", "c"):
        submit(journal, tid)
    assert journal.forget(["c", "zz", "a", "c"]) == ["c", "a"]
    assert [r.task_id for r in journal.list()] == ["b"]
    assert journal.get("a") is None


def test_downloads_are_recorded_under_absolute_paths(journal: Journal, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    submit(journal, "a")
    journal.record_download("a", path="out/../v.mp4", size=1, sha256="0" * 64)
    rec = journal.get("a")
    assert rec is not None and rec.path == str(tmp_path / "v.mp4")


@pytest.mark.parametrize(("url", "expected"), [
    (f"{OSS}?Expires=1760086400&OSSAccessKeyId=x&Signature=y", 1760086400.0),
    (f"{OSS}?OSSAccessKeyId=x&expires=1760086400", 1760086400.0),
    (f"{OSS}?x-oss-date=20251110T120000Z&x-oss-expires=86400&x-oss-signature=s",
     1762776000.0 + 86400),
    (f"{OSS}?X-Amz-Date=20251110T120000Z&X-Amz-Expires=3600", 1762776000.0 + 3600),
    (f"{OSS}?Signature=y", None),
    (f"{OSS}?Expires=soon", None),
    (OSS, None),
])
def test_expires_from_url(url: str, expected: float | None) -> None:
    assert expires_from_url(url) == expected


# --- what is on disk -----------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_journal_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "journal.db"
    old = os.umask(0o022)
    try:
        j = Journal(path)
        submit(j, "t1")
    finally:
        os.umask(old)
    for p in (path, path.with_name("journal.db-wal")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    j.close()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_an_existing_world_readable_journal_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    Journal(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_no_image_data_or_api_key_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    payload = "iVBORw0KGgoAAAANSUhEUgAA" + "QUJD" * 5000
    data_uri = f"data:image/png;base64,{payload}"
    j = Journal(path)
    j.record_submit("t1", model="m", base_url="https://x", inputs=["cat.png", data_uri],
                    params={"img_url": data_uri, "nested": {"last_frame": data_uri},
                            "api_key": "sk-0123456789secret",
                            "headers": {"Authorization": "Bearer sk-0123456789secret"},
                            "prompt": "a cat"})
    rec = j.get("t1")
    j.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"QUJDQUJD" not in raw and b"iVBORw0KGgo" not in raw
    assert b"sk-0123456789secret" not in raw
    assert rec is not None
    assert rec.params["img_url"].startswith("data:image/png;base64,")
    assert len(rec.params["img_url"]) < 80
    assert rec.params["nested"]["last_frame"].startswith("data:image/png")
    assert rec.inputs[0] == "cat.png" and len(rec.inputs[1]) < 80
    assert rec.params["prompt"] == "a cat" and "api_key" not in rec.params


def test_schema_is_versioned_and_newer_journals_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Journal(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalError, match="newer wanvid"):
        Journal(path)


def test_reopening_keeps_the_records(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal(path) as j:
        submit(j, "t1")
    with Journal(path) as j:
        assert j.get("t1") is not None


def test_default_journal_path(tmp_path: Path) -> None:
    assert default_journal_path({"WANVID_STATE_DIR": str(tmp_path)}) == tmp_path / "journal.db"
    expected = Path(platformdirs.user_state_dir("wanvid")) / "journal.db"
    assert default_journal_path({}) == expected
    assert default_journal_path({"WANVID_STATE_DIR": ""}) == expected


# --- many processes ------------------------------------------------------------------

N_PROCS, N_TASKS = 4, 50


def _writer(path: str, worker: int, barrier: object) -> None:
    try:
        j = Journal(Path(path))
    finally:
        barrier.wait(timeout=60)  # type: ignore[attr-defined]
    for i in range(N_TASKS):
        tid = f"w{worker}-{i}"
        j.record_submit(tid, model="m", base_url="b", params={"i": i}, inputs=[])
        j.update_status(tid, "RUNNING")
    j.close()


def test_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "journal.db"  # all of them create it at the same moment
    ctx = multiprocessing.get_context()  # fork on Linux, spawn elsewhere
    barrier = ctx.Barrier(N_PROCS)
    procs = [ctx.Process(target=_writer, args=(str(path), w, barrier))
             for w in range(N_PROCS)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0] * N_PROCS
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    with Journal(path) as j:
        records = j.list()
        assert len(records) == N_PROCS * N_TASKS
        assert {r.task_id for r in records} == {
            f"w{w}-{i}" for w in range(N_PROCS) for i in range(N_TASKS)}
        assert all(r.status == "RUNNING" for r in records)


def test_an_unusable_location_is_a_journal_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(JournalError, match="cannot open the task journal"):
        Journal(tmp_path / "file" / "journal.db")


def test_a_locked_journal_is_a_journal_error_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    j = Journal(path)
    j._db.execute("PRAGMA busy_timeout = 0")  # don't wait 30 s for the other writer
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process mid-write
    with pytest.raises(JournalError, match="cannot write the task journal"):
        submit(j, "t1")
    other.execute("ROLLBACK")
    other.close()
    submit(j, "t1")  # no transaction was left dangling
    assert j.get("t1") is not None
    j.close()


def test_a_version_1_journal_gains_the_uploads_table_and_keeps_its_tasks(tmp_path: Path) -> None:
    from wanvid.journal import _MIGRATIONS

    path = tmp_path / "journal.db"
    with sqlite3.connect(path) as db:  # a journal as wanvid with schema 1 left it
        for statement in _MIGRATIONS[1]:
            db.execute(statement)
        db.execute("INSERT INTO tasks (task_id, submitted_at, status, updated_at) "
                   "VALUES ('t-old', 1, 'PENDING', 1)")
        db.execute("PRAGMA user_version = 1")
    db.close()
    with Journal(path, now=lambda: 1000.0) as j:
        assert j.get("t-old") is not None
        assert j.find_upload("ab" * 32, model="m", base_url="https://x/api/v1") is None
        j.record_upload("ab" * 32, model="m", base_url="https://x/api/v1/",
                        url="oss://d/f.wav", expires_at=5000.0, size=3)
        assert j.find_upload("ab" * 32, model="m", base_url="https://x/api/v1") == \
            ("oss://d/f.wav", 5000.0)
        assert j.find_upload("ab" * 32, model="m", base_url="https://x/api/v1",
                             valid_after=6000.0) is None
        assert j.find_upload("ab" * 32, model="other", base_url="https://x/api/v1") is None
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
    db.close()


# The task-time and lease tables as wanvid created them before schema 4: by their first
# write, in a journal that still said schema 3.
_UNNUMBERED = (
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
)


def _schema_3_journal(path: Path, *, unnumbered: bool) -> None:
    from wanvid.journal import _MIGRATIONS

    with sqlite3.connect(path) as db:
        for version in (1, 2, 3):
            for statement in _MIGRATIONS[version]:
                db.execute(statement)
        db.execute("INSERT INTO tasks (task_id, submitted_at, status, updated_at) "
                   "VALUES ('t-old', 1, 'SUCCEEDED', 1)")
        if unnumbered:
            for statement in _UNNUMBERED:
                db.execute(statement)
            db.execute("INSERT INTO task_times VALUES ('t-old', 'm', '480P', 5, 0, 5, 60, 61)")
            db.execute("INSERT INTO leases (key, pid, task_id, taken_at) "
                       "VALUES ('k', 4242, 't-live', 900)")
            db.execute("INSERT INTO lease_submits VALUES ('k', 900)")
            db.execute("INSERT INTO lease_rates VALUES ('task queries', 901)")
        db.execute("PRAGMA user_version = 3")
    db.close()


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    db.close()
    return names


def test_a_schema_3_journal_with_the_unnumbered_tables_keeps_their_rows(tmp_path: Path) -> None:
    from wanvid.leases import Leases, Limit

    path = tmp_path / "journal.db"
    _schema_3_journal(path, unnumbered=True)
    with Journal(path, now=lambda: 1000.0) as j:
        assert j.get("t-old") is not None
        assert j.task_times(model="m", resolution="480P", duration=5) == [(0.0, 5.0, 60.0)]
        j.record_times("t-new", model="m", resolution="480P", duration=5, submitted=100,
                       scheduled=101, ended=150)
        assert len(j.task_times(model="m", resolution="480P", duration=5)) == 2
    assert {"task_times", "leases", "lease_submits", "lease_rates"} <= _tables(path)
    # The live holder's lease still counts: a second process finds the only slot taken.
    other = Leases(path, now=lambda: 1000.0, pid=77, is_alive=lambda pid: pid == 4242)
    assert other.held("k") == 1
    assert other.try_take("k", Limit(concurrent=1, per_second=0))[0] is None
    assert other.query_delay(20) == 0.0  # the old booking (901) has long passed
    other.close()


def test_a_schema_3_journal_without_them_gains_them_empty(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    _schema_3_journal(path, unnumbered=False)
    with Journal(path) as j:
        assert j.task_times(model="m", resolution="480P", duration=5) == []
    assert {"task_times", "leases", "lease_submits", "lease_rates"} <= _tables(path)


def test_the_lease_connection_upgrades_a_journal_it_opens_first(tmp_path: Path) -> None:
    """A process that reaches the lease table before any Journal (or after an older wanvid)
    brings the file to the journal's schema itself; a newer journal is refused there too."""
    from wanvid.leases import Leases, Limit

    path = tmp_path / "journal.db"
    _schema_3_journal(path, unnumbered=False)
    leases = Leases(path, now=lambda: 1000.0, pid=5)
    lease, _ = leases.try_take("k", Limit(concurrent=1, per_second=0))
    assert lease is not None
    leases.close()
    assert {"leases", "task_times"} <= _tables(path)
    with Journal(path) as j:
        assert j.get("t-old") is not None
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalError, match="newer wanvid"):
        Leases(path, pid=6).held("k")


def test_a_schema_4_journal_gains_the_holders_start_times_and_keeps_its_rows(
        tmp_path: Path) -> None:
    """Schema 5: leases and intents name their holder's start time, intents their pid; the
    rows a schema 4 wanvid left stay, naming none (judged by their pid alone)."""
    from wanvid.journal import _MIGRATIONS
    from wanvid.leases import Leases, Limit

    path = tmp_path / "journal.db"
    with sqlite3.connect(path) as db:
        for version in (1, 2, 3, 4):
            for statement in _MIGRATIONS[version]:
                db.execute(statement)
        db.execute("INSERT INTO leases (key, pid, task_id, taken_at) "
                   "VALUES ('k', 4242, 't-live', 900)")
        db.execute("INSERT INTO intents (created_at, base_url, model, prompt) "
                   "VALUES (900, 'http://h', 'm', 'old')")
        db.execute("PRAGMA user_version = 4")
    db.close()
    with Journal(path, now=lambda: 1000.0) as j:
        (old,) = j.open_intents()
        assert (old.prompt, old.pid, old.started) == ("old", None, None)
        j.open_intent(model="m", model_name="m", base_url="http://h", prompt="new",
                      params={}, inputs=[])
        new = j.open_intents()[1]
        assert new.pid == os.getpid()
    assert _tables(path) >= {"leases", "intents"}
    other = Leases(path, now=lambda: 1000.0, pid=77, is_alive=lambda pid: pid == 4242,
                   started_of=lambda pid: f"boot/{pid}")
    assert other.try_take("k", Limit(concurrent=1, per_second=0))[0] is None  # 4242 holds it
    other.close()
