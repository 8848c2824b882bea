"""The core CLI commands end to end through wanvid.cli.main: submit (and --dry-run), status,
cancel, tasks --remote, and that the API key never shows up anywhere."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import struct
import wave
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from tests import envelope_schema
from tests.conftest import KEY, FakeClock, Result

Run = Callable[..., Result]

INTL = "https://dashscope-intl.aliyuncs.com/api/v1"
CN = "https://dashscope.aliyuncs.com/api/v1"
I2V_URL = INTL + "/services/aigc/video-generation/video-synthesis"
KF2V_URL = INTL + "/services/aigc/image2video/video-synthesis"
IMG = "https://example.com/cat.png"
IMG2 = "https://example.com/cat-end.png"
AUDIO = "https://example.com/rap.mp3"
CREATED = {"request_id": "r-1", "output": {"task_id": "t-1", "task_status": "PENDING"}}
NOW = 1_800_000_000.0  # the fake clock's start
VIDEO_URL = ("https://dashscope-result-sh.oss-cn-shanghai.aliyuncs.com/t-1.mp4"
             f"?Expires={int(NOW) + 3600}&Signature=abc")


def png(width: int, height: int) -> bytes:
    """A valid 8-bit RGB PNG (all black)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + bytes(3 * width) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def wav(seconds: float, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(b"\x80" * int(seconds * rate))
    return buf.getvalue()


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def body_of(call: Any) -> dict[str, Any]:
    raw = call.request.body
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def submit_ok(args: list[str], run: Run, url: str = I2V_URL, **kw: Any) -> tuple[Result, dict[str, Any]]:
    """Run a submit that the service accepts; return the result and the request body."""
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, url, json=CREATED)
        r = run(["submit", *args], **kw)
        assert r.code == 0, r.err
        assert len(rsps.calls) == 1
        body = body_of(rsps.calls[0])
    return r, body


