"""Submit parameters: checked against the catalogue, turned into the request payload.

``prepare_submit`` is where every documented limit is enforced before anything is sent:
the inputs a model takes (and, for the ``media`` protocol, the only combinations it
accepts), resolution and duration per model, audio per the model's ``audio_mode``, seed
range, prompt lengths (warnings: the service truncates), and, through ``wanvid.media``,
formats, sizes, pixel bounds and aspect ratios of every local file, per the model's limits.
A value the catalogue marks unconfirmed is a warning, never a refusal.

The three request shapes (``Model.protocol``):

* ``i2v``: ``input.img_url`` (+ ``audio_url``) on the video-generation endpoint;
* ``kf2v``: ``input.first_frame_url`` + ``last_frame_url`` on the image2video endpoint;
* ``media``: ``input.media`` = ``[{"type": ..., "url": ...}, ...]`` in the order
  first_clip, first_frame, last_frame, driving_audio (the notes' order).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wanvid.errors import BadInputError
from wanvid.models import (
    REGION_NAMES,
    SEED_MAX,
    SEED_MIN,
    SHOT_TYPES,
    Model,
    check_model_region,
    find_model,
    models_by_kind,
    normalize_resolution,
    request_name,
)

Warn = Callable[[str], None]


@dataclass
class SubmitOptions:
    image: str | None = None  # the first frame (optional only with first_clip)
    last_frame: str | None = None
    first_clip: str | None = None  # a video to continue (media protocol: first_clip)
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
    shot: str | None = None  # parameters.shot_type: single | multi
    template: str | None = None  # input.template (a video effect)
    # --param: "NAME=VALUE" / "input.NAME=VALUE" strings, or a mapping NAME -> value
    param: Sequence[str] | Mapping[str, object] | None = None

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
    input_overrides: dict[str, Any] = field(default_factory=dict)  # --param input.NAME=VALUE

    def body(self) -> bytes:
        from wanvid.media import body_bytes

        return body_bytes(self.payload)

    def body_size(self) -> int:
        """The request body's size (for --dry-run), computed: a local file's value is its
        data URI header and its base64 (``MediaInput.encoded_length``; nothing in either
        needs JSON escaping), so nothing is encoded or held in memory."""
        import json

        from wanvid.media import MediaInput

        def blank(v: Any) -> Any:
            if isinstance(v, MediaInput):
                return ""
            if isinstance(v, dict):
                return {k: blank(x) for k, x in v.items()}
            if isinstance(v, list):
                return [blank(x) for x in v]
            return v

        total = len(json.dumps(blank(self.payload)).encode("utf-8"))
        for m in self.media:
            if m.kind == "url":
                total += len(json.dumps(m.arg).encode("utf-8")) - 2
            else:
                total += m.encoded_length()
        return total

    def journal_params(self) -> dict[str, Any]:
        """The parameters as recorded in the journal: no image data, no key."""
        params = dict(self.payload.get("parameters", {}))
        inp = self.payload.get("input", {})
        for k in ("prompt", "negative_prompt", "template"):
            if k in inp:
                params[k] = inp[k]
        for k, v in self.input_overrides.items():  # --param input.NAME=VALUE
            params[f"input.{k}"] = v
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
            if isinstance(v, list):
                return [conv(x) for x in v]
            return v

        return conv(self.payload)


# The CLI argument each media item comes from (in messages).
FLAGS = {"first_frame": "IMAGE", "last_frame": "--last-frame", "driving_audio": "--audio",
         "first_clip": "--first-clip"}
MEDIA_ORDER = ("first_clip", "first_frame", "last_frame", "driving_audio")


def _catalogue() -> tuple[Model, ...]:
    from wanvid import models

    return models.MODELS


def _names(pred: Callable[[Model], bool]) -> str:
    MODELS = _catalogue()  # noqa: N806
    return ", ".join(m.name for m in MODELS if pred(m)) or "none in the catalogue"


# The input fields each protocol builds from local inputs, and the inputs (media roles)
# each replaces: a --param input.NAME naming one of them takes that input's place.
REPLACES: dict[str, dict[str, tuple[str, ...]]] = {
    "i2v": {"img_url": ("first_frame",), "audio_url": ("driving_audio",)},
    "kf2v": {"first_frame_url": ("first_frame",), "last_frame_url": ("last_frame",)},
    "media": {"media": MEDIA_ORDER},
}


def replaced_inputs(model: Model, opts: SubmitOptions,
                    input_overrides: Mapping[str, object]) -> set[str]:
    """The inputs (media roles) that --param input.NAME replaces for this model. Giving
    such an input as well (IMAGE, --last-frame, --audio, --first-clip) is refused (exit 2)
    naming both, so a replaced local file is never read, counted, fingerprinted or
    uploaded; leave it out and the --param alone is sent."""
    given = {"first_clip": opts.first_clip, "first_frame": opts.image,
             "last_frame": opts.last_frame, "driving_audio": opts.audio}
    replaced: set[str] = set()
    for key, roles in REPLACES.get(model.protocol, {}).items():
        if key not in input_overrides:
            continue
        clash = [t for t in MEDIA_ORDER if t in roles and given[t] is not None]
        if clash:
            from wanvid.sanitize import one_line

            both = ", ".join(f"{FLAGS[t]} ({one_line(given[t], 60)})" for t in clash)
            flags = " and ".join(FLAGS[t] for t in clash)
            raise BadInputError(
                f"--param input.{key} replaces {both} in the request to {model.name}: give "
                f"one or the other, not both; leave {flags} out to send the --param alone, "
                "or drop the --param (nothing was sent)")
        replaced.update(roles)
    return replaced


def choose_model(opts: SubmitOptions, default_i2v: str, default_kf2v: str,
                 input_overrides: Mapping[str, object] | None = None) -> Model:
    kf2v = opts.last_frame is not None
    if opts.model is not None and not opts.model.strip():
        raise BadInputError("--model is empty: give a model name (see `wanvid models`), or "
                            "leave --model out for the default")
    if opts.model:
        name = opts.model
    elif opts.first_clip is not None:  # the first catalogue model that continues a clip
        name = next((m.name for m in _catalogue() if m.takes("first_clip")), default_i2v)
    elif opts.template is not None:  # the first model whose templates name it
        name = next((m.name for m in _catalogue() if opts.template in m.templates
                     and (m.protocol == "kf2v") == kf2v),
                    next((m.name for m in _catalogue() if opts.template in m.templates),
                         default_kf2v if kf2v else default_i2v))
    else:
        name = default_kf2v if kf2v else default_i2v
    model = find_model(name)
    if model is None:
        from wanvid.models import unknown_model

        raise unknown_model(name)
    replaced = replaced_inputs(model, opts, input_overrides or {})
    if kf2v and not model.takes("last_frame"):
        raise BadInputError(
            f"--last-frame needs a model that takes a last frame, not {model.name}; "
            f"use --model with one of: {_names(lambda m: m.takes('last_frame'))}"
        )
    if opts.first_clip is not None and not model.takes("first_clip"):
        raise BadInputError(
            f"--first-clip: {model.name} does not continue a video; use --model with one "
            f"of: {_names(lambda m: m.takes('first_clip'))} (nothing was sent)")
    if not kf2v and model.protocol == "kf2v" and opts.template is None \
            and "last_frame" not in replaced:
        raise BadInputError(
            f"{model.name} needs two frames: pass the last frame with --last-frame IMAGE"
        )
    if opts.image is None and opts.first_clip is None and "first_frame" not in replaced:
        raise BadInputError("IMAGE: missing; give the first frame (a file, URL or data: URI)"
                            + (", or --first-clip VIDEO" if model.takes("first_clip") else ""))
    return model


def _combo_text(combo: tuple[str, ...]) -> str:
    return " + ".join(FLAGS[t] for t in MEDIA_ORDER if t in combo)


def check_combination(model: Model, present: tuple[str, ...]) -> None:
    """The media protocol: only the combinations the model accepts are sent."""
    for t in present:
        if t == "driving_audio" and not model.takes(t):
            raise BadInputError(
                f"--audio: model {model.name} does not take an audio track; audio works with "
                f"{_names(lambda m: m.takes('driving_audio'))}. Pick one with --model, or drop "
                "--audio.")
        if not model.takes(t):
            raise BadInputError(f"{FLAGS[t]}: {model.name} does not take it (nothing was sent)")
    combos = model.media_combinations
    if model.protocol != "media" or not combos:
        return
    if any(set(c) == set(present) for c in combos):
        return
    raise BadInputError(
        f"{model.name} does not accept {_combo_text(present) or 'no inputs'}; it accepts: "
        + "; ".join(_combo_text(c) for c in combos) + " (nothing was sent)")


def check_resolution(model: Model, value: str | None,
                     warn: Warn | None = None, label: str | None = None) -> str:
    if value is None:
        return model.default_resolution
    res = normalize_resolution(value)
    if res not in model.resolutions:
        msg = (f"{label or f'--resolution {value}'}: {model.name} offers "
               f"{', '.join(model.resolutions)}")
        if warn is not None and not model.confirmed("resolutions"):
            warn(msg + " (unconfirmed; sent anyway)")
            return res
        raise BadInputError(msg)
    return res


def _durations_text(model: Model) -> str:
    d = model.durations
    if len(d) > 2 and list(d) == list(range(d[0], d[-1] + 1)):
        return f"{d[0]}-{d[-1]}"
    return ", ".join(str(x) for x in d)


def check_duration(model: Model, value: int | None, warn: Warn | None = None,
                   label: str | None = None) -> int:
    if value is None:
        return model.default_duration
    if value not in model.durations:
        longer = [m.name for m in models_by_kind(model.kind) if value in m.durations]
        more = f" and {len(longer) - 3} more" if len(longer) > 3 else ""
        hint = f" ({', '.join(longer[:3])}{more} can do {value} s)" if longer else ""
        msg = (f"{label or f'--duration {value}'}: {model.name} makes "
               f"{_durations_text(model)} s videos")
        if warn is not None and not model.confirmed("durations"):
            warn(msg + " in the API reference (unconfirmed; sent anyway)")
            return value
        raise BadInputError(msg + hint)
    return value


def check_seed(value: int | None, label: str | None = None) -> int | None:
    if value is not None and not (SEED_MIN <= value <= SEED_MAX):
        raise BadInputError(f"{label or f'--seed {value}'}: must be between {SEED_MIN} and "
                            f"{SEED_MAX}")
    return value


# --param names that have a flag of their own: checked like the flag (their value also
# drives the billing and size estimates), then sent as the flag's value would be.
CHECKED_PARAMS = {"duration": "--duration", "resolution": "--resolution", "seed": "--seed"}


def _param_text(value: object) -> str:
    from wanvid.sanitize import one_line

    return one_line(json.dumps(value) if not isinstance(value, str) else value, 60)


def apply_checked_params(opts: SubmitOptions, overrides: dict[str, object]
                         ) -> tuple[SubmitOptions, dict[str, str]]:
    """--param duration/resolution/seed: taken out of the overrides and put in the options'
    place (so checked against the model like --duration/--resolution/--seed). Of the wrong
    type, or contradicting the flag given too: exit 2, nothing sent."""
    import dataclasses

    changes: dict[str, object] = {}
    labels: dict[str, str] = {}  # name -> "--param NAME=VALUE", for the checks' messages
    for name, flag in CHECKED_PARAMS.items():
        if name not in overrides:
            continue
        value = overrides.pop(name)
        label = f"--param {name}={_param_text(value)}"
        if name == "resolution":
            if not isinstance(value, str) or not value.strip():
                raise BadInputError(f"{label}: must be a resolution tier such as 720P "
                                    "(nothing was sent)")
        elif isinstance(value, bool) or not isinstance(value, int):
            what = "a whole number of seconds" if name == "duration" else "a whole number"
            raise BadInputError(f"{label}: must be {what} (nothing was sent)")
        flag_value = getattr(opts, name)
        if flag_value is not None and (
                flag_value != value if name != "resolution"
                else normalize_resolution(str(flag_value)) != normalize_resolution(str(value))):
            raise BadInputError(f"{flag} {flag_value} and {label} contradict each other; "
                                "pass one of them (nothing was sent)")
        changes[name] = value
        labels[name] = label
    if not changes:
        return opts, labels
    return dataclasses.replace(opts, **changes), labels  # type: ignore[arg-type]


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def check_prompts(model: Model, prompt: str | None, negative: str | None, warn: Warn) -> None:
    limit = model.prompt_max
    if prompt is not None and model.prompt_max_chinese and _has_chinese(prompt):
        limit = model.prompt_max_chinese
    if prompt is not None and len(prompt) > limit:
        warn(f"--prompt is {len(prompt)} characters; {model.name} keeps the first "
             f"{limit} and drops the rest")
    if negative is not None and not model.negative_prompt_max:
        warn(f"--negative-prompt: not documented for {model.name}; sent anyway")
    elif negative is not None and len(negative) > model.negative_prompt_max:
        warn(f"--negative-prompt is {len(negative)} characters; the service keeps the first "
             f"{model.negative_prompt_max}")


def check_shot(model: Model, shot: str | None, prompt_extend: bool | None,
               note: Warn) -> str | None:
    """--shot single|multi -> parameters.shot_type, on the models that have it; it takes
    effect only with prompt extension on (the service's default)."""
    if shot is None:
        return None
    value = shot.strip().lower()
    if value not in SHOT_TYPES:
        raise BadInputError(f"--shot {shot}: must be one of {', '.join(SHOT_TYPES)}")
    if not model.shot_types:
        raise BadInputError(
            f"--shot: {model.name} has no shot types; single/multi-shot works with "
            f"{_names(lambda m: bool(m.shot_types))}; pick one with --model, or drop --shot "
            "(nothing was sent)")
    if value not in model.shot_types:
        raise BadInputError(f"--shot {value}: {model.name} offers "
                            f"{', '.join(model.shot_types)} (nothing was sent)")
    if prompt_extend is False:
        raise BadInputError(
            f"--shot {value} takes effect only with prompt extension on, and "
            "--no-prompt-extend turns it off; drop one of them (nothing was sent)")
    note(f"--shot {value}: takes effect only with prompt extension on (the service's "
         "default; --no-prompt-extend would turn it off)")
    return value


def check_template(model: Model, opts: SubmitOptions, region: str | None, check_region: bool,
                   warn: Warn) -> str | None:
    """--template NAME -> input.template (video effects): checked against the model's list
    (an unconfirmed list is a warning, not a refusal); Beijing only, per the notes."""
    name = opts.template
    if name is None:
        return None
    name = name.strip()
    if not name:
        raise BadInputError("--template: empty; give a template name, e.g. flying")
    if not model.templates:
        raise BadInputError(
            f"--template {name}: {model.name} has no video-effect templates in the catalogue; "
            f"templates work with {_names(lambda m: bool(m.templates))} (or add them to the "
            f"model in models.toml; --param input.template={name} sends one unchecked) "
            "(nothing was sent)")
    if name not in model.templates:
        msg = (f"--template {name}: not a template wanvid knows for {model.name} "
               f"({', '.join(model.templates)})")
        if not model.confirmed("templates"):
            warn(msg + "; the list is unconfirmed, so it is sent anyway")
        else:
            raise BadInputError(msg + " (nothing was sent)")
    if check_region and region is not None and region != "cn":
        raise BadInputError(
            f"--template: video effects are offered in Beijing only; this request goes to "
            f"region {region} ({REGION_NAMES.get(region, region)}): use --region cn "
            "(nothing was sent)")
    if opts.prompt is not None:
        warn(f"--prompt is ignored with --template {name}: the effect has its own motion")
    return name


PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


PARAM_MAX_DEPTH = 32  # nesting of a --param JSON value (objects and lists)


def _refuse_constant(name: str) -> object:
    raise ValueError(name)


def _param_value(item: str, text: str) -> object:
    """A --param VALUE: JSON when it parses as JSON, else the text. NaN, Infinity and
    numbers too big for a float are not JSON the service can read, and a value nested
    deeper than ``PARAM_MAX_DEPTH`` is refused (exit 2) before anything is sent."""
    import math

    depth = max_depth = 0
    for ch in text:  # brackets outside strings overcount only: a bound, not a parser
        if ch in "[{":
            depth += 1
            max_depth = max(max_depth, depth)
        elif ch in "]}":
            depth -= 1
    if max_depth > PARAM_MAX_DEPTH:
        raise BadInputError(f"--param {item[:60]}: nested more than {PARAM_MAX_DEPTH} deep; "
                            "nothing was sent")
    try:
        value: object = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as e:
        if str(e) in ("NaN", "Infinity", "-Infinity"):
            raise BadInputError(f"--param {item[:60]}: {e} is not a JSON number the service "
                                "can read; nothing was sent") from None
        return text
    if isinstance(value, float) and not math.isfinite(value):
        raise BadInputError(f"--param {item[:60]}: the number is too large; nothing was sent")
    return value


# Request fields outside ``parameters`` that a bare --param NAME would wrongly put there.
TOP_LEVEL_FIELDS = ("model", "input", "parameters")
INPUT_FIELDS = ("prompt", "negative_prompt", "img_url", "audio_url", "first_frame_url",
                "last_frame_url", "media", "template")


def _check_bare_name(name: str) -> None:
    """A bare NAME is parameters.NAME; refused (exit 2) when NAME is the request's own
    top-level field or an input field, where the user almost surely meant something else."""
    if name == "model":
        raise BadInputError(
            "--param model: the model is the request's top-level field, which wanvid sets "
            "from --model; use --model NAME (--param parameters.model=... would put it "
            "inside parameters) (nothing was sent)")
    if name in TOP_LEVEL_FIELDS:
        raise BadInputError(f"--param {name}: give one field of it, as {name}.NAME=VALUE "
                            "(nothing was sent)")
    if name in INPUT_FIELDS:
        raise BadInputError(
            f"--param {name}: {name} is an input field; write input.{name}=VALUE (or "
            f"parameters.{name}=VALUE to really send it inside parameters) (nothing was sent)")


def parse_params(raw: Sequence[str] | Mapping[str, object] | None
                 ) -> tuple[dict[str, object], dict[str, object]]:
    """--param NAME=VALUE (repeatable) -> ({parameters overrides}, {input overrides}).
    ``input.NAME=VALUE`` sets ``input.NAME``; VALUE is JSON when it parses as JSON, else a
    string. A mapping's values are taken as they are."""
    params: dict[str, object] = {}
    inputs: dict[str, object] = {}
    if raw is None:
        return params, inputs
    if isinstance(raw, Mapping):
        pairs: list[tuple[str, object]] = [(str(k), v) for k, v in raw.items()]
    else:
        if isinstance(raw, str):
            raw = [raw]
        pairs = []
        for item in raw:
            key, sep, text = str(item).partition("=")
            if not sep or not key.strip():
                raise BadInputError(f"--param {item}: expected NAME=VALUE (or "
                                    "input.NAME=VALUE), e.g. --param shot_type=multi")
            value = _param_value(item, text)
            pairs.append((key.strip(), value))
    for key, value in pairs:
        section, dot, name = key.partition(".")
        if not dot:
            section, name = "parameters", key
            _check_bare_name(key)
        if section not in ("parameters", "input") or not PARAM_NAME.match(name):
            raise BadInputError(f"--param {key}: NAME must be a parameter name (letters, "
                                "digits, _), optionally as input.NAME or parameters.NAME")
        (inputs if section == "input" else params)[name] = value
    return params, inputs


def check_no_audio(model: Model, opts: SubmitOptions, warn: Warn,
                   note: Warn | None = None) -> bool:
    """--no-audio per the model's audio_mode; True when ``parameters.audio=false`` is sent."""
    if opts.audio is not None and opts.no_audio:
        raise BadInputError("--audio and --no-audio contradict each other; pass one of them")
    if not opts.no_audio:
        return False
    mode = model.audio_mode
    if mode == "silent":
        (note or warn)(f"--no-audio: {model.name} makes silent videos anyway; nothing to "
                       "change")
        return False
    if mode == "optional_flag":
        return True
    flagged = _names(lambda m: m.audio_mode == "optional_flag")
    if mode == "always":
        raise BadInputError(
            f"--no-audio: {model.name} always makes videos with sound (it has no parameter to "
            f"turn it off); for silent video use {flagged} or a silent model (nothing was sent)")
    raise BadInputError(
        f"--no-audio: {model.name} has no documented way to make a silent video (it adds its "
        f"own sound); use {flagged} or a silent model (nothing was sent)")


def prepare_submit(opts: SubmitOptions, *, default_model: str, default_kf2v_model: str,
                   region: str | None, warn: Warn, check_region: bool = True,
                   note: Warn | None = None) -> PreparedSubmit:
    """Validate everything, load and check media, and build the request payload.
    ``warn`` gets warnings, ``note`` (default: ``warn``) lines a ``-q`` silences."""
    from wanvid import media

    note = note or warn
    overrides, input_overrides = parse_params(opts.param)
    opts, labels = apply_checked_params(opts, overrides)
    model = choose_model(opts, default_model, default_kf2v_model, input_overrides)
    resolution = check_resolution(model, opts.resolution, warn, labels.get("resolution"))
    duration = check_duration(model, opts.duration, warn, labels.get("duration"))
    check_seed(opts.seed, labels.get("seed"))
    send_silent = check_no_audio(model, opts, warn, note)
    check_prompts(model, opts.prompt, opts.negative_prompt, warn)
    if check_region:
        check_model_region(model, region)  # exit 2, naming the regions that offer it
    shot = check_shot(model, opts.shot, opts.prompt_extend, note)
    template = check_template(model, opts, region, check_region, warn)
    present = tuple(t for t, v in (("first_clip", opts.first_clip), ("first_frame", opts.image),
                                   ("last_frame", opts.last_frame),
                                   ("driving_audio", opts.audio)) if v is not None)
    if not (model.protocol == "media" and "media" in input_overrides):
        check_combination(model, present)  # (input.media replaces them all: unchecked)

    limits = model.image_limits
    notes: list[str] = []
    clip = None
    if opts.first_clip is not None:
        clip = media.load_clip(opts.first_clip, flag="--first-clip", limits=model.clip_limits)
        if clip.video is not None and clip.video.duration >= duration:
            warn(f"--first-clip {clip.label}: the clip is {clip.video.duration:.1f} s and "
                 f"--duration {duration} is the whole video's length (clip included), so "
                 "little or nothing new is made; raise --duration")
    first = None
    if opts.image is not None:
        first = media.load_image(opts.image,
                                 role="first frame" if opts.last_frame else "image",
                                 flag="IMAGE", fit=opts.fit, limits=limits)
    last = None
    if opts.last_frame is not None:
        last = media.load_image(opts.last_frame, role="last frame", flag="--last-frame",
                                fit=opts.fit, limits=limits)
    if opts.fit:
        first, last, notes = _apply_fit(first, last, resolution, opts.fit_background, model)
    if first is not None and last is not None:
        media.check_frame_aspects(first, last, warn)
    audio = None
    if opts.audio is not None:
        audio = media.load_audio(opts.audio, flag="--audio", limits=model.audio_limits)
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
    if model.protocol == "media":
        by_type = {"first_clip": clip, "first_frame": first, "last_frame": last,
                   "driving_audio": audio}
        inp["media"] = [{"type": t, "url": by_type[t]} for t in MEDIA_ORDER
                        if by_type[t] is not None]
    elif model.protocol == "kf2v":
        inp["first_frame_url"] = first
        if last is not None:
            inp["last_frame_url"] = last
    else:
        inp["img_url"] = first
        if audio is not None:
            inp["audio_url"] = audio
    if template is not None:
        inp["template"] = template

    params: dict[str, Any] = {"resolution": resolution}
    if len(model.durations) > 1 or opts.duration is not None:
        params["duration"] = duration
    if opts.prompt_extend is not None:
        params["prompt_extend"] = opts.prompt_extend
    if opts.watermark is not None:
        params["watermark"] = opts.watermark
    if opts.seed is not None:
        params["seed"] = opts.seed
    if shot is not None:
        params["shot_type"] = shot
    if send_silent:  # overrides audio_url on the models that document it
        params["audio"] = False
    if overrides or input_overrides:  # --param: sent as given, over what wanvid built
        params.update(overrides)
        inp.update(input_overrides)
        # (duration, resolution and seed were checked like their flags: apply_checked_params)
        names = [*(f"parameters.{k}" for k in overrides), *(f"input.{k}" for k in input_overrides)]
        warn(f"--param {', '.join(names)}: sent as given; wanvid did not check "
             + ("it" if len(names) == 1 else "them"))

    payload = {"model": request_name(model, opts.model, region), "input": inp,
               "parameters": params}
    predicted = None
    if first is not None and first.image is not None and \
            media.normalize_resolution(resolution) in media.TIER_PIXELS:
        # a tier wanvid knows (a --param or a user model may name one it does not)
        predicted = media.predict_output_size(first.image.width, first.image.height, resolution)
    media_list = [m for m in (clip, first, last, audio) if m is not None]
    return PreparedSubmit(model=model, resolution=resolution, duration=duration,
                          payload=payload, media=media_list, predicted_size=predicted,
                          fit_notes=notes, input_overrides=dict(input_overrides))


def _apply_fit(first: Any, last: Any, resolution: str, background: str,
               model: Model | None = None) -> tuple[Any, Any, list[str]]:
    """Replace local files by their fitted versions (``--fit``), to the model's limits."""
    from wanvid import fit, media

    limits = model.image_limits if model is not None else None
    notes: list[str] = []
    if (first is not None and last is not None and first.kind == "file"
            and last.kind == "file"):
        r1, r2 = fit.fit_pair(first.path, last.path, resolution=resolution,
                              background=background, limits=limits)
        pairs = [(first, r1), (last, r2)]
    else:
        pairs = []
        for m in (first, last):
            if m is not None and m.kind == "file":
                pairs.append((m, fit.fit_image(m.path, resolution=resolution,
                                               background=background, limits=limits)))
    replaced: dict[int, Any] = {}
    for m, r in pairs:
        notes.append(r.describe(Path(m.arg).name if m.path else m.arg))
        if r.changed:
            replaced[id(m)] = media.from_bytes(r.data, r.mime, arg=m.arg, role=m.role,
                                               limits=limits)
    if first is not None:
        first = replaced.get(id(first), first)
    if last is not None:
        last = replaced.get(id(last), last)
    return first, last, notes
