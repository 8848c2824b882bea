"""Two runs of one batch at once, and a batch cut by Ctrl-C or SIGTERM.

Fake clock and ``responses`` as the service (``tests.test_batch.Service``). The other batch
is run inside this one (between its plan and its submits, or while its holder's submit is
"in flight"), so the interleavings are exact; tests/e2e/test_e2e_batch.py races two real
processes against the emulator.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import responses

from tests import envelope_schema
from tests.conftest import FakeClock
from tests.test_batch import Run, Service, images, json_rows, jsonl
from wanvid.errors import ExitStatus, Terminated
from wanvid.journal import Journal

STEMS = ["a", "b", "c", "d"]
SETTLE = 30.0


@pytest.fixture(autouse=True)
def _settle(monkeypatch: pytest.MonkeyPatch) -> None:
    from wanvid import intents

    monkeypatch.setenv(intents.SETTLE_ENV, str(SETTLE))


def jobs() -> str:
    images(*(f"{s}.png" for s in STEMS))
    return jsonl(*({"image": f"{s}.png", "prompt": f"waves over {s}"} for s in STEMS))


def journal_path() -> Path:
    return Path(os.environ["WANVID_STATE_DIR"]) / "journal.db"


def held_by_parent(intent_id: int) -> int:
    """Make an open intent a live other process's (as if its POST were in flight)."""
    from wanvid.leases import start_time

    pid = os.getppid()
    with sqlite3.connect(journal_path()) as db:
        db.execute("UPDATE intents SET pid = ?, started = ? WHERE intent_id = ?",
                   (pid, start_time(pid), intent_id))
    db.close()
    return pid


ARGS = ["batch", "-", "-o", "{stem}.mp4", "--json"]


# --- 1. two batches of one file at once --------------------------------------------------

