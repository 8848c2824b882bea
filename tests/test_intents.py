"""Write-ahead submits (issue 15, item 1): a submit is journaled as an intent before its POST,
and an intent a crash left open is resolved against the service's task list: adopted,
closed, or left open (never a silent second task). The CLI runs in-process with a fake
clock; ``responses`` plays a service that creates tasks and lists them."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.conftest import FakeClock, Result
from tests.fixtures_media import png_bytes
from wanvid import intents
from wanvid.errors import ExitStatus, NetworkError, RejectedError, ThrottledError
from wanvid.intents import ADOPT, CLOSE, OPEN, Candidate, Listing, decide
from wanvid.journal import (
    INTENT_ADOPTED,
    INTENT_CREATED,
    INTENT_NOT_CREATED,
    INTENT_OPEN,
    IntentRecord,
    Journal,
)

Run = Callable[..., Result]

API = "https://dashscope-intl.aliyuncs.com/api/v1"
I2V = f"{API}/services/aigc/video-generation/video-synthesis"
TASK_RE = re.compile(re.escape(API) + r"/tasks/([^/?]+)$")
LIST = f"{API}/tasks"
OSS = "https://dashscope-result-sh.oss-cn-shanghai.aliyuncs.com"
BJ = timezone(timedelta(hours=8))
MODEL = "wan2.2-i2v-flash"
SETTLE = 30.0


def journal(clock: FakeClock | None = None) -> Journal:
    import os

    path = Path(os.environ["WANVID_STATE_DIR"]) / "journal.db"
    return Journal(path) if clock is None else Journal(path, now=clock.now)


def video() -> bytes:
    from wanvid.emulator import load_fixture

    return bytes(load_fixture())


@dataclass
class Made:
    task_id: str
    model: str
    prompt: str | None
    created: float
    finished: bool = False
    pending_for: int = 0  # status queries answered PENDING before it finishes


class Wan:
    """The service: submits create tasks (``kill`` decides, per submit, whether the client is
    killed before the request left (``"before"``) or after the task was created
    (``"after"``)); the list filters by window and model; a finished task's answer carries
    ``orig_prompt``."""

    def __init__(self, rsps: responses.RequestsMock, clock: FakeClock, *,
                 kill: list[str | None] | None = None, list_status: int = 200,
                 submit_status: int = 200) -> None:
        self.clock, self.kill = clock, list(kill or [])
        self.tasks: dict[str, Made] = {}
        self.posts = 0
        self.lists: list[dict[str, str]] = []
        self.list_status, self.submit_status = list_status, submit_status
        rsps.add_callback(responses.POST, I2V, callback=self._submit)
        rsps.add_callback(responses.GET, LIST, callback=self._list)
        rsps.add_callback(responses.GET, TASK_RE, callback=self._query)
        rsps.add(responses.GET, re.compile(re.escape(OSS) + r"/.*"), body=video(),
                 content_type="video/mp4")

    def make(self, prompt: str | None, *, model: str = MODEL, at: float | None = None,
             finished: bool = False, pending_for: int = 0) -> str:
        tid = f"t-{len(self.tasks) + 1}"
        self.tasks[tid] = Made(tid, model, prompt, self.clock.t if at is None else at,
                               finished, pending_for)
        return tid

    def _submit(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.posts += 1
        kill = self.kill.pop(0) if self.kill else None
        if kill == "before":
            raise KeyboardInterrupt  # the POST never left
        if self.submit_status != 200:
            code = "InvalidParameter" if self.submit_status < 500 else "InternalError"
            return self.submit_status, {}, json.dumps({"request_id": "r", "code": code,
                                                       "message": "no"})
        body = json.loads(request.body)
        tid = self.make(body["input"].get("prompt"), model=body["model"])
        if kill == "after":
            raise KeyboardInterrupt  # created; the answer never reaches the client
        return 200, {}, json.dumps({"request_id": "r", "output": {"task_id": tid,
                                                                  "task_status": "PENDING"}})

    def _list(self, request: Any) -> tuple[int, dict[str, str], str]:
        from urllib.parse import parse_qs, urlsplit

        q = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        self.lists.append(q)
        if self.list_status != 200:
            return self.list_status, {}, json.dumps({"request_id": "r", "code": "InternalError",
                                                     "message": "boom"})

        def bound(name: str) -> float:
            return datetime.strptime(q[name], "%Y%m%d%H%M%S").replace(tzinfo=BJ).timestamp()

        rows = [{"task_id": t.task_id, "status": self._status(t), "model_name": t.model,
                 "gmt_create": int(t.created * 1000)}
                for t in reversed(self.tasks.values())
                if bound("start_time") <= t.created <= bound("end_time")
                and t.model == q.get("model_name", t.model)]
        return 200, {}, json.dumps({"request_id": "r", "data": rows, "total": len(rows),
                                    "total_page": 1, "page_no": 1, "page_size": 100})

    def _status(self, t: Made) -> str:
        return "SUCCEEDED" if t.finished else "PENDING"

    def _query(self, request: Any) -> tuple[int, dict[str, str], str]:
        tid = TASK_RE.match(request.url.split("?")[0]).group(1)  # type: ignore[union-attr]
        t = self.tasks.get(tid)
        if t is None:
            return 200, {}, json.dumps({"request_id": "r", "output": {"task_id": tid,
                                                                      "task_status": "UNKNOWN"}})
        if t.pending_for > 0:
            t.pending_for -= 1
            return 200, {}, json.dumps({"request_id": "r", "output": {
                "task_id": tid, "task_status": "PENDING"}})
        t.finished = True  # one query later, every task is done
        out = {"task_id": tid, "task_status": "SUCCEEDED",
               "video_url": f"{OSS}/{tid}.mp4?Expires={int(self.clock.t) + 86400}&Signature=s"}
        if t.prompt is not None:
            out["orig_prompt"] = t.prompt
        return 200, {}, json.dumps({"request_id": "r", "output": out,
                                    "usage": {"duration": 5, "video_count": 1, "SR": 480}})


@pytest.fixture(autouse=True)
def _settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(intents.SETTLE_ENV, str(SETTLE))


def images(*names: str) -> None:
    for i, name in enumerate(names):
        Path(name).write_bytes(png_bytes(640 + 8 * i, 480))


def jobs_file(*prompts: str) -> str:
    images(*(f"{i}.png" for i in range(len(prompts))))
    Path("jobs.jsonl").write_text("".join(
        json.dumps({"image": f"{i}.png", "prompt": p, "model": MODEL, "resolution": "480P",
                    "output": f"out/{i}.mp4"}) + "\n" for i, p in enumerate(prompts)))
    return "jobs.jsonl"


# --- item 1, end to end through the CLI -------------------------------------------------------


def test_item1_a_kill_during_the_submit_post_no_longer_loses_the_task(run: Run,
                                                                       clock: FakeClock) -> None:
    images("cat.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock, kill=["after"])
        r = run(["generate", "cat.png", "-p", "the cat blinks", "-m", MODEL, "-r", "480P",
                 "-o", "cat.mp4"])
        assert r.code == ExitStatus.INTERRUPTED
        # The truth: not "submitted tasks are in the journal" (this one is not, yet).
        assert "the service may have created the task" in r.err
        assert "`wanvid wait --pending` will find it" in r.err
        assert list(wan.tasks) == ["t-1"]  # created and paid for; the client never heard
        with journal() as j:
            assert j.pending() == []  # before this fix, that was all: the task was lost
            (it,) = j.open_intents()
            assert (it.model, it.prompt, it.output) == (MODEL, "the cat blinks",
                                                        str(Path.cwd() / "cat.mp4"))
        clock.sleep(1)
        r = run(["wait", "--pending"])
    assert r.code == 0, r.err
    assert "adopted" in r.err and "t-1" in r.err
    assert Path("cat.mp4").read_bytes() == video()  # under the name generate was given
    assert wan.posts == 1
    with journal() as j:
        rec = j.get("t-1")
        assert rec is not None and rec.downloaded and rec.model == MODEL
        assert [i.state for i in j.intents()] == [INTENT_ADOPTED]


def test_item1_a_killed_batch_run_adopts_its_task_instead_of_paying_twice(
        run: Run, clock: FakeClock) -> None:
    src = jobs_file("one", "two", "three")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock, kill=[None, "after"])
        r = run(["batch", src, "-j", "1"])
        assert r.code == ExitStatus.INTERRUPTED
        assert "the service may have created the task" in r.err
        clock.sleep(1)
        r = run(["batch", src, "-j", "1", "--json"])
    assert r.code == 0, r.err
    assert wan.posts == 3 and len(wan.tasks) == 3  # one task per job: none paid twice
    assert sorted(t.prompt or "" for t in wan.tasks.values()) == ["one", "three", "two"]
    for i in range(3):
        assert Path(f"out/{i}.mp4").read_bytes() == video()
    with journal() as j:
        assert [i.state for i in j.intents()] == [INTENT_CREATED, INTENT_ADOPTED,
                                                  INTENT_CREATED]
        assert j.open_intents() == []


def test_an_intent_whose_post_never_left_is_closed_once_the_list_settles_and_resubmitted(
        run: Run, clock: FakeClock) -> None:
    src = jobs_file("one")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock, kill=["before"])
        assert run(["batch", src]).code == ExitStatus.INTERRUPTED
        assert wan.tasks == {}
        clock.sleep(1)  # too recent: the batch waits (fake clock) for the list to settle
        r = run(["batch", src])
    assert r.code == 0, r.err
    assert "none was created" in r.err
    assert any(s >= SETTLE - 2 for s in clock.sleeps)
    assert wan.posts == 2 and list(wan.tasks) == ["t-1"]  # sent again, once
    with journal() as j:
        assert [i.state for i in j.intents()] == [INTENT_NOT_CREATED, INTENT_CREATED]


def test_a_job_whose_intent_cannot_be_resolved_is_never_submitted_again(
        run: Run, clock: FakeClock) -> None:
    src = jobs_file("one", "two")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock, kill=["after"], list_status=500)
        assert run(["batch", src, "-j", "1"]).code == ExitStatus.INTERRUPTED
        clock.sleep(SETTLE * 2)
        r = run(["batch", src, "-j", "1", "--json"])
    assert r.code == ExitStatus.TIMEOUT  # not done: try again
    from tests.test_batch import json_rows

    rows = {row["line"]: row for row in json_rows(r.out)}
    assert rows[1]["status"] == "UNRESOLVED" and rows[1]["resume"] == "wanvid wait --pending"
    assert rows[2]["status"] == "SUCCEEDED"
    assert "left open" in r.err and "not submitted again" in r.err
    assert wan.posts == 2  # job 1 once (killed), job 2 once: job 1 never again
    assert [t.prompt for t in wan.tasks.values()] == ["one", "two"]
    with journal() as j:
        assert [i.state for i in j.open_intents()] == [INTENT_OPEN]


def test_two_candidates_the_prompts_cannot_tell_apart_stay_open_and_are_reported(
        run: Run, clock: FakeClock) -> None:
    with journal(clock) as j:  # two parallel submits of one prompt, both killed in the POST
        for _ in range(2):
            j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt="same",
                          params={}, inputs=["a.png"], fingerprint=None, output=None)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock)
        a, b = wan.make("same", finished=True), wan.make("same", finished=True)
        clock.sleep(SETTLE + 1)
        r = run(["wait", "--pending"])
    assert r.code == ExitStatus.TIMEOUT  # not "nothing pending": a task may exist unwaited
    assert r.err.count("left open") == 2 and f"({a}, {b})" in r.err
    assert "2 interrupted submit(s) still unresolved" in r.err.splitlines()[-1]
    with journal() as j:
        assert len(j.open_intents()) == 2 and j.get(a) is None and j.get(b) is None


def test_finished_candidates_are_told_apart_by_orig_prompt(run: Run, clock: FakeClock) -> None:
    with journal(clock) as j:
        first = j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt="a dog",
                              params={}, inputs=["a.png"], output="dog.mp4")
        j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt="a cat",
                      params={}, inputs=["b.png"], output="cat.mp4")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock)
        cat, dog = wan.make("a cat", finished=True), wan.make("a dog", finished=True)
        r = run(["wait", "--pending"])
    assert r.code == 0, r.err
    assert Path("dog.mp4").is_file() and Path("cat.mp4").is_file()
    with journal() as j:
        got = {i.intent_id: i.task_id for i in j.intents()}
        assert got[first] == dog and set(got.values()) == {cat, dog}
        assert all(i.state == INTENT_ADOPTED for i in j.intents())


def test_unfinished_candidates_are_looked_at_again_until_their_prompts_tell_them_apart(
        run: Run, clock: FakeClock) -> None:
    # Two submits of one model killed in their POSTs: both tasks are still running when
    # `wait --pending` looks, so nothing tells them apart yet. It looks again (it used to
    # leave both open and exit 0 "nothing pending", the tasks never waited for).
    with journal(clock) as j:
        dog_intent = j.open_intent(model=MODEL, model_name=MODEL, base_url=API,
                                   prompt="a dog", params={}, inputs=["a.png"],
                                   output="dog.mp4")
        j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt="a cat",
                      params={}, inputs=["b.png"], output="cat.mp4")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock)
        cat = wan.make("a cat", pending_for=3)
        dog = wan.make("a dog", pending_for=3)
        clock.sleep(SETTLE + 1)
        r = run(["wait", "--pending"])
    assert r.code == 0, r.err
    assert "their prompts tell them apart once they finish" in r.err
    assert Path("dog.mp4").read_bytes() == video() and Path("cat.mp4").is_file()
    with journal() as j:
        got = {i.intent_id: i.task_id for i in j.intents()}
        assert got[dog_intent] == dog and set(got.values()) == {cat, dog}


def test_unfinished_candidates_are_looked_at_again_only_within_the_timeout(
        run: Run, clock: FakeClock) -> None:
    with journal(clock) as j:
        for p in ("a dog", "a cat"):
            j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt=p,
                          params={}, inputs=["a.png"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock)
        wan.make("a cat", pending_for=10_000)
        wan.make("a dog", pending_for=10_000)
        clock.sleep(SETTLE + 1)
        start = clock.t
        r = run(["wait", "--pending", "--timeout", "60"])
    assert r.code == ExitStatus.TIMEOUT, r.err
    assert clock.t - start <= 61
    with journal() as j:
        assert len(j.open_intents()) == 2


def test_wait_pending_json_with_an_intent_left_open_says_so_in_the_summary(
        run: Run, clock: FakeClock) -> None:
    with journal(clock) as j:
        for _ in range(2):
            j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt="same",
                          params={}, inputs=["a.png"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock)
        wan.make("same", finished=True)
        wan.make("same", finished=True)
        clock.sleep(SETTLE + 1)
        r = run(["wait", "--pending", "--json"])
    assert r.code == ExitStatus.TIMEOUT
    from tests import envelope_schema

    last = envelope_schema.last(r.out, "wait", exit_code=ExitStatus.TIMEOUT)
    assert last["kind"] == "summary" and last["ok"] is False
    message = last["errors"][0]["message"]
    assert "still unresolved" in message and "named above" not in message
    assert message.count("'same'") == 2, message  # each submit named: nothing is "above"


def test_batch_looks_again_at_unfinished_candidates_only_within_its_timeout(
        run: Run, clock: FakeClock) -> None:
    src = jobs_file("one")
    with journal(clock) as j:  # a batch of this file killed in two submits of one model
        for p in ("a dog", "a cat"):
            j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt=p,
                          params={}, inputs=["a.png"], fingerprint=f"fp-{p}")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock)
        wan.make("a cat", pending_for=10_000)
        wan.make("a dog", pending_for=10_000)
        clock.sleep(SETTLE + 1)
        start = clock.t
        r = run(["batch", src, "--timeout", "60"])
    assert clock.t - start <= 61, r.err
    assert "their prompts tell them apart once they finish" in r.err
    with journal() as j:
        assert len(j.open_intents()) == 2


def test_the_list_query_is_the_intents_window_and_model(run: Run, clock: FakeClock) -> None:
    with journal(clock) as j:
        j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt="x", params={},
                      inputs=[])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock)
        wan.make("x", at=clock.t - intents.SKEW - 5, finished=True)  # before the window
        wan.make("x", model="wan2.5-i2v-preview", finished=True)  # another model
        clock.sleep(SETTLE + 1)
        r = run(["wait", "--pending"])
    assert "none was created" in r.err
    q = wan.lists[0]
    start = datetime.strptime(q["start_time"], "%Y%m%d%H%M%S").replace(tzinfo=BJ).timestamp()
    end = datetime.strptime(q["end_time"], "%Y%m%d%H%M%S").replace(tzinfo=BJ).timestamp()
    t0 = clock.t - SETTLE - 1
    assert t0 - intents.SKEW - 2 <= start <= t0 - intents.SKEW
    assert t0 + SETTLE <= end <= t0 + SETTLE + 2 and q["model_name"] == MODEL


@pytest.mark.parametrize(("status", "closed"), [(400, True), (500, False)])
def test_an_answer_closes_the_intent_only_when_it_proves_no_task(
        run: Run, clock: FakeClock, status: int, closed: bool) -> None:
    images("cat.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Wan(rsps, clock, submit_status=status)
        r = run(["submit", "cat.png", "-m", MODEL, "-r", "480P"])
    assert r.code != 0
    assert ("`wanvid wait --pending` finds it if it was" in r.err) is not closed
    with journal() as j:
        assert [i.state for i in j.intents()] == [INTENT_NOT_CREATED if closed
                                                  else INTENT_OPEN]


# --- pure decisions ---------------------------------------------------------------------------

NOW = 1_800_000_000.0


def intent(iid: int, prompt: str | None = "p", at: float = NOW,
           model: str = MODEL) -> IntentRecord:
    return IntentRecord(iid, at, API, model, model, prompt, None, {}, [], None, INTENT_OPEN,
                        None, None, None)


def cand(tid: str, at: float = NOW + 1, prompt: str | None = None, *, known: bool = False,
         model: str = MODEL) -> Candidate:
    return Candidate(tid, model, at, "SUCCEEDED" if known else "PENDING", prompt, known)


def test_decide_adopts_an_only_candidate_closes_an_empty_settled_window_waits_otherwise(
        ) -> None:
    later = NOW + SETTLE + 1
    got = decide([intent(1), intent(2, at=NOW + 500), intent(3, at=NOW + 1000)],
                 {1: Listing([cand("a")]), 2: Listing([]),
                  3: Listing([cand("old", at=NOW + 1000 - intents.SKEW - 1)])},
                 set(), now=NOW + 1000 + 5, settle=SETTLE)
    assert [(d.action, d.task_id) for d in got] == [(ADOPT, "a"), (CLOSE, None), (OPEN, None)]
    assert got[2].retry_at == NOW + 1000 + SETTLE and "too recent" in got[2].reason
    assert later  # (the window of 3 has not settled at NOW + 1005)


def test_decide_never_adopts_a_journaled_task_or_one_of_another_model() -> None:
    got = decide([intent(1)], {1: Listing([cand("mine-already"), cand("x", model="wan2.1-t2v")])},
                 {"mine-already"}, now=NOW + SETTLE + 1, settle=SETTLE)
    assert got[0].action == CLOSE


def test_decide_shared_candidates_stay_open_unless_prompts_tell_them_apart() -> None:
    both = Listing([cand("a"), cand("b")])
    got = decide([intent(1), intent(2)], {1: both, 2: both}, set(), now=NOW + 999,
                 settle=SETTLE)
    assert [d.action for d in got] == [OPEN, OPEN]
    assert got[0].candidates == ("a", "b") and "once they finish" in got[0].reason
    one = Listing([cand("a")])
    got = decide([intent(1), intent(2)], {1: one, 2: one}, set(), now=NOW + 999, settle=SETTLE)
    assert [d.action for d in got] == [OPEN, OPEN]  # one task, two claimants: never a guess
    told = Listing([cand("a", prompt="p", known=True), cand("b", prompt="q", known=True)])
    got = decide([intent(1, "p"), intent(2, "q")], {1: told, 2: told}, set(), now=NOW + 999,
                 settle=SETTLE)
    assert [(d.action, d.task_id) for d in got] == [(ADOPT, "a"), (ADOPT, "b")]


def test_decide_a_finished_candidate_with_another_prompt_is_not_a_match() -> None:
    got = decide([intent(1, "a cat")], {1: Listing([cand("x", prompt="a dog", known=True)])},
                 set(), now=NOW + SETTLE + 1, settle=SETTLE)
    assert got[0].action == CLOSE
    long = "w" * 900
    got = decide([intent(1, long)], {1: Listing([cand("x", prompt=long[:800], known=True)])},
                 set(), now=NOW + 5, settle=SETTLE)
    assert (got[0].action, got[0].task_id) == (ADOPT, "x")  # truncated by the service


def test_decide_prompts_that_begin_alike_are_told_apart_by_the_exact_one() -> None:
    # Ctrl-C'd "slow zoom" and "slow zoom in": the first is the beginning of the second
    told = Listing([cand("a", prompt="slow zoom", known=True),
                    cand("b", prompt="slow zoom in", known=True)])
    got = decide([intent(1, "slow zoom"), intent(2, "slow zoom in")], {1: told, 2: told},
                 set(), now=NOW + 999, settle=SETTLE)
    assert [(d.action, d.task_id) for d in got] == [(ADOPT, "a"), (ADOPT, "b")]
    # the beginning alone still matches (the service may cut a prompt): one claimant adopts it
    got = decide([intent(2, "slow zoom in")],
                 {2: Listing([cand("a", prompt="slow zoom", known=True)])},
                 set(), now=NOW + 999, settle=SETTLE)
    assert (got[0].action, got[0].task_id) == (ADOPT, "a")


def test_decide_a_list_that_could_not_be_read_or_was_cut_short_proves_nothing() -> None:
    got = decide([intent(1), intent(2)], {1: Listing(error="boom"), 2: Listing(complete=False)},
                 set(), now=NOW + 9999, settle=SETTLE)
    assert [d.action for d in got] == [OPEN, OPEN]
    assert "boom" in got[0].reason and "more pages" in got[1].reason


def test_proves_not_created() -> None:
    assert intents.proves_not_created(RejectedError("400"))
    assert intents.proves_not_created(ThrottledError("429"))
    assert intents.proves_not_created(NetworkError("POST to x connection failed; nothing was "
                                                   "sent"))
    assert not intents.proves_not_created(NetworkError("service error 500 (InternalError)"))
    assert not intents.proves_not_created(NetworkError("POST to x timed out"))


def test_parse_rows_reads_data_or_tasks_epoch_ms_or_beijing_time() -> None:
    rows = intents.parse_rows({"data": [
        {"task_id": "a", "status": "RUNNING", "model_name": MODEL, "gmt_create": 1800000000123},
        {"task_id": "b", "task_status": "pending", "submit_time": "2027-01-15 16:00:00.500"},
        {"task_id": 7}, "junk"]})
    assert [(c.task_id, c.status, c.created) for c in rows] == [
        ("a", "RUNNING", 1800000000.123),
        ("b", "PENDING", datetime(2027, 1, 15, 8, 0, 0, 500000, UTC).timestamp())]
    assert [c.task_id for c in intents.parse_rows({"tasks": [{"task_id": "z"}]})] == ["z"]


# --- the journal ------------------------------------------------------------------------------


def test_a_version_2_journal_gains_the_intents_table_and_keeps_everything(
        tmp_path: Path) -> None:
    from wanvid.journal import _MIGRATIONS

    path = tmp_path / "journal.db"
    with sqlite3.connect(path) as db:
        for version in (1, 2):
            for statement in _MIGRATIONS[version]:
                db.execute(statement)
        db.execute("INSERT INTO tasks (task_id, submitted_at, status, updated_at) "
                   "VALUES ('t-old', 1, 'PENDING', 1)")
        db.execute("PRAGMA user_version = 2")
    db.close()
    with Journal(path, now=lambda: 1000.0) as j:
        assert j.get("t-old") is not None and j.open_intents() == []
        iid = j.open_intent(model=MODEL, model_name="Wan2.2-I2V-Flash", base_url=API + "/",
                            prompt="p", params={"seed": 3, "api_key": "sk-x"},
                            inputs=["data:image/png;base64," + "A" * 500], output="o.mp4",
                            fingerprint="fp")
        (it,) = j.open_intents()
        assert (it.intent_id, it.base_url, it.params, it.fingerprint) == (iid, API,
                                                                          {"seed": 3}, "fp")
        assert "chars omitted" in it.inputs[0]  # no image data, no key
        j.record_submit("t-new", model=MODEL, base_url=API, params={}, inputs=[], intent=iid)
        assert j.open_intents() == [] and j.intents()[0].task_id == "t-new"
        assert not j.close_intent(iid)  # closed already
        assert j.known(["t-new", "t-old", "nope"]) == {"t-new", "t-old"}


def test_adopting_journals_the_task_with_the_intents_job(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db", now=lambda: 2000.0) as j:
        iid = j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt="p",
                            params={"seed": 3}, inputs=["a.png"], output="o.mp4",
                            fingerprint="fp")
        assert j.adopt_intent(iid, "t-9", status="RUNNING")
        assert not j.adopt_intent(iid, "t-10")  # once
        rec = j.get("t-9")
        assert rec is not None
        assert (rec.model, rec.base_url, rec.params, rec.inputs, rec.output, rec.fingerprint,
                rec.status) == (MODEL, API, {"seed": 3}, ["a.png"], "o.mp4", "fp", "RUNNING")
        assert j.get("t-10") is None


def test_the_interrupt_message_never_waits_for_the_in_flight_lock() -> None:
    # The lock may be held for good on the way out after Ctrl-C (by this thread when the
    # interrupt landed inside posting's bookkeeping, or by an abandoned worker thread):
    # telling the user what happened must not wait for it.
    import threading

    def held_by(acquire: Callable[[], object]) -> str:
        said: list[str] = []
        t = threading.Thread(target=lambda: said.append(intents.after_interrupt()),
                             daemon=True)
        acquire()
        try:
            t.start()
            t.join(timeout=5)
            assert not t.is_alive(), "after_interrupt() waits for a held lock"
        finally:
            intents._lock.release()
        return said[0]

    with intents.posting():
        assert "may have created the task" in held_by(intents._lock.acquire)
    assert "in the journal" in intents.after_interrupt()
    # and in the thread that holds it (an interrupt inside ``with _lock``)
    with intents._lock:
        assert "in the journal" in intents.after_interrupt()


# --- intents know their holder (schema 5): in flight, or interrupted -------------------------


def _held_by(intent_id: int, pid: int, started: str | None) -> None:
    """Make an open intent another process's (as that process would have written it)."""
    import os

    path = Path(os.environ["WANVID_STATE_DIR"]) / "journal.db"
    with sqlite3.connect(path) as db:
        db.execute("UPDATE intents SET pid = ?, started = ? WHERE intent_id = ?",
                   (pid, started, intent_id))
    db.close()


