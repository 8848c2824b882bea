"""Review leftovers of 2026-12-03 (session #4): --param against the inputs, the checked
parameters and the request's own fields; the service's 404 ModelNotFound; dated snapshots.
Every refusal is one stderr line, exit 2, with nothing sent."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import responses

from tests.conftest import KEY, Result
from tests.fixtures_media import png_bytes

Run = Callable[..., Result]
BASE = "https://dashscope-intl.aliyuncs.com/api/v1"
I2V_URL = BASE + "/services/aigc/video-generation/video-synthesis"
KF2V_URL = BASE + "/services/aigc/image2video/video-synthesis"
CREATED = {"request_id": "r-1", "output": {"task_id": "t-1", "task_status": "PENDING"}}
URL = "https://example.com/cat.png"
MISSING = "/nonexistent/dir/cat.png"  # never read: reading it would fail with "no such file"


def refused(run: Run, args: list[str], command: str = "submit") -> Result:
    with responses.RequestsMock():  # nothing registered: any request fails the test
        r = run([command, *args])
    assert r.code == 2 and r.out == "", r.err
    assert r.err.startswith("wanvid: error: ") and r.err.count("\n") == 1, r.err
    return r


def dry(run: Run, args: list[str]) -> tuple[Result, dict[str, object]]:
    with responses.RequestsMock():
        r = run(["submit", *args, "--dry-run", "--json"])
    assert r.code == 0, r.err
    return r, json.loads(r.out)["data"]


# ---------------------------------------------------------------- 1. --param over an input


@pytest.mark.parametrize(("args", "names"), [
    ([MISSING, "--param", f"input.img_url={URL}"], f"IMAGE ({MISSING})"),
    ([URL, "-m", "wan2.6-i2v", "--audio", "/nonexistent/song.mp3",
      "--param", "input.audio_url=https://example.com/a.mp3"],
     "--audio (/nonexistent/song.mp3)"),
    ([MISSING, "-m", "wan2.2-kf2v-flash", "-l", URL, "--param",
      f"input.first_frame_url={URL}"], f"IMAGE ({MISSING})"),
    ([URL, "-m", "wan2.2-kf2v-flash", "-l", MISSING, "--param",
      f"input.last_frame_url={URL}"], f"--last-frame ({MISSING})"),
    ([MISSING, "-m", "wan2.7-i2v", "-l", "/nonexistent/end.png", "--param",
      'input.media=[{"type": "first_frame", "url": "https://example.com/a.png"}]'],
     f"IMAGE ({MISSING}), --last-frame (/nonexistent/end.png)"),
])
def test_a_param_replacing_a_given_input_is_refused_naming_both(run: Run, args: list[str],
                                                                names: str) -> None:
    r = refused(run, [*args, "--dry-run"])
    key = next(a for a in args if a.startswith("input.")).partition("=")[0]
    assert r.err.startswith(f"wanvid: error: --param {key} replaces {names} in the request "
                            "to "), r.err
    assert "not both" in r.err and "(nothing was sent)" in r.err


def test_generate_refuses_the_same_combination(run: Run) -> None:
    r = refused(run, [MISSING, "--param", f"input.img_url={URL}"], command="generate")
    assert "--param input.img_url replaces IMAGE" in r.err


def test_the_param_alone_is_the_input_and_nothing_local_is_counted(run: Run) -> None:
    r, d = dry(run, ["--param", f"input.img_url={URL}"])
    assert d["body"] == {"model": "wan2.2-i2v-flash", "input": {"img_url": URL},
                         "parameters": {"resolution": "720P"}}
    assert d["body_bytes"] == len(json.dumps(d["body"]).encode())
    assert "uploads" not in d
    assert r.err == ("wanvid: warning: --param input.img_url: sent as given; wanvid did not "
                     "check it\n")
    media = [{"type": "first_frame", "url": URL}]
    _, d = dry(run, ["-m", "wan2.7-i2v", "--param", "input.media=" + json.dumps(media)])
    assert d["body"]["input"] == {"media": media}  # type: ignore[index]
    _, d = dry(run, [URL, "-m", "wan2.2-kf2v-flash", "--param",
                     "input.last_frame_url=https://example.com/end.png"])
    assert d["body"]["input"] == {"first_frame_url": URL,  # type: ignore[index]
                                  "last_frame_url": "https://example.com/end.png"}


def test_the_param_alone_is_sent_and_fingerprinted_without_the_file(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, I2V_URL, json=CREATED)
        r = run(["submit", "--param", f"input.img_url={URL}"])
        assert r.code == 0 and r.out == "t-1\n", r.err
        assert json.loads(rsps.calls[0].request.body)["input"] == {"img_url": URL}


def test_a_batch_row_replacing_its_image_is_an_invalid_line(run: Run, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png_bytes(640, 480))
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"image": "a.png", "param": {"input.img_url": URL}}) + "\n")
    with responses.RequestsMock():
        r = run(["batch", str(jobs), "--dry-run"])
    assert r.code == 2, r.err
    assert "line 1: --param input.img_url replaces IMAGE" in r.err
    assert "nothing was sent" in r.err


# ------------------------------------------------ 2. duration/resolution/seed via --param


@pytest.mark.parametrize(("args", "message"), [
    (["--param", "duration=-5"], "--param duration=-5: wan2.2-i2v-flash makes 5 s videos"),
    (["-m", "wan2.6-i2v", "--param", "duration=16"],
     "--param duration=16: wan2.6-i2v makes 2-15 s videos"),
    (["-m", "wan2.6-i2v", "--param", "duration=5.5"],
     "--param duration=5.5: must be a whole number of seconds (nothing was sent)"),
    (["-m", "wan2.6-i2v", "--param", "duration=true"],
     "--param duration=true: must be a whole number of seconds"),
    (["-m", "wan2.6-i2v", "--param", 'duration="9"'],
     "--param duration=9: must be a whole number of seconds"),
    (["-m", "wan2.6-i2v", "-d", "5", "--param", "duration=9"],
     "--duration 5 and --param duration=9 contradict each other; pass one of them"),
    (["--param", "resolution=4K"], "--param resolution=4K: wan2.2-i2v-flash offers 480P, 720P, "
     "1080P"),
    (["--param", "resolution=720"], "--param resolution=720: must be a resolution tier"),
    (["--param", "seed=-1"], "--param seed=-1: must be between 0 and 2147483647"),
    (["--param", "seed=2147483648"], "--param seed=2147483648: must be between 0 and"),
    (["--param", "seed=1.5"], "--param seed=1.5: must be a whole number"),
    (["--seed", "3", "--param", "seed=4"], "--seed 3 and --param seed=4 contradict"),
])
def test_checked_params_are_refused_like_their_flags(run: Run, args: list[str],
                                                     message: str) -> None:
    r = refused(run, [URL, *args, "--dry-run"])
    assert r.err.startswith(f"wanvid: error: {message}"), r.err


def test_a_checked_param_drives_the_estimate_and_is_not_called_unchecked(run: Run) -> None:
    r, d = dry(run, [URL, "-m", "wan2.6-i2v", "--param", "duration=9", "--param",
                     "resolution=720p", "--param", "seed=7"])
    assert d["billed_seconds"] == 9
    assert d["body"]["parameters"] == {"resolution": "720P",  # type: ignore[index]
                                       "duration": 9, "seed": 7}
    assert r.err == ""  # checked like --duration/--resolution/--seed: no "unchecked" line
    _, d = dry(run, [URL, "-m", "wan2.6-i2v", "-d", "9", "--param", "duration=9"])
    assert d["billed_seconds"] == 9  # the same value twice is no contradiction


# ------------------------------------------------ 3. the request's own fields via --param


@pytest.mark.parametrize(("param", "message"), [
    ("model=wan2.6-i2v", "--param model: the model is the request's top-level field, which "
     "wanvid sets from --model; use --model NAME"),
    ("input={}", "--param input: give one field of it, as input.NAME=VALUE"),
    ("parameters={}", "--param parameters: give one field of it, as parameters.NAME=VALUE"),
    ("prompt=hi", "--param prompt: prompt is an input field; write input.prompt=VALUE"),
    ("img_url=https://example.com/x.png", "--param img_url: img_url is an input field"),
])
def test_a_bare_param_that_is_not_a_parameter_is_refused(run: Run, param: str,
                                                         message: str) -> None:
    r = refused(run, [URL, "--param", param, "--dry-run"])
    assert r.err.startswith(f"wanvid: error: {message}"), r.err


def test_an_explicit_section_is_sent_where_it_says_and_the_warning_names_it(run: Run) -> None:
    r, d = dry(run, [URL, "--param", "parameters.model=x", "--param", "input.model=y",
                     "--param", "style=anime"])
    assert d["body"]["model"] == "wan2.2-i2v-flash"  # type: ignore[index]
    assert d["body"]["parameters"]["model"] == "x"  # type: ignore[index]
    assert d["body"]["input"]["model"] == "y"  # type: ignore[index]
    assert r.err == ("wanvid: warning: --param parameters.model, parameters.style, input.model: "
                     "sent as given; wanvid did not check them\n")


# ------------------------------------------------------------ 4. 404 ModelNotFound


def test_model_not_found_is_exit_4_with_what_to_check(run: Run) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, I2V_URL, status=404, json={
            "request_id": "r-9", "code": "ModelNotFound",
            "message": "The model wan2.6-i2v does not exist."})
        r = run(["submit", URL, "-m", "wan2.6-i2v"])
    assert r.code == 4 and r.out == "", r.err
    assert r.err.count("\n") == 1
    assert ("the service does not offer this model here (404 ModelNotFound: The model "
            "wan2.6-i2v does not exist.); check the name (`wanvid models`) and that the region "
            "you call (--region) offers it") in r.err


def test_model_not_found_on_the_policy_is_not_read_as_no_uploads() -> None:
    from wanvid.errors import RejectedError
    from wanvid.upload import is_not_offered

    e = RejectedError("the service rejected the request (404 ModelNotFound: The model x does "
                      "not exist.)", code="ModelNotFound")
    assert not is_not_offered(e)
    assert is_not_offered(RejectedError("the service rejected the request (404 NotFound: no)",
                                        code="NotFound"))


@pytest.fixture
def emu_url() -> Iterator[str]:
    from wanvid.emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig()) as e:
        yield e.base_url


@pytest.mark.parametrize("name", ["wan9-i2v", "wan2.7-i2v-2026-05-01", "wan2.6-i2v-2099-13-45"])
def test_the_emulator_answers_an_unknown_model_with_404_model_not_found(emu_url: str,
                                                                         name: str) -> None:
    body = {"model": name, "input": {"img_url": URL, "prompt": "x"}, "parameters": {}}
    r = requests.post(emu_url + "/services/aigc/video-generation/video-synthesis", json=body,
                      headers={"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"})
    assert r.status_code == 404 and r.json()["code"] == "ModelNotFound", r.text
    assert r.json()["message"] == f"The model {name} does not exist."


# ------------------------------------------------------------------- 5. dated snapshots


@pytest.mark.parametrize(("name", "message"), [
    ("wan2.6-i2v-2099-13-45", "--model wan2.6-i2v-2099-13-45: 2099-13-45 is not a date (a dated "
     "snapshot is wan2.6-i2v-YYYY-MM-DD)"),
    ("wan2.7-i2v-2026-02-30", "--model wan2.7-i2v-2026-02-30: 2026-02-30 is not a date"),
    ("wan2.7-i2v-2026-05-01", "--model wan2.7-i2v-2026-05-01: not a snapshot wanvid knows; "
     "wan2.7-i2v has wan2.7-i2v-2026-04-25 (or use wan2.7-i2v itself; another snapshot goes in "
     "the model's snapshots list in models.toml"),
])
def test_a_snapshot_must_be_a_real_date_and_a_known_one_where_listed(run: Run, name: str,
                                                                     message: str) -> None:
    r = refused(run, [URL, "-m", name, "--dry-run"])
    assert r.err.startswith(f"wanvid: error: {message}"), r.err


def test_known_and_real_dated_snapshots_resolve() -> None:
    from wanvid.models import find_model

    m = find_model("wan2.7-i2v-2026-04-25")
    assert m is not None and m.name == "wan2.7-i2v"
    m = find_model("wan2.6-i2v-2025-12-16")  # no snapshots listed: any real date
    assert m is not None and m.name == "wan2.6-i2v"
    assert find_model("wan2.6-i2v-2025-12-32") is None
    assert find_model("wan2.7-i2v-2026-04-26") is None


# ------------------------------------------------------------------- 7. minor messages


def test_emulator_models_names_a_directory_as_one(run: Run, tmp_path: Path) -> None:
    r = refused(run, ["--models", str(tmp_path)], command="emulator")
    assert r.err == (f"wanvid: error: --models {tmp_path}: is a directory; give the "
                     "models.toml file in it\n")
    r = refused(run, ["--models", str(tmp_path / "nope.toml")], command="emulator")
    assert r.err.endswith("nope.toml: no such file\n")


def test_fit_on_a_broken_png_names_the_file_and_the_fault(tmp_path: Path) -> None:
    from wanvid.errors import BadInputError
    from wanvid.fit import fit_image

    data = bytearray(png_bytes(640, 480))
    data[40] ^= 0xFF  # inside IDAT: its CRC no longer matches
    path = tmp_path / "broken.png"
    path.write_bytes(bytes(data))
    with pytest.raises(BadInputError) as e:
        fit_image(path, resolution="720P")
    assert e.value.message.startswith(f"{path}: PNG image is damaged or cut short: its pixels "
                                      "cannot be decoded (")
    assert "BytesIO" not in e.value.message and "0x" not in e.value.message
    path.write_bytes(b"\0" * 100)
    with pytest.raises(BadInputError) as e:
        fit_image(path, resolution="720P")
    assert "BytesIO" not in e.value.message and str(path) in e.value.message


def test_fit_decodes_what_the_model_takes_as_it_is(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from wanvid import fit
    from wanvid.errors import BadInputError
    from wanvid.models import ImageLimits, find_model

    path = tmp_path / "big.png"
    Image.new("RGB", (800, 600), (10, 200, 30)).save(path)
    monkeypatch.setattr(fit, "MAX_FULL_DECODE_PIXELS", 800 * 600 - 1)  # stands for 50 MP
    with pytest.raises(BadInputError, match="over the 0 MP --fit decodes at full size"):
        fit.fit_image(path, resolution="720P", limits=ImageLimits(max_px=600))
    r = fit.fit_image(path, resolution="720P", limits=ImageLimits(max_px=800))
    assert (r.orig_width, r.orig_height) == (800, 600)
    m = find_model("wan2.7-i2v")
    assert m is not None and m.image_limits.max_px == 8000
    monkeypatch.undo()
    assert fit.full_decode_limit(m.image_limits) == 64_000_000  # 8000×8000, not refused
    assert fit.full_decode_limit(None) == fit.MAX_FULL_DECODE_PIXELS == 50_000_000
    assert fit.full_decode_limit(ImageLimits(max_px=10**6)) == fit.MAX_DECODE_PIXELS  # bound


def test_a_clip_with_timescale_0_is_named_for_what_it_is(tmp_path: Path) -> None:
    import struct

    from wanvid import media
    from wanvid.errors import BadInputError
    from wanvid.models import find_model

    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    mvhd = box(b"mvhd", b"\0\0\0\0" + struct.pack(">IIII", 0, 0, 0, 3000) + b"\0" * 80)
    tkhd = box(b"tkhd", b"\0\0\0\7" + b"\0" * 72 + struct.pack(">II", 320 << 16, 240 << 16))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(box(b"ftyp", b"isom\0\0\2\0isommp41") + box(b"moov", mvhd + box(
        b"trak", tkhd)) + box(b"mdat", b"\0" * 64))
    m = find_model("wan2.7-i2v")
    assert m is not None
    with pytest.raises(BadInputError) as e:
        media.load_clip(str(clip), flag="--first-clip", limits=m.clip_limits)
    assert "timescale of 0" in e.value.message and "no complete moov" not in e.value.message
    assert media.probe_video(clip.read_bytes()) is None  # the public probe: still just None
