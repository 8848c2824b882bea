"""The account leases as the commands use them (review of issue 19): what a waiting submit
says it waits for, and a task's end freeing its slot whichever process took it. In-process
CLI on a fake clock; ``responses`` plays the service; "another process" is a Leases of
this test's parent pid (alive, and with a start time of its own)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import responses

from tests.conftest import FakeClock, Result
from tests.test_batch import INTL, Service, images
from wanvid.leases import Leases, Limit, key_for

Run = Callable[..., Result]
MODEL = "wan2.2-i2v-flash"  # 2 submits per second, 2 tasks at once
KEY = key_for(MODEL, INTL)
LIMIT = Limit(concurrent=2, per_second=2)


def other(clock: FakeClock) -> Leases:
    journal = Path(os.environ["WANVID_STATE_DIR"]) / "journal.db"
    return Leases(journal, now=clock.now, pid=os.getppid())


def test_a_submit_waiting_for_the_submit_rate_says_so(run: Run, clock: FakeClock) -> None:
    """The README's xargs recipe: two submits went in this second and have given their
    slots back; the third waits for the rate. It used to say "0 ... task(s) of other
    wanvid processes hold the account's 2 slot(s)"."""
    peer = other(clock)
    for _ in range(2):
        lease, _ = peer.try_take(KEY, LIMIT)
        assert lease is not None
        peer.release(lease)
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(["submit", "a.png", "-m", MODEL, "-r", "480P"])
    peer.close()
    assert r.code == 0, r.err
    assert svc.created == ["t-1"]
    assert (f"2 {MODEL} submit(s) in the last second; the account allows 2 per second; "
            "waiting 1.0 s (nothing sent yet)") in r.err
    assert "slot" not in r.err
    assert sum(clock.sleeps) >= 1.0 - 1e-9  # it did wait for the window


def test_a_submit_waiting_for_slots_counts_the_holders(run: Run, clock: FakeClock) -> None:
    peer = other(clock)
    held = [peer.try_take(KEY, Limit(2, 0))[0] for _ in range(2)]
    assert None not in held
    clock.sleep(5)  # long past the rate window: only the slots are in the way
    real_sleep = clock.sleep

    def sleep(s: float) -> None:  # one of the other's tasks ends a while later
        real_sleep(s)
        if len(clock.sleeps) == 6:
            peer.release(held[0])

    clock.sleep = sleep  # type: ignore[method-assign]
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(["submit", "a.png", "-m", MODEL, "-r", "480P"])
    assert r.code == 0, r.err
    assert svc.created == ["t-1"]
    assert r.err.count(f"2 {MODEL} task(s) of other wanvid processes hold the account's "
                       "2 slot(s); waiting for one to end (nothing sent yet)") == 1
    assert peer.held(KEY) == 2  # the other's remaining task, and t-1 (running on)
    peer.close()


def test_a_wait_in_another_process_frees_the_slot_of_the_task_it_sees_end(
        run: Run, clock: FakeClock) -> None:
    """A generate (alive, here the parent pid) holds the slot of task t-9; `wanvid wait t-9`
    in another process sees it end: the slot is free for the next submit, though the
    holder has not looked yet."""
    peer = other(clock)
    lease, _ = peer.try_take(KEY, LIMIT)
    assert lease is not None
    peer.bind(lease, "t-9")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        r = run(["wait", "t-9", "--no-download"])
    assert r.code == 0, r.err
    assert peer.held(KEY) == 0
    peer.close()


GONE = 2 ** 22 + 12345  # above pid_max's default: no process has it


