"""Metadata beside every saved video: ``clip.mp4`` -> ``clip.json`` (+ ``clip.thumb.jpg``).

A sidecar says what made the video, so that a directory of clips copied anywhere still
tells which prompt, seed and model made which, what the service really used as the prompt
(``actual_prompt``) and what it cost. It holds:

* ``task_id``, ``request_id`` (of the task query whose answer the sidecar records), ``model``;
* ``parameters``: every parameter sent, as the journal keeps them (prompt, negative prompt,
  resolution, duration, seed, prompt_extend, watermark, ...), never image data, never a key;
* ``inputs``: each input as it was given (a path, a URL, an abbreviated ``data:`` URI), its
  role, and for a local file still at that path when the video is saved, size and sha256;
* ``prompt`` and ``actual_prompt`` (the rewritten prompt, when the service returns one),
  ``seed`` (when one was sent: the service does not report the one it picked);
* ``times``: submitted (journal), the service's submit / scheduled / end times (as sent:
  ``YYYY-MM-DD HH:mm:ss.SSS``, time zone unstated), downloaded (UTC), and ``took_s``;
* ``usage``: billed seconds and resolution (and the service's raw ``usage`` object);
* ``video``: file name, size, sha256; ``thumbnail``: the thumbnail's file name, or null.

It is written atomically (a new temporary file, never following a symlink, then a rename
over the final name) and only ever replaces a wanvid sidecar: a ``clip.json`` of the user's
own is left alone, and a symbolic link at ``clip.json`` or ``clip.thumb.jpg`` is refused
(``OSError`` naming it; the callers warn and keep the video). The thumbnail of the input
frame(s) is made locally with Pillow (without it, a broken install, there is simply no
thumbnail).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

FORMAT = "wanvid-sidecar"
VERSION = 1
THUMB_SUFFIX = ".thumb.jpg"
THUMB_BOX = (320, 180)  # the thumbnail fits in this box (both frames side by side for kf2v)
TEXT_MAX = 5000  # characters kept of any text the service sends
MAX_SIDECAR_BYTES = 1 << 20  # a sidecar larger than this is not read (gallery)
_HASH_CHUNK = 1 << 20


def sidecar_path(video: Path) -> Path:
    """``clip.mp4`` -> ``clip.json``."""
    return video.with_name(video.stem + ".json") if video.suffix else video.with_name(
        video.name + ".json")


def thumb_path(video: Path) -> Path:
    """``clip.mp4`` -> ``clip.thumb.jpg``."""
    return video.with_name((video.stem if video.suffix else video.name) + THUMB_SUFFIX)


def _text(value: object, limit: int = TEXT_MAX) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value if len(value) <= limit else value[:limit] + "…"


def _number(value: object) -> float | None:
    """A number the service may send as int, float or string ("720")."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) < 1e12 else None  # not NaN, not absurd


