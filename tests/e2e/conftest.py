"""End-to-end fixtures: the installed `wanvid` run as a subprocess against the project's
own emulator (`wanvid emulator --port 0`), over real loopback HTTP.

``emulator(**switches)`` starts one (fault switches as keyword arguments, e.g.
``throttle_every=3``) and returns a handle with ``base_url``, ``advance(seconds)`` and
``stats()``; ``wv(*args, ...)`` runs the CLI with an isolated HOME/config/state and the
emulator's base URL and a test key in its environment.
"""

from __future__ import annotations

import json
import os
import signal as _signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_media import png_bytes

WANVID = Path(sys.executable).parent / "wanvid"
E2E_KEY = "sk-e2e-key-0123456789abcdef"


def is_sidecar(p: Path) -> bool:
    """A video's metadata (clip.json, clip.thumb.jpg), written beside it by default."""
    return p.suffix == ".json" or p.name.endswith(".thumb.jpg")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@dataclass
class EmulatorProc:
    proc: subprocess.Popen[str]
    base_url: str
    log: list[str] = field(default_factory=list)

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/api/v1")

    def advance(self, seconds: float) -> None:
        req = urllib.request.Request(f"{self.root}/_emulator/advance?seconds={seconds}",
                                     method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.root}/_emulator/stats", timeout=10) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def emulator() -> Iterator[Callable[..., EmulatorProc]]:
    started: list[EmulatorProc] = []

    def start(**switches: Any) -> EmulatorProc:
        if not WANVID.exists():
            pytest.fail(f"the wanvid command is not installed next to {sys.executable}; "
                        "install the project first (see README)")
        args = [str(WANVID), "emulator", "--port", "0"]
        switches.setdefault("pending", 0.3)
        switches.setdefault("running", 0.7)
        for k, v in switches.items():
            args += [f"--{k.replace('_', '-')}"] if v is True else [f"--{k.replace('_', '-')}",
                                                                     str(v)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("http"):
            proc.kill()
            pytest.fail(f"emulator did not print its base URL, got {line!r}")
        emu = EmulatorProc(proc, line)
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def wv_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DASHSCOPE_", "WANVID_")) and k not in ("CI", "NO_COLOR")}
    env.update(HOME=str(home), WANVID_CONFIG_DIR=str(home / "config"),
               WANVID_STATE_DIR=str(home / "state"), DASHSCOPE_API_KEY=E2E_KEY,
               WANVID_POLL_INTERVAL="0.2")
    return env


@pytest.fixture
def wv(wv_env: dict[str, str], tmp_path: Path) -> Callable[..., Run]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)

    def run(*args: str, base_url: str | None = None, input: str | None = None,
            timeout: float = 120, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Run:
        e = dict(wv_env)
        if base_url:
            e["DASHSCOPE_HTTP_BASE_URL"] = base_url
        e.update(env or {})
        p = subprocess.run([str(WANVID), *args], input=input, capture_output=True, text=True,
                           env=e, cwd=cwd or work, timeout=timeout,
                           stdin=None if input is not None else subprocess.DEVNULL)
        return Run(p.returncode, p.stdout, p.stderr)

    return run


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    """Small valid frames: 'first' (640x480 PNG), 'last' (640x480 PNG), 'square' (400x400)."""
    d = tmp_path / "images"
    d.mkdir()
    out = {}
    for name, (w, h) in {"first": (640, 480), "last": (640, 480), "square": (400, 400)}.items():
        p = d / f"{name}.png"
        p.write_bytes(png_bytes(w, h))
        out[name] = p
    return out


def signal_once_waiting(proc: subprocess.Popen[str], sig: int = _signal.SIGINT,
                        ) -> tuple[str, str, str]:
    """Send ``sig`` to a wanvid run once its first task is submitted and waited for (its
    "ID PENDING (" line on stderr); its task id, stdout and the rest of stderr."""
    try:
        assert proc.stderr is not None
        while True:
            line = proc.stderr.readline()
            assert line, "wanvid ended before it was waiting"
            if " PENDING (" in line:
                break
        os.kill(proc.pid, sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return line.split()[1], stdout, stderr
