"""Paths in the journal are absolute; what wanvid prints is what the user typed (issue 17,
"Absolute paths in the journal"; review 2026-12-03 #4 item 4).

A relative -o (or template) and relative input files are journaled joined with the
directory they were typed in, so `wanvid wait --pending` from anywhere saves where the
first run would have and `tasks --json | jq -r '.[].path'` names files from anywhere. The
saved-path lines keep the typed form in the run that was given it (batch rows included,
for jobs an earlier run submitted too) and, for a name that only the journal holds, the
form relative to the current directory when the video lies under it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import responses

from tests.conftest import KEY, FakeClock, Result
from tests.test_batch import Service as FakeAPI
from tests.test_batch import images, jsonl
from wanvid.context import Environment
from wanvid.outputs import absolute_template, shown_path
from wanvid.service import Service

Run = Callable[..., Result]


def make(clock: FakeClock, **environ: str) -> Service:
    env = Environment(environ=dict(os.environ, DASHSCOPE_API_KEY=KEY, **environ),
                      stdin=io.StringIO(""), stdout=io.StringIO(), stderr=io.StringIO(),
                      stdin_isatty=False, stderr_isatty=False, now=clock.now,
                      monotonic=clock.now, sleep=clock.sleep, cwd=Path.cwd())
    return Service(env)


# --- the helpers -----------------------------------------------------------------------

@pytest.mark.parametrize(("template", "output_dir", "expected"), [
    ("t1.mp4", None, "/w/t1.mp4"),
    ("videos/{stem}.mp4", None, "/w/videos/{stem}.mp4"),
    ("clips/", None, "/w/clips/"),  # still a directory
    ("../x.mp4", None, "/w/../x.mp4"),  # joined as text: shown_path gives ../x.mp4 back
    ("/abs/{task_id}.mp4", None, "/abs/{task_id}.mp4"),
    ("a.mp4", Path("out"), "/w/out/a.mp4"),  # a relative output_dir is under cwd too
    ("a.mp4", Path("/videos"), "/videos/a.mp4"),
])
def test_absolute_template(template: str, output_dir: Path | None, expected: str) -> None:
    assert absolute_template(template, Path("/w"), output_dir) == expected


def test_absolute_template_expands_the_home_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/u")
    assert absolute_template("~/v/{stem}.mp4", Path("/w")) == "/home/u/v/{stem}.mp4"


@pytest.mark.parametrize(("path", "expected"), [
    ("/w/videos/a.mp4", "videos/a.mp4"),
    ("/w/../x.mp4", "../x.mp4"),
    ("/elsewhere/a.mp4", "/elsewhere/a.mp4"),
    ("/wx/a.mp4", "/wx/a.mp4"),  # a sibling with the same prefix is not under /w
    ("rel/a.mp4", "rel/a.mp4"),  # a journal written before the fix: as it was
])
def test_shown_path(path: str, expected: str) -> None:
    assert shown_path(Path(path), Path("/w")) == Path(expected)


# --- the service ---------------------------------------------------------------------------

def test_a_relative_output_and_input_are_journaled_absolute(clock: FakeClock) -> None:
    images("a.png")
    work = Path.cwd()
    svc = make(clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps)
        svc.submit(svc.prepare(svc.options("a.png")), output="videos/{stem}.mp4")
    rec = svc.journal.get("t-1")
    assert rec is not None
    assert rec.output == str(work / "videos" / "{stem}.mp4")
    assert rec.inputs == [str(work / "a.png")]
    (it,) = svc.journal.intents()  # the write-ahead record too (adopted tasks inherit it)
    assert it.output == rec.output and it.inputs == rec.inputs


def test_a_dotted_input_is_journaled_normalised(clock: FakeClock) -> None:
    images("a.png")
    Path("sub").mkdir()
    svc = make(clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps)
        svc.submit(svc.prepare(svc.options("./sub/../a.png")))
    rec = svc.journal.get("t-1")
    assert rec is not None and rec.inputs == [str(Path.cwd() / "a.png")]


def test_a_url_input_and_an_absolute_output_are_journaled_as_given(clock: FakeClock) -> None:
    svc = make(clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps)
        rsps.add(responses.HEAD, "https://img.example/cat.png", status=200,
                 headers={"Content-Type": "image/png"})
        svc.submit(svc.prepare(svc.options("https://img.example/cat.png")),
                   output="/tmp/wanvid-x/{task_id}.mp4")
    rec = svc.journal.get("t-1")
    assert rec is not None
    assert rec.inputs == ["https://img.example/cat.png"]
    assert rec.output == "/tmp/wanvid-x/{task_id}.mp4"


def test_output_dir_and_a_relative_output_are_journaled_as_one_absolute_path(
        clock: FakeClock) -> None:
    svc = make(clock, WANVID_OUTPUT_DIR="out")
    assert svc.journal_output("a.mp4") == str(Path.cwd() / "out" / "a.mp4")


def test_wait_o_is_journaled_absolute(clock: FakeClock) -> None:
    svc = make(clock)
    svc.journal.update_status("t-9", "RUNNING")
    svc.remember_output(["t-9"], "clips/")
    rec = svc.journal.get("t-9")
    assert rec is not None and rec.output == str(Path.cwd() / "clips") + "/"


def test_a_wait_from_another_directory_saves_where_the_submit_was_given_it(
        clock: FakeClock, tmp_path: Path) -> None:
    images("a.png", "b.png")
    work = Path.cwd()
    other = tmp_path / "elsewhere"
    other.mkdir()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps)
        svc = make(clock)
        for name in ("a.png", "b.png"):
            svc.submit(svc.prepare(svc.options(name)), output="videos/{stem}.mp4")
        os.chdir(other)
        (far,) = make(clock).wait(["t-1"]).outcomes
        os.chdir(work)
        (near,) = make(clock).wait(["t-2"]).outcomes
    # From elsewhere: saved under the submit's directory, named absolute.
    assert far.path == work / "videos" / "a.mp4" and far.path.stat().st_size > 0
    assert not list(other.iterdir())
    # From the submit's directory: printed as typed there.
    assert near.path == Path("videos/b.mp4") and (work / "videos" / "b.mp4").is_file()
    j = make(clock).journal
    assert [j.get(t).path for t in ("t-1", "t-2")] == [  # type: ignore[union-attr]
        str(work / "videos" / "a.mp4"), str(work / "videos" / "b.mp4")]


# --- the CLI: what is printed -------------------------------------------------------------

def test_generate_prints_a_relative_output_as_typed(run: Run) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps)
        r = run(["generate", "a.png", "-p", "x", "-o", "videos/{stem}.mp4"])
    assert r.code == 0, r.err
    assert r.out == "videos/a.mp4\n"


@pytest.mark.parametrize("absolute", [False, True])
def test_a_batch_resumed_in_its_directory_prints_its_outputs_as_typed(
        run: Run, absolute: bool) -> None:
    images("a.png", "b.png")
    out = str(Path.cwd() / "abs" / "{stem}.mp4") if absolute else "rel/{stem}.mp4"
    jobs = jsonl({"image": "a.png"}, {"image": "b.png", "output": "own/{stem}.mp4"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps)
        first = run(["batch", "-", "-o", out, "--no-download"], stdin=jobs)
        assert first.code == 0, first.err
        again = run(["batch", "-", "-o", out], stdin=jobs)  # waits for them, then saves
    assert again.code == 0, again.err
    assert sorted(again.out.splitlines()) == sorted([out.format(stem="a"), "own/b.mp4"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps)
        done = run(["batch", "-", "-o", out], stdin=jobs)  # skipped: already saved
    assert sorted(done.out.splitlines()) == sorted(again.out.splitlines())


# --- names that are not UTF-8 (a file name's undecodable bytes, as os.fsdecode gives them) --

NOT_UTF8 = os.fsdecode(b"caf\xe9")  # 'caf\udce9'


def test_the_journal_keeps_names_that_are_not_utf8_unchanged(tmp_path: Path,
                                                              clock: FakeClock) -> None:
    from wanvid.journal import Journal

    name = f"/w/{NOT_UTF8}/{{stem}}.mp4"
    with Journal(tmp_path / "j.db", now=clock.now) as j:
        it = j.open_intent(model="m", model_name="m", base_url="https://x", prompt=NOT_UTF8,
                           params={"p": NOT_UTF8}, inputs=[f"/w/{NOT_UTF8}.png"],
                           output=name)
        (got,) = j.open_intents()
        assert got.output == name and got.inputs == [f"/w/{NOT_UTF8}.png"]
        assert got.params == {"p": NOT_UTF8}
        j.adopt_intent(it, "t-1")
        j.record_submit("t-2", model="m", base_url="https://x", params={},
                        inputs=[f"{NOT_UTF8}.png"], output=name)
        j.set_output("t-3", f"{NOT_UTF8}.mp4")
        j.record_download("t-2", path=f"/w/{NOT_UTF8}.mp4", size=1, sha256="0" * 64)
        one, two, three = (j.get(t) for t in ("t-1", "t-2", "t-3"))
        assert one is not None and two is not None and three is not None
        assert one.output == two.output == name and one.inputs == [f"/w/{NOT_UTF8}.png"]
        assert two.inputs == [f"{NOT_UTF8}.png"] and two.path == f"/w/{NOT_UTF8}.mp4"
        assert three.output == f"{NOT_UTF8}.mp4"
    # The journal stays readable by anything that reads SQLite: a UTF-8 text or bytes.
    import sqlite3

    db = sqlite3.connect(tmp_path / "j.db")
    path, inputs = db.execute("SELECT path, inputs FROM tasks WHERE task_id = 't-2'").fetchone()
    assert path == b"/w/caf\xe9.mp4" and inputs == '["caf\\udce9.png"]'


def _bad_file(suffix: str) -> str:
    from tests.fixtures_media import png_bytes

    name = NOT_UTF8 + suffix
    Path(name).write_bytes(png_bytes(640, 480))
    return name


@pytest.mark.parametrize(("args", "shown"), [
    (["submit", "IMG", "-p", "x"], "IMAGE caf\\xe9.png"),
    (["generate", "IMG", "-p", "x"], "IMAGE caf\\xe9.png"),
    (["submit", "a.png", "--last-frame", "IMG", "-m", "wan2.2-kf2v-flash"],
     "--last-frame caf\\xe9.png"),
    (["batch", "-", "-o", "OUT"], "-o caf\\xe9.mp4"),
    (["generate", "a.png", "-p", "x", "-o", "OUT"], "-o caf\\xe9.mp4"),
    (["wait", "t-1", "-o", "OUT"], "-o caf\\xe9.mp4"),
    (["download", "t-1", "-o", "OUT"], "-o caf\\xe9.mp4"),
    (["submit", "a.png", "-p", "PROMPT"], "--prompt caf\\xe9"),
])
def test_a_name_that_is_not_utf8_is_refused_before_anything_is_sent(
        run: Run, args: list[str], shown: str) -> None:
    images("a.png")
    subst = {"IMG": _bad_file(".png"), "OUT": NOT_UTF8 + ".mp4", "PROMPT": NOT_UTF8}
    with responses.RequestsMock() as rsps:  # any request fails the test
        r = run([subst.get(a, a) for a in args],
                stdin=jsonl({"image": "a.png"}) if args[0] == "batch" else None)
        assert len(rsps.calls) == 0
    assert r.code == 2, r.err
    assert r.err.count("\n") == 1 and r.err.startswith(f"wanvid: error: {shown}: not valid "
                                                       "UTF-8"), r.err
    assert "(nothing was sent)" in r.err


def test_a_directory_whose_name_is_not_utf8_works(run: Run) -> None:
    import json

    work = Path(NOT_UTF8)
    work.mkdir()
    os.chdir(work)
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps)
        r = run(["generate", "a.png", "-p", "x", "-o", "videos/{stem}.mp4"])
        assert r.code == 0, r.err
        assert r.out == "videos/a.mp4\n"
        t = run(["tasks", "--json"])
    assert t.code == 0, t.err
    (row,) = json.loads(t.out)["data"]
    assert row["path"] == str(Path.cwd() / "videos" / "a.mp4")
    assert row["inputs"] == [str(Path.cwd() / "a.png")]
    side = json.loads(Path("videos/a.json").read_text(errors="strict"))  # escaped, valid
    assert side["inputs"][0]["name"] == str(Path.cwd() / "a.png")


def test_a_stem_that_is_not_utf8_makes_a_file_name() -> None:
    from wanvid.outputs import sanitize

    assert sanitize(NOT_UTF8) == "caf_"


# --- a journal that cannot be written: listed read-only (`tasks`), refused in one line -------

def test_a_read_only_journal_reads_and_refuses_writes(tmp_path: Path, clock: FakeClock) -> None:
    from wanvid.errors import ExitStatus, JournalError
    from wanvid.journal import Journal

    path = tmp_path / "journal.db"
    with Journal(path, now=clock.now) as j:
        j.record_submit("t-1", model="m", base_url="https://x", params={}, inputs=[])
        with Journal(path, now=clock.now, read_only=True) as ro:
            assert [r.task_id for r in ro.list()] == ["t-1"]
            j.update_status("t-1", "RUNNING")  # a writer goes on meanwhile (WAL)
            assert ro.get("t-1").status == "RUNNING"  # type: ignore[union-attr]
            with pytest.raises(JournalError) as e:
                ro.update_status("t-1", "SUCCEEDED")
            assert e.value.exit_status == ExitStatus.JOURNAL


def test_a_missing_journal_read_only_is_empty_and_not_created(tmp_path: Path) -> None:
    from wanvid.journal import Journal

    with Journal(tmp_path / "state" / "journal.db", read_only=True) as ro:
        assert ro.list() == [] and ro.open_intents() == []
    assert not (tmp_path / "state").exists()


def test_a_newer_journal_is_refused_read_only_too(tmp_path: Path) -> None:
    import sqlite3

    from wanvid.errors import JournalError
    from wanvid.journal import SCHEMA_VERSION, Journal

    Journal(tmp_path / "journal.db").close()
    db = sqlite3.connect(tmp_path / "journal.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="newer wanvid"):
        Journal(tmp_path / "journal.db", read_only=True)


@pytest.fixture
def unwritable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal's file system refuses writes (EROFS), as a read-only mount or a 0444
    journal does (the e2e test mounts one; as root chmod would not stop the suite)."""
    import errno

    from wanvid import journal

    def refuse(path: Path) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(journal, "_open_private", refuse)