def _int_or_float(f: float | None) -> int | float | None:
    if f is None:
        return None
    return int(f) if f.is_integer() else f


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    try:
        return _dt.datetime.fromtimestamp(epoch, _dt.UTC).isoformat(timespec="seconds").replace(
            "+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def service_seconds(start: str | None, end: str | None) -> float | None:
    """Seconds between two of the service's ``YYYY-MM-DD HH:mm:ss[.SSS]`` times (both in the
    same, unstated, zone, so the difference is right whatever it is)."""
    if not start or not end:
        return None
    try:
        a = _dt.datetime.fromisoformat(start.strip())
        b = _dt.datetime.fromisoformat(end.strip())
    except ValueError:
        return None
    if (a.tzinfo is None) != (b.tzinfo is None):
        return None
    secs = (b - a).total_seconds()
    return round(secs, 3) if secs >= 0 else None


def usage_summary(usage: Mapping[str, Any] | None, params: Mapping[str, Any]) -> dict[str, Any]:
    """Billed seconds and resolution from the service's ``usage`` (its field names vary by
    model: ``duration`` + ``SR`` on wan2.2+, ``video_duration`` on wan2.1), falling back to
    the parameters sent."""
    from wanvid.usage import service_usage

    u = service_usage(usage)
    billed = u["billed_seconds"]
    if billed is None:
        billed = _int_or_float(_number(params.get("duration")))
    sr = u["SR"]
    resolution = f"{int(sr)}P" if sr else (_text(params.get("resolution"), 20) or None)
    return {"billed_seconds": billed, "resolution": resolution,
            "input_video_seconds": u["input_video_duration"],
            "output_video_seconds": u["output_video_duration"], "audio": u["audio"]}


def _file_digest(path: Path) -> tuple[int, str] | None:
    """Size and sha256 of a regular file (not following a final symlink), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        import stat

        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        h = hashlib.sha256()
        size = 0
        while True:
            chunk = os.read(fd, _HASH_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            h.update(chunk)
        return size, h.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


def local_input(name: str, cwd: Path | None = None) -> Path | None:
    """The local file an input name refers to (a path or ``file://`` path), or None for a
    URL, a ``data:`` URI, or a file that is not there any more."""
    if not name or name[:5].lower() == "data:" or name.startswith(("http://", "https://")):
        return None
    if name.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        name = unquote(urlsplit(name).path)
    p = Path(name).expanduser()
    if not p.is_absolute() and cwd is not None:
        p = cwd / p
    return p if p.is_file() else None


_CLIP_EXT = frozenset({".mp4", ".mov"})
_AUDIO_EXT = frozenset({".wav", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".flac", ".opus"})
_IMAGE_EXT = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})


def _suffix(name: str) -> str:
    """The file extension of a journaled input: a path, a URL (its path part) or a data:
    URI's preview (``--first-clip (data: URI)``, named by its flag)."""
    if name.startswith("--first-clip"):
        return ".mp4"
    if name.startswith("--audio"):
        return ".wav"
    if "://" in name:
        from urllib.parse import urlsplit

        name = urlsplit(name).path
    return PurePosixPath(name).suffix.lower()


def _roles(model: str, names: list[str]) -> list[str]:
    """What each journaled input is: a clip or an audio track by its extension, else a
    frame (first, then last); an input with no telling extension is a frame while the
    model can take one more (two for kf2v and media models, else one), then audio."""
    from wanvid.models import find_model

    m = find_model(model) if model else None
    room = 2 if "kf2v" in model or (m is not None and m.protocol in ("kf2v", "media")) else 1
    roles: list[str] = []
    frames = 0
    for name in names:
        ext = _suffix(name)
        if ext in _CLIP_EXT:
            roles.append("first clip")
        elif ext in _AUDIO_EXT or (ext not in _IMAGE_EXT and frames >= room):
            roles.append("audio")
        else:
            roles.append("first frame" if frames == 0 else "last frame")
            frames += 1
    return roles


def describe_inputs(names: list[str], model: str, cwd: Path | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, role in zip(names, _roles(model, names), strict=True):
        item: dict[str, Any] = {"role": role, "name": name, "size": None, "sha256": None}
        p = local_input(name, cwd)
        if p is not None:
            digest = _file_digest(p)
            if digest is not None:
                item["size"], item["sha256"] = digest
        out.append(item)
    return out


def build(*, task_id: str, record: Any, response: Mapping[str, Any] | None, video: Path,
          size: int, sha256: str, downloaded_at: float, thumbnail: str | None = None,
          batch: str | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """The sidecar for one saved video. ``record`` is the task's journal record (or None:
    a task the journal does not know), ``response`` the service's last answer for it."""
    from wanvid import __version__

    resp: Mapping[str, Any] = response if isinstance(response, Mapping) else {}
    out = resp.get("output") if isinstance(resp.get("output"), Mapping) else {}
    assert isinstance(out, Mapping)
    usage = resp.get("usage") if isinstance(resp.get("usage"), Mapping) else None
    params: dict[str, Any] = dict(record.params) if record is not None and isinstance(
        record.params, dict) else {}
    model = (record.model if record is not None and record.model else None) or _text(
        out.get("model"), 100) or ""
    inputs = describe_inputs(list(record.inputs) if record is not None else [], model, cwd)
    times = {
        "submitted": _iso(record.submitted_at) if record is not None and record.submitted_at
        else None,
        "service_submit": _text(out.get("submit_time"), 40),
        "service_scheduled": _text(out.get("scheduled_time"), 40),
        "service_end": _text(out.get("end_time"), 40),
        "downloaded": _iso(downloaded_at),
    }
    took = service_seconds(times["service_submit"], times["service_end"])
    if took is None and record is not None and record.submitted_at:
        took = round(max(0.0, downloaded_at - record.submitted_at), 3)
    times["took_s"] = took
    prompt = params.get("prompt") if isinstance(params.get("prompt"), str) else None
    seed = params.get("seed")
    data: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "wanvid": __version__,
        "task_id": task_id,
        "request_id": _text(resp.get("request_id"), 100),
        "model": model,
        "parameters": params,
        "inputs": inputs,
        "prompt": prompt if prompt is not None else _text(out.get("orig_prompt")),
        "actual_prompt": _text(out.get("actual_prompt")),
        "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        "batch": batch,
        "times": times,
        "usage": {**usage_summary(usage, params),
                  "service": _plain(usage) if usage is not None else None},
        "video": {"file": video.name, "size": size, "sha256": sha256},
        "thumbnail": thumbnail,
    }
    return _scrubbed(data)


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of an untrusted value: bounded depth, strings capped."""
    if depth > 4:
        return None
    if isinstance(value, Mapping):
        return {str(k)[:100]: _plain(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in list(value)[:50]]
    if isinstance(value, str):
        return _text(value) or ""
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return str(value)[:200]


def _scrubbed(data: dict[str, Any]) -> dict[str, Any]:
    """No image data and no credential, whatever the journal or service handed over."""
    from wanvid.journal import _scrub

    scrubbed = _scrub(data)
    assert isinstance(scrubbed, dict)
    return scrubbed


# -- writing -----------------------------------------------------------------------------


def is_ours(path: Path) -> bool:
    """True when ``path`` is absent, or is a wanvid sidecar (so it may be replaced)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    import stat

    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_SIDECAR_BYTES:
        return False
    return read(path) is not None


def write_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path``: a fresh temporary file beside it (``O_EXCL``, never
    through a symlink), flushed, then renamed over ``path`` (a rename replaces a symlink at
    ``path`` instead of writing through it)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_thumbnail(frames: list[Path], dest: Path, box: tuple[int, int] = THUMB_BOX) -> bool:
    """A small JPEG of the input frame(s), side by side, at ``dest``. False (and no file)
    when Pillow is not installed or no frame can be read."""
    try:
        from PIL import Image, ImageOps
    except ImportError:
        return False
    images = []
    for p in frames:
        try:
            with Image.open(p) as im:
                im.draft("RGB", (box[0] * 2, box[1] * 2))  # JPEG: decode at a reduced size
                im = ImageOps.exif_transpose(im)
                if im.mode in ("RGBA", "LA", "P"):
                    im = im.convert("RGBA")
                    bg = Image.new("RGBA", im.size, "white")
                    bg.alpha_composite(im)
                    im = bg
                im = im.convert("RGB")
                im.thumbnail((box[0] // max(1, len(frames)), box[1]))
                images.append(im)
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
    if not images:
        return False
    width = sum(i.width for i in images) + 2 * (len(images) - 1)
    height = max(i.height for i in images)
    sheet = Image.new("RGB", (width, height), "white")
    x = 0
    for i in images:
        sheet.paste(i, (x, (height - i.height) // 2))
        x += i.width + 2
    import io

    buf = io.BytesIO()
    sheet.save(buf, "JPEG", quality=80)
    write_atomic(dest, buf.getvalue())
    return True


def save(video: Path, *, task_id: str, record: Any, response: Mapping[str, Any] | None,
         size: int, sha256: str, now: float, batch: str | None = None,
         cwd: Path | None = None, thumbnail: bool = True) -> Path | None:
    """Write the sidecar (and the thumbnail) beside a saved video; the sidecar's path, or
    None when a file of the user's own holds that name (left alone). OSError propagates."""
    video = Path(video)
    dest = sidecar_path(video)
    for p in (dest, thumb_path(video)):
        if p.is_symlink():  # planted where wanvid's own file belongs: say so, touch nothing
            raise OSError(errno.ELOOP, f"{p.name} is a symbolic link; refused, nothing "
                                       "written through it", str(p))
    if dest == video or not is_ours(dest):
        return None
    thumb_name: str | None = None
    if thumbnail and record is not None:
        names = list(record.inputs)
        frames = [p for name, role in zip(names, _roles(record.model or "", names), strict=True)
                  if role.endswith("frame") and (p := local_input(name, cwd)) is not None]
        tdest = thumb_path(video)
        if frames and _thumb_free(tdest) and make_thumbnail(frames, tdest):
            thumb_name = tdest.name
    data = build(task_id=task_id, record=record, response=response, video=video, size=size,
                 sha256=sha256, downloaded_at=now, thumbnail=thumb_name, batch=batch, cwd=cwd)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # a name that is no UTF-8 (its bytes as surrogates): escaped
        raw = json.dumps(data, ensure_ascii=True, indent=2).encode()
    write_atomic(dest, raw + b"\n")
    return dest


def _thumb_free(path: Path) -> bool:
    """A thumbnail may be (re)written unless something other than a file is there."""
    try:
        import stat

        return stat.S_ISREG(path.lstat().st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


# -- reading -----------------------------------------------------------------------------


def read(path: Path) -> dict[str, Any] | None:
    """A sidecar's contents, or None when ``path`` is not a readable wanvid sidecar."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            raw = f.read(MAX_SIDECAR_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_SIDECAR_BYTES:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data
