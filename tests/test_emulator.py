"""The local emulator of the Wan video API, driven over real loopback HTTP with ``requests``.

Every emulator runs in-process on port 0 with a frozen clock: time moves only through
``Emulator.advance`` (or the admin route), so nothing here sleeps. Tests that send ``data:``
URIs (and so go through ``wanvid.media.probe_image``) are grouped at the end of the file.
"""

from __future__ import annotations

import base64
import hashlib
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from wanvid.emulator import Emulator, EmulatorConfig, load_fixture, padded_video, task_video
from wanvid.errors import BadInputError
from wanvid.models import I2V_PATH, KF2V_PATH

HTTP_IMG = "https://example.com/first.png"
HTTP_IMG2 = "https://example.com/last.png"
AUTH = {"Authorization": "Bearer sk-emulator-test"}
SUBMIT_HEADERS = {**AUTH, "X-DashScope-Async": "enable", "Content-Type": "application/json"}
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
BEIJING = timezone(timedelta(hours=8))


# ------------------------------------------------------------------------------ helpers


class Api:
    """A started emulator plus a keep-alive session that speaks to it."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.base = emu.base_url
        self.root = self.base[: -len("/api/v1")]
        self.s = requests.Session()

    def submit(self, body: dict[str, Any] | None = None, *, path: str = I2V_PATH,
               headers: dict[str, str] | None = None, data: bytes | None = None,
               **fields: Any) -> requests.Response:
        if data is None:
            payload = body if body is not None else i2v(**fields)
            return self.s.post(self.base + path, json=payload,
                               headers=SUBMIT_HEADERS if headers is None else headers)
        return self.s.post(self.base + path, data=data,
                           headers=SUBMIT_HEADERS if headers is None else headers)

    def new_task(self, body: dict[str, Any] | None = None, *, path: str = I2V_PATH,
                 **fields: Any) -> str:
        r = self.submit(body, path=path, **fields)
        assert r.status_code == 200, r.text
        return str(r.json()["output"]["task_id"])

    def query(self, task_id: str, headers: dict[str, str] | None = None) -> requests.Response:
        return self.s.get(f"{self.base}/tasks/{task_id}", headers=AUTH if headers is None
                          else headers)

    def output(self, task_id: str) -> dict[str, Any]:
        r = self.query(task_id)
        assert r.status_code == 200, r.text
        return dict(r.json()["output"])

    def status(self, task_id: str) -> str:
        return str(self.output(task_id)["task_status"])

    def cancel(self, task_id: str) -> requests.Response:
        return self.s.post(f"{self.base}/tasks/{task_id}/cancel", headers=AUTH)

    def list(self, **params: Any) -> requests.Response:
        return self.s.get(f"{self.base}/tasks", params=params, headers=AUTH)

    def finished_url(self, **fields: Any) -> tuple[str, str]:
        """Submit, run to completion, return (task_id, signed video URL)."""
        tid = self.new_task(**fields)
        self.emu.advance(self.emu.config.pending + self.emu.config.running)
        out = self.output(tid)
        assert out["task_status"] == "SUCCEEDED", out
        return tid, str(out["video_url"])


def i2v(model: str = "wan2.2-i2v-flash", img: str = HTTP_IMG, prompt: str | None = "a cat",
        **params: Any) -> dict[str, Any]:
    inp: dict[str, Any] = {"img_url": img}
    if prompt is not None:
        inp["prompt"] = prompt
    return {"model": model, "input": inp, "parameters": params}


def kf2v(model: str = "wan2.2-kf2v-flash", first: str = HTTP_IMG, last: str = HTTP_IMG2,
         **params: Any) -> dict[str, Any]:
    return {"model": model, "input": {"first_frame_url": first, "last_frame_url": last,
                                      "prompt": "a monster looks up"}, "parameters": params}


def png(width: int, height: int, *, alpha: bool = False) -> bytes:
    """A valid RGB (or RGBA) PNG made by hand."""
    channels, colour = (4, 6) if alpha else (3, 2)
    row = b"\x00" + b"\x5a" * (width * channels)
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def bmp(width: int, height: int) -> bytes:
    """A valid 24-bit BMP made by hand."""
    stride = (width * 3 + 3) & ~3
    pixels = b"\x40" * (stride * height)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835,
                       0, 0)
    header = b"BM" + struct.pack("<IHHI", 14 + 40 + len(pixels), 0, 0, 14 + 40)
    return header + info + pixels


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def parse_time(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=BEIJING).timestamp()


def raw_get(url: str, extra: str = "") -> tuple[int, dict[str, str], bytes]:
    """GET over a bare socket, reading until the server closes: sees a cut body as it is."""
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n{extra}"
                     "Connection: close\r\n\r\n".encode())
        buf = bytearray()
        while chunk := sock.recv(65536):
            buf += chunk
    head, _, body = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in
               (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def mp4_boxes(data: bytes) -> list[tuple[bytes, int]]:
    """Top-level (type, size) of an MP4, following 32- and 64-bit box sizes."""
    boxes, pos = [], 0
    while pos < len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
        assert size >= 8, (kind, size)
        boxes.append((kind, size))
        pos += size
    assert pos == len(data)
    return boxes


def error_of(r: requests.Response) -> tuple[int, str]:
    body = r.json()
    assert set(body) == {"request_id", "code", "message"}, body
    uuid.UUID(body["request_id"])
    return r.status_code, body["code"]


def oss_code(r: requests.Response) -> str:
    assert r.headers["Content-Type"] == "application/xml"
    m = re.search(r"<Code>([^<]+)</Code>", r.text)
    assert m, r.text
    return m.group(1)


@pytest.fixture
def make() -> Iterator[Callable[..., Api]]:
    """Start emulators with a frozen clock (time moves only via advance)."""
    started: list[Emulator] = []

    def _make(**overrides: Any) -> Api:
        config = EmulatorConfig(clock=lambda: 5000.0, **overrides)
        emu = Emulator(config)
        emu.start()
        started.append(emu)
        return Api(emu)

    yield _make
    for emu in started:
        emu.stop()


@pytest.fixture
def api(make: Callable[..., Api]) -> Api:
    return make()


# ----------------------------------------------------------------------------- fixture


def test_fixture_is_a_small_h264_mp4() -> None:
    data = load_fixture()
    assert len(data) < 60 * 1024
    boxes = [kind for kind, _ in mp4_boxes(data)]
    assert boxes[0] == b"ftyp"
    assert boxes.index(b"moov") < boxes.index(b"mdat")  # +faststart
    assert b"avc1" in data and b"avcC" in data  # H.264 sample entry


def test_padded_video_appends_one_free_box() -> None:
    fixture = load_fixture()
    out = padded_video(fixture, 100_000)
    assert len(out) == 100_000 and out[: len(fixture)] == fixture
    assert mp4_boxes(bytes(out))[-1] == (b"free", 100_000 - len(fixture))
    assert padded_video(fixture, len(fixture) + 7) == fixture  # no room for a box header


# ------------------------------------------------------------------------------ submit


def test_submit_i2v_answers_pending_task(api: Api) -> None:
    r = api.submit()
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"request_id", "output"}
    assert set(body["output"]) == {"task_id", "task_status"}
    assert body["output"]["task_status"] == "PENDING"
    assert uuid.UUID(body["output"]["task_id"]).version == 4
    uuid.UUID(body["request_id"])
    assert api.status(body["output"]["task_id"]) == "PENDING"


def test_submit_kf2v_on_its_endpoint(api: Api) -> None:
    tid = api.new_task(kf2v(), path=KF2V_PATH)
    api.emu.advance(4)
    out = api.output(tid)
    assert out["task_status"] == "SUCCEEDED"
    assert api.query(tid).json()["usage"] == {"duration": 5, "video_count": 1, "SR": 720}


def test_submit_accepts_aliases_lowercase_resolution_and_limits(api: Api) -> None:
    assert api.submit(i2v("wanx2.1-i2v-turbo", resolution="480p", duration=3)).status_code == 200
    assert api.submit(i2v("wan2.5-i2v-preview", duration=10, audio=True,
                          seed=2147483647)).status_code == 200
    assert api.submit(i2v(seed=0, prompt_extend=False, watermark=True)).status_code == 200
    assert api.submit(i2v(prompt=None)).status_code == 200  # the prompt is optional
    wan25 = i2v("wan2.5-i2v-preview")
    wan25["input"]["audio_url"] = "https://example.com/rap.mp3"
    assert api.submit(wan25).status_code == 200
    assert api.submit(kf2v("wanx2.1-kf2v-plus"), path=KF2V_PATH).status_code == 200


def _with_input(**changes: Any) -> dict[str, Any]:
    body = i2v()
    for k, v in changes.items():
        if v is None:
            del body["input"][k]
        else:
            body["input"][k] = v
    return body


BAD_SUBMITS: list[tuple[str, dict[str, Any], str, int, str]] = [
    # (id, body, endpoint, status, code)
    ("unknown model", i2v("wan9-i2v-ultra"), I2V_PATH, 404, "ModelNotFound"),
    ("missing model", {"input": {"img_url": HTTP_IMG}}, I2V_PATH, 400, "InvalidParameter"),
    ("kf2v model on i2v route", kf2v(), I2V_PATH, 400, "InvalidParameter"),
    ("i2v model on kf2v route", i2v(), KF2V_PATH, 400, "InvalidParameter"),
    ("missing input", {"model": "wan2.2-i2v-flash"}, I2V_PATH, 400, "InvalidParameter"),
    ("missing img_url", _with_input(img_url=None), I2V_PATH, 400, "InvalidParameter"),
    ("empty img_url", _with_input(img_url=""), I2V_PATH, 400, "InvalidParameter"),
    ("missing last frame", {"model": "wan2.2-kf2v-flash",
                            "input": {"first_frame_url": HTTP_IMG}}, KF2V_PATH, 400,
     "InvalidParameter"),
    ("missing first frame", {"model": "wan2.2-kf2v-flash",
                             "input": {"last_frame_url": HTTP_IMG}}, KF2V_PATH, 400,
     "InvalidParameter"),
    ("file url", _with_input(img_url="file:///tmp/cat.png"), I2V_PATH, 400, "InvalidParameter"),
    ("prompt not a string", _with_input(prompt=42), I2V_PATH, 400, "InvalidParameter"),
    ("resolution not offered", i2v("wan2.2-i2v-plus", resolution="720P"), I2V_PATH, 400,
     "InvalidParameter"),
    ("resolution not a tier", i2v(resolution="4K"), I2V_PATH, 400, "InvalidParameter"),
    ("resolution not a string", i2v(resolution=720), I2V_PATH, 400, "InvalidParameter"),
    ("duration not offered", i2v(duration=10), I2V_PATH, 400, "InvalidParameter"),
    ("duration as string", i2v("wan2.5-i2v-preview", duration="10"), I2V_PATH, 400,
     "InvalidParameter"),
    ("kf2v duration", kf2v(duration=10), KF2V_PATH, 400, "InvalidParameter"),
    ("audio on silent model", i2v(audio=True), I2V_PATH, 400, "InvalidParameter"),
    ("audio false on silent model", i2v(audio=False), I2V_PATH, 400, "InvalidParameter"),
    ("audio_url on silent model", _with_input(audio_url="https://example.com/a.mp3"), I2V_PATH,
     400, "InvalidParameter"),
    ("audio not a bool", i2v("wan2.5-i2v-preview", audio="yes"), I2V_PATH, 400,
     "InvalidParameter"),
    ("prompt_extend not a bool", i2v(prompt_extend="true"), I2V_PATH, 400, "InvalidParameter"),
    ("negative seed", i2v(seed=-1), I2V_PATH, 400, "InvalidParameter"),
    ("seed too big", i2v(seed=2147483648), I2V_PATH, 400, "InvalidParameter"),
    ("seed as string", i2v(seed="5"), I2V_PATH, 400, "InvalidParameter"),
    ("seed as float", i2v(seed=1.5), I2V_PATH, 400, "InvalidParameter"),
    ("seed as bool", i2v(seed=True), I2V_PATH, 400, "InvalidParameter"),
    ("parameters not an object", {**i2v(), "parameters": [1]}, I2V_PATH, 400,
     "InvalidParameter"),
]


@pytest.mark.parametrize(("body", "path", "status", "code"),
                         [case[1:] for case in BAD_SUBMITS], ids=[c[0] for c in BAD_SUBMITS])
def test_submit_validation(api: Api, body: dict[str, Any], path: str, status: int,
                           code: str) -> None:
    r = api.submit(body, path=path)
    assert error_of(r) == (status, code)
    assert api.emu.stats.submits == 0 and api.emu.stats.rejected == 1
    assert api.list().json()["total"] == 0  # nothing was created


def test_submit_error_messages_follow_the_service(api: Api) -> None:
    assert api.submit(kf2v()).json()["message"] == "url error, please check url!"
    assert api.submit(i2v(), path=KF2V_PATH).json()["message"] == "url error, please check url!"
    r = api.submit(i2v("nope"))
    assert error_of(r) == (404, "ModelNotFound")  # the notes' error table, section 6
    assert r.json()["message"] == "The model nope does not exist."
    r = api.submit(headers={**AUTH, "Content-Type": "application/json"})
    assert error_of(r) == (403, "AccessDenied")
    assert r.json()["message"] == "current user api does not support synchronous calls"
    r = api.submit(headers={**SUBMIT_HEADERS, "X-DashScope-Async": "disable"})
    assert error_of(r) == (403, "AccessDenied")


def test_bad_json_is_invalid_parameter(api: Api) -> None:
    assert error_of(api.submit(data=b'{"model": ')) == (400, "InvalidParameter")
    assert error_of(api.submit(data=b"[1, 2]")) == (400, "InvalidParameter")
    assert error_of(api.submit(data=b"\xff\xfe")) == (400, "InvalidParameter")


@pytest.mark.parametrize("auth", [None, "", "Bearer", "Bearer   ", "Basic c2stMQ==", "sk-1"])
def test_api_key_required_everywhere(api: Api, auth: str | None) -> None:
    headers = {} if auth is None else {"Authorization": auth}
    r = api.submit(headers={**headers, "X-DashScope-Async": "enable"})
    assert error_of(r) == (401, "InvalidApiKey")
    assert r.json()["message"] == "Invalid API-key provided."
    assert error_of(api.query(str(uuid.uuid4()), headers=headers)) == (401, "InvalidApiKey")
    assert error_of(api.s.get(api.base + "/tasks", headers=headers)) == (401, "InvalidApiKey")
    assert error_of(api.s.post(f"{api.base}/tasks/x/cancel", headers=headers)) == (
        401, "InvalidApiKey")


def test_configured_key_is_the_only_one_accepted(make: Callable[..., Api]) -> None:
    api = make(key="sk-right")
    assert error_of(api.submit()) == (401, "InvalidApiKey")
    ok = {**SUBMIT_HEADERS, "Authorization": "Bearer sk-right"}
    assert api.submit(headers=ok).status_code == 200
    assert api.submit(headers={**ok, "Authorization": "Bearer sk-right2"}).status_code == 401


def test_long_prompt_is_truncated_not_refused(api: Api) -> None:
    long_text = "".join(chr(ord("a") + i % 26) for i in range(2500))
    t22 = api.new_task(i2v(prompt=long_text))
    t25 = api.new_task(i2v("wan2.5-i2v-preview", prompt=long_text))
    api.emu.advance(4)
    assert api.output(t22)["orig_prompt"] == long_text[:800]
    assert api.output(t25)["orig_prompt"] == long_text[:1500]


# --------------------------------------------------------------------------- lifecycle


def test_lifecycle_pending_running_succeeded(api: Api) -> None:
    tid = api.new_task(prompt="a cat runs")
    out = api.output(tid)
    assert out["task_status"] == "PENDING" and TIME_RE.match(out["submit_time"])
    assert "scheduled_time" not in out and "video_url" not in out
    api.emu.advance(0.5)
    assert api.status(tid) == "PENDING"
    api.emu.advance(0.5)
    out = api.output(tid)
    assert out["task_status"] == "RUNNING" and TIME_RE.match(out["scheduled_time"])
    assert "end_time" not in out and "video_url" not in out
    api.emu.advance(2.5)
    assert api.status(tid) == "RUNNING"
    api.emu.advance(0.5)
    r = api.query(tid)
    out = r.json()["output"]
    assert out["task_status"] == "SUCCEEDED"
    assert out["orig_prompt"] == "a cat runs"
    assert out["actual_prompt"].startswith("a cat runs") and len(out["actual_prompt"]) > 20
    assert out["video_url"].startswith(api.emu.storage_url + f"/api/v1/files/{tid}.mp4?Expires=")
    assert api.emu.storage_url != api.root  # the storage is not the API's port
    assert requests.get(api.root + urlsplit(out["video_url"]).path).status_code == 404
    submitted, scheduled, ended = (parse_time(out[k]) for k in
                                   ("submit_time", "scheduled_time", "end_time"))
    assert scheduled - submitted == pytest.approx(1.0, abs=0.002)
    assert ended - scheduled == pytest.approx(3.0, abs=0.002)
    assert abs(submitted - time.time()) < 60  # wall time, in the service's zone (UTC+8)
    assert r.json()["usage"] == {"duration": 5, "video_count": 1, "SR": 720}


@pytest.mark.parametrize(("body", "usage"), [
    (i2v("wan2.1-i2v-turbo", resolution="480P", duration=3),
     {"video_duration": 3, "video_ratio": "standard", "video_count": 1}),
    (i2v("wanx2.1-i2v-plus"), {"video_duration": 5, "video_ratio": "standard", "video_count": 1}),
    (i2v("wan2.5-i2v-preview", duration=10), {"duration": 10, "video_count": 1, "SR": 1080}),
    (i2v("wan2.2-i2v-plus", resolution="480p"), {"duration": 5, "video_count": 1, "SR": 480}),
])
def test_usage_is_shaped_per_model(api: Api, body: dict[str, Any],
                                   usage: dict[str, Any]) -> None:
    tid = api.new_task(body)
    api.emu.advance(4)
    assert api.query(tid).json()["usage"] == usage


def test_actual_prompt_only_when_prompt_extend(api: Api) -> None:
    off = api.new_task(i2v(prompt_extend=False))
    on = api.new_task(i2v())
    api.emu.advance(4)
    assert "actual_prompt" not in api.output(off)
    assert "actual_prompt" in api.output(on)


def test_zero_durations_finish_immediately(make: Callable[..., Api]) -> None:
    api = make(pending=0, running=0)
    assert api.status(api.new_task()) == "SUCCEEDED"


def test_unknown_and_expired_tasks(api: Api) -> None:
    ghost = str(uuid.uuid4())
    r = api.query(ghost)
    assert r.status_code == 200
    assert r.json()["output"] == {"task_id": ghost, "task_status": "UNKNOWN"}
    tid = api.new_task()
    api.emu.advance(86399)
    assert api.status(tid) == "SUCCEEDED"
    api.emu.advance(1)
    assert api.output(tid) == {"task_id": tid, "task_status": "UNKNOWN"}


def test_fail_rate_is_deterministic(make: Callable[..., Api]) -> None:
    api = make(fail_rate=0.5)
    tids = [api.new_task() for _ in range(4)]
    api.emu.advance(4)
    outs = [api.query(t).json() for t in tids]
    assert [o["output"]["task_status"] for o in outs] == [
        "SUCCEEDED", "FAILED", "SUCCEEDED", "FAILED"]
    failed = outs[1]
    assert failed["output"]["code"] == "InternalError.Algo" and failed["output"]["message"]
    assert "video_url" not in failed["output"] and "usage" not in failed
    third = make(fail_rate=1 / 3)
    tids = [third.new_task() for _ in range(6)]
    third.emu.advance(4)
    assert [third.status(t) for t in tids].count("FAILED") == 2
    assert third.status(tids[2]) == third.status(tids[5]) == "FAILED"


def test_fail_rate_zero_and_one(make: Callable[..., Api]) -> None:
    always, never = make(fail_rate=1.0), make()
    a = [always.new_task() for _ in range(3)]
    n = [never.new_task() for _ in range(3)]
    always.emu.advance(4)
    never.emu.advance(4)
    assert {always.status(t) for t in a} == {"FAILED"}
    assert {never.status(t) for t in n} == {"SUCCEEDED"}


# ------------------------------------------------------------------------------ cancel


def test_cancel_pending_task(api: Api) -> None:
    tid = api.new_task()
    r = api.cancel(tid)
    assert r.status_code == 200 and set(r.json()) == {"request_id"}
    out = api.output(tid)
    assert out["task_status"] == "CANCELED" and "end_time" in out
    api.emu.advance(10)
    assert api.status(tid) == "CANCELED"  # never resumes
    assert api.emu.stats.cancels == 1


def test_cancel_refused_unless_pending(api: Api) -> None:
    tid = api.new_task()
    api.emu.advance(1)
    r = api.cancel(tid)
    assert error_of(r) == (400, "UnsupportedOperation")
    assert "PENDING" in r.json()["message"]
    api.emu.advance(3)
    assert api.status(tid) == "SUCCEEDED"
    assert error_of(api.cancel(tid)) == (400, "UnsupportedOperation")
    assert error_of(api.cancel(str(uuid.uuid4()))) == (400, "UnsupportedOperation")


# -------------------------------------------------------------------------------- list


def test_list_tasks_filters_and_pages(api: Api) -> None:
    first = api.new_task()
    api.emu.advance(10)
    second = api.new_task(i2v("wan2.1-i2v-turbo"))
    third = api.new_task()
    body = api.list().json()
    assert set(body) == {"request_id", "data", "total", "total_page", "page_no", "page_size"}
    assert body["total"] == 3 and body["page_no"] == 1 and body["page_size"] == 10
    assert [row["task_id"] for row in body["data"]] == [third, second, first]  # newest first
    row = body["data"][2]
    assert row["task_status"] == "SUCCEEDED" and row["model_name"] == "wan2.2-i2v-flash"
    assert TIME_RE.match(row["submit_time"])

    flash = api.list(model_name="wan2.2-i2v-flash").json()
    assert [r["task_id"] for r in flash["data"]] == [third, first]
    done = api.list(status="SUCCEEDED").json()
    assert [r["task_id"] for r in done["data"]] == [first]
    assert api.list(status="PENDING").json()["total"] == 2

    page = api.list(page_size=2, page_no=2).json()
    assert page["total"] == 3 and page["total_page"] == 2 and page["page_no"] == 2
    assert [r["task_id"] for r in page["data"]] == [first]

    t0 = parse_time(row["submit_time"])
    fmt = "%Y-%m-%d %H:%M:%S"
    later = datetime.fromtimestamp(t0 + 5, BEIJING).strftime(fmt)
    early = datetime.fromtimestamp(t0 + 1, BEIJING).strftime(fmt)
    assert [r["task_id"] for r in api.list(start_time=later).json()["data"]] == [third, second]
    assert [r["task_id"] for r in api.list(end_time=early).json()["data"]] == [first]


def test_list_takes_the_documented_window_format_and_rows_carry_the_documented_fields(
        api: Api) -> None:
    first = api.new_task()
    api.emu.advance(10)
    second = api.new_task(i2v("wan2.1-i2v-turbo"))
    rows = api.list().json()["data"]
    t0 = parse_time(rows[1]["submit_time"])
    assert abs(rows[1]["gmt_create"] - t0 * 1000) < 1  # epoch ms, as §5 documents
    assert rows[1]["status"] == rows[1]["task_status"] == "SUCCEEDED"

    def bj(epoch: float) -> str:  # YYYYMMDDhhmmss, Beijing time
        return datetime.fromtimestamp(epoch, BEIJING).strftime("%Y%m%d%H%M%S")

    window = {"start_time": bj(t0 + 5), "end_time": bj(t0 + 20)}
    assert [r["task_id"] for r in api.list(**window).json()["data"]] == [second]
    assert [r["task_id"] for r in api.list(end_time=bj(t0 + 1)).json()["data"]] == [first]
    both = {"start_time": bj(t0 - 1), "end_time": bj(t0 + 20)}
    assert api.list(**both, model_name="wan2.1-i2v-turbo").json()["data"][0]["task_id"] == \
        second
    assert api.list(**both, status="PENDING").json()["total"] == 1
    assert api.list(**both, status="PENDING", model_name="wan2.2-i2v-flash").json()[
        "total"] == 0


def test_orig_prompt_only_once_finished_failed_too(make: Callable[..., Api]) -> None:
    api = make(fail_rate=1.0)
    tid = api.new_task(prompt="a cat blinks")
    assert "orig_prompt" not in api.output(tid)
    api.emu.advance(api.emu.config.pending)
    assert "orig_prompt" not in api.output(tid)  # RUNNING
    api.emu.advance(api.emu.config.running)
    out = api.output(tid)
    assert out["task_status"] == "FAILED" and out["orig_prompt"] == "a cat blinks"


def test_submit_latency_creates_the_task_before_answering(make: Callable[..., Api]) -> None:
    seen: list[tuple[float, list[str]]] = []
    api: Api | None = None

    def sleep(seconds: float) -> None:  # runs between creating the task and answering
        assert api is not None
        seen.append((seconds, [t["task_id"] for t in
                               requests.get(api.root + "/_emulator/tasks").json()["tasks"]]))

    api = make(submit_latency=0.7, sleep=sleep)
    tid = api.new_task()
    assert seen == [(0.7, [tid])]  # listed while the client still waits for its answer
    assert [r["task_id"] for r in api.list().json()["data"]] == [tid]


def test_slow_headers_trickle_a_download_until_turned_off(make: Callable[..., Api]) -> None:
    import socket

    api = make(slow_headers=0.2)
    tid, url = api.finished_url()
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\n\r\n".encode())
        first = sock.recv(65536)
        assert first and b"HTTP/1.1 200 OK".startswith(first)  # a byte or two, not the head
        r = requests.post(api.root + "/_emulator/config", params={"slow_headers": "0"})
        assert r.status_code == 200 and r.json()["slow_headers"] == 0.0
        data = first
        while chunk := sock.recv(1 << 20):  # the rest at once, then the whole video
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == task_video(load_fixture(), tid)
    assert api.emu.stats.downloads == 1
    r = requests.post(api.root + "/_emulator/config", params={"slow_headers": "-1"})
    assert r.status_code == 400 and "slow_headers" in r.text


def test_submit_latency_changes_at_run_time(make: Callable[..., Api]) -> None:
    slept: list[float] = []
    api = make(sleep=slept.append)
    api.new_task()
    assert slept == []  # 0: no latency
    r = requests.post(api.root + "/_emulator/config", params={"submit_latency": "0.25"})
    assert r.status_code == 200 and r.json()["submit_latency"] == 0.25
    assert requests.get(api.root + "/_emulator/config").json()["submit_latency"] == 0.25
    api.new_task()
    assert slept == [0.25]
    for bad in ("", "-1", "nan", "x"):
        r = requests.post(api.root + "/_emulator/config", params={"submit_latency": bad})
        assert r.status_code == 400
    assert requests.put(api.root + "/_emulator/config").status_code == 405
    rejected = api.submit(i2v(model="nope"))
    assert rejected.status_code == 404 and slept == [0.25]  # only created tasks wait


def test_admin_tasks_lists_every_task_with_its_prompt(api: Api) -> None:
    a = api.new_task(prompt="one")
    b = api.new_task(prompt=None)
    rows = requests.get(api.root + "/_emulator/tasks").json()["tasks"]
    assert [(r["task_id"], r["seq"], r["prompt"]) for r in rows] == [(a, 1, "one"),
                                                                     (b, 2, None)]
    assert rows[0]["status"] == "PENDING" and rows[0]["model_name"] == "wan2.2-i2v-flash"


def test_list_rejects_bad_parameters(api: Api) -> None:
    assert error_of(api.list(start_time="yesterday")) == (400, "InvalidParameter")
    assert error_of(api.list(page_size=101)) == (400, "InvalidParameter")
    assert error_of(api.list(page_no=0)) == (400, "InvalidParameter")
    assert error_of(api.list(page_no="x")) == (400, "InvalidParameter")


def test_list_forgets_tasks_after_a_day(api: Api) -> None:
    api.new_task()
    api.emu.advance(86400)
    assert api.list().json()["total"] == 0


# ---------------------------------------------------------------------------- download


def test_download_full_and_ranges(api: Api) -> None:
    tid, url = api.finished_url()
    fixture = task_video(load_fixture(), tid)
    size = len(fixture)
    assert urlsplit(url).netloc == urlsplit(api.emu.storage_url).netloc  # the storage port
    q = parse_qs(urlsplit(url).query)
    assert set(q) == {"Expires", "OSSAccessKeyId", "Signature"}

    r = requests.get(url)
    assert r.status_code == 200 and r.content == fixture
    assert r.headers["Content-Type"] == "video/mp4"
    assert r.headers["Content-Length"] == str(size)
    assert r.headers["Accept-Ranges"] == "bytes"

    r = requests.get(url, headers={"Range": "bytes=100-"})
    assert r.status_code == 206 and r.content == fixture[100:]
    assert r.headers["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    assert r.headers["Content-Length"] == str(size - 100)

    r = requests.get(url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == fixture[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{size}"

    r = requests.get(url, headers={"Range": f"bytes={size - 5}-{size + 100}"})
    assert r.status_code == 206 and r.content == fixture[-5:]

    r = requests.get(url, headers={"Range": "bytes=-7"})
    assert r.status_code == 206 and r.content == fixture[-7:]

    for start in (size, size + 1000):
        r = requests.get(url, headers={"Range": f"bytes={start}-"})
        assert r.status_code == 416
        assert r.headers["Content-Range"] == f"bytes */{size}"

    r = requests.head(url)
    assert r.status_code == 200 and r.headers["Content-Length"] == str(size) and not r.content


def test_video_url_expires(make: Callable[..., Api]) -> None:
    api = make(url_ttl=100)
    _, url = api.finished_url()
    expires = int(parse_qs(urlsplit(url).query)["Expires"][0])
    assert abs(expires - (time.time() + 100)) < 60  # epoch: wall time + url_ttl
    api.emu.advance(98)
    assert requests.get(url).status_code == 200
    api.emu.advance(3)
    r = requests.get(url)
    assert r.status_code == 403 and oss_code(r) == "AccessDenied"
    assert "<Message>Request has expired.</Message>" in r.text


def test_expires_follows_the_advanced_clock(api: Api) -> None:
    _, url1 = api.finished_url()
    api.emu.advance(1000)
    _, url2 = api.finished_url()
    e1, e2 = (int(parse_qs(urlsplit(u).query)["Expires"][0]) for u in (url1, url2))
    assert e2 - e1 == pytest.approx(1004, abs=1)


def test_bad_or_missing_signature_is_refused(api: Api) -> None:
    tid, url = api.finished_url()
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"

    r = requests.get(base, params={**q, "Signature": "AAAA" + q["Signature"][4:]})
    assert r.status_code == 403 and oss_code(r) == "SignatureDoesNotMatch"
    r = requests.get(base, params={**q, "Expires": str(int(q["Expires"]) + 3600)})
    assert r.status_code == 403 and oss_code(r) == "SignatureDoesNotMatch"
    other = api.new_task()  # a valid signature is bound to its own object
    r = requests.get(base.replace(tid, other), params=q)
    assert r.status_code == 403 and oss_code(r) == "SignatureDoesNotMatch"
    r = requests.get(base)
    assert r.status_code == 403 and oss_code(r) == "AccessDenied"
    assert requests.get(url).status_code == 200


def test_purged_video_is_no_such_key(make: Callable[..., Api]) -> None:
    api = make(url_ttl=3 * 86400)
    _, url = api.finished_url()
    api.emu.advance(86400)
    r = requests.get(url)
    assert r.status_code == 404 and oss_code(r) == "NoSuchKey"


def test_download_needs_no_key_and_records_what_it_saw(api: Api) -> None:
    _, url = api.finished_url()
    assert requests.get(url).status_code == 200
    assert requests.get(url, headers={"Range": "bytes=0-0"}).status_code == 206
    assert api.emu.stats.download_auth == [None, None]
    assert requests.get(url, headers=AUTH).status_code == 200  # a leaky client is recorded
    assert api.emu.stats.download_auth == [None, None, AUTH["Authorization"]]
    assert api.emu.stats.downloads == 3


def test_each_task_has_its_own_video_and_etag(api: Api) -> None:
    """Two tasks' videos differ (a client that saved one under the other's name would be
    caught), each is the fixture and one top-level free box naming the task, fetched twice
    it is the same bytes, and its ETag is the MD5 of those bytes."""
    fixture = load_fixture()
    got = {}
    for _ in range(2):
        tid, url = api.finished_url()
        r = requests.get(url)
        body = r.content
        assert body == requests.get(url).content
        assert body.startswith(fixture)
        box = body[len(fixture):]
        assert int.from_bytes(box[:4], "big") == len(box) and box[4:8] == b"free"
        assert box[8:].decode() == f"wanvid-emulator task {tid}"
        assert r.headers["ETag"] == '"' + hashlib.md5(body).hexdigest().upper() + '"'
        got[tid] = body
    assert len(set(got.values())) == 2


def test_drop_download_cuts_first_attempt_then_resume_completes(
        make: Callable[..., Api]) -> None:
    api = make(drop_download_at=0.5)
    tid, url = api.finished_url()
    fixture = task_video(load_fixture(), tid)
    size, cut = len(fixture), int(len(fixture) * 0.5)

    status, headers, body = raw_get(url)
    assert status == 200 and headers["content-length"] == str(size)
    assert len(body) == cut and body == fixture[:cut]  # cut before the full length

    r = requests.get(url, headers={"Range": f"bytes={len(body)}-"})
    assert r.status_code == 206 and body + r.content == fixture

    r = requests.get(url)  # the same (task, start) is never cut twice
    assert r.status_code == 200 and r.content == fixture
    assert api.emu.stats.downloads_cut == 1

    _, url2 = api.finished_url()  # each task's first attempt is cut
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(url2).content  # noqa: B018 - reading the body is the point
    assert api.emu.stats.downloads_cut == 2
    assert api.emu.stats.bytes_served == 2 * cut + (size - cut) + size


def test_every_video_answer_carries_the_whole_objects_crc64(make: Callable[..., Api]) -> None:
    """As OSS: ``x-oss-hash-crc64ecma`` is the CRC-64/XZ of the whole object, in decimal,
    on a 200 and on a 206 alike (a padded, shared video too)."""
    from wanvid.crc64 import crc64_python

    for api in (make(), make(video_mb=1)):
        _, url = api.finished_url()
        whole = requests.get(url)
        part = requests.get(url, headers={"Range": "bytes=100-"})
        want = str(crc64_python(whole.content))
        assert whole.headers["x-oss-hash-crc64ecma"] == want
        assert part.status_code == 206 and part.headers["x-oss-hash-crc64ecma"] == want
        assert part.headers["ETag"] == whole.headers["ETag"]


def test_no_checksums_and_corrupt_ranges_faults(make: Callable[..., Api]) -> None:
    api = make(storage_checksums=False, corrupt_ranges=True)
    tid, url = api.finished_url()
    video = task_video(load_fixture(), tid)
    whole = requests.get(url)
    assert whole.content == video  # a whole body is never corrupted
    assert "ETag" not in whole.headers and "x-oss-hash-crc64ecma" not in whole.headers
    part = requests.get(url, headers={"Range": "bytes=100-"})
    assert part.status_code == 206 and part.headers["Content-Range"].startswith("bytes 100-")
    assert part.content == bytes(255 - b for b in video[100:])
    api.emu.configure({"storage_checksums": ["true"], "corrupt_ranges": ["false"]})
    part = requests.get(url, headers={"Range": "bytes=100-"})
    assert part.content == video[100:] and "x-oss-hash-crc64ecma" in part.headers
    with pytest.raises(ValueError, match="corrupt_ranges must be true or false"):
        api.emu.configure({"corrupt_ranges": ["maybe"]})


@pytest.mark.parametrize("checksums", [True, False], ids=["crc", "no-checksums"])
def test_a_cut_download_resumed_with_wrong_bytes_is_saved_right(
        checksums: bool, make: Callable[..., Api], tmp_path: Path) -> None:
    """The reliability table's "a resume answered with wrong bytes": cut at 50 %, every
    206 carrying the wrong bytes. With the CRC the spliced file fails verification and is
    fetched again from byte 0; without any checksum no Range is ever sent."""
    from wanvid.download import download

    api = make(drop_download_at=0.5, corrupt_ranges=True, storage_checksums=checksums)
    tid, url = api.finished_url()
    video = task_video(load_fixture(), tid)
    result = download(url, tmp_path / "v.mp4", sleep=lambda s: None)
    assert (tmp_path / "v.mp4").read_bytes() == video
    assert result.sha256 == hashlib.sha256(video).hexdigest()
    assert api.emu.stats.downloads == (3 if checksums else 2)  # cut, (bad 206,) whole


def test_video_mb_pads_a_valid_mp4(make: Callable[..., Api]) -> None:
    api = make(video_mb=1)
    fixture = load_fixture()
    _, url = api.finished_url()
    a = requests.get(url).content
    b = requests.get(url).content
    assert len(a) == 1 << 20 and a == b
    assert a[4:8] == b"ftyp" and a.startswith(fixture)
    boxes = mp4_boxes(a)
    assert boxes[-1] == (b"free", (1 << 20) - len(fixture))
    tail = requests.get(url, headers={"Range": f"bytes={(1 << 20) - 10}-"})
    assert tail.status_code == 206 and tail.content == b"\x00" * 10


# ----------------------------------------------------------------------- fault injection


def test_throttle_every_nth_api_request(make: Callable[..., Api]) -> None:
    api = make(throttle_every=3)
    tid = api.new_task()  # 1
    assert api.query(tid).status_code == 200  # 2
    r = api.query(tid)  # 3
    assert error_of(r) == (429, "Throttling.RateQuota")
    assert r.json()["message"] == "Requests rate limit exceeded, please try again later."
    assert "Retry-After" not in r.headers
    assert api.submit().status_code == 200  # 4
    assert api.list().status_code == 200  # 5
    assert error_of(api.submit()) == (429, "Throttling.RateQuota")  # 6: no task made
    assert api.emu.stats.throttled == 2 and api.emu.stats.submits == 2
    assert api.list().json()["total"] == 2  # 7


def test_error_every_nth_task_query(make: Callable[..., Api]) -> None:
    api = make(error_every=2)
    tid = api.new_task()
    codes = [api.query(tid).status_code for _ in range(5)]
    assert codes == [200, 500, 200, 500, 200]
    r = api.query(tid)  # the 6th query
    assert error_of(r) == (500, "InternalError")
    assert api.submit().status_code == 200  # submits are not affected
    assert api.emu.stats.errors == 3 and api.emu.stats.queries == 3


# ------------------------------------------------------------------- stats and admin


def test_stats_counters(api: Api) -> None:
    tids = [api.new_task() for _ in range(3)]
    assert api.emu.stats.max_in_flight == 3
    api.emu.advance(4)
    api.new_task()  # the first three have finished: in flight is 1 now
    assert api.emu.stats.max_in_flight == 3
    urls = [api.output(t)["video_url"] for t in tids]
    for u in urls[:2]:
        requests.get(u)
    api.submit(i2v("nope"))
    s = api.emu.stats
    served = sum(len(task_video(load_fixture(), t)) for t in tids[:2])
    assert (s.submits, s.queries, s.downloads, s.bytes_served, s.rejected) == (
        4, 3, 2, served, 1)
    assert s.paths["POST /api/v1" + I2V_PATH] == 5
    assert s.paths["GET /api/v1/tasks/{task_id}"] == 3
    assert s.paths["GET /api/v1/files/{task_id}.mp4"] == 2
    assert s.requests == 10


def test_admin_routes(api: Api) -> None:
    tid = api.new_task()
    r = requests.post(api.root + "/_emulator/advance", params={"seconds": "1.5"})
    assert r.status_code == 200 and r.json()["offset"] == 1.5
    assert api.status(tid) == "RUNNING"
    requests.post(api.root + "/_emulator/advance?seconds=3")
    assert api.status(tid) == "SUCCEEDED"
    stats = requests.get(api.root + "/_emulator/stats").json()
    assert stats["submits"] == 1 and stats["queries"] == 2 and stats["max_in_flight"] == 1
    assert stats["paths"]["GET /api/v1/tasks/{task_id}"] == 2
    assert stats["download_auth"] == []
    for bad in ("", "-1", "abc", "nan", "inf"):
        r = requests.post(api.root + "/_emulator/advance", params={"seconds": bad})
        assert r.status_code == 400
    assert requests.get(api.root + "/_emulator/advance").status_code == 405
    assert api.emu.now() == 5000.0 + 4.5


def test_advance_rejects_going_back(api: Api) -> None:
    with pytest.raises(ValueError):
        api.emu.advance(-1)


def test_unknown_route_is_404(api: Api) -> None:
    assert api.s.get(api.base + "/nothing", headers=AUTH).status_code == 404
    assert api.s.get(api.base + I2V_PATH, headers=AUTH).status_code == 405


# ------------------------------------------------------------------------- processes


def test_serve_forever_reports_a_busy_port() -> None:
    from wanvid.emulator import serve_forever

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(BadInputError, match=str(port)):
            serve_forever(EmulatorConfig(port=port))


@pytest.mark.parametrize("bad", [{"fail_rate": 1.5}, {"pending": -1}, {"throttle_every": -2},
                                 {"drop_download_at": -0.1}, {"video_mb": float("nan")},
                                 {"key": " "}, {"submit_latency": -0.5},
                                 {"slow_headers": float("inf")}])
def test_bad_config_is_refused(bad: dict[str, Any]) -> None:
    from wanvid.emulator import serve_forever

    with pytest.raises(ValueError, match=next(iter(bad))):
        Emulator(EmulatorConfig(**bad))
    with pytest.raises(BadInputError):
        serve_forever(EmulatorConfig(**bad))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_wanvid_emulator_prints_url_serves_and_stops_cleanly(sig: signal.Signals) -> None:
    wanvid = Path(sys.executable).parent / "wanvid"  # the installed CLI, as the e2e tests run it
    proc = subprocess.Popen(
        [str(wanvid), "emulator", "--port", "0", "--pending", "0", "--running", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", url), url
        root = url[: -len("/api/v1")]
        r = requests.post(url + I2V_PATH, json=i2v(), headers=SUBMIT_HEADERS)
        tid = r.json()["output"]["task_id"]
        requests.post(root + "/_emulator/advance?seconds=1")
        out = requests.get(f"{url}/tasks/{tid}", headers=AUTH).json()["output"]
        assert out["task_status"] == "SUCCEEDED"
        assert requests.get(out["video_url"]).content == task_video(load_fixture(), tid)
        assert requests.get(root + "/_emulator/stats").json()["downloads"] == 1
    finally:
        proc.send_signal(sig)
        proc.wait(timeout=10)
    # Read through the same buffered readers as readline (communicate() would skip their buffers).
    assert proc.stdout is not None and proc.stderr is not None
    out_rest, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 0
    assert out_rest == ""  # stdout carries only the URL line
    assert "Traceback" not in err and "stopped" in err and "/_emulator/advance" in err


# ------------------------------------------------------- data: URIs (wanvid.media probing)


def test_submit_i2v_and_kf2v_with_png_data_uris(api: Api) -> None:
    uri = data_uri(png(400, 400))
    assert api.submit(i2v(img=uri)).status_code == 200
    tid = api.new_task(kf2v(first=uri, last=data_uri(png(400, 400))), path=KF2V_PATH)
    api.emu.advance(4)
    assert api.status(tid) == "SUCCEEDED"


def test_image_size_bounds_are_inclusive(api: Api) -> None:
    # the catalogue's limits for the model (wan2.2-i2v-flash: 240..8000 px per side)
    assert api.submit(i2v(img=data_uri(png(240, 8000)))).status_code == 200
    assert api.submit(i2v(img=data_uri(png(8000, 240)))).status_code == 200
    assert api.submit(i2v(img=data_uri(png(400, 400), "image/png"))).status_code == 200


def test_bmp_data_uri_is_accepted(api: Api) -> None:
    assert api.submit(i2v(img=data_uri(bmp(400, 400), "image/bmp"))).status_code == 200


BIG = png(400, 400) + b"\x00" * (10 * 1024 * 1024)
BAD_IMAGES: list[tuple[str, str]] = [
    ("alpha png", data_uri(png(400, 400, alpha=True))),
    ("too narrow", data_uri(png(239, 400))),
    ("too short", data_uri(png(400, 239))),
    ("too wide", data_uri(png(8001, 400))),
    ("too tall", data_uri(png(400, 8001))),
    ("not an image", data_uri(b"hello, world" * 10)),
    ("bad base64", "data:image/png;base64,@@@not-base64@@@"),
    ("not base64 encoded", "data:image/png," + "x" * 10),
    ("mime mismatch", data_uri(png(400, 400), "image/jpeg")),
    ("over 10 MB", data_uri(BIG)),
]


@pytest.mark.parametrize("uri", [b[1] for b in BAD_IMAGES], ids=[b[0] for b in BAD_IMAGES])
def test_bad_data_uri_images_fail_data_inspection(api: Api, uri: str) -> None:
    assert error_of(api.submit(i2v(img=uri))) == (400, "InvalidParameter.DataInspection")
    body = kf2v(last=uri)
    assert error_of(api.submit(body, path=KF2V_PATH)) == (400, "InvalidParameter.DataInspection")
    assert api.emu.stats.submits == 0


def _wav(seconds: float, rate: int = 8000) -> bytes:
    frames = int(seconds * rate)
    data = b"\x00\x00" * frames
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack(
        "<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_audio_data_uris_are_inspected(api: Api) -> None:
    def with_audio(uri: str) -> dict[str, Any]:
        body = i2v("wan2.5-i2v-preview")
        body["input"]["audio_url"] = uri
        return body

    assert api.submit(with_audio(data_uri(_wav(4), "audio/wav"))).status_code == 200
    for bad in (data_uri(_wav(2), "audio/wav"), data_uri(b"not audio" * 50, "audio/wav")):
        assert error_of(api.submit(with_audio(bad))) == (400, "InvalidParameter.DataInspection")


# ------------------------------------------- today's models: media, shot_type, templates, limits


def media(model: str = "wan2.7-i2v", *items: tuple[str, str], prompt: str | None = "go",
          **params: Any) -> dict[str, Any]:
    inp: dict[str, Any] = {"media": [{"type": t, "url": u} for t, u in items]}
    if prompt is not None:
        inp["prompt"] = prompt
    return {"model": model, "input": inp, "parameters": params}


CLIP_URL = "https://example.com/clip.mp4"
SONG_URL = "https://example.com/song.mp3"
FF, LF, DA, FC = (("first_frame", HTTP_IMG), ("last_frame", HTTP_IMG2),
                  ("driving_audio", SONG_URL), ("first_clip", CLIP_URL))


@pytest.mark.parametrize("items", [(FF,), (FF, DA), (FF, LF), (FF, LF, DA), (FC,), (FC, LF),
                                   (LF, FF)],
                         ids=["first", "first+audio", "first+last", "first+last+audio", "clip",
                              "clip+last", "any order"])
def test_wan27_accepts_its_media_combinations(api: Api, items: tuple[tuple[str, str], ...]) -> None:
    tid = api.new_task(media("wan2.7-i2v", *items, duration=12, resolution="720P"))
    api.emu.advance(4)
    assert api.status(tid) == "SUCCEEDED"


MEDIA_REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("clip + first frame", media("wan2.7-i2v", FC, FF)),
    ("clip + audio", media("wan2.7-i2v", FC, DA)),
    ("last frame alone", media("wan2.7-i2v", LF)),
    ("audio alone", media("wan2.7-i2v", DA)),
    ("two first frames", media("wan2.7-i2v", FF, FF)),
    ("unknown type", media("wan2.7-i2v", ("first_frame", HTTP_IMG), ("reference", HTTP_IMG))),
    ("empty media", media("wan2.7-i2v")),
    ("item not an object", {"model": "wan2.7-i2v", "input": {"media": ["x"]}}),
    ("item without url", {"model": "wan2.7-i2v", "input": {"media": [{"type": "first_frame"}]}}),
    ("img_url on a media model", i2v("wan2.7-i2v")),
    ("media on a legacy model", media("wan2.6-i2v", FF)),
    ("happyhorse last frame", media("happyhorse-1.0-i2v", FF, LF)),
    ("happyhorse audio", media("happyhorse-1.0-i2v", FF, DA)),
    ("clip as a data: URI", media("wan2.7-i2v", ("first_clip", "data:video/mp4;base64,AAAA"))),
    ("duration over 15", media("wan2.7-i2v", FF, duration=16)),
    ("happyhorse 2 s", media("happyhorse-1.0-i2v", FF, duration=2)),
    ("shot_type on a model without", i2v(shot_type="multi")),
    ("shot_type not offered", i2v("wan2.6-i2v", shot_type="triple")),
    ("shot_type not a string", i2v("wan2.6-i2v", shot_type=1)),
    ("template on a model without", {"model": "wan2.6-i2v", "input": {
        "img_url": HTTP_IMG, "template": "flying"}}),
    ("unknown template", {"model": "wan2.1-i2v-plus", "input": {
        "img_url": HTTP_IMG, "template": "no-such-effect"}}),
    ("template not a string", {"model": "wan2.1-i2v-plus", "input": {
        "img_url": HTTP_IMG, "template": ["flying"]}}),
]


@pytest.mark.parametrize("body", [m[1] for m in MEDIA_REFUSED], ids=[m[0] for m in MEDIA_REFUSED])
def test_invalid_requests_of_todays_models_are_refused(api: Api, body: dict[str, Any]) -> None:
    assert error_of(api.submit(body)) == (400, "InvalidParameter")
    assert api.emu.stats.submits == 0


def test_media_combination_message_names_what_is_accepted(api: Api) -> None:
    msg = api.submit(media("wan2.7-i2v", FC, DA)).json()["message"]
    assert msg.startswith("Field 'input.media': the combination first_clip+driving_audio is "
                          "not supported by wan2.7-i2v; accepted: first_frame; ")


def test_shot_type_and_templates(api: Api) -> None:
    assert api.submit(i2v("wan2.6-i2v-flash", shot_type="multi", duration=12,
                          prompt_extend=True)).status_code == 200
    assert api.submit(i2v("wan2.6-i2v", shot_type="single")).status_code == 200
    body = {"model": "wan2.1-i2v-turbo", "input": {"img_url": HTTP_IMG, "template": "squish",
                                                  "prompt": "ignored"}}
    tid = api.new_task(body)
    # kf2v with a template needs only the first frame
    kf = {"model": "wan2.1-kf2v-plus", "input": {"first_frame_url": HTTP_IMG,
                                                 "template": "hanfu-1"}}
    assert api.submit(kf, path=KF2V_PATH).status_code == 200
    api.emu.advance(4)
    assert "actual_prompt" not in api.output(tid)  # the template's prompt is not used


def test_usage_of_todays_models(api: Api) -> None:
    silent = api.new_task(i2v("wan2.6-i2v-flash", duration=12, audio=False))
    loud = api.new_task(i2v("wan2.6-i2v-flash", duration=3, resolution="720P"))
    clip = api.new_task(media("wan2.7-i2v", FC, duration=12))
    horse = api.new_task(media("happyhorse-1.0-i2v", FF, duration=4, resolution="720P"))
    api.emu.advance(4)
    usage = {t: api.query(t).json()["usage"] for t in (silent, loud, clip, horse)}
    assert usage[silent] == {"duration": 12, "video_count": 1, "SR": 1080,
                             "input_video_duration": 0, "output_video_duration": 12,
                             "audio": False}
    assert usage[loud] == {"duration": 3, "video_count": 1, "SR": 720,
                           "input_video_duration": 0, "output_video_duration": 3, "audio": True}
    # an http(s) clip's length is unknown to the emulator: counted as the shortest (2 s)
    assert usage[clip] == {"duration": 12, "video_count": 1, "SR": 1080,
                           "input_video_duration": 2, "output_video_duration": 10}
    assert usage[horse] == {"duration": 4, "video_count": 1, "SR": 720,
                            "input_video_duration": 0, "output_video_duration": 4}
    assert "actual_prompt" not in api.output(silent)  # wan2.6 never returns it
    assert "actual_prompt" in api.output(clip)


def test_uploaded_clip_is_inspected_and_counted(api: Api, tmp_path: Path) -> None:
    from tests.test_request_bodies import mp4
    from wanvid.client import Client
    from wanvid.upload import Uploader

    up = Uploader(Client(api.base, "sk-emulator-test"))
    headers = {**SUBMIT_HEADERS, "X-DashScope-OssResourceResolve": "enable"}

    def clip_body(data: bytes, name: str) -> dict[str, Any]:
        f = tmp_path / name
        f.write_bytes(data)
        url = up.upload(f, "wan2.7-i2v").url
        return media("wan2.7-i2v", ("first_clip", url), LF, duration=12)

    tid = str(api.submit(clip_body(mp4(3.5), "ok.mp4"), headers=headers).json()["output"]
              ["task_id"])
    api.emu.advance(4)
    assert api.query(tid).json()["usage"] == {
        "duration": 12, "video_count": 1, "SR": 1080, "input_video_duration": 3.5,
        "output_video_duration": 8.5}
    for data, code in ((mp4(1.5), "InvalidFile.Duration"), (mp4(11.0), "InvalidFile.Duration"),
                       (mp4(4.0, 200, 200), "InvalidFile.Resolution"),
                       (mp4(4.0, 4000, 300), "InvalidFile.AspectRatio"),
                       (b"GIF89a" + b"\0" * 100, "InvalidFile.Format")):
        r = api.submit(clip_body(data, f"{code}-{len(data)}.mp4"), headers=headers)
        assert error_of(r) == (400, code), r.text
    assert api.emu.stats.submits == 1


def test_image_limits_per_model(api: Api) -> None:
    def horse(uri: str) -> requests.Response:
        return api.submit(media("happyhorse-1.0-i2v", ("first_frame", uri)))

    assert horse(data_uri(png(300, 300))).status_code == 200
    assert horse(data_uri(png(750, 300))).status_code == 200  # 2.5:1
    for bad in (data_uri(png(299, 400)), data_uri(png(760, 300)), data_uri(png(300, 760)),
                data_uri(bmp(400, 400), "image/bmp")):
        assert error_of(horse(bad)) == (400, "InvalidParameter.DataInspection")
    # wan2.7 takes BMP, 240 px sides and 1:8 (as a driving first frame too)
    ok = media("wan2.7-i2v", ("first_frame", data_uri(bmp(240, 1920), "image/bmp")))
    assert api.submit(ok).status_code == 200
    thin = media("wan2.7-i2v", ("first_frame", data_uri(png(240, 1930))))
    assert error_of(api.submit(thin)) == (400, "InvalidParameter.DataInspection")
    wav = media("wan2.7-i2v", FF, ("driving_audio", data_uri(_wav(1.5), "audio/wav")))
    assert error_of(api.submit(wav)) == (400, "InvalidParameter.DataInspection")
    wav = media("wan2.7-i2v", FF, ("driving_audio", data_uri(_wav(2.5), "audio/wav")))
    assert api.submit(wav).status_code == 200  # wan2.7 takes 2 s audio; wan2.5 needs 3


def test_happyhorse_prompt_limit_is_lower_for_chinese(api: Api) -> None:
    zh = "猫" * 3000
    en = "a" * 6000
    t1 = api.new_task(media("happyhorse-1.0-i2v", FF, prompt=zh))
    t2 = api.new_task(media("happyhorse-1.0-i2v", FF, prompt=en))
    api.emu.advance(4)
    assert api.output(t1)["orig_prompt"] == zh[:2500]
    assert api.output(t2)["orig_prompt"] == en[:5000]


# ------------------------------------------------------- account limits and task failures


def test_max_concurrent_throttles_submits_per_model(make: Callable[..., Api]) -> None:
    api = make(max_concurrent=2)
    a, b = api.new_task(), api.new_task()
    r = api.submit()
    assert error_of(r) == (429, "Throttling")
    assert r.json()["message"].startswith("Requests rate limit exceeded, please try again later.")
    assert api.submit(i2v("wan2.5-i2v-preview")).status_code == 200  # another model: its own
    assert api.cancel(a).status_code == 200  # a canceled task frees its slot
    c = api.new_task()
    assert error_of(api.submit()) == (429, "Throttling")
    stats = api.s.get(api.root + "/_emulator/stats").json()
    assert (stats["concurrent_throttled"], stats["throttled"], stats["submits"]) == (2, 2, 4)
    api.emu.advance(4)  # b and c finish
    assert {api.status(b), api.status(c)} == {"SUCCEEDED"}
    assert api.submit().status_code == 200
    assert api.list().json()["total"] == 5  # the throttled submits created nothing


def test_model_limits_use_the_catalogue(make: Callable[..., Api]) -> None:
    api = make(model_limits=True)
    for _ in range(2):  # wan2.2-i2v-flash: concurrent_tasks = 2
        api.new_task()
    assert error_of(api.submit()) == (429, "Throttling")
    for _ in range(5):  # wan2.6-i2v-flash: 5
        api.new_task(i2v("wan2.6-i2v-flash"))
    assert error_of(api.submit(i2v("wan2.6-i2v-flash"))) == (429, "Throttling")


def test_config_route_changes_switches_at_run_time(api: Api) -> None:
    url = api.root + "/_emulator/config"
    assert api.s.get(url).json() == {"max_concurrent": 0, "model_limits": False,
                                     "fail_with": "", "fail_rate": 0.0,
                                     "submit_latency": 0.0, "slow_headers": 0.0,
                                     "storage_checksums": True, "corrupt_ranges": False}
    r = api.s.post(url, params={"max_concurrent": "1", "fail_with": "ip"})
    assert r.status_code == 200 and r.json()["max_concurrent"] == 1
    tid = api.new_task()
    assert error_of(api.submit()) == (429, "Throttling")
    api.emu.advance(4)
    assert api.output(tid)["code"] == "IPInfringementSuspect"
    for bad in ({"max_concurrent": "-1"}, {"max_concurrent": "x"}, {"fail_with": "Nope"},
                {"fail_rate": "2"}, {"model_limits": "maybe"}, {"colour": "red"},
                {"max_concurrent": "3", "fail_with": "Nope"}):
        r = api.s.post(url, params=bad)
        assert r.status_code == 400, bad
    assert api.s.get(url).json()["max_concurrent"] == 1  # all or nothing
    assert api.s.post(url, params={"max_concurrent": "0", "fail_with": ""}).status_code == 200
    assert api.submit().status_code == 200


@pytest.mark.parametrize(("fault", "code", "message"), [
    ("InvalidParameter", "InvalidParameter", "The size is not match"),
    ("size", "InvalidParameter", "The size is not match"),
    ("DataInspectionFailed", "DataInspectionFailed",
     "Input or output data may contain inappropriate content."),
    ("IPInfringementSuspect", "IPInfringementSuspect",
     "Input data is suspected of being involved in IP infringement."),
    ("InternalError.Algo", "InternalError.Algo", "An internal error has occured"),
])
def test_fail_with_makes_tasks_fail_with_the_service_codes(
        make: Callable[..., Api], fault: str, code: str, message: str) -> None:
    api = make(fail_with=fault)
    tid = api.new_task()
    api.emu.advance(4)
    out = api.output(tid)
    assert out["task_status"] == "FAILED"
    assert out["code"] == code and out["message"].startswith(message)
    assert "video_url" not in out and "usage" not in api.query(tid).json()


def test_fail_with_and_a_fail_rate_fail_only_that_share(make: Callable[..., Api]) -> None:
    api = make(fail_with="DataInspectionFailed", fail_rate=0.5)
    tids = [api.new_task() for _ in range(4)]
    api.emu.advance(4)
    outs = [api.output(t) for t in tids]
    assert [o["task_status"] for o in outs] == ["SUCCEEDED", "FAILED", "SUCCEEDED", "FAILED"]
    assert {o.get("code") for o in outs} == {None, "DataInspectionFailed"}


def test_bad_fail_with_and_max_concurrent_are_refused() -> None:
    for bad in ({"fail_with": "Oops"}, {"max_concurrent": -1}):
        with pytest.raises(ValueError):
            EmulatorConfig(**bad).check()
