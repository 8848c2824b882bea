"""Request checks: the API key, the submit body against ``wanvid.models``, and ``data:``
URIs inspected like the service's data inspection. Pure functions that raise ``ApiError``.

The limits are the catalogue's (``Model.image_limits``, ``audio_limits``, ``clip_limits``:
a value the notes mark unconfirmed is not enforced); the comparisons are the emulator's own,
so a client bug in ``wanvid.media`` is not hidden by sharing its code."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass
from typing import Any

from wanvid.emulator.wire import ApiError, Headers, inspection, invalid, model_not_found
from wanvid.models import (
    SEED_MAX,
    SEED_MIN,
    AudioLimits,
    ClipLimits,
    ImageLimits,
    Model,
    find_model,
    normalize_resolution,
)

_MIME_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg",
                 "image/x-ms-bmp": "image/bmp", "image/x-bmp": "image/bmp"}
MB = 1024 * 1024


@dataclass(frozen=True)
class Submission:
    """A submit body that passed every check: what the task needs to run."""

    model: Model
    model_name: str  # as sent
    prompt: str | None  # truncated to the model's limit, as the service does
    prompt_extend: bool
    resolution: str
    duration: int
    template: str | None = None
    shot_type: str | None = None
    audio: bool | None = None  # parameters.audio as sent
    media_types: tuple[str, ...] = ()  # the input.media item types, in order
    clip_url: str | None = None  # the first_clip item's URL


def check_auth(value: str | None, key: str | None) -> None:
    """Any non-empty Bearer key, or exactly ``key`` when it is set; else 401."""
    scheme, _, token = (value or "").strip().partition(" ")
    token = token.strip()
    ok = scheme.lower() == "bearer" and bool(token)
    if ok and key is not None:
        ok = hmac.compare_digest(token.encode(), key.encode())
    if not ok:
        raise ApiError(401, "InvalidApiKey", "Invalid API-key provided.")


def _url_field(inp: dict[str, Any], name: str) -> str:
    value = inp.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"Required parameter 'input.{name}' missing.")
    return value.strip()


def _media_items(model: Model, inp: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``input.media`` array of a media-protocol model: (type, url) pairs, checked
    against the types and the combinations the model accepts."""
    for legacy in ("img_url", "first_frame_url", "last_frame_url", "audio_url"):
        if inp.get(legacy) is not None:
            raise invalid(f"Field 'input.{legacy}' is not supported by {model.name}; "
                          "use input.media.")
    items = inp.get("media")
    if not isinstance(items, list) or not items:
        raise invalid("Required parameter 'input.media' missing or empty.")
    out: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid(f"Field 'input.media[{i}]' must be an object with type and url.")
        kind, url = item.get("type"), item.get("url")
        if not isinstance(kind, str) or kind not in model.media:
            raise invalid(f"Field 'input.media[{i}].type' value {kind!r} is not supported by "
                          f"{model.name}; allowed: {', '.join(model.media)}.")
        if not isinstance(url, str) or not url.strip():
            raise invalid(f"Required parameter 'input.media[{i}].url' missing.")
        if any(kind == k for k, _ in out):
            raise invalid(f"Field 'input.media': more than one {kind} item.")
        out.append((kind, url.strip()))
    types = {k for k, _ in out}
    combos = model.media_combinations
    if combos and not any(set(c) == types for c in combos):
        accepted = "; ".join("+".join(c) for c in combos)
        raise invalid(f"Field 'input.media': the combination {'+'.join(k for k, _ in out)} "
                      f"is not supported by {model.name}; accepted: {accepted}.")
    return out


