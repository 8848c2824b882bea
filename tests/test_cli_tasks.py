"""`wanvid tasks`: the journal newest first, --limit, --forget."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import envelope_schema
from tests.conftest import FakeClock, Result
from wanvid.journal import Journal

Run = Callable[..., Result]


def _journal() -> Journal:
    return Journal(Path(os.environ["WANVID_STATE_DIR"]) / "journal.db")


@pytest.fixture
def four(clock: FakeClock) -> list[str]:
    ids = ["t-a", "t-b", "t-c", "t-d"]
    with _journal() as j:
        for i, tid in enumerate(ids):
            j._now = lambda i=i: clock.now() - 3600 + i * 60  # type: ignore[method-assign]
            j.record_submit(tid, model="wan2.6-i2v-flash", base_url="https://x/api/v1",
                            params={}, inputs=[])
    return ids


def _ids(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines()]


def test_tasks_are_listed_newest_first(run: Run, four: list[str]) -> None:
    r = run(["tasks"])
    assert r.code == 0 and _ids(r.out) == ["t-d", "t-c", "t-b", "t-a"]
    r = run(["tasks", "--json"])
    assert [t["task_id"] for t in envelope_schema.data(r.out, "tasks")] == [
        "t-d", "t-c", "t-b", "t-a"]


def test_limit_keeps_the_newest(run: Run, four: list[str]) -> None:
    assert _ids(run(["tasks", "--limit", "2"]).out) == ["t-d", "t-c"]
    assert _ids(run(["tasks", "-n", "1"]).out) == ["t-d"]
    r = run(["tasks", "--limit", "0"])
    assert r.code == 2 and r.out == ""


def test_forget_removes_rows_and_says_so(run: Run, four: list[str]) -> None:
    r = run(["tasks", "--forget", "t-b", "--forget", "t-d"])
    assert (r.code, r.out) == (0, "")
    assert r.err == "wanvid: forgot 2 task(s)\n"
    assert _ids(run(["tasks"]).out) == ["t-c", "t-a"]


def test_forget_reads_ids_from_stdin(run: Run, four: list[str]) -> None:
    r = run(["tasks", "--forget", "-", "--json"], stdin="t-a\nt-c\n")
    assert r.code == 0
    assert envelope_schema.data(r.out, "tasks") == {"forgotten": ["t-a", "t-c"]}
    assert _ids(run(["tasks"]).out) == ["t-d", "t-b"]


def test_forget_of_an_empty_pipe_is_nothing_to_do(run: Run, four: list[str]) -> None:
    # tasks --help's example in a cron job with no FAILED task: jq prints nothing
    r = run(["tasks", "--forget", "-", "--json"], stdin="")
    assert r.code == 0, r.err
    assert envelope_schema.data(r.out, "tasks") == {"forgotten": []}
    assert len(_ids(run(["tasks"]).out)) == 4


def test_forget_of_an_unknown_id_removes_nothing(run: Run, four: list[str]) -> None:
    r = run(["tasks", "--forget", "t-a", "--forget", "t-zz"])
    assert r.code == 2 and r.out == ""
    assert r.err == ("wanvid: error: --forget: t-zz is not in the journal; nothing was "
                     "removed (`wanvid tasks` lists it)\n")
    assert len(_ids(run(["tasks"]).out)) == 4


def test_forget_refuses_what_cannot_be_a_task_id(run: Run, four: list[str]) -> None:
    r = run(["tasks", "--forget", "-"], stdin="t-a\n../etc\n")
    assert r.code == 2 and "is not a task id" in r.err
    assert len(_ids(run(["tasks"]).out)) == 4


def test_forget_keeps_the_video(run: Run, four: list[str], tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"video")
    with _journal() as j:
        j.record_download("t-a", path=video, size=5, sha256="0" * 64)
    assert run(["tasks", "--forget", "t-a"]).code == 0
    assert video.read_bytes() == b"video"