def test_a_batch_planned_before_another_ran_follows_its_tasks_and_submits_nothing(
        run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch B plans (the journal is empty), then batch A runs the same 4 jobs to the
    end, then B goes on: B submits none of them again (it submitted all 4: 8 for 4), it
    follows A's tasks and finds their videos saved (it writes none), and bills nothing of
    its own."""
    from wanvid import batch

    text = jobs()
    real_plan = batch.plan
    other: list[Any] = []

    def plan_then_other(*a: Any, **kw: Any) -> batch.Plan:
        p = real_plan(*a, **kw)
        if not other:  # B's plan is made: A runs now, before B submits anything
            other.append(None)
            other[0] = run(ARGS, stdin=text)
        return p

    monkeypatch.setattr(batch, "plan", plan_then_other)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(ARGS, stdin=text)
    (a,) = other
    assert a.code == 0, a.err
    assert r.code == 0, r.err
    assert svc.submit_calls == 4 and svc.created == ["t-1", "t-2", "t-3", "t-4"]
    rows = {row["line"]: row for row in json_rows(r.out)}
    assert {ln: (row["status"], row["task_id"]) for ln, row in rows.items()} == {
        ln: ("SUCCEEDED", row["task_id"]) for ln, row in
        {row["line"]: row for row in json_rows(a.out)}.items()}
    assert r.err.count("another wanvid process submitted this job meanwhile") == 4
    assert r.err.count(" already saved ") == 4 and " saved " not in r.err.replace(
        " already saved ", "")
    assert "4 succeeded, 0 failed, 0 skipped; 0 s billed" in r.err  # A's 20 s are A's
    assert "4 succeeded, 0 failed, 0 skipped; 20 s billed" in a.err


def _interrupted_first_submit(run: Run, text: str) -> tuple[int, str]:
    """A batch whose first POST is cut before it leaves (Ctrl-C): its intent stays open.
    That intent is then made a live other process's: (its id, its fingerprint)."""

    class Cut(Service):
        def _submit(self, request: Any) -> tuple[int, dict[str, str], str]:
            raise KeyboardInterrupt

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Cut(rsps)
        assert run(ARGS, stdin=text).code == ExitStatus.INTERRUPTED
    with Journal(journal_path()) as j:
        (it,) = j.open_intents()
    held_by_parent(it.intent_id)
    assert it.fingerprint
    return it.intent_id, it.fingerprint


def test_a_job_another_process_is_submitting_is_waited_for_and_its_task_followed(
        run: Run, clock: FakeClock) -> None:
    """Another live process's POST of job 1 is in flight when the batch starts: the batch
    submits the 3 others, waits for that submit (no second POST of job 1), and once its
    task is journaled follows it and saves its video."""
    text = jobs()
    intent_id, fingerprint = _interrupted_first_submit(run, text)
    naps = 0
    real_sleep = clock.sleep

    def sleep(s: float) -> None:  # after a while, the holder's answer arrives
        nonlocal naps
        naps += 1
        if naps == 3:
            with Journal(journal_path(), now=clock.now) as j:
                j.record_submit("theirs", model="wan2.2-i2v-flash",
                                base_url="https://dashscope-intl.aliyuncs.com/api/v1",
                                params={}, inputs=["a.png"], fingerprint=fingerprint,
                                output="{stem}.mp4", intent=intent_id)
        real_sleep(s)

    clock.sleep = sleep  # type: ignore[method-assign]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(ARGS, stdin=text)
    assert r.code == 0, r.err
    assert svc.submit_calls == 3 and naps >= 3
    assert "line 1: wanvid process" in r.err and "waiting for its task" in r.err
    rows = {row["line"]: row for row in json_rows(r.out)}
    assert rows[1]["task_id"] == "theirs" and rows[1]["status"] == "SUCCEEDED"
    assert Path("a.mp4").is_file()


def test_a_job_whose_other_submit_created_nothing_is_submitted_once_by_this_batch(
        run: Run, clock: FakeClock) -> None:
    """The holder's answer proves no task was created (its intent closed as not
    created): the batch that waited for it submits the job itself, once."""
    text = jobs()
    intent_id, _ = _interrupted_first_submit(run, text)
    real_sleep = clock.sleep

    def sleep(s: float) -> None:
        with Journal(journal_path(), now=clock.now) as j:
            j.close_intent(intent_id, note="refused")
        real_sleep(s)

    clock.sleep = sleep  # type: ignore[method-assign]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(ARGS, stdin=text)
    assert r.code == 0, r.err
    assert svc.submit_calls == 4
    assert [row["status"] for row in json_rows(r.out)] == ["SUCCEEDED"] * 4


def test_an_intent_of_another_process_that_appears_after_the_plan_blocks_the_job(
        run: Run, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the plan and the submit, a live other process writes its intent for job 1
    and never answers: job 1 is not submitted (the check sits in the intent's own
    transaction); after the settle time it is UNRESOLVED, naming that process."""
    from wanvid import batch

    text = jobs()
    real_plan = batch.plan
    pid: list[int] = []

    def plan_then_other(*a: Any, **kw: Any) -> batch.Plan:
        p = real_plan(*a, **kw)
        job = p.queue[0]
        with Journal(journal_path(), now=clock.now) as j:
            iid = j.open_intent(model="wan2.2-i2v-flash", model_name="wan2.2-i2v-flash",
                                base_url="https://dashscope-intl.aliyuncs.com/api/v1",
                                prompt="waves over a", params={}, inputs=["a.png"],
                                fingerprint=job.fingerprint, output="{stem}.mp4")
        pid.append(held_by_parent(iid))
        return p

    monkeypatch.setattr(batch, "plan", plan_then_other)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(ARGS, stdin=text)
    assert r.code == ExitStatus.TIMEOUT, r.err
    assert svc.submit_calls == 3
    rows = {row["line"]: row for row in json_rows(r.out)}
    assert rows[1]["status"] == "UNRESOLVED" and "task_id" not in rows[1]
    assert f"wanvid process {pid[0]} is submitting this job right now" in rows[1]["message"]
    assert SETTLE - 10 <= sum(clock.sleeps) <= SETTLE + 10


# --- 2. Ctrl-C and SIGTERM: every job said, the right command to finish ---------------------

class StopAt(Service):
    """Raises ``signal`` at the ``at``-th task query (1-based)."""

    def __init__(self, rsps: responses.RequestsMock, at: int,
                 signal: type[BaseException] = KeyboardInterrupt) -> None:
        super().__init__(rsps)
        self.at, self.signal, self.queries = at, signal, 0

    def _query(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.queries += 1
        if self.queries == self.at:
            if self.signal is Terminated:  # what the SIGTERM handler does (wanvid.runner)
                from wanvid import runner

                runner.signalled.add(ExitStatus.TERMINATED)
            raise self.signal
        return super()._query(request)


@pytest.mark.parametrize("signal,code,word", [(KeyboardInterrupt, 130, "interrupted"),
                                               (Terminated, 143, "terminated (SIGTERM)")])
def test_an_interrupted_batch_json_lists_every_job_and_the_command_that_finishes_it(
        run: Run, signal: type[BaseException], code: int, word: str) -> None:
    """-j 2, 4 jobs, cut while polling the first two: the envelope has a job line for each
    of the 4 (2 submitted with their task ids, 2 NOT_SUBMITTED), the summary counts them
    and names the batch command as run (it lost the 2 queued jobs, and said `wanvid wait
    --pending`, which submits nothing); running that command finishes the batch with 2
    submits more, none twice."""
    text = jobs()
    args = ["batch", "-", "-j", "2", "-o", "{stem}.mp4", "--json"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = StopAt(rsps, 2, signal)
        r = run(args, stdin=text)
    assert r.code == code, r.err
    assert svc.created == ["t-1", "t-2"]
    rows = {row["line"]: row for row in envelope_schema.rows(r.out, "batch")}
    assert sorted(rows) == [1, 2, 3, 4]
    command = "wanvid batch - -j 2 -o '{stem}.mp4' --json"
    assert {ln: (row["task_id"], row["exit_code"]) for ln, row in rows.items()} == {
        1: ("t-1", code), 2: ("t-2", code), 3: (None, code), 4: (None, code)}
    assert rows[3]["status"] == rows[4]["status"] == "NOT_SUBMITTED"
    assert rows[1]["status"] in ("PENDING", "SUCCEEDED") and rows[2]["status"] == "PENDING"
    assert {row["resume"] for row in rows.values()} == {command}
    last = envelope_schema.last(r.out, "batch", exit_code=code)
    assert last["data"]["unsubmitted"] == 2 and last["data"]["unfinished"] == 2
    assert last["data"]["resume"] == command
    (err,) = last["errors"]
    assert err["message"].startswith(f"{word}; 2 job(s) not submitted, 2 submitted and not "
                                     f"finished; run `{command}` again with the same jobs")
    assert "wanvid wait --pending` only saves the submitted ones" in err["message"]
    assert f"wanvid: {word}; 2 job(s) not submitted" in r.err
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        svc.created = ["t-1", "t-2"]  # the service's ids go on: the next are t-3, t-4
        again = run(args, stdin=text)
    assert again.code == 0, again.err
    assert svc.submit_calls == 2  # the 2 never sent; t-1 and t-2 waited for
    assert sorted(row["task_id"] for row in json_rows(again.out)) == ["t-1", "t-2", "t-3",
                                                                      "t-4"]


def test_an_interrupted_batch_in_text_mode_says_what_is_left_and_what_to_run(run: Run) -> None:
    text = jobs()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        StopAt(rsps, 2)
        r = run(["batch", "-", "-j", "2", "-o", "v/{stem}.mp4"], stdin=text)
    assert r.code == 130
    assert r.out == ""  # nothing saved yet
    (line,) = [ln for ln in r.err.splitlines() if "interrupted" in ln]
    assert line == ("wanvid: interrupted; 2 job(s) not submitted, 2 submitted and not "
                    "finished; run `wanvid batch - -j 2 -o 'v/{stem}.mp4'` again with the "
                    "same jobs on stdin: it skips the jobs done, waits for the submitted ones "
                    "and submits the rest; `wanvid wait --pending` only saves the submitted "
                    "ones")


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_batch_cut_during_a_submit_says_that_job_may_have_a_task(run: Run,
                                                                   when: str) -> None:
    """Ctrl-C while job 2's POST is in flight: job 1 is listed with its task, job 2 as
    UNRESOLVED (the service may have created it: the re-run resolves it), jobs 3 and 4
    as NOT_SUBMITTED; the line says a submit was in flight."""

    class CutSecond(Service):
        def _submit(self, request: Any) -> tuple[int, dict[str, str], str]:
            if self.submit_calls == 1:
                self.submit_calls += 1
                if when == "after":
                    self.created.append("lost")
                raise KeyboardInterrupt
            return super()._submit(request)

    text = jobs()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        CutSecond(rsps, states={"*": ["RUNNING"]})
        r = run(["batch", "-", "-j", "2", "-o", "{stem}.mp4", "--json"], stdin=text)
    assert r.code == 130
    rows = {row["line"]: row for row in envelope_schema.rows(r.out, "batch")}
    assert [(ln, rows[ln]["status"], rows[ln]["task_id"]) for ln in sorted(rows)] == [
        (1, "PENDING" if rows[1]["status"] == "PENDING" else "RUNNING", "t-1"),
        (2, "UNRESOLVED", None), (3, "NOT_SUBMITTED", None), (4, "NOT_SUBMITTED", None)]
    assert "the service may have created the task" in rows[2]["message"]
    assert "a submit was in flight: the service may have created the task" in r.err


# --- 3. the heartbeat after a wait gives up -----------------------------------------------

def test_a_download_that_gives_up_leaves_the_heartbeat(clock: FakeClock, tmp_path: Path) -> None:
    """Review finding 8, the download side: a query that errors already left the
    heartbeat (6281bbc: tests/test_poll.py); a video whose download gives up (the
    connection kept failing) was still "downloading: 100/1000 B so far" every 30 s for the
    rest of the batch. Now it is reported ERROR once and the heartbeat says nothing more
    of it, while the other task's wait goes on."""
    import io

    from tests.test_poll import FakeJournal, FakeService
    from wanvid.context import Environment
    from wanvid.errors import NetworkError
    from wanvid.poll import Waiter, WaitOptions
    from wanvid.progress import PlainReporter

    svc = FakeService(clock, {"cut": [(0, "SUCCEEDED")], "slow": [(0, "RUNNING"),
                                                                  (600, "SUCCEEDED")]})
    err = io.StringIO()
    rep = PlainReporter(Environment(environ={"CI": "true"}, stderr=err), heartbeat=30,
                        clock=clock.now)
    said: list[str] = []
    gave_up = threading.Event()

    def download(url: str, dest: Path, *, on_progress: Any = None, **kw: Any) -> Any:
        if "cut" not in url:
            from tests.test_poll import FakeResult

            return FakeResult(dest)
        on_progress(100, 1000)
        gave_up.set()
        raise NetworkError("download of cut.mp4 kept failing; 100 bytes are kept")

    def sleep(s: float) -> None:  # the heartbeat as the batch goes on
        assert gave_up.wait(10)  # the download (a pool thread) has ended by now
        clock.sleep(s)
        err.truncate(0), err.seek(0)
        rep.beat()
        said.append(err.getvalue())

    w = Waiter(client=svc, journal=FakeJournal(), reporter=rep, options=WaitOptions(),
               dest_for=lambda tid, out: tmp_path / f"{tid}.mp4", clock=clock.now,
               wall=clock.now, sleep=sleep, downloader=download, realtime=False)
    outs = {o.task_id: o for o in w.run(["cut", "slow"])}
    assert outs["cut"].exit_status == ExitStatus.NETWORK and outs["slow"].ok
    assert clock.t >= 600 and any("slow still RUNNING" in s for s in said)
    assert not any("cut still" in s for s in said), [s for s in said if "cut" in s]


def test_an_interrupted_batch_lists_a_job_it_waited_for_as_unresolved(
        run: Run, clock: FakeClock) -> None:
    """Ctrl-C while job 1 waits for another live process's submit of it: job 1 is
    UNRESOLVED naming that process (the batch run again waits for it again), jobs 2 and
    3 (wan2.2-i2v-flash: 2 at once) are listed with their tasks, job 4 NOT_SUBMITTED."""
    text = jobs()
    _interrupted_first_submit(run, text)
    real_sleep = clock.sleep

    def sleep(s: float) -> None:
        if len(clock.sleeps) == 2:
            raise KeyboardInterrupt
        real_sleep(s)

    clock.sleep = sleep  # type: ignore[method-assign]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps, states={"*": ["RUNNING"]})
        r = run(ARGS, stdin=text)
    assert r.code == 130, r.err
    assert svc.submit_calls == 2
    rows = {row["line"]: row for row in envelope_schema.rows(r.out, "batch")}
    assert sorted(rows) == [1, 2, 3, 4]
    assert rows[1]["status"] == "UNRESOLVED" and rows[1]["task_id"] is None
    assert "is submitting this job right now" in rows[1]["message"]
    assert rows[1]["resume"] == "wanvid " + " ".join(ARGS[:3]) + " '{stem}.mp4' --json"
    assert [(rows[n]["task_id"], rows[n]["status"]) for n in (2, 3, 4)] == [
        ("t-1", "RUNNING"), ("t-2", "RUNNING"), (None, "NOT_SUBMITTED")]
    assert {rows[n]["exit_code"] for n in rows} == {130}
