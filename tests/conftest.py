"""Shared fixtures: every test runs with its own config dir, state dir and HOME, and no key.

``run`` drives the real CLI entry point (``wanvid.cli.main``) with an injected
Environment (streams, variables, fake clock) and returns (exit code, stdout, stderr).
Unexpected exceptions are re-raised (WANVID_RAISE=1) so a bug can't hide behind an exit code.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from wanvid.context import Environment

KEY = "sk-test-0123456789abcdef-SECRET"


def interruptible_children() -> None:
    """Let the processes the suite starts be interrupted however the suite was started.

    A runner started in the background by a non-interactive shell (``land &``, some CI
    steps) has SIGINT ignored, and every process it starts inherits that; Python then
    installs no KeyboardInterrupt handler, so a test's Ctrl-C (``os.kill(pid, SIGINT)``)
    does nothing and the test waits for ever. A caught SIGINT is reset to the default by
    exec, so catching it here gives every child Python's own Ctrl-C handling.
    """
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config: pytest.Config) -> None:
    interruptible_children()


@pytest.fixture(autouse=True)
def _isolate(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path_factory.mktemp("home")
    for var in list(os.environ):
        if var.startswith(("DASHSCOPE_", "WANVID_")) or var in ("CI", "NO_COLOR"):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(base))
    monkeypatch.setenv("WANVID_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("WANVID_STATE_DIR", str(base / "state"))
    monkeypatch.setenv("WANVID_RAISE", "1")
    work = base / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    from wanvid.models import use_user_catalogue

    use_user_catalogue(None, explicit=False)  # the catalogue: this test's config dir


class FakeClock:
    """now()/monotonic()/sleep() that only move when slept on."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def all(self) -> str:
        return self.out + self.err


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def run(clock: FakeClock) -> Callable[..., Result]:
    from wanvid.cli import main

    def _run(args: list[str], *, env: dict[str, str] | None = None, stdin: str | None = None,
             tty: bool = False, key: str | None = KEY) -> Result:
        environ = dict(os.environ)
        if key:
            environ["DASHSCOPE_API_KEY"] = key
        environ.update(env or {})
        out, err = io.StringIO(), io.StringIO()
        e = Environment(environ=environ, stdin=io.StringIO(stdin or ""), stdout=out, stderr=err,
                        stdin_isatty=tty and stdin is None, stderr_isatty=tty, now=clock.now,
                        monotonic=clock.now, sleep=clock.sleep, cwd=Path.cwd())
        code = main(args, env=e)
        return Result(code, out.getvalue(), err.getvalue())

    return _run
