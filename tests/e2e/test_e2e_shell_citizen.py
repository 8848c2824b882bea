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


# --- closed or full stdout/stderr after a paid submit (review 2026-12-03 #4) -------------

def _journal_ids(wv_env: dict[str, str], base_url: str, cwd: Path) -> list[str]:
    import json

    p = subprocess.run([str(WANVID), "tasks", "--json"], capture_output=True, text=True,
                       env={**wv_env, "DASHSCOPE_HTTP_BASE_URL": base_url}, cwd=cwd,
                       stdin=subprocess.DEVNULL, timeout=60)
    return [t["task_id"] for t in json.loads(p.stdout)["data"]]


@pytest.mark.parametrize("redirect", ["2>&-", "2>/dev/full"])
def test_generate_with_stderr_closed_or_full_still_saves_the_video(
        redirect: str, emulator, images, wv_env: dict[str, str], tmp_path: Path) -> None:
    emu = emulator()
    env = {**wv_env, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    p = _sh(f"{WANVID} generate {images['first']} -p x -o g1.mp4 {redirect}", env, tmp_path)
    assert p.returncode == 0, p.stdout
    assert p.stdout == "g1.mp4\n"
    assert (tmp_path / "g1.mp4").stat().st_size > 0
    assert emu.stats()["submits"] == 1


@pytest.mark.parametrize("redirect", [">&-", ">/dev/full"])
def test_submit_with_stdout_closed_or_full_exits_141_and_keeps_the_task(
        redirect: str, emulator, images, wv_env: dict[str, str], tmp_path: Path) -> None:
    emu = emulator()
    env = {**wv_env, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    p = _sh(f"{WANVID} submit {images['first']} -p x {redirect}; echo rc=$? >&2", env,
            tmp_path)
    assert p.stderr.splitlines()[-1] == "rc=141", p.stderr
    assert "internal error" not in p.stderr
    assert len(_journal_ids(wv_env, emu.base_url, tmp_path)) == 1
    assert emu.stats()["submits"] == 1



# --- a relative -o is journaled absolute, printed as typed (issue 17, review #4 item 4) ---

def test_a_relative_output_is_resumed_where_it_was_given(
        emulator, images, wv_env: dict[str, str], tmp_path: Path) -> None:
    emu = emulator(pending=30)
    env = {**wv_env, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    (tmp_path / "t").mkdir()
    (tmp_path / "elsewhere").mkdir()
    p = _sh(f"{WANVID} generate {images['first']} -p x -o t1.mp4 --timeout 1",
            env, tmp_path / "t")
    assert p.returncode == 6, p.stderr
    emu.advance(60)
    p = _sh(f"{WANVID} wait --pending", env, tmp_path / "elsewhere")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "t" / "t1.mp4").stat().st_size > 0
    assert not list((tmp_path / "elsewhere").iterdir())
    assert p.stdout.strip().endswith("t1.mp4")


def test_a_relative_template_resumed_in_its_directory_prints_as_typed_and_journals_absolute(
        emulator, images, wv_env: dict[str, str], tmp_path: Path) -> None:
    import json
    import shutil

    emu = emulator(pending=30)
    env = {**wv_env, "DASHSCOPE_HTTP_BASE_URL": emu.base_url}
    work = tmp_path / "t"
    work.mkdir()
    shutil.copy(images["first"], work / "cat.png")
    p = _sh(f"{WANVID} generate cat.png -p x -o 'videos/{{stem}}.mp4' --timeout 1", env, work)
    assert p.returncode == 6, p.stderr
    emu.advance(60)
    p = _sh(f"{WANVID} wait --pending", env, work)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "videos/cat.mp4\n"
    assert (work / "videos" / "cat.mp4").stat().st_size > 0
    p = _sh(f"{WANVID} tasks --json", env, tmp_path)  # from another directory
    (row,) = json.loads(p.stdout)["data"]
    assert row["path"] == str(work / "videos" / "cat.mp4")
    assert row["inputs"] == [str(work / "cat.png")]