def _parent() -> tuple[int, str | None]:
    """A live process that is not this one, with its start time."""
    import os

    from wanvid.leases import start_time

    return os.getppid(), start_time(os.getppid())


def test_a_batch_beside_a_generate_mid_submit_neither_waits_nor_touches_its_intent(
        run: Run, clock: FakeClock) -> None:
    """A generate in another (live) process has written its intent and its POST is in
    flight when a batch starts. The batch took that intent for an interrupted one and
    waited the settle period (180 s by default) before submitting anything."""
    src = jobs_file("one")
    with journal(clock) as j:
        theirs = j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt="theirs",
                               params={}, inputs=["x.png"], fingerprint="fp-theirs")
    _held_by(theirs, *_parent())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock)
        r = run(["batch", src])
    assert r.code == 0, r.err
    assert not any(s >= 1 for s in clock.sleeps), clock.sleeps  # no settle wait
    assert wan.lists == []  # nothing to look up: its own process closes it
    assert "in flight" in r.err and "left to it" in r.err
    assert [t.prompt for t in wan.tasks.values()] == ["one"]
    with journal() as j:
        (it,) = j.open_intents()
        assert it.intent_id == theirs and it.pid == _parent()[0]


def test_wait_pending_beside_a_submit_in_flight_is_not_unresolved(run: Run,
                                                                  clock: FakeClock) -> None:
    with journal(clock) as j:
        theirs = j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt="p",
                               params={}, inputs=["x.png"])
    _held_by(theirs, *_parent())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock)
        r = run(["wait", "--pending"])
    assert r.code == 0, r.err  # not 6 "interrupted submit(s) still unresolved"
    assert "still unresolved" not in r.err and wan.lists == []
    assert clock.sleeps == []


