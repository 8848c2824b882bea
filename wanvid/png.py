"""A PNG's integrity, checked in one streamed pass without an image library.

``check_png`` proves what a full decode would about a PNG whose header wanvid has already
accepted: every chunk is complete and its CRC matches (IDAT included), the image data
inflates to exactly the size the header implies (zlib's Adler-32 checked at the end of
the stream), every row starts with a valid filter type, the header's fields are a PNG
format and the chunks come in the order a decoder requires. An animated PNG (an ``acTL``
chunk before the image data) gets the same proof for every frame: each ``fcTL`` is a
frame inside the canvas with a known dispose/blend operation, ``fcTL``/``fdAT`` are
numbered in sequence, each later frame's ``fdAT`` data inflates to exactly its size with
valid row filters, and there are as many frames as ``acTL`` says (the default image,
IDAT, is what the service's decoders read; an APNG decoder reads the frames too, and a
broken frame fails it). What is left to a decoder,
turning filtered rows into pixels, cannot fail on such data. It reads the file once, a
block at a time (memory flat), and imports nothing heavy: a local PNG is checked without
loading Pillow.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BLOCK = 1 << 20
# Samples per pixel for each colour type (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA).
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7's passes: (x0, y0, dx, dy).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))


class PNGError(ValueError):
    """What is wrong with the file, in a few words (for "damaged or cut short (...)")."""


def _row_bytes(width: int, bits_per_pixel: int) -> int:
    return (width * bits_per_pixel + 7) // 8


def data_size(width: int, height: int, bit_depth: int, colour_type: int,
              interlaced: bool) -> tuple[int, int | None]:
    """(bytes the image data inflates to, the row stride when not interlaced, else None):
    each row is one filter-type byte and its filtered samples."""
    if colour_type not in _CHANNELS:
        raise PNGError(f"unknown colour type {colour_type}")
    bpp = bit_depth * _CHANNELS[colour_type]
    if not interlaced:
        stride = 1 + _row_bytes(width, bpp)
        return height * stride, stride
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        pw = (width - x0 + dx - 1) // dx if width > x0 else 0
        ph = (height - y0 + dy - 1) // dy if height > y0 else 0
        if pw and ph:
            total += ph * (1 + _row_bytes(pw, bpp))
    return total, None


class _Inflater:
    """The IDAT stream inflated piece by piece: counts the bytes, checks each row's filter
    type byte, never holds more than a block."""

    def __init__(self, expected: int, stride: int | None) -> None:
        self.z = zlib.decompressobj()
        self.expected = expected
        self.stride = stride
        self.total = 0

    def feed(self, data: bytes) -> None:
        if self.z.eof:
            return  # bytes after the zlib stream's end: ignored, as decoders do
        try:
            while data:
                out = self.z.decompress(data, _BLOCK)
                data = self.z.unconsumed_tail
                self._rows(out)
                if self.z.eof:
                    return
        except zlib.error as e:
            raise PNGError(f"image data does not inflate: {e}") from None

    def _rows(self, out: bytes) -> None:
        if self.total + len(out) > self.expected:
            raise PNGError("more image data than the header's size")
        if self.stride is not None and out:
            first = (-self.total) % self.stride  # index in ``out`` of the next row's start
            if max(out[first::self.stride], default=0) > 4:
                raise PNGError("a row has an invalid filter type")
        self.total += len(out)

    def finish(self) -> None:
        if not self.z.eof:
            raise PNGError("image data cut short")
        if self.total != self.expected:
            raise PNGError(f"image data is {self.total} bytes, the header's size needs "
                           f"{self.expected}")


# Bit depths each colour type allows (PNG spec, 11.2.2).
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_CRITICAL = (b"IHDR", b"PLTE", b"IDAT", b"IEND")


def _check_header(width: int, height: int, depth: int, colour: int, compression: int,
                  filtering: int, interlace: int) -> None:
    if not (width and height):
        raise PNGError("the header says the image is empty")
    if colour not in _DEPTHS or depth not in _DEPTHS[colour]:
        raise PNGError(f"colour type {colour} with bit depth {depth} is not a PNG format")
    if compression or filtering or interlace not in (0, 1):
        raise PNGError("the header names a compression, filter or interlace method PNG "
                       "does not have")


def _check_order(ctype: bytes, seen: set[bytes], last: bytes) -> None:
    """The chunk rules a decoder enforces: one header; the palette before the image data;
    the image data in consecutive chunks; no critical chunk a decoder cannot know."""
    if ctype == b"IHDR":
        raise PNGError("a second IHDR chunk")
    if ctype[0] & 0x20 == 0 and ctype not in _CRITICAL:
        raise PNGError(f"an unknown critical chunk {ctype.decode('latin-1')!r}")
    if ctype == b"IDAT" and b"IDAT" in seen and last != b"IDAT":
        raise PNGError("the image data is split by another chunk")
    if ctype == b"PLTE" and b"IDAT" in seen:
        raise PNGError("the palette comes after the image data")


class _Animation:
    """The APNG chunks (``acTL``, ``fcTL``, ``fdAT``) of a file whose ``acTL`` comes
    before the image data: their numbering, each frame's rectangle and each later frame's
    image data (inflated like IDAT's, to the frame's size)."""

    def __init__(self, body: bytes, width: int, height: int, depth: int, colour: int,
                 interlaced: bool) -> None:
        if len(body) != 8:
            raise PNGError("the animation control chunk (acTL) has the wrong length")
        self.frames, _plays = struct.unpack(">II", body)
        if self.frames == 0:
            raise PNGError("the animation control chunk (acTL) says 0 frames")
        self.size = (width, height, depth, colour, interlaced)
        self.seen = 0  # fcTL chunks
        self.next_seq = 0
        self.inflater: _Inflater | None = None  # the current later frame's fdAT data
        self.has_data = True  # the current later frame has had an fdAT

    def sequence(self, seq: int, ctype: str) -> None:
        if seq != self.next_seq:
            raise PNGError(f"animation chunks out of order ({ctype} numbered {seq}, "
                           f"expected {self.next_seq})")
        self.next_seq += 1

    def _end_frame(self) -> None:
        if not self.has_data:
            raise PNGError(f"animation frame {self.seen} has no image data (fdAT)")
        if self.inflater is not None:
            try:
                self.inflater.finish()
            except PNGError as e:
                raise PNGError(f"animation frame {self.seen}: {e}") from None
            self.inflater = None

    def frame_control(self, body: bytes, after_idat: bool) -> None:
        if len(body) != 26:
            raise PNGError("a frame control chunk (fcTL) has the wrong length")
        seq, w, h, x, y, _num, _den, dispose, blend = struct.unpack(">IIIIIHHBB", body)
        self.sequence(seq, "fcTL")
        self._end_frame()
        self.seen += 1
        if self.seen > self.frames:
            raise PNGError(f"more animation frames than the {self.frames} acTL says")
        width, height, depth, colour, interlaced = self.size
        if not (w and h) or x + w > width or y + h > height:
            raise PNGError(f"animation frame {self.seen} ({w}×{h} at {x},{y}) is not inside "
                           f"the {width}×{height} image")
        if not after_idat and (x, y, w, h) != (0, 0, width, height):
            raise PNGError("the default image's frame (fcTL before IDAT) is not the whole "
                           "image")
        if dispose > 2 or blend > 1:
            raise PNGError(f"animation frame {self.seen} names a dispose or blend operation "
                           "APNG does not have")
        if after_idat:
            self.inflater = _Inflater(*data_size(w, h, depth, colour, interlaced))
            self.has_data = False

    def frame_data(self, seq: int) -> _Inflater:
        self.sequence(seq, "fdAT")
        if self.inflater is None:
            raise PNGError("frame data (fdAT) without its frame control (fcTL) after the "
                           "image data")
        self.has_data = True
        return self.inflater

    def finish(self) -> None:
        self._end_frame()
        if self.seen != self.frames:
            raise PNGError(f"the animation has {self.seen} frame(s), acTL says {self.frames}")


_APNG_BODIES = (b"acTL", b"fcTL")  # small chunks whose bytes are needed


def check_png(f: BinaryIO) -> None:
    """Raise ``PNGError`` unless ``f`` (at its start) is a complete, intact PNG."""
    if f.read(8) != SIGNATURE:
        raise PNGError("not a PNG signature")
    inflater: _Inflater | None = None
    first = True
    colour = 0
    seen: set[bytes] = set()
    last = b""
    header = (0, 0, 0, 0, False)
    anim: _Animation | None = None
    while True:
        head = f.read(8)
        if len(head) < 8:
            raise PNGError("cut short (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", head)
        if length > 0x7FFFFFFF:
            raise PNGError(f"chunk {ctype!r} has an impossible length")
        if first:
            if ctype != b"IHDR" or length != 13:
                raise PNGError("the first chunk is not IHDR")
        else:
            _check_order(ctype, seen, last)
            if ctype == b"IDAT" and colour == 3 and b"PLTE" not in seen:
                raise PNGError("a palette image without its palette (PLTE)")
        animated = anim is not None and ctype in (b"fcTL", b"fdAT")
        if ctype == b"fdAT" and animated and length < 4:
            raise PNGError("a frame data chunk (fdAT) has no sequence number")
        keep = first or (ctype in _APNG_BODIES and length <= 64)
        crc = zlib.crc32(ctype)
        left = length
        body = b""
        frame: _Inflater | None = None
        while left:
            block = f.read(min(left, _BLOCK))
            if not block:
                raise PNGError(f"cut short inside a {ctype.decode('latin-1')} chunk")
            crc = zlib.crc32(block, crc)
            left -= len(block)
            if ctype == b"IDAT":
                if inflater is None:
                    raise PNGError("image data before the header")
                inflater.feed(block)
            elif ctype == b"fdAT" and animated:
                if len(body) < 4:  # the sequence number, then the frame's zlib data
                    need = 4 - len(body)
                    body, block = body + block[:need], block[need:]
                assert anim is not None
                if frame is None and len(body) == 4:
                    frame = anim.frame_data(struct.unpack(">I", body)[0])
                if frame is not None and block:
                    try:
                        frame.feed(block)
                    except PNGError as e:
                        raise PNGError(f"animation frame {anim.seen}: {e}") from None
            elif keep:
                body += block
        stored = f.read(4)
        if len(stored) < 4:
            raise PNGError("cut short (a chunk's CRC is missing)")
        if struct.unpack(">I", stored)[0] != crc & 0xFFFFFFFF:
            raise PNGError(f"{ctype.decode('latin-1')} chunk's CRC does not match")
        if first:
            width, height, depth, colour, compression, filtering, interlace = struct.unpack(
                ">IIBBBBB", body)
            _check_header(width, height, depth, colour, compression, filtering, interlace)
            inflater = _Inflater(*data_size(width, height, depth, colour, interlace == 1))
            header = (width, height, depth, colour, interlace == 1)
            first = False
        elif ctype == b"acTL" and b"IDAT" not in seen:  # after IDAT: a still PNG's chunk
            if anim is not None:
                raise PNGError("a second animation control chunk (acTL)")
            anim = _Animation(body, *header)
        elif ctype == b"fcTL" and anim is not None:
            anim.frame_control(body, b"IDAT" in seen)
        seen.add(ctype)
        last = ctype
        if ctype == b"IEND":
            break
    assert inflater is not None
    inflater.finish()
    if anim is not None:
        anim.finish()
