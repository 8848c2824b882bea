"""Local images are decoded in full before anything is sent (issue 16, items 9 and 10).

A header check alone let through a PNG cut to 100 bytes, a JPEG cut at 200 bytes and files
whose header is sound but whose pixel data is garbage: they were sent (and billed as a
failed task at best). Now each is refused with exit 2, one line naming the file, and no
request. Decompression bombs are refused from the header's pixel count before any decoding,
with or without --fit; --fit shrinks large images a strip at a time. Pillow is imported only
by commands that handle a local image.
"""

from __future__ import annotations

import base64
import io
import random
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import responses
from PIL import Image, ImageChops, ImageFile, ImageStat

from tests.conftest import Result
from tests.fixtures_media import png_bytes, png_chunk
from wanvid import fit
from wanvid.errors import BadInputError, ExitStatus
from wanvid.media import load_image, probe_image

Run = Callable[..., Result]


def _noise(size: tuple[int, int], seed: int = 1) -> Image.Image:
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))


def _encoded(fmt: str, size: tuple[int, int] = (800, 600), **save: object) -> bytes:
    buf = io.BytesIO()
    im = _noise(size) if fmt == "PNG" else Image.linear_gradient("L").resize(size).convert("RGB")
    im.save(buf, fmt, **save)
    return buf.getvalue()


PNG = _encoded("PNG")
JPEG = _encoded("JPEG", quality=90)


def _png_garbage_pixels() -> bytes:
    """IHDR of 800×600 RGB, then an IDAT of random bytes with a correct CRC."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 800, 600, 8, 2, 0, 0, 0))
    idat = png_chunk(b"IDAT", random.Random(4).randbytes(60_000))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + png_chunk(b"IEND", b"")


def _png_bit_flipped() -> bytes:
    """A real PNG with one byte of its pixel data changed (the IDAT CRC no longer fits)."""
    data = bytearray(PNG)
    at = PNG.index(b"IDAT") + 1000
    data[at] ^= 0x55
    return bytes(data)


def _jpeg_garbage_scan() -> bytes:
    """A real JPEG's headers up to the start of scan, then random entropy-coded data."""
    sos = JPEG.index(b"\xff\xda")
    length = struct.unpack(">H", JPEG[sos + 2:sos + 4])[0]
    head = JPEG[:sos + 2 + length]
    return head + random.Random(5).randbytes(len(JPEG) - len(head) - 2) + b"\xff\xd9"


