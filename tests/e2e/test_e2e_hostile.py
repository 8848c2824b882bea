"""The installed CLI against hostile stand-in servers on loopback (``tests.standin``): an
endless status answer, an endless video, a server that trickles. Each command must end by
itself with a clear one-line error and the documented exit code, in bounded memory; the
figures (RSS, time past --timeout) are printed by ``bench/bench_hostile.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import standin
from tests.e2e.conftest import WANVID

RSS_LIMIT_MB = 60.0
KILL_AFTER = 60.0  # a command still running then has no bound at all: the test fails


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture
def servers() -> Iterator[list[standin.StandIn]]:
    started: list[standin.StandIn] = []
    yield started
    for s in started:
        s.close()


def _run(args: list[str], env: dict[str, str], work: Path, **extra: str) -> standin.Measured:
    return standin.run_measured([str(WANVID), *args], env={**env, **extra}, cwd=str(work),
                                limit=KILL_AFTER)


def _one_error(m: standin.Measured) -> str:
    lines = [ln for ln in m.err.splitlines() if ln.startswith("wanvid: error:")]
    assert len(lines) == 1, m.err
    assert "Traceback" not in m.err
    return lines[0]


def test_endless_status_answer_exit_7_in_bounded_memory(
        servers: list[standin.StandIn], wv_env: dict[str, str], work: Path) -> None:
    srv = standin.StandIn(standin.endless_chunked_json())
    servers.append(srv)
    m = _run(["status", "t-1"], wv_env, work, DASHSCOPE_HTTP_BASE_URL=srv.url + "/api/v1")
    assert m.code == 7, m.err
    assert "longer than 4 MiB" in _one_error(m)
    assert m.out == ""
    assert m.rss_mb < RSS_LIMIT_MB, m.rss_mb


def test_endless_download_is_capped_nothing_saved_bounded_memory(
        servers: list[standin.StandIn], wv_env: dict[str, str], work: Path) -> None:
    srv = standin.StandIn(standin.endless_video())
    servers.append(srv)
    m = _run(["download", srv.url + "/t-1.mp4", "-o", "v.mp4"], wv_env, work,
             WANVID_MAX_DOWNLOAD_MB="32")
    assert m.code == 7, m.err
    assert "sent more than 32.0 MiB without announcing a size" in _one_error(m)
    assert list(work.iterdir()) == []  # neither the video nor a .part
    assert m.rss_mb < RSS_LIMIT_MB, m.rss_mb


def test_trickling_status_answer_ends_at_the_timeout(
        servers: list[standin.StandIn], wv_env: dict[str, str], work: Path) -> None:
    body = b'{"output": {"task_id": "t-1", "task_status": "RUNNING"}}'
    srv = standin.StandIn(standin.trickle(body, 0.5))
    servers.append(srv)
    m = _run(["wait", "t-1", "--timeout", "2"], wv_env, work,
             DASHSCOPE_HTTP_BASE_URL=srv.url + "/api/v1")
    assert m.code == 6, m.err
    assert "t-1" in _one_error(m) and "timed out" in m.err
    assert "wanvid wait t-1" in m.err  # how to pick it up again
    assert len(srv.requests) == 1


def test_trickling_download_ends_at_the_timeout_and_keeps_the_part(
        servers: list[standin.StandIn], wv_env: dict[str, str], work: Path) -> None:
    holder: dict[str, str] = {}
    video = standin.MP4_HEAD + bytes(100_000)
    srv = standin.StandIn(standin.routes({
        "/api/v1/tasks/": lambda req: standin.json_answer(
            standin.succeeded(holder["url"] + "/t-1.mp4"))(req),
        "/t-1.mp4": standin.trickle(video, 0.2, content_type="video/mp4"),
    }))
    servers.append(srv)
    holder["url"] = srv.url
    m = _run(["wait", "t-1", "--timeout", "3", "-o", "v.mp4"], wv_env, work,
             DASHSCOPE_HTTP_BASE_URL=srv.url + "/api/v1")
    assert m.code == 6, m.err
    assert "--timeout 3 s reached while downloading v.mp4" in _one_error(m)
    assert not (work / "v.mp4").exists()
    assert (work / "v.mp4.part").stat().st_size > 0  # `wanvid wait t-1` continues from it


def test_storage_host_with_slow_headers_ends_within_the_timeout_and_the_video_is_kept(
        emulator, wv, images, work: Path) -> None:
    # The emulator's storage port sends each download's headers one byte a second: every
    # read brings a byte, so only a bound on the time to the headers (here the deadline)
    # ends the wait. The task is paid for: it stays pending and `wait --pending` saves it.
    import json
    import time
    import urllib.request

    emu = emulator(slow_headers=1)
    timeout = 4
    t0 = time.monotonic()
    r = wv("generate", str(images["first"]), "-p", "x", "-o", "v.mp4",
           "--timeout", str(timeout), base_url=emu.base_url, timeout=KILL_AFTER)
    took = time.monotonic() - t0
    assert r.code == 6, r.err
    assert took < timeout + 5, took  # TARGETS: within --timeout + 5 s (startup included)
    line = _one_error(standin.Measured(r.code, r.out, r.err, took, 0.0))
    assert "--timeout 4 s reached while downloading v.mp4" in line, line
    assert "resume with: wanvid wait" in r.err
    assert not (work / "v.mp4").exists()
    assert emu.stats()["downloads"] == 0  # no answer's headers were ever complete

    req = urllib.request.Request(f"{emu.root}/_emulator/config?slow_headers=0", method="POST",
                                 data=b"")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["slow_headers"] == 0
    r = wv("wait", "--pending", base_url=emu.base_url)
    assert r.code == 0, r.err
    assert r.out == "v.mp4\n"
    assert (work / "v.mp4").read_bytes()[4:8] == b"ftyp"


def test_symlinked_part_is_refused_exit_9_target_untouched(
        servers: list[standin.StandIn], wv_env: dict[str, str], work: Path,
        tmp_path: Path) -> None:
    video = standin.MP4_HEAD[:-8] + (8 + 5000).to_bytes(4, "big") + b"mdat" + bytes(5000)

    def answer(req: standin.Request) -> list[bytes | float]:
        return [standin.head(Content_Type="video/mp4", Content_Length=str(len(video))), video]

    srv = standin.StandIn(answer)
    servers.append(srv)
    victim = tmp_path / "someone-elses.bin"
    victim.write_bytes(b"precious " * 10_000)  # larger than the video: it would be truncated
    before = victim.read_bytes()
    (work / "v.mp4.part").symlink_to(victim)
    m = _run(["download", srv.url + "/t-1.mp4", "-o", "v.mp4"], wv_env, work)
    assert m.code == 9, m.err
    assert "v.mp4.part: is a symbolic link" in _one_error(m)
    assert victim.read_bytes() == before
    assert not (work / "v.mp4").exists() and not (work / "v.mp4").is_symlink()
    assert srv.requests == []  # refused before anything was fetched
    (work / "v.mp4.part").unlink()
    m = _run(["download", srv.url + "/t-1.mp4", "-o", "v.mp4"], wv_env, work)
    assert m.code == 0, m.err
    assert (work / "v.mp4").read_bytes() == video


def test_png_bomb_under_fit_is_refused_in_bounded_memory(wv_env: dict[str, str],
                                                         work: Path) -> None:
    from tests.fixtures_media import png_bytes

    bomb = png_bytes(15000, 15000, colour=0)  # 214 KB that decode to 225 MP of grey
    assert len(bomb) < 250_000
    (work / "bomb.png").write_bytes(bomb)
    m = _run(["submit", "bomb.png", "--fit", "-p", "x"], wv_env, work)  # 1.1 GB before
    assert m.code == 2, m.err
    assert "bomb.png: 15000×15000 is 225.0 MP, over the 64 MP" in _one_error(m)
    assert m.rss_mb < RSS_LIMIT_MB, m.rss_mb
