"""Request checks: the API key, the submit body against ``wanvid.models``, and ``data:``
URIs inspected like the service's data inspection. Pure functions that raise ``ApiError``."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass

from wanvid.emulator.wire import ApiError, Headers, inspection, invalid
from wanvid.models import (
    AUDIO_MAX_BYTES,
    AUDIO_MAX_S,
    AUDIO_MIN_S,
    IMAGE_MAX_BYTES,
    IMAGE_MAX_PX,
    IMAGE_MIN_PX,
    SEED_MAX,
    SEED_MIN,
    Model,
    find_model,
    normalize_resolution,
)

_MIME_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg",
                 "image/x-ms-bmp": "image/bmp", "image/x-bmp": "image/bmp"}


@dataclass(frozen=True)
class Submission:
    """A submit body that passed every check: what the task needs to run."""

    model: Model
    model_name: str  # as sent
    prompt: str | None  # truncated to the model's limit, as the service does
    prompt_extend: bool
    resolution: str
    duration: int


def check_auth(value: str | None, key: str | None) -> None:
    """Any non-empty Bearer key, or exactly ``key`` when it is set; else 401."""
    scheme, _, token = (value or "").strip().partition(" ")
    token = token.strip()
    ok = scheme.lower() == "bearer" and bool(token)
    if ok and key is not None:
        ok = hmac.compare_digest(token.encode(), key.encode())
    if not ok:
        raise ApiError(401, "InvalidApiKey", "Invalid API-key provided.")


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
        raise invalid("Model not exist.")
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

    frames = ("img_url",) if model.kind == "i2v" else ("first_frame_url", "last_frame_url")
    for f in frames:
        value = inp.get(f)
        if not isinstance(value, str) or not value.strip():
            raise invalid(f"Required parameter 'input.{f}' missing.")

    prompt = inp.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise invalid("Field 'input.prompt' must be a string.")
    neg = inp.get("negative_prompt")
    if neg is not None and not isinstance(neg, str):
        raise invalid("Field 'input.negative_prompt' must be a string.")
    if prompt is not None:
        prompt = prompt[: model.prompt_max]  # the service truncates, never refuses

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
        if inp.get("audio_url") is not None:
            raise invalid(f"Field 'input.audio_url' is not supported by {model.name}.")
    seed = params.get("seed")
    if seed is not None and (type(seed) is not int or not SEED_MIN <= seed <= SEED_MAX):
        raise invalid(f"Field 'parameters.seed' must be an integer in [{SEED_MIN}, {SEED_MAX}].")

    for f in frames:
        check_image(f"input.{f}", inp[f].strip())
    audio_url = inp.get("audio_url")
    if audio_url is not None:
        if not isinstance(audio_url, str) or not audio_url.strip():
            raise invalid("Field 'input.audio_url' must be a non-empty URL.")
        check_audio(audio_url.strip())

    return Submission(model=model, model_name=name, prompt=prompt,
                      prompt_extend=params.get("prompt_extend") is not False,
                      resolution=resolution, duration=duration)


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


def check_url(where: str, url: str) -> bool:
    """True for a data: URI to inspect; accepts http(s)/oss URLs as given."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        return True
    if scheme in ("http", "https", "oss") and len(url) > len(scheme) + 3:
        return False
    raise invalid(f"{where}: expected a public http(s) URL or a data: URI, got {url[:40]!r}.")


def check_image(where: str, url: str) -> None:
    if not check_url(where, url):
        return
    mime, data = decode_data_uri(where, url)
    if len(data) > IMAGE_MAX_BYTES:
        raise inspection(f"{where}: the image is {len(data)} bytes; the limit is "
                         f"{IMAGE_MAX_BYTES} bytes (10 MB).")
    from wanvid.media import probe_image  # lazy: keeps the emulator's import light

    info = probe_image(data)
    if info is None:
        raise inspection(f"{where}: The media format is not supported or incorrect for "
                         "the data inspection (JPEG, PNG, BMP or WEBP expected).")
    declared = _MIME_ALIASES.get(mime, mime)
    actual = _MIME_ALIASES.get(info.mime.lower(), info.mime.lower())
    if declared != actual:
        raise inspection(f"{where}: the declared MIME type {mime or '(none)'} does not "
                         f"match the image data ({actual}).")
    if not (IMAGE_MIN_PX <= info.width <= IMAGE_MAX_PX
            and IMAGE_MIN_PX <= info.height <= IMAGE_MAX_PX):
        raise inspection(f"{where}: the image is {info.width}x{info.height}; width and "
                         f"height must be between {IMAGE_MIN_PX} and {IMAGE_MAX_PX} px.")
    if info.has_alpha and actual == "image/png":
        raise inspection(f"{where}: PNG images with an alpha channel are not supported.")


def check_audio(url: str) -> None:
    where = "input.audio_url"
    if not check_url(where, url):
        return
    _, data = decode_data_uri(where, url)
    if len(data) > AUDIO_MAX_BYTES:
        raise inspection(f"{where}: the audio is {len(data)} bytes; the limit is "
                         f"{AUDIO_MAX_BYTES} bytes (15 MB).")
    from wanvid.media import probe_audio  # lazy, like probe_image

    info = probe_audio(data)
    if info is None:
        raise inspection(f"{where}: The media format is not supported or incorrect for "
                         "the data inspection (WAV or MP3 expected).")
    if not AUDIO_MIN_S <= info.duration <= AUDIO_MAX_S:
        raise inspection(f"{where}: the audio lasts {info.duration:.1f} s; it must last "
                         f"{AUDIO_MIN_S:g} to {AUDIO_MAX_S:g} s.")
