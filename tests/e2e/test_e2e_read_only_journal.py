"""A journal that cannot be written (a 0444 file, a read-only directory or file system):
`tasks` and `usage` still list it; a command that writes it stops in one line, exit 8,
before anything is sent (issue 17 follow-up).

As root, permissions stop nothing, so the journal's directory or file is bind-mounted
read-only in a mount namespace of its own (``unshare -m``); elsewhere chmod does it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import WANVID

_RO_MOUNT = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


def _read_only(target: Path, cmd: list[str], env: dict[str, str],
               cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` with ``target`` (the journal file or its directory) read-only."""
    if os.geteuid() != 0:
        mode = target.stat().st_mode
        target.chmod(0o555 if target.is_dir() else 0o444)
        try:
            return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd,
                                  stdin=subprocess.DEVNULL, timeout=60)
        finally:
            target.chmod(mode)
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: cannot make the journal read-only")
    p = subprocess.run(["unshare", "-m", "sh", "-c", _RO_MOUNT, str(target), *cmd],
                       capture_output=True, text=True, env=env, cwd=cwd,
                       stdin=subprocess.DEVNULL, timeout=60)
    if p.returncode and ("unshare:" in p.stderr or "mount:" in p.stderr):
        pytest.skip(f"cannot mount read-only here: {p.stderr.strip()[:200]}")
    return p


@pytest.mark.parametrize("what", ["file", "directory"])
def test_a_read_only_journal_is_listed_and_refused_for_writing(
        what: str, emulator, images, wv_env: dict[str, str], tmp_path: Path) -> None:
    emu = emulator()
    env = {**wv_env, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    p = subprocess.run([str(WANVID), "generate", str(images["first"]), "-p", "x", "-o",
                        "a.mp4"], capture_output=True, text=True, env=env, cwd=tmp_path,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0, p.stderr
    journal = Path(env["WANVID_STATE_DIR"]) / "journal.db"
    target = journal if what == "file" else journal.parent

    p = _read_only(target, [str(WANVID), "tasks"], env, tmp_path)
    assert p.returncode == 0, p.stderr
    assert "SUCCEEDED" in p.stdout and str(tmp_path / "a.mp4") in p.stdout
    p = _read_only(target, [str(WANVID), "tasks", "--json"], env, tmp_path)
    assert p.returncode == 0, p.stderr
    (row,) = json.loads(p.stdout)["data"]
    assert row["path"] == str(tmp_path / "a.mp4")
    p = _read_only(target, [str(WANVID), "usage"], env, tmp_path)
    assert p.returncode == 0, p.stderr

    p = _read_only(target, [str(WANVID), "submit", str(images["first"]), "-p", "x"], env,
                   tmp_path)
    assert p.returncode == 8, p.stderr
    assert p.stderr.count("\n") == 1 and "the task journal cannot be written" in p.stderr
    assert emu.stats()["submits"] == 1  # generate's only
