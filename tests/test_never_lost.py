"""Issue 15, "a paid task is never lost": one test (or more) per numbered item, named
``test_itemN_...``, each reproducing the failure the issue reports and showing it closed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import responses

import wanvid.journal as journal_mod
from tests import envelope_schema
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
    rows = {row["task_id"]: row for row in envelope_schema.data(r.out)}
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


# --- item 4: verified downloads ------------------------------------------------------------

import hashlib  # noqa: E402
import random  # noqa: E402

from wanvid.download import download, mp4_problem, plain_md5  # noqa: E402
from wanvid.errors import NetworkError  # noqa: E402

BIG = mp4(random.Random(15).randbytes(200_000))
URL = "https://oss.example.com/v.mp4?Expires=4102444800&Signature=s"
MD5_ETAG = '"' + hashlib.md5(BIG).hexdigest().upper() + '"'


class Storage:
    """A storage host: ``answers`` is a list of functions, one per request (the last one
    repeats), each turning the request's Range start into (status, headers, body)."""

    def __init__(self, *answers) -> None:  # type: ignore[no-untyped-def]
        self.answers = list(answers)
        self.ranges: list[str | None] = []

    def __call__(self, request):  # type: ignore[no-untyped-def]
        rng = request.headers.get("Range")
        self.ranges.append(rng)
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        answer = self.answers[min(len(self.ranges) - 1, len(self.answers) - 1)]
        return answer(start)


def honest(start: int, etag: str = MD5_ETAG):  # type: ignore[no-untyped-def]
    body = BIG[start:]
    headers = {"ETag": etag, "Content-Length": str(len(body))}
    if start:
        headers["Content-Range"] = f"bytes {start}-{len(BIG) - 1}/{len(BIG)}"
        return 206, headers, body
    return 200, headers, body


def short_length(start: int):  # type: ignore[no-untyped-def]
    body = BIG[:-5000]  # Content-Length says what was sent; the object is longer
    return 200, {"ETag": '"opaque-1"', "Content-Length": str(len(body))}, body


def wrong_bytes(start: int):  # type: ignore[no-untyped-def]
    body = random.Random(1).randbytes(len(BIG) - start)  # the right range, the wrong data
    return 206, {"ETag": MD5_ETAG, "Content-Length": str(len(body)),
                 "Content-Range": f"bytes {start}-{len(BIG) - 1}/{len(BIG)}"}, body


def storage(mock: responses.RequestsMock, *answers) -> Storage:  # type: ignore[no-untyped-def]
    s = Storage(*answers)
    mock.add_callback(responses.GET, URL.split("?")[0], callback=s)
    return s


