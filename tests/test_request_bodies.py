"""The exact request body for each protocol: legacy i2v (img_url), legacy kf2v
(first_frame_url/last_frame_url) and media (input.media) with each combination the service
accepts; every other combination exits 2 with one line and nothing sent."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.conftest import Result

Run = Callable[..., Result]

BASE = "https://dashscope-intl.aliyuncs.com/api/v1"
I2V_URL = BASE + "/services/aigc/video-generation/video-synthesis"
KF2V_URL = BASE + "/services/aigc/image2video/video-synthesis"
CREATED = {"request_id": "r-1", "output": {"task_id": "t-1", "task_status": "PENDING"}}
IMG = "https://example.com/first.png"
END = "https://example.com/last.png"
SONG = "https://example.com/song.mp3"
CLIP = "https://example.com/clip.mp4"


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(seconds: float, width: int = 320, height: int = 240, brand: bytes = b"isom",
        moov: bool = True) -> bytes:
    """A minimal ISO-BMFF file: ftyp, moov (mvhd + one trak with tkhd), mdat."""
    ftyp = box(b"ftyp", brand + b"\0\0\2\0" + brand + b"mp41")
    mvhd = box(b"mvhd", b"\0\0\0\0" + struct.pack(">IIII", 0, 0, 1000, int(seconds * 1000))
               + b"\0" * 80)
    tkhd = box(b"tkhd", b"\0\0\0\7" + b"\0" * 72 + struct.pack(">II", width << 16, height << 16))
    body = ftyp + (box(b"moov", mvhd + box(b"trak", tkhd)) if moov else b"")
    return body + box(b"mdat", b"\0" * 64)


def body_of(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


def sent(args: list[str], run: Run, url: str = I2V_URL) -> tuple[Result, dict[str, Any]]:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, url, json=CREATED)
        r = run(["submit", *args])
        assert r.code == 0, r.err
        assert len(rsps.calls) == 1
        return r, body_of(rsps.calls[0])


def refused(args: list[str], run: Run) -> Result:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        r = run(["submit", *args])
        assert len(rsps.calls) == 0
    assert r.code == 2, r.err
    assert r.out == "" and r.err.count("\n") == 1, r.err
    assert r.err.startswith("wanvid: error: ")
    return r


# --- legacy i2v and kf2v ---------------------------------------------------------------------


def test_legacy_i2v_body(run: Run) -> None:
    _, body = sent([IMG, "-m", "wan2.6-i2v", "-p", "a rap", "-n", "blurry", "--audio", SONG,
                    "-d", "10", "--seed", "7", "--prompt-extend", "--no-watermark"], run)
    assert body == {
        "model": "wan2.6-i2v",
        "input": {"prompt": "a rap", "negative_prompt": "blurry", "img_url": IMG,
                  "audio_url": SONG},
        "parameters": {"resolution": "1080P", "duration": 10, "prompt_extend": True,
                       "watermark": False, "seed": 7},
    }


def test_legacy_kf2v_body(run: Run) -> None:
    _, body = sent([IMG, "-l", END, "-p", "the flower opens", "-r", "480P"], run, KF2V_URL)
    assert body == {
        "model": "wan2.2-kf2v-flash",
        "input": {"prompt": "the flower opens", "first_frame_url": IMG, "last_frame_url": END},
        "parameters": {"resolution": "480P"},
    }


def test_flash_no_audio_sends_audio_false_even_with_a_track(run: Run) -> None:
    _, body = sent([IMG, "-m", "wan2.6-i2v-flash", "-d", "12", "--no-audio"], run)
    assert body == {"model": "wan2.6-i2v-flash", "input": {"img_url": IMG},
                    "parameters": {"resolution": "1080P", "duration": 12, "audio": False}}


def test_flash_makes_audio_by_default_nothing_extra_sent(run: Run) -> None:
    _, body = sent([IMG, "-m", "wan2.6-i2v-flash"], run)
    assert body["parameters"] == {"resolution": "1080P", "duration": 5}


# --- media -----------------------------------------------------------------------------------

MEDIA_OK: list[tuple[str, list[str], list[dict[str, str]]]] = [
    ("first frame", [IMG], [{"type": "first_frame", "url": IMG}]),
    ("first frame + audio", [IMG, "--audio", SONG],
     [{"type": "first_frame", "url": IMG}, {"type": "driving_audio", "url": SONG}]),
    ("first + last", [IMG, "-l", END],
     [{"type": "first_frame", "url": IMG}, {"type": "last_frame", "url": END}]),
    ("first + last + audio", [IMG, "-l", END, "--audio", SONG],
     [{"type": "first_frame", "url": IMG}, {"type": "last_frame", "url": END},
      {"type": "driving_audio", "url": SONG}]),
    ("continuation", ["--first-clip", CLIP], [{"type": "first_clip", "url": CLIP}]),
    ("continuation to an ending", ["--first-clip", CLIP, "-l", END],
     [{"type": "first_clip", "url": CLIP}, {"type": "last_frame", "url": END}]),
]


@pytest.mark.parametrize(("args", "items"), [m[1:] for m in MEDIA_OK], ids=[m[0] for m in MEDIA_OK])
def test_wan27_media_body(run: Run, args: list[str], items: list[dict[str, str]]) -> None:
    _, body = sent([*args, "-m", "wan2.7-i2v", "-p", "go", "-r", "720P", "-d", "12"], run)
    assert body == {"model": "wan2.7-i2v", "input": {"prompt": "go", "media": items},
                    "parameters": {"resolution": "720P", "duration": 12}}


def test_snapshot_name_is_sent(run: Run) -> None:
    _, body = sent([IMG, "-m", "wan2.7-i2v-2026-04-25"], run)
    assert body == {"model": "wan2.7-i2v-2026-04-25",
                    "input": {"media": [{"type": "first_frame", "url": IMG}]},
                    "parameters": {"resolution": "1080P", "duration": 5}}


def test_happyhorse_body(run: Run) -> None:
    _, body = sent([IMG, "-m", "happyhorse-1.0-i2v", "-p", "a cat running", "-r", "720P",
                    "--seed", "7", "--no-watermark"], run)
    assert body == {"model": "happyhorse-1.0-i2v",
                    "input": {"prompt": "a cat running",
                              "media": [{"type": "first_frame", "url": IMG}]},
                    "parameters": {"resolution": "720P", "duration": 5, "watermark": False,
                                   "seed": 7}}


WAN27_ACCEPTS = ("it accepts: IMAGE; IMAGE + --audio; IMAGE + --last-frame; IMAGE + --last-frame "
                 "+ --audio; --first-clip; --first-clip + --last-frame (nothing was sent)")
MEDIA_BAD: list[tuple[str, list[str], str]] = [
    ("clip + image", ["--first-clip", CLIP, IMG, "-m", "wan2.7-i2v"],
     "wan2.7-i2v does not accept --first-clip + IMAGE; " + WAN27_ACCEPTS),
    ("clip + audio", ["--first-clip", CLIP, "--audio", SONG, "-m", "wan2.7-i2v"],
     "wan2.7-i2v does not accept --first-clip + --audio; " + WAN27_ACCEPTS),
    ("clip + last + audio", ["--first-clip", CLIP, "-l", END, "--audio", SONG, "-m", "wan2.7-i2v"],
     "wan2.7-i2v does not accept --first-clip + --last-frame + --audio; " + WAN27_ACCEPTS),
    ("clip + image + last", ["--first-clip", CLIP, IMG, "-l", END, "-m", "wan2.7-i2v"],
     "wan2.7-i2v does not accept --first-clip + IMAGE + --last-frame; " + WAN27_ACCEPTS),
    ("last frame alone", ["-l", END, "-m", "wan2.7-i2v"],
     "IMAGE: missing; give the first frame (a file, URL or data: URI), or --first-clip VIDEO"),
    ("audio alone", ["--audio", SONG, "-m", "wan2.7-i2v"],
     "IMAGE: missing; give the first frame (a file, URL or data: URI), or --first-clip VIDEO"),
    ("happyhorse last frame", [IMG, "-l", END, "-m", "happyhorse-1.0-i2v"],
     "--last-frame needs a model that takes a last frame, not happyhorse-1.0-i2v; use --model "
     "with one of: wan2.7-i2v, wan2.2-kf2v-flash, wan2.1-kf2v-plus"),
    ("happyhorse audio", [IMG, "--audio", SONG, "-m", "happyhorse-1.0-i2v"],
     "--audio: model happyhorse-1.0-i2v does not take an audio track; audio works with "
     "wan2.7-i2v, wan2.6-i2v-flash, wan2.6-i2v, wan2.6-i2v-us, wan2.5-i2v-preview. Pick one "
     "with --model, or drop --audio."),
    ("happyhorse clip", ["--first-clip", CLIP, "-m", "happyhorse-1.0-i2v"],
     "--first-clip: happyhorse-1.0-i2v does not continue a video; use --model with one of: "
     "wan2.7-i2v (nothing was sent)"),
    ("clip on a legacy model", ["--first-clip", CLIP, "-m", "wan2.6-i2v"],
     "--first-clip: wan2.6-i2v does not continue a video; use --model with one of: wan2.7-i2v "
     "(nothing was sent)"),
    ("clip as a data: URI", ["--first-clip", "data:video/mp4;base64,AAAA", "-m", "wan2.7-i2v"],
     "--first-clip: a data: URI; the service takes video only as a URL."),
    ("no-audio on wan2.7", [IMG, "--no-audio", "-m", "wan2.7-i2v"],
     "--no-audio: wan2.7-i2v has no documented way to make a silent video"),
    ("nothing at all", ["-m", "wan2.7-i2v"],
     "IMAGE: missing; give the first frame (a file, URL or data: URI), or --first-clip VIDEO"),
]


@pytest.mark.parametrize(("args", "message"), [m[1:] for m in MEDIA_BAD], ids=[m[0] for m in MEDIA_BAD])
def test_media_refusals(run: Run, args: list[str], message: str) -> None:
    r = refused(args, run)
    assert r.err.startswith(f"wanvid: error: {message}"), r.err


def test_clip_without_model_picks_one_that_continues(run: Run) -> None:
    _, body = sent(["--first-clip", CLIP], run)
    assert body["model"] == "wan2.7-i2v"


# --- local clips: checked before anything is sent ----------------------------------------------


@pytest.mark.parametrize(("data", "start"), [
    (mp4(1.5), "c.mp4: clip is 1.5 s long; it must be 2..10 s."),
    (mp4(12.0), "c.mp4: clip is 12 s long; it must be 2..10 s. Trim it"),
    (mp4(4.0, moov=False), "c.mp4: looks like MP4 or MOV but its duration cannot be read"),
    (b"GIF89a" + b"\0" * 100, "c.mp4: not a supported video (content looks like GIF)"),
    (mp4(4.0, 200, 200), "c.mp4: clip is 200×200 px; width and height must be 240..4096 px."),
    (mp4(4.0, 4000, 300), "c.mp4: clip is 4000×300 px (aspect 13.33); it must be 1:8..8:1."),
], ids=["too-short", "too-long", "no-moov", "not-video", "too-small", "too-wide"])
def test_local_clip_checks(run: Run, data: bytes, start: str) -> None:
    Path("c.mp4").write_bytes(data)
    r = refused(["--first-clip", "c.mp4", "-m", "wan2.7-i2v"], run)
    assert r.err.startswith(f"wanvid: error: {start}"), r.err


def test_local_clip_is_uploaded_in_the_dry_run(run: Run) -> None:
    Path("c.mov").write_bytes(mp4(3.0, brand=b"qt  "))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        r = run(["submit", "--first-clip", "c.mov", "-l", END, "-d", "8", "--dry-run", "--json"])
        assert len(rsps.calls) == 0
    assert r.code == 0, r.err
    d = json.loads(r.out)
    d = d.get("data", d)
    media = d["body"]["input"]["media"]
    assert media[0]["type"] == "first_clip" and media[0]["url"].startswith("oss://")
    assert media[1] == {"type": "last_frame", "url": END}
    assert d["headers"]["X-DashScope-OssResourceResolve"] == "enable"
    assert d["uploads"][0]["input"] == "c.mov"


def test_probe_video_reads_the_boxes() -> None:
    from wanvid.media import probe_video

    info = probe_video(mp4(3.25, 640, 360, brand=b"qt  "))
    assert info is not None
    assert (info.format, info.mime, info.duration, info.width, info.height) == (
        "MOV", "video/quicktime", 3.25, 640, 360)
    sample = Path(__file__).parent.parent / "wanvid" / "data" / "sample.mp4"
    got = probe_video(sample.read_bytes())
    assert got is not None and (got.width, got.height, got.duration) == (320, 192, 1.2)


# --- shot type, templates, --param (exact bodies; refusals send nothing) ---------------------

CN = "https://dashscope.aliyuncs.com/api/v1"


def test_shot_type_body(run: Run) -> None:
    r, body = sent([IMG, "-m", "wan2.6-i2v-flash", "-d", "12", "--shot", "multi", "--no-audio",
                    "-p", "cut between wide and close shots"], run)
    assert body == {"model": "wan2.6-i2v-flash",
                    "input": {"prompt": "cut between wide and close shots", "img_url": IMG},
                    "parameters": {"resolution": "1080P", "duration": 12, "shot_type": "multi",
                                   "audio": False}}
    assert r.err == ("wanvid: --shot multi: takes effect only with prompt extension on (the "
                     "service's default; --no-prompt-extend would turn it off)\n")


def test_shot_type_with_prompt_extend_and_audio_track(run: Run) -> None:
    _, body = sent([IMG, "-m", "wan2.6-i2v", "--shot", "single", "--prompt-extend", "--audio",
                    SONG, "-d", "10"], run)
    assert body == {"model": "wan2.6-i2v", "input": {"img_url": IMG, "audio_url": SONG},
                    "parameters": {"resolution": "1080P", "duration": 10, "prompt_extend": True,
                                   "shot_type": "single"}}


def test_template_body_i2v(run: Run) -> None:
    r, body = sent([IMG, "--template", "flying", "-m", "wan2.1-i2v-turbo", "--region", "cn"], run,
                   CN + "/services/aigc/video-generation/video-synthesis")
    assert body == {"model": "wan2.1-i2v-turbo",
                    "input": {"img_url": IMG, "template": "flying"},
                    "parameters": {"resolution": "720P", "duration": 5}}
    assert r.err == ""


def test_template_picks_a_model_and_kf2v_needs_only_the_first_frame(run: Run) -> None:
    r, body = sent([IMG, "--template", "hanfu-1", "-p", "dance", "--region", "cn"], run,
                   CN + "/services/aigc/image2video/video-synthesis")
    assert body == {"model": "wanx2.1-kf2v-plus",  # its Beijing name
                    "input": {"prompt": "dance", "first_frame_url": IMG, "template": "hanfu-1"},
                    "parameters": {"resolution": "720P"}}
    assert r.err == ("wanvid: warning: --prompt is ignored with --template hanfu-1: the effect "
                     "has its own motion\n")


def test_template_outside_the_unconfirmed_list_is_a_warning(run: Run) -> None:
    r, body = sent([IMG, "--template", "new-effect", "-m", "wan2.1-i2v-plus", "--region", "cn"], run,
                   CN + "/services/aigc/video-generation/video-synthesis")
    assert body["input"] == {"img_url": IMG, "template": "new-effect"}
    assert r.err == ("wanvid: warning: --template new-effect: not a template wanvid knows for "
                     "wan2.1-i2v-plus (flying, squish); the list is unconfirmed, so it is sent "
                     "anyway\n")


def test_param_body_and_override(run: Run) -> None:
    r, body = sent([IMG, "-m", "wan2.6-i2v-flash", "--shot", "single",
                    "--param", "shot_type=multi", "--param", "seed=42",
                    "--param", "input.extra={\"a\": [1, 2]}", "--param", "style=anime",
                    "--param", "audio=true", "--param", "parameters.ratio=\"16:9\""], run)
    assert body == {"model": "wan2.6-i2v-flash",
                    "input": {"img_url": IMG, "extra": {"a": [1, 2]}},
                    "parameters": {"resolution": "1080P", "duration": 5, "shot_type": "multi",
                                   "seed": 42, "style": "anime", "audio": True,
                                   "ratio": "16:9"}}
    assert r.err.splitlines()[-1] == ("wanvid: warning: --param parameters.shot_type, "
                                      "parameters.style, parameters.audio, parameters.ratio, "
                                      "input.extra: sent as given; wanvid did not check them")


def test_param_shows_in_dry_run_and_journal(run: Run) -> None:
    import os

    from wanvid.journal import Journal

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        r = run(["submit", IMG, "-m", "wan2.6-i2v", "--param", "duration=9", "--param",
                 "input.mask=m.png", "--dry-run", "--json"])
        assert len(rsps.calls) == 0
    assert r.code == 0, r.err
    d = json.loads(r.out)
    d = d.get("data", d)
    assert d["body"]["parameters"] == {"resolution": "1080P", "duration": 9}
    assert d["body"]["input"] == {"img_url": IMG, "mask": "m.png"}
    assert d["billed_seconds"] == 9
    assert r.err == ("wanvid: warning: --param input.mask: sent as given; wanvid did not check "
                     "it\n")  # duration was checked like --duration
    sent([IMG, "-m", "wan2.6-i2v", "--param", "duration=9", "--param", "input.mask=m.png",
          "--param", "x=1"], run)
    with Journal(Path(os.environ["WANVID_STATE_DIR"]) / "journal.db") as j:
        rec = j.get("t-1")
    assert rec is not None
    assert rec.params == {"resolution": "1080P", "duration": 9, "x": 1, "input.mask": "m.png"}


def test_python_api_param_mapping_and_list() -> None:
    from wanvid.params import parse_params

    assert parse_params({"shot_type": "multi", "input.x": [1]}) == ({"shot_type": "multi"},
                                                                    {"x": [1]})
    assert parse_params(["n=1.5", "s=abc", "q=\"1\"", "b=false", "e="]) == (
        {"n": 1.5, "s": "abc", "q": "1", "b": False, "e": ""}, {})


def test_batch_jobs_carry_shot_template_and_param() -> None:
    from wanvid.batch import parse_jobs

    jobs, bad = parse_jobs('{"image": "a.png", "shot": "multi", "param": {"seed": 1}}\n'
                           '{"image": "b.png", "template": "flying", "param": "seed=2"}\n')
    assert not bad
    assert jobs[0].fields == {"image": "a.png", "shot": "multi", "param": {"seed": 1}}
    assert jobs[1].fields == {"image": "b.png", "template": "flying", "param": ["seed=2"]}
    jobs, bad = parse_jobs("image,param\na.png,\"{\"\"seed\"\": 3}\"\nb.png,seed=4\n")
    assert not bad
    assert [j.fields["param"] for j in jobs] == [{"seed": 3}, ["seed=4"]]


REQUEST_BAD: list[tuple[str, list[str], str]] = [
    ("shot on a model without it", [IMG, "--shot", "multi"],
     "--shot: wan2.2-i2v-flash has no shot types; single/multi-shot works with "
     "wan2.6-i2v-flash, wan2.6-i2v, wan2.6-i2v-us; pick one with --model, or drop --shot "
     "(nothing was sent)"),
    ("shot on wan2.7", [IMG, "-m", "wan2.7-i2v", "--shot", "multi"],
     "--shot: wan2.7-i2v has no shot types"),
    ("bad shot", [IMG, "-m", "wan2.6-i2v", "--shot", "triple"],
     "--shot triple: must be one of single, multi"),
    ("shot without prompt extension", [IMG, "-m", "wan2.6-i2v", "--shot", "multi",
                                       "--no-prompt-extend"],
     "--shot multi takes effect only with prompt extension on, and --no-prompt-extend turns "
     "it off; drop one of them (nothing was sent)"),
    ("template on a model without templates", [IMG, "--template", "flying", "-m", "wan2.6-i2v",
                                               "--region", "cn"],
     "--template flying: wan2.6-i2v has no video-effect templates in the catalogue; templates "
     "work with wan2.1-i2v-plus, wan2.1-i2v-turbo, wan2.1-kf2v-plus"),
    ("template outside Beijing", [IMG, "--template", "flying", "--region", "intl"],
     "--template: video effects are offered in Beijing only; this request goes to region intl "
     "(Singapore): use --region cn (nothing was sent)"),
    ("empty template", [IMG, "--template", " ", "--region", "cn"],
     "--template: empty; give a template name"),
    ("param without =", [IMG, "--param", "seed"],
     "--param seed: expected NAME=VALUE (or input.NAME=VALUE), e.g. --param shot_type=multi"),
    ("param with an empty name", [IMG, "--param", "=1"], "--param =1: expected NAME=VALUE"),
    ("param in another section", [IMG, "--param", "model.name=x"],
     "--param model.name: NAME must be a parameter name"),
    ("no-audio on happyhorse", [IMG, "-m", "happyhorse-1.0-i2v", "--no-audio"],
     "--no-audio: happyhorse-1.0-i2v always makes videos with sound"),
]


@pytest.mark.parametrize(("args", "message"), [m[1:] for m in REQUEST_BAD],
                         ids=[m[0] for m in REQUEST_BAD])
def test_request_refusals(run: Run, args: list[str], message: str) -> None:
    r = refused(args, run)
    assert r.err.startswith(f"wanvid: error: {message}"), r.err


def test_no_audio_on_a_silent_model_is_a_note_not_a_refusal(run: Run) -> None:
    r, body = sent([IMG, "-m", "wan2.2-i2v-plus", "--no-audio"], run)
    assert body == {"model": "wan2.2-i2v-plus", "input": {"img_url": IMG},
                    "parameters": {"resolution": "1080P"}}
    assert r.err == ("wanvid: --no-audio: wan2.2-i2v-plus makes silent videos anyway; nothing "
                     "to change\n")
    r, _ = sent([IMG, "-m", "wan2.2-i2v-plus", "--no-audio", "-q"], run)
    assert r.err == ""


def test_python_api_takes_shot_template_and_param() -> None:
    import io
    import os

    import wanvid
    from wanvid.context import Environment

    err = io.StringIO()
    env = Environment(environ={**os.environ, "DASHSCOPE_API_KEY": "sk-test-0123456789abcdef"},
                      stdin=io.StringIO(""), stdout=io.StringIO(), stderr=err)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, I2V_URL, json=CREATED)
        assert wanvid.submit(IMG, model="wan2.6-i2v", shot="multi", env=env,
                             param={"input.extra": {"k": 1}, "seed": 3}) == "t-1"
        body = body_of(rsps.calls[0])
    assert body == {"model": "wan2.6-i2v", "input": {"img_url": IMG, "extra": {"k": 1}},
                    "parameters": {"resolution": "1080P", "duration": 5, "shot_type": "multi",
                                   "seed": 3}}
    assert "--param input.extra: sent as given; wanvid did not check it" in err.getvalue()