def test_an_intent_in_flight_still_claims_the_task_its_submit_is_creating(
        run: Run, clock: FakeClock) -> None:
    """An interrupted intent (its process is gone) and one in flight, of one model and
    window; the list shows one task, the in-flight submit's (created, not journaled yet).
    The interrupted one must not adopt it, and the in-flight one is not adopted either."""
    with journal(clock) as j:
        gone = j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt="gone",
                             params={}, inputs=["a.png"])
        flying = j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt="flying",
                               params={}, inputs=["b.png"])
    _held_by(gone, 2 ** 22 + 12345, "boot/1")  # no such process
    _held_by(flying, *_parent())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock)
        tid = wan.make("flying", pending_for=2)
        clock.sleep(SETTLE + 1)
        r = run(["wait", "--pending"])
    assert r.code == 0, r.err
    assert "none was created" in r.err  # the interrupted one, once the prompt told
    with journal() as j:
        assert j.get(tid) is None  # left for its own process to journal
        states = {i.intent_id: i.state for i in j.intents()}
        assert states == {gone: INTENT_NOT_CREATED, flying: INTENT_OPEN}


def test_an_intent_whose_holder_pid_now_names_another_process_is_resolved(
        run: Run, clock: FakeClock) -> None:
    """The pid was reused (the killed holder's pid went to the parent of this test, alive):
    its start time tells it is not the holder, so the intent is resolved as interrupted."""
    with journal(clock) as j:
        killed = j.open_intent(model=MODEL, model_name=MODEL, base_url=API, prompt="cat",
                               params={}, inputs=["a.png"], output="cat.mp4")
    pid, started = _parent()
    if started is None:
        pytest.skip("this system says no start time: the pid alone decides")
    _held_by(killed, pid, started + "0")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock)
        tid = wan.make("cat", finished=True)
        r = run(["wait", "--pending"])
    assert r.code == 0, r.err
    assert "adopted" in r.err and Path("cat.mp4").read_bytes() == video()
    with journal() as j:
        assert [(i.state, i.task_id) for i in j.intents()] == [(INTENT_ADOPTED, tid)]


