"""A broken or hostile service, environment or key: what it sends is escaped before it
reaches a terminal, task ids are checked, ambient credentials (netrc) are never used, API
redirects are not followed, bad keys are refused before anything is sent, and files that
hold the key are checked like ssh checks its keys."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import responses

from tests import envelope_schema
from tests.conftest import KEY, Result
from wanvid.sanitize import describe, is_task_id, one_line, terminal

Run = Callable[..., Result]

INTL = "https://dashscope-intl.aliyuncs.com/api/v1"
I2V_URL = INTL + "/services/aigc/video-generation/video-synthesis"
IMG = "https://example.com/cat.png"
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\ninjected line\r\u202etxt.exe\x9b31m"


def _journal_ids() -> list[str]:
    from wanvid.journal import Journal

    path = Path(os.environ["WANVID_STATE_DIR"]) / "journal.db"
    if not path.exists():
        return []
    with Journal(path) as j:
        return [r.task_id for r in j.list()]


def _clean(text: str) -> None:
    """No byte a terminal acts on: no ESC, BEL, CSI, CR, bidi override."""
    for ch in ("\x1b", "\x07", "\x9b", "\r", "\u202e"):
        assert ch not in text, repr(text)


# --- sanitize ---------------------------------------------------------------------------


def test_terminal_escapes_controls_keeps_text() -> None:
    assert terminal("ok é 猫") == "ok é 猫"
    s = terminal(HOSTILE)
    _clean(s)
    assert "\n" not in s
    assert "\\u001b]0;pwned\\u0007" in s


def test_one_line_caps_length() -> None:
    s = one_line("x" * 1000, 50)
    assert len(s) == 51 and s.endswith("…")


@pytest.mark.parametrize("value,ok", [
    ("0385dc79-5ff8-4d82-bcb6-xxxxxx", True), ("t-1", True), ("a\nb", False), ("", False),
    ("../etc", False), ("x" * 200, False), (123, False), (["t"], False), ({"a": 1}, False),
    (None, False), ("-rf", False),
])
def test_task_id_pattern(value: object, ok: bool) -> None:
    assert is_task_id(value) is ok


def test_describe_never_prints_a_long_value() -> None:
    assert describe(42) == "a number (42)"
    assert describe([1]) == "a list"
    assert "\n" not in describe("a\nb")


# --- item 3 and 5: service values printed raw, bad task ids -------------------------------


@pytest.mark.parametrize("task_id", ["t-1\nt-2", 12345, ["t-1"], {"id": "t-1"}, "", None,
                                     "\x1b]0;x\x07"])
@pytest.mark.parametrize("command", ["submit", "generate"])
def test_submit_with_unusable_task_id_is_exit_7(run: Run, task_id: object, command: str) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, I2V_URL,
                 json={"request_id": "r-9", "output": {"task_id": task_id,
                                                       "task_status": "PENDING"}})
        r = run([command, IMG, "-p", "x"])
        assert len(rsps.calls) == 1  # never polled
    assert r.code == 7, r.err
    assert r.out == ""
    assert "a task may have been created" in r.err and "r-9" in r.err
    assert "Traceback" not in r.err
    _clean(r.err)
    assert r.err.count("\n") == 1
    assert _journal_ids() == []


def test_status_failed_message_is_escaped(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1",
                 json={"output": {"task_id": "t-1", "task_status": "FAILED",
                                  "code": "Bad\x1b[2J", "message": HOSTILE}})
        r = run(["status", "t-1"])
    assert r.code == 5
    assert r.out.count("\n") == 1
    _clean(r.out)
    assert "\\u001b" in r.out


def test_service_error_message_is_escaped(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1", status=400,
                 json={"code": "InvalidParameter", "message": HOSTILE})
        r = run(["status", "t-1"])
    assert r.code == 4
    _clean(r.err)
    assert "injected line" in r.err
    assert r.err.count("\n") == 1


def test_wait_failed_message_is_escaped_in_journal_and_stderr(run: Run) -> None:
    from wanvid.journal import Journal

    with Journal(Path(os.environ["WANVID_STATE_DIR"]) / "journal.db") as j:
        j.record_submit("t-1", model="m", base_url=INTL, params={}, inputs=[])
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1",
                 json={"output": {"task_id": "t-1", "task_status": "FAILED",
                                  "code": "X", "message": HOSTILE}})
        r = run(["wait", "t-1"])
    assert r.code == 5
    _clean(r.err)
    with Journal(Path(os.environ["WANVID_STATE_DIR"]) / "journal.db") as j:
        rec = j.get("t-1")
    assert rec is not None and rec.message is not None
    _clean(rec.message)
    assert "\n" not in rec.message


def test_tasks_remote_rows_are_escaped(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks",
                 json={"data": [{"task_id": "a\nb", "task_status": "SUCCEEDED\x1b[2J"}, "junk"]})
        r = run(["tasks", "--remote"])
    assert r.code == 0, r.err
    assert r.out.count("\n") == 1
    _clean(r.out)


def test_wait_refuses_a_bogus_task_id_from_stdin(run: Run) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        r = run(["wait"], stdin="t-1\x1b[2J\n")
        assert len(rsps.calls) == 0
    assert r.code == 2
    assert "is not a task id" in r.err
    _clean(r.err)


def test_stdout_json_stays_json_with_c1_controls(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1",
                 json={"output": {"task_id": "t-1", "task_status": "FAILED",
                                  "message": "x\x9by\u2028z"}})
        r = run(["status", "t-1", "--json"])
    _clean(r.out)
    assert "\u2028" not in r.out
    assert envelope_schema.envelopes(r.out, "status")[0]["data"]["message"] == "x\x9by\u2028z"


# --- item 2: netrc, redirects --------------------------------------------------------------


@pytest.fixture
def netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = Path(os.environ["HOME"]) / ".netrc"
    p.write_text("default login evil password NETRC-PASSWORD\n"
                 "machine storage.example.com login s password STORAGE-PASSWORD\n")
    p.chmod(0o600)
    monkeypatch.setenv("NETRC", str(p))
    return p


def test_netrc_never_replaces_the_key(run: Run, netrc: Path) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1",
                 json={"output": {"task_id": "t-1", "task_status": "RUNNING"}})
        r = run(["status", "t-1"])
        auth = rsps.calls[0].request.headers["Authorization"]
    assert r.code == 0, r.err
    assert auth == f"Bearer {KEY}"


def test_plain_requests_would_use_netrc(netrc: Path) -> None:
    """The hazard is real: a default Session sends the netrc password."""
    import requests

    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, "https://storage.example.com/v.mp4", body=b"x")
        requests.Session().get("https://storage.example.com/v.mp4")
        assert "Authorization" in rsps.calls[0].request.headers


def test_storage_redirect_carries_no_credentials(tmp_path: Path, netrc: Path) -> None:
    from wanvid.download import download

    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, "https://oss.example.com/v.mp4", status=302,
                 headers={"Location": "https://storage.example.com/v.mp4"})
        rsps.add(responses.GET, "https://storage.example.com/v.mp4", body=b"\0" * 64,
                 headers={"Content-Length": "64"})
        try:
            download("https://oss.example.com/v.mp4", tmp_path / "v.mp4")
        except Exception:  # verification of the stand-in body is not the point here
            pass
        assert len(rsps.calls) >= 2
        for call in rsps.calls:
            assert "Authorization" not in call.request.headers
            assert "Cookie" not in call.request.headers


def test_api_redirect_is_not_followed(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1", status=302,
                 headers={"Location": "https://evil.example.com/steal"})
        r = run(["status", "t-1"])
        assert len(rsps.calls) == 1
    assert r.code == 7
    assert "redirect" in r.err and "evil.example.com" in r.err


def test_proxies_from_the_environment_still_apply() -> None:
    from wanvid.net import new_session, proxies_for

    env = {"https_proxy": "http://proxy.local:3128", "no_proxy": "localhost,127.0.0.1"}
    assert proxies_for("https://dashscope-intl.aliyuncs.com/x", env) == {
        "https": "http://proxy.local:3128"}
    assert proxies_for("https://localhost:8000/x", env) == {}
    assert proxies_for("http://a.example/x", {"ALL_PROXY": "socks5://p:1"}) == {
        "http": "socks5://p:1"}
    s = new_session(env)
    assert s.trust_env is False
    got = s.merge_environment_settings("https://dashscope-intl.aliyuncs.com/x", {}, None,
                                       None, None)
    assert got["proxies"] == {"https": "http://proxy.local:3128"}


# --- item 7: keys an HTTP header cannot carry -------------------------------------------------


@pytest.mark.parametrize("key,problem", [
    ("sk-abc\ndef", "line break"), ("sk-abc€", "non-ASCII"), ("sk-\x01x", "control"),
])
def test_unsendable_key_is_exit_3_nothing_sent(run: Run, key: str, problem: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        r = run(["submit", IMG, "-p", "x"], key=key)
        assert len(rsps.calls) == 0
    assert r.code == 3, r.err
    assert problem in r.err and "nothing was sent" in r.err
    assert "sk-abc" not in r.err and "Traceback" not in r.err
    assert r.err.count("\n") == 1


# --- item 8: key and config files readable by others ------------------------------------------


def test_world_readable_key_file_warns(run: Run) -> None:
    p = Path(os.environ["HOME"]) / ".dashscope" / "api_key"
    p.parent.mkdir()
    p.write_text(KEY)
    p.chmod(0o644)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1",
                 json={"output": {"task_id": "t-1", "task_status": "RUNNING"}})
        r = run(["status", "t-1"], key=None)
    assert r.code == 0, r.err
    assert f"chmod 600 {p}" in r.err and "0644" in r.err
    p.chmod(0o600)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1",
                 json={"output": {"task_id": "t-1", "task_status": "RUNNING"}})
        r = run(["status", "t-1"], key=None)
    assert "chmod" not in r.err


def test_config_file_with_key_readable_by_group_warns(run: Run) -> None:
    cfg = Path(os.environ["WANVID_CONFIG_DIR"])
    cfg.mkdir(parents=True)
    p = cfg / "config.toml"
    p.write_text(f'api_key = "{KEY}"\n')
    p.chmod(0o640)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1",
                 json={"output": {"task_id": "t-1", "task_status": "RUNNING"}})
        r = run(["status", "t-1"], key=None)
    assert r.code == 0, r.err
    assert f"chmod 600 {p}" in r.err
    assert KEY not in r.all


def test_config_file_without_key_may_be_readable(run: Run) -> None:
    cfg = Path(os.environ["WANVID_CONFIG_DIR"])
    cfg.mkdir(parents=True)
    p = cfg / "config.toml"
    p.write_text('region = "intl"\n')
    p.chmod(0o644)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1",
                 json={"output": {"task_id": "t-1", "task_status": "RUNNING"}})
        r = run(["status", "t-1"])
    assert "chmod" not in r.err