def check_submit(route: str, headers: Headers, body: bytes) -> Submission:
    """Validate a submit to ``route`` (the path after ``/api/v1``) like the service."""
    if (headers.get("X-DashScope-Async") or "").strip().lower() != "enable":
        raise ApiError(403, "AccessDenied", "current user api does not support synchronous calls")
    try:
        req = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid(f"The request body is not valid JSON: {e}") from None
    if not isinstance(req, dict):
        raise invalid("The request body must be a JSON object.")
    name = req.get("model")
    if not isinstance(name, str) or not name.strip():
        raise invalid("Model not exist.")
    model = find_model(name)
    if model is None:
        raise model_not_found(name)
    if model.path != route:
        raise invalid("url error, please check url!")
    inp = req.get("input")
    if not isinstance(inp, dict):
        raise invalid("Required parameter 'input' missing or not an object.")
    params = req.get("parameters", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise invalid("Field 'parameters' must be an object.")

    template = inp.get("template")
    if template is not None:
        if not isinstance(template, str) or not template.strip():
            raise invalid("Field 'input.template' must be a non-empty string.")
        if template not in model.templates:
            known = ", ".join(model.templates)
            raise invalid(f"Field 'input.template' value {template!r} is not supported by "
                          f"{model.name}" + (f"; allowed: {known}." if known else "."))

    # (where, url, what) for every input to inspect
    inputs: list[tuple[str, str, str]] = []
    media_types: tuple[str, ...] = ()
    clip_url = None
    if model.protocol == "media":
        items = _media_items(model, inp)
        media_types = tuple(k for k, _ in items)
        what = {"first_frame": "image", "last_frame": "image", "driving_audio": "audio",
                "first_clip": "clip"}
        for i, (kind, url) in enumerate(items):
            inputs.append((f"input.media[{i}].url", url, what[kind]))
            if kind == "first_clip":
                clip_url = url
    else:
        if inp.get("media") is not None:
            raise invalid(f"Field 'input.media' is not supported by {model.name}.")
        if model.protocol == "kf2v":
            frames = ("first_frame_url",) if template is not None else (
                "first_frame_url", "last_frame_url")
            if template is not None and inp.get("last_frame_url") is not None:
                frames = ("first_frame_url", "last_frame_url")
        else:
            frames = ("img_url",)
        inputs += [(f"input.{f}", _url_field(inp, f), "image") for f in frames]

    prompt = inp.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise invalid("Field 'input.prompt' must be a string.")
    neg = inp.get("negative_prompt")
    if neg is not None and not isinstance(neg, str):
        raise invalid("Field 'input.negative_prompt' must be a string.")
    if prompt is not None:  # the service truncates, never refuses
        limit = model.prompt_max
        if model.prompt_max_chinese and any("\u3400" <= ch <= "\u9fff" for ch in prompt):
            limit = model.prompt_max_chinese
        prompt = prompt[:limit]

    res = params.get("resolution")
    if res is None:
        resolution = model.default_resolution
    elif not isinstance(res, str) or normalize_resolution(res) not in model.resolutions:
        raise invalid(f"Field 'parameters.resolution' value {res!r} is not supported by "
                      f"{model.name}; allowed: {', '.join(model.resolutions)}.")
    else:
        resolution = normalize_resolution(res)
    dur = params.get("duration")
    if dur is None:
        duration = model.default_duration
    elif type(dur) is not int or dur not in model.durations:
        allowed = ", ".join(str(d) for d in model.durations)
        raise invalid(f"Field 'parameters.duration' value {dur!r} is not supported by "
                      f"{model.name}; allowed: {allowed}.")
    else:
        duration = dur
    for flag in ("prompt_extend", "watermark", "audio"):
        if flag in params and params[flag] is not None and not isinstance(params[flag], bool):
            raise invalid(f"Field 'parameters.{flag}' must be a boolean.")
    if not model.audio:
        if params.get("audio") is not None:
            raise invalid(f"Field 'parameters.audio' is not supported by {model.name}.")
    if inp.get("audio_url") is not None and not model.audio_track:
        raise invalid(f"Field 'input.audio_url' is not supported by {model.name}.")
    shot = params.get("shot_type")
    if shot is not None:
        if not isinstance(shot, str) or shot not in model.shot_types:
            allowed = ", ".join(model.shot_types)
            raise invalid(f"Field 'parameters.shot_type' value {shot!r} is not supported by "
                          f"{model.name}" + (f"; allowed: {allowed}." if allowed else "."))
    seed = params.get("seed")
    if seed is not None and (type(seed) is not int or not SEED_MIN <= seed <= SEED_MAX):
        raise invalid(f"Field 'parameters.seed' must be an integer in [{SEED_MIN}, {SEED_MAX}].")

    audio_url = inp.get("audio_url")
    if audio_url is not None:
        if not isinstance(audio_url, str) or not audio_url.strip():
            raise invalid("Field 'input.audio_url' must be a non-empty URL.")
        inputs.append(("input.audio_url", audio_url.strip(), "audio"))
    for where, url, what in inputs:
        if what == "image":
            check_image(where, url, model.image_limits)
        elif what == "audio":
            check_audio(url, model.audio_limits, where)
        else:
            check_url(where, url, data_ok=False)

    return Submission(model=model, model_name=name, prompt=prompt,
                      prompt_extend=params.get("prompt_extend") is not False,
                      resolution=resolution, duration=duration,
                      template=template, shot_type=shot,
                      audio=params.get("audio"), media_types=media_types, clip_url=clip_url)


def decode_data_uri(where: str, uri: str) -> tuple[str, bytes]:
    """(MIME type, decoded bytes) of a ``data:<mime>;base64,<data>`` URI."""
    head, sep, payload = uri.partition(",")
    if not sep or not head.lower().endswith(";base64"):
        raise inspection(f"{where}: a data URI must look like data:<mime>;base64,<data>.")
    mime = head[5:].split(";")[0].strip().lower()
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise inspection(f"{where}: the base64 data cannot be decoded.") from None
    return mime, data


def check_url(where: str, url: str, *, data_ok: bool = True) -> bool:
    """True for a data: URI to inspect; accepts http(s)/oss URLs as given. A video is
    taken only as a URL (``data_ok=False``), as the service documents."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data" and data_ok:
        return True
    if scheme in ("http", "https", "oss") and len(url) > len(scheme) + 3:
        return False
    what = "a public http(s) URL or a data: URI" if data_ok else "a public http(s) or oss:// URL"
    raise invalid(f"{where}: expected {what}, got {url[:40]!r}.")


def _between(value: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _bounds(lo: float | None, hi: float | None) -> str:
    return f"{lo if lo is not None else 0:g}..{hi if hi is not None else 'any':}"


def check_image(where: str, url: str, limits: ImageLimits | None = None) -> None:
    """A ``data:`` image inspected against the model's limits (the Nov 2025 ones without
    a model)."""
    if not check_url(where, url):
        return
    limits = limits or ImageLimits()
    mime, data = decode_data_uri(where, url)
    if limits.max_bytes is not None and len(data) > limits.max_bytes:
        raise inspection(f"{where}: the image is {len(data)} bytes; the limit is "
                         f"{limits.max_bytes} bytes ({limits.max_bytes / MB:g} MB).")
    from wanvid.media import probe_image  # lazy: keeps the emulator's import light

    info = probe_image(data)
    if info is None or info.format not in limits.formats:
        raise inspection(f"{where}: The media format is not supported or incorrect for "
                         f"the data inspection ({', '.join(limits.formats)} expected).")
    declared = _MIME_ALIASES.get(mime, mime)
    actual = _MIME_ALIASES.get(info.mime.lower(), info.mime.lower())
    if declared != actual:
        raise inspection(f"{where}: the declared MIME type {mime or '(none)'} does not "
                         f"match the image data ({actual}).")
    w, h = info.width, info.height
    if not (_between(w, limits.min_px, limits.max_px)
            and _between(h, limits.min_px, limits.max_px)):
        raise inspection(f"{where}: the image is {w}x{h}; width and height must be between "
                         f"{limits.min_px or 1} and {limits.max_px or 'any'} px.")
    if not _between(w / h, limits.min_aspect, limits.max_aspect):
        raise inspection(f"{where}: the image is {w}x{h}; its aspect ratio (width/height) must "
                         f"be {_bounds(limits.min_aspect, limits.max_aspect)}.")
    if info.has_alpha and actual == "image/png":
        raise inspection(f"{where}: PNG images with an alpha channel are not supported.")


def check_audio(url: str, limits: AudioLimits | None = None,
                where: str = "input.audio_url") -> None:
    if not check_url(where, url):
        return
    limits = limits or AudioLimits()
    _, data = decode_data_uri(where, url)
    if limits.max_bytes is not None and len(data) > limits.max_bytes:
        raise inspection(f"{where}: the audio is {len(data)} bytes; the limit is "
                         f"{limits.max_bytes} bytes ({limits.max_bytes / MB:g} MB).")
    from wanvid.media import probe_audio  # lazy, like probe_image

    info = probe_audio(data)
    if info is None:
        raise inspection(f"{where}: The media format is not supported or incorrect for "
                         "the data inspection (WAV or MP3 expected).")
    if not _between(info.duration, limits.min_s, limits.max_s):
        raise inspection(f"{where}: the audio lasts {info.duration:.1f} s; it must last "
                         f"{_bounds(limits.min_s, limits.max_s)} s.")


def check_clip(where: str, head: bytes, size: int, limits: ClipLimits) -> float | None:
    """An uploaded clip (its first bytes, and its size) against the model's clip limits,
    answering with the service's ``InvalidFile.*`` codes; returns its duration, or None
    when the first bytes do not hold the ``moov`` box (then it is accepted as given)."""
    from wanvid.media import probe_video

    if limits.max_bytes is not None and size > limits.max_bytes:
        raise ApiError(400, "InvalidFile.Size", f"{where}: the video is {size} bytes; the limit "
                       f"is {limits.max_bytes} bytes.")
    info = probe_video(head)
    if info is None:
        if head[4:8] == b"ftyp":
            return None  # moov after the first bytes kept: not inspected here
        raise ApiError(400, "InvalidFile.Format", f"{where}: the video format is not "
                       f"supported ({', '.join(limits.formats)} expected).")
    if info.format not in limits.formats:
        raise ApiError(400, "InvalidFile.Format", f"{where}: {info.format} video; "
                       f"{', '.join(limits.formats)} expected.")
    if not _between(info.duration, limits.min_s, limits.max_s):
        raise ApiError(400, "InvalidFile.Duration", f"{where}: the video lasts "
                       f"{info.duration:.2f} s; it must last "
                       f"{_bounds(limits.min_s, limits.max_s)} s.")
    w, h = info.width, info.height
    if w and h:
        if not (_between(w, limits.min_px, limits.max_px)
                and _between(h, limits.min_px, limits.max_px)):
            raise ApiError(400, "InvalidFile.Resolution", f"{where}: the video is {w}x{h}; "
                           f"width and height must be {_bounds(limits.min_px, limits.max_px)} "
                           "px.")
        if not _between(w / h, limits.min_aspect, limits.max_aspect):
            raise ApiError(400, "InvalidFile.AspectRatio", f"{where}: the video is {w}x{h}; "
                           "its aspect ratio must be "
                           f"{_bounds(limits.min_aspect, limits.max_aspect)}.")
    return info.duration
