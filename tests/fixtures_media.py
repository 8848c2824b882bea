"""Tiny hand-made media files for tests: headers built with struct/zlib/wave (whose pixels
decode, for PNG, JPEG and BMP), and ``real_image`` for what Pillow must write (WebP)."""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib


def real_image(fmt: str, size: tuple[int, int], **save: object) -> bytes:
    """A real image written by Pillow (a grey field); ``save`` goes to ``Image.save``."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (128, 128, 128)).save(buf, fmt, **save)
    return buf.getvalue()


# --------------------------------------------------------------------------- PNG

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def png_chunk(ctype: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + ctype + data
            + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF))


def png_bytes(width: int, height: int, *, colour: int = 2, trns: bool = False,
              pad_to: int | None = None, before_idat: bytes = b"") -> bytes:
    """A valid 8-bit PNG of zero pixels. ``pad_to`` adds an ancillary chunk after IDAT so the
    file is exactly that many bytes; ``before_idat`` is inserted verbatim before IDAT."""
    comp = zlib.compressobj(9)
    row = bytes(1 + width * _PNG_CHANNELS[colour])  # filter byte 0 + pixels
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    out = _PNG_SIG + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour,
                                                     0, 0, 0))
    if colour == 3:
        out += png_chunk(b"PLTE", bytes(3 * 2))
    if trns:
        out += png_chunk(b"tRNS", b"\x00" if colour == 3 else bytes(2 * _PNG_CHANNELS[colour]))
    out += before_idat + png_chunk(b"IDAT", idat)
    iend = png_chunk(b"IEND", b"")
    if pad_to is not None:
        fill = pad_to - len(out) - len(iend) - 12
        assert fill >= 0, "pad_to too small"
        out += png_chunk(b"wnPd", bytes(fill))  # ancillary, private, safe-to-copy
    return out + iend


# --------------------------------------------------------------------------- JPEG


def _seg(marker: int, data: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(data) + 2) + data


def jpeg_bytes(width: int, height: int, *, sof: int = 0xC0, app_pad: int = 0,
               fill: bool = False) -> bytes:
    """SOI, APP0 JFIF, optional big APP1 segments (to push SOF far), DQT, DHT, SOFn, SOS,
    a little entropy data, EOI. ``fill`` adds an 0xFF fill byte before SOF."""
    out = b"\xff\xd8" + _seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    while app_pad > 0:
        n = min(app_pad, 65533)
        out += _seg(0xE1, b"Exif\x00\x00" + bytes(n - 6 if n > 6 else 0))
        app_pad -= n
    out += _seg(0xDB, b"\x00" + bytes(range(1, 65)))
    out += _seg(0xC4, b"\x00" + bytes([0, 1] + [0] * 14) + b"\x00")  # DHT: must be skipped
    out += _seg(0xCC, b"\x00\x11")  # DAC: must be skipped
    if fill:
        out += b"\xff"
    out += _seg(sof, struct.pack(">BHHB", 8, height, width, 3)
                + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00")
    out += _seg(0xDA, b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00") + bytes(64)
    return out + b"\xff\xd9"


# --------------------------------------------------------------------------- BMP

_MASKS_RGB = (0x00FF0000, 0x0000FF00, 0x000000FF)


def bmp_bytes(width: int, height: int, *, bpp: int = 24, header: int = 40,
              compression: int = 0, alpha_mask: int = 0, top_down: bool = False) -> bytes:
    """A BMP with zero pixels. header: 12 (core), 40 (info), 56 (V3), 108 (V4), 124 (V5).
    compression: 0 BI_RGB, 3 BI_BITFIELDS, 6 BI_ALPHABITFIELDS."""
    row = (width * bpp + 31) // 32 * 4
    pixels = bytes(row * height)
    if header == 12:
        dib = struct.pack("<IHHHH", 12, width, height, 1, bpp)
        extra = b""
    else:
        dib = struct.pack("<IiiHHIIiiII", header, width, -height if top_down else height, 1,
                          bpp, compression, len(pixels), 2835, 2835, 0, 0)
        if header > 40:
            dib += struct.pack("<IIII", *_MASKS_RGB, alpha_mask) + bytes(header - 56)
        extra = b""
        if header == 40 and compression == 3:
            extra = struct.pack("<III", *_MASKS_RGB)
        elif header == 40 and compression == 6:
            extra = struct.pack("<IIII", *_MASKS_RGB, alpha_mask)
    offset = 14 + len(dib) + len(extra)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + dib + extra + pixels


# --------------------------------------------------------------------------- WEBP


def _riff_chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) & 1 else b"")


def _vp8(width: int, height: int) -> bytes:
    # frame tag (key frame, version 0, shown), start code, 14-bit sizes (scale 0), then data
    return b"\x10\x02\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + bytes(20)


def webp_bytes(width: int, height: int, *, kind: str = "VP8 ", alpha: bool = False) -> bytes:
    if kind == "VP8 ":
        chunks = _riff_chunk(b"VP8 ", _vp8(width, height))
    elif kind == "VP8L":
        bits = (width - 1) | ((height - 1) << 14) | (int(alpha) << 28)
        chunks = _riff_chunk(b"VP8L", b"\x2f" + struct.pack("<I", bits) + bytes(10))
    elif kind == "VP8X":
        head = bytes((0x10 if alpha else 0, 0, 0, 0))
        head += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        chunks = _riff_chunk(b"VP8X", head)
        if alpha:
            chunks += _riff_chunk(b"ALPH", bytes(8))
        chunks += _riff_chunk(b"VP8 ", _vp8(width, height))
    else:
        raise ValueError(kind)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


# --------------------------------------------------------------------------- WAV


def wav_bytes(seconds: float, *, rate: int = 8000) -> bytes:
    """8-bit mono PCM of silence (8 kB per second at 8 kHz)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(b"\x80" * round(seconds * rate))
    return buf.getvalue()


