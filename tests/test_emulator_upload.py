"""The emulator's upload flow: the policy route, the upload host's form checks, oss://
URLs that resolve only with the header, and wanvid.upload against it over real sockets."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import KEY
from wanvid.client import Client
from wanvid.emulator import Emulator, EmulatorConfig
from wanvid.models import I2V_PATH
from wanvid.upload import Uploader, UploadsNotOffered

AUTH = {"Authorization": f"Bearer {KEY}"}
PNG_URL = "https://example.com/cat.png"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(upload_max_mb=1.0)) as e:
        yield e


def policy(emu: Emulator, model: str = "wan2.5-i2v-preview") -> dict[str, Any]:
    r = requests.get(emu.base_url + "/uploads", params={"action": "getPolicy", "model": model},
                     headers=AUTH)
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


def form(p: dict[str, Any], key: str | None = None) -> list[tuple[str, Any]]:
    return [("OSSAccessKeyId", (None, p["oss_access_key_id"])),
            ("Signature", (None, p["signature"])), ("policy", (None, p["policy"])),
            ("key", (None, key or p["upload_dir"] + "/a.wav")),
            ("x-oss-object-acl", (None, "private")), ("x-oss-forbid-overwrite", (None, "true")),
            ("success_action_status", (None, "200"))]


def post(p: dict[str, Any], fields: list[tuple[str, Any]], data: bytes = b"RIFF....") -> requests.Response:
    return requests.post(p["upload_host"], files=[*fields, ("file", ("a.wav", data))])


def test_policy_route_needs_the_key_and_a_model(emu: Emulator) -> None:
    r = requests.get(emu.base_url + "/uploads", params={"action": "getPolicy",
                                                       "model": "wan2.5-i2v-preview"})
    assert r.status_code == 401
    r = requests.get(emu.base_url + "/uploads", params={"action": "getPolicy", "model": "nope"},
                     headers=AUTH)
    assert (r.status_code, r.json()["code"]) == (404, "ModelNotFound")  # the notes, section 6
    p = policy(emu)
    assert p["upload_host"] == emu.uploads.url != emu.base_url[:-len("/api/v1")]
    assert p["max_file_size_mb"] == 1.0 and p["x_oss_forbid_overwrite"] == "true"
    doc = json.loads(base64.b64decode(p["policy"]))
    assert ["starts-with", "$key", p["upload_dir"]] in doc["conditions"]


def test_upload_host_accepts_a_good_form_and_checks_every_rule(emu: Emulator) -> None:
    p = policy(emu)
    assert post(p, form(p)).status_code == 200
    assert emu.stats.uploads == 1
    r = post(p, form(p))  # same key again: overwriting is forbidden
    assert r.status_code == 409 and "FileAlreadyExists" in r.text
    bad_sig = [(k, (None, "AAAA")) if k == "Signature" else (k, v) for k, v in form(p)]
    r = post(p, bad_sig, b"x")
    assert r.status_code == 403 and "SignatureDoesNotMatch" in r.text
    r = post(p, form(p, key="elsewhere/b.wav"), b"x")
    assert r.status_code == 403 and "Policy Condition failed" in r.text
    r = post(p, form(p, key=p["upload_dir"] + "/big.wav"), b"x" * (1 << 20 | 1))
    assert r.status_code == 400 and "EntityTooLarge" in r.text
    fields = form(p, key=p["upload_dir"] + "/late.wav")
    r = requests.post(p["upload_host"], files=[*fields[:3], ("file", ("a.wav", b"x")),
                                                *fields[3:]])
    assert r.status_code == 400  # the file is not last (and the key came after it)
    emu.advance(301)
    r = post(p, form(p, key=p["upload_dir"] + "/c.wav"), b"x")
    assert r.status_code == 403 and "Policy expired" in r.text
    assert emu.stats.uploads == 1 and emu.stats.upload_rejected == 6


def test_oss_urls_resolve_only_with_the_header_and_for_their_model(emu: Emulator) -> None:
    p = policy(emu)
    key = p["upload_dir"] + "/a.wav"
    assert post(p, form(p, key=key)).status_code == 200
    body = {"model": "wan2.5-i2v-preview",
            "input": {"prompt": "x", "img_url": PNG_URL, "audio_url": "oss://" + key},
            "parameters": {"resolution": "720P"}}
    headers = {**AUTH, "X-DashScope-Async": "enable"}
    r = requests.post(emu.base_url + I2V_PATH, json=body, headers=headers)
    assert r.status_code == 400 and r.json()["code"] == "invalid_parameter_error"
    assert "does not appear to be valid" in r.json()["message"]
    resolve = {**headers, "X-DashScope-OssResourceResolve": "enable"}
    r = requests.post(emu.base_url + I2V_PATH, json=body, headers=resolve)
    assert r.status_code == 200, r.text
    other = {"model": "wan2.2-i2v-flash", "input": {"img_url": "oss://" + key},
             "parameters": {"resolution": "720P"}}
    r = requests.post(emu.base_url + I2V_PATH, json=other, headers=resolve)
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameter.DataInspection"
    unknown = {**body, "input": {**body["input"], "audio_url": "oss://" + key + "x"}}
    r = requests.post(emu.base_url + I2V_PATH, json=unknown, headers=resolve)
    assert r.status_code == 400


def test_wanvid_uploader_against_the_emulator(emu: Emulator, tmp_path: Path) -> None:
    f = tmp_path / "clip.mp4"
    f.write_bytes(b"\x00" * 300_000)
    up = Uploader(Client(emu.base_url, KEY))
    got = up.upload(f, "wan2.5-i2v-preview")
    key = got.url.removeprefix("oss://")
    assert emu.uploads.objects[key].size == 300_000
    assert emu.stats.upload_auth == [None]  # the key never went to the upload host
    assert emu.stats.policies == 1 and len(emu.stats.upload_seconds) == 1


def test_uploads_not_offered(tmp_path: Path) -> None:
    f = tmp_path / "a.wav"
    f.write_bytes(b"RIFF")
    with Emulator(EmulatorConfig(uploads=False)) as e:
        with pytest.raises(UploadsNotOffered, match="does not offer temporary uploads"):
            Uploader(Client(e.base_url, KEY)).upload(f, "wan2.5-i2v-preview")
        assert e.stats.upload_auth == []