def test_a_generate_waits_for_the_tasks_a_killed_process_left_and_asks_about_them(
        run: Run, clock: FakeClock) -> None:
    """Two generates were killed -9 after their submits: their tasks t-8 and t-9 still run
    at the service and hold both slots of the model. The next generate used to see the
    holders gone and submit at once (throttled by the service); it waits instead, asks the
    service about the two tasks itself, and submits once t-8 has ended."""
    from wanvid.journal import Journal

    journal = Path(os.environ["WANVID_STATE_DIR"]) / "journal.db"
    gone = Leases(journal, now=clock.now, pid=GONE)
    with Journal(journal, now=clock.now) as j:
        for tid in ("t-8", "t-9"):
            lease, _ = gone.try_take(KEY, Limit(2, 0))
            assert lease is not None
            gone.bind(lease, tid)
            j.record_submit(tid, model=MODEL, base_url=INTL, params={}, inputs=[],
                            status="RUNNING")
    gone.close()
    clock.sleep(5)
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps, states={"t-8": ["RUNNING", "RUNNING", "SUCCEEDED"],
                              "t-9": ["RUNNING"] * 50})
        r = run(["generate", "a.png", "-m", MODEL, "-r", "480P", "-o", "out.mp4"])
        calls = [(c.request.method, c.request.url.split("?")[0].rsplit("/", 1)[-1])
                 for c in rsps.calls]
    assert r.code == 0, r.err
    post = next(i for i, c in enumerate(calls) if c[0] == "POST")
    assert calls[:post].count(("GET", "t-8")) == 3  # submitted once t-8 was seen to end
    assert r.err.count(f"2 {MODEL} task(s) of other wanvid processes (2 of them left by a "
                       "wanvid process that exited, not seen to end yet) hold the account's "
                       "2 slot(s); waiting for one to end (nothing sent yet)") == 1
    assert Path("out.mp4").exists()
    peer = other(clock)
    assert peer.held(KEY) == 1  # t-9's slot: still running
    peer.close()


# --- review F13: a submit's task keeps its slot after the submit exits ----------------------


def calls_of(rsps: responses.RequestsMock) -> list[tuple[str, str]]:
    return [(c.request.method, c.request.url.split("?")[0].rsplit("/", 1)[-1])
            for c in rsps.calls]