def test_a_submit_records_its_process_in_the_intent(run: Run, clock: FakeClock) -> None:
    from wanvid.leases import me

    images("cat.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Wan(rsps, clock, submit_status=500)  # proves nothing: the intent stays open
        run(["submit", "cat.png", "-m", MODEL, "-r", "480P"])
    with journal() as j:
        (it,) = j.open_intents()
    assert (it.pid, it.started) == me()
    # This process's own intent, its POST over: interrupted, not in flight.
    from wanvid.intents import in_flight

    assert not in_flight(it, holder_alive=lambda p, s: True, here=me())


def test_a_batch_job_another_process_is_submitting_is_unresolved_and_says_so(
        run: Run, clock: FakeClock) -> None:
    """The same job is being submitted by a live process (another batch of this file, a
    generate): never a second task, no list query; the batch waits for that submit's task
    at most the settle time (the holder here never journals one), then the row says what
    is going on."""
    src = jobs_file("one")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock, kill=["before"])
        assert run(["batch", src]).code == ExitStatus.INTERRUPTED
    with journal() as j:
        (it,) = j.open_intents()
    pid, started = _parent()
    _held_by(it.intent_id, pid, started)  # as if that process's POST were in flight
    clock.sleeps.clear()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wan = Wan(rsps, clock)
        r = run(["batch", src, "--json"])
    assert r.code == ExitStatus.TIMEOUT, r.err
    from tests.test_batch import json_rows

    (row,) = [row for row in json_rows(r.out) if row.get("line") == 1]
    assert row["status"] == "UNRESOLVED"
    assert f"wanvid process {pid} is submitting this job right now" in row["message"]
    assert wan.posts == 0 and wan.lists == []
    assert SETTLE - 10 <= sum(clock.sleeps) <= SETTLE + 5
    assert f"line 1: wanvid process {pid} is submitting this job right now; waiting" in r.err
