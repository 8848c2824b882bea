"""Issue 15, "a paid task is never lost": one test (or more) per numbered item, named
``test_itemN_...``, each reproducing the failure the issue reports and showing it closed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import responses

import wanvid.journal as journal_mod
from tests.conftest import KEY
from wanvid.errors import ExitStatus
from wanvid.journal import Journal, JournalError, history_marker

API = "https://dashscope-intl.aliyuncs.com/api/v1"
I2V = f"{API}/services/aigc/video-generation/video-synthesis"


def mp4(payload: bytes) -> bytes:
    """A minimal well-formed MP4: an ``ftyp`` box and an ``mdat`` box holding ``payload``."""
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41"
    return ftyp + (8 + len(payload)).to_bytes(4, "big") + b"mdat" + payload


VIDEO = mp4(bytes(range(256)) * 20)


def task(tid: str, status: str, **extra: object) -> dict:
    out: dict = {"task_id": tid, "task_status": status, **extra}
    if status == "SUCCEEDED":
        out.setdefault("video_url", f"https://oss.example.com/{tid}.mp4?Expires=1800050000&Signature=s")
    return {"request_id": "r", "output": out}


def journal_path() -> Path:
    import os

    return Path(os.environ["WANVID_STATE_DIR"]) / "journal.db"


def seed_journal(*ids: str) -> None:
    with Journal(journal_path()) as j:
        for tid in ids:
            j.record_submit(tid, model="wan2.2-i2v-flash", base_url=API, params={"seed": 1},
                            inputs=["cat.png"])


# --- item 8: the journal -------------------------------------------------------------------


def test_item8_an_empty_journal_where_history_existed_is_an_error_not_a_fresh_start(run) -> None:
    seed_journal("t1", "t2")
    path = journal_path()
    assert history_marker(path).exists()
    path.write_bytes(b"")  # emptied (a bad restore, a full disk on another tool's rewrite)
    for wal in (path.with_name("journal.db-wal"), path.with_name("journal.db-shm")):
        wal.unlink(missing_ok=True)
    r = run(["tasks"])
    assert r.code == ExitStatus.JOURNAL == 8
    assert r.err.count("\n") == 1 and str(path) in r.err
    assert "is empty" in r.err and "backup" in r.err and str(history_marker(path)) in r.err
    assert path.stat().st_size == 0  # nothing was created over it
    # the way out the message names works: move it away, delete the marker
    path.rename(path.with_name("journal.db.damaged"))
    history_marker(path).unlink()
    assert run(["tasks"]).code == 0


def test_item8_a_missing_journal_where_history_existed_is_an_error(run) -> None:
    seed_journal("t1")
    journal_path().unlink()
    r = run(["tasks"])
    assert r.code == 8 and "is missing" in r.err


def test_item8_a_journal_that_never_held_history_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.touch()  # created, then killed before SQLite wrote anything
    with Journal(path) as j:
        assert j.list() == []
    assert history_marker(path).exists()


def test_item8_a_damaged_journal_is_found_before_the_submit_is_paid_for(run) -> None:
    seed_journal("t1")
    path = journal_path()
    with sqlite3.connect(path) as db:  # grow it past one page, then damage a page
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with Journal(path) as j:
        for i in range(200):
            j.record_submit(f"x{i}", model="m", base_url=API, params={"p": "x" * 200}, inputs=[])
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page * 2: page * 2 + 64] = b"\xff" * 64  # a b-tree page gets garbage
    path.write_bytes(bytes(data))
    with responses.RequestsMock() as rsps:  # no submit may reach the service
        r = run(["submit", "https://example.com/cat.png"])
        assert len(rsps.calls) == 0
    assert r.code == 8 and "damaged" in r.err and str(path) in r.err and "mv " in r.err


def test_item8_a_file_that_is_not_a_journal_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"PK\x03\x04 this is a zip file, not a journal")
    with pytest.raises(JournalError, match="damaged .not an SQLite database") as ei:
        Journal(path)
    assert ei.value.status == ExitStatus.JOURNAL


def test_item8_an_unparseable_stored_parameter_does_not_crash_tasks(run) -> None:
    seed_journal("t1", "t2")
    with sqlite3.connect(journal_path()) as db:
        db.execute("UPDATE tasks SET params = '{not json', inputs = '\"a string\"', "
                   "submitted_at = 'yesterday' WHERE task_id = 't1'")
    r = run(["tasks", "--json"])
    assert r.code == 0, r.err
    rows = {row["task_id"]: row for row in json.loads(r.out)}
    assert set(rows) == {"t1", "t2"} and rows["t1"]["inputs"] == []
    assert run(["tasks"]).code == 0
    with Journal(journal_path()) as j:
        assert j.get("t1").params == {} and j.get("t2").params == {"seed": 1}


def test_item8_a_journal_write_failure_during_a_wait_does_not_stop_downloads(
        run, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_journal("a1", "b2")
    monkeypatch.setattr(journal_mod, "BUSY_TIMEOUT_MS", 20)  # don't wait 30 s per write
    other = sqlite3.connect(journal_path(), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the journal's write lock
    try:
        with responses.RequestsMock() as rsps:
            for tid in ("a1", "b2"):
                rsps.add(responses.GET, f"{API}/tasks/{tid}", json=task(tid, "SUCCEEDED"))
                rsps.add(responses.GET, f"https://oss.example.com/{tid}.mp4", body=VIDEO)
            r = run(["wait", "--pending", "-o", "out/"])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert r.code == ExitStatus.JOURNAL, r.err
    assert r.out == "out/a1.mp4\nout/b2.mp4\n"  # both videos saved and reported
    assert Path("out/a1.mp4").read_bytes() == VIDEO == Path("out/b2.mp4").read_bytes()
    assert str(journal_path()) in r.err
    assert "a1: download not recorded (the video is saved: out/a1.mp4)" in r.err
    assert "b2: download not recorded (the video is saved: out/b2.mp4)" in r.err
    assert KEY not in r.all
