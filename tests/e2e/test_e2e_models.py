"""End to end, today's models (issue 13) against the emulator, which checks each request
against the catalogue (request shape, media combinations, shot_type, template, limits) and
answers the 2026 usage fields: wan2.6-i2v-flash 12 s multi-shot silent; wan2.7-i2v first +
last frame, continuing a clip URL and a local MP4 clip (uploaded: issue 14); HappyHorse; a
video-effect template; and a task failure from the emulator's fault switch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests import envelope_schema
from tests.e2e.conftest import E2E_KEY
from tests.test_request_bodies import mp4


def sidecar(work: Path, name: str) -> dict[str, Any]:
    return dict(json.loads((work / name).read_text()))


def test_wan26_flash_12_s_multi_shot_silent(emulator, wv, images, tmp_path: Path) -> None:
    emu = emulator()
    r = wv("generate", str(images["first"]), "-m", "wan2.6-i2v-flash", "-d", "12", "--shot",
           "multi", "--no-audio", "-p", "cut between wide and close shots", "-o", "flash.mp4",
           base_url=emu.base_url)
    assert r.code == 0, r.err
    assert r.out == "flash.mp4\n"
    assert "takes effect only with prompt extension on" in r.err
    side = sidecar(tmp_path / "work", "flash.json")
    assert side["parameters"] == {"resolution": "1080P", "duration": 12, "shot_type": "multi",
                                  "audio": False, "prompt": "cut between wide and close shots"}
    assert side["usage"]["billed_seconds"] == 12
    assert side["usage"]["service"]["audio"] is False  # the emulator saw audio: false
    assert side["usage"]["service"]["output_video_duration"] == 12
    assert side["actual_prompt"] is None  # wan2.6 never returns one


def test_wan27_first_and_last_frame(emulator, wv, images, tmp_path: Path) -> None:
    emu = emulator()
    r = wv("generate", str(images["first"]), "-l", str(images["last"]), "-m", "wan2.7-i2v",
           "-r", "720P", "-d", "8", "-p", "the kitten looks up", "-o", "fl.mp4",
           base_url=emu.base_url)
    assert r.code == 0, r.err
    side = sidecar(tmp_path / "work", "fl.json")
    assert side["model"] == "wan2.7-i2v"
    assert side["parameters"]["duration"] == 8 and side["usage"]["billed_seconds"] == 8
    assert emu.stats()["uploads"] == 0  # small images go inline as data: URIs


def test_wan27_continues_a_clip_url(emulator, wv, tmp_path: Path) -> None:
    emu = emulator()
    r = wv("generate", "--first-clip", "https://example.com/take1.mp4", "-d", "12", "-p",
           "she walks out of the room", "-o", "more.mp4", base_url=emu.base_url)
    assert r.code == 0, r.err  # without -m: the first model that continues a clip
    side = sidecar(tmp_path / "work", "more.json")
    assert side["model"] == "wan2.7-i2v"
    service = side["usage"]["service"]
    # the emulator cannot fetch a URL: it counts the clip as the shortest allowed (2 s)
    assert (service["input_video_duration"], service["output_video_duration"],
            side["usage"]["billed_seconds"]) == (2, 10, 12)
    assert emu.stats()["uploads"] == 0


def test_wan27_local_mp4_clip_is_uploaded(emulator, wv, images, tmp_path: Path) -> None:
    emu = emulator()
    clip = tmp_path / "take1.mp4"
    clip.write_bytes(mp4(3.0))  # a valid MP4 header: 3 s, 320x240 (the minimum is 2 s)
    r = wv("generate", "--first-clip", str(clip), "-l", str(images["last"]), "-m",
           "wan2.7-i2v", "-d", "12", "-p", "she walks out", "-o", "cont.mp4",
           base_url=emu.base_url)
    assert r.code == 0, r.err
    assert "uploaded " + str(clip) in r.err
    s = emu.stats()
    assert (s["policies"], s["uploads"], s["submits"]) == (1, 1, 1)
    assert s["upload_bytes"] == clip.stat().st_size
    assert s["upload_auth"] == [None]  # the key never went to the upload host
    assert E2E_KEY not in r.err
    side = sidecar(tmp_path / "work", "cont.json")
    # the emulator read the uploaded clip's length: 3 s in, 9 s new, 12 s billed
    assert side["usage"]["service"]["input_video_duration"] == 3
    assert side["usage"]["service"]["output_video_duration"] == 9
    assert side["usage"]["billed_seconds"] == 12
    # the same clip again, within its validity: not uploaded twice
    r = wv("generate", "--first-clip", str(clip), "-m", "wan2.7-i2v", "-d", "6", "-o",
           "again.mp4", base_url=emu.base_url)
    assert r.code == 0, r.err
    assert emu.stats()["uploads"] == 1


def test_wan27_local_clip_too_short_is_refused_before_sending(emulator, wv,
                                                              tmp_path: Path) -> None:
    emu = emulator()
    clip = tmp_path / "short.mp4"
    clip.write_bytes(mp4(1.2))
    r = wv("generate", "--first-clip", str(clip), "-m", "wan2.7-i2v", base_url=emu.base_url)
    assert r.code == 2 and r.out == ""
    assert "clip is 1.2 s long; it must be 2..10 s" in r.err and r.err.count("\n") == 1
    s = emu.stats()
    assert (s["policies"], s["uploads"], s["submits"]) == (0, 0, 0)


def test_happyhorse(emulator, wv, images, tmp_path: Path) -> None:
    emu = emulator()
    r = wv("generate", str(images["first"]), "-m", "happyhorse-1.0-i2v", "-d", "4", "-r",
           "720P", "-p", "a cat running on the grass", "-o", "horse.mp4",
           base_url=emu.base_url)
    assert r.code == 0, r.err
    side = sidecar(tmp_path / "work", "horse.json")
    assert side["model"] == "happyhorse-1.0-i2v"
    assert side["usage"]["service"] == {"duration": 4, "video_count": 1, "SR": 720,
                                        "input_video_duration": 0, "output_video_duration": 4}


def test_a_video_effect_template(emulator, wv, images, tmp_path: Path) -> None:
    emu = emulator()
    cn = {"WANVID_REGION": "cn"}  # (a --region flag would beat the emulator's base URL)
    r = wv("generate", str(images["first"]), "--template", "flying", "-o", "fx.mp4",
           base_url=emu.base_url, env=cn)
    assert r.code == 0, r.err  # without -m: the first model whose templates name it
    side = sidecar(tmp_path / "work", "fx.json")
    assert side["model"] == "wan2.1-i2v-plus"
    assert side["parameters"]["template"] == "flying"
    assert side["usage"]["service"]["video_ratio"] == "standard"
    # a template the model does not have: wanvid warns (the list is unconfirmed) and the
    # service (here the emulator) refuses it: exit 4, nothing to wait for
    r = wv("submit", str(images["first"]), "--template", "spin", "-m", "wan2.1-i2v-plus",
           base_url=emu.base_url, env=cn)
    assert r.code == 4 and r.out == ""
    assert "the list is unconfirmed, so it is sent anyway" in r.err
    assert "InvalidParameter" in r.err


def test_param_reaches_the_service_and_the_journal(emulator, wv, wv_env, images) -> None:
    from wanvid.journal import Journal

    emu = emulator()
    r = wv("submit", str(images["first"]), "-m", "wan2.6-i2v", "--param", "shot_type=multi",
           "--json", base_url=emu.base_url)
    assert r.code == 0, r.err
    assert r.err.splitlines()[-1] == ("wanvid: warning: --param parameters.shot_type: sent "
                                      "as given; wanvid did not check it")
    tid = envelope_schema.data(r.out, "submit")["task_id"]
    with Journal(Path(wv_env["WANVID_STATE_DIR"]) / "journal.db") as j:
        rec = j.get(tid)
    assert rec is not None and rec.params["shot_type"] == "multi"
    # the emulator checks what wanvid did not: a value the model does not take
    r = wv("submit", str(images["first"]), "-m", "wan2.6-i2v", "--param", "shot_type=triple",
           base_url=emu.base_url)
    assert r.code == 4 and "parameters.shot_type" in r.err


def test_a_task_failure_from_the_fault_switch(emulator, wv, images) -> None:
    emu = emulator(fail_with="DataInspectionFailed")
    r = wv("generate", str(images["first"]), "-p", "x", base_url=emu.base_url)
    assert r.code == 5 and r.out == ""
    assert "DataInspectionFailed" in r.err
    assert "Input or output data may contain inappropriate content." in r.err
    emu = emulator(fail_with="size")
    r = wv("generate", str(images["first"]), "-p", "x", "--json", base_url=emu.base_url)
    assert r.code == 5
    assert "The size is not match" in r.out and "InvalidParameter" in r.out