CORRUPT = {
    "png-cut-at-100-bytes.png": PNG[:100],
    "png-cut-in-half.png": PNG[:len(PNG) // 2],
    "jpeg-cut-at-200-bytes.jpg": JPEG[:200],
    "jpeg-cut-in-half.jpg": JPEG[:len(JPEG) // 2],
    "png-garbage-pixels.png": _png_garbage_pixels(),
    "png-one-byte-changed.png": _png_bit_flipped(),
    "jpeg-garbage-scan.jpg": _jpeg_garbage_scan(),
    "webp-cut-in-half.webp": _encoded("WEBP")[:len(_encoded("WEBP")) // 2],
    "bmp-cut-in-half.bmp": _encoded("BMP")[:len(_encoded("BMP")) // 2],
}


@pytest.mark.parametrize("name", list(CORRUPT))
def test_the_header_alone_passes(name: str) -> None:
    """What makes these tests mean something: the old header check accepted every one."""
    info = probe_image(CORRUPT[name])
    assert info is not None and (info.width, info.height) == (800, 600)


@pytest.mark.parametrize("name", list(CORRUPT))
def test_corrupt_local_image_is_exit_2_nothing_sent(run: Run, name: str) -> None:
    Path(name).write_bytes(CORRUPT[name])
    with responses.RequestsMock() as rsps:  # any request would fail the test
        r = run(["submit", name, "-p", "a cat", "--upload", "never"])
        assert len(rsps.calls) == 0
    assert r.code == ExitStatus.BAD_INPUT, r.err
    assert r.out == ""
    assert r.err.count("\n") == 1 and "Traceback" not in r.err
    assert r.err.startswith(f"wanvid: error: {name}: ")
    assert "image is damaged or cut short: its pixels cannot be decoded" in r.err


@pytest.mark.parametrize("name", ["png-cut-at-100-bytes.png", "jpeg-garbage-scan.jpg"])
def test_corrupt_data_uri_is_refused_too(name: str) -> None:
    mime = "image/png" if name.endswith(".png") else "image/jpeg"
    uri = f"data:{mime};base64," + base64.b64encode(CORRUPT[name]).decode()
    with pytest.raises(BadInputError, match="pixels cannot be decoded") as e:
        load_image(uri, role="image", flag="IMAGE")
    assert e.value.message.startswith("IMAGE (data: URI): ")


def test_corrupt_last_frame_is_named(run: Run) -> None:
    Path("first.png").write_bytes(PNG)
    Path("last.png").write_bytes(CORRUPT["png-cut-in-half.png"])
    with responses.RequestsMock() as rsps:
        r = run(["submit", "first.png", "--last-frame", "last.png", "-m", "wan2.2-kf2v-flash",
                 "-p", "x", "--upload", "never"])
        assert len(rsps.calls) == 0
    assert r.code == 2, r.err
    assert r.err.startswith("wanvid: error: last.png: PNG image is damaged")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP"])
def test_sound_images_of_every_format_still_load(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"ok.{fmt.lower()}"
    path.write_bytes(_encoded(fmt))
    mi = load_image(str(path), role="image", flag="IMAGE")
    assert mi.image is not None and (mi.image.width, mi.image.height) == (800, 600)


def test_dry_run_refuses_a_corrupt_file_too(run: Run) -> None:
    Path("cut.jpg").write_bytes(CORRUPT["jpeg-cut-at-200-bytes.jpg"])
    r = run(["submit", "cut.jpg", "--dry-run"])
    assert r.code == 2 and "cut.jpg: JPEG image is damaged" in r.err


# --- decompression bombs ---------------------------------------------------------------------


def _bomb_header(tmp_path: Path, side: int = 15000) -> Path:
    """A PNG whose header says side×side grey (its pixel data is a stub: nothing may ever
    get as far as decoding it)."""
    path = tmp_path / "bomb.png"
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(bytes(side + 1)))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + idat + png_chunk(b"IEND", b""))
    return path


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails any Pillow decode (``load``) and records the attempt."""
    attempts: list[str] = []

    def load(self: ImageFile.ImageFile) -> object:
        attempts.append(str(self.size))
        raise AssertionError("decoded a bomb")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return attempts


def test_bomb_without_fit_is_refused_from_the_header(
        run: Run, tmp_path: Path, no_decoding: list[str]) -> None:
    bomb = _bomb_header(tmp_path)
    r = run(["submit", str(bomb), "--dry-run"])
    assert r.code == 2, r.err
    assert "image is 15000×15000 px; width and height must be 240..8000 px" in r.err
    assert no_decoding == []


def test_bomb_with_fit_is_refused_from_the_header(
        run: Run, tmp_path: Path, no_decoding: list[str]) -> None:
    bomb = _bomb_header(tmp_path)
    r = run(["submit", str(bomb), "--fit", "--dry-run"])
    assert r.code == 2, r.err
    assert r.err.count("\n") == 1
    # (64 MP: the model takes 8000×8000 as it is, so --fit decodes that much; review item 7)
    assert (f"{bomb}: 15000×15000 is 225.0 MP, over the 64 MP --fit decodes at full size"
            in r.err)
    assert no_decoding == []


def test_fit_limit_is_per_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A JPEG decodes at reduced scale, so it may have more pixels than a PNG may."""
    monkeypatch.setattr(fit, "MAX_FULL_DECODE_PIXELS", 1_000_000)
    jpeg = tmp_path / "big.jpg"
    jpeg.write_bytes(_encoded("JPEG", (1600, 1200)))
    png = tmp_path / "big.png"
    png.write_bytes(png_bytes(1600, 1200))
    assert fit.fit_image(jpeg, resolution="480P").changed
    with pytest.raises(BadInputError, match="1.9 MP, over the 1 MP --fit decodes at full"):
        fit.fit_image(png, resolution="480P")


def test_fit_file_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fit, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "a.png"
    path.write_bytes(PNG)
    with pytest.raises(BadInputError, match="is more than the 1000 B --fit reads"):
        fit.fit_image(path, resolution="480P")


# --- --fit shrinks big images a strip at a time -------------------------------------------


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "LA", "P"])
def test_fit_strip_reduction_matches_a_whole_image_resize(tmp_path: Path, mode: str) -> None:
    """The strip-wise flatten + reduce of a big image gives what flattening and resizing
    the whole image would: same size, no seams between strips, transparency flattened."""
    w, h = 3000, 2200  # reduced by 2 for 480P (strips of 256 rows: 9 of them)
    base = Image.linear_gradient("L").resize((w, h))
    rgb = Image.merge("RGB", (base, base.transpose(Image.Transpose.ROTATE_180),
                              Image.new("L", (w, h), 90)))
    if mode == "RGBA":
        im = rgb.convert("RGBA")
        im.putalpha(Image.linear_gradient("L").rotate(90).resize((w, h)))
    elif mode == "LA":
        im = Image.merge("LA", (base, Image.linear_gradient("L").rotate(90).resize((w, h))))
    elif mode == "P":
        im = rgb.quantize(64)
    else:
        im = rgb
    path = tmp_path / "big.png"
    im.save(path)
    got = fit.fit_image(path, resolution="480P")
    with Image.open(io.BytesIO(got.data)) as out:
        out = out.convert("RGB")
    flat = Image.new("RGB", im.size, "white")
    src = im.convert("RGBA")
    flat.paste(src, mask=src.getchannel("A"))
    want = flat.resize(out.size, Image.Resampling.LANCZOS)
    assert out.size == fit.target_size(w, h, "480P")
    diff = ImageChops.difference(out, want)
    assert max(ImageStat.Stat(diff).mean) < 3  # JPEG noise and a box pre-filter, nothing more
    assert max(hi for _, hi in diff.getextrema()) < 40  # no seam, no unflattened strip


# --- Pillow only where it is needed --------------------------------------------------------


def _imports_pil(args: list[str], env: dict[str, str]) -> bool:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "wanvid", *args],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode in (0, 2), proc.stderr[-2000:]
    return any(line.rsplit("|", 1)[-1].strip().split(".")[0] == "PIL"
               for line in proc.stderr.splitlines() if line.startswith("import time:"))


def test_pillow_is_imported_only_for_local_images_it_must_decode(tmp_path: Path) -> None:
    import os

    from tests import standin

    env = {**os.environ, "DASHSCOPE_API_KEY": "sk-test-0123456789abcdef"}
    body = b'{"request_id": "r", "output": {"task_id": "t-1", "task_status": "RUNNING"}}'
    with standin.StandIn(standin.json_answer(body)) as srv:
        env["DASHSCOPE_HTTP_BASE_URL"] = srv.url + "/api/v1"
        for args in (["--version"], ["models", "--json"], ["status", "t-1"],
                     ["submit", "--dry-run", "https://example.com/a.png"]):
            assert not _imports_pil(args, env), args
    image = tmp_path / "a.png"
    image.write_bytes(PNG)
    assert not _imports_pil(["submit", "--dry-run", str(image)], env)  # wanvid.png checks it
    photo = tmp_path / "a.jpg"
    photo.write_bytes(_encoded("JPEG"))
    assert _imports_pil(["submit", "--dry-run", str(photo)], env)  # the check sees it
