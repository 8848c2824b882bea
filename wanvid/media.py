"""Local media -> what the API accepts.

Images (``img_url``, ``first_frame_url``, ``last_frame_url``) and audio (``audio_url``) can be
given as an http(s) URL (passed through, never fetched), a ``data:`` URI (parsed, probed and
validated) or a local file (a path, or ``file://`` like the official SDK). Local files are sent
as ``data:{mime};base64,{data}``.

Formats are recognised from the content (magic bytes), never from the file name, and every
header is parsed by hand with :mod:`struct` (cheap, and the pixel count is known before any
decoding). Every rule of the API reference is checked before anything could be sent; each
violation raises :class:`BadInputError` with a one-line message naming the file (or flag),
the rule and the fix. Then an image that passes is decoded in full with Pillow (imported on
first use), so a truncated or corrupt one is refused too, before anything is sent.

Memory: a local file is never held in memory as a whole. ``MediaInput.iter_value`` streams the
data URI in base64 chunks read from disk, and :func:`body_bytes` splices those chunks straight
into one pre-sized request body, so a 10 MB image costs about 13.4 MB (its base64) plus one
chunk, not two or three copies.
"""

from __future__ import annotations

import binascii
import io
import json
import os
import re
import shlex
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from math import isqrt
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from wanvid.errors import BadInputError
from wanvid.models import (
    DEFAULT_AUDIO_LIMITS,
    DEFAULT_IMAGE_LIMITS,
    MODELS,
    TIER_PIXELS,
    AudioLimits,
    ClipLimits,
    ImageLimits,
    Model,
    normalize_resolution,
)

__all__ = [
    "AudioInfo",
    "ImageInfo",
    "MediaInput",
    "body_bytes",
    "check_audio_for_model",
    "check_frame_aspects",
    "from_bytes",
    "load_audio",
    "load_image",
    "predict_output_size",
    "probe_audio",
    "probe_image",
    "probe_video",
    "load_clip",
    "VideoInfo",
]

IMAGE_FORMATS_TEXT = "JPEG, PNG, BMP or WEBP"
AUDIO_FORMATS_TEXT = "WAV or MP3"
# Accepted MIME types in data: URIs -> the canonical type wanvid sends.
IMAGE_MIMES: dict[str, str] = {
    "image/jpeg": "image/jpeg", "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg",
    "image/png": "image/png",
    "image/bmp": "image/bmp", "image/x-bmp": "image/bmp", "image/x-ms-bmp": "image/bmp",
    "image/webp": "image/webp",
}
AUDIO_MIMES: dict[str, str] = {
    "audio/wav": "audio/wav", "audio/x-wav": "audio/wav", "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/mpeg": "audio/mpeg", "audio/mp3": "audio/mpeg", "audio/mpeg3": "audio/mpeg",
    "audio/x-mpeg-3": "audio/mpeg",
}
ASPECT_TOLERANCE = 0.05  # kf2v: warn when the two frames' aspect ratios differ by more
# Chunks of 48 KiB (a multiple of 3, so base64 pieces join without padding) stay in the
# CPU cache: about 1.6x faster than 3 MiB chunks for a 10 MB file, and tiny transients.
DEFAULT_CHUNK = 3 * 16 * 1024
_BODY_CHUNK = 3 * 16 * 1024  # body_bytes: the same
_HEAD = 64 * 1024  # how far the no-ID3 MP3 scan and format sniffing look
# Schemes that are clearly not paths even without "//" (s3:bucket/key is not a file name).
_OTHER_SCHEMES = frozenset({
    "ftp", "ftps", "sftp", "scp", "ssh", "s3", "gs", "oss", "az", "abfs", "abfss", "wasb",
    "wasbs", "hdfs", "smb", "ws", "wss", "blob", "mailto", "javascript",
})
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    width: int
    height: int
    has_alpha: bool
    format: str  # "JPEG" | "PNG" | "BMP" | "WEBP"


@dataclass(frozen=True)
class VideoInfo:
    mime: str  # "video/mp4" | "video/quicktime"
    duration: float  # seconds (mvhd)
    width: int  # the largest track header's (0 when no track says)
    height: int
    format: str  # "MP4" | "MOV"


@dataclass(frozen=True)
class AudioInfo:
    mime: str
    duration: float  # seconds
    format: str  # "WAV" | "MP3"


# --------------------------------------------------------------------------- byte sources


class _Src(Protocol):
    size: int

    def read(self, offset: int, n: int) -> bytes: ...

    def stream(self) -> BinaryIO: ...


class _BytesSrc:
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = data
        self._mv = memoryview(data).cast("B")
        self.size = len(self._mv)

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset >= self.size or n <= 0:
            return b""
        return bytes(self._mv[offset:offset + n])

    def stream(self) -> BinaryIO:
        """The whole content as a file (no copy for ``bytes``)."""
        return io.BytesIO(self._data if isinstance(self._data, bytes) else bytes(self._mv))


class _FileSrc:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f = f
        self.size = size

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset >= self.size or n <= 0:
            return b""
        self._f.seek(offset)
        return self._f.read(n)

    def stream(self) -> BinaryIO:
        self._f.seek(0)
        return self._f


def _u16be(b: bytes, o: int = 0) -> int:
    return int(struct.unpack_from(">H", b, o)[0])


def _u32be(b: bytes, o: int = 0) -> int:
    return int(struct.unpack_from(">I", b, o)[0])


def _u16le(b: bytes, o: int = 0) -> int:
    return int(struct.unpack_from("<H", b, o)[0])


def _u32le(b: bytes, o: int = 0) -> int:
    return int(struct.unpack_from("<I", b, o)[0])


# --------------------------------------------------------------------------- image probing

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_BMP_HEADER_SIZES = (12, 40, 52, 56, 64, 108, 124)


