"""``--fit``: turn any photo into an image the service accepts.

The service takes JPEG, PNG without alpha, BMP or WEBP, 360..2000 px a side, <= 10 MB
(``models.IMAGE_*``). Phone photos are usually none of that: 12-50 MP, EXIF-rotated,
sometimes HEIC, full of GPS tags. ``fit_image`` opens anything Pillow reads, applies the
EXIF orientation, scales it to the resolution tier's pixel budget, flattens transparency
and re-encodes it as a metadata-free JPEG. An image that is already acceptable and carries
no metadata is sent byte-for-byte as it is.

Pillow is a dependency, imported only inside the functions that need it: importing this
module never imports PIL. HEIC needs ``pillow-heif`` (``pip install 'wanvid[heic]'``).
Decompression bombs are refused from the header's pixel count, before decoding.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanvid.errors import BadInputError
from wanvid.models import IMAGE_MAX_BYTES, IMAGE_MAX_PX, IMAGE_MIN_PX, TIER_PIXELS, ImageLimits

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

# What a fitted image may hold: this many times the tier's total pixel count. The service
# rescales to the tier anyway; a little headroom keeps its resampling from upscaling.
PIXEL_BUDGET_FACTOR = 1.5
DEFAULT_TIER = "1080P"
JPEG_QUALITIES = (92, 85, 75)  # tried in turn until the JPEG fits in IMAGE_MAX_BYTES

MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "BMP": "image/bmp"}
# Formats an already-acceptable file may be sent in unchanged (MPO, a JPEG with a second
# picture appended, is not one of them).
PASSTHROUGH_FORMATS = frozenset(MIME_TYPES)

# Pillow ``info`` keys that carry metadata (never structural data).
_META_INFO_KEYS = ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "photoshop",
                   "iptc")
# PNG chunks that describe pixels only; anything else (tEXt, iTXt, zTXt, eXIf, iCCP, tIME,
# private chunks) counts as metadata.
_PNG_PLAIN_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM",
                               b"sRGB", b"sBIT", b"pHYs", b"bKGD", b"hIST"})
# WEBP RIFF chunks that describe pixels only (ICCP, EXIF, XMP are metadata).
_WEBP_PLAIN_CHUNKS = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"})
# TIFF/EXIF IFD0 tags that are metadata rather than image structure.
_TIFF_META_TAGS = frozenset({0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x02BC, 0x8298,
                             0x83BB, 0x8649, 0x8769, 0x8773, 0x8825})
_ORIENTATION_TAG = 0x0112
# Decompression bombs: the pixel count is read from the header before anything is decoded.
# Pillow's own limit (~179 MP, a warning from 89 MP) is replaced by two of ours. A JPEG is
# decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling), so a 200 MP phone photo costs
# what a 3-25 MP one does: up to MAX_DECODE_PIXELS. Every other format (PNG, WebP, BMP,
# TIFF, GIF, HEIC) is decoded at full size, about 3-4 bytes a pixel: up to
# MAX_FULL_DECODE_PIXELS (50 MP, e.g. 8660×5770; about 200 MB), which no camera's PNG
# reaches, and which a 200 KB PNG claiming 15000×15000 (225 MP) does; or, when the model
# takes larger images as they are (wan2.7: 8000×8000, 64 MP), up to its own largest
# (sides at its max_px), never over MAX_DECODE_PIXELS: what the model takes without --fit,
# --fit can decode, and a bomb is still bounded.
MAX_DECODE_PIXELS = 256_000_000
MAX_FULL_DECODE_PIXELS = 50_000_000
MAX_FILE_BYTES = 256 << 20  # a file --fit reads into memory (phone photos: 2-30 MB)
_DRAFTABLE = ("JPEG", "MPO")

_heif_checked = False


@dataclass(frozen=True)
class FitResult:
    """What will be sent, and what it was made from."""

    data: bytes
    mime: str
    format: str  # "JPEG", or "PNG"/"WEBP"/"BMP" when the original is passed through
    width: int
    height: int
    orig_width: int  # as stored, before the EXIF orientation
    orig_height: int
    orig_format: str
    orig_size: int
    changed: bool  # False: ``data`` is the original file, byte for byte
    notes: tuple[str, ...] = ()  # what was done besides scaling, for ``describe``

    def describe(self, name: str) -> str:
        """One line for stderr about what ``--fit`` did to the file ``name``."""
        if not self.changed:
            return (f"{name}: {self.width}×{self.height} {self.format} "
                    f"{_human_size(self.orig_size)} is fine, sent unchanged")
        line = (f"{name}: fitted {self.orig_width}×{self.orig_height} {self.orig_format} "
                f"{_human_size(self.orig_size)} → {self.width}×{self.height} {self.format} "
                f"{_human_size(len(self.data))}")
        return f"{line} ({', '.join(self.notes)})" if self.notes else line


def _human_size(n: int) -> str:
    from wanvid.units import human_size

    return human_size(n)


@dataclass(frozen=True)
class _Bounds:
    min_px: int
    max_px: int
    max_bytes: int
    formats: frozenset[str]
    min_aspect: float | None
    max_aspect: float | None


def _bounds(limits: ImageLimits | None) -> _Bounds:
    """The bounds a fitted image must meet: the model's ``limits``, or (None) this module's
    IMAGE_* constants (the Nov 2025 rules), read at call time. A bound the model leaves
    open (unconfirmed) is filled in from the constants, so --fit stays conservative."""
    if limits is None:
        return _Bounds(IMAGE_MIN_PX, IMAGE_MAX_PX, IMAGE_MAX_BYTES, PASSTHROUGH_FORMATS,
                       None, None)
    return _Bounds(limits.min_px or IMAGE_MIN_PX, limits.max_px or max(IMAGE_MAX_PX, 8000),
                   limits.max_bytes or IMAGE_MAX_BYTES,
                   PASSTHROUGH_FORMATS & frozenset(limits.formats),
                   limits.min_aspect, limits.max_aspect)


def target_size(width: int, height: int, resolution: str | None,
                limits: ImageLimits | None = None) -> tuple[int, int]:
    """The size to send a ``width``×``height`` image at for the ``resolution`` tier.

    Keeps the aspect ratio. The long side ends up <= 2000 px and the total pixel count at
    most ``PIXEL_BUDGET_FACTOR`` times the tier's (1080P when ``resolution`` is None); an
    image with a side under 360 px is scaled up until its short side is 360, which wins
    over the pixel budget. An image that already fits is returned at its own size. Raises
    ``BadInputError`` when the aspect ratio is outside 360/2000 .. 2000/360.
    """
    if width <= 0 or height <= 0:
        raise BadInputError(f"image has no pixels ({width}×{height})")
    tier = _tier(resolution)
    b = _bounds(limits)
    lo_px, hi_px = b.min_px, b.max_px
    long_side, short_side = max(width, height), min(width, height)
    if long_side * lo_px > hi_px * short_side:
        raise BadInputError(
            f"aspect ratio {width}×{height} ({width / height:.2f}) cannot fit: every side "
            f"must be {lo_px}..{hi_px} px, so width/height must be between "
            f"{lo_px / hi_px:.2f} and {hi_px / lo_px:.2f}; "
            f"crop the image to a less extreme shape first")
    ratio = width / height
    if (b.min_aspect and ratio < b.min_aspect) or (b.max_aspect and ratio > b.max_aspect):
        raise BadInputError(
            f"aspect ratio {width}×{height} ({ratio:.2f}) cannot fit: "
            f"{limits.model if limits else 'the model'} takes width/height between "
            f"{b.min_aspect or 0:.2f} and {b.max_aspect or 0:.2f}; crop the image first")
    budget = TIER_PIXELS[tier] * PIXEL_BUDGET_FACTOR
    scale = min(1.0, hi_px / long_side, math.sqrt(budget / (width * height)))
    if short_side * scale < lo_px:
        scale = lo_px / short_side
    if scale == 1.0:
        return width, height
    # Round towards the original size, so a downscale stays inside the budget and an
    # upscale reaches the minimum; the clamp absorbs float error at the bounds.
    if scale > 1.0:
        w, h = math.ceil(width * scale - 1e-6), math.ceil(height * scale - 1e-6)
    else:
        w, h = math.floor(width * scale + 1e-6), math.floor(height * scale + 1e-6)
    return (max(lo_px, min(hi_px, w)), max(lo_px, min(hi_px, h)))


def _tier(resolution: str | None) -> str:
    tier = DEFAULT_TIER if resolution is None else resolution.strip().upper()
    if tier not in TIER_PIXELS:
        raise BadInputError(f"unknown resolution {resolution!r}; "
                            f"choose one of {', '.join(TIER_PIXELS)}")
    return tier


def _pil() -> tuple[Any, Any, Any]:
    """Import Pillow (and the HEIC opener if it happens to be installed)."""
    global _heif_checked
    try:
        from PIL import Image, ImageColor, ImageOps
    except ImportError as e:
        raise BadInputError(f"--fit needs Pillow, which wanvid depends on but cannot import "
                            f"({e}); reinstall it: pip install pillow") from e
    if not _heif_checked:
        _heif_checked = True
        try:
            from pillow_heif import register_heif_opener  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:
            register_heif_opener()
    return Image, ImageColor, ImageOps


def _background_rgb(background: str, image_color: Any) -> tuple[int, int, int]:
    try:
        rgb = image_color.getrgb(background)
    except (ValueError, AttributeError) as e:
        raise BadInputError(f"--fit-background: unknown colour {background!r}; use a name "
                            "like 'white' or a hex value like '#1e1e1e'") from e
    return rgb[0], rgb[1], rgb[2]


def _png_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        chunks.append(ctype)
        if ctype == b"IEND":
            break
        pos += 12 + length
    return chunks


def _riff_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        ctype, length = struct.unpack("<4sI", data[pos:pos + 8])
        chunks.append(ctype)
        pos += 8 + length + (length & 1)
    return chunks


def _has_metadata(im: PILImage, data: bytes) -> bool:
    """Whether the file carries anything besides pixels: EXIF, GPS, XMP, ICC, comments..."""
    if any(im.info.get(k) for k in _META_INFO_KEYS):
        return True
    fmt = im.format
    if fmt in ("JPEG", "MPO"):
        for marker, payload in getattr(im, "applist", []):
            plain = ((marker == "APP0" and payload.startswith(b"JFIF"))
                     or (marker == "APP14" and payload.startswith(b"Adobe")))
            if not plain:
                return True
    elif fmt == "PNG":
        return any(c not in _PNG_PLAIN_CHUNKS for c in _png_chunks(data))
    elif fmt == "WEBP":
        return any(c not in _WEBP_PLAIN_CHUNKS for c in _riff_chunks(data))
    elif fmt == "TIFF":
        return any(tag in _TIFF_META_TAGS for tag in im.getexif())
    return False


def _has_alpha(im: PILImage) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def _can_pass_through(im: PILImage, data: bytes, size: tuple[int, int],
                      has_metadata: bool, limits: ImageLimits | None = None) -> bool:
    b = _bounds(limits)
    if im.format not in b.formats or len(data) > b.max_bytes or has_metadata:
        return False
    if im.mode not in ("RGB", "L", "P"):
        return False
    if _has_alpha(im) or getattr(im, "n_frames", 1) > 1 or im.size != size:
        return False
    # 16-bit PNGs are opened as 8-bit by Pillow; don't vouch for what the service does.
    return not (im.format == "PNG" and len(data) > 24 and data[24] > 8)


def _plan(upright: tuple[int, int], resolution: str | None,
          size: tuple[int, int] | None,
          limits: ImageLimits | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """(output size, size the whole upright image must be decoded at to make it)."""
    if size is None:
        out = target_size(upright[0], upright[1], resolution, limits)
        return out, out
    cover = max(size[0] / upright[0], size[1] / upright[1])
    return size, (math.ceil(upright[0] * cover), math.ceil(upright[1] * cover))


def _cover_box(src: tuple[int, int], dst: tuple[int, int]) -> tuple[float, float, float, float]:
    """The centred region of ``src`` with ``dst``'s aspect ratio (resize-to-cover + crop)."""
    sw, sh = src
    dw, dh = dst
    if sw * dh > dw * sh:  # source is wider: trim left and right
        cw = sh * dw / dh
        return ((sw - cw) / 2, 0.0, (sw + cw) / 2, float(sh))
    ch = sw * dh / dw
    return (0.0, (sh - ch) / 2, float(sw), (sh + ch) / 2)


