"""wanvid.media: probing, validation, encoding, body assembly, output-size prediction."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures_media import (
    bmp_bytes,
    id3v2,
    jpeg_bytes,
    mp3_bytes,
    mp3_frame,
    mp3_seconds,
    png_bytes,
    png_chunk,
    real_image,
    wav_bytes,
    webp_bytes,
)
from wanvid import media
from wanvid.errors import BadInputError, ExitStatus
from wanvid.media import (
    AudioInfo,
    ImageInfo,
    MediaInput,
    body_bytes,
    check_audio_for_model,
    check_frame_aspects,
    from_bytes,
    load_audio,
    load_image,
    predict_output_size,
    probe_audio,
    probe_image,
)
from wanvid.models import IMAGE_MAX_BYTES, MODELS, TIER_PIXELS, find_model

OK_PNG = png_bytes(640, 480)


def b64uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.fixture()
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --------------------------------------------------------------------------- probe_image


@pytest.mark.parametrize(("data", "expected"), [
    (jpeg_bytes(800, 600), ImageInfo("image/jpeg", 800, 600, False, "JPEG")),
    (jpeg_bytes(1024, 768, sof=0xC2), ImageInfo("image/jpeg", 1024, 768, False, "JPEG")),
    (jpeg_bytes(500, 700, sof=0xC1, fill=True), ImageInfo("image/jpeg", 500, 700, False, "JPEG")),
    (jpeg_bytes(1200, 900, app_pad=200_000),  # SOF ~200 kB into the file
     ImageInfo("image/jpeg", 1200, 900, False, "JPEG")),
    (png_bytes(640, 480), ImageInfo("image/png", 640, 480, False, "PNG")),
    (png_bytes(640, 480, colour=0), ImageInfo("image/png", 640, 480, False, "PNG")),
    (png_bytes(640, 480, colour=3), ImageInfo("image/png", 640, 480, False, "PNG")),
    (png_bytes(640, 480, colour=6), ImageInfo("image/png", 640, 480, True, "PNG")),
    (png_bytes(640, 480, colour=4), ImageInfo("image/png", 640, 480, True, "PNG")),
    (png_bytes(640, 480, colour=3, trns=True), ImageInfo("image/png", 640, 480, True, "PNG")),
    (png_bytes(640, 480, colour=2, trns=True), ImageInfo("image/png", 640, 480, True, "PNG")),
    (png_bytes(640, 480, before_idat=png_chunk(b"tEXt", b"k\x00v" * 1000)),
     ImageInfo("image/png", 640, 480, False, "PNG")),
    (bmp_bytes(400, 380), ImageInfo("image/bmp", 400, 380, False, "BMP")),
    (bmp_bytes(400, 380, top_down=True), ImageInfo("image/bmp", 400, 380, False, "BMP")),
    (bmp_bytes(400, 380, header=12), ImageInfo("image/bmp", 400, 380, False, "BMP")),
    (bmp_bytes(400, 380, bpp=32), ImageInfo("image/bmp", 400, 380, False, "BMP")),
    (bmp_bytes(400, 380, bpp=32, header=124, compression=3, alpha_mask=0xFF000000),
     ImageInfo("image/bmp", 400, 380, True, "BMP")),
    (bmp_bytes(400, 380, bpp=32, header=108, compression=3, alpha_mask=0xFF000000),
     ImageInfo("image/bmp", 400, 380, True, "BMP")),
    (bmp_bytes(400, 380, bpp=32, header=108, compression=3, alpha_mask=0),
     ImageInfo("image/bmp", 400, 380, False, "BMP")),
    (bmp_bytes(400, 380, bpp=32, header=124, compression=0, alpha_mask=0xFF000000),
     ImageInfo("image/bmp", 400, 380, False, "BMP")),  # BI_RGB: 4th byte is padding
    (bmp_bytes(400, 380, bpp=32, header=40, compression=6, alpha_mask=0xFF000000),
     ImageInfo("image/bmp", 400, 380, True, "BMP")),
    (bmp_bytes(400, 380, bpp=32, header=40, compression=3),
     ImageInfo("image/bmp", 400, 380, False, "BMP")),
    (webp_bytes(1000, 700), ImageInfo("image/webp", 1000, 700, False, "WEBP")),
    (webp_bytes(1000, 700, kind="VP8L"), ImageInfo("image/webp", 1000, 700, False, "WEBP")),
    (webp_bytes(1000, 700, kind="VP8L", alpha=True),
     ImageInfo("image/webp", 1000, 700, True, "WEBP")),
    (webp_bytes(1000, 700, kind="VP8X"), ImageInfo("image/webp", 1000, 700, False, "WEBP")),
    (webp_bytes(1000, 700, kind="VP8X", alpha=True),
     ImageInfo("image/webp", 1000, 700, True, "WEBP")),
], ids=lambda v: None if isinstance(v, bytes) else f"{v.format}-{v.width}x{v.height}-a{v.has_alpha:d}")
def test_probe_image(data: bytes, expected: ImageInfo) -> None:
    assert probe_image(data) == expected


@pytest.mark.parametrize("data", [
    b"", b"hello world", b"GIF89a" + bytes(20), b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff",
    jpeg_bytes(800, 600, app_pad=200_000)[:4096],  # SOF beyond the given head
    b"RIFF\x10\x00\x00\x00WEBPJUNK" + bytes(20), wav_bytes(0.1),
])
def test_probe_image_rejects(data: bytes) -> None:
    assert probe_image(data) is None


def test_probe_image_head_is_enough_for_png_and_webp() -> None:
    assert probe_image(png_bytes(2400, 1800)[:64]) == ImageInfo("image/png", 2400, 1800,
                                                                 False, "PNG")
    assert probe_image(webp_bytes(720, 1280)[:30]) is not None


# --------------------------------------------------------------------------- probe_audio


@pytest.mark.parametrize(("data", "fmt", "seconds"), [
    (wav_bytes(5), "WAV", 5.0),
    (wav_bytes(2.5, rate=16000), "WAV", 2.5),
    (mp3_bytes(5), "MP3", mp3_seconds(5)),  # CBR estimate from size/bit rate
    (mp3_bytes(5, id3=False), "MP3", mp3_seconds(5)),
    (mp3_bytes(5, id3v1=True), "MP3", mp3_seconds(5)),
    (mp3_bytes(12, xing=True), "MP3", mp3_seconds(12)),  # Xing frame count
    (mp3_bytes(7, vbr=True), "MP3", mp3_seconds(7)),  # no header: walk the frames
    (mp3_bytes(7, vbr=True, xing=True), "MP3", mp3_seconds(7)),
    (id3v2(50) + b"\x00" * 30 + mp3_bytes(4, id3=False), "MP3", mp3_seconds(4)),
], ids=["wav5", "wav2.5", "mp3-cbr", "mp3-noid3", "mp3-id3v1", "mp3-xing", "mp3-vbr-walk",
        "mp3-vbr-xing", "mp3-id3-padding"])
def test_probe_audio(data: bytes, fmt: str, seconds: float) -> None:
    info = probe_audio(data)
    assert info is not None
    assert info.format == fmt
    assert info.mime == ("audio/wav" if fmt == "WAV" else "audio/mpeg")
    assert info.duration == pytest.approx(seconds, abs=0.05)


def test_probe_audio_vbri() -> None:
    n = 200
    vbri = bytes(32) + b"VBRI" + bytes(6) + (0).to_bytes(4, "big") + n.to_bytes(4, "big")
    data = mp3_frame(9, vbri) + b"".join(mp3_frame(11 if i % 2 else 9) for i in range(n))
    info = probe_audio(data)
    assert info is not None and info.duration == pytest.approx(n * 1152 / 44100)


@pytest.mark.parametrize("data", [
    b"", b"OggS" + bytes(100), png_bytes(400, 400), b"RIFF\x04\x00\x00\x00WAVE",
    bytes(5000), b"\xff\xfb" + bytes(10),  # lone sync word, not a frame chain
])
def test_probe_audio_rejects(data: bytes) -> None:
    assert probe_audio(data) is None


# --------------------------------------------------------------------------- loading: good


def test_load_png_file(cwd: Path) -> None:
    (cwd / "a.png").write_bytes(OK_PNG)
    mi = load_image("a.png", role="image", flag="IMAGE")
    assert (mi.kind, mi.mime, mi.size, mi.path) == ("file", "image/png", len(OK_PNG),
                                                    Path("a.png"))
    assert mi.image == ImageInfo("image/png", 640, 480, False, "PNG")
    assert mi.value() == b64uri("image/png", OK_PNG)


@pytest.mark.parametrize(("name", "data", "mime"), [
    ("photo.jpg", jpeg_bytes(800, 600, app_pad=300_000), "image/jpeg"),
    ("scan.bmp", bmp_bytes(400, 400), "image/bmp"),
    ("pic.webp", real_image("WEBP", (1000, 700), icc_profile=b"\0" * 64), "image/webp"),
    ("really-png.jpg", OK_PNG, "image/png"),  # content wins over the extension
    ("noext", OK_PNG, "image/png"),
])
def test_load_formats_by_content(cwd: Path, name: str, data: bytes, mime: str) -> None:
    (cwd / name).write_bytes(data)
    mi = load_image(name, role="first frame", flag="IMAGE")
    assert mi.mime == mime
    assert mi.value() == b64uri(mime, data)


def test_file_uri_forms(cwd: Path) -> None:
    (cwd / "sub").mkdir()
    (cwd / "sub" / "f.png").write_bytes(OK_PNG)
    for arg in (f"file://{cwd}/sub/f.png", "file://./sub/f.png", "file://sub/f.png",
                f"FILE://{cwd}/sub/f.png", f"file:{cwd}/sub/f.png"):
        mi = load_image(arg, role="image", flag="IMAGE")
        assert mi.kind == "file" and mi.image is not None, arg
        assert mi.path is not None and mi.path.resolve() == (cwd / "sub" / "f.png").resolve()


@pytest.mark.parametrize("url", ["https://example.com/a.png", "HTTP://example.com/x?y=1",
                                 "https://example.com/has space/ü.png"])
def test_url_passthrough(url: str) -> None:
    mi = load_image(url, role="image", flag="IMAGE")
    assert (mi.kind, mi.path, mi.mime, mi.size, mi.image, mi.audio) == ("url", None, None,
                                                                         None, None, None)
    assert mi.value() == url and mi.preview() == url and mi.encoded_length() == len(url)
    assert load_audio(url).kind == "url"


def test_data_uri_image() -> None:
    uri = b64uri("image/png", OK_PNG)
    mi = load_image(uri, role="last frame", flag="--last-frame")
    assert (mi.kind, mi.mime, mi.size) == ("data", "image/png", len(OK_PNG))
    assert mi.value() == uri and mi.label == "--last-frame (data: URI)"


def test_data_uri_normalised() -> None:
    jpg = jpeg_bytes(800, 600)
    wrapped = base64.encodebytes(jpg).decode()  # 76-column lines, as `base64` prints
    mi = load_image(f"DATA:image/JPG;base64,{wrapped}", role="image", flag="IMAGE")
    assert mi.value() == b64uri("image/jpeg", jpg)
    # content wins over a declared (supported) type
    mi = load_image(b64uri("image/png", jpg), role="image", flag="IMAGE")
    assert mi.mime == "image/jpeg" and mi.value().startswith("data:image/jpeg;base64,/9j/")


def test_load_audio_files(cwd: Path) -> None:
    (cwd / "v.wav").write_bytes(wav_bytes(5))
    (cwd / "v.mp3").write_bytes(mp3_bytes(5))
    (cwd / "mp3-named.wav").write_bytes(mp3_bytes(6))
    w = load_audio("v.wav")
    assert (w.kind, w.mime, w.role, w.flag) == ("file", "audio/wav", "audio", "--audio")
    assert w.audio == AudioInfo("audio/wav", 5.0, "WAV")
    m = load_audio("v.mp3")
    assert m.mime == "audio/mpeg" and m.audio is not None
    assert m.audio.duration == pytest.approx(5, abs=0.1)
    assert load_audio("mp3-named.wav").mime == "audio/mpeg"
    d = load_audio(b64uri("audio/x-wav", wav_bytes(4)))
    assert d.kind == "data" and d.audio == AudioInfo("audio/wav", 4.0, "WAV")


def test_boundaries_accepted(cwd: Path) -> None:
    for w, h in ((360, 360), (2000, 2000), (360, 2000)):
        (cwd / "b.png").write_bytes(png_bytes(w, h))
        assert load_image("b.png", role="image", flag="IMAGE").image is not None
    (cwd / "max.png").write_bytes(png_bytes(400, 400, pad_to=IMAGE_MAX_BYTES))
    assert load_image("max.png", role="image", flag="IMAGE").size == IMAGE_MAX_BYTES
    for s in (3, 30):
        (cwd / "s.wav").write_bytes(wav_bytes(s))
        assert load_audio("s.wav").audio is not None


# --------------------------------------------------------------------------- bad input table

Maker = Callable[[Path], str]


def _write(name: str, data: bytes) -> Maker:
    def make(d: Path) -> str:
        (d / name).write_bytes(data)
        return name
    return make


def _mkdir(d: Path) -> str:
    (d / "frames").mkdir()
    return "frames"


def _noperm(d: Path) -> str:
    if os.geteuid() == 0:
        pytest.skip("root can read a chmod 000 file (see test_permission_denied_patched)")
    p = d / "secret.png"
    p.write_bytes(OK_PNG)
    p.chmod(0)
    return "secret.png"


def _fifo(d: Path) -> str:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(d / "pipe.png")
    return "pipe.png"


def _const(arg: str) -> Maker:
    return lambda d: arg


def _big_wav(d: Path) -> str:
    data = wav_bytes(0.5)
    extra = 16 * 1024 * 1024
    # fix the RIFF and data sizes, then append the samples without building them in memory
    head = bytearray(data)
    head[4:8] = (len(data) - 8 + extra).to_bytes(4, "little")
    head[40:44] = (len(data) - 44 + extra).to_bytes(4, "little")
    with open(d / "huge.wav", "wb") as f:
        f.write(head)
        f.truncate(len(head) + extra)
    return "huge.wav"


PNG_300 = png_bytes(300, 300)

# (row id, loader, flag, make -> arg, expected message substring). One row per rule; the
# README table "bad input -> message" is generated from these rows.
BAD_INPUT_ROWS: list[tuple[str, str, str, Maker, str]] = [
    ("missing file", "image", "IMAGE", _const("nope.png"), "nope.png: no such file."),
    ("directory", "image", "IMAGE", _mkdir, "frames: is a directory, not a file."),
    ("permission denied", "image", "IMAGE", _noperm, "secret.png: permission denied."),
    ("empty file", "image", "IMAGE", _write("empty.png", b""),
     "empty.png: file is empty (0 bytes)."),
    ("not a regular file", "image", "IMAGE", _fifo, "pipe.png: not a regular file"),
    ("unsupported image format", "image", "IMAGE", _write("anim.gif", b"GIF89a" + bytes(40)),
     "anim.gif: not a supported image (content looks like GIF); the service accepts JPEG, "
     "PNG, BMP or WEBP."),
    ("unrecognised content", "image", "IMAGE", _write("notes.png", b"just some text\n"),
     "notes.png: not a supported image (content not recognised)"),
    ("damaged header", "image", "IMAGE", _write("cut.png", OK_PNG[:12]),
     "cut.png: looks like PNG but its header is damaged or cut short."),
    ("image > 10 MiB", "image", "IMAGE",
     _write("big.png", png_bytes(640, 480, pad_to=IMAGE_MAX_BYTES + 1000)),
     "big.png: image is 10.0 MiB (10486760 bytes); the limit is 10 MiB (10485760 bytes). "
     "Compress or resize it, or pass --fit to let wanvid shrink it."),
    ("image too large (px)", "image", "IMAGE", _write("photo.png", png_bytes(2400, 1800)),
     "photo.png: image is 2400×1800 px; width and height must be 360..2000 px. Resize it, or "
     "pass --fit to let wanvid do it."),
    ("image too small (px)", "image", "--last-frame", _write("tiny.jpg", jpeg_bytes(300, 300)),
     "tiny.jpg: image is 300×300 px; width and height must be 360..2000 px."),
    ("PNG with alpha", "image", "IMAGE", _write("logo.png", png_bytes(640, 480, colour=6)),
     "logo.png: PNG image has an alpha channel (transparency), which the service does not "
     "accept. Flatten it onto a solid background, or pass --fit to let wanvid do it."),
    ("PNG with tRNS", "image", "IMAGE",
     _write("key.png", png_bytes(640, 480, colour=3, trns=True)),
     "key.png: PNG image has an alpha channel"),
    ("WEBP with alpha", "image", "IMAGE",
     _write("s.webp", webp_bytes(640, 480, kind="VP8X", alpha=True)),
     "s.webp: WEBP image has an alpha channel"),
    ("BMP with alpha", "image", "IMAGE",
     _write("a.bmp", bmp_bytes(400, 400, bpp=32, header=124, compression=3,
                               alpha_mask=0xFF000000)),
     "a.bmp: BMP image has an alpha channel"),
    ("audio > 15 MiB", "audio", "--audio", _big_wav,
     "huge.wav: audio is 16.0 MiB (16781260 bytes); the limit is 15 MiB (15728640 bytes)."),
    ("audio < 3 s", "audio", "--audio", _write("short.wav", wav_bytes(2)),
     "short.wav: audio is 2 s long; it must be 3..30 s. Use a clip of at least 3 s."),
    ("audio > 30 s", "audio", "--audio", _write("long.wav", wav_bytes(40)),
     "long.wav: audio is 40 s long; it must be 3..30 s. Trim it"),
    ("audio not WAV/MP3", "audio", "--audio", _write("voice.ogg", b"OggS" + bytes(60)),
     "voice.ogg: not a supported audio file (content looks like Ogg); the service accepts "
     "WAV or MP3."),
    ("image given as audio", "audio", "--audio", _write("a.png", OK_PNG),
     "a.png: not a supported audio file (content looks like PNG image)"),
    ("damaged WAV", "audio", "--audio", _write("bad.wav", b"RIFF\x04\x00\x00\x00WAVE"),
     "bad.wav: looks like WAV but its duration cannot be read"),
    ("data: URI not base64", "image", "IMAGE", _const("data:image/png,rawbytes"),
     "IMAGE (data: URI): not base64-encoded (no ';base64')."),
    ("data: URI bad base64", "image", "IMAGE", _const("data:image/png;base64,iVBOR*w0K"),
     "IMAGE (data: URI): payload is not valid base64 (only base64 data is allowed)."),
    ("data: URI unsupported MIME", "image", "--last-frame",
     _const(b64uri("image/gif", b"GIF89a")),
     "--last-frame (data: URI): MIME type 'image/gif' is not supported; use one of image/jpeg, "
     "image/png, image/bmp, image/webp."),
    ("data: URI without comma", "image", "IMAGE", _const("data:image/png;base64"),
     "IMAGE (data: URI): malformed, no comma before the data."),
    ("data: URI without data", "image", "IMAGE", _const("data:image/png;base64,"),
     "IMAGE (data: URI): holds no data (0 bytes)."),
    ("data: URI with bad image", "image", "IMAGE", _const(b64uri("image/png", PNG_300)),
     "IMAGE (data: URI): image is 300×300 px; width and height must be 360..2000 px. "
     "Resize it."),
    ("other URL scheme", "image", "IMAGE", _const("ftp://host/a.png"),
     "ftp://host/a.png: unsupported scheme 'ftp:'; IMAGE takes an http(s) URL, a data: URI "
     "or a local JPEG, PNG, BMP or WEBP file."),
    ("other scheme without //", "audio", "--audio", _const("s3:bucket/a.mp3"),
     "s3:bucket/a.mp3: unsupported scheme 's3:'; --audio takes"),
    ("URL without host", "image", "IMAGE", _const("https:///a.png"),
     "https:///a.png: URL has no host name;"),
    ("empty argument", "image", "--last-frame", _const(""), "--last-frame: empty value;"),
]


@pytest.mark.parametrize(("loader", "flag", "make", "expected"),
                         [r[1:] for r in BAD_INPUT_ROWS], ids=[r[0] for r in BAD_INPUT_ROWS])
def test_bad_input(cwd: Path, loader: str, flag: str, make: Maker, expected: str) -> None:
    arg = make(cwd)
    with pytest.raises(BadInputError) as ei:
        if loader == "audio":
            load_audio(arg, flag=flag)
        else:
            load_image(arg, role="image", flag=flag)
    msg = ei.value.message
    assert expected in msg
    assert "\n" not in msg and msg.rstrip().endswith(".")
    assert ei.value.status == ExitStatus.BAD_INPUT


def test_permission_denied_patched(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (cwd / "secret.png").write_bytes(OK_PNG)

    def deny(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(media, "_open_binary", deny)
    with pytest.raises(BadInputError, match=r"^secret\.png: permission denied\. Make it "
                                            r"readable, e.g\. chmod u\+r secret\.png\.$"):
        load_image("secret.png", role="image", flag="IMAGE")


def test_audio_model_without_audio() -> None:
    audio = load_audio("https://example.com/a.mp3")
    flash = find_model("wan2.2-i2v-flash")
    assert flash is not None
    with pytest.raises(BadInputError) as ei:
        check_audio_for_model(audio, flash, 5, lambda m: None)
    able = [m.name for m in MODELS if m.takes("driving_audio")]
    assert able and all(name in ei.value.message for name in able)
    assert ei.value.message.startswith("--audio: model wan2.2-i2v-flash does not take an "
                                       "audio track;")


def test_audio_longer_than_video_warns(cwd: Path) -> None:
    (cwd / "voice.wav").write_bytes(wav_bytes(12))
    (cwd / "ok.wav").write_bytes(wav_bytes(4))
    model = next(m for m in MODELS if m.audio)
    warnings: list[str] = []
    check_audio_for_model(load_audio("voice.wav"), model, 5, warnings.append)
    assert warnings == ["voice.wav: audio is 12 s but the video is 5 s; the service keeps "
                        "only the first 5 s."]
    warnings.clear()
    check_audio_for_model(load_audio("ok.wav"), model, 5, warnings.append)
    check_audio_for_model(load_audio("voice.wav"), model, 15, warnings.append)
    check_audio_for_model(load_audio("https://e.com/x.mp3"), model, 5, warnings.append)
    assert warnings == []


# --------------------------------------------------------------------------- kf2v aspect


def _img(w: int, h: int, name: str, role: str) -> MediaInput:
    return from_bytes(png_bytes(w, h), "image/png", arg=name, role=role)


def test_frame_aspect_warning() -> None:
    warnings: list[str] = []
    check_frame_aspects(_img(1600, 1200, "a.png", "first frame"),
                        _img(1000, 1000, "b.png", "last frame"), warnings.append)
    assert len(warnings) == 1
    assert warnings[0].startswith("first frame a.png is 1600×1200 (aspect 1.333) but last "
                                  "frame b.png is 1000×1000 (aspect 1.000), 25% apart;")


@pytest.mark.parametrize(("first", "last"), [
    ((1600, 1200), (800, 600)), ((1000, 1000), (1000, 1040)), ((1000, 1000), (1000, 960)),
])
def test_frame_aspect_within_tolerance(first: tuple[int, int], last: tuple[int, int]) -> None:
    warnings: list[str] = []
    check_frame_aspects(_img(*first, "a.png", "first frame"),
                        _img(*last, "b.png", "last frame"), warnings.append)
    assert warnings == []


def test_frame_aspect_unknown_for_urls() -> None:
    warnings: list[str] = []
    url = load_image("https://e.com/a.png", role="first frame", flag="--first-frame")
    check_frame_aspects(url, _img(1000, 400, "b.png", "last frame"), warnings.append)
    assert warnings == []


# --------------------------------------------------------------------------- encoding


def test_iter_value_chunks_join_to_base64(cwd: Path) -> None:
    data = png_bytes(640, 480, pad_to=100_001)
    (cwd / "a.png").write_bytes(data)
    mi = load_image("a.png", role="image", flag="IMAGE")
    expected = b"data:image/png;base64," + base64.b64encode(data)
    for chunk in (1, 3, 7, 1000, 65536, 3 * 1024 * 1024):
        pieces = list(mi.iter_value(chunk=chunk))
        assert pieces[0] == b"data:image/png;base64,"
        assert b"".join(pieces) == expected, chunk
        assert max(len(p) for p in pieces[1:]) <= 4 * max(1, chunk // 3)
    assert mi.encoded_length() == len(expected) == len(mi.value())
    dm = load_image(expected.decode(), role="image", flag="IMAGE")
    assert b"".join(dm.iter_value(chunk=10)) == expected
    assert dm.encoded_length() == len(expected)


def test_iter_value_file_changed(cwd: Path) -> None:
    (cwd / "a.png").write_bytes(OK_PNG)
    mi = load_image("a.png", role="image", flag="IMAGE")
    (cwd / "a.png").write_bytes(OK_PNG + b"x")
    with pytest.raises(BadInputError, match="changed while wanvid was reading"):
        mi.value()
    os.remove(cwd / "a.png")
    with pytest.raises(BadInputError, match="cannot read the file any more"):
        mi.value()


def test_preview(cwd: Path) -> None:
    data = png_bytes(640, 480, pad_to=2_000_000)
    (cwd / "a.png").write_bytes(data)
    mi = load_image("a.png", role="image", flag="IMAGE")
    p = mi.preview()
    n = mi.encoded_length()
    assert p == f"{mi.value()[:48]}…({n} chars)"
    assert p.startswith("data:image/png;base64,iVBORw0KGgo")
    assert mi.preview(keep=30) == f"data:image/png;base64,iVBORw0K…({n} chars)"
    dm = load_image(b64uri("image/png", OK_PNG), role="image", flag="IMAGE")
    assert dm.preview(keep=10**9) == dm.value()
    assert dm.preview().endswith(f"…({dm.encoded_length()} chars)")


def test_body_bytes_matches_json_dumps(cwd: Path) -> None:
    big = png_bytes(640, 480, pad_to=3_000_001)
    (cwd / "first.png").write_bytes(big)
    (cwd / "voice.wav").write_bytes(wav_bytes(4))
    first = load_image("first.png", role="first frame", flag="--first-frame")
    last = load_image(b64uri("image/jpeg", jpeg_bytes(800, 600)), role="last frame",
                      flag="--last-frame")
    url = load_image('https://example.com/ü "q"\\.png', role="image", flag="IMAGE")
    audio = load_audio("voice.wav")
    payload = {
        "model": "wan2.2-kf2v-flash",
        "input": {"prompt": "a “cat” — ünïcode\n", "first_frame_url": first,
                  "last_frame_url": last, "audio_url": audio, "extra": [url, (1, None)]},
        "parameters": {"resolution": "720P", "prompt_extend": True, "seed": 7},
    }
    substituted = json.loads(json.dumps(payload, default=lambda m: m.value()))
    for kwargs in ({}, {"separators": (",", ":")}, {"ensure_ascii": False, "sort_keys": True}):
        body = body_bytes(payload, **kwargs)
        assert body == json.dumps(substituted, **kwargs).encode("utf-8"), kwargs
    assert body_bytes({"a": 1}) == b'{"a": 1}'


def test_body_bytes_one_copy(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file's data URI is streamed in chunks, never built as one string."""
    (cwd / "a.png").write_bytes(png_bytes(640, 480, pad_to=1_000_000))
    mi = load_image("a.png", role="image", flag="IMAGE")
    monkeypatch.setattr(MediaInput, "value", lambda self: pytest.fail("value() called"))
    body = body_bytes({"input": {"img_url": mi}})
    assert len(body) == len('{"input": {"img_url": ""}}') + mi.encoded_length()


