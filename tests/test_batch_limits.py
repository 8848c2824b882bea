"""batch follows each model's account limits through the shared leases (wanvid.leases, as
generate does): at most its concurrent_tasks tasks of each model in flight, at most
submits_per_second submissions of it within a second (on the fake clock); -j N (or config
jobs) caps the batch; slots other processes hold are waited for, and given back."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.conftest import FakeClock, Result
from tests.test_batch import TASK_RE, Service, images, json_rows, jsonl
from wanvid.batch import flight_text
from wanvid.models import find_model

Run = Callable[..., Result]


class Counting(Service):
    """Records, for each submission, the fake time and how many tasks of its model (and in
    all) were in flight; every task is RUNNING for two queries."""

    def __init__(self, rsps: responses.RequestsMock, clock: FakeClock, n: int) -> None:
        super().__init__(rsps, states={f"t-{i}": ["RUNNING", "RUNNING", "SUCCEEDED"]
                                       for i in range(1, n + 1)})
        self.clock = clock
        self.model_of: dict[str, str] = {}
        self.done: set[str] = set()
        self.submits: list[tuple[float, str, int, int]] = []  # (t, model, of model, total)

    def _submit(self, request: Any) -> tuple[int, dict[str, str], str]:
        model = json.loads(request.body)["model"]
        live = [t for t in self.created if t not in self.done]
        self.submits.append((self.clock.now(), model,
                             sum(1 for t in live if self.model_of[t] == model), len(live)))
        got = super()._submit(request)
        self.model_of[self.created[-1]] = model
        return got

    def _query(self, request: Any) -> tuple[int, dict[str, str], str]:
        got = super()._query(request)
        if '"SUCCEEDED"' in got[2]:
            self.done.add(TASK_RE.match(request.url.split("?")[0]).group(1))  # type: ignore[union-attr]
        return got

    def max_in_flight(self, model: str | None = None) -> int:
        """Most tasks in flight just after a submission (of ``model``, or in all)."""
        if model is None:
            return max(total for *_, total in self.submits) + 1
        return max(n for _, m, n, _ in self.submits if m == model) + 1

    def most_in_a_second(self, model: str) -> int:
        """Most submissions of ``model`` within any one second (the account's window)."""
        times = [t for t, m, *_ in self.submits if m == model]
        return max(sum(1 for u in times if t <= u < t + 1.0 - 1e-9) for t in times)


def mixed(flash: int, plus: int) -> str:
    names = [f"f{i}.png" for i in range(flash)] + [f"p{i}.png" for i in range(plus)]
    images(*names)
    return jsonl(*[{"image": f"f{i}.png", "model": "wan2.6-i2v-flash"} for i in range(flash)],
                 *[{"image": f"p{i}.png", "model": "wan2.2-i2v-plus"} for i in range(plus)])


def test_without_j_each_model_stays_at_its_concurrent_task_limit(run: Run,
                                                                clock: FakeClock) -> None:
    flash, plus = find_model("wan2.6-i2v-flash"), find_model("wan2.2-i2v-plus")
    assert flash is not None and plus is not None
    assert (flash.concurrent_tasks, plus.concurrent_tasks) == (5, 2)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Counting(rsps, clock, 12)
        r = run(["batch", "-", "--no-download", "--json"], stdin=mixed(8, 4))
    assert r.code == 0, r.err
    assert len(svc.created) == 12
    assert svc.max_in_flight("wan2.6-i2v-flash") == 5
    assert svc.max_in_flight("wan2.2-i2v-plus") == 2
    assert svc.max_in_flight() == 7  # the two limits side by side
    assert svc.most_in_a_second("wan2.6-i2v-flash") <= max(1, int(flash.submits_per_second))
    assert svc.most_in_a_second("wan2.2-i2v-plus") <= max(1, int(plus.submits_per_second))
    assert "in flight at once: 5 wan2.6-i2v-flash, 2 wan2.2-i2v-plus" in r.err
    assert len(json_rows(r.out)) == 12


def test_an_explicit_j_caps_the_batch_and_the_model_limits_still_hold(
        run: Run, clock: FakeClock) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Counting(rsps, clock, 6)
        r = run(["batch", "-", "--no-download", "--json", "-j", "1"], stdin=mixed(4, 2))
    assert r.code == 0, r.err
    assert svc.max_in_flight() == 1
    assert "1 in flight at once" in r.err
    images("q0.png", "q1.png", "q2.png")
    # A journal of its own: this stand-in service numbers its tasks t-1, t-2... again, and
    # the first journal shows those ids SUCCEEDED (their leases would be dropped at once).
    fresh = {"WANVID_STATE_DIR": str(Path(os.environ["WANVID_STATE_DIR"]) / "second")}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Counting(rsps, clock, 3)
        r = run(["batch", "-", "--no-download", "--json", "-j", "3"],
                stdin=jsonl(*[{"image": f"q{i}.png", "model": "wan2.2-i2v-plus"}
                              for i in range(3)]), env=fresh)
    assert r.code == 0, r.err
    # -j above the model's limit of 2: the account's limit holds (its slots are shared
    # with every wanvid process), the message says so
    assert svc.max_in_flight("wan2.2-i2v-plus") == 2
    assert "3 in flight at once (at most; the account's limits hold: 2 wan2.2-i2v-plus)" in r.err
    assert svc.most_in_a_second("wan2.2-i2v-plus") <= 2


def test_config_jobs_caps_the_batch_too(run: Run, clock: FakeClock) -> None:
    cfg = Path(os.environ["WANVID_CONFIG_DIR"])
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text("jobs = 3\n", encoding="utf-8")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Counting(rsps, clock, 8)
        r = run(["batch", "-", "--no-download", "--json"], stdin=mixed(8, 0))
    assert r.code == 0, r.err
    assert svc.max_in_flight() == 3


def test_flight_text_names_each_models_limit() -> None:
    m = [find_model("wan2.7-i2v"), find_model("wan2.7-i2v"), find_model("wan2.2-i2v-flash")]
    assert flight_text(None, m) == ("in flight at once: 5 wan2.7-i2v, 2 wan2.2-i2v-flash (each "
                                    "model's concurrent-task limit; -j N sets one for the batch)")
    assert flight_text(4, m) == ("4 in flight at once (at most; the account's limits hold: "
                                 "2 wan2.2-i2v-flash)")
    assert flight_text(2, m) == "2 in flight at once"


class StringUsage(Service):
    def _query(self, request: Any) -> tuple[int, dict[str, str], str]:
        code, headers, body = super()._query(request)
        return code, headers, body.replace('"duration": 5', '"duration": "6.0"')


def test_a_usage_duration_sent_as_a_string_is_billed(run: Run) -> None:
    images("a.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        StringUsage(rsps)
        r = run(["batch", "-", "--no-download"], stdin=jsonl({"image": "a.png"}))
    assert r.code == 0, r.err
    assert "1 succeeded, 0 failed, 0 skipped; 6 s billed" in r.err


def test_a_batch_waits_for_slots_another_process_holds_and_gives_its_own_back(
        run: Run, clock: FakeClock) -> None:
    """Another live process holds both wan2.2-i2v-plus slots (as a generate would): the
    batch sends nothing until one is released, says so once, then holds at most the free
    one; when it ends no lease of the batch is left in the journal."""
    from wanvid.leases import Leases, Limit, key_for

    journal = Path(os.environ["WANVID_STATE_DIR"]) / "journal.db"
    key = key_for("wan2.2-i2v-plus", "https://dashscope-intl.aliyuncs.com/api/v1")
    other = Leases(journal, now=clock.now, pid=os.getppid())  # alive, not this process
    held = [other.try_take(key, Limit(2, 0))[0] for _ in range(2)]
    assert None not in held
    naps = 0
    real_sleep = clock.sleep

    def sleep(s: float) -> None:  # the other process's tasks end after a while
        nonlocal naps
        naps += 1
        if naps == 20:
            other.release(held[0])
        real_sleep(s)

    clock.sleep = sleep  # type: ignore[method-assign]
    images("q0.png", "q1.png", "q2.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = Counting(rsps, clock, 3)
        r = run(["batch", "-", "--no-download", "--json"],
                stdin=jsonl(*[{"image": f"q{i}.png", "model": "wan2.2-i2v-plus"}
                              for i in range(3)]))
    assert r.code == 0, r.err
    assert naps >= 20 and svc.submits[0][0] > 0  # nothing sent while both were held
    assert svc.max_in_flight("wan2.2-i2v-plus") == 1  # the other still holds one
    assert r.err.count("the batch waits (nothing sent yet)") == 1
    assert ("the batch waits (nothing sent yet): 2 wan2.2-i2v-plus task(s) of other wanvid "
            "processes hold the account's 2 slot(s)") in r.err
    assert other.held(key) == 1  # only the other's own lease remains
    other.close()


class RefusedQueries(Service):
    """Every task query is answered with ``status`` (400: refused; 500: failing)."""

    def __init__(self, rsps: responses.RequestsMock, status: int) -> None:
        super().__init__(rsps)
        self.status = status
        self.queries = 0

    def _query(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.queries += 1
        code = "InvalidParameter" if self.status == 400 else "InternalError"
        return self.status, {}, json.dumps({"request_id": "r", "code": code,
                                            "message": "task query refused"})


@pytest.mark.parametrize("status,exit_code", [(400, 4), (500, 7)])
def test_a_task_whose_wait_ends_in_an_error_gives_its_slot_to_the_next_job(
        run: Run, clock: FakeClock, status: int, exit_code: int) -> None:
    """wan2.2-i2v-flash allows 2 at once: both first tasks' queries are refused (or fail
    until the loop gives up); the batch stops following them, gives their slots back and
    submits the third job (it waited for its own slots for ever, and named them "other
    wanvid processes'"). No lease is left."""
    from wanvid.leases import Leases, key_for

    images("q0.png", "q1.png", "q2.png")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        svc = RefusedQueries(rsps, status)
        r = run(["batch", "-", "--no-download", "--json", "--timeout", "3600"],
                stdin=jsonl(*[{"image": f"q{i}.png", "model": "wan2.2-i2v-flash"}
                              for i in range(3)]))
    assert r.code == exit_code, r.err
    assert svc.created == ["t-1", "t-2", "t-3"]
    rows = json_rows(r.out)
    assert sorted(row["task_id"] for row in rows) == ["t-1", "t-2", "t-3"]
    assert "NOT_SUBMITTED" not in r.out and "not submitted" not in r.err
    assert "other wanvid processes" not in r.err
    assert "3 failed" in r.err
    journal = Path(os.environ["WANVID_STATE_DIR"]) / "journal.db"
    key = key_for("wan2.2-i2v-flash", "https://dashscope-intl.aliyuncs.com/api/v1")
    assert Leases(journal, now=clock.now).held(key) == 0
