"""Temporary uploads (wanvid.upload): the policy, the form, retries, the size limit, the
resolve header, reuse from the journal and the key's whereabouts (HTTP mocked)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
import responses

from tests.conftest import KEY, FakeClock
from wanvid.client import Client
from wanvid.errors import BadInputError, ExitStatus, ProtocolAnswerError
from wanvid.journal import Journal
from wanvid.upload import (
    MultipartBody,
    Uploader,
    UploadError,
    UploadsNotOffered,
    object_name,
    parse_policy,
)

BASE = "https://dashscope.aliyuncs.com/api/v1"
POLICY_URL = BASE + "/uploads"
HOST = "https://dashscope-file-abc.oss-cn-beijing.aliyuncs.com"
I2V_URL = BASE + "/services/aigc/video-generation/video-synthesis"


def policy_answer(**over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "policy": "eyJleHBpcmF0aW9uIjoiMjAyNi0xMi0wM1QwODowMDowMFoifQ==",
        "signature": "c2lnbmF0dXJl", "upload_dir": "dashscope-instant/abc/2026-12-03/xyz",
        "upload_host": HOST, "expire_in_seconds": 300, "max_file_size_mb": 100,
        "capacity_limit_mb": 999999999, "oss_access_key_id": "LTAIxxxx",
        "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true"}
    data.update(over)
    return {"request_id": "r-pol", "data": data}


def drain(body: object) -> bytes:
    if isinstance(body, bytes | None):
        return body or b""
    out = bytearray()
    while piece := body.read(8192):  # type: ignore[attr-defined]
        out += piece
    return bytes(out)


def parse_form(request: requests.PreparedRequest) -> tuple[list[str], dict[str, bytes]]:
    """(field names in order, field -> value) of a multipart request."""
    ctype = request.headers["Content-Type"]
    boundary = ctype.split("boundary=")[1].encode()
    raw = drain(request.body)
    assert int(request.headers["Content-Length"]) == len(raw)
    parts = raw.split(b"--" + boundary)
    assert parts[-1] == b"--\r\n"
    names: list[str] = []
    values: dict[str, bytes] = {}
    for part in parts[1:-1]:
        head, _, value = part[2:].partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]+)"', head)
        assert name
        names.append(name.group(1).decode())
        values[name.group(1).decode()] = value[:-2]
    return names, values


class Host:
    """A fake upload host: records each form, answers from a script."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = list(answers or [])
        self.forms: list[tuple[list[str], dict[str, bytes]]] = []
        self.headers: list[dict[str, str]] = []

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.headers.append(dict(request.headers))
        self.forms.append(parse_form(request))
        status = self.answers.pop(0) if self.answers else 200
        if status == 403:
            return 403, {}, ("<Error><Code>AccessDenied</Code><Message>Invalid according to "
                             "Policy: Policy expired.</Message></Error>")
        if status >= 300:
            return status, {}, f"<Error><Code>E{status}</Code><Message>m</Message></Error>"
        return 200, {}, ""


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    p = tmp_path / "my clip.mp4"
    p.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return p


def uploader(clock: FakeClock | None = None, journal: Journal | None = None,
             **kw: object) -> Uploader:
    clock = clock or FakeClock()
    client = Client(BASE, KEY, sleep=clock.sleep)
    return Uploader(client, journal=journal, sleep=clock.sleep, clock=clock.now,
                    wall=clock.now, **kw)  # type: ignore[arg-type]


