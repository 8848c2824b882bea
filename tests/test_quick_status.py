"""A plain ``wanvid status ID`` runs without Typer (``wanvid.quick``, for its start-up
time): it must answer exactly as the Typer CLI does, stdout, stderr and exit code, and
leave every other command line to Typer."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import responses

from tests.conftest import KEY, FakeClock, Result
from wanvid.cli import main as cli_main
from wanvid.context import Environment
from wanvid.quick import is_plain_status, run_status

INTL = "https://dashscope-intl.aliyuncs.com/api/v1"
ERR_401 = {"request_id": "r", "code": "InvalidApiKey", "message": "Invalid API-key provided."}


def task(tid: str, status: str, **extra: object) -> dict[str, object]:
    out: dict[str, object] = {"task_id": tid, "task_status": status, **extra}
    if status == "SUCCEEDED":
        out["video_url"] = f"https://oss.example.com/{tid}.mp4?Expires=1800003600&Signature=s"
    return {"request_id": f"r-{tid}", "output": out}


class Closed(io.StringIO):
    """A stdout whose reader went away."""

    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


Runner = Callable[[list[str], Environment], int]
BOTH: dict[str, Runner] = {"typer": lambda args, env: cli_main(args, env=env),
                           "quick": run_status}


def run_with(runner: Runner, args: list[str], clock: FakeClock, state: Path, *,
             stdin: str | None = None, tty: bool = False, key: str | None = KEY,
             closed_stdout: bool = False) -> Result:
    environ = dict(os.environ, WANVID_STATE_DIR=str(state))
    environ.pop("WANVID_RAISE")  # an unexpected exception is an outcome to compare too
    if key:
        environ["DASHSCOPE_API_KEY"] = key
    out, err = (Closed() if closed_stdout else io.StringIO()), io.StringIO()
    env = Environment(environ=environ, stdin=io.StringIO(stdin or ""), stdout=out, stderr=err,
                      stdin_isatty=tty and stdin is None, stderr_isatty=tty, now=clock.now,
                      monotonic=clock.now, sleep=clock.sleep, cwd=Path.cwd())
    random.seed(19)  # the same retry jitter for both
    code = runner(args, env)
    return Result(code, "" if closed_stdout else out.getvalue(), err.getvalue())


OK_1 = [("t-1", dict(json=task("t-1", "SUCCEEDED")))]
MIXED = [("t-1", dict(json=task("t-1", "SUCCEEDED"))),
         ("t-2", dict(json=task("t-2", "FAILED", code="E", message="m"))),
         ("t-3", dict(json=task("t-3", "RUNNING"))), ("t-4", dict(json=task("t-4", "UNKNOWN")))]

CASES: list[tuple[str, list[str], list[tuple[str, dict[str, object]]], dict[str, object]]] = [
    ("one", ["status", "t-1"], OK_1, {}),
    ("mixed", ["status", "t-1", "t-2", "t-3", "t-4"], MIXED, {}),
    ("mixed-json", ["status", "--json", "t-1", "t-2", "t-3", "t-4"], MIXED, {}),
    ("json-after", ["status", "t-1", "--json"], OK_1, {}),
    ("quiet", ["status", "-q", "t-1", "--quiet"], OK_1, {}),
    ("stdin", ["status"], MIXED, {"stdin": "t-1\n# c\n t-2 \nt-3\nt-4\n"}),
    ("stdin-json", ["status", "--json"], OK_1, {"stdin": '{"data": {"task_id": "t-1"}}\n'}),
    ("no-id", ["status"], [], {"tty": True}),
    ("no-id-json", ["status", "--json"], [], {"tty": True}),
    ("bad-id", ["status", "t-1", "no way"], [], {}),
    ("no-key", ["status", "t-1"], [], {"key": None}),
    ("no-key-json", ["status", "t-1", "--json"], [], {"key": None}),
    ("401", ["status", "t-1"], [("t-1", dict(status=401, json=ERR_401))], {}),
    ("401-json", ["status", "t-1", "--json"], [("t-1", dict(status=401, json=ERR_401))], {}),
    ("500", ["status", "t-1"], [("t-1", dict(status=500, json={"code": "InternalError"}))], {}),
    ("down", ["status", "t-1", "t-2"],
     [("t-1", dict(body=requests.exceptions.ConnectionError("down")))], {}),
    ("html", ["status", "t-1"], [("t-1", dict(body="<html>"))], {}),
    ("stdout-closed", ["status", "t-1", "t-2"], MIXED[:2], {"closed_stdout": True}),
    ("stdout-closed-json", ["status", "t-1", "--json"], OK_1, {"closed_stdout": True}),
    ("timeout", ["status", "t-1", "--timeout", "30"], OK_1, {}),
    ("timeout=", ["status", "--timeout=30", "--json", "t-1"], OK_1, {}),
    ("timeout-reached", ["status", "t-1", "t-2", "--timeout", "1"],
     [("t-1", dict(status=500, json={"code": "InternalError"}))], {}),
    ("own-bound-reached", ["status", "t-1", "--json"],
     [("t-1", dict(status=429, json={"code": "Throttling"}, headers={"Retry-After": "60"}))],
     {}),
]


@pytest.mark.parametrize(("args", "answers", "kw"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_quick_status_answers_as_the_typer_cli_does(
        args: list[str], answers: list[tuple[str, dict[str, object]]], kw: dict[str, object],
        tmp_path: Path) -> None:
    assert is_plain_status(args)
    got: dict[str, tuple[Result, list[tuple[str, str]], list[float]]] = {}
    for name, runner in BOTH.items():
        clock = FakeClock()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            for tid, answer in answers:
                rsps.add(responses.GET, f"{INTL}/tasks/{tid}", **answer)  # type: ignore[arg-type]
            r = run_with(runner, args, clock, tmp_path / name, **kw)  # type: ignore[arg-type]
            calls = [(c.request.method or "", c.request.url or "") for c in rsps.calls]
        got[name] = (r, calls, clock.sleeps)
    assert got["quick"] == got["typer"]
    assert got["quick"][0].code == got["typer"][0].code  # (the same, named in a failure)


def test_the_expiry_warning_comes_first_on_both(tmp_path: Path) -> None:
    """A SUCCEEDED video not saved whose URL expires within 2 h: the next status warns."""
    results = {}
    for name, runner in BOTH.items():
        clock = FakeClock()
        with responses.RequestsMock() as rsps:
            rsps.add(responses.GET, f"{INTL}/tasks/t-1", json=task("t-1", "SUCCEEDED"))
            first = run_with(runner, ["status", "t-1"], clock, tmp_path / name)
            again = run_with(runner, ["status", "t-1", "-q"], clock, tmp_path / name)
        assert "wanvid wait --pending" not in first.err
        assert again.err.startswith("wanvid: warning: 1 finished video(s) not downloaded")
        results[name] = (first, again)
    assert results["quick"] == results["typer"]


@pytest.mark.parametrize("args", [
    ["status"], ["status", "t-1"], ["status", "--json", "t-1", "-q"], ["status", "--quiet"],
    ["status", ""], ["status", "t-1", "--timeout", "5"], ["status", "--timeout=0.5", "t-1"],
    ["status", "--timeout", "1", "--timeout", "2"],
])
def test_plain_status_lines(args: list[str]) -> None:
    assert is_plain_status(args)


@pytest.mark.parametrize("args", [
    [], ["wait", "t-1"], ["--json", "status", "t-1"], ["status", "--help"], ["status", "-h"],
    ["status", "t-1", "--debug"], ["status", "--base-url", "http://x", "t-1"],
    ["status", "--", "t-1"], ["status", "-"], ["status", "--jsn", "t-1"], ["status", "-qj"],
    ["status", "--json=1"], ["statuss", "t-1"], ["status", "t-1", "--timeout"],
    ["status", "--timeout", "x", "t-1"], ["status", "--timeout=-1", "t-1"],
    ["status", "--timeout", "nan", "t-1"],
])
def test_everything_else_goes_to_typer(args: list[str]) -> None:
    assert not is_plain_status(args)


def test_the_installed_command_takes_the_quick_path(tmp_path: Path) -> None:
    """``wanvid status`` (the console script) runs without importing Typer; a root option
    makes it Typer's."""
    probe = ("import sys\nfrom wanvid.entry import main\nsys.argv = ['wanvid', *sys.argv[1:]]\n"
             "try:\n    main()\nfinally:\n"
             "    print('typer' in sys.modules, file=sys.stderr)\n")
    env = dict(os.environ, DASHSCOPE_API_KEY=KEY)
    quick = subprocess.run([sys.executable, "-c", probe, "status", "no way"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert quick.returncode == 2 and quick.stderr.splitlines()[-1] == "False"
    assert "is not a task id" in quick.stderr
    typer = subprocess.run([sys.executable, "-c", probe, "status", "--region", "intl", "no way"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert typer.returncode == 2 and typer.stderr.splitlines()[-1] == "True"
    assert quick.stderr.splitlines()[:-1] == typer.stderr.splitlines()[:-1]
