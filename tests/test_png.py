"""wanvid.png.check_png: a PNG's integrity in one pass, without an image library."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image

from tests.fixtures_media import png_bytes, png_chunk
from wanvid.png import PNGError, check_png, data_size

SIG = b"\x89PNG\r\n\x1a\n"


def _pillow_png(mode: str, size: tuple[int, int], **save: object) -> bytes:
    w, h = size
    per_row = {"RGB": 3 * w, "RGBA": 4 * w, "L": w, "LA": 2 * w, "P": w, "1": (w + 7) // 8,
               "I;16": 2 * w}[mode]
    im = Image.frombytes(mode, size, random.Random(f"{mode}{size}").randbytes(per_row * h))
    buf = io.BytesIO()
    im.save(buf, "PNG", **save)
    return buf.getvalue()


def _raw_png(width: int, height: int, rows: bytes, *, colour: int = 2, depth: int = 8,
             interlace: int = 0) -> bytes:
    return (SIG + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour,
                                                  0, 0, interlace))
            + (png_chunk(b"PLTE", bytes(3 * 2)) if colour == 3 else b"")
            + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


def _check(data: bytes) -> None:
    check_png(io.BytesIO(data))


@pytest.mark.parametrize(("mode", "save"), [
    ("RGB", {}), ("RGBA", {}), ("L", {}), ("LA", {}), ("P", {}), ("1", {}),
    ("I;16", {}), ("RGB", {"optimize": True}), ("RGB", {"compress_level": 0}),
])
@pytest.mark.parametrize("size", [(1, 1), (7, 3), (33, 17), (240, 241)])
def test_pillows_pngs_pass(mode: str, save: dict[str, object], size: tuple[int, int]) -> None:
    _check(_pillow_png(mode, size, **save))


@pytest.mark.parametrize(("w", "h", "depth", "colour"), [
    (1, 1, 8, 2), (5, 9, 8, 6), (13, 3, 1, 0), (9, 9, 4, 3), (3, 12, 16, 2), (240, 360, 8, 2)])
def test_interlaced_sizes_are_adam7s(w: int, h: int, depth: int, colour: int) -> None:
    expected, stride = data_size(w, h, depth, colour, interlaced=True)
    assert stride is None
    chans = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    # Adam7 by brute force: the pixels of each pass, row by row.
    total = 0
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                           (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        cols = len(range(x0, w, dx))
        rows = len(range(y0, h, dy))
        if cols and rows:
            total += rows * (1 + (cols * depth * chans + 7) // 8)
    assert expected == total
    _check(_raw_png(w, h, bytes(total), colour=colour, depth=depth, interlace=1))


def test_an_ancillary_chunk_after_the_image_data_is_fine() -> None:
    _check(png_bytes(400, 300, pad_to=200_000))


def test_every_cut_is_refused() -> None:
    data = png_bytes(400, 300, pad_to=5_000)
    for cut in range(0, len(data), 97):
        with pytest.raises(PNGError):
            _check(data[:cut])


def test_a_wrong_crc_is_refused() -> None:
    data = bytearray(png_bytes(64, 64, pad_to=2_000))
    data[data.index(b"wnPd") + 100] ^= 0x40  # inside a chunk no decoder reads
    with pytest.raises(PNGError, match="wnPd chunk's CRC does not match"):
        _check(bytes(data))


def test_garbage_image_data_with_a_good_crc_is_refused() -> None:
    rows = bytes(1 + 3 * 64) * 64
    good = zlib.compress(rows)
    bad = good[:2] + random.Random(3).randbytes(len(good) - 2)
    data = (SIG + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", bad) + png_chunk(b"IEND", b""))
    with pytest.raises(PNGError):
        _check(data)


def test_a_bad_filter_type_is_refused() -> None:
    stride = 1 + 3 * 50
    rows = bytearray(stride * 40)
    rows[stride * 39] = 5  # the last row's filter type
    with pytest.raises(PNGError, match="invalid filter type"):
        _check(_raw_png(50, 40, bytes(rows)))


@pytest.mark.parametrize(("rows", "why"), [
    (bytes((1 + 3 * 50) * 40 - 1), "the header's size needs"),
    (bytes((1 + 3 * 50) * 40 + 1), "more image data than"),
])
def test_image_data_of_the_wrong_size_is_refused(rows: bytes, why: str) -> None:
    with pytest.raises(PNGError, match=why):
        _check(_raw_png(50, 40, rows))


def test_a_stream_cut_before_its_end_is_refused_even_with_good_crcs() -> None:
    rows = bytes((1 + 3 * 50) * 40)
    z = zlib.compressobj()
    partial = z.compress(rows) + z.flush(zlib.Z_SYNC_FLUSH)  # all rows, no stream end
    data = (SIG + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 50, 40, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", partial) + png_chunk(b"IEND", b""))
    with pytest.raises(PNGError, match="cut short"):
        _check(data)


def test_the_header_must_come_first() -> None:
    with pytest.raises(PNGError, match="first chunk is not IHDR"):
        _check(SIG + png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(b"IEND", b""))
    with pytest.raises(PNGError, match="signature"):
        _check(b"GIF89a" + bytes(100))


def _png(ihdr: bytes, *chunks: bytes) -> bytes:
    return SIG + png_chunk(b"IHDR", ihdr) + b"".join(chunks) + png_chunk(b"IEND", b"")


def _ihdr(w: int = 4, h: int = 4, depth: int = 8, colour: int = 2, comp: int = 0,
          filt: int = 0, interlace: int = 0) -> bytes:
    return struct.pack(">IIBBBBB", w, h, depth, colour, comp, filt, interlace)


ROWS = zlib.compress(bytes((1 + 3 * 4) * 4))


@pytest.mark.parametrize(("data", "why"), [
    (_png(_ihdr(comp=1), png_chunk(b"IDAT", ROWS)), "compression, filter or interlace"),
    (_png(_ihdr(filt=1), png_chunk(b"IDAT", ROWS)), "compression, filter or interlace"),
    (_png(_ihdr(interlace=2), png_chunk(b"IDAT", ROWS)), "compression, filter or interlace"),
    (_png(_ihdr(depth=4), png_chunk(b"IDAT", ROWS)), "colour type 2 with bit depth 4"),
    (_png(_ihdr(w=0), png_chunk(b"IDAT", ROWS)), "empty"),
    (_png(_ihdr(depth=8, colour=3), png_chunk(b"IDAT", zlib.compress(bytes(5 * 4)))),
     "without its palette"),
    (_png(_ihdr(), png_chunk(b"IHDR", _ihdr()), png_chunk(b"IDAT", ROWS)), "second IHDR"),
    (_png(_ihdr(), png_chunk(b"ABCD", b"x"), png_chunk(b"IDAT", ROWS)),
     "unknown critical chunk 'ABCD'"),
    (_png(_ihdr(), png_chunk(b"IDAT", ROWS[:10]), png_chunk(b"tEXt", b"a\0b"),
          png_chunk(b"IDAT", ROWS[10:])), "split by another chunk"),
    (_png(_ihdr(depth=8, colour=3), png_chunk(b"IDAT", zlib.compress(bytes(5 * 4))),
          png_chunk(b"PLTE", bytes(3))), "without its palette"),
])
def test_headers_and_chunk_orders_a_decoder_refuses_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(PNGError, match=why):
        _check(data)


def test_a_palette_image_and_ancillary_chunks_anywhere_pass() -> None:
    _check(_png(_ihdr(depth=8, colour=3), png_chunk(b"PLTE", bytes(3)),
                png_chunk(b"tEXt", b"a\0b"), png_chunk(b"IDAT", zlib.compress(bytes(5 * 4))),
                png_chunk(b"zzZz", b"private, safe to copy")))
    assert Image.open(io.BytesIO(_png(_ihdr(depth=8, colour=3), png_chunk(b"PLTE", bytes(3)),
                                      png_chunk(b"IDAT", zlib.compress(bytes(5 * 4)))))
                      ).size == (4, 4)


# ------------------------------------------------------------------ APNG (review leftover 6)


def _apng(frames: int = 3, size: tuple[int, int] = (24, 16), **save: object) -> bytes:
    ims = [Image.frombytes("RGB", size, random.Random(i).randbytes(3 * size[0] * size[1]))
           for i in range(frames)]
    buf = io.BytesIO()
    ims[0].save(buf, "PNG", save_all=True, append_images=ims[1:], duration=100, **save)
    return buf.getvalue()


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        out.append((ctype, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def _build(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return SIG + b"".join(png_chunk(t, b) for t, b in chunks)


def _edit(data: bytes, ctype: bytes, nth: int, body: bytes) -> bytes:
    chunks, seen = _chunks(data), -1
    for i, (t, _b) in enumerate(chunks):
        if t == ctype:
            seen += 1
            if seen == nth:
                chunks[i] = (t, body)
                return _build(chunks)
    raise AssertionError(f"no {ctype!r} number {nth}")


def _body(data: bytes, ctype: bytes, nth: int = 0) -> bytes:
    return [b for t, b in _chunks(data) if t == ctype][nth]


def test_pillows_apngs_pass() -> None:
    data = _apng()
    assert {t for t, _ in _chunks(data)} >= {b"acTL", b"fcTL", b"fdAT"}
    _check(data)
    _check(_apng(2, (9, 7), default_image=True))  # a default image outside the animation


def test_a_broken_later_frame_is_refused() -> None:
    data = _apng()
    fdat = _body(data, b"fdAT")
    cut = _edit(data, b"fdAT", 0, fdat[:4] + zlib.compress(zlib.decompress(fdat[4:])[:-5]))
    with pytest.raises(PNGError, match=r"animation frame 2: image data is \d+ bytes"):
        _check(cut)
    garbage = _edit(data, b"fdAT", 0, fdat[:4] + b"\x78\x9c" + bytes(range(40)))
    with pytest.raises(PNGError, match="animation frame 2: image data does not inflate"):
        _check(garbage)
    bad_filter = zlib.decompress(fdat[4:])
    bad_filter = _edit(data, b"fdAT", 0, fdat[:4] + zlib.compress(b"\x09" + bad_filter[1:]))
    with pytest.raises(PNGError, match="animation frame 2: a row has an invalid filter type"):
        _check(bad_filter)


def test_apng_chunks_must_be_numbered_in_sequence() -> None:
    data = _apng()
    fdat = _body(data, b"fdAT")
    renumbered = _edit(data, b"fdAT", 0, struct.pack(">I", 7) + fdat[4:])
    with pytest.raises(PNGError, match=r"out of order \(fdAT numbered 7, expected 2\)"):
        _check(renumbered)


def test_frames_must_match_actl_and_fit_the_canvas() -> None:
    data = _apng()
    frames, plays = struct.unpack(">II", _body(data, b"acTL"))
    with pytest.raises(PNGError, match=r"the animation has 3 frame\(s\), acTL says 4"):
        _check(_edit(data, b"acTL", 0, struct.pack(">II", frames + 1, plays)))
    with pytest.raises(PNGError, match="more animation frames than the 2 acTL says"):
        _check(_edit(data, b"acTL", 0, struct.pack(">II", 2, plays)))
    with pytest.raises(PNGError, match="says 0 frames"):
        _check(_edit(data, b"acTL", 0, struct.pack(">II", 0, plays)))
    fctl = bytearray(_body(data, b"fcTL", 1))
    fctl[12:16] = struct.pack(">I", 5)  # x offset: the 24-wide frame no longer fits
    with pytest.raises(PNGError, match=r"animation frame 2 \(24×16 at 5,0\) is not inside"):
        _check(_edit(data, b"fcTL", 1, bytes(fctl)))
    fctl = bytearray(_body(data, b"fcTL", 1))
    fctl[24] = 3  # dispose_op
    with pytest.raises(PNGError, match="dispose or blend operation"):
        _check(_edit(data, b"fcTL", 1, bytes(fctl)))


def test_a_frame_without_data_or_data_without_a_frame_is_refused() -> None:
    data = _apng(2)
    chunks = [(t, b) for t, b in _chunks(data) if t != b"fdAT"]
    with pytest.raises(PNGError, match="animation frame 2 has no image data"):
        _check(_build(chunks))
    chunks = [(t, b) for t, b in _chunks(data) if not (t == b"fcTL" and b[:4] != b"\0\0\0\0")]
    with pytest.raises(PNGError, match=r"out of order|fdAT\) without its frame control"):
        _check(_build(chunks))


def test_apng_chunks_of_a_still_png_are_ignored() -> None:
    """acTL after the image data: not an APNG, so decoders read a still image."""
    still = _pillow_png("RGB", (8, 8))
    chunks = _chunks(still)
    chunks.insert(-1, (b"acTL", struct.pack(">II", 9, 0)))
    chunks.insert(-1, (b"fdAT", b"\0\0\0\5junk"))
    _check(_build(chunks))