def two_submits(run: Run, clock: FakeClock) -> None:
    """README's bash loop, its first two images: each `wanvid submit` exits at once."""
    images("a.png", "b.png", "c.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        for name in ("a.png", "b.png"):
            r = run(["submit", name, "-m", MODEL, "-r", "480P"])
            assert r.code == 0, r.err
    assert svc.created == ["t-1", "t-2"]
    clock.sleep(5)  # past the submit rate's second: only the slots can be in the way


def test_two_submits_keep_both_slots_after_they_exit(run: Run, clock: FakeClock) -> None:
    """The old submit gave its slot back as soon as its POST was answered: its task ran
    on at the service, counted by no wanvid process."""
    two_submits(run, clock)
    peer = other(clock)
    assert peer.held(KEY) == 2
    peer.close()


def test_a_third_submit_waits_for_a_submitted_task_to_end_instead_of_posting(
        run: Run, clock: FakeClock) -> None:
    """README's bash loop on a model of 2 tasks at once: the third submit used to POST at
    once and be throttled (exit 7 "rate limited by the service after retries" once the
    retries ran out: the job silently never made). It waits instead, asks the service
    about the two tasks nobody follows, and submits once t-1 has ended."""
    two_submits(run, clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps, states={"t-1": ["RUNNING", "RUNNING", "SUCCEEDED"],
                                    "t-2": ["RUNNING"] * 50})
        svc.created = ["t-1", "t-2"]
        r = run(["submit", "c.png", "-m", MODEL, "-r", "480P"])
        calls = calls_of(rsps)
    assert r.code == 0, r.err
    assert r.out.strip() == "t-3"
    post = calls.index(("POST", "video-synthesis"))
    assert calls[:post].count(("GET", "t-1")) == 3  # submitted once t-1 was seen to end
    assert calls.count(("POST", "video-synthesis")) == 1
    assert r.err.count(f"2 {MODEL} task(s) of other wanvid processes (2 of them left by a "
                       "wanvid process that exited, not seen to end yet) hold the account's "
                       "2 slot(s); waiting for one to end (nothing sent yet)") == 1
    peer = other(clock)
    assert peer.held(KEY) == 2  # t-2 (still running) and t-3
    peer.close()


def test_a_generate_after_two_submits_waits_for_a_slot(run: Run, clock: FakeClock) -> None:
    """`wanvid generate` run after two submits in the same journal: its local slot looked
    free, the account's were not (the old code: exit 7 after the throttling retries)."""
    two_submits(run, clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps, states={"t-1": ["RUNNING", "SUCCEEDED"], "t-2": ["RUNNING"] * 50,
                              "t-3": ["SUCCEEDED"]}).created = ["t-1", "t-2"]
        r = run(["generate", "c.png", "-m", MODEL, "-r", "480P", "-o", "c.mp4"])
        calls = calls_of(rsps)
    assert r.code == 0, r.err
    post = calls.index(("POST", "video-synthesis"))
    assert ("GET", "t-1") in calls[:post]
    assert Path("c.mp4").exists()
    peer = other(clock)
    assert peer.held(KEY) == 1  # t-2's: generate gave t-3's back when it saw it end
    peer.close()


def test_a_status_that_sees_a_submitted_task_end_frees_its_slot(run: Run,
                                                                clock: FakeClock) -> None:
    two_submits(run, clock)
    peer = other(clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps, states={"t-1": ["SUCCEEDED"], "t-2": ["RUNNING"]})
        assert run(["status", "t-2"]).code == 0
        assert peer.held(KEY) == 2  # still running: still counted
        assert run(["status", "t-1"]).code == 0
        assert peer.held(KEY) == 1
        r = run(["submit", "c.png", "-m", MODEL, "-r", "480P"])  # a slot is free: at once
        assert r.code == 0, r.err
        assert calls_of(rsps)[-1] == ("POST", "video-synthesis")
        assert "waiting" not in r.err
    peer.close()


def test_a_wait_that_sees_a_submitted_task_end_frees_its_slot(run: Run,
                                                              clock: FakeClock) -> None:
    two_submits(run, clock)
    peer = other(clock)
    assert peer.held(KEY) == 2
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        r = run(["wait", "-o", "{stem}.mp4"], stdin="t-1\nt-2\n")
    assert r.code == 0, r.err
    assert Path("a.mp4").exists() and Path("b.mp4").exists()
    assert peer.held(KEY) == 0
    peer.close()


def test_a_task_list_that_shows_a_submitted_task_ended_frees_its_slot(
        run: Run, clock: FakeClock) -> None:
    two_submits(run, clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        rsps.replace(responses.GET, INTL + "/tasks", json={
            "request_id": "r", "total": 2, "total_page": 1,
            "data": [{"task_id": "t-1", "task_status": "SUCCEEDED"},
                     {"task_id": "t-2", "task_status": "RUNNING"}]})
        r = run(["tasks", "--remote"])
    assert r.code == 0, r.err
    peer = other(clock)
    assert peer.held(KEY) == 1  # t-2's
    peer.close()


def test_a_submit_refused_before_a_task_exists_gives_its_slot_back(
        run: Run, clock: FakeClock) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps, submit_plan=[400])
        r = run(["submit", "a.png", "-m", MODEL, "-r", "480P"])
    assert r.code != 0
    peer = other(clock)
    assert peer.held(KEY) == 0
    peer.close()


# --- review F14: the heartbeat while waiting for a slot -------------------------------------


def held_for(clock: FakeClock, seconds: float) -> Leases:
    """Another live process holds both slots of the model for ``seconds``."""
    peer = other(clock)
    held = [peer.try_take(KEY, Limit(2, 0))[0] for _ in range(2)]
    assert None not in held
    clock.sleep(5)
    end = clock.t + seconds
    real_sleep = clock.sleep

    def sleep(s: float) -> None:
        real_sleep(s)
        if clock.t >= end and held:
            peer.release(held.pop())

    clock.sleep = sleep  # type: ignore[method-assign]
    return peer


def test_a_wait_for_a_slot_off_a_terminal_says_it_still_waits_every_30_s(
        run: Run, clock: FakeClock) -> None:
    peer = held_for(clock, 95)
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Service(rsps)
        r = run(["submit", "a.png", "-m", MODEL, "-r", "480P"])
    peer.close()
    assert r.code == 0, r.err
    assert svc.created == ["t-1"]
    beats = [ln for ln in r.err.splitlines() if "still waiting" in ln]
    assert beats == [f"wanvid: still waiting for a {MODEL} slot (2 of 2 held), {t}"
                     for t in ("30s", "1m00s", "1m30s")]


def test_the_slot_waits_heartbeat_follows_wanvid_heartbeat(run: Run, clock: FakeClock,
                                                            ) -> None:
    peer = held_for(clock, 25)
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        r = run(["submit", "a.png", "-m", MODEL, "-r", "480P"],
                env={"WANVID_HEARTBEAT": "10"})
    peer.close()
    assert r.code == 0, r.err
    assert [ln.rsplit(", ", 1)[1] for ln in r.err.splitlines()
            if "still waiting" in ln] == ["10s", "20s"]


def test_q_silences_the_slot_waits_heartbeat(run: Run, clock: FakeClock) -> None:
    peer = held_for(clock, 95)
    images("b.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        Service(rsps)
        r = run(["submit", "b.png", "-m", MODEL, "-r", "480P", "-q"])
    peer.close()
    assert r.code == 0, r.err
    assert r.err == ""
