"""End-to-end: submit / wait / generate / download of the INSTALLED `wanvid` against the
emulator subprocess, fault switch by fault switch (TARGETS.md, "Reliability").

Every run goes through ``wv`` (overridden below so that no run's stdout or stderr may ever
contain the API key); timing comes from the emulator clock (``advance``), never from
sleeping, except short polls for a condition with a deadline.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import envelope_schema
from tests.e2e.conftest import E2E_KEY, WANVID, Run, is_sidecar
from wanvid.emulator import FAIL_CODE, FAIL_MESSAGE, MIB, load_fixture, padded_video, task_video
from wanvid.models import I2V_PATH, KF2V_PATH

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
I2V_ROUTE = "POST /api/v1" + I2V_PATH
KF2V_ROUTE = "POST /api/v1" + KF2V_PATH
FILE_ROUTE = "GET /api/v1/files/{task_id}.mp4"


@functools.cache
def storage_root(api_root: str) -> str:
    """The emulator's storage port (videos are never served by the API's port)."""
    import urllib.request

    with urllib.request.urlopen(api_root + "/_emulator/hosts", timeout=10) as r:
        hosts = json.loads(r.read())
    assert hosts["storage"] != api_root
    return str(hosts["storage"])
WAIT_JSON_KEYS = {"task_id", "status", "exit_code", "path", "size", "sha256", "video_url",
                  "expires_at", "usage"}


def sha(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


FIXTURE = load_fixture()
def video_sha(task_id: str) -> str:
    """The sha256 of the video the emulator serves for ``task_id`` (each task's own)."""
    return sha(task_video(FIXTURE, task_id))


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def no_key(*texts: str) -> None:
    for t in texts:
        assert E2E_KEY not in t, "the API key leaked into command output"


def human_lines_only(err: str) -> list[str]:
    """stderr holds only wanvid's own one-line messages: no traceback, no error line."""
    lines = err.splitlines()
    assert "Traceback" not in err, err
    assert all(line.startswith("wanvid: ") for line in lines), err
    assert not [line for line in lines if line.startswith("wanvid: error")], err
    return lines


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("wanvid: error")]


