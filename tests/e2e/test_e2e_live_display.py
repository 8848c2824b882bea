"""The live display in a real terminal (a pty 80 columns wide): two tasks, one failing.

Rows are cut to the width, never wrapped; each names its input; the failure is printed
above the rows as its own line; colour appears only without NO_COLOR; sizes in MiB/KiB."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import WANVID, EmulatorProc, Run

CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SGR_COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;)[0-9;]*m")


def _in_pty(args: list[str], env: dict[str, str], cwd: Path, columns: int = 80,
            timeout: float = 60) -> tuple[int, str]:
    """Run with stdin/stdout/stderr on one pty of ``columns`` columns; all it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    p = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                         close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer is gone
                    break
                if not data:
                    break
                chunks.append(data)
            elif p.poll() is not None:
                break
        code = p.wait(timeout=max(1.0, end - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def _config(emu: EmulatorProc, query: str) -> None:
    req = urllib.request.Request(f"{emu.root}/_emulator/config?{query}", method="POST",
                                 data=b"")
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


@pytest.mark.parametrize("no_color", [False, True])
def test_live_display_at_80_columns_with_a_failing_task(
        no_color: bool, emulator: Callable[..., EmulatorProc], wv: Callable[..., Run],
        wv_env: dict[str, str], tmp_path: Path, images: dict[str, Path]) -> None:
    emu = emulator(pending=1, running=3, video_mb=1)
    long_name = images["first"].with_name("a-holiday-photo-with-a-very-long-name-indeed.png")
    images["first"].rename(long_name)
    ok = wv("submit", str(long_name), "-p", "waves", base_url=emu.base_url)
    _config(emu, "fail_with=DataInspectionFailed&fail_rate=1")
    bad = wv("submit", str(images["square"]), "-p", "waves", base_url=emu.base_url)
    assert ok.code == 0 and bad.code == 0, ok.err + bad.err
    ok_id, bad_id = ok.out.strip(), bad.out.strip()

    env = {k: v for k, v in wv_env.items() if k not in ("CI", "NO_COLOR", "COLUMNS", "LINES")}
    env.update(DASHSCOPE_HTTP_BASE_URL=emu.base_url, TERM="xterm-256color")
    if no_color:
        env["NO_COLOR"] = "1"
    code, drawn = _in_pty([str(WANVID), "wait", ok_id, bad_id, "-o", "out/"], env,
                          tmp_path / "work")
    assert code == 5, drawn  # one task failed
    plain = CSI.sub("", drawn)
    pieces = [p for p in re.split(r"[\r\n]", plain) if p.strip()]
    rows = [p for p in pieces if f" {ok_id[:8]}…" in p or f" {bad_id[:8]}…" in p]
    # every row drawn, first to last, is cut to the width (a message above the rows is a
    # whole line, which the terminal may wrap: a path or a command stays whole)
    assert rows and all(len(p) < 80 for p in rows), [p for p in rows if len(p) >= 80]
    errors = [p for p in pieces if "DataInspectionFailed" in p]
    assert errors and all(p.startswith(f"wanvid: error: {bad_id} FAILED") for p in errors)
    assert not any("DataInspectionFailed" in p for p in rows)  # never written into a row
    ok_rows = [p for p in rows if f" {ok_id[:8]}…" in p]
    assert any(p.startswith("a-holiday-photo") and "…" in p for p in ok_rows)
    assert any(p.startswith("a-holiday-photo") and "SAVED" in p for p in ok_rows)
    assert any(p.startswith("square") and "FAILED" in p for p in rows)
    assert f"{ok_id} saved out/{ok_id}.mp4 (1.0 MiB)" in pieces
    assert not re.search(r"\d (MB|KB|kB|GB)\b", plain)
    assert bool(SGR_COLOUR.search(drawn)) is not no_color
    assert (tmp_path / "work" / "out" / f"{ok_id}.mp4").stat().st_size == 1 << 20


@pytest.mark.parametrize("quiet", [False, True])
def test_a_wait_in_a_log_says_it_is_alive_unless_quiet(
        quiet: bool, emulator: Callable[..., EmulatorProc], wv: Callable[..., Run],
        images: dict[str, Path]) -> None:
    emu = emulator(pending=0.5, running=2.5)
    tid = wv("submit", str(images["first"]), "-p", "waves", base_url=emu.base_url).out.strip()
    r = wv("wait", tid, *(["-q"] if quiet else []), base_url=emu.base_url,
           env={"WANVID_HEARTBEAT": "1"})
    assert r.code == 0, r.err
    beats = [ln for ln in r.err.splitlines() if ln.startswith(f"wanvid: {tid} still ")]
    if quiet:
        assert r.err == ""
    else:  # "wanvid: ID still RUNNING (2s elapsed)": id, status, elapsed, one plain line
        assert beats and all(re.fullmatch(rf"wanvid: {tid} still [A-Z]+( .*)? \(\d+s elapsed\)",
                                          ln) for ln in beats), r.err
        assert "\x1b" not in r.err and "\r" not in r.err