def _to_rgb(im: PILImage, background: tuple[int, int, int], pil_image: Any) -> PILImage:
    """An RGB image, with any transparency composited onto ``background``."""
    if im.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        _, hi = im.getextrema()  # type: ignore[misc]
        if hi > 255:  # 16-bit grey: scale it, don't clip it to white
            im = im.convert("I").point(lambda v: v * (1 / 256))
        im = im.convert("L")
    if _has_alpha(im):
        rgba = im.convert("RGBA")
        flat = pil_image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return im if im.mode == "RGB" else im.convert("RGB")


def _encode_jpeg(im: PILImage, limits: ImageLimits | None = None) -> tuple[bytes, int]:
    max_bytes = _bounds(limits).max_bytes
    for quality in JPEG_QUALITIES:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        if buf.tell() <= max_bytes:
            return buf.getvalue(), quality
    raise BadInputError(f"still over {_human_size(max_bytes)} as a JPEG at "
                        f"quality {JPEG_QUALITIES[-1]}; pick a lower --resolution or shrink it")


def fit_image(path: Path, *, resolution: str | None, background: str = "white",
              size: tuple[int, int] | None = None,
              limits: ImageLimits | None = None) -> FitResult:
    """Make the image at ``path`` acceptable to the service (see the module docstring).

    ``size`` forces an exact output size: the image is scaled to cover it and centre-
    cropped, so nothing is distorted (used to match kf2v's last frame to its first).
    Raises ``BadInputError`` for a missing Pillow, an unreadable file, a bad
    ``background`` colour, an impossible aspect ratio or an output that can't fit 10 MB.
    """
    pil_image, image_color, _ = _pil()
    bg = _background_rgb(background, image_color)
    _tier(resolution)
    name = str(path)
    b = _bounds(limits)
    if size is not None and not all(b.min_px <= s <= b.max_px for s in size):
        raise BadInputError(f"{name}: cannot fit to {size[0]}×{size[1]}: each side must be "
                            f"{b.min_px}..{b.max_px} px")
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise BadInputError(f"{name}: {_human_size(path.stat().st_size)} is more than the "
                                f"{_human_size(MAX_FILE_BYTES)} --fit reads; shrink it first")
        data = path.read_bytes()
    except OSError as e:
        raise BadInputError(f"{name}: cannot read: {e.strerror or e}") from e
    try:
        # Pillow warns about odd but harmless files (corrupt EXIF, huge pixel counts); the
        # metadata is dropped anyway and stderr gets one line from ``describe``.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _fit_bytes(data, resolution=resolution, background=background, bg=bg,
                              size=size, limits=limits)
    except BadInputError as e:
        raise BadInputError(f"{name}: {e.message}") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise BadInputError(f"{name}: {_unreadable(data, e)}") from e