# --------------------------------------------------------------------------- from_bytes


def test_from_bytes() -> None:
    mi = from_bytes(jpeg_bytes(1280, 720), "image/jpeg", arg="photo.heic (fitted)",
                    role="image")
    assert (mi.kind, mi.mime, mi.path) == ("data", "image/jpeg", None)
    assert mi.value().startswith("data:image/jpeg;base64,/9j/")
    with pytest.raises(BadInputError, match=r"^photo\.png \(fitted\): image is 300×300 px"):
        from_bytes(PNG_300, "image/png", arg="photo.png (fitted)", role="image")
    with pytest.raises(ValueError):
        from_bytes(OK_PNG, "image/jpeg", arg="x", role="image")


# --------------------------------------------------------------------------- output size


def test_predict_output_size_reference_example() -> None:
    assert predict_output_size(750, 1000, "720P") == (816, 1104)
    assert predict_output_size(750, 1000, "720p") == (816, 1104)


@pytest.mark.parametrize(("w", "h", "tier", "expected"), [
    (1280, 720, "720P", (1280, 720)),
    (720, 1280, "720P", (720, 1280)),
    (832, 480, "480P", (832, 480)),
    (1000, 1000, "720P", (960, 960)),
])
def test_predict_output_size_exact(w: int, h: int, tier: str, expected: tuple[int, int]) -> None:
    assert predict_output_size(w, h, tier) == expected