def nothing_sent(args: list[str], run: Run, **kw: Any) -> Result:
    """Run a command with no URL registered: any request would fail the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        r = run(args, **kw)
        assert len(rsps.calls) == 0
    return r


# --- submit: output and routing ------------------------------------------------------------------


def test_submit_prints_task_id_only(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, I2V_URL, json=CREATED)
        r = run(["submit", IMG, "-p", "a cat turns its head"])
        req = rsps.calls[0].request
        body = body_of(rsps.calls[0])
    assert r.code == 0
    assert r.out == "t-1\n"
    assert req.url == I2V_URL
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.headers["X-DashScope-Async"] == "enable"
    assert req.headers["Content-Type"] == "application/json"
    assert body == {
        "model": "wan2.2-i2v-flash",
        "input": {"prompt": "a cat turns its head", "img_url": IMG},
        "parameters": {"resolution": "720P"},
    }


def test_submit_json_prints_service_response(run: Run) -> None:
    r, _ = submit_ok([IMG, "--json"], run)
    assert r.out.count("\n") == 1
    assert envelope_schema.data(r.out, "submit") == {
        "task_id": "t-1", "status": "PENDING", "model": "wan2.2-i2v-flash",
        "resolution": "720P", "duration": 5, "request_id": "r-1"}


def test_submit_journals_the_task(run: Run) -> None:
    from wanvid.journal import Journal

    submit_ok([IMG, "-p", "x"], run)
    with Journal(Path(os.environ["WANVID_STATE_DIR"]) / "journal.db") as j:
        rec = j.get("t-1")
    assert rec is not None
    assert rec.model == "wan2.2-i2v-flash"
    assert rec.base_url == INTL
    assert rec.status == "PENDING"


def test_submit_last_frame_routes_to_kf2v(run: Run) -> None:
    r, body = submit_ok([IMG, "--last-frame", IMG2, "-p", "the monster looks up"], run, url=KF2V_URL)
    assert r.out == "t-1\n"
    assert body == {
        "model": "wan2.2-kf2v-flash",
        "input": {"prompt": "the monster looks up", "first_frame_url": IMG, "last_frame_url": IMG2},
        "parameters": {"resolution": "720P"},
    }


def test_submit_kf2v_plus_in_beijing_uses_wanx_name(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, CN + "/services/aigc/image2video/video-synthesis", json=CREATED)
        r = run(["--region", "cn", "submit", IMG, "-l", IMG2, "-m", "wan2.1-kf2v-plus"])
        body = body_of(rsps.calls[0])
    assert r.code == 0
    assert body["model"] == "wanx2.1-kf2v-plus"
    assert body["parameters"] == {"resolution": "720P"}


def test_submit_base_url_flag(run: Run) -> None:
    base = "http://127.0.0.1:8000/api/v1"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, base + "/services/aigc/video-generation/video-synthesis", json=CREATED)
        r = run(["--base-url", base, "submit", IMG])
        assert [c.request.url for c in rsps.calls] == [
            base + "/services/aigc/video-generation/video-synthesis"]
    assert r.code == 0
    assert r.out == "t-1\n"


def test_submit_all_fields(run: Run) -> None:
    _, body = submit_ok([IMG, "-m", "wan2.5-i2v-preview", "-p", "rap", "-n", "blurry",
                         "-r", "480p", "-d", "10", "--seed", "42", "--prompt-extend",
                         "--no-watermark"], run)
    assert body == {
        "model": "wan2.5-i2v-preview",
        "input": {"prompt": "rap", "negative_prompt": "blurry", "img_url": IMG},
        "parameters": {"resolution": "480P", "duration": 10, "prompt_extend": True,
                       "watermark": False, "seed": 42},
    }


def test_submit_wan25_defaults(run: Run) -> None:
    _, body = submit_ok([IMG, "-m", "wan2.5-i2v-preview"], run)
    assert body["parameters"] == {"resolution": "1080P", "duration": 5}  # audio is automatic


def test_submit_no_audio_and_flags_off(run: Run) -> None:
    _, body = submit_ok([IMG, "-m", "wan2.6-i2v-flash", "--no-audio", "--no-prompt-extend",
                         "--watermark"], run)
    assert body["parameters"] == {"resolution": "1080P", "duration": 5, "prompt_extend": False,
                                  "watermark": True, "audio": False}


def test_no_audio_on_a_silent_model_is_a_note(run: Run) -> None:
    r, body = submit_ok([IMG, "--no-audio"], run)
    assert r.err == ("wanvid: --no-audio: wan2.2-i2v-flash makes silent videos anyway; "
                     "nothing to change\n")
    assert "audio" not in body["parameters"]


def test_submit_audio_url(run: Run) -> None:
    _, body = submit_ok([IMG, "-m", "wan2.5-i2v-preview", "--audio", AUDIO], run)
    assert body["input"] == {"img_url": IMG, "audio_url": AUDIO}
    assert "audio" not in body["parameters"]  # audio_url wins; parameters.audio is ignored


def test_submit_turbo_duration_and_alias(run: Run) -> None:
    _, body = submit_ok([IMG, "-m", "wanx2.1-i2v-turbo", "-d", "3", "-r", "480P"], run)
    assert body["model"] == "wan2.1-i2v-turbo"
    assert body["parameters"] == {"resolution": "480P", "duration": 3}


@pytest.mark.parametrize("seed", ["0", "2147483647"])
def test_submit_seed_bounds_ok(run: Run, seed: str) -> None:
    _, body = submit_ok([IMG, "--seed", seed], run)
    assert body["parameters"]["seed"] == int(seed)


def test_submit_wan25_ten_seconds_ok(run: Run) -> None:
    _, body = submit_ok([IMG, "-m", "wan2.5-i2v-preview", "-d", "10"], run)
    assert body["parameters"]["duration"] == 10


def test_submit_config_default_model(run: Run) -> None:
    assert run(["config", "set", "model", "wan2.2-i2v-plus"]).code == 0
    _, body = submit_ok([IMG], run)
    assert body["model"] == "wan2.2-i2v-plus"
    assert body["parameters"] == {"resolution": "1080P"}


# --- submit: local files -------------------------------------------------------------------------


def test_submit_local_file_sent_as_data_uri(run: Run) -> None:
    data = png(640, 480)
    Path("cat.png").write_bytes(data)
    _, body = submit_ok(["cat.png", "-p", "x"], run)
    assert body["input"]["img_url"] == data_uri("image/png", data)


def test_submit_file_url_and_last_frame_files(run: Run) -> None:
    first, last = png(640, 480), png(800, 600)
    Path("a.png").write_bytes(first)
    Path("b.png").write_bytes(last)
    _, body = submit_ok([f"file://{Path('a.png').resolve()}", "-l", "b.png"], run, url=KF2V_URL)
    assert body["input"] == {"first_frame_url": data_uri("image/png", first),
                             "last_frame_url": data_uri("image/png", last)}


def test_submit_local_audio_is_uploaded_and_sent_as_oss(run: Run) -> None:
    Path("cat.png").write_bytes(png(640, 480))
    track = wav(4.0)
    Path("track.wav").write_bytes(track)
    host = "https://dashscope-file-x.oss-ap-southeast-1.aliyuncs.com"
    policy = {"data": {"policy": "cA==", "signature": "cw==", "upload_dir": "dashscope-instant/d",
                       "upload_host": host, "expire_in_seconds": 300, "max_file_size_mb": 100,
                       "oss_access_key_id": "LTAI", "x_oss_object_acl": "private",
                       "x_oss_forbid_overwrite": "true"}}
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/uploads", json=policy)
        rsps.add(responses.POST, host, body="")
        rsps.add(responses.POST, I2V_URL, json=CREATED)
        r = run(["submit", "cat.png", "-m", "wan2.5-i2v-preview", "--audio", "track.wav"])
        assert r.code == 0, r.err
        upload, sub = rsps.calls[1].request, rsps.calls[2].request
        body = body_of(rsps.calls[2])
    assert "Authorization" not in upload.headers
    assert body["input"]["audio_url"].startswith("oss://dashscope-instant/d/")
    assert body["input"]["audio_url"].endswith("-track.wav")
    assert body["input"]["img_url"].startswith("data:image/png;base64,")  # images inline
    assert sub.headers["X-DashScope-OssResourceResolve"] == "enable"
    assert "data: URI" not in r.err


def test_submit_audio_data_uri_is_sent_inline_with_a_warning(run: Run) -> None:
    Path("cat.png").write_bytes(png(640, 480))
    track = wav(4.0)
    r, body = submit_ok(["cat.png", "-m", "wan2.5-i2v-preview", "--audio",
                         data_uri("audio/wav", track)], run)
    assert body["input"]["audio_url"] == data_uri("audio/wav", track)
    assert "audio" not in body["parameters"]
    # the reference documents only URLs for audio_url: the user is told, once
    assert r.err.count("\n") == 1 and "data: URI" in r.err and "public URL" in r.err


# --- submit: validation (exit 2, one line, nothing sent) -----------------------------------------

VALIDATION: list[tuple[str, list[str], str]] = [
    ("unknown-model", [IMG, "-m", "wan9-i2v"],
     "--model: unknown model 'wan9-i2v'; did you mean wan2.7-i2v or wan2.6-i2v or "
     "wan2.6-i2v-us? To use a model wanvid does not know yet, describe it in a [[model]] "
     "table in $MODELS_TOML (README \"Your own models\")"),
    ("kf2v-without-last-frame", [IMG, "-m", "wan2.2-kf2v-flash"],
     "wan2.2-kf2v-flash needs two frames: pass the last frame with --last-frame IMAGE"),
    ("last-frame-with-i2v", [IMG, "--last-frame", IMG2, "-m", "wan2.2-i2v-flash"],
     "--last-frame needs a model that takes a last frame, not wan2.2-i2v-flash; use --model "
     "with one of: wan2.7-i2v, wan2.2-kf2v-flash, wan2.1-kf2v-plus"),
    ("flash-480p", [IMG, "-m", "wan2.6-i2v-flash", "-r", "480P"],
     "--resolution 480P: wan2.6-i2v-flash offers 720P, 1080P"),
    ("happyhorse-480p", [IMG, "-m", "happyhorse-1.0-i2v", "-r", "480p"],
     "--resolution 480p: happyhorse-1.0-i2v offers 720P, 1080P"),
    ("wan21-plus-480p", [IMG, "-m", "wan2.1-i2v-plus", "-r", "480P"],
     "--resolution 480P: wan2.1-i2v-plus offers 720P"),
    ("wan22-plus-720p", [IMG, "-m", "wan2.2-i2v-plus", "-r", "720P"],
     "--resolution 720P: wan2.2-i2v-plus offers 480P, 1080P"),
    ("kf2v-plus-1080p", [IMG, "-l", IMG2, "-m", "wan2.1-kf2v-plus", "-r", "1080P"],
     "--resolution 1080P: wan2.1-kf2v-plus offers 720P"),
    ("bad-resolution", [IMG, "-r", "4K"],
     "--resolution 4K: wan2.2-i2v-flash offers 480P, 720P, 1080P"),
    ("wan22-10s", [IMG, "-m", "wan2.2-i2v-flash", "-d", "10"],
     "--duration 10: wan2.2-i2v-flash makes 5 s videos (wan2.7-i2v, wan2.6-i2v-flash, "
     "wan2.6-i2v and 3 more can do 10 s)"),
    ("turbo-6s", [IMG, "-m", "wan2.1-i2v-turbo", "-d", "6"],
     "--duration 6: wan2.1-i2v-turbo makes 3-5 s videos (wan2.7-i2v, wan2.6-i2v-flash, "
     "wan2.6-i2v and 1 more can do 6 s)"),
    ("wan25-7s", [IMG, "-m", "wan2.5-i2v-preview", "-d", "7"],
     "--duration 7: wan2.5-i2v-preview makes 5, 10 s videos (wan2.7-i2v, wan2.6-i2v-flash, "
     "wan2.6-i2v and 1 more can do 7 s)"),
    ("wan26-16s", [IMG, "-m", "wan2.6-i2v-flash", "-d", "16"],
     "--duration 16: wan2.6-i2v-flash makes 2-15 s videos"),
    ("happyhorse-2s", [IMG, "-m", "happyhorse-1.0-i2v", "-d", "2"],
     "--duration 2: happyhorse-1.0-i2v makes 3-15 s videos (wan2.7-i2v, wan2.6-i2v-flash, "
     "wan2.6-i2v can do 2 s)"),
    ("kf2v-10s", [IMG, "-l", IMG2, "-d", "10"], "--duration 10: wan2.2-kf2v-flash makes 5 s videos"),
    ("seed-negative", [IMG, "--seed", "-1"], "--seed -1: must be between 0 and 2147483647"),
    ("seed-too-big", [IMG, "--seed", "2147483648"],
     "--seed 2147483648: must be between 0 and 2147483647"),
    ("audio-non-audio-model", [IMG, "-m", "wan2.2-i2v-plus", "--audio", AUDIO],
     "--audio: model wan2.2-i2v-plus does not take an audio track; audio works with "
     "wan2.7-i2v, wan2.6-i2v-flash, wan2.6-i2v, wan2.6-i2v-us, wan2.5-i2v-preview. Pick one with "
     "--model, or drop --audio."),
    ("audio-and-no-audio", [IMG, "-m", "wan2.5-i2v-preview", "--audio", AUDIO, "--no-audio"],
     "--audio and --no-audio contradict each other; pass one of them"),
    ("no-audio-happyhorse", [IMG, "-m", "happyhorse-1.0-i2v", "--no-audio"],
     "--no-audio: happyhorse-1.0-i2v always makes videos with sound (it has no parameter to turn "
     "it off); for silent video use wan2.6-i2v-flash or a silent model (nothing was sent)"),
    ("no-audio-undocumented", [IMG, "-m", "wan2.6-i2v", "--no-audio"],
     "--no-audio: wan2.6-i2v has no documented way to make a silent video (it adds its own "
     "sound); use wan2.6-i2v-flash or a silent model (nothing was sent)"),
]


@pytest.mark.parametrize(("args", "message"), [v[1:] for v in VALIDATION], ids=[v[0] for v in VALIDATION])
def test_submit_validation(run: Run, args: list[str], message: str) -> None:
    r = nothing_sent(["submit", *args], run)
    assert r.code == 2
    assert r.out == ""
    models_toml = str(Path(os.environ["WANVID_CONFIG_DIR"]) / "models.toml")
    assert r.err == f"wanvid: error: {message}\n".replace("$MODELS_TOML", models_toml)


@pytest.mark.parametrize(("args", "start"), [
    (["missing.png"], "wanvid: error: missing.png: no such file."),
    (["ftp://example.com/cat.png"], "wanvid: error: ftp://example.com/cat.png: unsupported scheme 'ftp:'"),
    (["small.png"], "wanvid: error: small.png: image is 100×100 px; width and height must be "
                    "240..8000 px for wan2.2-i2v-flash."),
    ([IMG, "-l", "missing.png"], "wanvid: error: missing.png: no such file."),
    ([IMG, "-m", "wan2.5-i2v-preview", "--audio", "short.wav"],
     "wanvid: error: short.wav: audio is 1 s long; it must be 3..30 s."),
    ([IMG, "--duration", "abc"], "wanvid: error: Invalid value for '--duration'"),
    ([], "wanvid: error: IMAGE: missing; give the first frame"),
    ([IMG, "--colour", "red"], "wanvid: error: No such option: --colour"),
], ids=["missing-file", "bad-scheme", "too-small", "missing-last-frame", "short-audio",
        "duration-not-int", "no-image", "unknown-option"])
def test_submit_bad_input(run: Run, args: list[str], start: str) -> None:
    Path("small.png").write_bytes(png(100, 100))
    Path("short.wav").write_bytes(wav(1.0))
    r = nothing_sent(["submit", *args], run)
    assert r.code == 2
    assert r.out == ""
    assert r.err.count("\n") == 1, r.err
    assert r.err.startswith(start)


def test_validation_comes_before_the_key_check(run: Run) -> None:
    r = nothing_sent(["submit", IMG, "-r", "360P"], run, key=None)
    assert r.code == 2


# --- submit: prompt limits (warn, still send) ----------------------------------------------------


@pytest.mark.parametrize(("model", "limit"), [("wan2.2-i2v-flash", 800), ("wan2.1-i2v-turbo", 800),
                                              ("wan2.5-i2v-preview", 1500)])
def test_prompt_over_limit_warns_and_sends(run: Run, model: str, limit: int) -> None:
    prompt = "猫" * (limit + 1)  # one character each, Chinese or not
    r, body = submit_ok([IMG, "-m", model, "-p", prompt], run)
    assert r.out == "t-1\n"
    assert r.err == (f"wanvid: warning: --prompt is {limit + 1} characters; {model} keeps the first "
                     f"{limit} and drops the rest\n")
    assert body["input"]["prompt"] == prompt


@pytest.mark.parametrize(("model", "limit"), [("wan2.2-i2v-flash", 800), ("wan2.5-i2v-preview", 1500)])
def test_prompt_at_limit_is_quiet(run: Run, model: str, limit: int) -> None:
    r, body = submit_ok([IMG, "-m", model, "-p", "x" * limit], run)
    assert r.err == ""
    assert len(body["input"]["prompt"]) == limit


def test_negative_prompt_over_limit_warns_and_sends(run: Run) -> None:
    r, body = submit_ok([IMG, "-n", "y" * 501], run)
    assert r.err == ("wanvid: warning: --negative-prompt is 501 characters; the service keeps the "
                     "first 500\n")
    assert body["input"]["negative_prompt"] == "y" * 501
    r, _ = submit_ok([IMG, "-n", "y" * 500], run)
    assert r.err == ""


# --- submit --dry-run ----------------------------------------------------------------------------


def test_dry_run_text(run: Run) -> None:
    r = nothing_sent(["submit", IMG, "-p", "a cat", "--seed", "7", "--dry-run"], run)
    assert r.code == 0
    assert r.err == ""
    assert KEY not in r.out
    lines = r.out.splitlines()
    assert lines[:5] == [
        f"POST {I2V_URL}",
        "Authorization: Bearer ***",
        "X-DashScope-Async: enable",
        "Content-Type: application/json",
        "",
    ]
    assert json.loads("\n".join(lines[5:-1])) == {
        "model": "wan2.2-i2v-flash",
        "input": {"prompt": "a cat", "img_url": IMG},
        "parameters": {"resolution": "720P", "seed": 7},
    }
    body = json.loads("\n".join(lines[5:-1]))
    assert lines[-1] == (f"# request body: {len(json.dumps(body).encode())} bytes; "
                         "predicted output: unknown (the image is a URL); billed: 5 s")


def test_dry_run_json_kf2v(run: Run) -> None:
    r = nothing_sent(["submit", IMG, "-l", IMG2, "-r", "1080P", "--dry-run", "--json"], run)
    assert r.code == 0
    assert KEY not in r.out + r.err
    d = envelope_schema.data(r.out, "submit")
    assert d == {
        "dry_run": True,
        "method": "POST",
        "url": KF2V_URL,
        "headers": {"Authorization": "Bearer ***", "X-DashScope-Async": "enable",
                    "Content-Type": "application/json"},
        "body": {"model": "wan2.2-kf2v-flash",
                 "input": {"first_frame_url": IMG, "last_frame_url": IMG2},
                 "parameters": {"resolution": "1080P"}},
        "body_bytes": len(json.dumps(d["body"]).encode()),
        "billed_seconds": 5,
    }


def test_dry_run_local_file_abbreviated(run: Run) -> None:
    data = png(640, 480)
    Path("cat.png").write_bytes(data)
    r = nothing_sent(["submit", "cat.png", "-m", "wan2.5-i2v-preview", "-r", "720P", "-d", "10",
                      "--dry-run", "--json"], run)
    assert r.code == 0
    d = envelope_schema.data(r.out, "submit")
    img = d["body"]["input"]["img_url"]
    full = data_uri("image/png", data)
    assert img.startswith("data:image/png;base64,iVBORw0KGgo")
    assert img.endswith(f"…({len(full)} chars)")
    assert len(img) < 100
    assert d["predicted_size"] == {"width": 1104, "height": 816, "resolution": "720P"}
    assert d["billed_seconds"] == 10
    assert d["url"] == I2V_URL


def test_dry_run_region(run: Run) -> None:
    r = nothing_sent(["--region", "cn", "submit", IMG, "--dry-run"], run)
    assert r.out.splitlines()[0] == f"POST {CN}/services/aigc/video-generation/video-synthesis"


def test_dry_run_still_validates(run: Run) -> None:
    r = nothing_sent(["submit", IMG, "-d", "10", "--dry-run"], run)
    assert r.code == 2
    assert r.out == ""


# --- status ---------------------------------------------------------------------------------------


def task(tid: str, status: str, **extra: str) -> dict[str, Any]:
    return {"request_id": f"r-{tid}", "output": {"task_id": tid, "task_status": status, **extra}}


def test_status_succeeded(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1", json=task("t-1", "SUCCEEDED", video_url=VIDEO_URL))
        r = run(["status", "t-1"])
        assert "X-DashScope-Async" not in rsps.calls[0].request.headers
    assert r.code == 0
    assert r.out == f"t-1 SUCCEEDED {VIDEO_URL} (expires in 1h00m)\n"
    assert r.err == ""


def test_status_failed(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-2", json=task(
            "t-2", "FAILED", code="InvalidParameter.DataInspection",
            message="The media format is not supported or incorrect for the data inspection."))
        r = run(["status", "t-2"])
    assert r.code == 5
    assert r.out == ("t-2 FAILED InvalidParameter.DataInspection: The media format is not supported "
                     "or incorrect for the data inspection.\n")


def test_status_unknown(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-3", json=task("t-3", "UNKNOWN"))
        r = run(["status", "t-3"])
    assert r.code == 5
    assert r.out == "t-3 UNKNOWN (expired after 24 h, or never existed in this region)\n"


@pytest.mark.parametrize("extra", [{"message": "boom"}, {"code": None, "message": "boom"}],
                         ids=["no-code", "null-code"])
def test_status_failed_without_code(run: Run, extra: dict[str, Any]) -> None:
    body = {"request_id": "r", "output": {"task_id": "t-2", "task_status": "FAILED", **extra}}
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-2", json=body)
        r = run(["status", "t-2"])
    assert r.code == 5
    assert r.out == "t-2 FAILED boom\n"


def test_status_canceled(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-4", json=task("t-4", "CANCELED"))
        r = run(["status", "t-4"])
    assert r.code == 5
    assert r.out.startswith("t-4 CANCELED")


@pytest.mark.parametrize("state", ["PENDING", "RUNNING"])
def test_status_in_progress(run: Run, state: str) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1", json=task("t-1", state))
        r = run(["status", "t-1"])
    assert r.code == 0
    assert r.out == f"t-1 {state}\n"


def test_status_many_one_line_each(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1", json=task("t-1", "SUCCEEDED", video_url=VIDEO_URL))
        rsps.add(responses.GET, INTL + "/tasks/t-2", json=task("t-2", "FAILED", code="E", message="m"))
        rsps.add(responses.GET, INTL + "/tasks/t-3", json=task("t-3", "RUNNING"))
        r = run(["status", "t-1", "t-2", "t-3"])
        assert [c.request.url for c in rsps.calls] == [INTL + "/tasks/t-1", INTL + "/tasks/t-2",
                                                       INTL + "/tasks/t-3"]
    assert r.code == 5
    assert r.out.splitlines() == [f"t-1 SUCCEEDED {VIDEO_URL} (expires in 1h00m)", "t-2 FAILED E: m",
                                  "t-3 RUNNING"]


def test_status_ids_from_stdin(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1", json=task("t-1", "RUNNING"))
        rsps.add(responses.GET, INTL + "/tasks/t-2", json=task("t-2", "PENDING"))
        r = run(["status"], stdin="t-1\n\n# a comment\n  t-2  \n")
        assert len(rsps.calls) == 2
    assert r.code == 0
    assert r.out == "t-1 RUNNING\nt-2 PENDING\n"


def test_status_json_lines(run: Run) -> None:
    a, b = task("t-1", "RUNNING"), task("t-2", "UNKNOWN")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1", json=a)
        rsps.add(responses.GET, INTL + "/tasks/t-2", json=b)
        r = run(["status", "t-1", "t-2", "--json"])
    assert r.code == 5
    envs = envelope_schema.envelopes(r.out, "status")
    assert [(e["kind"], e["exit_code"], e["data"]["task_id"], e["data"]["status"])
            for e in envs[:2]] == [("task", 0, "t-1", "RUNNING"), ("task", 5, "t-2", "UNKNOWN")]
    assert envs[2]["kind"] == "summary" and envs[2]["exit_code"] == 5
    assert envs[2]["data"] == {"tasks": 2, "ok": 1, "failed": 1, "unfinished": [],
                               "resume": None}


def test_status_needs_an_id(run: Run) -> None:
    r = nothing_sent(["status"], run, tty=True)
    assert r.code == 2
    assert r.err == "wanvid: error: status: give at least one TASK_ID (or pipe them in)\n"


def test_status_connection_error_exit_7(run: Run, clock: FakeClock) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks/t-1", body=requests.exceptions.ConnectionError("down"))
        r = run(["status", "t-1"])
        assert len(rsps.calls) == 5
    assert r.code == 7
    assert len(clock.sleeps) == 4
    assert r.err.splitlines()[-1] == "wanvid: error: GET to dashscope-intl.aliyuncs.com connection failed"


# --- cancel / tasks --remote ---------------------------------------------------------------------


def test_cancel(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, INTL + "/tasks/t-1/cancel", json={"request_id": "r"})
        rsps.add(responses.POST, INTL + "/tasks/t-2/cancel", json={"request_id": "r"})
        r = run(["cancel", "t-1", "t-2"])
        assert [c.request.url for c in rsps.calls] == [INTL + "/tasks/t-1/cancel",
                                                       INTL + "/tasks/t-2/cancel"]
        assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"
    assert r.code == 0
    assert r.out == "t-1 CANCELED\nt-2 CANCELED\n"


def test_cancel_running_task_rejected(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, INTL + "/tasks/t-1/cancel", status=400, json={
            "request_id": "r", "code": "UnsupportedOperation",
            "message": "Failed to cancel the task, please confirm if the task is in PENDING status."})
        rsps.add(responses.POST, INTL + "/tasks/t-2/cancel", json={"request_id": "r"})
        r = run(["cancel", "t-1", "t-2"])
    assert r.code == 4
    assert r.out == "t-2 CANCELED\n"
    assert r.err == ("wanvid: error: t-1: cannot cancel: the service rejected the "
                     "request (400 UnsupportedOperation: Failed to cancel the task, please confirm if "
                     "the task is in PENDING status.); only PENDING tasks can be canceled\n")


LISTING = {"request_id": "r-l", "total": 2, "page_no": 1, "page_size": 10, "data": [
    {"task_id": "t-1", "task_status": "SUCCEEDED", "model_name": "wan2.2-i2v-flash",
     "submit_time": "2027-01-15 07:30:00.123"},
    {"task_id": "t-2", "task_status": "RUNNING", "model_name": "wan2.5-i2v-preview",
     "submit_time": "2027-01-15 07:45:00.456"},
]}


def test_tasks_remote_defaults(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks", json=LISTING,
                 match=[matchers.query_param_matcher({"page_no": "1", "page_size": "10"})])
        r = run(["tasks", "--remote"])
        assert "X-DashScope-Async" not in rsps.calls[0].request.headers
    assert r.code == 0
    assert r.out == ("t-1 SUCCEEDED wan2.2-i2v-flash 2027-01-14T23:30:00Z\n"
                     "t-2 RUNNING wan2.5-i2v-preview 2027-01-14T23:45:00Z\n")


def test_tasks_remote_filters(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, INTL + "/tasks", json=LISTING, match=[matchers.query_param_matcher({
            "status": "SUCCEEDED", "model_name": "wan2.5-i2v-preview", "page_no": "2",
            "page_size": "5", "start_time": "2027-01-15 15:00:00",
            "end_time": "2027-01-15 16:00:00"})])
        r = run(["tasks", "--remote", "--status", "succeeded", "-m", "wan2.5-i2v-preview",
                 "--page", "2", "--page-size", "5", "--since", "1h", "--json"])
    assert r.code == 0
    # the task shape of `wanvid tasks`, never the service's object; Beijing time as UTC
    assert [(t["task_id"], t["status"], t["model"], t["submitted_at"])
            for t in envelope_schema.data(r.out, "tasks")] == [
        ("t-1", "SUCCEEDED", "wan2.2-i2v-flash", "2027-01-14T23:30:00Z"),
        ("t-2", "RUNNING", "wan2.5-i2v-preview", "2027-01-14T23:45:00Z")]


# --- the key never shows ---------------------------------------------------------------------------

ERR_401 = {"request_id": "r", "code": "InvalidApiKey", "message": "Invalid API-key provided."}
ERR_400 = {"request_id": "r", "code": "InvalidParameter", "message": "bad"}
ERR_500 = {"request_id": "r", "code": "InternalError", "message": "oops"}


def _ok_submit(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, I2V_URL, json=CREATED)


def _ok_status(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, INTL + "/tasks/t-1", json=task("t-1", "SUCCEEDED", video_url=VIDEO_URL))


SECRET_CASES: list[tuple[str, list[str], Callable[[responses.RequestsMock], None] | None, int]] = [
    ("submit", ["submit", IMG, "-p", "x"], _ok_submit, 0),
    ("submit-json", ["submit", IMG, "--json"], _ok_submit, 0),
    ("submit-dry-run", ["submit", IMG, "--dry-run"], None, 0),
    ("submit-dry-run-json", ["submit", IMG, "--dry-run", "--json"], None, 0),
    ("status", ["status", "t-1"], _ok_status, 0),
    ("status-json", ["status", "t-1", "--json"], _ok_status, 0),
    ("config-list", ["config", "list"], None, 0),
    ("config-list-json", ["config", "list", "--json"], None, 0),
    ("models", ["models"], None, 0),
    ("models-json", ["models", "--json"], None, 0),
    ("tasks-remote", ["tasks", "--remote", "--json"],
     lambda rsps: rsps.add(responses.GET, INTL + "/tasks", json=LISTING), 0),
    ("cancel", ["cancel", "t-1"],
     lambda rsps: rsps.add(responses.POST, INTL + "/tasks/t-1/cancel", json={}), 0),
    ("status-401", ["status", "t-1"],
     lambda rsps: rsps.add(responses.GET, INTL + "/tasks/t-1", status=401, json=ERR_401), 3),
    ("submit-401", ["submit", IMG],
     lambda rsps: rsps.add(responses.POST, I2V_URL, status=401, json=ERR_401), 3),
    ("submit-400", ["submit", IMG],
     lambda rsps: rsps.add(responses.POST, I2V_URL, status=400, json=ERR_400), 4),
    ("submit-500", ["submit", IMG],
     lambda rsps: rsps.add(responses.POST, I2V_URL, status=500, json=ERR_500), 7),
    ("status-500", ["status", "t-1"],
     lambda rsps: rsps.add(responses.GET, INTL + "/tasks/t-1", status=500, json=ERR_500), 7),
    ("submit-connection-error", ["submit", IMG],
     lambda rsps: rsps.add(responses.POST, I2V_URL, body=requests.exceptions.ConnectionError("x")), 7),
    ("status-connection-error", ["status", "t-1"],
     lambda rsps: rsps.add(responses.GET, INTL + "/tasks/t-1",
                           body=requests.exceptions.ConnectionError("x")), 7),
    ("submit-read-timeout", ["submit", IMG],
     lambda rsps: rsps.add(responses.POST, I2V_URL, body=requests.exceptions.ReadTimeout("x")), 7),
    ("submit-validation", ["submit", IMG, "-d", "10"], None, 2),
    # a server that echoes the key back, plainly or JSON-escaped: it goes no further
    ("submit-400-echo", ["submit", IMG, "--json"],
     lambda rsps: rsps.add(responses.POST, I2V_URL, status=400, json={
         "request_id": "r", "code": "InvalidParameter", "message": f"bad key {KEY}"}), 4),
    ("status-failed-echo", ["status", "t-1", "--json"],
     lambda rsps: rsps.add(responses.GET, INTL + "/tasks/t-1", body=(
         '{"request_id": "r", "output": {"task_id": "t-1", "task_status": "FAILED", '
         '"code": "InternalError", "message": "key \\u0073' + KEY[1:] + '"}}')), 5),
    ("submit-echo-then-wait", ["generate", IMG, "-p", "x", "--json"],
     lambda rsps: (_ok_submit(rsps), rsps.add(responses.GET, INTL + "/tasks/t-1", json={
         "request_id": KEY, "output": {"task_id": "t-1", "task_status": "FAILED",
                                       "code": KEY, "message": f"{KEY} rejected"}})), 5),
]
SECRET_CASES += [(f"debug-{name}", ["--debug", *args], setup, code)
                 for name, args, setup, code in SECRET_CASES
                 if name in ("submit", "submit-dry-run", "status", "status-401", "submit-400",
                             "submit-400-echo", "status-failed-echo",
                             "submit-500", "status-500", "submit-connection-error",
                             "status-connection-error", "config-list")]


@pytest.mark.parametrize(("args", "setup", "code"), [c[1:] for c in SECRET_CASES],
                         ids=[c[0] for c in SECRET_CASES])
@pytest.mark.parametrize("key_from", ["env", "config-file"])
def test_key_never_printed(run: Run, caplog: pytest.LogCaptureFixture, args: list[str],
                           setup: Callable[[responses.RequestsMock], None] | None, code: int,
                           key_from: str) -> None:
    caplog.set_level(logging.DEBUG)
    if key_from == "config-file":
        assert run(["config", "set", "api_key"], stdin=KEY, key=None).code == 0
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        if setup is not None:
            setup(rsps)
        r = run(args, key=KEY if key_from == "env" else None)
        answered = any(isinstance(c.response, requests.Response) for c in rsps.calls)
        for call in rsps.calls:  # the key goes in the Authorization header and nowhere else
            assert call.request.headers["Authorization"] == f"Bearer {KEY}"
            assert KEY not in (call.request.url or "")
    assert r.code == code, r.err
    assert KEY not in r.out
    assert KEY not in r.err
    assert KEY not in caplog.text
    if args[0] == "--debug" and answered:  # the requests really were logged
        assert any(rec.name == "wanvid.client" for rec in caplog.records)
    if key_from == "env":  # nothing on disk holds it either (journal, config, ...)
        for p in Path(os.environ["HOME"]).rglob("*"):
            if p.is_file():
                assert KEY.encode() not in p.read_bytes(), p


def test_key_not_in_config_set_output(run: Run) -> None:
    r = run(["config", "set", "api_key"], stdin=KEY + "\n", key=None)
    assert r.code == 0
    assert KEY not in r.out + r.err
    r = run(["config", "get", "api_key"], key=None)
    assert KEY not in r.out + r.err


def test_body_size_equals_the_real_body(tmp_path: Path) -> None:
    from wanvid.params import SubmitOptions, prepare_submit

    img = tmp_path / "a.png"
    img.write_bytes(png(640, 480))
    for opts in (SubmitOptions(image=str(img), prompt="é ünïcode \\\" quote", seed=3),
                 SubmitOptions(image="https://example.com/a b.png", last_frame=str(img),
                               prompt="x")):
        p = prepare_submit(opts, default_model="wan2.2-i2v-flash",
                           default_kf2v_model="wan2.2-kf2v-flash", region="intl",
                           warn=lambda m: None)
        assert p.body_size() == len(p.body())


def test_scrub_secret_replaces_plain_and_json_escaped_copies() -> None:
    from wanvid.sanitize import SECRET_REDACTED, scrub_secret

    body = b'{"m": "ok"}'
    assert scrub_secret(body, KEY) is body  # no copy: the same bytes, untouched
    plain = json.dumps({"message": f"bad {KEY}!", "code": KEY}).encode()
    out = scrub_secret(plain, KEY)
    assert KEY.encode() not in out
    assert json.loads(out) == {"message": f"bad {SECRET_REDACTED}!", "code": SECRET_REDACTED}
    escaped = ('{"message": "\\u00e9 \\u0073' + KEY[1:] + '"}').encode()
    out = scrub_secret(escaped, KEY)
    assert json.loads(out) == {"message": f"é {SECRET_REDACTED}"}
    assert scrub_secret(b"not json \\ " + KEY.encode(), KEY) == b"not json \\ " + SECRET_REDACTED.encode()
    assert scrub_secret(b"abc", "ab") == b"abc"  # too short to be a key: left alone
