"""A shell citizen: closed streams, help through pipes, wanvid alone (issue 17)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import WANVID


def _sh(cmd: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=60)


@pytest.mark.parametrize("args", ["status", "wait", "batch -", "config set api_key"])
def test_closed_stdin_is_empty_input_not_a_crash(args: str, wv_env: dict[str, str],
                                                 tmp_path: Path) -> None:
    p = _sh(f"{WANVID} {args} <&-", wv_env, tmp_path)
    assert p.returncode == 2, p.stderr
    assert "internal error" not in p.stderr
    assert p.stderr.startswith("wanvid: error: ") and p.stderr.count("\n") == 1


@pytest.mark.parametrize("args", ["--help", "generate --help"])
def test_help_into_a_closed_pipe_exits_141(args: str, wv_env: dict[str, str],
                                           tmp_path: Path) -> None:
    # Help is one write: when it fits in the pipe before head leaves, it was all written (0).
    p = _sh(f"{WANVID} {args} | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}", wv_env, tmp_path)
    assert p.stdout.strip() in ("0", "141"), p.stderr
    assert p.stderr == ""
    # Into a pipe whose reader is already gone: 141, never 1.
    p = _sh(f"exec 3>&1; {WANVID} {args} | (exec 0<&-; true); echo ${{PIPESTATUS[0]}}",
            wv_env, tmp_path)
    assert p.stdout.strip() == "141", p.stderr
    assert p.stderr == ""


def test_wanvid_alone_prints_help_and_exits_0(wv_env: dict[str, str], tmp_path: Path) -> None:
    p = subprocess.run([str(WANVID)], capture_output=True, text=True, env=wv_env, cwd=tmp_path,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0
    assert "Usage: wanvid" in p.stdout and "generate" in p.stdout
    assert "error" not in p.stderr