@pytest.fixture
def wv(wv: Callable[..., Run]) -> Callable[..., Run]:
    """The harness's ``wv``, plus: the key appears in no stdout/stderr of any run here."""

    def run(*args: str, **kw: Any) -> Run:
        r = wv(*args, **kw)
        no_key(r.out, r.err)
        return r

    return run


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"  # where `wv` runs
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture
def popen(wv_env: dict[str, str], work: Path) -> Callable[..., subprocess.Popen[str]]:
    """Start the installed wanvid in the background, with the same environment as `wv`."""

    def start(*args: str, base_url: str) -> subprocess.Popen[str]:
        env = dict(wv_env, DASHSCOPE_HTTP_BASE_URL=base_url)
        return subprocess.Popen([str(WANVID), *args], cwd=work, env=env, text=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    return start


def submit(wv: Callable[..., Run], emu: Any, image: Path, *extra: str) -> str:
    r = wv("submit", str(image), "-p", "x", *extra, base_url=emu.base_url)
    assert r.code == 0, r.err
    tid = r.out.removesuffix("\n")
    assert UUID.match(tid) and r.out == tid + "\n", r.out  # the id alone, one line
    return tid


def journal(wv: Callable[..., Run]) -> list[dict[str, Any]]:
    r = wv("tasks", "--json")
    assert r.code == 0, r.err
    rows = envelope_schema.data(r.out, "tasks")
    assert isinstance(rows, list)
    return rows


# --- 1. generate: i2v and kf2v --------------------------------------------------------


@pytest.mark.parametrize("kind", ["i2v", "kf2v"])
def test_generate_prints_only_the_path_and_submits_once_on_the_right_route(
        kind: str, emulator, wv, images, work: Path) -> None:
    emu = emulator()
    args = ["generate", str(images["first"]), "-p", "the flower opens"]
    if kind == "kf2v":
        args += ["--last-frame", str(images["last"])]
    r = wv(*args, base_url=emu.base_url)
    assert r.code == 0, r.err
    human_lines_only(r.err)
    [rec] = journal(wv)
    tid = rec["task_id"]
    assert r.out == f"{tid}.mp4\n"  # the path only, relative to the working directory
    assert file_sha(work / f"{tid}.mp4") == video_sha(tid)
    assert rec["model"] == ("wan2.2-kf2v-flash" if kind == "kf2v" else "wan2.2-i2v-flash")
    assert rec["status"] == "SUCCEEDED" and rec["path"] == str(work / f"{tid}.mp4")  # absolute
    assert f"wanvid: submitted {tid} ({rec['model']}, 720P, 5 s)" in r.err.splitlines()
    stats = emu.stats()
    assert stats["submits"] == 1
    route, other = (KF2V_ROUTE, I2V_ROUTE) if kind == "kf2v" else (I2V_ROUTE, KF2V_ROUTE)
    assert stats["paths"].get(route) == 1
    assert other not in stats["paths"]
    assert stats["downloads"] == 1


# --- 2. pipes -------------------------------------------------------------------------


def test_submit_ids_piped_into_wait_save_every_video(emulator, wv, images, work: Path) -> None:
    emu = emulator()
    r = wv("submit", str(images["first"]), "-p", "x", "--json", base_url=emu.base_url)
    assert r.code == 0, r.err
    resp = envelope_schema.data(r.out, "submit")
    assert r.out.count("\n") == 1
    assert set(resp) == {"task_id", "status", "model", "resolution", "duration", "request_id"}
    assert resp["status"] == "PENDING"
    ids = [resp["task_id"]]
    ids += [submit(wv, emu, images[name]) for name in ("last", "square")]
    assert len(set(ids)) == 3

    r = wv("wait", "-o", "out/", input="".join(i + "\n" for i in ids), base_url=emu.base_url)
    assert r.code == 0, r.err
    human_lines_only(r.err)
    assert sorted(r.out.splitlines()) == sorted(f"out/{i}.mp4" for i in ids)
    assert r.out.endswith("\n") and r.out.count("\n") == 3
    for i in ids:
        assert file_sha(work / "out" / f"{i}.mp4") == video_sha(i)
    saved = sorted(p.name for p in (work / "out").iterdir() if not is_sidecar(p))
    assert saved == sorted(f"{i}.mp4" for i in ids)

    # The same ids again, as JSON Lines: all already saved, nothing fetched again.
    r = wv("wait", "-o", "out/", "--json", input="\n".join(ids), base_url=emu.base_url)
    assert r.code == 0, r.err
    human_lines_only(r.err)
    objs = envelope_schema.rows(r.out, "wait", drop_null=True)
    assert sorted(o["task_id"] for o in objs) == sorted(ids)
    for o in objs:
        assert set(o) == WAIT_JSON_KEYS, o
        assert o["status"] == "SUCCEEDED" and o["exit_code"] == 0
        assert o["path"] == f"out/{o['task_id']}.mp4"
        assert o["size"] == len(task_video(FIXTURE, o["task_id"])) and o["sha256"] == video_sha(o["task_id"])
        assert o["video_url"].startswith(storage_root(emu.root) + "/api/v1/files/"
                                         + o["task_id"] + ".mp4?")
        assert o["expires_at"].endswith("Z")  # the URL's, saved or not (as status says)
    assert emu.stats()["downloads"] == 3


# --- 3. fault switches ----------------------------------------------------------------


def test_throttled_submits_create_every_job_exactly_once(emulator, wv, wv_env, images,
                                                         work: Path) -> None:
    # Six tasks of the model at once (its catalogue says 2: the 3rd submit would wait for
    # a task to end, asking the service about it, and the throttled count mix in queries).
    config = Path(wv_env["WANVID_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "models.toml").write_text('[[model]]\nname = "wan2.2-i2v-flash"\n'
                                        "concurrent_tasks = 6\n", encoding="utf-8")
    emu = emulator(throttle_every=3)
    ids = [submit(wv, emu, images["first"]) for _ in range(6)]
    stats = emu.stats()
    assert stats["throttled"] >= 2  # the 3rd and 6th API requests at least
    assert stats["submits"] == 6  # created exactly once each
    assert stats["paths"][I2V_ROUTE] == 6 + stats["throttled"]
    assert len(set(ids)) == 6
    assert sorted(t["task_id"] for t in journal(wv)) == sorted(ids)  # none lost

    emu.advance(5)  # all done: the wait is one query (or a throttled retry) per task
    r = wv("wait", *ids, base_url=emu.base_url)
    assert r.code == 0, r.err
    human_lines_only(r.err)
    assert sorted(r.out.splitlines()) == sorted(f"{i}.mp4" for i in ids)
    for i in ids:
        assert file_sha(work / f"{i}.mp4") == video_sha(i)
    rows = journal(wv)
    assert len(rows) == 6 and all(t["path"] == str(work / f"{t['task_id']}.mp4") for t in rows)
    stats = emu.stats()
    assert stats["submits"] == 6 and stats["downloads"] == 6


def test_500_on_every_third_query_is_not_surfaced(emulator, wv, images, work: Path) -> None:
    # Tasks that run long enough for several queries each: were both done at the first
    # query, two queries would never reach a third, and no 500 would be served at all.
    emu = emulator(error_every=3, running=3)
    ids = [submit(wv, emu, images["first"]) for _ in range(2)]
    r = wv("wait", *ids, base_url=emu.base_url)
    assert r.code == 0, r.err
    human_lines_only(r.err)  # notes about retries at most; no error line
    assert sorted(r.out.splitlines()) == sorted(f"{i}.mp4" for i in ids)
    for i in ids:
        assert file_sha(work / f"{i}.mp4") == video_sha(i)
    assert emu.stats()["errors"] >= 1


def test_download_cut_halfway_resumes_only_the_missing_bytes(emulator, wv, images,
                                                            work: Path) -> None:
    emu = emulator(drop_download_at=0.5, video_mb=2)
    size = 2 * MIB
    r = wv("generate", str(images["first"]), "-p", "x", "-o", "clip.mp4",
           base_url=emu.base_url)
    assert r.code == 0, r.err
    human_lines_only(r.err)
    assert r.out == "clip.mp4\n"
    assert file_sha(work / "clip.mp4") == sha(padded_video(FIXTURE, size))
    assert sorted(p.name for p in work.iterdir() if not is_sidecar(p)) == ["clip.mp4"]  # no .part left behind
    stats = emu.stats()
    assert stats["downloads_cut"] == 1 and stats["downloads"] == 2
    assert stats["paths"][FILE_ROUTE] == 2  # the cut request and one Range request
    # Cut at size/2, then resumed from there: a restart from 0 would serve 1.5 x size.
    assert size <= stats["bytes_served"] < size + size // 2
    assert stats["bytes_served"] < 2 * size


def test_expired_url_exits_5_saying_the_24h_window_has_passed(emulator, wv, images,
                                                             work: Path) -> None:
    emu = emulator(url_ttl=5)
    tid = submit(wv, emu, images["first"])
    r = wv("wait", "--no-download", tid, base_url=emu.base_url)
    assert r.code == 0, r.err
    human_lines_only(r.err)
    url = r.out.removesuffix("\n").split(" ", 1)[1]
    assert r.out == f"{tid} {url}\n" and url.startswith(
        f"{storage_root(emu.root)}/api/v1/files/{tid}.mp4?")
    assert not list(work.iterdir())  # nothing saved

    emu.advance(10)  # beyond url_ttl
    r = wv("download", tid, base_url=emu.base_url)
    assert r.code == 5
    assert r.out == ""
    [line] = error_lines(r.err)
    assert line == r.err.splitlines()[-1]
    assert re.fullmatch(r"wanvid: error: .*24-hour window has (probably )?passed.*", line), line
    assert not list(work.iterdir())  # neither the file nor a .part
    assert emu.stats()["downloads"] == 0

    r = wv("wait", tid, "--json", base_url=emu.base_url)  # the same through wait
    assert r.code == 5
    [obj] = envelope_schema.rows(r.out, drop_null=True)
    assert obj["task_id"] == tid and obj["exit_code"] == 5 and obj["code"] == "URLExpired"
    assert "24-hour window has" in obj["message"]
    [line] = error_lines(r.err)
    assert line.startswith(f"wanvid: error: {tid} SUCCEEDED: URLExpired: ")
    assert not list(work.iterdir())


def test_failed_canceled_unknown_exit_5_with_the_services_code_and_message(
        emulator, wv, images, work: Path) -> None:
    emu = emulator(fail_rate=1, pending=30)
    tid = submit(wv, emu, images["first"])
    emu.advance(60)  # FAILED by now
    r = wv("wait", tid, "--json", base_url=emu.base_url)
    assert r.code == 5
    [obj] = envelope_schema.rows(r.out, drop_null=True)
    assert obj == {"task_id": tid, "status": "FAILED", "exit_code": 5, "code": FAIL_CODE,
                   "message": FAIL_MESSAGE}
    assert error_lines(r.err) == [f"wanvid: error: {tid} FAILED: {FAIL_CODE}: {FAIL_MESSAGE}"]
    [rec] = journal(wv)
    assert rec["status"] == "FAILED" and rec["code"] == FAIL_CODE
    assert rec["message"] == FAIL_MESSAGE

    tid = submit(wv, emu, images["first"])  # PENDING for 30 s of emulator time
    r = wv("cancel", tid, base_url=emu.base_url)
    assert (r.code, r.out) == (0, f"{tid} CANCELED\n"), r.err
    r = wv("wait", tid, base_url=emu.base_url)
    assert r.code == 5 and r.out == ""
    [line] = error_lines(r.err)
    assert line.startswith(f"wanvid: error: {tid} CANCELED: ") and "canceled" in line

    ghost = "00000000-0000-4000-8000-000000000000"
    r = wv("wait", ghost, base_url=emu.base_url)
    assert r.code == 5 and r.out == ""
    [line] = error_lines(r.err)
    assert line.startswith(f"wanvid: error: {ghost} UNKNOWN: ") and "24 h" in line
    assert not list(work.iterdir())
    assert emu.stats()["downloads"] == 0


def test_timeout_exits_6_naming_the_resume_command_then_pending_finishes(
        emulator, wv, images, work: Path) -> None:
    emu = emulator(pending=30)
    tid = submit(wv, emu, images["first"])
    r = wv("wait", tid, "--timeout", "1", "--json", base_url=emu.base_url)
    assert r.code == 6
    [obj] = envelope_schema.rows(r.out, drop_null=True)
    assert obj == {"task_id": tid, "status": "PENDING", "exit_code": 6,
                   "message": "still PENDING when the wait timed out",
                   "resume": f"wanvid wait {tid}"}
    assert error_lines(r.err) == [f"wanvid: error: {tid} PENDING: still PENDING when the "
                                  "wait timed out"]
    assert f"wanvid: resume with: wanvid wait {tid}" in r.err.splitlines()
    assert not list(work.iterdir())

    emu.advance(60)
    r = wv("wait", "--pending", base_url=emu.base_url)
    assert r.code == 0, r.err
    human_lines_only(r.err)
    assert r.out == f"{tid}.mp4\n"
    assert file_sha(work / f"{tid}.mp4") == video_sha(tid)
    [rec] = journal(wv)
    assert rec["status"] == "SUCCEEDED" and rec["path"] == str(work / f"{tid}.mp4")  # absolute


# --- 4. SIGINT during a download --------------------------------------------------------

BIG = 100 * MIB  # big enough to be caught mid-way (the emulator is paused there)


@functools.cache
def big_sha() -> str:
    return sha(padded_video(FIXTURE, BIG))


def _wait_for(cond: Callable[[], Any], what: str, deadline_s: float = 30.0,
              step: float = 0.002) -> Any:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"timed out waiting for {what}")


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except FileNotFoundError:
        return 0


def _interrupt(proc: subprocess.Popen[str], emu: Any, ready: Callable[[], None],
               settled: Callable[[], None] = lambda: None) -> tuple[str, str]:
    """Call ``ready`` (returns once the moment has come), pause the emulator, call
    ``settled`` (returns once the client has nothing left to read), then Ctrl-C ``proc``."""
    stopped = False
    try:
        ready()
        os.kill(emu.proc.pid, signal.SIGSTOP)
        stopped = True
        settled()
        os.kill(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if stopped:
            os.kill(emu.proc.pid, signal.SIGCONT)
    no_key(stdout, stderr)
    return stdout, stderr


def _steady(p: Path, quiet_s: float = 0.2, deadline_s: float = 10.0) -> None:
    """Return once ``p`` has kept the same size for ``quiet_s``."""
    deadline = time.monotonic() + deadline_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        size = _size(p)
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.01)
    pytest.fail(f"{p.name} kept changing")


def _interrupted_download(emulator: Any, wv: Any, popen: Any, images: dict[str, Path],
                          work: Path) -> tuple[Any, str, int, int]:
    """`wanvid wait ID -o out.mp4` Ctrl-C'd while out.mp4.part grows; checks exit 130, no
    traceback, no file under the final name. Returns (emulator, id, bytes kept, bytes
    served so far)."""
    emu = emulator(video_mb=BIG // MIB)
    tid = submit(wv, emu, images["first"])
    out, part = work / "out.mp4", work / "out.mp4.part"
    proc = popen("wait", tid, "-o", "out.mp4", base_url=emu.base_url)

    def growing() -> None:
        first = _wait_for(lambda: _size(part), "out.mp4.part to appear")
        _wait_for(lambda: _size(part) > first or out.exists(), "out.mp4.part to grow")

    def drained() -> None:
        # The emulator is paused mid-body: once the .part stops growing the client sits in
        # a socket read, which is where Ctrl-C lands. (A Ctrl-C that lands inside the
        # sha256 pipe's queue calls in download.py can hang the client for good, a rare
        # race that no subprocess test can hit on demand: reported, not tested here.)
        _steady(part)
        assert not out.exists(), "the download finished before it could be interrupted"

    stdout, stderr = _interrupt(proc, emu, growing, drained)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stdout == ""
    human_lines_only(stderr)
    last = stderr.splitlines()[-1]
    assert last.startswith("wanvid: interrupted") and "`wanvid wait --pending`" in last
    assert not out.exists()
    kept = _size(part)
    assert 0 < kept < BIG
    return emu, tid, kept, emu.stats()["bytes_served"]


def test_sigint_during_download_exits_130_then_pending_finishes_the_part(
        emulator, wv, popen, images, work: Path) -> None:
    emu, tid, kept, served = _interrupted_download(emulator, wv, popen, images, work)
    [rec] = journal(wv)
    assert rec["task_id"] == tid and rec["status"] == "SUCCEEDED" and rec["path"] is None

    r = wv("wait", "--pending", base_url=emu.base_url)
    assert r.code == 0, r.err
    human_lines_only(r.err)
    assert r.out == "out.mp4\n"  # the name the interrupted command was asked for
    assert file_sha(work / "out.mp4") == big_sha()
    # no .part, no other copy
    assert sorted(p.name for p in work.iterdir() if not is_sidecar(p)) == ["out.mp4"]
    # only the missing bytes were fetched again
    assert emu.stats()["bytes_served"] - served <= BIG - kept
    [rec] = journal(wv)
    assert rec["path"] == str(work / "out.mp4")
    r = wv("wait", "--pending", base_url=emu.base_url)
    assert (r.code, r.out) == (0, "")
    assert r.err == "wanvid: nothing pending in the journal\n"


def test_sigint_while_polling_exits_130_with_one_line_naming_wait_pending(
        emulator, wv, popen, images) -> None:
    emu = emulator(pending=30)
    tid = submit(wv, emu, images["first"])
    proc = popen("wait", tid, base_url=emu.base_url)

    def polling() -> None:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the first status line: the wait loop is running
        assert line == f"wanvid: {tid} PENDING (0s)\n", line

    stdout, stderr = _interrupt(proc, emu, polling)
    assert proc.returncode == 130, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    [line] = stderr.splitlines()  # after the status line read above: just this one
    assert line.startswith("wanvid: interrupted") and "`wanvid wait --pending`" in line
    [rec] = journal(wv)  # the task is still there for `wait --pending`
    assert rec["task_id"] == tid and rec["status"] == "PENDING"


# --- 5. the API key never reaches the storage host, the journal or any file ------------


def test_api_key_never_reaches_storage_journal_or_disk(emulator, wv, wv_env, images,
                                                      tmp_path: Path) -> None:
    emu = emulator()
    r = wv("--debug", "generate", str(images["first"]), "-p", "x", "-o", "a.mp4", "--json",
           base_url=emu.base_url)
    assert r.code == 0, r.err
    [obj] = envelope_schema.rows(r.out, drop_null=True)
    assert obj["path"] == "a.mp4" and obj["sha256"] == video_sha(obj["task_id"])
    tid = obj["task_id"]
    r = wv("--debug", "download", tid, "-o", "b.mp4", base_url=emu.base_url)
    assert r.code == 0, r.err
    assert r.out == "b.mp4\n"

    stats = emu.stats()
    assert stats["downloads"] == 2 and len(stats["download_auth"]) == 2
    assert not [a for a in stats["download_auth"] if a is not None and E2E_KEY in a]
    assert E2E_KEY not in obj["video_url"]

    state = Path(wv_env["WANVID_STATE_DIR"])
    db_files = sorted(state.glob("journal.db*"))
    assert state / "journal.db" in db_files
    key = E2E_KEY.encode()
    for f in db_files:
        assert key not in f.read_bytes(), f
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and key in p.read_bytes()]
    assert leaked == []


# --- 6. parallel submits ----------------------------------------------------------------


def test_eight_parallel_submits_journal_eight_distinct_ids(emulator, wv, popen,
                                                          images) -> None:
    emu = emulator()
    procs = [popen("submit", str(images["first"]), "-p", f"job {n}", base_url=emu.base_url)
             for n in range(8)]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        no_key(out, err)
        assert p.returncode == 0, err
        assert UUID.match(out.removesuffix("\n")) and out.count("\n") == 1, out
        ids.append(out.strip())
    assert len(set(ids)) == 8
    assert sorted(t["task_id"] for t in journal(wv)) == sorted(ids)
    assert emu.stats()["submits"] == 8
