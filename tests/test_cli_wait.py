"""wait / download / tasks through the CLI, with `responses` and the fake clock."""

from __future__ import annotations

from pathlib import Path

import responses

from tests import envelope_schema
from tests.conftest import KEY

API = "https://dashscope-intl.aliyuncs.com/api/v1"
VIDEO = (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41"
         + (8 + 5000).to_bytes(4, "big") + b"mdat" + bytes(5000))


def task(tid: str, status: str, *, expires: float = 1_800_050_000.0, **extra: object) -> dict:
    out: dict = {"task_id": tid, "task_status": status, **extra}
    if status == "SUCCEEDED":
        out["video_url"] = f"https://oss.example.com/{tid}.mp4?Expires={int(expires)}&Signature=s"
    return {"request_id": "r", "output": out}


def add_video(rsps: responses.RequestsMock, tid: str) -> None:
    rsps.add(responses.GET, f"https://oss.example.com/{tid}.mp4", body=VIDEO,
             headers={"Content-Length": str(len(VIDEO))})


def test_wait_reads_ids_from_stdin_saves_and_prints_paths(run, tmp_path: Path) -> None:
    with responses.RequestsMock() as rsps:
        for tid in ("a1", "b2"):
            rsps.add(responses.GET, f"{API}/tasks/{tid}", json=task(tid, "SUCCEEDED"))
            add_video(rsps, tid)
        r = run(["wait", "-o", "out/"], stdin="a1\nb2\n")
        storage = [c.request for c in rsps.calls if "oss.example.com" in c.request.url]
    assert r.code == 0, r.err
    # One line per saved video, as each is saved: downloads run side by side (a pool), so
    # the order is the order they finish in.
    assert sorted(r.out.splitlines(keepends=True)) == ["out/a1.mp4\n", "out/b2.mp4\n"]
    assert Path("out/a1.mp4").read_bytes() == VIDEO
    assert all("Authorization" not in req.headers for req in storage)
    assert KEY not in r.all


def test_wait_json_lines_shape(run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/tasks/a1", json=task("a1", "SUCCEEDED"))
        add_video(rsps, "a1")
        rsps.add(responses.GET, f"{API}/tasks/f1", json=task("f1", "FAILED", code="DataInspectionFailed",
                                                            message="bad content"))
        r = run(["wait", "a1", "f1", "--json"])
    assert r.code == 5
    rows = envelope_schema.rows(r.out, "wait")
    assert {row["task_id"] for row in rows} == {"a1", "f1"}
    ok = next(row for row in rows if row["task_id"] == "a1")
    assert ok["status"] == "SUCCEEDED" and ok["exit_code"] == 0 and ok["path"] == "a1.mp4"
    assert ok["size"] == len(VIDEO) and len(ok["sha256"]) == 64
    bad = next(row for row in rows if row["task_id"] == "f1")
    assert bad["exit_code"] == 5 and bad["code"] == "DataInspectionFailed"
    assert "DataInspectionFailed: bad content" in r.err


def test_wait_one_file_for_several_tasks_is_refused_before_anything_is_sent(run) -> None:
    with responses.RequestsMock() as rsps:
        r = run(["wait", "a1", "b2", "-o", "clip.mp4"])
        assert len(rsps.calls) == 0
    assert r.code == 2 and "{task_id}" in r.err and r.err.count("\n") == 1


def test_wait_without_ids_is_bad_usage(run) -> None:
    r = run(["wait"], tty=True)
    assert r.code == 2 and "--pending" in r.err


def test_download_never_overwrites_without_force(run) -> None:
    Path("a1.mp4").write_bytes(b"precious")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, f"{API}/tasks/a1", json=task("a1", "SUCCEEDED"))
        add_video(rsps, "a1")
        r = run(["download", "a1"])
        assert r.code == 2 and "--force" in r.err
        assert Path("a1.mp4").read_bytes() == b"precious"
        r = run(["download", "a1", "--force"])
    assert r.code == 0 and r.out == "a1.mp4\n"
    assert Path("a1.mp4").read_bytes() == VIDEO


