"""End to end: local audio goes to the emulator's upload host and the submit carries the
oss:// URL (with the resolve header); a batch sharing one soundtrack uploads it once;
--dry-run and --upload never send nothing."""

from __future__ import annotations

import json
from pathlib import Path

from tests import envelope_schema
from tests.e2e.conftest import E2E_KEY
from tests.fixtures_media import wav_bytes

POLICY_ROUTE = "GET /api/v1/uploads"


def test_generate_with_a_local_wav_uploads_it(emulator, wv, images, tmp_path: Path) -> None:
    emu = emulator()
    wav = tmp_path / "voice.wav"
    wav.write_bytes(wav_bytes(4.0))
    r = wv("generate", str(images["first"]), "-p", "x", "-m", "wan2.5-i2v-preview",
           "-d", "5", "--audio", str(wav), "-o", "clip.mp4", base_url=emu.base_url)
    assert r.code == 0, r.err
    assert r.out == "clip.mp4\n"
    assert "uploaded " + str(wav) in r.err and "data: URI" not in r.err
    s = emu.stats()
    assert s["policies"] == 1 and s["uploads"] == 1 and s["submits"] == 1
    assert s["upload_bytes"] == wav.stat().st_size
    assert s["upload_auth"] == [None]  # the key never went to the upload host
    assert all(a is None for a in s["download_auth"])
    assert E2E_KEY not in r.err


def test_a_batch_sharing_one_audio_uploads_it_once(emulator, wv, images,
                                                   tmp_path: Path) -> None:
    emu = emulator()
    wav = tmp_path / "song.wav"
    wav.write_bytes(wav_bytes(4.0))
    lines = [json.dumps({"image": str(images["first"]), "prompt": f"take {i}",
                         "model": "wan2.5-i2v-preview", "duration": 5, "audio": str(wav),
                         "seed": i}) for i in range(10)]
    r = wv("batch", "-", "-j", "4", "--no-download", input="\n".join(lines) + "\n",
           base_url=emu.base_url, timeout=300)
    assert r.code == 0, r.err
    s = emu.stats()
    assert s["submits"] == 10 and s["uploads"] == 1 and s["policies"] == 1
    # A re-run the next morning (new jobs, same soundtrack): nothing uploaded again.
    again = [line.replace("take", "retake") for line in lines]
    r = wv("batch", "-", "-j", "4", "--no-download", input="\n".join(again) + "\n",
           base_url=emu.base_url, timeout=300)
    assert r.code == 0, r.err
    s = emu.stats()
    assert s["submits"] == 20 and s["uploads"] == 1 and s["policies"] == 1


def test_dry_run_lists_uploads_and_sends_nothing(emulator, wv, images, tmp_path: Path) -> None:
    emu = emulator()
    wav = tmp_path / "voice.wav"
    wav.write_bytes(wav_bytes(4.0))
    r = wv("submit", str(images["first"]), "-m", "wan2.5-i2v-preview", "-d", "5",
           "--audio", str(wav), "--dry-run", "--json", base_url=emu.base_url)
    assert r.code == 0, r.err
    d = envelope_schema.data(r.out, "submit")
    assert d["uploads"] == [{"input": str(wav), "flag": "--audio",
                             "bytes": wav.stat().st_size}]
    assert d["headers"]["X-DashScope-OssResourceResolve"] == "enable"
    assert d["body"]["input"]["audio_url"].startswith("oss://")
    r = wv("submit", str(images["first"]), "-m", "wan2.5-i2v-preview", "-d", "5",
           "--audio", str(wav), "--dry-run", base_url=emu.base_url)
    assert r.code == 0 and f"would upload {wav}" in r.out
    s = emu.stats()
    assert set(s["paths"]) == {"GET /_emulator/stats"}  # nothing but this question
    assert s["policies"] == 0 and s["upload_auth"] == []


def test_upload_never_refuses_local_audio_before_sending(emulator, wv, images,
                                                         tmp_path: Path) -> None:
    emu = emulator()
    wav = tmp_path / "voice.wav"
    wav.write_bytes(wav_bytes(4.0))
    r = wv("submit", str(images["first"]), "-m", "wan2.5-i2v-preview", "-d", "5",
           "--audio", str(wav), "--upload", "never", base_url=emu.base_url)
    assert r.code == 2
    assert "public http(s) URL" in r.err and len(r.err.strip().splitlines()) == 1
    assert set(emu.stats()["paths"]) == {"GET /_emulator/stats"}


def test_uploads_not_offered_stops_before_submitting(emulator, wv, images,
                                                     tmp_path: Path) -> None:
    emu = emulator(no_uploads=True)
    wav = tmp_path / "voice.wav"
    wav.write_bytes(wav_bytes(4.0))
    r = wv("submit", str(images["first"]), "-m", "wan2.5-i2v-preview", "-d", "5",
           "--audio", str(wav), base_url=emu.base_url)
    assert r.code == 4, r.err
    assert "does not offer temporary uploads" in r.err and "--upload never" in r.err
    assert emu.stats()["submits"] == 0
