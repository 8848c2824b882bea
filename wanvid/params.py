"""Submit parameters: checked against the catalogue, turned into the request payload.

``prepare_submit`` is where every documented limit is enforced before anything is sent:
model kind vs frames, resolution and duration per model, audio only where supported,
seed range, prompt lengths (warnings: the service truncates), and, through
``wanvid.media``, formats, sizes and pixel bounds of every local file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wanvid.errors import BadInputError
from wanvid.models import (
    SEED_MAX,
    SEED_MIN,
    Model,
    find_model,
    model_names,
    models_by_kind,
    normalize_resolution,
)

Warn = Callable[[str], None]


@dataclass
class SubmitOptions:
    image: str
    last_frame: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    model: str | None = None
    resolution: str | None = None
    duration: int | None = None
    seed: int | None = None
    audio: str | None = None
    no_audio: bool = False
    prompt_extend: bool | None = None
    watermark: bool | None = None
    fit: bool = False
    fit_background: str = "white"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, False) or k == "no_audio"}


@dataclass
class PreparedSubmit:
    model: Model
    resolution: str
    duration: int
    payload: dict[str, Any]
    media: list[Any] = field(default_factory=list)  # wanvid.media.MediaInput
    predicted_size: tuple[int, int] | None = None
    fit_notes: list[str] = field(default_factory=list)
    uploads: list[Any] = field(default_factory=list)  # MediaInputs sent as uploads (oss://)

    def body(self) -> bytes:
        from wanvid.media import body_bytes

        return body_bytes(self.payload)

    def body_size(self) -> int:
        """The request body's size, found by reading and encoding every local file chunk by
        chunk, as sending would, without holding the body in memory (for --dry-run)."""
        import json

        from wanvid.media import MediaInput

        def blank(v: Any) -> Any:
            if isinstance(v, MediaInput):
                return ""
            if isinstance(v, dict):
                return {k: blank(x) for k, x in v.items()}
            return v

        total = len(json.dumps(blank(self.payload)).encode("utf-8"))
        for m in self.media:
            if m.kind == "url":
                total += len(json.dumps(m.arg).encode("utf-8")) - 2
            else:
                total += sum(len(chunk) for chunk in m.iter_value())
        return total

    def journal_params(self) -> dict[str, Any]:
        """The parameters as recorded in the journal: no image data, no key."""
        params = dict(self.payload.get("parameters", {}))
        inp = self.payload.get("input", {})
        for k in ("prompt", "negative_prompt"):
            if k in inp:
                params[k] = inp[k]
        params["resolution"] = self.resolution
        params["duration"] = self.duration
        return params

    def input_names(self) -> list[str]:
        return [m.arg if m.kind != "data" else m.preview() for m in self.media]

    def fingerprint(self) -> str:
        """Same parameters and same input content -> same fingerprint (batch re-runs)."""
        h = hashlib.sha256()
        h.update(self.model.name.encode())
        h.update(json.dumps(self.journal_params(), sort_keys=True).encode())
        for m in self.media:
            h.update(b"\0")
            for chunk in m.iter_value():
                h.update(chunk)
        return h.hexdigest()

    def preview_payload(self) -> dict[str, Any]:
        """The payload with long data URIs abbreviated, for --dry-run."""
        from wanvid.media import MediaInput

        def conv(v: Any) -> Any:
            if isinstance(v, MediaInput):
                return v.preview()
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            return v

        return conv(self.payload)


def choose_model(opts: SubmitOptions, default_i2v: str, default_kf2v: str) -> Model:
    kf2v = opts.last_frame is not None
    name = opts.model or (default_kf2v if kf2v else default_i2v)
    model = find_model(name)
    if model is None:
        raise BadInputError(
            f"--model: unknown model {name!r}; one of: {', '.join(model_names())} "
            "(see `wanvid models`)"
        )
    if kf2v and model.kind != "kf2v":
        names = ", ".join(m.name for m in models_by_kind("kf2v"))
        raise BadInputError(
            f"--last-frame needs a first+last-frame model, not {model.name}; "
            f"use --model with one of: {names}"
        )
    if not kf2v and model.kind == "kf2v":
        raise BadInputError(
            f"{model.name} needs two frames: pass the last frame with --last-frame IMAGE"
        )
    return model


def check_resolution(model: Model, value: str | None) -> str:
    if value is None:
        return model.default_resolution
    res = normalize_resolution(value)
    if res not in model.resolutions:
        raise BadInputError(
            f"--resolution {value}: {model.name} offers {', '.join(model.resolutions)}"
        )
    return res


def check_duration(model: Model, value: int | None) -> int:
    if value is None:
        return model.default_duration
    if value not in model.durations:
        allowed = ", ".join(str(d) for d in model.durations)
        longer = [m.name for m in models_by_kind(model.kind) if value in m.durations]
        hint = f" ({', '.join(longer)} can do {value} s)" if longer else ""
        raise BadInputError(f"--duration {value}: {model.name} makes {allowed} s videos{hint}")
    return value


def check_seed(value: int | None) -> int | None:
    if value is not None and not (SEED_MIN <= value <= SEED_MAX):
        raise BadInputError(f"--seed {value}: must be between {SEED_MIN} and {SEED_MAX}")
    return value


def check_prompts(model: Model, prompt: str | None, negative: str | None, warn: Warn) -> None:
    if prompt is not None and len(prompt) > model.prompt_max:
        warn(f"--prompt is {len(prompt)} characters; {model.name} keeps the first "
             f"{model.prompt_max} and drops the rest")
    if negative is not None and len(negative) > model.negative_prompt_max:
        warn(f"--negative-prompt is {len(negative)} characters; the service keeps the first "
             f"{model.negative_prompt_max}")


def prepare_submit(opts: SubmitOptions, *, default_model: str, default_kf2v_model: str,
                   region: str | None, warn: Warn) -> PreparedSubmit:
    """Validate everything, load and check media, and build the request payload."""
    from wanvid import media

    model = choose_model(opts, default_model, default_kf2v_model)
    resolution = check_resolution(model, opts.resolution)
    duration = check_duration(model, opts.duration)
    check_seed(opts.seed)
    if opts.audio is not None and opts.no_audio:
        raise BadInputError("--audio and --no-audio contradict each other; pass one of them")
    if opts.no_audio and not model.audio:
        raise BadInputError(
            f"--no-audio: {model.name} makes silent videos anyway; drop the flag "
            f"(audio models: {', '.join(m.name for m in models_by_kind('i2v') if m.audio)})"
        )
    check_prompts(model, opts.prompt, opts.negative_prompt, warn)
    if region and region not in model.regions:
        warn(f"{model.name} is not listed for region {region!r} in the API reference")

    first_flag = "IMAGE"
    notes: list[str] = []
    first = media.load_image(opts.image, role="first frame" if opts.last_frame else "image",
                             flag=first_flag, fit=opts.fit)
    last = None
    if opts.last_frame is not None:
        last = media.load_image(opts.last_frame, role="last frame", flag="--last-frame",
                                fit=opts.fit)
    if opts.fit:
        first, last, notes = _apply_fit(first, last, resolution, opts.fit_background)
    if last is not None:
        media.check_frame_aspects(first, last, warn)
    audio = None
    if opts.audio is not None:
        audio = media.load_audio(opts.audio, flag="--audio")
        media.check_audio_for_model(audio, model, duration, warn)
        if audio.kind == "data":  # a local file is uploaded (wanvid.upload), a data: URI not
            warn(f"--audio {audio.label}: sent inline as a data: URI; the API reference "
                 "documents only URLs for audio, so if the service refuses it, pass the "
                 "file's path (it is uploaded) or a public URL")

    inp: dict[str, Any] = {}
    if opts.prompt is not None:
        inp["prompt"] = opts.prompt
    if opts.negative_prompt is not None:
        inp["negative_prompt"] = opts.negative_prompt
    if model.kind == "i2v":
        inp["img_url"] = first
    else:
        inp["first_frame_url"] = first
        inp["last_frame_url"] = last
    if audio is not None:
        inp["audio_url"] = audio

    params: dict[str, Any] = {"resolution": resolution}
    if len(model.durations) > 1 or opts.duration is not None:
        params["duration"] = duration
    if opts.prompt_extend is not None:
        params["prompt_extend"] = opts.prompt_extend
    if opts.watermark is not None:
        params["watermark"] = opts.watermark
    if opts.seed is not None:
        params["seed"] = opts.seed
    if model.audio and audio is None:
        params["audio"] = not opts.no_audio

    payload = {"model": model.api_name(region), "input": inp, "parameters": params}
    predicted = None
    if first.image is not None:
        predicted = media.predict_output_size(first.image.width, first.image.height, resolution)
    media_list = [m for m in (first, last, audio) if m is not None]
    return PreparedSubmit(model=model, resolution=resolution, duration=duration,
                          payload=payload, media=media_list, predicted_size=predicted,
                          fit_notes=notes)


def _apply_fit(first: Any, last: Any, resolution: str, background: str) -> tuple[Any, Any, list[str]]:
    """Replace local files by their fitted versions (``--fit``)."""
    from wanvid import fit, media

    notes: list[str] = []
    if last is not None and first.kind == "file" and last.kind == "file":
        r1, r2 = fit.fit_pair(first.path, last.path, resolution=resolution, background=background)
        pairs = [(first, r1), (last, r2)]
    else:
        pairs = []
        for m in (first, last):
            if m is not None and m.kind == "file":
                pairs.append((m, fit.fit_image(m.path, resolution=resolution, background=background)))
    replaced: dict[int, Any] = {}
    for m, r in pairs:
        notes.append(r.describe(Path(m.arg).name if m.path else m.arg))
        if r.changed:
            replaced[id(m)] = media.from_bytes(r.data, r.mime, arg=m.arg, role=m.role)
    first = replaced.get(id(first), first)
    if last is not None:
        last = replaced.get(id(last), last)
    return first, last, notes
