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
