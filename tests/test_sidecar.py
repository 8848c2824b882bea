"""Sidecars: what each saved video's clip.json says, how it is written, the thumbnail."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEY, FakeClock
from wanvid import sidecar
from wanvid.journal import Journal
from wanvid.poll import Waiter, WaitOptions
from wanvid.progress import QuietReporter

ANSWER: dict[str, Any] = {
    "request_id": "req-42",
    "output": {
        "task_id": "t1", "task_status": "SUCCEEDED",
        "submit_time": "2026-12-03 15:00:00.120", "scheduled_time": "2026-12-03 15:00:02.000",
        "end_time": "2026-12-03 15:01:07.620", "orig_prompt": "a cat yawns",
        "actual_prompt": "A ginger cat yawns slowly; soft light.",
        "video_url": "https://oss.example/t1.mp4?Expires=9999999999&Signature=SIG",
    },
    "usage": {"duration": 5, "SR": 720, "video_count": 1},
}


def _png(path: Path, size: tuple[int, int] = (640, 480), colour: str = "red") -> Path:
    from PIL import Image

    Image.new("RGB", size, colour).save(path, "PNG")
    return path


def _journal_with_task(tmp_path: Path, inputs: list[str], model: str = "wan2.2-i2v-flash",
                       **params: Any) -> Journal:
    j = Journal(tmp_path / "journal.db", now=lambda: 1_800_000_000.0)
    base = {"prompt": "a cat yawns", "resolution": "720P", "duration": 5, "seed": 7,
            "prompt_extend": True, "api_key": KEY}
    j.record_submit("t1", model=model, base_url="https://api.example/api/v1",
                    params={**base, **params}, inputs=inputs)
    return j


def _video(tmp_path: Path, name: str = "clip.mp4") -> tuple[Path, int, str]:
    v = tmp_path / name
    data = b"\x00\x00\x00\x18ftypmp42" + b"x" * 100
    v.write_bytes(data)
    return v, len(data), hashlib.sha256(data).hexdigest()


def test_sidecar_holds_everything_and_no_secret(tmp_path: Path) -> None:
    img = _png(tmp_path / "cat.png")
    data_uri = "data:image/png;base64," + "A" * 5000
    j = _journal_with_task(tmp_path, [str(img), data_uri], model="wan2.2-kf2v-flash")
    v, size, digest = _video(tmp_path)
    path = sidecar.save(v, task_id="t1", record=j.get("t1"), response=ANSWER, size=size,
                        sha256=digest, now=1_800_000_100.0, batch="jobs.jsonl")
    assert path == tmp_path / "clip.json"
    text = path.read_text()
    d = json.loads(text)
    assert d["format"] == "wanvid-sidecar" and d["version"] == 1
    assert d["task_id"] == "t1" and d["request_id"] == "req-42"
    assert d["model"] == "wan2.2-kf2v-flash"
    assert d["parameters"] == {"prompt": "a cat yawns", "resolution": "720P", "duration": 5,
                               "seed": 7, "prompt_extend": True}
    assert d["prompt"] == "a cat yawns"
    assert d["actual_prompt"] == "A ginger cat yawns slowly; soft light."
    assert d["seed"] == 7 and d["batch"] == "jobs.jsonl"
    first, last = d["inputs"]
    assert first == {"role": "first frame", "name": str(img), "size": img.stat().st_size,
                     "sha256": hashlib.sha256(img.read_bytes()).hexdigest()}
    assert last["role"] == "last frame" and last["sha256"] is None
    assert last["name"].startswith("data:image/png") and len(last["name"]) < 100
    t = d["times"]
    assert t["submitted"] == "2027-01-15T08:00:00Z"
    assert t["service_submit"] == "2026-12-03 15:00:00.120"
    assert t["service_scheduled"] == "2026-12-03 15:00:02.000"
    assert t["service_end"] == "2026-12-03 15:01:07.620"
    assert t["downloaded"] == "2027-01-15T08:01:40Z"
    assert t["took_s"] == 67.5
    assert d["usage"]["billed_seconds"] == 5 and d["usage"]["resolution"] == "720P"
    assert d["usage"]["service"] == {"duration": 5, "SR": 720, "video_count": 1}
    assert d["video"] == {"file": "clip.mp4", "size": size, "sha256": digest}
    assert d["thumbnail"] == "clip.thumb.jpg"
    assert KEY not in text and "AAAAAAAAAA" not in text and "Signature" not in text
    assert "api_key" not in text


def test_wan21_usage_fields_and_missing_answer(tmp_path: Path) -> None:
    j = _journal_with_task(tmp_path, ["https://img.example/cat.png"], model="wan2.1-i2v-turbo",
                           prompt_extend=False, duration=3, resolution="480P")
    v, size, digest = _video(tmp_path)
    answer = {"output": {"task_status": "SUCCEEDED"},
              "usage": {"video_duration": "3", "video_ratio": "standard", "video_count": 1}}
    d = sidecar.build(task_id="t1", record=j.get("t1"), response=answer, video=v, size=size,
                      sha256=digest, downloaded_at=1_800_000_042.0)
    assert d["usage"]["billed_seconds"] == 3 and d["usage"]["resolution"] == "480P"
    assert d["actual_prompt"] is None and d["request_id"] is None
    assert d["inputs"] == [{"role": "first frame", "name": "https://img.example/cat.png",
                            "size": None, "sha256": None}]
    assert d["times"]["took_s"] == 42.0  # no service times: journal submit -> download
    # a task the journal never knew: what the answer says, nothing invented
    d = sidecar.build(task_id="t9", record=None, response=ANSWER, video=v, size=size,
                      sha256=digest, downloaded_at=1_800_000_042.0)
    assert d["prompt"] == "a cat yawns" and d["seed"] is None and d["inputs"] == []
    assert d["usage"]["billed_seconds"] == 5


@pytest.mark.parametrize("start,end,expected", [
    ("2026-12-03 15:00:00.120", "2026-12-03 15:01:07.620", 67.5),
    ("2026-12-03 15:00:00", "2026-12-03 15:00:09", 9.0),
    ("2026-12-03 15:00:09", "2026-12-03 15:00:00", None),
    ("yesterday", "2026-12-03 15:00:00", None),
    (None, "2026-12-03 15:00:00", None),
])
def test_service_seconds(start: str | None, end: str | None, expected: float | None) -> None:
    assert sidecar.service_seconds(start, end) == expected


def test_user_file_of_the_same_name_is_left_alone(tmp_path: Path) -> None:
    j = _journal_with_task(tmp_path, [])
    v, size, digest = _video(tmp_path)
    mine = tmp_path / "clip.json"
    mine.write_text('{"my": "notes"}')
    assert sidecar.save(v, task_id="t1", record=j.get("t1"), response=ANSWER, size=size,
                        sha256=digest, now=1.0) is None
    assert mine.read_text() == '{"my": "notes"}'


@pytest.mark.parametrize("name", ["clip.json", "clip.thumb.jpg"])
def test_symlink_at_a_sidecar_name_is_refused_naming_it(tmp_path: Path, name: str) -> None:
    j = _journal_with_task(tmp_path, [])
    v, size, digest = _video(tmp_path)
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"format": "wanvid-sidecar", "version": 1}))
    before = target.read_text()
    (tmp_path / name).symlink_to(target)
    files = sorted(tmp_path.iterdir())
    with pytest.raises(OSError) as e:
        sidecar.save(v, task_id="t1", record=j.get("t1"), response=ANSWER, size=size,
                     sha256=digest, now=1.0)
    assert e.value.strerror.startswith(f"{name} is a symbolic link")
    assert target.read_text() == before
    assert (tmp_path / name).is_symlink()  # left as it was
    assert sorted(tmp_path.iterdir()) == files  # nothing written beside it either


def test_write_atomic_replaces_a_link_never_writes_through_it(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    before = target.read_text()
    (tmp_path / "clip.json").symlink_to(target)
    # write_atomic itself replaces a link by a file, never writes through it
    sidecar.write_atomic(tmp_path / "clip.json", b"{}")
    assert not (tmp_path / "clip.json").is_symlink()
    assert target.read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_rewrite_replaces_an_earlier_sidecar(tmp_path: Path) -> None:
    j = _journal_with_task(tmp_path, [])
    v, size, digest = _video(tmp_path)
    for seed_now in (1.0, 2.0):
        sidecar.save(v, task_id="t1", record=j.get("t1"), response=ANSWER, size=size,
                     sha256=digest, now=seed_now)
    d = sidecar.read(tmp_path / "clip.json")
    assert d is not None and d["times"]["downloaded"] == "1970-01-01T00:00:02Z"


def test_thumbnail_of_two_frames_fits_the_box(tmp_path: Path) -> None:
    from PIL import Image

    a = _png(tmp_path / "a.png", (1920, 1080), "red")
    b = _png(tmp_path / "b.png", (1080, 1920), "blue")
    dest = tmp_path / "x.thumb.jpg"
    assert sidecar.make_thumbnail([a, b], dest)
    with Image.open(dest) as im:
        assert im.format == "JPEG"
        assert im.width <= sidecar.THUMB_BOX[0] + 2 and im.height <= sidecar.THUMB_BOX[1]
        left, right = im.getpixel((5, im.height // 2)), im.getpixel((im.width - 5, im.height // 2))
    assert left[0] > 200 and left[2] < 60  # red frame first
    assert right[2] > 200 and right[0] < 60  # then the blue one


def test_no_pillow_means_no_thumbnail_and_no_error(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    img = _png(tmp_path / "cat.png")
    j = _journal_with_task(tmp_path, [str(img)])
    v, size, digest = _video(tmp_path)
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now raises ImportError
    path = sidecar.save(v, task_id="t1", record=j.get("t1"), response=ANSWER, size=size,
                        sha256=digest, now=1.0)
    assert path is not None and json.loads(path.read_text())["thumbnail"] is None
    assert not (tmp_path / "clip.thumb.jpg").exists()


def test_unreadable_frame_gives_no_thumbnail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert not sidecar.make_thumbnail([bad], tmp_path / "t.jpg")
    assert not (tmp_path / "t.jpg").exists()


@dataclass
class _Saved:
    path: Path
    size: int
    sha256: str
    skipped: bool = False


class _Svc:
    def get_task(self, task_id: str, *, max_retries: int | None = None) -> dict[str, Any]:
        return json.loads(json.dumps(ANSWER))


def _waiter(tmp_path: Path, journal: Journal, clock: FakeClock, **opts: Any) -> Waiter:
    def fake_download(url: str, dest: Path, **kw: Any) -> _Saved:
        dest.write_bytes(b"video")
        return _Saved(dest, 5, hashlib.sha256(b"video").hexdigest())

    return Waiter(client=_Svc(), journal=journal, reporter=QuietReporter(),
                  options=WaitOptions(raise_unexpected=True, **opts),
                  dest_for=lambda tid, out: tmp_path / "out.mp4",
                  clock=clock.now, wall=clock.now, sleep=clock.sleep, downloader=fake_download)


def test_wait_writes_the_sidecar_where_the_download_is_journaled(tmp_path: Path,
                                                                 clock: FakeClock) -> None:
    j = _journal_with_task(tmp_path, [str(_png(tmp_path / "cat.png"))])
    [out] = _waiter(tmp_path, j, clock, batch="b1").run(["t1"])
    assert out.ok
    d = sidecar.read(tmp_path / "out.json")
    assert d is not None and d["video"]["sha256"] == j.get("t1").sha256  # type: ignore[union-attr]
    assert d["batch"] == "b1" and d["thumbnail"] == "out.thumb.jpg"
    assert (tmp_path / "out.thumb.jpg").stat().st_size > 0


def test_wait_without_sidecar(tmp_path: Path, clock: FakeClock) -> None:
    j = _journal_with_task(tmp_path, [str(_png(tmp_path / "cat.png"))])
    [out] = _waiter(tmp_path, j, clock, sidecar=False).run(["t1"])
    assert out.ok and (tmp_path / "out.mp4").exists()
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "out.thumb.jpg").exists()


def test_a_sidecar_that_cannot_be_written_is_noted_not_fatal(tmp_path: Path, clock: FakeClock,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    j = _journal_with_task(tmp_path, [])
    notes: list[str] = []
    w = _waiter(tmp_path, j, clock)
    monkeypatch.setattr(w.reporter, "note", notes.append)

    def boom(path: Path, payload: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sidecar, "write_atomic", boom)
    [out] = w.run(["t1"])
    assert out.ok and j.get("t1").downloaded  # type: ignore[union-attr]
    assert notes == ["t1: metadata out.json not written (No space left on device); "
                     "the video is saved"]


def test_read_rejects_what_is_not_a_sidecar(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    for content in (b"", b"[1]", b'{"format": "other"}', b"\xff\xfe", b"{" * 100_000):
        p.write_bytes(content)
        assert sidecar.read(p) is None
    p.write_bytes(b'{"format": "wanvid-sidecar"}' + b" " * (sidecar.MAX_SIDECAR_BYTES + 1))
    assert sidecar.read(p) is None
    assert sidecar.read(tmp_path / "missing.json") is None



# -- through the CLI: on by default, off by --no-sidecar or `sidecar = false` --------------

API = "https://dashscope-intl.aliyuncs.com/api/v1"
VIDEO = (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41"
         + (8 + 500).to_bytes(4, "big") + b"mdat" + bytes(500))


def _serve(rsps: Any, tid: str) -> None:
    import responses

    answer = json.loads(json.dumps(ANSWER))
    answer["output"]["task_id"] = tid
    answer["output"]["video_url"] = f"https://oss.example.com/{tid}.mp4?Expires=1800050000"
    rsps.add(responses.GET, f"{API}/tasks/{tid}", json=answer)
    rsps.add(responses.GET, f"https://oss.example.com/{tid}.mp4", body=VIDEO,
             headers={"Content-Length": str(len(VIDEO))})


@pytest.mark.parametrize("command", ["wait", "download"])
def test_cli_writes_sidecars_by_default(run: Any, command: str) -> None:
    import responses

    with responses.RequestsMock() as rsps:
        _serve(rsps, "a1")
        r = run([command, "a1", "-o", "out/"])
    assert r.code == 0, r.err
    d = sidecar.read(Path("out/a1.json"))
    assert d is not None and d["task_id"] == "a1" and d["request_id"] == "req-42"
    assert d["video"] == {"file": "a1.mp4", "size": len(VIDEO),
                          "sha256": hashlib.sha256(VIDEO).hexdigest()}
    assert d["actual_prompt"] == ANSWER["output"]["actual_prompt"]
    assert r.out == "out/a1.mp4\n"  # stdout: results only


@pytest.mark.parametrize("how", ["flag", "config"])
@pytest.mark.parametrize("command", ["wait", "download"])
def test_cli_sidecar_off(run: Any, command: str, how: str) -> None:
    import responses

    if how == "config":
        assert run(["config", "set", "sidecar", "false"]).code == 0
    args = [command, "a1", "-o", "out/"] + (["--no-sidecar"] if how == "flag" else [])
    with responses.RequestsMock() as rsps:
        _serve(rsps, "a1")
        r = run(args)
    assert r.code == 0, r.err
    assert Path("out/a1.mp4").exists() and not Path("out/a1.json").exists()


@pytest.mark.parametrize(("model", "names", "roles"), [
    ("wan2.2-i2v-flash", ["cat.png"], ["first frame"]),
    ("wan2.5-i2v-preview", ["cat.png", "https://x/a.mp3?sig=1"], ["first frame", "audio"]),
    ("wan2.5-i2v-preview", ["cat.png", "https://x/track"], ["first frame", "audio"]),
    ("wan2.2-kf2v-flash", ["https://x/a", "https://x/b"], ["first frame", "last frame"]),
    # the media protocol: a clip first (MEDIA_ORDER), frames, driving audio
    ("wan2.7-i2v", ["clip.MOV", "a.png"], ["first clip", "first frame"]),
    ("wan2.7-i2v", ["https://x/c.mp4", "a.webp", "b.jpg", "v.wav"],
     ["first clip", "first frame", "last frame", "audio"]),
    ("wan2.7-i2v", ["--first-clip (data: URI)"], ["first clip"]),
    ("wan2.7-i2v", ["a.png", "b.png"], ["first frame", "last frame"]),
])
def test_input_roles_follow_what_each_input_is(model: str, names: list[str],
                                               roles: list[str]) -> None:
    from wanvid.sidecar import _roles

    assert _roles(model, names) == roles