@responses.activate
def test_policy_request_and_form(clip: Path) -> None:
    responses.get(POLICY_URL, json=policy_answer())
    host = Host()
    responses.add_callback(responses.POST, HOST, callback=host)
    seen: list[tuple[int, int]] = []
    up = uploader(progress=lambda label, done, total: seen.append((done, total)))
    got = up.upload(clip, "wan2.7-i2v", content_type="video/mp4")

    pol_req = responses.calls[0].request
    assert pol_req.url == POLICY_URL + "?action=getPolicy&model=wan2.7-i2v"
    assert pol_req.headers["Authorization"] == f"Bearer {KEY}"
    names, values = host.forms[0]
    assert names[-1] == "file"  # the file is the last field
    assert set(names[:-1]) >= {"OSSAccessKeyId", "Signature", "policy", "key",
                               "x-oss-object-acl", "x-oss-forbid-overwrite",
                               "success_action_status"}
    assert values["OSSAccessKeyId"] == b"LTAIxxxx"
    assert values["Signature"] == b"c2lnbmF0dXJl"
    assert values["x-oss-forbid-overwrite"] == b"true"
    assert values["file"] == clip.read_bytes()
    key = values["key"].decode()
    assert key.startswith("dashscope-instant/abc/2026-12-03/xyz/")
    assert key.endswith("-my_clip.mp4")
    assert got.url == "oss://" + key and not got.reused
    assert "Authorization" not in host.headers[0]
    assert KEY not in json.dumps(host.headers[0])
    assert seen[-1] == (clip.stat().st_size, clip.stat().st_size)


def test_object_names_never_collide() -> None:
    names = {object_name("/x/cat.png") for _ in range(500)}
    assert len(names) == 500
    assert all(n.endswith("-cat.png") for n in names)
    assert object_name("../../a b\n.wav").endswith("-a_b_.wav")


@responses.activate
def test_two_files_with_one_basename_get_distinct_keys(tmp_path: Path) -> None:
    responses.get(POLICY_URL, json=policy_answer())
    host = Host()
    responses.add_callback(responses.POST, HOST, callback=host)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "s.wav").write_bytes(b"1" * 100)
    (b / "s.wav").write_bytes(b"2" * 100)
    up = uploader()
    u1, u2 = up.upload(a / "s.wav", "m"), up.upload(b / "s.wav", "m")
    assert u1.url != u2.url
    assert len([c for c in responses.calls if "getPolicy" in c.request.url]) == 1  # reused


@responses.activate
def test_size_limit_checked_before_sending(clip: Path) -> None:
    responses.get(POLICY_URL, json=policy_answer(max_file_size_mb="0.001"))
    host = Host()
    responses.add_callback(responses.POST, HOST, callback=host)
    with pytest.raises(BadInputError, match=r"more than the 0.001 MiB .* public http\(s\) URL"):
        uploader().upload(clip, "wan2.7-i2v")
    assert host.forms == []


@responses.activate
def test_retries_429_and_5xx_with_fresh_names(clip: Path) -> None:
    clock = FakeClock()
    responses.get(POLICY_URL, json=policy_answer())
    host = Host([503, 429, 500])
    responses.add_callback(responses.POST, HOST, callback=host)
    got = uploader(clock).upload(clip, "m")
    assert len(host.forms) == 4
    keys = {f[1]["key"] for f in host.forms}
    assert len(keys) == 4  # a retry never reuses a name (overwriting is forbidden)
    assert got.url == "oss://" + host.forms[-1][1]["key"].decode()
    assert len(clock.sleeps) == 3


@responses.activate
def test_gives_up_after_retries(clip: Path) -> None:
    responses.get(POLICY_URL, json=policy_answer())
    responses.add_callback(responses.POST, HOST, callback=Host([500] * 10))
    with pytest.raises(UploadError, match="nothing was submitted") as e:
        uploader(max_retries=2).upload(clip, "m")
    assert e.value.status == ExitStatus.NETWORK


@responses.activate
def test_policy_request_retried_on_429(clip: Path) -> None:
    responses.get(POLICY_URL, status=429, json={"code": "Throttling.RateQuota", "message": "x"})
    responses.get(POLICY_URL, json=policy_answer())
    responses.add_callback(responses.POST, HOST, callback=Host())
    uploader().upload(clip, "m")
    assert sum("getPolicy" in c.request.url for c in responses.calls) == 2


@responses.activate
def test_expired_policy_is_fetched_again(clip: Path) -> None:
    clock = FakeClock()
    responses.get(POLICY_URL, json=policy_answer(expire_in_seconds="300"))
    responses.add_callback(responses.POST, HOST, callback=Host())
    up = uploader(clock)
    files = []
    for i in range(3):
        files.append(clip.with_name(f"c{i}.mp4"))
        files[-1].write_bytes(b"clip %d" % i)
    up.upload(files[0], "m")
    clock.t += 100
    up.upload(files[1], "m")  # still valid: not fetched again
    assert sum("getPolicy" in c.request.url for c in responses.calls) == 1
    clock.t += 190  # within the safety margin of its expiry
    up.upload(files[2], "m")
    assert sum("getPolicy" in c.request.url for c in responses.calls) == 2