def test_download_expired_url_is_exit_5_with_the_24h_message(run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/tasks/a1", json=task("a1", "SUCCEEDED"))
        rsps.add(responses.GET, "https://oss.example.com/a1.mp4", status=403,
                 body="<Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>")
        r = run(["download", "a1"])
    assert r.code == 5
    assert "24" in r.err and r.err.count("\n") == 1
    assert not Path("a1.mp4").exists()


def test_pending_and_expiry_guard_after_interrupted_wait(run, clock) -> None:
    # submit, then the service says SUCCEEDED but the download is never made (--no-download)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{API}/services/aigc/video-generation/video-synthesis",
                 json={"request_id": "r", "output": {"task_id": "a1", "task_status": "PENDING"}})
        assert run(["submit", "https://example.com/cat.png"]).out == "a1\n"
        rsps.add(responses.GET, f"{API}/tasks/a1",
                 json=task("a1", "SUCCEEDED", expires=clock.now() + 3600))
        r = run(["wait", "a1", "--no-download"])
    assert r.code == 0 and r.out.startswith("a1 https://oss.example.com/a1.mp4")
    # any command now warns: a paid video expires within 2 h and is not saved
    r = run(["tasks"])
    assert "wanvid wait --pending" in r.err and "expires in 1h00m" in r.err
    assert r.out.startswith("a1 SUCCEEDED") and "not downloaded, expires in 1h00m" in r.out
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/tasks/a1",
                 json=task("a1", "SUCCEEDED", expires=clock.now() + 3600))
        add_video(rsps, "a1")
        r = run(["wait", "--pending"])
    assert r.code == 0 and r.out == "a1.mp4\n"
    r = run(["tasks", "--json"])
    [row] = envelope_schema.data(r.out, "tasks")
    assert row["path"] == str(Path.cwd() / "a1.mp4") and row["status"] == "SUCCEEDED"  # absolute
    assert "pending" not in r.err
    assert run(["wait", "--pending"]).err == "wanvid: nothing pending in the journal\n"


def test_wait_queries_each_task_where_it_was_submitted(run) -> None:
    cn = "https://dashscope.aliyuncs.com/api/v1"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{cn}/services/aigc/video-generation/video-synthesis",
                 json={"request_id": "r", "output": {"task_id": "c1", "task_status": "PENDING"}})
        assert run(["--region", "cn", "submit", "https://example.com/cat.png"]).out == "c1\n"
        # later, without --region: the journal knows where c1 lives
        rsps.add(responses.GET, f"{cn}/tasks/c1", json=task("c1", "SUCCEEDED"))
        add_video(rsps, "c1")
        r = run(["wait", "c1"])
        assert r.code == 0 and r.out == "c1.mp4\n"
        r = run(["status", "c1"])
        assert r.code == 0 and r.out.startswith("c1 SUCCEEDED")
        assert all(c.request.url.startswith((cn, "https://oss.")) for c in rsps.calls)


def _one_success(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, f"{API}/tasks/a1", json=task("a1", "SUCCEEDED"))
    add_video(rsps, "a1")


def test_ci_true_means_plain_lines_even_on_a_terminal(run) -> None:
    with responses.RequestsMock() as rsps:
        _one_success(rsps)
        r = run(["wait", "a1"], tty=True, env={"CI": "true"})
    assert r.code == 0 and r.out == "a1.mp4\n"
    assert "\x1b[" not in r.err  # no cursor movement, no colours, no bars
    assert "wanvid: a1 SUCCEEDED" in r.err and "wanvid: a1 saved a1.mp4" in r.err


def test_terminal_gets_the_live_display_and_no_color_is_honoured(run) -> None:
    import re

    with responses.RequestsMock() as rsps:
        _one_success(rsps)
        r = run(["wait", "a1"], tty=True, env={"NO_COLOR": "1", "TERM": "xterm"})
    assert r.code == 0 and r.out == "a1.mp4\n"
    assert "SAVED" in r.err  # the rich table row
    assert not re.search(r"\x1b\[(3|9)[0-7]m|\x1b\[38;", r.err)  # no colour codes


def test_quiet_prints_only_results(run) -> None:
    with responses.RequestsMock() as rsps:
        _one_success(rsps)
        r = run(["wait", "a1", "-q"])
    assert (r.code, r.out, r.err) == (0, "a1.mp4\n", "")


def test_download_by_url_of_a_journaled_task_records_it_and_repeats_as_done(run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/tasks/a1", json=task("a1", "SUCCEEDED"))
        assert run(["wait", "a1", "--no-download"]).code == 0
        add_video(rsps, "a1")
        url = task("a1", "SUCCEEDED")["output"]["video_url"]
        r = run(["download", url])
        assert r.code == 0 and r.out == "a1.mp4\n"
        fetched = len(rsps.calls)
        r = run(["download", url, "--json"])  # identical file already there: not fetched
        assert r.code == 0 and envelope_schema.data(r.out, "download")["skipped"] is True
        assert len(rsps.calls) == fetched
    r = run(["tasks", "--json"])
    assert envelope_schema.data(r.out, "tasks")[0]["path"] == str(Path.cwd() / "a1.mp4")


def test_a_task_the_service_does_not_know_is_named_once_with_its_reason(run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/tasks/t-9", json={
            "request_id": "r", "output": {"task_id": "t-9", "task_status": "UNKNOWN"}})
        r = run(["wait", "t-9"])
    assert r.code == 5
    assert r.err.splitlines()[-1] == (
        "wanvid: error: t-9 UNKNOWN: the task is unknown to the service (expired after "
        "24 h, or never existed in this region)")  # not "UNKNOWN: UNKNOWN: ..."