def test_item4_a_short_content_length_is_caught_by_the_box_walk_and_fetched_again(
        tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    with responses.RequestsMock() as mock:
        s = storage(mock, short_length, honest)
        res = download(URL, dest, sleep=lambda _: None)
    assert dest.read_bytes() == BIG and res.sha256 == hashlib.sha256(BIG).hexdigest()
    assert s.ranges == [None, None]  # the second try starts from byte 0


def test_item4_a_server_that_keeps_sending_short_bodies_fails_clearly_saving_nothing(
        tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    with responses.RequestsMock() as mock:
        s = storage(mock, short_length)
        with pytest.raises(NetworkError, match="failed verification twice .*mdat.*truncated"):
            download(URL, dest, sleep=lambda _: None)
    assert len(s.ranges) == 2
    assert not dest.exists() and not (tmp_path / "v.mp4.part").exists()


def test_item4_a_resume_answered_with_the_wrong_bytes_restarts_from_zero_once(
        tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    half = len(BIG) // 2
    (tmp_path / "v.mp4.part").write_bytes(BIG[:half])
    (tmp_path / "v.mp4.part.json").write_text(json.dumps(
        {"source": "https://oss.example.com/v.mp4", "etag": MD5_ETAG, "total": len(BIG)}))
    with responses.RequestsMock() as mock:
        s = storage(mock, wrong_bytes, honest)
        download(URL, dest, sleep=lambda _: None)
    assert dest.read_bytes() == BIG
    assert s.ranges == [f"bytes={half}-", None]


def test_item4_wrong_bytes_on_every_try_fail_clearly(tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    (tmp_path / "v.mp4.part").write_bytes(BIG[:1000])
    (tmp_path / "v.mp4.part.json").write_text(json.dumps(
        {"source": "https://oss.example.com/v.mp4", "etag": MD5_ETAG, "total": len(BIG)}))

    def wrong_full(start: int):  # type: ignore[no-untyped-def]
        status, headers, body = wrong_bytes(start)
        if not start:
            body = BIG[:32] + body[32:]  # the MP4 boxes right, the wrong data in mdat
            headers.pop("Content-Range")
            status = 200
        return status, headers, body

    with responses.RequestsMock() as mock:
        storage(mock, wrong_full)
        with pytest.raises(NetworkError, match="verification twice .*MD5 .* does not match"):
            download(URL, dest, sleep=lambda _: None)
    assert not dest.exists()


def test_item4_a_content_range_total_that_disagrees_with_the_length_is_not_trusted(
        tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    half = len(BIG) // 2
    (tmp_path / "v.mp4.part").write_bytes(BIG[:half])

    def liar(start: int):  # type: ignore[no-untyped-def]
        body = BIG[start:-100]  # says the object is bigger than the bytes it sends
        return 206, {"Content-Length": str(len(body)),
                     "Content-Range": f"bytes {start}-{len(BIG) - 1}/{len(BIG)}"}, body

    with responses.RequestsMock() as mock:
        s = storage(mock, liar, honest)
        download(URL, dest, sleep=lambda _: None)
    assert dest.read_bytes() == BIG and s.ranges == [f"bytes={half}-", None]


@pytest.mark.parametrize(("data", "problem"), [
    (mp4(b"x" * 100), None),
    (mp4(b"x" * 100)[:-1], "truncated"),
    (mp4(b"x" * 100) + b"\x00\x00\x00", "stray bytes"),
    (b"\x00\x00\x00\x08moov" + mp4(b""), "no 'ftyp'"),
    (mp4(b"") + b"\x00\x00\x00\x00mdat" + b"x" * 10, None),  # size 0: to the end
    (mp4(b"") + b"\x00\x00\x00\x01mdat" + (26).to_bytes(8, "big") + b"x" * 10, None),
    (mp4(b"") + b"\x00\x00\x00\x10\x00\x01\x02\x03" + bytes(8), "no box header"),
])
def test_item4_the_top_level_boxes_must_account_for_the_file_length(
        data: bytes, problem: str | None) -> None:
    found = mp4_problem(lambda off, n: data[off:off + n], len(data))
    assert (found is None) if problem is None else (problem in (found or ""))


def test_item4_only_a_plain_md5_etag_is_compared() -> None:
    assert plain_md5('"5B3C1A0000000000000000000000ABCD"') == "5b3c1a0000000000000000000000abcd"
    assert plain_md5('"5B3C1A0000000000000000000000ABCD-3"') is None  # multipart
    assert plain_md5('W/"5b3c1a0000000000000000000000abcd"') is None
    assert plain_md5('"etag-1"') is None and plain_md5(None) is None


# --- item 2: one unusable video URL among many ---------------------------------------------

BAD_URLS = {
    "f1": "file:///etc/passwd",
    "f2": "ftp://oss.example.com/f2.mp4",
    "f3": "oss.example.com/f3.mp4",
    "f4": "https://oss.example.com:99999/f4.mp4",
    "f5": "https://oss.example.com/loop.mp4",
}


def test_item2_an_unusable_video_url_ends_only_its_own_task(run) -> None:
    seed_journal(*BAD_URLS, "good")  # the bad ones are first in line
    with responses.RequestsMock() as rsps:
        for tid, url in BAD_URLS.items():
            rsps.add(responses.GET, f"{API}/tasks/{tid}", json=task(tid, "SUCCEEDED", video_url=url))
        rsps.add(responses.GET, "https://oss.example.com/loop.mp4", status=302,
                 headers={"Location": "https://oss.example.com/loop.mp4"})
        rsps.add(responses.GET, f"{API}/tasks/good", json=task("good", "SUCCEEDED"))
        rsps.add(responses.GET, "https://oss.example.com/good.mp4", body=VIDEO)
        r = run(["wait", "--pending"])
    assert "internal error" not in r.err and "Traceback" not in r.err
    assert r.out == "good.mp4\n" and Path("good.mp4").read_bytes() == VIDEO
    assert r.code == ExitStatus.NETWORK
    lines = {ln.split()[2]: ln for ln in r.err.splitlines() if ln.startswith("wanvid: error: f")}
    assert "scheme 'file' is not http(s)" in lines["f1"]
    assert "scheme 'ftp' is not http(s)" in lines["f2"]
    assert "it has no scheme" in lines["f3"]
    assert "99999" in lines["f4"] and "port out of range" in lines["f4"].lower()
    assert "redirects in a loop" in lines["f5"]
    assert not any(Path(f"{tid}.mp4").exists() for tid in BAD_URLS)
    # they stay in the journal (the URL may be fixed), but never block the others again
    with Journal(journal_path()) as j:
        assert {t.task_id for t in j.pending()} == set(BAD_URLS)


def test_item2_an_unreadable_status_answer_ends_only_its_own_task(run) -> None:
    seed_journal("odd", "good")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/tasks/odd", json={"output": {
            "task_status": "SUCCEEDED", "video_url": {"not": "a string"}}})
        rsps.add(responses.GET, f"{API}/tasks/good", json=task("good", "SUCCEEDED"))
        rsps.add(responses.GET, "https://oss.example.com/good.mp4", body=VIDEO)
        r = run(["wait", "--pending"])
    assert r.out == "good.mp4\n" and r.code == ExitStatus.TASK_FAILED
    assert "odd SUCCEEDED: the service reported SUCCEEDED without a video URL" in r.err


# --- item 3: on disk, not in the journal ---------------------------------------------------


def test_item3_a_saved_video_the_journal_never_heard_of_is_recognised_and_recorded(run) -> None:
    seed_journal("a1")
    Path("a1.mp4").write_bytes(VIDEO)  # the rename happened, the journal write did not
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/tasks/a1", json=task("a1", "SUCCEEDED"))
        rsps.add(responses.GET, "https://oss.example.com/a1.mp4", body=VIDEO,
                 headers={"ETag": '"opaque"'})
        r = run(["wait", "--pending"])
    assert r.code == 0, r.err
    assert r.out == "a1.mp4\n" and "already saved" in r.err
    with Journal(journal_path()) as j:
        rec = j.get("a1")
        assert rec.path == str(Path.cwd() / "a1.mp4") and rec.sha256 == hashlib.sha256(VIDEO).hexdigest()
        assert j.pending() == []
    assert run(["wait", "--pending"]).err == "wanvid: nothing pending in the journal\n"


def test_item3_with_a_plain_md5_etag_the_body_is_not_fetched_again(tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    dest.write_bytes(BIG)
    with responses.RequestsMock() as mock:
        s = storage(mock, honest)
        res = download(URL, dest, adopt=True)
    assert res.skipped and res.fetched == 0 and len(s.ranges) == 1


def test_item3_a_different_file_under_that_name_is_still_refused(run) -> None:
    seed_journal("a1")
    Path("a1.mp4").write_bytes(mp4(b"the user's own video"))
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/tasks/a1", json=task("a1", "SUCCEEDED"))
        rsps.add(responses.GET, "https://oss.example.com/a1.mp4", body=VIDEO)
        r = run(["wait", "--pending"])
    assert r.code == 2 and "file exists; pass --force" in r.err
    assert Path("a1.mp4").read_bytes() == mp4(b"the user's own video")


def test_item3_after_a_journal_outage_the_next_wait_records_every_saved_video(
        run, monkeypatch: pytest.MonkeyPatch) -> None:
    test_item8_a_journal_write_failure_during_a_wait_does_not_stop_downloads(run, monkeypatch)
    with responses.RequestsMock() as rsps:
        for tid in ("a1", "b2"):
            rsps.add(responses.GET, f"{API}/tasks/{tid}", json=task(tid, "SUCCEEDED"))
            rsps.add(responses.GET, f"https://oss.example.com/{tid}.mp4", body=VIDEO)
        r = run(["wait", "--pending", "-o", "out/"])  # -o was not recorded either
    assert r.code == 0, r.err
    assert r.out == "out/a1.mp4\nout/b2.mp4\n" and r.err.count("already saved") == 2
    with Journal(journal_path()) as j:
        assert j.pending() == [] and j.get("a1").path == str(Path.cwd() / "out" / "a1.mp4")


# --- item 7: parallel recoveries -----------------------------------------------------------


def test_item7_a_video_another_process_is_downloading_is_left_to_it(run) -> None:
    import fcntl
    import os

    seed_journal("a1")
    part = Path("a1.mp4.part")
    other = os.open(part, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(other, fcntl.LOCK_EX)  # the other process's lock on the .part
    polls = []

    def status(request):  # type: ignore[no-untyped-def]
        polls.append(1)
        if len(polls) == 3:  # meanwhile the other process finishes and records it
            os.write(other, VIDEO)
            os.replace(part, "a1.mp4")
            with Journal(journal_path()) as j:
                j.record_download("a1", path="a1.mp4", size=len(VIDEO),
                                  sha256=hashlib.sha256(VIDEO).hexdigest())
            os.close(other)
        return 200, {}, json.dumps(task("a1", "SUCCEEDED"))

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, f"{API}/tasks/a1", callback=status)
        r = run(["wait", "--pending"])
        assert not any("oss.example.com" in c.request.url for c in rsps.calls)
    assert r.code == 0, r.err
    assert r.out == "a1.mp4\n"
    assert "a1: another wanvid process is downloading it; waiting for that" in r.err
    assert len(polls) == 3


# --- item 6: a task's status comes only from the root it was submitted to -------------------

ROOT_A = "http://127.0.0.1:8765/api/v1"
ROOT_B = "http://127.0.0.1:9999/api/v1"


def test_item6_a_task_is_queried_at_its_own_root_whatever_base_url_says_now(run) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.POST, f"{ROOT_A}/services/aigc/video-generation/video-synthesis",
                 json={"request_id": "r", "output": {"task_id": "a1", "task_status": "PENDING"}})
        assert run(["--base-url", ROOT_A, "submit", "https://example.com/cat.png"]).code == 0
        # B would answer UNKNOWN (it never heard of a1): it must not be asked
        rsps.add(responses.GET, f"{ROOT_B}/tasks/a1", json=task("a1", "UNKNOWN"))
        rsps.add(responses.GET, f"{ROOT_A}/tasks/a1", json=task("a1", "RUNNING"))
        r = run(["--base-url", ROOT_B, "status", "a1"])
        assert r.code == 0 and r.out == "a1 RUNNING\n"
        r = run(["--base-url", ROOT_B, "wait", "--pending", "--timeout", "0"])
        assert r.code == ExitStatus.TIMEOUT  # still alive, still pending: not marked dead
        assert not any(c.request.url.startswith(ROOT_B) for c in rsps.calls)
    with Journal(journal_path()) as j:
        assert [t.task_id for t in j.pending()] == ["a1"] and j.get("a1").status == "RUNNING"


def test_item6_the_journal_root_is_used_without_extra_flags(run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{ROOT_A}/services/aigc/video-generation/video-synthesis",
                 json={"request_id": "r", "output": {"task_id": "a1", "task_status": "PENDING"}})
        assert run(["--base-url", ROOT_A, "submit", "https://example.com/cat.png"]).code == 0
        rsps.add(responses.GET, f"{ROOT_A}/tasks/a1", json=task("a1", "SUCCEEDED"))
        rsps.add(responses.GET, "https://oss.example.com/a1.mp4", body=VIDEO)
        r = run(["wait", "--pending"])  # no --base-url: the journal says where a1 lives
        assert r.code == 0, r.err
        assert r.out == "a1.mp4\n" and "--base-url" not in r.err
        assert run(["status", "a1"]).out.startswith("a1 SUCCEEDED")
        assert all(c.request.url.startswith((ROOT_A, "https://oss.")) for c in rsps.calls)


# --- item 5: outputs checked before paying -------------------------------------------------


def _unwritable_dir(tmp_path: Path) -> Path:
    import os
    import stat

    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(stat.S_IRUSR | stat.S_IXUSR)
        return d
    if not Path("/sys").is_dir():
        pytest.skip("needs a directory root cannot write in (/sys)")
    return Path("/sys")  # sysfs: not even root can create a file there


@pytest.mark.parametrize("where", ["under-a-file", "unwritable", "template-under-a-file"])
def test_item5_an_output_that_cannot_be_written_is_refused_before_the_submit(
        run, tmp_path: Path, where: str) -> None:
    Path("notes.txt").write_text("a regular file")
    output = {"under-a-file": "notes.txt/clip.mp4",
              "unwritable": str(_unwritable_dir(tmp_path) / "videos" / "{task_id}.mp4"),
              "template-under-a-file": "notes.txt/{model}/{stem}.mp4"}[where]
    with responses.RequestsMock() as rsps:  # nothing may be sent
        for argv in (["generate", "https://example.com/cat.png", "-o", output],
                     ["wait", "t1", "-o", output]):
            r = run(argv)
            assert r.code == ExitStatus.BAD_INPUT, r.err
            assert r.err.count("\n") == 1 and "nothing was sent" in r.err
        jobs = json.dumps({"image": "https://example.com/cat.png", "output": output})
        r = run(["batch", "-"], stdin=jobs + "\n")
        assert r.code == ExitStatus.BAD_INPUT and "nothing was sent" in r.err
        assert len(rsps.calls) == 0
    assert "is a file" in r.err or "cannot write" in r.err


def test_item5_a_write_failure_after_paying_is_not_exit_2(run) -> None:
    seed_journal("a1")
    Path("out").mkdir()

    def status(request):  # type: ignore[no-untyped-def]
        Path("out").rmdir()
        Path("out").write_text("now a file")  # the disk changed while the task ran
        return 200, {}, json.dumps(task("a1", "SUCCEEDED"))

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, f"{API}/tasks/a1", callback=status)
        r = run(["wait", "a1", "-o", "out/"])
    assert r.code == ExitStatus.OUTPUT == 9
    assert "out" in r.err and "cannot create" in r.err
    with Journal(journal_path()) as j:
        assert [t.task_id for t in j.pending()] == ["a1"]  # still to be saved