_BUFFER_REPR = re.compile(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>")


def _unreadable(data: bytes, e: BaseException) -> str:
    """Why Pillow could not read ``data``, without Pillow's repr of the in-memory buffer
    (the caller names the file): a PNG gets wanvid.png's precise fault."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        from wanvid.png import PNGError, check_png

        try:
            check_png(io.BytesIO(data))
        except PNGError as p:
            return (f"PNG image is damaged or cut short: its pixels cannot be decoded ({p}). "
                    "Re-export the image.")
    why = _BUFFER_REPR.sub("", str(e)).strip() or type(e).__name__
    return f"not an image Pillow can read ({why})"


def _fit_bytes(data: bytes, *, resolution: str | None, background: str,
               bg: tuple[int, int, int], size: tuple[int, int] | None,
               limits: ImageLimits | None = None) -> FitResult:
    pil_image, _, image_ops = _pil()
    pillow_limit = pil_image.MAX_IMAGE_PIXELS
    pil_image.MAX_IMAGE_PIXELS = None
    try:
        im = pil_image.open(io.BytesIO(data))
    finally:
        pil_image.MAX_IMAGE_PIXELS = pillow_limit
    orig_format = im.format or "unknown"
    _check_pixels(im.width, im.height, orig_format, limits)
    orientation = im.getexif().get(_ORIENTATION_TAG, 1)
    if orientation not in range(2, 9):
        orientation = 1
    if orig_format == "TIFF":  # Pillow reports (and loads) TIFFs upright already
        orig_w = int(im.tag_v2.get(256, im.width))
        orig_h = int(im.tag_v2.get(257, im.height))
    else:
        orig_w, orig_h = im.size
    metadata = _has_metadata(im, data)
    if (orientation == 1 and orig_format in PASSTHROUGH_FORMATS
            and _can_pass_through(im, data, _plan(im.size, resolution, size, limits)[0],
                                  metadata, limits)):
        return FitResult(data=data, mime=MIME_TYPES[orig_format], format=orig_format,
                         width=orig_w, height=orig_h, orig_width=orig_w, orig_height=orig_h,
                         orig_format=orig_format, orig_size=len(data), changed=False)
    notes: list[str] = []
    if getattr(im, "n_frames", 1) > 1 and orig_format != "MPO":
        notes.append(f"first of {im.n_frames} frames")
    drafted: tuple[int, int] | None = None
    if orig_format in ("JPEG", "MPO"):
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale, never below the size needed.
        # (Pillow leaves JPEGs as stored, so the upright size is known before decoding.)
        upright = (orig_h, orig_w) if orientation >= 5 else (orig_w, orig_h)
        needed = _plan(upright, resolution, size, limits)[1]
        if needed[0] < upright[0]:
            im.draft(None, needed if orientation < 5 else (needed[1], needed[0]))
            drafted = upright
    im.load()
    alpha = _has_alpha(im)
    if drafted is None and orientation == 1 and orig_format != "TIFF":
        im, drafted = _reduced(im, resolution, size, bg, pil_image, limits)
    if im.getexif().get(_ORIENTATION_TAG, 1) in range(2, 9):
        im = image_ops.exif_transpose(im)
    if orientation != 1:
        notes.append("EXIF orientation applied")
    out_size = _plan(drafted or im.size, resolution, size, limits)[0]
    if alpha:
        notes.append(f"transparency flattened onto {background}")
    im = _to_rgb(im, bg, pil_image)
    if size is not None:
        box = _cover_box(im.size, size)
        if (box[2] - box[0]) * (box[3] - box[1]) < 0.99 * im.width * im.height:
            notes.append("centre-cropped to the first frame's shape")
        im = im.resize(size, pil_image.Resampling.LANCZOS, box=box)
    elif im.size != out_size:
        im = im.resize(out_size, pil_image.Resampling.LANCZOS)
    # A fresh image: nothing of the original's ``info`` (EXIF, XMP, ICC, comments) can
    # reach the encoder.
    out = pil_image.new("RGB", im.size)
    out.paste(im)
    out.info.clear()
    if metadata:
        notes.append("metadata removed")
    encoded, quality = _encode_jpeg(out, limits)
    if quality != JPEG_QUALITIES[0]:
        notes.append(f"JPEG quality {quality} to stay under "
                     f"{_human_size(_bounds(limits).max_bytes)}")
    return FitResult(data=encoded, mime=MIME_TYPES["JPEG"], format="JPEG", width=out.width,
                     height=out.height, orig_width=orig_w, orig_height=orig_h,
                     orig_format=orig_format, orig_size=len(data), changed=True,
                     notes=tuple(notes))


def full_decode_limit(limits: ImageLimits | None) -> int:
    """The pixels --fit decodes at full size: MAX_FULL_DECODE_PIXELS, or the model's own
    largest image when that is more, never over MAX_DECODE_PIXELS."""
    side = limits.max_px if limits is not None and limits.max_px else 0
    return min(MAX_DECODE_PIXELS, max(MAX_FULL_DECODE_PIXELS, side * side))


def _check_pixels(width: int, height: int, fmt: str,
                  limits: ImageLimits | None = None) -> None:
    """Refuse, from the header alone, an image too big to decode (see MAX_*_PIXELS)."""
    limit = MAX_DECODE_PIXELS if fmt in _DRAFTABLE else full_decode_limit(limits)
    if width * height > limit:
        how = "" if fmt in _DRAFTABLE else f" at full size (a {fmt} cannot be decoded smaller)"
        raise BadInputError(f"{width}×{height} is {width * height / 1e6:.1f} MP, over the "
                            f"{limit // 1_000_000} MP --fit decodes{how}; shrink it first "
                            "(it may also be a decompression bomb)")


_STRIP_ROWS = 256  # rows of the full image flattened and reduced at a time


def _reduced(im: PILImage, resolution: str | None, size: tuple[int, int] | None,
             background: tuple[int, int, int], pil_image: Any,
             limits: ImageLimits | None = None,
             ) -> tuple[PILImage, tuple[int, int] | None]:
    """A fully decoded (upright) image much larger than needed, made RGB (transparency
    flattened onto ``background``) and shrunk by an integer factor (``Image.reduce``, a
    box filter, as libjpeg's draft scaling is for JPEGs) a strip at a time: no second
    full-size copy is ever made (converting or reducing an RGBA image whole would make
    one), so the peak is the decoded image plus a strip. The final LANCZOS resize does
    the fine step. Returns the image and, when reduced, the size the output is planned
    from (the original's)."""
    if im.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return im, None  # 16-bit grey is scaled by its global maximum: whole, in _to_rgb
    needed = _plan(im.size, resolution, size, limits)[1]
    factor = min(im.width // max(1, needed[0]), im.height // max(1, needed[1]))
    if factor < 2:
        return im, None
    out = pil_image.new("RGB", (im.width // factor, im.height // factor))
    step = factor * max(1, _STRIP_ROWS // factor)
    for y in range(0, out.height * factor, step):
        rows = min(step, out.height * factor - y)
        strip = _to_rgb(im.crop((0, y, out.width * factor, y + rows)), background, pil_image)
        out.paste(strip.reduce(factor), (0, y // factor))
    return out, im.size


def fit_pair(first: Path, last: Path, *, resolution: str | None,
             background: str = "white",
             limits: ImageLimits | None = None) -> tuple[FitResult, FitResult]:
    """Fit kf2v's first and last frames to one shared size: the first frame's fitted size.

    The last frame is scaled to cover that size and centre-cropped, never stretched.
    """
    a = fit_image(first, resolution=resolution, background=background, limits=limits)
    b = fit_image(last, resolution=resolution, background=background, size=(a.width, a.height),
                  limits=limits)
    return a, b
