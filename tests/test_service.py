"""The core without the CLI: ``Service`` use cases and the batch ``plan``/``Runner``, driven
directly from Python with an injected Environment, a fake clock and ``responses``."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.conftest import KEY, FakeClock
from tests.fixtures_media import png_bytes
from tests.test_batch import NOW, images, jsonl
from tests.test_batch import Service as FakeAPI
from wanvid.batch import Runner, plan
from wanvid.context import Environment
from wanvid.errors import BadInputError, ExitStatus
from wanvid.progress import QuietReporter
from wanvid.service import Service


def make(clock: FakeClock, stdin: str = "") -> Service:
    environ = dict(os.environ, DASHSCOPE_API_KEY=KEY)
    env = Environment(environ=environ, stdin=io.StringIO(stdin), stdout=io.StringIO(),
                      stderr=io.StringIO(), stdin_isatty=False, stderr_isatty=False,
                      now=clock.now, monotonic=clock.now, sleep=clock.sleep, cwd=Path.cwd())
    return Service(env)


def test_submit_journals_the_task_and_returns_its_id(clock: FakeClock) -> None:
    images("a.png")
    svc = make(clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        api = FakeAPI(rsps)
        sub = svc.submit(svc.prepare(svc.options("a.png", prompt="waves", seed=3)))
    assert sub.task_id == "t-1" and api.submit_calls == 1
    rec = svc.journal.get("t-1")
    assert rec is not None and rec.params["seed"] == 3 and rec.status == "PENDING"
    assert svc.env.stdout.getvalue() == ""  # the core prints no results


def test_wait_returns_one_outcome_per_task_and_saves_the_videos(clock: FakeClock) -> None:
    images("a.png")
    svc = make(clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps, states={"t-1": ["RUNNING", "SUCCEEDED"]})
        tid = svc.submit(svc.prepare(svc.options("a.png"))).task_id
        res = svc.wait([tid], output="out/")
    assert res.exit_status == ExitStatus.OK
    [o] = res.outcomes
    assert o.status == "SUCCEEDED" and o.path == Path("out/t-1.mp4")
    assert o.path.read_bytes()[4:8] == b"ftyp"
    assert svc.journal.get(tid).path == str(o.path.resolve())  # type: ignore[union-attr]


def test_a_failed_task_is_a_result_not_an_exception(clock: FakeClock) -> None:
    images("a.png")
    svc = make(clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps, states={"t-1": ["FAILED"]})
        tid = svc.submit(svc.prepare(svc.options("a.png"))).task_id
        res = svc.wait([tid])
    assert res.exit_status == ExitStatus.TASK_FAILED
    assert res.outcomes[0].code == "InternalError.Algo"


def test_bad_input_raises_before_anything_is_sent(clock: FakeClock) -> None:
    images("a.png")
    svc = make(clock)
    with responses.RequestsMock() as rsps:  # any request fails the test
        with pytest.raises(BadInputError) as e:
            svc.prepare(svc.options("a.png", duration=11))
        assert len(rsps.calls) == 0
    assert e.value.exit_status == ExitStatus.BAD_INPUT


def test_read_ids_refuses_what_cannot_be_a_task_id(clock: FakeClock) -> None:
    svc = make(clock, stdin='{"output": {"task_id": "x"}}\n')
    with pytest.raises(BadInputError, match="is not a task id"):
        svc.read_ids(None)
    assert svc.read_ids(["abc-1", " "]) == ["abc-1"]
    assert svc.read_ids(["b-2", "abc-1", "b-2"]) == ["b-2", "abc-1"]  # each once, in order


def test_download_refuses_what_cannot_be_a_task_id_before_any_request(
        clock: FakeClock) -> None:
    svc = make(clock)
    for bad in ("bad id!", "a/../b"):
        with responses.RequestsMock() as rsps:  # any request fails the test
            with pytest.raises(BadInputError, match="is not a task id") as e:
                svc.download(bad)
            assert len(rsps.calls) == 0
        assert e.value.exit_status == ExitStatus.BAD_INPUT


def test_a_refused_task_id_is_escaped_once_and_quoted_once(clock: FakeClock) -> None:
    svc = make(clock)
    with pytest.raises(BadInputError) as e:
        svc.read_ids(["bad\x1bid"])
    # the escape character is shown as \u001b (one backslash), the value in one pair of quotes
    assert e.value.message.startswith("'bad\\u001bid' is not a task id"), e.value.message
    with pytest.raises(BadInputError) as e:
        svc.read_ids(["it's"])
    assert e.value.message.startswith("'it's' is not a task id"), e.value.message


# --- batch plan ---------------------------------------------------------------------------

def test_plan_sends_nothing_and_sorts_jobs_into_queue_invalid(clock: FakeClock) -> None:
    images("a.png", "b.png")
    Path("jobs.jsonl").write_text(jsonl({"image": "a.png", "output": "x.mp4"},
                                        {"image": "b.png", "output": "x.mp4"},
                                        {"image": "missing.png"},
                                        {"image": "b.png", "duration": 5}))
    svc = make(clock)
    with responses.RequestsMock():  # any request fails the test
        p = plan("jobs.jsonl", svc)
    assert [j.line for j in p.queue] == [1, 4]
    assert [j.line for j in p.invalid] == [2, 3]
    assert "like line 1" in (p.invalid[0].error or "")
    assert p.billed_seconds == sum(j.prepared.duration for j in p.queue)  # type: ignore[union-attr]
    assert p.done == [] and p.resumed == []


def test_plan_after_a_run_skips_done_jobs_and_resumes_live_ones(clock: FakeClock) -> None:
    images("a.png", "b.png")
    Path("jobs.jsonl").write_text(jsonl({"image": "a.png"}, {"image": "b.png"}))
    svc = make(clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps)
        first = plan("jobs.jsonl", svc)
        # job 1 done and saved; job 2 submitted, still running
        done = svc.submit(first.queue[0].prepared, fingerprint=first.queue[0].fingerprint)  # type: ignore[arg-type]
        live = svc.submit(first.queue[1].prepared, fingerprint=first.queue[1].fingerprint)  # type: ignore[arg-type]
    Path("v.mp4").write_bytes(b"x" * 10)
    svc.journal.record_download(done.task_id, path=str(Path("v.mp4").resolve()), size=10,
                                sha256="0" * 64)
    again = plan("jobs.jsonl", make(clock))
    assert [(j.line, r.task_id) for j, r in again.done] == [(1, done.task_id)]
    assert [(j.line, r.task_id) for j, r in again.resumed] == [(2, live.task_id)]
    assert again.queue == []


# --- batch runner -------------------------------------------------------------------------

def test_runner_keeps_n_in_flight_and_rides_out_throttling(clock: FakeClock) -> None:
    images("a.png", "b.png", "c.png")
    Path("jobs.jsonl").write_text(jsonl({"image": "a.png"}, {"image": "b.png"},
                                        {"image": "c.png"}))
    svc = make(clock)
    rows: list[dict[str, Any]] = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        api = FakeAPI(rsps, submit_plan=[200, 429, 429, 429, 429, 429])
        p = plan("jobs.jsonl", svc)
        run = Runner(svc, p, jobs=2, reporter=QuietReporter(svc.env), output="out/",
                     on_row=lambda row, job, o: rows.append(row)).run()
    assert run.exit_status == ExitStatus.OK
    assert run.summary.succeeded == 3 and run.summary.failed == 0
    assert len(api.created) == 3  # each job created exactly once
    assert sorted(r["line"] for r in rows) == [1, 2, 3]
    assert all(Path(r["path"]).is_file() for r in rows)
    assert run.summary.billed_seconds == 15


def test_runner_reports_unsubmitted_jobs_on_timeout(clock: FakeClock) -> None:
    images("a.png", "b.png")
    Path("jobs.jsonl").write_text(jsonl({"image": "a.png"}, {"image": "b.png"}))
    svc = make(clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeAPI(rsps, states={"*": ["RUNNING"]})
        p = plan("jobs.jsonl", svc)
        run = Runner(svc, p, jobs=1, reporter=QuietReporter(svc.env), timeout=30).run()
    assert run.exit_status == ExitStatus.TIMEOUT
    assert [j.line for j in run.unsubmitted] == [2]
    assert [(r["line"], r["status"], r["exit_code"]) for r in run.rows] == [
        (1, "RUNNING", int(ExitStatus.TIMEOUT)), (2, "NOT_SUBMITTED", int(ExitStatus.TIMEOUT))]
    assert json.dumps(run.rows)  # rows are plain data


def test_runner_refuses_zero_jobs(clock: FakeClock) -> None:
    images("a.png")
    Path("jobs.jsonl").write_text(jsonl({"image": "a.png"}))
    svc = make(clock)
    with pytest.raises(BadInputError):
        Runner(svc, plan("jobs.jsonl", svc), jobs=0, reporter=QuietReporter(svc.env))


_ = (png_bytes, NOW)


def test_the_public_names_do_not_shadow_submodules() -> None:
    import importlib

    import wanvid

    for name in wanvid.__all__:
        assert importlib.util.find_spec(f"wanvid.{name}") is None, name  # type: ignore[attr-defined]
        assert getattr(wanvid, name) is not None