def test_tasks_lists_a_journal_that_cannot_be_written(run: Run, clock: FakeClock,
                                                      unwritable: None) -> None:
    import json
    import sqlite3

    from wanvid.journal import default_journal_path, upgrade

    journal_path = default_journal_path(os.environ)
    journal_path.parent.mkdir(parents=True)
    db = sqlite3.connect(journal_path, isolation_level=None)  # (Journal() is refused)
    db.execute("BEGIN IMMEDIATE")
    upgrade(db, journal_path)
    db.execute("INSERT INTO tasks (task_id, submitted_at, status, updated_at) "
               "VALUES ('t-1', 1, 'RUNNING', 1)")
    db.execute("COMMIT")
    db.close()
    r = run(["tasks"])
    assert r.code == 0, r.err
    assert r.out.startswith("t-1 RUNNING") and r.err == ""
    r = run(["tasks", "--json"])
    assert r.code == 0 and [t["task_id"] for t in json.loads(r.out)["data"]] == ["t-1"]
    assert run(["usage"]).code == 0


def test_a_command_that_writes_an_unwritable_journal_says_so_in_one_line(
        run: Run, unwritable: None) -> None:
    images("a.png")
    with responses.RequestsMock() as rsps:  # nothing is sent
        r = run(["submit", "a.png", "-p", "x"])
        assert len(rsps.calls) == 0
    assert r.code == 8
    assert r.err.count("\n") == 1 and "the task journal cannot be written (Read-only file " \
        "system), and this command writes it" in r.err and "nothing was sent)" in r.err