@pytest.mark.parametrize("tier", list(TIER_PIXELS))
@pytest.mark.parametrize(("w", "h"), [(360, 360), (2000, 360), (360, 2000), (750, 1000),
                                      (1920, 1080), (1234, 567), (1999, 1998)])
def test_predict_output_size_properties(w: int, h: int, tier: str) -> None:
    ow, oh = predict_output_size(w, h, tier)
    assert ow % 16 == 0 and oh % 16 == 0
    assert ow * oh <= TIER_PIXELS[tier]
    assert ow * oh >= TIER_PIXELS[tier] * 0.85  # close to the tier
    assert abs(ow / oh - w / h) / (w / h) < 0.1  # aspect ratio kept (up to the rounding)


def test_predict_output_size_bad_tier() -> None:
    with pytest.raises(ValueError):
        predict_output_size(750, 1000, "4K")



# --------------------------------------------------------------------------- --fit deferral


def test_fit_defers_fixable_rules(cwd: Path) -> None:
    (cwd / "photo.png").write_bytes(png_bytes(2400, 1800))
    (cwd / "anim.gif").write_bytes(b"GIF89a" + bytes(40))
    (cwd / "ok.png").write_bytes(OK_PNG)
    big = load_image("photo.png", role="image", flag="IMAGE", fit=True)
    assert big.deferred and (big.kind, big.mime, big.image) == ("file", None, None)
    with pytest.raises(BadInputError, match=r"^photo\.png: image is 2400×1800 px"):
        big.value()
    with pytest.raises(BadInputError, match=r"^photo\.png: image is 2400×1800 px"):
        body_bytes({"img_url": big})
    gif = load_image("anim.gif", role="image", flag="IMAGE", fit=True)
    assert gif.deferred
    with pytest.raises(BadInputError, match="not a supported image"):
        gif.preview()
    ok = load_image("ok.png", role="image", flag="IMAGE", fit=True)
    assert not ok.deferred and ok == load_image("ok.png", role="image", flag="IMAGE")
    # a deferred input that turns out fine (e.g. replaced on disk) is checked and filled in
    (cwd / "photo.png").write_bytes(OK_PNG)
    assert big.value() == b64uri("image/png", OK_PNG) and big.image is not None


@pytest.mark.parametrize(("arg", "expected"), [
    ("nope.png", "nope.png: no such file."),
    (b64uri("image/png", PNG_300), "IMAGE (data: URI): image is 300×300 px"),
    ("ftp://h/a.png", "unsupported scheme"),
])
def test_fit_still_checks_the_rest(cwd: Path, arg: str, expected: str) -> None:
    with pytest.raises(BadInputError, match=re.escape(expected)):
        load_image(arg, role="image", flag="IMAGE", fit=True)
