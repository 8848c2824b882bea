"""``--fit`` (wanvid/fit.py): what is sent must be an image the service accepts.

Fixtures are real files written by Pillow: a 12 MP phone JPEG with EXIF orientation 6,
GPS, XMP, ICC and a comment; an RGBA PNG; a small BMP; an extreme strip; a 12 MB PNG of
noise; an animated GIF; a rotated TIFF. Every result is re-opened and checked the way the
service would see it.
"""

from __future__ import annotations

import io
import math
import random
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from wanvid import fit  # noqa: E402
from wanvid.errors import BadInputError, ExitStatus  # noqa: E402
from wanvid.fit import FitResult, fit_image, fit_pair, target_size  # noqa: E402
from wanvid.models import IMAGE_MAX_BYTES, IMAGE_MAX_PX, IMAGE_MIN_PX, TIER_PIXELS  # noqa: E402

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
MARKER = 300  # side of the red square painted in the stored top-left corner


# --- fixtures -------------------------------------------------------------------------------

def noise_rgb(size: tuple[int, int], seed: int = 1) -> Image.Image:
    """Incompressible, but the same every run."""
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))


def photo_like(size: tuple[int, int]) -> Image.Image:
    """Gradient + sensor-like noise; blue held at 128 so nothing in it looks like MARKER red."""
    grad = Image.linear_gradient("L").resize(size)
    rnd = random.Random(2).randbytes(size[0] * size[1])
    noise = Image.frombytes("L", size, rnd).point(lambda v: 96 + v // 4)
    return Image.merge("RGB", (grad, noise, Image.new("L", size, 128)))


def is_close(px: tuple[int, ...], want: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(px[:3], want, strict=True))


@pytest.fixture(scope="module")
def phone_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4032×3024 as stored, EXIF orientation 6 (display rotated 90° clockwise), GPS etc."""
    im = photo_like((4032, 3024))
    im.paste(RED, (0, 0, MARKER, MARKER))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Phone 15"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (37.0, 46.0, 29.7)
    gps[3], gps[4] = "W", (122.0, 25.0, 9.9)
    gps[0x1B] = b"ASCII\x00\x00\x00GPS"  # GPSProcessingMethod
    path = tmp_path_factory.mktemp("fit") / "IMG_0001.jpg"
    im.save(path, "JPEG", quality=90, exif=exif, comment=b"shot on a phone",
            icc_profile=b"\x00" * 128, xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    raw = path.read_bytes()
    assert b"Exif" in raw and b"GPS" in raw and b"adobe" in raw  # the checks below mean something
    return path


@pytest.fixture(scope="module")
def rgba_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2600×1200: left half fully transparent (its colour channels red), right half blue."""
    im = Image.new("RGBA", (2600, 1200), (255, 0, 0, 0))
    im.paste((0, 0, 255, 255), (1300, 0, 2600, 1200))
    path = tmp_path_factory.mktemp("fit") / "logo.png"
    im.save(path)
    return path


@pytest.fixture(scope="module")
def big_noise_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fit") / "noise.png"
    noise_rgb((2000, 2000)).save(path, compress_level=1)
    assert path.stat().st_size > IMAGE_MAX_BYTES
    return path


def save(tmp_path: Path, name: str, im: Image.Image, **params: object) -> Path:
    path = tmp_path / name
    if path.suffix == ".png":
        params.setdefault("compress_level", 1)  # noise compresses badly and slowly
    im.save(path, **params)
    return path


PNG_PLAIN = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs"}
# Long enough never to turn up by chance in compressed pixels.
NEEDLES = (b"Exif\x00\x00", b"PhoneMaker", b"adobe:ns:meta", b"shot on a phone",
           b"ASCII\x00\x00\x00GPS", b"ICC_PROFILE")


def jpeg_header_and_scan(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The marker segments before the first scan, and everything after it."""
    assert data[:2] == b"\xff\xd8"
    segments, pos = [], 2
    while True:
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        segments.append((marker, data[pos + 4:pos + 2 + length]))
        pos += 2 + length
        if marker == 0xDA:  # SOS
            return segments, data[pos:]


def riff_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        ctype, length = struct.unpack("<4sI", data[pos:pos + 8])
        chunks.append(ctype)
        pos += 8 + length + (length & 1)
    return chunks


def png_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        chunks.append(ctype)
        pos += 12 + length
    return chunks


def assert_no_metadata_bytes(r: FitResult) -> None:
    """No container structure that can carry EXIF, GPS, XMP, ICC or comments."""
    for needle in NEEDLES:
        assert needle not in r.data, needle
    if r.format == "JPEG":
        header, scan = jpeg_header_and_scan(r.data)
        markers = [m for m, _ in header]
        # JFIF APP0, tables, frame and scan headers only: no APP1 (EXIF/XMP), APP2 (ICC),
        # APP13 (IPTC) or COM
        assert set(markers) <= {0xE0, 0xDB, 0xC0, 0xC4, 0xDA}, [hex(m) for m in markers]
        assert header[0][1].startswith(b"JFIF\x00")
        head = r.data[:len(r.data) - len(scan)]
        assert b"Exif" not in head and b"GPS" not in head
        # in entropy-coded data 0xFF is followed by 0x00 or RSTn; anything else is a marker
        assert scan.endswith(b"\xff\xd9")
        assert re.search(rb"\xff[^\x00\xd0-\xd7]", scan[:-2]) is None
    elif r.format == "PNG":
        assert set(png_chunks(r.data)) <= PNG_PLAIN
    elif r.format == "WEBP":
        assert set(riff_chunks(r.data)) <= {b"VP8 ", b"VP8L"}


def probe_media(data: bytes) -> Any:
    """``wanvid.media.probe_image`` if the module has it yet, else None."""
    try:
        from wanvid import media
    except ImportError:
        return None
    probe = getattr(media, "probe_image", None)
    return probe(data) if probe else None


def assert_sendable(r: FitResult) -> Image.Image:
    """What the service gets: a supported format, in limits, no alpha, no metadata at all."""
    assert len(r.data) <= IMAGE_MAX_BYTES
    im = Image.open(io.BytesIO(r.data))
    assert im.format == r.format and r.format in fit.MIME_TYPES
    assert r.mime == fit.MIME_TYPES[r.format]
    assert im.size == (r.width, r.height)
    assert IMAGE_MIN_PX <= im.width <= IMAGE_MAX_PX and IMAGE_MIN_PX <= im.height <= IMAGE_MAX_PX
    assert im.mode in ("RGB", "L", "P") and "transparency" not in im.info
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "photoshop"):
        assert key not in im.info, key
    exif = im.getexif()
    assert not exif and not exif.get_ifd(0x8825)
    assert_no_metadata_bytes(r)
    info = probe_media(r.data)
    if info is not None:
        assert info.has_alpha is False
        assert (info.width, info.height) == (r.width, r.height)
        assert (info.mime, info.format) == (r.mime, r.format)
    return im.convert("RGB")


# --- target_size ----------------------------------------------------------------------------

@pytest.mark.parametrize(("w", "h", "res", "want"), [
    (4032, 3024, "720P", (1357, 1018)),   # budget-bound: 1.5 × 1280×720
    (3024, 4032, None, (1500, 2000)),     # None means 1080P; long side bound
    (1280, 720, "720P", (1280, 720)),     # already fits: untouched
    (2000, 360, "1080P", (2000, 360)),    # exactly at the ratio limit
    (300, 300, "1080P", (360, 360)),      # upscaled only to the minimum
    (100, 500, "480P", (360, 1800)),      # short side to 360, aspect kept
    (3000, 600, "480P", (1800, 360)),     # 360 px minimum wins over the 480P budget
])
def test_target_size_table(w: int, h: int, res: str | None, want: tuple[int, int]) -> None:
    assert target_size(w, h, res) == want


@pytest.mark.parametrize("res", ["480P", "720P", "1080P", None])
@pytest.mark.parametrize(("w", "h"), [
    (4032, 3024), (3024, 4032), (8000, 6000), (12000, 9000), (2600, 1200), (1200, 2600),
    (4000, 720), (361, 2000), (5000, 1000), (640, 480), (359, 359), (50, 80), (1999, 1999),
    (2001, 400), (1920, 1080), (16320, 12240),
])
def test_target_size_bounds_budget_and_aspect(w: int, h: int, res: str | None) -> None:
    tw, th = target_size(w, h, res)
    assert IMAGE_MIN_PX <= tw <= IMAGE_MAX_PX and IMAGE_MIN_PX <= th <= IMAGE_MAX_PX
    # aspect ratio kept to within a pixel
    assert abs(tw / th - w / h) <= (w / h) * (1 / min(tw, th)) + 1e-9
    budget = 1.5 * TIER_PIXELS[res or "1080P"]
    if min(tw, th) > IMAGE_MIN_PX:  # the budget holds unless the 360 px minimum overrides it
        assert tw * th <= budget
    fits = (IMAGE_MIN_PX <= min(w, h) and max(w, h) <= IMAGE_MAX_PX and w * h <= budget)
    if fits:
        assert (tw, th) == (w, h)
    if min(w, h) < IMAGE_MIN_PX:  # upscaled, but no further than needed
        assert min(tw, th) == IMAGE_MIN_PX
    else:
        assert tw <= w and th <= h
    if (tw, th) != (w, h) and min(tw, th) > IMAGE_MIN_PX and max(tw, th) < IMAGE_MAX_PX:
        # when the budget is what bound it, it is used up, not undershot
        assert tw * th >= budget * 0.99


@pytest.mark.parametrize(("w", "h"), [(5000, 300), (300, 5000), (2001, 360), (100, 600)])
def test_target_size_refuses_extreme_aspect(w: int, h: int) -> None:
    with pytest.raises(BadInputError) as e:
        target_size(w, h, "720P")
    msg = e.value.message
    assert f"{w / h:.2f}" in msg and "0.18" in msg and "5.56" in msg and "crop" in msg
    assert e.value.status == ExitStatus.BAD_INPUT


def test_target_size_unknown_resolution() -> None:
    with pytest.raises(BadInputError, match="4K"):
        target_size(1000, 1000, "4K")
    assert target_size(4032, 3024, "720p") == target_size(4032, 3024, "720P")


# --- fit_image: phone photo -------------------------------------------------------------------

def test_phone_photo_oriented_scaled_and_stripped(phone_jpeg: Path) -> None:
    r = fit_image(phone_jpeg, resolution="720P")
    im = assert_sendable(r)
    assert r.changed and r.format == "JPEG" and r.mime == "image/jpeg"
    assert (r.orig_width, r.orig_height, r.orig_format) == (4032, 3024, "JPEG")
    assert r.orig_size == phone_jpeg.stat().st_size
    # stored landscape, displayed portrait: orientation applied, then the 720P budget
    assert (r.width, r.height) == target_size(3024, 4032, "720P") == (1018, 1357)
    assert r.height > r.width
    assert r.width * r.height <= 1.5 * TIER_PIXELS["720P"]
    # orientation 6 puts the stored top-left corner at the displayed top-right
    m = round(MARKER * r.width / 3024 / 2)  # inside the scaled marker
    assert is_close(im.getpixel((r.width - m, m)), RED)
    for corner in ((m, m), (m, r.height - m), (r.width - m, r.height - m)):
        assert not is_close(im.getpixel(corner), RED), corner


def test_phone_photo_describe(phone_jpeg: Path) -> None:
    r = fit_image(phone_jpeg, resolution="720P")
    line = r.describe("IMG_0001.jpg")
    assert line.startswith("IMG_0001.jpg: fitted 4032×3024 JPEG ")
    assert f"MiB → 1018×1357 JPEG {len(r.data) / 1024:.1f} KiB" in line
    assert "EXIF orientation applied" in line and "metadata removed" in line
    assert "\n" not in line


def test_large_jpeg_is_decoded_in_draft_mode(phone_jpeg: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import JpegImagePlugin

    calls: list[tuple[int, int]] = []
    real = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, mode: str | None,
            size: tuple[int, int] | None) -> object:
        assert size is not None
        calls.append(size)
        return real(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    r = fit_image(phone_jpeg, resolution="480P")
    # asked for at least the output size, in stored (landscape) orientation
    assert calls and calls[0][0] >= r.height and calls[0][1] >= r.width
    assert (r.width, r.height) == target_size(3024, 4032, "480P")


def test_jpeg_with_exif_but_right_size_is_reencoded(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(0x8825)[0x1B] = b"ASCII\x00\x00\x00GPS"
    path = save(tmp_path, "small.jpg", photo_like((1200, 900)), quality=90, exif=exif)
    r = fit_image(path, resolution="720P")
    assert r.changed and (r.width, r.height) == (1200, 900)
    assert_sendable(r)
    assert "metadata removed" in r.describe("small.jpg")


# --- alpha, colours ------------------------------------------------------------------------

@pytest.mark.parametrize(("background", "want"), [
    ("white", WHITE), ("black", BLACK), ("#00ff00", GREEN),
])
def test_alpha_flattened_onto_background(rgba_png: Path, background: str,
                                         want: tuple[int, int, int]) -> None:
    r = fit_image(rgba_png, resolution="480P", background=background)
    im = assert_sendable(r)
    assert r.format == "JPEG"
    assert (r.width, r.height) == target_size(2600, 1200, "480P")
    assert is_close(im.getpixel((20, r.height // 2)), want, tol=8)  # was transparent red
    assert is_close(im.getpixel((r.width - 20, r.height // 2)), BLUE, tol=8)
    assert f"transparency flattened onto {background}" in r.describe("logo.png")


@pytest.mark.parametrize("mode", ["LA", "P"])
def test_other_alpha_modes_flattened(tmp_path: Path, mode: str) -> None:
    if mode == "LA":
        im = Image.new("LA", (800, 600), (0, 0))
        im.paste((0, 255), (400, 0, 800, 600))
        path = save(tmp_path, "la.png", im)
    else:
        im = Image.new("P", (800, 600), 1)
        im.putpalette([255, 0, 0, 0, 0, 0] + [0] * 762)
        im.paste(0, (0, 0, 400, 600))  # index 0 (red) is the transparent one
        path = save(tmp_path, "p.png", im, transparency=0)
    r = fit_image(path, resolution="720P")
    px = assert_sendable(r)
    assert r.changed and is_close(px.getpixel((100, 300)), WHITE, tol=8)
    assert is_close(px.getpixel((700, 300)), BLACK, tol=8)


def test_bad_background_colour_names_the_flag(rgba_png: Path) -> None:
    with pytest.raises(BadInputError, match="--fit-background") as e:
        fit_image(rgba_png, resolution="720P", background="notacolour")
    assert "notacolour" in e.value.message


# --- other formats -----------------------------------------------------------------------------

def test_small_bmp_upscaled_to_minimum(tmp_path: Path) -> None:
    path = save(tmp_path, "tiny.bmp", photo_like((300, 300)))
    r = fit_image(path, resolution="720P")
    assert_sendable(r)
    assert r.changed and r.format == "JPEG" and (r.width, r.height) == (360, 360)
    assert r.orig_format == "BMP"


def test_strip_refused_naming_file(tmp_path: Path) -> None:
    path = save(tmp_path, "panorama.png", photo_like((5000, 300)))
    with pytest.raises(BadInputError) as e:
        fit_image(path, resolution="720P")
    msg = e.value.message
    assert str(path) in msg and "16.67" in msg and "0.18" in msg and "5.56" in msg
    assert "crop" in msg


@pytest.mark.parametrize(("res", "want"), [
    ("1080P", target_size(2000, 2000, "1080P")), ("480P", target_size(2000, 2000, "480P")),
])
def test_12mb_png_comes_out_under_10mb(big_noise_png: Path, res: str,
                                       want: tuple[int, int]) -> None:
    r = fit_image(big_noise_png, resolution=res)
    assert_sendable(r)
    assert r.changed and r.format == "JPEG" and (r.width, r.height) == want
    assert r.width * r.height <= 1.5 * TIER_PIXELS[res]


def test_jpeg_quality_steps_down_to_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = noise_rgb((800, 800))
    path = save(tmp_path, "noise.bmp", src)
    encoded = {}
    for q in (92, 85):
        buf = io.BytesIO()
        src.save(buf, "JPEG", quality=q)
        encoded[q] = buf.getvalue()
    monkeypatch.setattr(fit, "IMAGE_MAX_BYTES", len(encoded[92]) - 1)
    r = fit_image(path, resolution="1080P")
    assert r.data == encoded[85]
    assert "JPEG quality 85" in r.describe("noise.bmp")
    monkeypatch.setattr(fit, "IMAGE_MAX_BYTES", 1000)
    with pytest.raises(BadInputError, match="quality 75") as e:
        fit_image(path, resolution="1080P")
    assert str(path) in e.value.message


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (640, 480), RED), Image.new("RGB", (640, 480), GREEN)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    r = fit_image(path, resolution="720P")
    im = assert_sendable(r)
    assert r.orig_format == "GIF" and r.format == "JPEG" and (r.width, r.height) == (640, 480)
    assert is_close(im.getpixel((320, 240)), RED, tol=8)
    assert "first of 2 frames" in r.describe("anim.gif")


def test_tiff_orientation_and_tags(tmp_path: Path) -> None:
    im = photo_like((1600, 900))
    im.paste(RED, (0, 0, 200, 200))
    exif = Image.Exif()
    exif[0x0112] = 8  # display rotated 90° anticlockwise
    exif[0x010F] = "PhoneMaker"
    path = save(tmp_path, "scan.tif", im, exif=exif)
    r = fit_image(path, resolution="1080P")
    px = assert_sendable(r)
    assert r.orig_format == "TIFF" and (r.orig_width, r.orig_height) == (1600, 900)
    assert (r.width, r.height) == (900, 1600)
    # orientation 8 puts the stored top-left corner at the displayed bottom-left
    assert is_close(px.getpixel((50, 1550)), RED)
    assert not is_close(px.getpixel((50, 50)), RED)


def test_heic_when_pillow_heif_is_installed(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    path = save(tmp_path, "IMG.heic", photo_like((4032, 3024)), quality=80)
    r = fit_image(path, resolution="720P")
    assert_sendable(r)
    assert r.format == "JPEG" and (r.width, r.height) == target_size(4032, 3024, "720P")


@pytest.mark.parametrize("content", [b"", b"this is not an image\n" * 50])
def test_unreadable_file_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(BadInputError) as e:
        fit_image(path, resolution="720P")
    assert str(path) in e.value.message and e.value.status == ExitStatus.BAD_INPUT


def test_truncated_jpeg_named(tmp_path: Path, phone_jpeg: Path) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(phone_jpeg.read_bytes()[:5000])
    with pytest.raises(BadInputError) as e:
        fit_image(path, resolution="720P")
    assert str(path) in e.value.message


def test_pillow_bomb_limit_replaced_by_our_own(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path, "big.png", photo_like((800, 600)))
    # Pillow's own limit (here: tiny) does not stop a photo --fit can handle, and is restored
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert fit_image(path, resolution="720P").width == 800
    assert Image.MAX_IMAGE_PIXELS == 1000
    monkeypatch.setattr(fit, "MAX_FULL_DECODE_PIXELS", 800 * 600 - 1)
    with pytest.raises(BadInputError, match="800×600 is 0.5 MP, over the 0 MP --fit decodes "
                                            "at full size") as e:
        fit_image(path, resolution="720P")
    assert str(path) in e.value.message


def test_missing_file_named(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as e:
        fit_image(tmp_path / "nope.png", resolution="720P")
    assert "nope.png" in e.value.message


# --- passthrough -----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "fmt", "params"), [
    ("ok.png", "PNG", {}), ("ok.bmp", "BMP", {}), ("ok.webp", "WEBP", {"quality": 90}),
    ("ok.jpg", "JPEG", {"quality": 90}),
])
def test_clean_fitting_image_passes_through_byte_identical(
        tmp_path: Path, name: str, fmt: str, params: dict[str, object]) -> None:
    path = save(tmp_path, name, photo_like((1280, 720)), **params)
    r = fit_image(path, resolution="720P")
    assert not r.changed
    assert r.data == path.read_bytes()
    assert (r.format, r.mime, r.width, r.height) == (fmt, fit.MIME_TYPES[fmt], 1280, 720)
    assert_sendable(r)
    assert r.describe(name) == f"{name}: 1280×720 {fmt} {fit._human_size(r.orig_size)} " \
                               "is fine, sent unchanged"


def png_with_chunk(im: Image.Image, ctype: bytes, payload: bytes) -> bytes:
    """``im`` as PNG with one extra chunk just before IEND (after the pixels)."""
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=1)
    raw = buf.getvalue()
    chunk = (struct.pack(">I", len(payload)) + ctype + payload
             + struct.pack(">I", zlib.crc32(ctype + payload)))
    return raw[:-12] + chunk + raw[-12:]


@pytest.mark.parametrize(("ctype", "payload"), [
    (b"tEXt", b"GPS\x0037.7749,-122.4194"),
    (b"eXIf", b"MM\x00*\x00\x00\x00\x08\x00\x01\x01\x0f\x00\x02\x00\x00\x00\x04GPS\x00"
              b"\x00\x00\x00\x00"),
    (b"tIME", b"\x07\xe8\x01\x02\x03\x04\x05"),
    (b"prVt", b"private GPS blob"),
])
def test_png_with_metadata_after_pixels_is_reencoded(tmp_path: Path, ctype: bytes,
                                                     payload: bytes) -> None:
    path = tmp_path / "meta.png"
    path.write_bytes(png_with_chunk(photo_like((1280, 720)), ctype, payload))
    assert Image.open(path).size == (1280, 720)  # still a valid PNG
    r = fit_image(path, resolution="720P")
    assert r.changed and r.format == "JPEG" and (r.width, r.height) == (1280, 720)
    assert_sendable(r)
    assert ctype not in r.data and payload not in r.data


def webp_with_unknown_chunk(im: Image.Image, payload: bytes) -> bytes:
    """An extended WEBP carrying a chunk Pillow does not read (so ``info`` never shows it)."""
    buf = io.BytesIO()
    im.save(buf, "WEBP", quality=90, exif=Image.Exif().tobytes())  # makes it VP8X + EXIF
    raw = bytearray(buf.getvalue())
    assert raw[12:16] == b"VP8X" and raw[-22:-18] == b"EXIF"
    raw[20] &= ~0x08  # VP8X: no EXIF flag
    del raw[-22:]  # drop the EXIF chunk
    raw += b"C2PA" + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)
    raw[4:8] = struct.pack("<I", len(raw) - 8)
    return bytes(raw)


def jpeg_with_segment(im: Image.Image, marker: int, payload: bytes) -> bytes:
    """A JPEG with an extra APPn segment (C2PA uses APP11) right after SOI."""
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    raw = buf.getvalue()
    return raw[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + raw[2:]


@pytest.mark.parametrize("kind", ["webp", "jpeg"])
def test_unknown_segments_are_metadata_too(tmp_path: Path, kind: str) -> None:
    payload = b"content credentials: GPS 37.7749,-122.4194 by PhoneMaker"
    im = photo_like((1280, 720))
    path = tmp_path / f"c2pa.{kind}"
    path.write_bytes(webp_with_unknown_chunk(im, payload) if kind == "webp"
                     else jpeg_with_segment(im, 0xEB, payload))
    opened = Image.open(path)
    assert opened.size == (1280, 720) and not any(
        isinstance(v, bytes) and payload in v for v in opened.info.values())
    r = fit_image(path, resolution="720P")
    assert r.changed and r.format == "JPEG" and (r.width, r.height) == (1280, 720)
    assert_sendable(r)
    assert b"content credentials" not in r.data


@pytest.mark.parametrize(("name", "params"), [
    ("icc.png", {"icc_profile": b"\x00" * 128}),
    ("xmp.webp", {"xmp": b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"}),
    ("com.jpg", {"comment": b"shot on a phone"}),
])
def test_fitting_image_with_metadata_not_passed_through(tmp_path: Path, name: str,
                                                        params: dict[str, object]) -> None:
    path = save(tmp_path, name, photo_like((1280, 720)), **params)
    r = fit_image(path, resolution="720P")
    assert r.changed and r.format == "JPEG"
    assert_sendable(r)


def test_fitting_png_too_big_for_tier_is_not_passed_through(tmp_path: Path) -> None:
    path = save(tmp_path, "hd.png", photo_like((1920, 1080)))
    assert not fit_image(path, resolution="1080P").changed
    r = fit_image(path, resolution="480P")
    assert r.changed and (r.width, r.height) == target_size(1920, 1080, "480P")


# --- fit_pair / size= ------------------------------------------------------------------------

def thirds(size: tuple[int, int]) -> Image.Image:
    """Red outer quarter, green middle half, blue outer quarter (left to right)."""
    w, h = size
    im = Image.new("RGB", size, GREEN)
    im.paste(RED, (0, 0, w // 4, h))
    im.paste(BLUE, (w - w // 4, 0, w, h))
    return im


def test_fit_pair_shares_first_frame_size(phone_jpeg: Path, rgba_png: Path) -> None:
    a, b = fit_pair(phone_jpeg, rgba_png, resolution="720P")
    assert (a.width, a.height) == (b.width, b.height) == (1018, 1357)
    assert_sendable(a)
    assert_sendable(b)


def test_fit_pair_crops_rather_than_stretches(tmp_path: Path) -> None:
    first = save(tmp_path, "first.png", photo_like((900, 1200)))
    last = save(tmp_path, "last.png", thirds((1600, 800)))
    a, b = fit_pair(first, last, resolution="1080P")
    assert not a.changed and (a.width, a.height) == (900, 1200)
    im = assert_sendable(b)
    assert (b.width, b.height) == (900, 1200)
    # covering 900×1200 from 1600×800 keeps the middle 600 px: green edge to edge
    for x in (3, 450, 896):
        assert is_close(im.getpixel((x, 600)), GREEN, tol=12), x
    assert "centre-cropped" in b.describe("last.png")


def test_fit_pair_same_shape_scaled_without_crop(tmp_path: Path) -> None:
    first = save(tmp_path, "first.png", thirds((1600, 1200)))
    last = save(tmp_path, "last.png", thirds((3200, 2400)))
    a, b = fit_pair(first, last, resolution="720P")
    assert (b.width, b.height) == (a.width, a.height) == target_size(1600, 1200, "720P")
    im = assert_sendable(b)
    assert is_close(im.getpixel((3, b.height // 2)), RED, tol=12)
    assert is_close(im.getpixel((b.width - 4, b.height // 2)), BLUE, tol=12)
    assert "centre-cropped" not in b.describe("last.png")


def test_forced_size_equal_to_clean_image_passes_through(tmp_path: Path) -> None:
    path = save(tmp_path, "ok.png", photo_like((800, 600)))
    r = fit_image(path, resolution="720P", size=(800, 600))
    assert not r.changed and r.data == path.read_bytes()


@pytest.mark.parametrize("size", [(300, 600), (800, 2400)])
def test_forced_size_out_of_limits_refused(tmp_path: Path, size: tuple[int, int]) -> None:
    path = save(tmp_path, "ok.png", photo_like((800, 600)))
    with pytest.raises(BadInputError, match="360..2000"):
        fit_image(path, resolution="720P", size=size)


# --- Pillow missing (a broken install) ---------------------------------------------------------

def test_missing_pillow_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path, "ok.png", photo_like((800, 600)))
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(BadInputError) as e:
        fit_image(path, resolution="720P")
    assert e.value.message.startswith("--fit needs Pillow, which wanvid depends on")
    assert e.value.message.endswith("reinstall it: pip install pillow")
    assert e.value.status == ExitStatus.BAD_INPUT
    # target_size is plain arithmetic and works without it
    assert target_size(4032, 3024, "720P") == (1357, 1018)


def test_importing_fit_does_not_import_pillow() -> None:
    code = ("import sys, wanvid.fit; "
            "bad = sorted(m for m in sys.modules if m == 'PIL' or m.startswith('PIL.')); "
            "sys.exit(', '.join(bad) or 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr


def test_output_accepted_by_media_probe(phone_jpeg: Path, rgba_png: Path) -> None:
    media = pytest.importorskip("wanvid.media")
    if not hasattr(media, "probe_image"):
        pytest.skip("wanvid.media.probe_image not written yet")
    for r in (fit_image(phone_jpeg, resolution="720P"), fit_image(rgba_png, resolution="720P")):
        info = media.probe_image(r.data)
        assert info is not None and info.has_alpha is False
        assert (info.width, info.height, info.mime, info.format) == (
            r.width, r.height, r.mime, r.format)


def test_human_sizes() -> None:
    assert fit._human_size(512) == "512 B"
    assert fit._human_size(412 * 1024) == "412.0 KiB"
    assert fit._human_size(math.floor(6.1 * 1024 * 1024)) == "6.1 MiB"


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    im = Image.new("I;16", (800, 600), 0x8000)  # mid grey in 16 bits
    im.paste(0xFFFF, (0, 0, 400, 600))
    path = save(tmp_path, "deep.png", im)
    assert Image.open(path).mode.startswith("I")
    r = fit_image(path, resolution="720P")
    px = assert_sendable(r)
    assert r.changed and r.format == "JPEG"
    assert is_close(px.getpixel((600, 300)), (128, 128, 128), tol=4)
    assert is_close(px.getpixel((200, 300)), WHITE, tol=4)