# --------------------------------------------------------------------------- MP3

_BR_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


def mp3_header(bitrate_index: int = 9, *, pad: int = 0, mono: bool = False) -> bytes:
    """MPEG-1 Layer III, 44.1 kHz, no CRC. bitrate_index 9 = 128 kbit/s."""
    h = (0x7FF << 21) | (3 << 19) | (1 << 17) | (1 << 16) | (bitrate_index << 12) | (0 << 10)
    h |= (pad << 9) | ((3 if mono else 0) << 6)
    return struct.pack(">I", h)


def mp3_frame(bitrate_index: int = 9, payload: bytes = b"") -> bytes:
    length = 144 * _BR_V1[bitrate_index] * 1000 // 44100
    return (mp3_header(bitrate_index) + payload).ljust(length, b"\x00")


def id3v2(size: int = 200) -> bytes:
    ss = bytes(((size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F))
    return b"ID3\x04\x00\x00" + ss + bytes(size)


def mp3_bytes(seconds: float, *, id3: bool = True, xing: bool = False, vbr: bool = False,
              id3v1: bool = False) -> bytes:
    """Zero-payload frames lasting about ``seconds`` (1152 samples at 44.1 kHz each).
    ``xing``: the first frame is a LAME-style Xing header carrying the frame count.
    ``vbr``: alternate 128 and 192 kbit/s frames (no header unless ``xing``)."""
    n = math.ceil(seconds * 44100 / 1152)
    frames = [mp3_frame(11 if vbr and i % 2 else 9) for i in range(n)]
    out = id3v2() if id3 else b""
    if xing:
        out += mp3_frame(9, bytes(32) + b"Xing" + struct.pack(">II", 1, n))
    out += b"".join(frames)
    if id3v1:
        out += b"TAG" + bytes(125)
    return out


def mp3_seconds(seconds: float) -> float:
    """The exact duration mp3_bytes(seconds) encodes."""
    return math.ceil(seconds * 44100 / 1152) * 1152 / 44100