@responses.activate
def test_host_saying_policy_expired_gets_a_fresh_policy(clip: Path) -> None:
    responses.get(POLICY_URL, json=policy_answer())
    host = Host([403])
    responses.add_callback(responses.POST, HOST, callback=host)
    uploader().upload(clip, "m")
    assert sum("getPolicy" in c.request.url for c in responses.calls) == 2
    assert len(host.forms) == 2


@responses.activate
@pytest.mark.parametrize("status,body", [
    (404, {"code": "NotFound", "message": "Not found"}),
    (400, {"code": "InvalidParameter", "message": "url error, please check url!"}),
    (400, {"code": "UnsupportedOperation", "message": "uploads are not offered"}),
])
def test_uploads_not_offered_is_one_clear_error(clip: Path, status: int,
                                                body: dict[str, str]) -> None:
    responses.get(POLICY_URL, status=status, json=body)
    with pytest.raises(UploadsNotOffered) as e:
        uploader().upload(clip, "m")
    msg = e.value.message
    assert "does not offer temporary uploads" in msg
    assert "public http(s) URL" in msg and "--upload never" in msg
    assert "\n" not in msg
    assert e.value.status == ExitStatus.REJECTED


@pytest.mark.parametrize("over,match", [
    ({"upload_host": "ftp://x"}, "upload host"),
    ({"upload_host": "http://plain.example.com"}, "upload host"),  # API root is https
    ({"upload_dir": "../etc"}, "upload directory"),
    ({"signature": None}, "signature"),
])
def test_unusable_policies_refused(over: dict[str, object], match: str) -> None:
    with pytest.raises(ProtocolAnswerError, match=match):
        parse_policy(policy_answer(**over), fetched_at=0)


def test_policy_numbers_as_strings_or_numbers() -> None:
    a = parse_policy(policy_answer(max_file_size_mb="100", expire_in_seconds="60"), fetched_at=10)
    b = parse_policy(policy_answer(max_file_size_mb=100, expire_in_seconds=60), fetched_at=10)
    assert a == b and a.max_file_size == 100 * 1024 * 1024 and a.expires_at == 70


@responses.activate
def test_journal_reuse_within_validity_and_reupload_after(clip: Path, tmp_path: Path) -> None:
    clock = FakeClock()
    journal = Journal(tmp_path / "j.db", now=clock.now)
    responses.get(POLICY_URL, json=policy_answer())
    host = Host()
    responses.add_callback(responses.POST, HOST, callback=host)
    first = uploader(clock, journal).upload(clip, "wan2.5-i2v-preview")
    clock.t += 30 * 3600  # the next morning: still valid (48 h)
    again = uploader(clock, journal).upload(clip, "wan2.5-i2v-preview")
    assert again.reused and again.url == first.url and len(host.forms) == 1
    other_model = uploader(clock, journal).upload(clip, "wan2.6-i2v")
    assert not other_model.reused and len(host.forms) == 2
    clock.t += 14 * 3600  # 44 h: too close to the 48 h end to count on it
    late = uploader(clock, journal).upload(clip, "wan2.5-i2v-preview")
    assert not late.reused and late.url != first.url and len(host.forms) == 3
    clip.write_bytes(b"different content")
    changed = uploader(clock, journal).upload(clip, "wan2.5-i2v-preview")
    assert not changed.reused and len(host.forms) == 4