def _image_format(head: bytes) -> str | None:
    """The supported image format the magic bytes announce (not yet validated)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(_PNG_SIG):
        return "PNG"
    if head[:2] == b"BM" and len(head) >= 18 and _u32le(head, 14) in _BMP_HEADER_SIZES:
        return "BMP"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _probe_png(src: _Src) -> ImageInfo | None:
    ihdr = src.read(8, 21)  # length, "IHDR", width, height, depth, colour type, ...
    if len(ihdr) < 18 or ihdr[4:8] != b"IHDR":
        return None
    width, height, _depth, colour = struct.unpack_from(">IIBB", ihdr, 8)
    if width == 0 or height == 0:
        return None
    alpha = colour in (4, 6)
    pos = 8
    while not alpha:  # a tRNS chunk before the image data also means transparency
        hdr = src.read(pos, 8)
        if len(hdr) < 8:
            break
        length, ctype = struct.unpack(">I4s", hdr)
        if ctype == b"tRNS":
            alpha = True
        elif ctype in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return ImageInfo("image/png", width, height, alpha, "PNG")


def _probe_jpeg(src: _Src) -> ImageInfo | None:
    pos = 2  # after SOI
    while True:
        b = src.read(pos, 9)  # FF, marker, length(2), precision, height(2), width(2)
        if len(b) < 2 or b[0] != 0xFF:
            return None
        marker = b[1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # stand-alone markers
            pos += 2
            continue
        if marker in (0xD9, 0xDA) or len(b) < 4:  # EOI / SOS before any SOF
            return None
        seglen = _u16be(b, 2)
        if seglen < 2:
            return None
        # SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if len(b) < 9:
                return None
            height, width = struct.unpack_from(">HH", b, 5)
            if width == 0 or height == 0:
                return None
            return ImageInfo("image/jpeg", width, height, False, "JPEG")
        pos += 2 + seglen


def _probe_bmp(src: _Src) -> ImageInfo | None:
    b = src.read(0, 14 + 124 + 16)
    if len(b) < 26:
        return None
    hsize = _u32le(b, 14)
    alpha = False
    if hsize == 12:  # BITMAPCOREHEADER
        width, height = struct.unpack_from("<HH", b, 18)
    elif hsize >= 40 and len(b) >= 14 + 40:
        width, height, _planes, bpp, compression = struct.unpack_from("<iiHHI", b, 18)
        height = abs(height)  # negative = top-down
        # Alpha only for 32 bpp with an alpha mask: BI_BITFIELDS (3) / BI_ALPHABITFIELDS (6).
        # Plain 32 bpp BI_RGB is "BGRX": the fourth byte is padding, not alpha.
        if bpp == 32 and compression in (3, 6):
            mask_off = None
            if hsize in (56, 108, 124):  # V3 / V4 / V5 carry the alpha mask in the header
                mask_off = 14 + 52
            elif hsize == 40 and compression == 6:  # masks follow the header: R, G, B, A
                mask_off = 14 + 40 + 12
            if mask_off is not None and len(b) >= mask_off + 4:
                alpha = _u32le(b, mask_off) != 0
    else:
        return None
    if width <= 0 or height <= 0:
        return None
    return ImageInfo("image/bmp", width, height, alpha, "BMP")


def _probe_webp(src: _Src) -> ImageInfo | None:
    b = src.read(0, 30)
    if len(b) < 25:
        return None
    fourcc = b[12:16]
    if fourcc == b"VP8 ":  # lossy: frame tag (3), start code 9D 01 2A, 14-bit width/height
        if len(b) < 30 or b[23:26] != b"\x9d\x01\x2a":
            return None
        width, height, alpha = _u16le(b, 26) & 0x3FFF, _u16le(b, 28) & 0x3FFF, False
    elif fourcc == b"VP8L":  # lossless: 0x2F, then 14 bits w-1, 14 bits h-1, alpha_is_used
        if b[20] != 0x2F:
            return None
        bits = _u32le(b, 21)
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        alpha = bool((bits >> 28) & 1)
    elif fourcc == b"VP8X":  # extended: flags, 3 reserved, 24-bit canvas w-1 and h-1
        if len(b) < 30:
            return None
        alpha = bool(b[20] & 0x10)
        width = 1 + int.from_bytes(b[24:27], "little")
        height = 1 + int.from_bytes(b[27:30], "little")
    else:
        return None
    if width == 0 or height == 0:
        return None
    return ImageInfo("image/webp", width, height, alpha, "WEBP")


_IMAGE_PROBES: dict[str, Callable[[_Src], ImageInfo | None]] = {
    "JPEG": _probe_jpeg, "PNG": _probe_png, "BMP": _probe_bmp, "WEBP": _probe_webp,
}


def _probe_image_src(src: _Src) -> ImageInfo | None:
    fmt = _image_format(src.read(0, 32))
    return _IMAGE_PROBES[fmt](src) if fmt else None


def probe_image(head: bytes) -> ImageInfo | None:
    """Format, size and alpha of an image from its first bytes (or the whole file).

    ``None`` if the bytes are not a supported image (JPEG, PNG, BMP, WEBP) or the header is
    cut off before the dimensions (a JPEG's SOF may come after large EXIF/ICC segments: pass
    enough bytes, or the whole file).
    """
    return _probe_image_src(_BytesSrc(head))


# --------------------------------------------------------------------------- audio probing


def _probe_wav(src: _Src) -> AudioInfo | None:
    head = src.read(0, 12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, byte_rate, data_size = 12, None, None
    while byte_rate is None or data_size is None:
        hdr = src.read(pos, 8)
        if len(hdr) < 8:
            break
        cid, clen = hdr[:4], _u32le(hdr, 4)
        if cid == b"fmt ":
            fmt = src.read(pos + 8, 16)
            if len(fmt) < 16:
                return None
            _tag, _ch, rate, byte_rate, align, _bits = struct.unpack("<HHIIHH", fmt)
            byte_rate = byte_rate or rate * align
        elif cid == b"data":  # a streamed WAV may claim more (0xFFFFFFFF) than it holds
            data_size = min(clen, max(0, src.size - pos - 8))
        pos += 8 + clen + (clen & 1)
    if not byte_rate or data_size is None:
        return None
    return AudioInfo("audio/wav", data_size / byte_rate, "WAV")


_MP3_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MP3_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class _Mp3Frame:
    version: int  # 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    bitrate_index: int
    bitrate: int  # bit/s
    sample_rate: int
    length: int  # bytes
    samples: int  # per frame
    mono: bool


def _mp3_frame(b: bytes) -> _Mp3Frame | None:
    """Parse an MPEG audio Layer III frame header (4 bytes); None if it is not one."""
    if len(b) < 4:
        return None
    h = _u32be(b)
    version, layer = (h >> 19) & 3, (h >> 17) & 3
    br_index, sr_index = (h >> 12) & 0xF, (h >> 10) & 3
    if (h >> 21) != 0x7FF or version == 1 or layer != 1 or br_index in (0, 15) or sr_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = (_MP3_BITRATES_V1 if mpeg1 else _MP3_BITRATES_V2)[br_index] * 1000
    rate = _MP3_RATES[version][sr_index]
    length = (144 if mpeg1 else 72) * bitrate // rate + ((h >> 9) & 1)
    return _Mp3Frame(version, br_index, bitrate, rate, length, 1152 if mpeg1 else 576,
                     ((h >> 6) & 3) == 3)


def _id3v2_end(src: _Src) -> int:
    pos = 0
    while True:  # ID3v2 tags (possibly several), each with a synchsafe size
        b = src.read(pos, 10)
        if len(b) < 10 or b[:3] != b"ID3" or b[3] == 0xFF or any(x & 0x80 for x in b[6:10]):
            return pos
        size = (b[6] << 21) | (b[7] << 14) | (b[8] << 7) | b[9]
        pos += 10 + size + (10 if b[5] & 0x10 else 0)


def _mp3_first_frame(src: _Src, start: int, end: int) -> tuple[int, _Mp3Frame] | None:
    """First frame at/after ``start`` whose successor is also a frame (or the end)."""
    window = _HEAD if start > 0 else 4096  # with an ID3 tag, allow padding/junk after it
    block = src.read(start, window + 4)
    i = block.find(b"\xff")
    while 0 <= i < window:
        frame = _mp3_frame(block[i:i + 4])
        if frame is not None:
            nxt = start + i + frame.length
            follow = _mp3_frame(src.read(nxt, 4))
            if nxt >= end or (follow is not None and follow.version == frame.version
                              and follow.sample_rate == frame.sample_rate):
                return start + i, frame
        i = block.find(b"\xff", i + 1)
    return None


def _probe_mp3(src: _Src) -> AudioInfo | None:
    start = _id3v2_end(src)
    end = src.size - (128 if src.read(src.size - 128, 3) == b"TAG" else 0)  # ID3v1
    found = _mp3_first_frame(src, start, end)
    if found is None:
        return None
    off, first = found
    # 1. Xing/Info (LAME) header in the first frame's side-info slot: exact frame count.
    side = (17 if first.mono else 32) if first.version == 3 else (9 if first.mono else 17)
    xing = src.read(off + 4 + side, 12)
    if len(xing) == 12 and xing[:4] in (b"Xing", b"Info") and _u32be(xing, 4) & 1:
        frames = _u32be(xing, 8)
        if frames:
            return AudioInfo("audio/mpeg", frames * first.samples / first.sample_rate, "MP3")
    # 2. VBRI (Fraunhofer) header, always 32 bytes after the frame header.
    vbri = src.read(off + 36, 18)
    if len(vbri) == 18 and vbri[:4] == b"VBRI":
        frames = _u32be(vbri, 14)
        if frames:
            return AudioInfo("audio/mpeg", frames * first.samples / first.sample_rate, "MP3")
    # 3. Constant bit rate (the first frames agree): estimate from the size.
    pos, count, cbr = off, 0, True
    while count < 8 and pos < end:
        frame = _mp3_frame(src.read(pos, 4))
        if frame is None:
            break
        cbr = cbr and frame.bitrate_index == first.bitrate_index
        pos += frame.length
        count += 1
    if cbr:
        return AudioInfo("audio/mpeg", (end - off) * 8 / first.bitrate, "MP3")
    # 4. Variable bit rate without a header: walk every frame.
    pos, count = off, 0
    while pos < end:
        frame = _mp3_frame(src.read(pos, 4))
        if frame is None:
            break
        pos += frame.length
        count += 1
    return AudioInfo("audio/mpeg", count * first.samples / first.sample_rate, "MP3")


def _probe_audio_src(src: _Src) -> AudioInfo | None:
    if src.read(0, 4) == b"RIFF":
        return _probe_wav(src)
    return _probe_mp3(src)


def probe_audio(data: bytes) -> AudioInfo | None:
    """Format and duration of WAV or MP3 bytes; ``None`` if neither (or unreadable)."""
    return _probe_audio_src(_BytesSrc(data))


def _describe(head: bytes) -> str | None:
    """A human name for common formats wanvid does not accept (for error messages)."""
    fmt = _image_format(head)
    if fmt:
        return f"{fmt} image"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "HEIC/HEIF"
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"M4A ", b"M4B ", b"M4P "):
            return "M4A/AAC audio"
        if brand[:2] == b"3g":
            return "3GP"
        return "MP4/QuickTime"
    if head[:2] == b"\xff\x0a" or head[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return "JPEG XL"
    if head[:4] == b"OggS":
        return "Ogg"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "Matroska/WebM"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if head[:4] == b"RIFF":
        sub = head[8:12]
        return "WAV audio" if sub == b"WAVE" else f"RIFF/{sub.decode('latin-1').strip()}"
    if head[:4] == b"%PDF":
        return "PDF"
    if head[:4] == b"\x00\x00\x01\x00":
        return "ICO"
    if head.lstrip()[:5] in (b"<?xml", b"<svg ", b"<svg>"):
        return "SVG/XML"
    if len(head) >= 2 and (head[0] == 0xFF and head[1] & 0xF6 == 0xF0):
        return "AAC (ADTS)"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "MPEG audio"
    return None


# --------------------------------------------------------------------------- MediaInput


@dataclass
class MediaInput:
    """One image or audio argument, resolved and validated.

    ``kind`` is "url" (passed through as typed), "data" (a data: URI or in-memory bytes; the
    decoded bytes are kept) or "file" (read from disk only when the value is produced).
    """

    arg: str  # what the user typed
    kind: str  # "url" | "data" | "file"
    role: str  # "first frame" / "last frame" / "image" / "audio"
    path: Path | None
    mime: str | None
    size: int | None  # bytes (files and data)
    image: ImageInfo | None
    audio: AudioInfo | None
    flag: str = ""  # the CLI argument it came from ("IMAGE", "--last-frame", "--audio")
    video: VideoInfo | None = None  # a clip (--first-clip)
    _raw: bytes | None = field(default=None, repr=False, compare=False)
    # load_image(fit=True) leaves the fixable rules (format, bytes, pixels, alpha) of a local
    # file to --fit; if such an input is ever encoded as it is, check() runs them first.
    _deferred: bool = field(default=False, repr=False, compare=False)
    _limits: ImageLimits = field(default=DEFAULT_IMAGE_LIMITS, repr=False, compare=False)

    @property
    def label(self) -> str:
        """How messages name this input: the file as typed, or the flag for data: URIs."""
        if self.kind == "data" and self.arg[:5].lower() == "data:":
            return f"{self.flag or self.role} (data: URI)"
        return self.arg

    @property
    def deferred(self) -> bool:
        """True for a file loaded with ``fit=True`` whose image rules are not checked yet."""
        return self._deferred

    def check(self) -> None:
        """Apply every rule now (a no-op unless loaded with ``fit=True``): raises
        BadInputError like load_image would have, else fills in ``mime`` and ``image``."""
        if not self._deferred:
            return
        assert self.path is not None
        size = _stat_file(self.path, self.arg, IMAGE_FORMATS_TEXT)
        info = _with_file(self.path, self.arg, lambda f: _check_image(_FileSrc(f, size),
                                                                       self.arg,
                                                                       limits=self._limits))
        self.size, self.mime, self.image, self._deferred = size, info.mime, info, False

    def _header(self) -> bytes:
        return f"data:{self.mime};base64,".encode("ascii")

    def encoded_length(self) -> int:
        """Length in characters of the value that will be sent."""
        if self.kind == "url":
            return len(self.arg)
        self.check()
        return len(self._header()) + 4 * (((self.size or 0) + 2) // 3)

    def iter_value(self, chunk: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        """The value as ASCII bytes, in pieces: the data URI header, then base64 chunks.

        Files are read from disk ``chunk`` bytes at a time (rounded down to a multiple of 3,
        so the pieces concatenate to the base64 of the whole file).
        """
        if self.kind == "url":
            yield self.arg.encode("utf-8")
            return
        self.check()
        step = max(3, chunk - chunk % 3)
        yield self._header()
        if self.kind == "data":
            view = memoryview(self._raw or b"")
            for i in range(0, len(view), step):
                yield binascii.b2a_base64(view[i:i + step], newline=False)
            return
        yield from self._iter_file(step)

    def _iter_file(self, step: int) -> Iterator[bytes]:
        assert self.path is not None
        buf = bytearray(step)
        view = memoryview(buf)
        total = 0
        try:
            with _open_binary(self.path) as f:
                while True:
                    n = f.readinto(buf)
                    if not n:
                        break
                    total += n
                    if total > (self.size or 0):
                        break
                    yield binascii.b2a_base64(view[:n], newline=False)
        except OSError as e:
            raise BadInputError(f"{self.label}: cannot read the file any more ({_reason(e)}). "
                                "Check it and try again.") from e
        if total != self.size:
            try:
                now = f"{self.path.stat().st_size} bytes"
            except OSError:
                now = "gone"
            raise BadInputError(f"{self.label}: the file changed while wanvid was reading it "
                                f"({self.size} bytes when checked, now {now}). Try again.")

    def value(self) -> str:
        """The whole value: the URL, or the data URI (built from disk for files)."""
        if self.kind == "url":
            return self.arg
        return b"".join(self.iter_value()).decode("ascii")

    def preview(self, keep: int = 48) -> str:
        """Abbreviated for --dry-run: URLs whole; data URIs cut after ``keep`` characters."""
        if self.kind == "url":
            return self.arg
        total = self.encoded_length()
        if total <= keep + 24:  # abbreviating would not save anything
            return self.value()
        head = bytearray()
        for piece in self.iter_value(chunk=3 * (keep // 4 + 1)):
            head += piece
            if len(head) >= keep:
                break
        return f"{head[:keep].decode('ascii')}…({total} chars)"


def _open_binary(path: Path) -> BinaryIO:  # one place to open files (tests patch it)
    return open(path, "rb")


def _reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _mb(n: int) -> str:
    from wanvid.units import human_size

    return f"{human_size(n)} ({n} bytes)"


def _secs(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- argument parsing


def _classify(arg: str, flag: str, accepts: str) -> tuple[str, str]:
    """("url" | "data" | "file", rest) for an argument; raises for other schemes."""
    if not arg.strip():
        raise BadInputError(f"{flag}: empty value; give {accepts}.")
    low = arg[:8].lower()
    if low.startswith(("http://", "https://")):
        if not arg.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].strip():
            raise BadInputError(f"{arg}: URL has no host name; {flag} takes {accepts}.")
        return "url", arg
    if low.startswith("data:"):
        return "data", arg
    if low.startswith("file://"):  # like the SDK: file:///abs, file://./rel, file://rel
        return "file", arg[7:]
    if low.startswith("file:/"):
        return "file", arg[5:]
    m = _SCHEME_RE.match(arg)
    if m and (arg[m.end():m.end() + 2] == "//" or m.group(1).lower() in _OTHER_SCHEMES):
        raise BadInputError(f"{arg}: unsupported scheme '{m.group(1)}:'; {flag} takes {accepts}."
                            " Download the file first, or use an http(s) link.")
    return "file", arg


def _parse_data_uri(arg: str, label: str, mimes: dict[str, str],
                    example: str) -> tuple[str, bytes]:
    """(canonical declared MIME, decoded bytes) of a data: URI."""
    meta, sep, payload = arg[5:].partition(",")
    if not sep:
        raise BadInputError(f"{label}: malformed, no comma before the data. "
                            f"Use data:{example};base64,<base64 data>.")
    params = [p.strip() for p in meta.split(";")]
    if "base64" not in (p.lower() for p in params[1:]):
        raise BadInputError(f"{label}: not base64-encoded (no ';base64'). "
                            f"Use data:{example};base64,<base64 data>.")
    declared = params[0].lower()
    if declared not in mimes:
        supported = ", ".join(dict.fromkeys(mimes.values()))
        raise BadInputError(f"{label}: MIME type '{declared or '(none)'}' is not supported; "
                            f"use one of {supported}.")
    cleaned = re.sub(r"\s+", "", payload)
    try:
        raw = binascii.a2b_base64(cleaned, strict_mode=True)
    except (binascii.Error, ValueError) as e:
        why = str(e).rstrip(".")
        raise BadInputError(f"{label}: payload is not valid base64 ({why[:1].lower()}{why[1:]}). "
                            "Re-encode the file, e.g. with base64 -w0 FILE.") from e
    return mimes[declared], raw


def _stat_file(path: Path, label: str, what: str) -> int:
    """Size of a readable regular file; raises the matching BadInputError otherwise."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        where = "" if path.is_absolute() else f" (relative paths start in {os.getcwd()})"
        raise BadInputError(f"{label}: no such file. Check the path{where}, or give an http(s) "
                            "URL or a data: URI.") from None
    except PermissionError:
        raise _permission(label, path) from None
    except OSError as e:
        raise BadInputError(f"{label}: cannot access it ({_reason(e)}).") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInputError(f"{label}: is a directory, not a file. Give the path of a {what} "
                            "file inside it.")
    if not stat.S_ISREG(st.st_mode):
        raise BadInputError(f"{label}: not a regular file (a pipe, socket or device). Save the "
                            "data to a file first.")
    if st.st_size == 0:
        raise BadInputError(f"{label}: file is empty (0 bytes). Give a {what} file.")
    return st.st_size


