"""Every command with --json, a succeeding and a failing case, against the emulator: each
stdout line is an envelope valid against docs/json-envelope.schema.json, and the last
line's exit_code is the process's. Ctrl-C during `generate --json` too."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import envelope_schema
from tests.e2e.conftest import WANVID, Run, signal_once_waiting
from tests.e2e.test_e2e_wait import no_key, submit


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir(exist_ok=True)
    return d


def check(r: Run, command: str, code: int) -> dict[str, Any]:
    """Valid envelopes only on stdout; the last one carries ``code``; returns it."""
    no_key(r.out, r.err)
    assert r.code == code, (r.out, r.err)
    assert "Traceback" not in r.err
    env = envelope_schema.last(r.out, command, exit_code=code)
    if code:
        assert env["errors"], env
    return env


def test_submit_generate_status_wait_download_cancel(emulator, wv, images, work) -> None:
    emu = emulator()
    url = emu.base_url
    img = str(images["first"])
    env = check(wv("submit", img, "-p", "x", "--json", base_url=url), "submit", 0)
    tid = env["data"]["task_id"]
    env = check(wv("submit", img, "--json", base_url=url, env={"DASHSCOPE_API_KEY": ""}),
                "submit", 3)
    assert env["errors"][0]["code"] == "auth" and env["data"] is None

    env = check(wv("status", tid, "--json", base_url=url), "status", 0)
    ghost = "00000000-0000-4000-8000-000000000000"
    env = check(wv("status", ghost, "--json", base_url=url), "status", 5)
    [item] = envelope_schema.items(wv("status", ghost, "--json", base_url=url).out)
    assert item["status"] == "UNKNOWN"
    check(wv("status", "not a task id", "--json", base_url=url), "status", 2)

    env = check(wv("wait", tid, "-o", "a.mp4", "--json", base_url=url), "wait", 0)
    assert env["data"]["ok"] == 1 and (work / "a.mp4").is_file()
    check(wv("wait", ghost, "--json", base_url=url), "wait", 5)

    env = check(wv("download", tid, "-o", "b.mp4", "--json", base_url=url), "download", 0)
    assert env["data"]["path"] == "b.mp4" and (work / "b.mp4").is_file()
    env = check(wv("download", ghost, "--json", base_url=url), "download", 5)
    assert env["data"] is None and env["errors"][0]["code"] == "task_failed"

    env = check(wv("generate", img, "-p", "x", "-o", "c.mp4", "--json", base_url=url),
                "generate", 0)
    [item] = envelope_schema.items(
        wv("generate", img, "-o", "d.mp4", "--json", base_url=url).out, "generate")
    assert item["path"] == "d.mp4" and item["status"] == "SUCCEEDED"
    check(wv("generate", img, "-d", "99", "--json", base_url=url), "generate", 2)

    check(wv("cancel", tid, "--json", base_url=url), "cancel", 4)  # SUCCEEDED: refused
    slow = emulator(pending=30)
    pending = submit(wv, slow, images["first"])
    env = check(wv("cancel", pending, "--json", base_url=slow.base_url), "cancel", 0)
    assert env["data"] == {"tasks": 1, "canceled": 1, "refused": 0}


def test_tasks_models_usage_config_batch(emulator, wv, images, work) -> None:
    emu = emulator()
    url = emu.base_url
    submit(wv, emu, images["first"])
    env = check(wv("tasks", "--json"), "tasks", 0)
    [row] = env["data"]
    assert row["submitted_at"].endswith("Z") and Path(row["inputs"][0]).name == "first.png"
    check(wv("tasks", "--since", "soon", "--json"), "tasks", 2)
    env = check(wv("tasks", "--remote", "--json", base_url=url), "tasks", 0)
    assert [t["task_id"] for t in env["data"]] == [row["task_id"]]
    assert set(env["data"][0]) >= {"task_id", "status", "model", "submitted_at"}
    check(wv("tasks", "--remote", "--json", base_url=url, env={"DASHSCOPE_API_KEY": ""}),
          "tasks", 3)

    check(wv("models", "--json"), "models", 0)
    check(wv("models", "--bogus", "--json"), "models", 2)
    check(wv("usage", "--json"), "usage", 0)
    check(wv("usage", "--by", "colour", "--json"), "usage", 2)
    check(wv("config", "list", "--json"), "config list", 0)
    check(wv("--region", "mars", "config", "list", "--json"), "config list", 2)

    (work / "a.png").write_bytes(images["first"].read_bytes())
    (work / "jobs.jsonl").write_text('{"image": "a.png", "prompt": "x"}\n'
                                     '{"image": "missing.png"}\n')
    env = check(wv("batch", "jobs.jsonl", "--json", base_url=url), "batch", 2)
    [invalid] = envelope_schema.items(wv("batch", "jobs.jsonl", "--json", base_url=url).out)
    assert (invalid["line"], invalid["status"]) == (2, "INVALID")
    r = wv("batch", "jobs.jsonl", "--skip-invalid", "--json", base_url=url)
    env = check(r, "batch", 0)
    assert env["data"]["invalid"] == 1 and env["data"]["succeeded"] == 1
    assert sorted(i["status"] for i in envelope_schema.items(r.out)) == ["INVALID", "SUCCEEDED"]
    env = check(wv("batch", "jobs.jsonl", "--skip-invalid", "--dry-run", "--json",
                   base_url=url), "batch", 0)
    assert env["kind"] == "result" and env["data"]["dry_run"] is True
    assert env["data"]["invalid"] == [{"line": 2, "message": invalid["message"]}]
    env = check(wv("batch", "jobs.jsonl", "--dry-run", "--json", base_url=url), "batch", 2)
    assert env["kind"] == "result" and [e.get("line") for e in env["errors"]] == [None, 2]


def _start(wv_env: dict[str, str], work: Path, url: str, *args: str) -> subprocess.Popen[str]:
    env = dict(wv_env, DASHSCOPE_HTTP_BASE_URL=url)
    return subprocess.Popen([str(WANVID), *args], cwd=work, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


@pytest.mark.parametrize(("sig", "code", "what"), [(signal.SIGINT, 130, "interrupted"),
                                                    (signal.SIGTERM, 143, "terminated")])
def test_signal_during_generate_json_prints_the_summary(
        emulator, wv, wv_env, images, work, sig: int, code: int, what: str) -> None:
    emu = emulator(pending=30)
    proc = _start(wv_env, work, emu.base_url, "generate", str(images["first"]), "-p", "x",
                  "--json")
    tid, stdout, stderr = signal_once_waiting(proc, sig)  # submitted, journaled, waiting
    r = Run(proc.returncode, stdout, stderr)
    env = check(r, "generate", code)
    assert env["errors"][0]["code"] == what
    assert env["data"]["unfinished"] == [tid] and env["data"]["resume"] == "wanvid wait --pending"
    assert "`wanvid wait --pending`" in stderr.splitlines()[-1]
    [rec] = envelope_schema.data(wv("tasks", "--json").out, "tasks")
    assert rec["task_id"] == tid  # journaled: `wait --pending` can pick it up


# --- SIGTERM (CI runners, `timeout`) is handled like Ctrl-C: exit 143 ----------------------

def test_sigterm_during_wait_json_exits_143_with_the_hint_and_the_envelope(
        emulator, wv, wv_env, images, work) -> None:
    emu = emulator(pending=30)
    tid = submit(wv, emu, images["first"])
    proc = _start(wv_env, work, emu.base_url, "wait", tid, "--json")
    try:
        assert proc.stderr is not None
        assert " PENDING (" in proc.stderr.readline()  # the wait loop runs
        os.kill(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    env = check(Run(proc.returncode, stdout, stderr), "wait", 143)
    assert env["errors"][0]["code"] == "terminated" and env["data"]["unfinished"] == [tid]
    last = stderr.splitlines()[-1]
    assert last.startswith("wanvid: terminated") and "`wanvid wait --pending`" in last


def test_sigterm_during_a_download_exits_143_then_pending_finishes_byte_identical(
        emulator, wv, wv_env, images, work) -> None:
    from tests.e2e.test_e2e_wait import BIG, MIB, _size, _steady, _wait_for, big_sha, file_sha

    emu = emulator(video_mb=BIG // MIB)
    tid = submit(wv, emu, images["first"])
    out, part = work / "out.mp4", work / "out.mp4.part"
    proc = _start(wv_env, work, emu.base_url, "wait", tid, "-o", "out.mp4")
    stopped = False
    try:
        first = _wait_for(lambda: _size(part), "out.mp4.part to appear")
        _wait_for(lambda: _size(part) > first or out.exists(), "out.mp4.part to grow")
        os.kill(emu.proc.pid, signal.SIGSTOP)
        stopped = True
        _steady(part)
        assert not out.exists(), "the download finished before it could be terminated"
        os.kill(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if stopped:
            os.kill(emu.proc.pid, signal.SIGCONT)
    no_key(stdout, stderr)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and stdout == ""
    assert "`wanvid wait --pending`" in stderr.splitlines()[-1]
    assert not out.exists() and 0 < _size(part) < BIG
    r = wv("wait", "--pending", base_url=emu.base_url)
    assert r.code == 0, r.err
    assert r.out == "out.mp4\n" and file_sha(out) == big_sha()
    assert tid in envelope_schema.data(wv("tasks", "--json").out, "tasks")[0]["task_id"]