@responses.activate
def test_one_content_is_uploaded_once_by_many_threads(clip: Path, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    journal = Journal(tmp_path / "j.db")
    responses.get(POLICY_URL, json=policy_answer())
    host = Host()
    responses.add_callback(responses.POST, HOST, callback=host)
    up = uploader(journal=journal)
    with ThreadPoolExecutor(8) as pool:
        urls = set(pool.map(lambda _: up.upload(clip, "m").url, range(10)))
    assert len(urls) == 1 and len(host.forms) == 1


@responses.activate
def test_submit_with_oss_url_carries_resolve_header() -> None:
    responses.post(I2V_URL, json={"output": {"task_id": "t-1", "task_status": "PENDING"}})
    client = Client(BASE, KEY)
    client.submit("/services/aigc/video-generation/video-synthesis",
                  b'{"input": {"audio_url": "oss://dashscope-instant/d/a.wav"}}')
    client.submit("/services/aigc/video-generation/video-synthesis",
                  b'{"input": {"audio_url": "https://example.com/a.wav"}}')
    assert responses.calls[0].request.headers["X-DashScope-OssResourceResolve"] == "enable"
    assert "X-DashScope-OssResourceResolve" not in responses.calls[1].request.headers


def test_multipart_body_streams_in_bounded_pieces(tmp_path: Path) -> None:
    p = tmp_path / "big.bin"
    with open(p, "wb") as f:
        f.truncate(5 << 20)
    body = MultipartBody([("a", "1")], file_field="file", path=p, filename="big.bin",
                         content_type="application/octet-stream", size=5 << 20,
                         chunk=1 << 20)
    total, biggest = 0, 0
    while piece := body.read(8192):
        total += len(piece)
        biggest = max(biggest, len(piece))
    assert total == len(body) and biggest <= 1 << 20


def test_file_changed_while_uploading(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"x" * 1000)
    body = MultipartBody([], file_field="file", path=p, filename="f.bin",
                         content_type="x/y", size=2000)
    with pytest.raises(BadInputError, match="changed while"):
        drain(body)


def test_upload_progress_on_a_terminal_and_in_logs() -> None:
    import io

    from wanvid.context import Environment
    from wanvid.progress import PlainReporter, RichReporter

    err = io.StringIO()
    env = Environment(environ={"TERM": "xterm"}, stderr=err, stderr_isatty=True,
                      stdout=io.StringIO(), stdout_isatty=False)
    rep = RichReporter(env)
    for done in (0, 1 << 20, 3 << 20):
        rep.upload_progress("clip.mp4", done, 3 << 20)
    rep.upload_done("clip.mp4", 3 << 20, False, 0.5)
    rep.upload_done("song.wav", 1000, True, 0.0)
    rep.close()
    drawn = err.getvalue()
    assert "clip.mp4" in drawn and "UPLOAD" in drawn and "3.0/3.0 MiB" in drawn  # the bar
    assert "song.wav already uploaded" in drawn

    err = io.StringIO()
    plain = PlainReporter(Environment(environ={"CI": "true"}, stderr=err))
    plain.upload_progress("clip.mp4", 1, 2)
    plain.upload_done("clip.mp4", 3 << 20, False, 0.5)
    assert err.getvalue() == "wanvid: uploaded clip.mp4 (3.0 MiB, 0.5 s)\n"


def test_which_local_files_are_uploaded_per_mode(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures_media import png_bytes, wav_bytes
    from wanvid import media, upload

    (tmp_path / "a.png").write_bytes(png_bytes(640, 480))
    (tmp_path / "a.wav").write_bytes(wav_bytes(4.0))
    img = media.load_image(str(tmp_path / "a.png"), role="image", flag="IMAGE")
    aud = media.load_audio(str(tmp_path / "a.wav"))
    url = media.load_image("https://example.com/a.png", role="image", flag="IMAGE")
    assert upload.plan([img, aud, url], "auto") == [aud]
    assert upload.plan([img, aud, url], "always") == [img, aud]
    assert upload.plan([img, url], "never") == []
    with pytest.raises(BadInputError, match=r"--audio .*a\.wav: --upload never .* public http"):
        upload.plan([img, aud], "never")
    monkeypatch.setattr(upload, "DATA_URI_MAX", img.encoded_length() - 1)
    assert upload.plan([img, aud], "auto") == [img, aud]  # too big for a data: URI
    with pytest.raises(BadInputError, match="--upload sometimes: use one of auto, always, never"):
        upload.check_mode("sometimes")