def _permission(label: str, path: Path) -> BadInputError:
    return BadInputError(f"{label}: permission denied. Make it readable, e.g. "
                         f"chmod u+r {shlex.quote(str(path))}.")


def _check_image(src: _Src, label: str, *, fit_hint: bool = True,
                 limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> ImageInfo:
    info = _probe_image_src(src)
    if info is None:
        head = src.read(0, 64)
        fmt = _image_format(head)
        if fmt:
            raise BadInputError(f"{label}: looks like {fmt} but its header is damaged or cut "
                                "short. Re-export the image.")
        desc = _describe(head)
        looks = f"content looks like {desc}" if desc else "content not recognised"
        raise BadInputError(f"{label}: not a supported image ({looks}); the service accepts "
                            f"{IMAGE_FORMATS_TEXT}. Convert it to one of those.")
    problem = _image_problem(info, src.size, fit_hint=fit_hint, limits=limits)
    if problem:
        raise BadInputError(f"{label}: {problem}")
    _decode_image(src, info, label)
    return info


def _range_text(lo: float | None, hi: float | None, unit: str) -> str:
    if lo is not None and hi is not None:
        return f"{_secs(lo)}..{_secs(hi)} {unit}"
    if lo is not None:
        return f"at least {_secs(lo)} {unit}"
    return f"at most {_secs(hi or 0)} {unit}"


def _aspect(x: float) -> str:
    return f"1:{_secs(1 / x)}" if x < 1 else f"{_secs(x)}:1"


def _pillow_opener(fmt: str) -> Callable[[BinaryIO], Any]:
    """The Pillow image class for one format, imported alone: ``Image.open`` would first
    import the plugins of five formats (Pillow's ``preinit``), which costs startup time."""
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngImageFile
        return PngImageFile
    if fmt == "JPEG":
        from PIL.JpegImagePlugin import JpegImageFile
        return JpegImageFile
    if fmt == "BMP":
        from PIL.BmpImagePlugin import BmpImageFile
        return BmpImageFile
    from PIL.WebPImagePlugin import WebPImageFile
    return WebPImageFile


def _decode_image(src: _Src, info: ImageInfo, label: str) -> None:
    """Decode every pixel of an image whose header passed, so a file that is cut short or
    whose pixel data is garbage is refused here, before anything is sent.

    Only called once the header's size is within the model's limits (at most 8000 px a
    side on the newest models): the pixel count is known and bounded before any decoding
    (no decompression bomb gets this far). A PNG is checked in one pass by
    ``wanvid.png.check_png`` (every chunk's CRC, the image data inflated to its exact size,
    every row's filter type: all a decode could find wrong, without Pillow); a JPEG is
    decoded at 1/8 scale (``draft``: libjpeg still reads every coefficient, so a cut or a
    broken scan is still caught, in a fraction of the time and memory). Formats whose
    pixel data has no redundancy (BMP, lossy WebP) can only be checked for being complete.
    Pillow is imported here, on first use: commands that send no local JPEG, BMP or WebP
    never load it.
    """
    import warnings

    fmt = info.format
    if fmt == "PNG":
        from wanvid.png import PNGError, check_png

        try:
            with src.stream() as f:
                check_png(f)
        except PNGError as e:
            raise BadInputError(f"{label}: PNG image is damaged or cut short: its pixels "
                                f"cannot be decoded ({e}). Re-export the image.") from None
        return
    try:
        opener = _pillow_opener(fmt)
    except ImportError as e:  # a broken install: Pillow is a dependency
        raise BadInputError(f"{label}: cannot decode it: Pillow, which wanvid depends on, "
                            f"cannot be imported ({e}); reinstall it: pip install pillow") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # odd EXIF and the like: not our business here
            if fmt == "PNG":
                with opener(src.stream()) as im:
                    im.verify()  # every chunk's CRC, IDAT included
            with opener(src.stream()) as im:
                if fmt == "JPEG":
                    im.draft(im.mode, (1, 1))  # the smallest DCT scale libjpeg offers
                im.load()
    except Exception as e:  # noqa: BLE001 - any decoder failure means "cannot be decoded"
        why = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise BadInputError(f"{label}: {fmt} image is damaged or cut short: its pixels cannot "
                            f"be decoded ({why}). Re-export the image.") from None


def _image_problem(info: ImageInfo, size: int, *, fit_hint: bool = True,
                   limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> str | None:
    """What is wrong with a recognised image (the rules --fit can repair), or None.

    ``fit_hint``: suggest --fit (it re-encodes local files only, not data: URIs).
    ``limits``: the model's (``Model.image_limits``); the Nov 2025 rules by default."""
    fit_tail = (", or pass --fit to let wanvid do it." if fit_hint else ".")
    for_model = f" for {limits.model}" if limits.model else ""
    if info.format not in limits.formats:
        return (f"{info.format} image: {limits.model or 'the service'} accepts "
                f"{', '.join(limits.formats)}. Convert it" + fit_tail)
    if limits.max_bytes is not None and size > limits.max_bytes:
        return (f"image is {_mb(size)}; the limit{for_model} is "
                f"{_secs(limits.max_bytes / (1024 * 1024))} MiB ({limits.max_bytes} bytes). "
                "Compress or resize it" + (", or pass --fit to let wanvid shrink it."
                                           if fit_hint else "."))
    w, h = info.width, info.height
    lo, hi = limits.min_px, limits.max_px
    if (lo is not None and min(w, h) < lo) or (hi is not None and max(w, h) > hi):
        return (f"image is {w}×{h} px; width and height must be "
                f"{_range_text(lo, hi, 'px')}{for_model}. Resize it" + fit_tail)
    a_lo, a_hi = limits.min_aspect, limits.max_aspect
    if (a_lo is not None and w / h < a_lo) or (a_hi is not None and w / h > a_hi):
        return (f"image is {w}×{h} px (aspect {w / h:.2f}); {limits.model or 'the model'} "
                f"takes aspect ratios {_aspect(a_lo or 0.0001)}..{_aspect(a_hi or 10000)}. "
                "Crop it.")
    if info.has_alpha:
        return (f"{info.format} image has an alpha channel (transparency), which the service "
                "does not accept. Flatten it onto a solid background" + fit_tail)
    return None


def _check_audio(src: _Src, label: str,
                 limits: AudioLimits = DEFAULT_AUDIO_LIMITS) -> AudioInfo:
    info = _probe_audio_src(src)
    if info is None:
        head = src.read(0, 64)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            raise BadInputError(f"{label}: looks like WAV but its duration cannot be read "
                                "(damaged or cut-short header). Re-export it as WAV or MP3.")
        desc = _describe(head)
        looks = f"content looks like {desc}" if desc else "content not recognised"
        raise BadInputError(f"{label}: not a supported audio file ({looks}); the service "
                            f"accepts {AUDIO_FORMATS_TEXT}. Convert it, e.g. ffmpeg -i INPUT "
                            "audio.mp3.")
    if limits.max_bytes is not None and src.size > limits.max_bytes:
        raise BadInputError(f"{label}: audio is {_mb(src.size)}; the limit is "
                            f"{_secs(limits.max_bytes / (1024 * 1024))} MiB "
                            f"({limits.max_bytes} bytes). Trim it or re-encode it as a lower "
                            "bit rate MP3.")
    d, lo, hi = info.duration, limits.min_s, limits.max_s
    if lo is not None and d < lo:
        raise BadInputError(f"{label}: audio is {_secs(d)} s long; it must be "
                            f"{_range_text(lo, hi, 's')}. Use a clip of at "
                            f"least {_secs(lo)} s.")
    if hi is not None and d > hi:
        raise BadInputError(f"{label}: audio is {_secs(d)} s long; it must be "
                            f"{_range_text(lo, hi, 's')}. Trim it, e.g. "
                            f"ffmpeg -i INPUT -t {_secs(hi)} audio.mp3.")
    return info


def _load(arg: str, *, role: str, flag: str, audio: bool, fit: bool = False,
          limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
          audio_limits: AudioLimits = DEFAULT_AUDIO_LIMITS) -> MediaInput:
    what = AUDIO_FORMATS_TEXT if audio else IMAGE_FORMATS_TEXT
    accepts = f"an http(s) URL, a data: URI or a local {what} file"
    kind, rest = _classify(arg, flag, accepts)
    if kind == "url":
        return MediaInput(arg, "url", role, None, None, None, None, None, flag=flag)

    if kind == "data":
        label = f"{flag} (data: URI)"
        mimes = AUDIO_MIMES if audio else IMAGE_MIMES
        _declared, raw = _parse_data_uri(arg, label, mimes,
                                         "audio/mpeg" if audio else "image/png")
        if not raw:
            raise BadInputError(f"{label}: holds no data (0 bytes). Give a {what} file.")
        return _from_raw(raw, arg=arg, role=role, flag=flag, label=label, audio=audio,
                         limits=limits, audio_limits=audio_limits)

    path = Path(rest).expanduser()
    size = _stat_file(path, arg, what)
    if audio:
        a_info = _with_file(path, arg, lambda f: _check_audio(_FileSrc(f, size), arg,
                                                                audio_limits))
        return MediaInput(arg, "file", role, path, a_info.mime, size, None, a_info, flag=flag)
    if fit:  # --fit re-encodes local files: leave format/bytes/pixels/alpha to it
        probed = _with_file(path, arg, lambda f: _probe_image_src(_FileSrc(f, size)))
        ok = probed is not None and _image_problem(probed, size, limits=limits) is None
        return MediaInput(arg, "file", role, path, probed.mime if ok and probed else None, size,
                          probed if ok else None, None, flag=flag, _deferred=not ok,
                          _limits=limits)
    i_info = _with_file(path, arg, lambda f: _check_image(_FileSrc(f, size), arg,
                                                           limits=limits))
    return MediaInput(arg, "file", role, path, i_info.mime, size, i_info, None, flag=flag,
                      _limits=limits)


_T = TypeVar("_T")


def _with_file(path: Path, label: str, use: Callable[[BinaryIO], _T]) -> _T:
    """Open ``path`` and pass it to ``use``, turning OS errors into BadInputError."""
    try:
        with _open_binary(path) as f:
            return use(f)
    except PermissionError:
        raise _permission(label, path) from None
    except OSError as e:
        raise BadInputError(f"{label}: cannot read it ({_reason(e)}).") from None


def _from_raw(raw: bytes, *, arg: str, role: str, flag: str, label: str,
              audio: bool, limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
              audio_limits: AudioLimits = DEFAULT_AUDIO_LIMITS) -> MediaInput:
    src = _BytesSrc(raw)
    if audio:
        a_info = _check_audio(src, label, audio_limits)  # content wins over the declared MIME
        return MediaInput(arg, "data", role, None, a_info.mime, len(raw), None, a_info,
                          flag=flag, _raw=raw)
    i_info = _check_image(src, label, fit_hint=False, limits=limits)  # --fit: files only
    return MediaInput(arg, "data", role, None, i_info.mime, len(raw), i_info, None,
                      flag=flag, _raw=raw)


def load_image(arg: str, *, role: str, flag: str, fit: bool = False,
               limits: ImageLimits | None = None) -> MediaInput:
    """Resolve and validate an image argument (URL, data: URI, path or file:// path).

    ``role`` ("image", "first frame", "last frame") and ``flag`` ("IMAGE", "--last-frame")
    are used in messages. Raises :class:`BadInputError` for anything the service would refuse.

    ``fit=True`` (``--fit``): a local file is only required to be a readable, non-empty
    regular file; the rules --fit repairs (format, 10 MB, 360..2000 px, alpha) are deferred.
    Such an input has ``deferred`` set and ``mime``/``image`` None until ``check()`` runs,
    which ``iter_value``/``value``/``encoded_length`` do first, so it is never sent
    unchecked. Data URIs and URLs are not re-encoded by --fit and are checked as usual.
    """
    return _load(arg, role=role, flag=flag, audio=False, fit=fit,
                 limits=limits or DEFAULT_IMAGE_LIMITS)


def load_audio(arg: str, *, flag: str = "--audio",
               limits: AudioLimits | None = None) -> MediaInput:
    """Resolve and validate an audio argument (WAV or MP3; by default 3..30 s, <= 15 MB;
    ``limits``: the model's, ``Model.audio_limits``)."""
    return _load(arg, role="audio", flag=flag, audio=True,
                 audio_limits=limits or DEFAULT_AUDIO_LIMITS)


def from_bytes(data: bytes, mime: str, *, arg: str, role: str,
               limits: ImageLimits | None = None) -> MediaInput:
    """An in-memory image (or audio, for an ``audio/*`` MIME), validated like a file.

    Used after re-encoding (``--fit``). ``mime`` must match the content; ``arg`` names the
    input in messages. The value is sent as a data URI.
    """
    audio = mime.lower().startswith("audio/")
    mi = _from_raw(bytes(data), arg=arg, role=role, flag="", label=arg, audio=audio,
                   limits=limits or DEFAULT_IMAGE_LIMITS)
    canonical = (AUDIO_MIMES if audio else IMAGE_MIMES).get(mime.lower())
    if canonical != mi.mime:
        raise ValueError(f"from_bytes: mime {mime!r} does not match the content ({mi.mime})")
    return mi


# --------------------------------------------------------------------------- video clips

VIDEO_FORMATS_TEXT = "MP4 or MOV"
_MOV_BRANDS = (b"qt  ",)


def _boxes(src: _Src, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload offset, payload end) of the ISO-BMFF boxes in [start, end)."""
    pos = start
    while pos + 8 <= end:
        hdr = src.read(pos, 16)
        if len(hdr) < 8:
            return
        size, btype = _u32be(hdr), hdr[4:8]
        head = 8
        if size == 1:  # 64-bit largesize
            if len(hdr) < 16:
                return
            size, head = int(struct.unpack_from(">Q", hdr, 8)[0]), 16
        elif size == 0:  # to the end of the enclosing box / file
            size = end - pos
        if size < head or pos + size > end:
            return
        yield btype, pos + head, pos + size
        pos += size


def _probe_video_src(src: _Src, why: list[str] | None = None) -> VideoInfo | None:
    """MP4/MOV: the container from the ``ftyp`` box, the duration from ``moov/mvhd``, the
    size from the tracks' ``tkhd``. Only box headers are read, never the media data.
    ``why`` gets the reason a found ``moov`` gives no duration (a timescale of 0)."""
    head = src.read(0, 16)
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    brand = head[8:12]
    fmt, mime = ("MOV", "video/quicktime") if brand in _MOV_BRANDS else ("MP4", "video/mp4")
    duration: float | None = None
    width = height = 0
    for btype, off, end in _boxes(src, 0, src.size):
        if btype != b"moov":
            continue
        for ctype, coff, cend in _boxes(src, off, end):
            if ctype == b"mvhd":
                b = src.read(coff, 32)
                if len(b) < 20:
                    return None
                if b[0] == 1:  # version 1: 64-bit times
                    if len(b) < 32:
                        return None
                    scale = _u32be(b, 20)
                    dur = int(struct.unpack_from(">Q", b, 24)[0])
                else:
                    scale, dur = _u32be(b, 12), _u32be(b, 16)
                if not scale:
                    if why is not None:
                        why.append("its movie header (moov/mvhd) gives a timescale of 0, so "
                                   "it has no duration")
                    return None
                duration = dur / scale
            elif ctype == b"trak":
                for ttype, toff, _tend in _boxes(src, coff, cend):
                    if ttype != b"tkhd":
                        continue
                    b = src.read(toff, 100)
                    wo = 88 if b[:1] == b"\x01" else 76  # width, height: 16.16 fixed point
                    if len(b) >= wo + 8:
                        w, h = _u32be(b, wo) >> 16, _u32be(b, wo + 4) >> 16
                        if w * h > width * height:
                            width, height = w, h
        break
    if duration is None:
        return None
    return VideoInfo(mime, duration, width, height, fmt)


def probe_video(data: bytes) -> VideoInfo | None:
    """Container, duration and size of an MP4/MOV file's bytes; None if it is not one
    (or its ``moov`` box is missing or cut off)."""
    return _probe_video_src(_BytesSrc(data))


def _check_clip(src: _Src, label: str, limits: ClipLimits) -> VideoInfo:
    why: list[str] = []
    info = _probe_video_src(src, why)
    if info is None:
        head = src.read(0, 64)
        if why:
            raise BadInputError(f"{label}: looks like {VIDEO_FORMATS_TEXT} but {why[0]} (a "
                                "damaged file, or a muxer's bug). Re-export it.")
        if head[4:8] == b"ftyp":
            raise BadInputError(f"{label}: looks like {VIDEO_FORMATS_TEXT} but its duration "
                                "cannot be read (no complete moov box; a file still being "
                                "written or cut short). Re-export it.")
        desc = _describe(head)
        looks = f"content looks like {desc}" if desc else "content not recognised"
        who = limits.model or "the service"
        raise BadInputError(f"{label}: not a supported video ({looks}); {who} takes "
                            f"{', '.join(limits.formats)} clips. Convert it, e.g. ffmpeg -i "
                            "INPUT clip.mp4.")
    if info.format not in limits.formats:
        raise BadInputError(f"{label}: {info.format} video; {limits.model} takes "
                            f"{', '.join(limits.formats)}. Convert it, e.g. ffmpeg -i INPUT "
                            "clip.mp4.")
    if limits.max_bytes is not None and src.size > limits.max_bytes:
        raise BadInputError(f"{label}: clip is {_mb(src.size)}; the limit is "
                            f"{_secs(limits.max_bytes / (1024 * 1024))} MiB. Trim or "
                            "re-encode it.")
    d, lo, hi = info.duration, limits.min_s, limits.max_s
    if lo is not None and d < lo:
        raise BadInputError(f"{label}: clip is {_secs(round(d, 2))} s long; it must be "
                            f"{_range_text(lo, hi, 's')}. Use a clip of at least {_secs(lo)} s.")
    if hi is not None and d > hi:
        raise BadInputError(f"{label}: clip is {_secs(round(d, 2))} s long; it must be "
                            f"{_range_text(lo, hi, 's')}. Trim it, e.g. ffmpeg -i INPUT -t "
                            f"{_secs(hi)} -c copy clip.mp4.")
    w, h = info.width, info.height
    if w and h:
        if ((limits.min_px is not None and min(w, h) < limits.min_px)
                or (limits.max_px is not None and max(w, h) > limits.max_px)):
            raise BadInputError(f"{label}: clip is {w}×{h} px; width and height must be "
                                f"{_range_text(limits.min_px, limits.max_px, 'px')}. Scale "
                                "it, e.g. ffmpeg -i INPUT -vf scale=1280:-2 clip.mp4.")
        a_lo, a_hi = limits.min_aspect, limits.max_aspect
        if (a_lo is not None and w / h < a_lo) or (a_hi is not None and w / h > a_hi):
            raise BadInputError(f"{label}: clip is {w}×{h} px (aspect {w / h:.2f}); it must "
                                f"be {_aspect(a_lo or 0.0001)}..{_aspect(a_hi or 10000)}. "
                                "Crop it.")
    return info


def load_clip(arg: str, *, flag: str = "--first-clip",
              limits: ClipLimits | None = None) -> MediaInput:
    """Resolve and validate a video clip: an http(s) URL (passed through) or a local MP4/MOV
    file (checked: container, duration, size; sent through the temporary upload). The
    service takes video only as a URL, so a data: URI is refused."""
    lim = limits or ClipLimits()
    accepts = f"an http(s) URL or a local {VIDEO_FORMATS_TEXT} file"
    kind, rest = _classify(arg, flag, accepts)
    if kind == "url":
        return MediaInput(arg, "url", "first clip", None, None, None, None, None, flag=flag)
    if kind == "data":
        raise BadInputError(f"{flag}: a data: URI; the service takes video only as a URL. "
                            "Pass the file's path (it is uploaded) or a public http(s) URL.")
    path = Path(rest).expanduser()
    size = _stat_file(path, arg, VIDEO_FORMATS_TEXT)
    info = _with_file(path, arg, lambda f: _check_clip(_FileSrc(f, size), arg, lim))
    return MediaInput(arg, "file", "first clip", path, info.mime, size, None, None, flag=flag,
                      video=info)


# --------------------------------------------------------------------------- cross checks


def check_audio_for_model(audio: MediaInput, model: Model, duration: int,
                          warn: Callable[[str], None]) -> None:
    """Refuse audio on a model without audio support; warn when it outlasts the video."""
    if not model.takes("driving_audio"):
        able = ", ".join(m.name for m in MODELS if m.takes("driving_audio"))
        flag = audio.flag or "--audio"
        raise BadInputError(f"{flag}: model {model.name} does not take an audio track; audio "
                            f"works with {able}. Pick one with --model, or drop {flag}.")
    if audio.audio is not None and audio.audio.duration > duration:
        warn(f"{audio.label}: audio is {_secs(audio.audio.duration)} s but the video is "
             f"{duration} s; the service keeps only the first {duration} s.")


def check_frame_aspects(first: MediaInput, last: MediaInput,
                        warn: Callable[[str], None]) -> None:
    """kf2v: warn when the frames' aspect ratios differ by more than 5 %."""
    if first.image is None or last.image is None:
        return  # URLs: dimensions unknown
    a1 = first.image.width / first.image.height
    a2 = last.image.width / last.image.height
    diff = abs(a2 - a1) / a1
    if diff > ASPECT_TOLERANCE:
        warn(f"{first.role} {first.label} is {first.image.width}×{first.image.height} "
             f"(aspect {a1:.3f}) but {last.role} {last.label} is "
             f"{last.image.width}×{last.image.height} (aspect {a2:.3f}), {diff:.0%} apart; "
             f"the video keeps the {first.role}'s shape. Crop both frames to the same aspect "
             "ratio for a smooth transition.")


def predict_output_size(width: int, height: int, resolution: str) -> tuple[int, int]:
    """The video size the service should produce for a first frame of ``width``×``height``.

    It keeps the frame's aspect ratio, scales the pixel count to the tier and rounds both
    sides down to multiples of 16 (750×1000 at 720P -> 816×1104). Exact integer arithmetic:
    ``isqrt(floor(x)) == floor(sqrt(x))``, so 1280×720 stays 1280×720.
    """
    tier = normalize_resolution(resolution)
    if tier not in TIER_PIXELS:
        raise ValueError(f"unknown resolution {resolution!r}; use one of "
                         f"{', '.join(TIER_PIXELS)}")
    if width <= 0 or height <= 0:
        raise ValueError(f"bad image size {width}×{height}")
    pixels = TIER_PIXELS[tier]
    w = isqrt(pixels * width // height)
    h = isqrt(pixels * height // width)
    return max(16, w // 16 * 16), max(16, h // 16 * 16)


# --------------------------------------------------------------------------- request body


def body_bytes(payload: Any, **json_kwargs: Any) -> bytes:
    """``json.dumps(payload).encode()`` where MediaInput values become their values.

    Each MediaInput is replaced by a unique placeholder, the (small) rest is serialised once,
    and the result is assembled into a single pre-sized buffer, splicing each input's
    ``iter_value()`` chunks in as they are read, so a file's base64 exists once. Extra
    keyword arguments go to :func:`json.dumps` (the equality holds for the same arguments).
    """
    token = f"wanvid-media-{os.urandom(16).hex()}-"
    media: list[MediaInput] = []

    def substitute(obj: Any) -> Any:
        if isinstance(obj, MediaInput):
            media.append(obj)
            return f"{token}{len(media) - 1}"
        if isinstance(obj, dict):
            return {k: substitute(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [substitute(v) for v in obj]
        return obj

    template = json.dumps(substitute(payload), **json_kwargs)
    if not media:
        return template.encode("utf-8")
    parts = re.split(f'"{re.escape(token)}(\\d+)"', template)
    texts = [p.encode("utf-8") for p in parts[0::2]]
    order = [media[int(i)] for i in parts[1::2]]
    if sorted(int(i) for i in parts[1::2]) != list(range(len(media))):
        raise RuntimeError("body_bytes: media placeholder lost in serialisation")

    # Non-file values are small: serialise them as json.dumps would (escapes and all).
    # Data URIs built from base64 never need escaping, so their chunks go in verbatim.
    small: dict[int, bytes] = {}
    total = sum(len(t) for t in texts)
    for idx, m in enumerate(order):
        if m.kind == "url":
            small[idx] = json.dumps(m.arg, **json_kwargs).encode("utf-8")
            total += len(small[idx])
        else:
            total += 2 + m.encoded_length()

    buf = io.BytesIO()
    buf.seek(total - 1)  # pre-size once; getvalue() then hands the buffer over without a copy
    buf.write(b"\0")
    buf.seek(0)
    for idx, text in enumerate(texts):
        buf.write(text)
        if idx == len(order):
            break
        m = order[idx]
        if idx in small:
            buf.write(small[idx])
        else:
            buf.write(b'"')
            for piece in m.iter_value(chunk=_BODY_CHUNK):
                buf.write(piece)
            buf.write(b'"')
    if buf.tell() != total:
        raise RuntimeError(f"body_bytes: assembled {buf.tell()} bytes, expected {total}")
    return buf.getvalue()
