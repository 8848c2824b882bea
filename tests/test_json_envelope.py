"""The --json envelope: one shape for every command (docs/json-envelope.schema.json), on
success and on every failure, with the process's exit status on its last line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses

from tests import envelope_schema
from tests.conftest import Result
from wanvid.errors import EXIT_CODE_TABLE, ExitStatus

Run = Callable[..., Result]
INTL = "https://dashscope-intl.aliyuncs.com/api/v1"
I2V_URL = INTL + "/services/aigc/video-generation/video-synthesis"
IMG = "https://example.com/cat.png"
TID = "0385dc79-5ff8-4d82-bcb6-0123456789ab"


def _task(status: str, **out: Any) -> dict[str, Any]:
    return {"request_id": "r-1", "output": {"task_id": TID, "task_status": status,
                                            "submit_time": "2027-01-15 07:30:00.123", **out}}


# --- the schema and the validator agree with the code ---------------------------------------

def test_schema_lists_every_exit_code_and_error_code() -> None:
    import typer

    from wanvid.cli import app  # the package: every command registered
    from wanvid.cli.argv import json_commands, spec_of
    from wanvid.envelope import ERROR_CODES

    props = envelope_schema.SCHEMA["properties"]
    assert set(props["exit_code"]["enum"]) == {int(s) for s in ExitStatus}
    assert {c for c, _ in EXIT_CODE_TABLE} == set(props["exit_code"]["enum"])
    assert set(props["command"]["enum"]) == json_commands(spec_of(typer.main.get_command(app)))
    codes = envelope_schema.SCHEMA["$defs"]["error"]["properties"]["code"]["enum"]
    assert set(codes) == set(ERROR_CODES.values())
    assert set(ERROR_CODES) == {int(s) for s in ExitStatus if s}


@pytest.mark.parametrize(("bad", "why"), [
    ({"wanvid_json": 2}, "is not 1"),
    ({"ok": True, "exit_code": 2}, "is not 0"),
    ({"ok": False, "exit_code": 2, "errors": []}, "fewer than 1"),
    ({"kind": "job"}, "must not match"),
    ({"data": {"task_id": TID, "status": "PENDING", "submitted_at": 1.8e9}}, "not of type"),
    ({"data": {"task_id": TID, "status": "X", "submitted_at": "2027-01-15 07:30:00"}},
     "does not match"),
    ({"extra": 1}, "unexpected key"),
])
def test_validator_rejects_what_the_schema_forbids(bad: dict[str, Any], why: str) -> None:
    good = {"wanvid_json": 1, "command": "status", "kind": "task", "ok": True, "exit_code": 0,
            "data": {"task_id": TID, "status": "RUNNING"}, "errors": []}
    assert envelope_schema.errors(good) == []
    errs = envelope_schema.errors({**good, **bad})
    assert any(why in e for e in errs), errs


def test_validator_refuses_keywords_it_does_not_check() -> None:
    with pytest.raises(ValueError, match="format"):
        envelope_schema.errors("x", {"format": "date-time"})


def test_service_time_is_iso_utc() -> None:
    from wanvid.envelope import iso, service_time

    assert service_time("2027-01-15 07:30:00.123") == "2027-01-14T23:30:00Z"
    assert service_time("2027-01-15 07:30:00") == "2027-01-14T23:30:00Z"
    assert service_time("yesterday") is None and service_time(17) is None
    assert iso(0) == "1970-01-01T00:00:00Z"


# --- every command: success and failure ----------------------------------------------------

def _ok_submit(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, I2V_URL, json={"request_id": "r-1", "output": {
        "task_id": TID, "task_status": "PENDING"}})


def _status(state: str, **out: Any) -> Callable[[responses.RequestsMock], None]:
    return lambda rsps: rsps.add(responses.GET, f"{INTL}/tasks/{TID}", json=_task(state, **out))


CASES: list[tuple[str, list[str], Callable[[responses.RequestsMock], None] | None, int, str]] = [
    ("submit", ["submit", IMG, "--json"], _ok_submit, 0, "result"),
    ("submit-dry-run", ["submit", IMG, "--dry-run", "--json"], None, 0, "result"),
    ("submit-bad-input", ["submit", "nope.png", "--json"], None, 2, "result"),
    ("submit-usage-error", ["submit", "--json"], None, 2, "result"),
    ("submit-rejected", ["submit", IMG, "--json"],
     lambda rsps: rsps.add(responses.POST, I2V_URL, status=400, json={
         "request_id": "r", "code": "InvalidParameter", "message": "bad"}), 4, "result"),
    ("generate-bad-input", ["generate", IMG, "-d", "99", "--json"], None, 2, "summary"),
    ("status", ["status", TID, "--json"], _status("RUNNING"), 0, "summary"),
    ("status-failed", ["status", TID, "--json"],
     _status("FAILED", code="DataInspectionFailed", message="no"), 5, "summary"),
    ("status-not-an-id", ["status", "not a task id", "--json"], None, 2, "summary"),
    ("wait-failed", ["wait", TID, "--json"],
     _status("FAILED", code="DataInspectionFailed", message="no"), 5, "summary"),
    ("download-running", ["download", TID, "--json"], _status("RUNNING"), 2, "result"),
    ("download-unknown", ["download", TID, "--json"], _status("UNKNOWN"), 5, "result"),
    ("cancel", ["cancel", TID, "--json"],
     lambda rsps: rsps.add(responses.POST, f"{INTL}/tasks/{TID}/cancel", json={}), 0,
     "summary"),
    ("cancel-refused", ["cancel", TID, "--json"],
     lambda rsps: rsps.add(responses.POST, f"{INTL}/tasks/{TID}/cancel", status=400, json={
         "request_id": "r", "code": "UnsupportedOperation", "message": "not PENDING"}), 4,
     "summary"),
    ("tasks", ["tasks", "--json"], None, 0, "result"),
    ("tasks-bad-since", ["tasks", "--since", "soon", "--json"], None, 2, "result"),
    ("tasks-remote", ["tasks", "--remote", "--json"],
     lambda rsps: rsps.add(responses.GET, f"{INTL}/tasks", json={"data": [
         {"task_id": TID, "task_status": "SUCCEEDED", "model_name": "wan2.2-i2v-flash",
          "submit_time": "2027-01-15 07:30:00.123"}, {"task_id": "bad id"}]}), 0, "result"),
    ("tasks-remote-500", ["tasks", "--remote", "--json"],
     lambda rsps: rsps.add(responses.GET, f"{INTL}/tasks", status=500, json={}), 7, "result"),
    ("models", ["models", "--json"], None, 0, "result"),
    ("models-path", ["models", "--path", "--json"], None, 0, "result"),
    ("batch-missing-file", ["batch", "nope.jsonl", "--json"], None, 2, "summary"),
    ("batch-usage-error", ["batch", "--json"], None, 2, "summary"),
    ("batch-bad-option", ["batch", "jobs.jsonl", "--bogus", "--json"], None, 2, "summary"),
    ("cancel-usage-error", ["cancel", "--json"], None, 2, "summary"),
    ("cancel-not-an-id", ["cancel", "x y", "--json"], None, 2, "summary"),
    ("usage", ["usage", "--json"], None, 0, "result"),
    ("usage-bad-since", ["usage", "--since", "soon", "--json"], None, 2, "result"),
    ("config-list", ["config", "list", "--json"], None, 0, "result"),
    ("root-option-first", ["--region", "cn", "config", "list", "--json"], None, 0, "result"),
]


@pytest.mark.parametrize(("args", "setup", "code", "kind"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_every_command_prints_valid_envelopes(
        run: Run, args: list[str], setup: Callable[[responses.RequestsMock], None] | None,
        code: int, kind: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        if setup is not None:
            setup(rsps)
        r = run(args, env={"WANVID_RAISE": ""})
    assert r.code == code, r.err
    envs = envelope_schema.envelopes(r.out)
    final = envs[-1]
    assert (final["kind"], final["exit_code"], final["ok"]) == (kind, code, code == 0)
    assert final["command"] == ("config list" if "config" in args else args[0] if
                                not args[0].startswith("-") else args[2])
    if code:
        assert final["errors"] and all(e["message"] for e in final["errors"])
    if "error:" in r.err:  # the same message as the one line on stderr
        assert any(e["message"] in r.err for e in envs[-1]["errors"] + [
            e for env in envs[:-1] for e in env["errors"]]), (r.out, r.err)


def test_no_key_is_an_envelope_too(run: Run) -> None:
    r = run(["submit", IMG, "--json"], key=None)
    env = envelope_schema.last(r.out, "submit", exit_code=3)
    assert env["errors"][0]["code"] == "auth" and env["data"] is None


def test_tasks_json_times_are_iso_and_rows_share_the_remote_shape(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        _ok_submit(rsps)
        assert run(["submit", IMG]).code == 0
    [row] = envelope_schema.data(run(["tasks", "--json"]).out, "tasks")
    assert row["task_id"] == TID and row["submitted_at"].endswith("Z")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{INTL}/tasks", json={"data": [
            {"task_id": TID, "task_status": "PENDING", "submit_time": "2027-01-15 07:30:00"}]})
        [remote] = envelope_schema.data(run(["tasks", "--remote", "--json"]).out, "tasks")
    assert remote["submitted_at"] == "2027-01-14T23:30:00Z"
    assert set(remote) - set(row) <= {"scheduled_at", "ended_at", "orig_prompt",
                                      "actual_prompt", "usage", "request_id"}


def test_help_with_json_prints_help_not_an_envelope(run: Run) -> None:
    r = run(["status", "--json", "--help"])
    assert r.code == 0 and "wanvid_json" not in r.out


def test_a_command_without_json_gets_no_envelope(run: Run) -> None:
    r = run(["gallery", "--json"])
    assert r.code == 2 and r.out == ""


# --- Ctrl-C: the summary still ends the stream ---------------------------------------------

def test_ctrl_c_during_generate_json_ends_with_a_summary_naming_the_task(
        run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from wanvid.service import Service

    def interrupted(self: Service, *a: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(Service, "wait", interrupted)
    with responses.RequestsMock() as rsps:
        _ok_submit(rsps)
        r = run(["generate", IMG, "--json"])
    assert r.code == 130
    env = envelope_schema.last(r.out, "generate", exit_code=130)
    assert env["kind"] == "summary" and env["errors"][0]["code"] == "interrupted"
    assert env["data"]["unfinished"] == [TID]
    assert env["data"]["resume"] == "wanvid wait --pending"
    assert "wanvid wait --pending" in r.err


@pytest.mark.parametrize(("args", "said"), [
    (["status", TID, "--json"], "interrupted"),  # nothing submitted: no hint
    (["tasks", "--remote", "--json"], "interrupted"),
    (["download", TID, "--json"], "interrupted; what was fetched is kept: the same command "
                                  "resumes it"),
    (["wait", TID, "--json"], "interrupted; submitted tasks are in the journal: "
                              "`wanvid wait --pending` picks them up"),
])
def test_ctrl_c_says_what_to_do_next_only_where_something_is_left(
        run: Run, monkeypatch: pytest.MonkeyPatch, args: list[str], said: str) -> None:
    from wanvid.client import Client

    def interrupted(self: Client, *a: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(Client, "_request", interrupted)
    r = run(args)
    assert r.code == 130
    assert r.err == f"wanvid: {said}\n"
    assert envelope_schema.envelopes(r.out)[-1]["errors"][0]["message"] == said


def test_ctrl_c_during_a_submit_in_flight_says_so_in_the_envelope_too(
        run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from wanvid import intents
    from wanvid.client import Client

    def interrupted(self: Client, *a: Any, **kw: Any) -> Any:
        with intents.posting():
            raise KeyboardInterrupt

    monkeypatch.setattr(Client, "submit", interrupted)
    r = run(["submit", IMG, "--json"])
    assert r.code == 130
    message = envelope_schema.last(r.out, "submit", exit_code=130)["errors"][0]["message"]
    assert "a submit was in flight" in message and r.err == f"wanvid: {message}\n"


def test_wait_json_summary_counts_and_each_line_is_an_envelope(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        _status("FAILED", code="DataInspectionFailed", message="no")(rsps)
        r = run(["wait", TID, "--json"])
    first, last = envelope_schema.envelopes(r.out, "wait")
    assert first["kind"] == "task" and first["exit_code"] == 5
    assert first["errors"] == [{"code": "task_failed", "message": "no",
                                "service_code": "DataInspectionFailed", "task_id": TID}]
    assert last["data"] == {"tasks": 1, "ok": 0, "failed": 1, "unfinished": [],
                            "resume": None}
    assert json.loads(r.out.splitlines()[0])["data"]["code"] == "DataInspectionFailed"


# --- `submit --json | wanvid wait`: envelopes on stdin ---------------------------------------

def test_wait_reads_submit_json_lines_from_stdin(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        _ok_submit(rsps)
        sub = run(["submit", IMG, "--json"])
    with responses.RequestsMock() as rsps:
        _status("RUNNING")(rsps)
        r = run(["status", "--json"], stdin=sub.out)
        assert [c.request.url for c in rsps.calls] == [f"{INTL}/tasks/{TID}"]
    assert envelope_schema.items(r.out, "status")[0]["task_id"] == TID
    with responses.RequestsMock() as rsps:  # a status stream (summary line included) too
        _status("FAILED", code="X", message="no")(rsps)
        r = run(["wait", "--json"], stdin=r.out)
        assert len(rsps.calls) == 1
    assert envelope_schema.rows(r.out, "wait")[0]["task_id"] == TID


FAILED_SUBMIT = ('{"wanvid_json": 1, "command": "submit", "kind": "result", "ok": false, '
                 '"exit_code": 2, "data": null, "errors": [{"code": "bad_input", '
                 '"message": "nope.png: no such file"}]}')


@pytest.mark.parametrize("cmd", [["status"], ["wait", "--no-download"]])
def test_a_failed_submit_of_a_loop_is_skipped_and_the_other_tasks_followed(
        run: Run, cmd: list[str]) -> None:
    # for f in a.png nope.png b.png; do wanvid submit "$f" --json; done | wanvid wait
    with responses.RequestsMock() as rsps:
        _ok_submit(rsps)
        sub = run(["submit", IMG, "--json"])
    stdin = FAILED_SUBMIT + "\n" + sub.out
    with responses.RequestsMock() as rsps:
        _status("SUCCEEDED", video_url="https://oss.example.com/v.mp4")(rsps)
        r = run(cmd, stdin=stdin)
        assert [c.request.url for c in rsps.calls] == [f"{INTL}/tasks/{TID}"]
    assert r.code == 2, r.err
    assert TID in r.out
    assert "nope.png: no such file" in r.err and "skipped, the other tasks go on" in r.err
    with responses.RequestsMock() as rsps:  # --json: the skipped line is an error of the last
        _status("SUCCEEDED", video_url="https://oss.example.com/v.mp4")(rsps)
        r = run([*cmd, "--json"], stdin=stdin)
    assert r.code == 2, r.err
    last = json.loads(r.out.splitlines()[-1])
    assert last["exit_code"] == 2 and not last["ok"]
    assert any("nope.png" in e["message"] for e in last["errors"]), last


@pytest.mark.parametrize("line", [
    "not a task id", '{"task_id": "x y"}', "{broken json",
    '{"wanvid_json": 1, "command": "submit", "kind": "result", "ok": false, "exit_code": 3, '
    '"data": null, "errors": [{"code": "auth", "message": "no key"}]}',
])
def test_what_cannot_be_a_task_id_is_refused_before_any_request(run: Run, line: str) -> None:
    for cmd in (["wait"], ["status"]):
        with responses.RequestsMock() as rsps:
            r = run(cmd, stdin=line + "\n")
            assert len(rsps.calls) == 0
        assert r.code == 2 and r.out == "" and r.err.count("\n") == 1, r.err
        assert "nothing was queried" in r.err
    with responses.RequestsMock() as rsps:
        r = run(["status", "not a task id"])
        assert len(rsps.calls) == 0
    assert r.code == 2


def test_a_task_given_up_on_is_unfinished_with_a_resume_not_failed() -> None:
    from wanvid.context import Environment
    from wanvid.envelope import JsonOut

    jo = JsonOut(Environment(), "wait", streaming=True)
    jo.expect(["t-1", "t-2", "t-3", "t-4"])
    jo.items = [{"exit_code": 0, "task_id": "t-1", "resume": None},
                {"exit_code": 5, "task_id": "t-2", "resume": None},  # FAILED: failed
                {"exit_code": 6, "task_id": "t-3", "resume": "wanvid wait t-3"}]  # --timeout
    d = jo.default_summary()  # t-4: no line at all (Ctrl-C)
    assert d == {"tasks": 4, "ok": 1, "failed": 1, "unfinished": ["t-4", "t-3"],
                 "resume": "wanvid wait --pending"}


def test_a_saved_video_line_still_says_when_its_url_expires() -> None:
    from wanvid.envelope import outcome_data
    from wanvid.poll import Outcome

    url = "https://oss.example.com/v.mp4?Expires=1800000000&Signature=s"
    saved = Outcome(TID, "SUCCEEDED", video_url=url, path=Path("v.mp4"), size=5, sha256="ab")
    assert outcome_data(saved)["expires_at"] == "2027-01-15T08:00:00Z"  # as status says
