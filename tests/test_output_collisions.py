"""Two tasks are never saved as one file, and that is found before any request (review
2026-12-04 F17): `wait -o "{stem}.mp4"` for two tasks whose inputs share a stem (the
journal knows every task's inputs), `wait --pending` of tasks submitted with one such -o,
a task that would overwrite a video the journal saved for another (the xargs recipe run
twice), `-o FILE` for several tasks. A name only the service's answer settles is checked
before its download (exit 9, the task stays pending). batch: two jobs writing one file are
invalid lines, and `-o DIR/` is one file per task, not one for all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import responses

from tests.conftest import Result
from tests.test_batch import Service as FakeAPI
from tests.test_batch import images, jsonl
from tests.test_cli_wait import API, VIDEO, add_video, task
from tests.test_never_lost import journal_path
from wanvid.journal import Journal

Run = Callable[..., Result]


def submit_twice(run: Run, rsps: responses.RequestsMock, *extra: str) -> FakeAPI:
    """t-1 and t-2, both made from a.png (the bash loop run twice, or two directories)."""
    api = FakeAPI(rsps)
    for prompt in ("one", "two"):
        r = run(["submit", "a.png", "-p", prompt, *extra])
        assert r.code == 0, r.err
    return api


def interrupted_submit() -> None:
    """An open submit intent whose process is gone."""
    import sqlite3

    with Journal(journal_path()) as j:
        j.open_intent(model="wan2.2-i2v-flash", model_name="wan2.2-i2v-flash", base_url=API,
                      prompt="cut", params={}, inputs=["a.png"])
    db = sqlite3.connect(journal_path())
    with db:
        db.execute("UPDATE intents SET pid = ?, started = 1", (2 ** 22 + 7,))
    db.close()


def calls_after(rsps: responses.RequestsMock, n: int) -> list[str]:
    return [c.request.url for c in rsps.calls[n:]]


def test_a_template_giving_two_tasks_one_name_is_refused_before_any_request(run: Run) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        submit_twice(run, rsps)
        before = len(rsps.calls)
        r = run(["wait", "t-1", "t-2", "-o", "clips/{stem}.mp4"])
        sent = calls_after(rsps, before)
    assert (r.code, sent, r.out) == (2, [], "")
    assert r.err == ("wanvid: error: -o clips/{stem}.mp4 names one file, clips/a.mp4, for "
                     "tasks t-1 and t-2; add {task_id} to it (no task was waited for)\n")
    assert not Path("clips").exists()
    with Journal(journal_path()) as j:  # the refused -o is not journaled either
        assert [j.get(t).output for t in ("t-1", "t-2")] == [None, None]  # type: ignore[union-attr]


def test_wait_pending_with_such_a_template_is_refused_before_any_request(run: Run) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        submit_twice(run, rsps)
        interrupted_submit()  # what wait --pending settles first, asking the task list
        before = len(rsps.calls)
        r = run(["wait", "--pending", "-o", "clips/{stem}.mp4", "--json"])
        sent = calls_after(rsps, before)
    assert (r.code, sent) == (2, [])
    assert "names one file, clips/a.mp4, for tasks t-1 and t-2" in r.err
    assert '"code": "bad_input"' in r.out


def test_tasks_given_one_name_are_refused_by_wait_pending(run: Run) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        # Two generates that timed out (or were interrupted): each -o is journaled.
        api = FakeAPI(rsps, states={"*": ["RUNNING"]})
        for prompt in ("one", "two"):
            r = run(["generate", "a.png", "-p", prompt, "-o", "clips/{stem}.mp4",
                     "--timeout", "30"])
            assert r.code == 6, r.err
        api.states = {}
        before = len(rsps.calls)
        r = run(["wait", "--pending"])
        sent = calls_after(rsps, before)
        assert (r.code, sent) == (2, []), r.err
        assert r.err == ("wanvid: error: tasks t-1 and t-2 would both be saved as "
                         "clips/a.mp4 (-o " + str(Path.cwd() / "clips/{stem}.mp4") +
                         ", journaled with them); give -o with {task_id} to save them "
                         "apart (no task was waited for)\n")
        # The way out the message names works.
        r = run(["wait", "--pending", "-o", "clips/{stem}-{task_id}.mp4"])
    assert r.code == 0, r.err
    assert sorted(r.out.split()) == ["clips/a-t-1.mp4", "clips/a-t-2.mp4"]


def test_a_video_journaled_for_another_task_is_not_overwritten_nor_taken(run: Run) -> None:
    # The xargs recipe run twice: clips/a.mp4 is t-1's; t-2 (from a.png again) must not
    # overwrite it, nor be recorded as saved there (the fake serves identical bytes).
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps)
        assert run(["generate", "a.png", "-p", "one", "-o", "clips/{stem}.mp4"]).code == 0
        assert run(["submit", "a.png", "-p", "two"]).code == 0
        before = len(rsps.calls)
        r = run(["wait", "--pending", "-o", "clips/{stem}.mp4"])
        sent = calls_after(rsps, before)
        assert (r.code, sent) == (2, []), r.err
        assert r.err == ("wanvid: error: clips/a.mp4 holds task t-1's video, so task t-2 "
                         "cannot be saved as it; choose another -o, or pass --force to "
                         "overwrite it (no task was waited for)\n")
        with Journal(journal_path()) as j:
            assert j.get("t-2").path is None  # type: ignore[union-attr]
        r = run(["wait", "--pending", "-o", "clips/{stem}.mp4", "--force"])
    assert (r.code, r.out) == (0, "clips/a.mp4\n"), r.err


def test_a_file_in_the_way_is_still_never_overwritten_without_force(run: Run) -> None:
    Path("a1.mp4").write_bytes(b"precious")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, f"{API}/tasks/a1", json=task("a1", "SUCCEEDED"))
        add_video(rsps, "a1")
        r = run(["wait", "a1", "-o", "{task_id}.mp4"])
    assert r.code == 2 and "file exists; pass --force" in r.err
    assert Path("a1.mp4").read_bytes() == b"precious"


def test_one_file_for_several_tasks_counts_each_task_once(run: Run) -> None:
    # `-o FILE` with several tasks is refused up front (test_cli_wait); one id given twice
    # is one task.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, f"{API}/tasks/a1", json=task("a1", "SUCCEEDED"))
        add_video(rsps, "a1")
        r = run(["wait", "a1", "a1", "-o", "clip.mp4"])
    assert r.code == 0, r.err
    assert Path("clip.mp4").read_bytes() == VIDEO


def test_a_name_only_the_answer_settles_is_checked_before_the_download(run: Run) -> None:
    # Tasks this journal does not know: their model comes with the service's answer.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for tid in ("x1", "x2"):
            rsps.add(responses.GET, f"{API}/tasks/{tid}",
                     json=task(tid, "SUCCEEDED", model="wan2.6-i2v"))
            add_video(rsps, tid)
        r = run(["wait", "x1", "x2", "-o", "{model}.mp4"])
        fetched = [u for u in calls_after(rsps, 0) if "oss.example.com" in u]
    assert r.code == 9, r.err
    assert r.out == "wan2.6-i2v.mp4\n" and len(fetched) == 1
    first = "x1" if "x2: -o" in r.err else "x2"
    second = "x2" if first == "x1" else "x1"
    assert (f"{second}: -o {{model}}.mp4 names wan2.6-i2v.mp4, the file task {first} of this "
            f"wait is saved as; the task stays pending: `wanvid wait {second} -o DIR/`") in r.err
    with Journal(journal_path()) as j:
        assert [t.task_id for t in j.pending()] == [second]


def test_batch_into_a_directory_saves_one_file_per_task(run: Run) -> None:
    images("a.png", "b.png")
    Path("vid").mkdir()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        api = FakeAPI(rsps)
        r = run(["batch", "-", "-o", "vid/"], stdin=jsonl({"image": "a.png"},
                                                          {"image": "b.png"}))
    assert r.code == 0, r.err
    assert api.submit_calls == 2
    assert sorted(p for p in os.listdir("vid") if p.endswith(".mp4")) == ["t-1.mp4", "t-2.mp4"]


def test_batch_jobs_whose_names_collide_are_still_refused_before_paying(run: Run) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        api = FakeAPI(rsps)
        r = run(["batch", "-", "-o", "vid/{stem}"],
                stdin=jsonl({"image": "a.png", "seed": 1}, {"image": "./a.png", "seed": 2}))
    assert (r.code, api.submit_calls, len(rsps.calls)) == (2, 0, 0)
    assert "line 2: saves to vid/a.mp4 like line 1" in r.err
