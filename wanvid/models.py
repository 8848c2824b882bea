"""The model catalogue: the single source of truth for validation and routing.

The models themselves are data, in ``wanvid/data/models.toml`` (read on first use); each entry
names its source document. Where the Nov 2025 reference contradicts itself (wan2.2-i2v-flash lists
1080P in the model table but only 480P/720P in the ``resolution`` parameter list) the parameter
list wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

# Regions and API roots live in wanvid.regions (configuration needs them without the
# catalogue); the default models and the user's file in wanvid.catalogue.
from wanvid.catalogue import (  # noqa: F401 - re-exported
    DEFAULT_I2V_MODEL,
    DEFAULT_KF2V_MODEL,
    file_key,
    use_user_catalogue,
    user_catalogue_path,
    user_choice,
)
from wanvid.regions import (  # noqa: F401 - re-exported
    CLOUD_REGIONS,
    REGION_ALIASES,
    REGION_IDS,
    REGION_NAMES,
    REGIONS,
    WORKSPACE_HOST,
    region_id,
    workspace_root,
)

if TYPE_CHECKING:
    from wanvid.errors import BadInputError

I2V_PATH = "/services/aigc/video-generation/video-synthesis"
KF2V_PATH = "/services/aigc/image2video/video-synthesis"

RESOLUTIONS = ("480P", "720P", "1080P")
# Total pixel count each tier aims for (the service keeps the first frame's aspect ratio).
TIER_PIXELS = {"480P": 832 * 480, "720P": 1280 * 720, "1080P": 1920 * 1080}

SEED_MIN, SEED_MAX = 0, 2147483647
NEGATIVE_PROMPT_MAX = 500

# Image limits of the Nov 2025 references: JPEG/PNG(no alpha)/BMP/WEBP, 360..2000 px, <= 10 MB.
# What ``wanvid.media`` / ``wanvid.fit`` apply when no model is given; a model's own limits are
# its catalogue entry's ``image_*`` fields (``Model.image_limits``).
IMAGE_MIN_PX, IMAGE_MAX_PX = 360, 2000
IMAGE_MAX_BYTES = 10 * 1024 * 1024
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
# Audio limits (wan2.5, Nov 2025): WAV/MP3, 3..30 s, <= 15 MB.
AUDIO_MIN_S, AUDIO_MAX_S = 3.0, 30.0
AUDIO_MAX_BYTES = 15 * 1024 * 1024
MB = 1024 * 1024

PROTOCOLS = ("i2v", "kf2v", "media")
# audio_mode: "silent" (never has sound), "optional_flag" (sound unless parameters.audio is
# false), "auto" (the model adds sound; no documented way to make it silent), "always" (the
# documentation says the video always has sound).
AUDIO_MODES = ("silent", "optional_flag", "auto", "always")
MEDIA_TYPES = ("first_frame", "last_frame", "driving_audio", "first_clip")
SHOT_TYPES = ("single", "multi")


@dataclass(frozen=True)
class ImageLimits:
    """What an image must be for one model (``None`` bounds are not enforced)."""

    min_px: int | None = IMAGE_MIN_PX
    max_px: int | None = IMAGE_MAX_PX
    max_bytes: int | None = IMAGE_MAX_BYTES
    min_aspect: float | None = None  # width / height
    max_aspect: float | None = None
    formats: tuple[str, ...] = IMAGE_FORMATS
    model: str = ""  # named in messages


@dataclass(frozen=True)
class AudioLimits:
    min_s: float | None = AUDIO_MIN_S
    max_s: float | None = AUDIO_MAX_S
    max_bytes: int | None = AUDIO_MAX_BYTES
    formats: tuple[str, ...] = ("WAV", "MP3")
    model: str = ""


@dataclass(frozen=True)
class ClipLimits:
    min_s: float | None = 2.0
    max_s: float | None = 10.0
    max_bytes: int | None = 100 * MB
    min_px: int | None = 240
    max_px: int | None = 4096
    min_aspect: float | None = None
    max_aspect: float | None = None
    formats: tuple[str, ...] = ("MP4", "MOV")
    model: str = ""


DEFAULT_IMAGE_LIMITS = ImageLimits()
DEFAULT_AUDIO_LIMITS = AudioLimits()


@dataclass(frozen=True)
class Model:
    """One catalogue entry. Field names are those of ``wanvid models --json`` and of a
    ``[[model]]`` table in models.toml. ``unconfirmed`` names the fields whose values the
    notes mark unconfirmed: they are shown but never enforced as hard limits."""

    name: str  # canonical name
    # "i2v" (input.img_url), "kf2v" (first_frame_url/last_frame_url) or "media" (input.media)
    protocol: str
    resolutions: tuple[str, ...]
    default_resolution: str
    durations: tuple[int, ...]  # in models.toml a list, or a "min..max" range string
    default_duration: int
    audio_mode: str  # one of AUDIO_MODES
    prompt_max: int
    fps: int
    regions: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    snapshots: tuple[str, ...] = ()  # dated names known to resolve to this entry
    # The name sent to the service, per region, where it differs from ``name``.
    api_names: dict[str, str] = field(default_factory=dict)
    endpoint: str = ""  # request path; "" = the protocol's (kf2v: image2video, else video-generation)
    audio_track: bool = False  # takes an audio track (audio_url, or a driving_audio item)
    media: tuple[str, ...] = ()  # media protocol: the item types it takes
    media_combinations: tuple[tuple[str, ...], ...] = ()  # and the only combinations it accepts
    shot_types: tuple[str, ...] = ()  # parameters.shot_type values (needs prompt_extend)
    templates: tuple[str, ...] = ()  # input.template names (video effects)
    prompt_max_chinese: int = 0  # a lower limit for prompts with Chinese text (0: prompt_max)
    negative_prompt_max: int = NEGATIVE_PROMPT_MAX  # 0: negative_prompt not documented
    watermark_default: bool = False
    image_formats: tuple[str, ...] = IMAGE_FORMATS
    image_min_px: int = IMAGE_MIN_PX  # each side
    image_max_px: int = IMAGE_MAX_PX
    image_max_bytes: int = IMAGE_MAX_BYTES
    image_min_aspect: float = 0.0  # width/height; 0: no documented limit
    image_max_aspect: float = 0.0
    audio_formats: tuple[str, ...] = ("WAV", "MP3")
    audio_min_s: float = AUDIO_MIN_S
    audio_max_s: float = AUDIO_MAX_S
    audio_max_bytes: int = AUDIO_MAX_BYTES
    clip_formats: tuple[str, ...] = ()  # first_clip videos; () = takes no clip
    clip_min_s: float = 0.0
    clip_max_s: float = 0.0
    clip_max_bytes: int = 0
    clip_min_px: int = 0
    clip_max_px: int = 0
    clip_min_aspect: float = 0.0
    clip_max_aspect: float = 0.0
    submits_per_second: float = 2  # account limits (per Alibaba Cloud account and model)
    concurrent_tasks: int = 2
    unconfirmed: tuple[str, ...] = ()
    description: str = ""
    source: str = ""  # the document (and date) the values come from
    # Regions whose availability the notes mark "?" (unconfirmed): allowed, never refused.
    regions_unconfirmed: tuple[str, ...] = ()
    # Where the entry comes from: "shipped", "user" (the user's models.toml) or
    # "user-override" (a shipped entry the user's file changes); set by the loader.
    origin: str = "shipped"

    @property
    def kind(self) -> str:
        """"kf2v" for the first+last-frame endpoint, else "i2v" (first frame)."""
        return "kf2v" if self.protocol == "kf2v" else "i2v"

    @property
    def audio(self) -> bool:
        """The videos can have sound."""
        return self.audio_mode != "silent"

    @property
    def path(self) -> str:
        return self.endpoint or (KF2V_PATH if self.protocol == "kf2v" else I2V_PATH)

    def confirmed(self, name: str) -> bool:
        """False for a field the notes mark unconfirmed (shown, not enforced)."""
        return name not in self.unconfirmed

    def takes(self, media_type: str) -> bool:
        """The model accepts this input: first_frame/last_frame/driving_audio/first_clip."""
        if self.protocol == "media":
            return media_type in self.media
        return {"first_frame": True, "last_frame": self.protocol == "kf2v",
                "driving_audio": self.audio_track, "first_clip": False}.get(media_type, False)

    def _bound(self, name: str, value: float) -> float | None:
        return value if value and self.confirmed(name) else None

    @property
    def image_limits(self) -> ImageLimits:
        b = self._bound
        return ImageLimits(
            min_px=b("image_min_px", self.image_min_px),  # type: ignore[arg-type]
            max_px=b("image_max_px", self.image_max_px),  # type: ignore[arg-type]
            max_bytes=b("image_max_bytes", self.image_max_bytes),  # type: ignore[arg-type]
            min_aspect=b("image_min_aspect", self.image_min_aspect),
            max_aspect=b("image_max_aspect", self.image_max_aspect),
            formats=self.image_formats if self.confirmed("image_formats") else IMAGE_FORMATS,
            model=self.name)

    @property
    def audio_limits(self) -> AudioLimits:
        b = self._bound
        return AudioLimits(
            min_s=b("audio_min_s", self.audio_min_s), max_s=b("audio_max_s", self.audio_max_s),
            max_bytes=b("audio_max_bytes", self.audio_max_bytes),  # type: ignore[arg-type]
            formats=self.audio_formats, model=self.name)

    @property
    def clip_limits(self) -> ClipLimits:
        b = self._bound
        return ClipLimits(
            min_s=b("clip_min_s", self.clip_min_s), max_s=b("clip_max_s", self.clip_max_s),
            max_bytes=b("clip_max_bytes", self.clip_max_bytes),  # type: ignore[arg-type]
            min_px=b("clip_min_px", self.clip_min_px),  # type: ignore[arg-type]
            max_px=b("clip_max_px", self.clip_max_px),  # type: ignore[arg-type]
            min_aspect=b("clip_min_aspect", self.clip_min_aspect),
            max_aspect=b("clip_max_aspect", self.clip_max_aspect),
            formats=self.clip_formats or ("MP4", "MOV"), model=self.name)

    def api_name(self, region: str | None) -> str:
        return self.api_names.get(region or "", self.name)

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            elif isinstance(v, dict):
                v = dict(v)
            d[f.name] = v
        d["endpoint"] = self.path
        d["kind"] = self.kind  # derived (older field): "i2v" or "kf2v"
        d["audio"] = self.audio  # derived: the videos can have sound
        return d


_CATALOGUE: tuple[Model, ...] | None = None
_BY_NAME: dict[str, Model] = {}
# A dated snapshot of a model (``wan2.7-i2v-2026-04-25``) resolves to the model's entry.
_SNAPSHOT = re.compile(r"^(?P<base>.+)-(?P<date>\d{4}-\d{2}-\d{2})$")
_LIST_FIELDS = tuple(f.name for f in fields(Model) if str(f.type).startswith("tuple"))
# Fields `wanvid models --json` derives from others; accepted in an entry (older files used
# them) and used only when the field they derive from is missing.
_DERIVED = ("kind", "audio")


class CatalogueError(ValueError):
    """The catalogue file is malformed (names the file, the entry and the field)."""


MAX_DURATION = 600  # seconds: a bound on a catalogue's "min..max" range (the longest model makes 15 s)


def _durations(value: object, label: str) -> object:
    """A list, or a "min..max" range string (``"2..15"``) -> the list of whole seconds."""
    if isinstance(value, str):
        lo, sep, hi = value.partition("..")
        if not (sep and lo.strip().isdigit() and hi.strip().isdigit()
                and int(lo) <= int(hi) <= MAX_DURATION):
            raise CatalogueError(f"{label}: field 'durations' must be a list or a range "
                                 f"like \"2..15\" (at most {MAX_DURATION} s), not "
                                 f"{value[:40]!r}")
        return list(range(int(lo), int(hi) + 1))
    return value


def _model_from_entry(entry: dict[str, object], where: str) -> Model:
    names = {f.name for f in fields(Model)}
    unknown = sorted(set(entry) - names - set(_DERIVED))
    label = f"{where}: model {entry.get('name', '?')!r}"
    if unknown:
        raise CatalogueError(f"{label}: unknown field {unknown[0]!r}")
    kw: dict[str, object] = {k: v for k, v in entry.items() if k not in _DERIVED}
    if "protocol" not in kw and "kind" in entry:  # older entries: kind = "i2v" | "kf2v"
        kw["protocol"] = entry["kind"]
    if "audio_mode" not in kw and "audio" in entry:  # older entries: audio = true | false
        kw["audio_mode"] = "auto" if entry["audio"] else "silent"
        kw.setdefault("audio_track", bool(entry["audio"]))
    if "durations" in kw:
        kw["durations"] = _durations(kw["durations"], label)
    for f in _LIST_FIELDS:
        if f in kw:
            if not isinstance(kw[f], list):
                raise CatalogueError(f"{label}: field {f!r} must be a list")
            kw[f] = tuple(tuple(x) if isinstance(x, list) else x  # type: ignore[arg-type]
                          for x in kw[f])  # type: ignore[attr-defined]
    try:
        m = Model(**kw)  # type: ignore[arg-type]
    except TypeError as e:
        raise CatalogueError(f"{label}: {e}") from None
    for fname, value, allowed in (("protocol", m.protocol, PROTOCOLS),
                                  ("audio_mode", m.audio_mode, AUDIO_MODES)):
        if value not in allowed:
            raise CatalogueError(f"{label}: field {fname!r} must be one of "
                                 f"{', '.join(allowed)}, not {value!r}")
    for fname, items, allowed in (("media", m.media, MEDIA_TYPES),
                                  ("shot_types", m.shot_types, SHOT_TYPES)):
        bad = [x for x in items if x not in allowed]
        if bad:
            raise CatalogueError(f"{label}: field {fname!r}: {bad[0]!r} is not one of "
                                 f"{', '.join(allowed)}")
    for combo in m.media_combinations:
        if not isinstance(combo, tuple) or any(x not in m.media for x in combo):
            raise CatalogueError(f"{label}: field 'media_combinations': each entry must be a "
                                 "list of types listed in 'media'")
    if m.default_resolution not in m.resolutions:
        raise CatalogueError(f"{label}: field 'default_resolution' {m.default_resolution!r} "
                             "is not in 'resolutions'")
    if m.default_duration not in m.durations:
        raise CatalogueError(f"{label}: field 'default_duration' {m.default_duration!r} is "
                             "not in 'durations'")
    return m


def load_catalogue(text: str, where: str) -> tuple[Model, ...]:
    """Parse a catalogue in TOML (``[[model]]`` tables, fields as in ``wanvid models --json``)."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogueError(f"{where}: not valid TOML: {e}") from None
    entries = data.get("model", [])
    if not isinstance(entries, list):
        raise CatalogueError(f"{where}: 'model' must be an array of tables ([[model]])")
    return tuple(_model_from_entry(e, where) for e in entries)


_LOADED_KEY: tuple[object, ...] | None = None  # catalogue.file_key of what _CATALOGUE holds
_CHOICE_SEEN = -1  # catalogue.user_choice() when _LOADED_KEY was last compared to the file


def _catalogue() -> tuple[Model, ...]:
    global _CATALOGUE, _LOADED_KEY, _CHOICE_SEEN
    path = user_catalogue_path()
    if user_choice() != _CHOICE_SEEN:  # use_user_catalogue was called: reread a changed file
        _CHOICE_SEEN = user_choice()
        if _CATALOGUE is not None and _LOADED_KEY != file_key(path):
            _CATALOGUE = None
    if _CATALOGUE is not None and _LOADED_KEY is not None and _LOADED_KEY[0] != (
            str(path) if path is not None else None):
        _CATALOGUE = None  # the default place moved ($WANVID_CONFIG_DIR changed)
    if _CATALOGUE is None:
        from importlib.resources import files

        from wanvid.catalogue import build

        text = files("wanvid").joinpath("data/models.toml").read_text(encoding="utf-8")
        key = file_key(path)
        models = tuple(_user_model(entry, origin, where)
                       for entry, origin, where in build(text, path))
        by_name: dict[str, Model] = {}
        for m in models:
            for n in (m.name, *m.aliases):
                other = by_name.get(n.lower())
                if other is not None and other is not m and m.origin != "shipped":
                    from wanvid.errors import BadInputError

                    raise BadInputError(f"{path}: model {m.name!r}: field 'aliases': {n!r} "
                                        f"is already the name of {other.name}")
                by_name[n.lower()] = m
        _BY_NAME.clear()
        _BY_NAME.update(by_name)
        _CATALOGUE, _LOADED_KEY = models, key
    return _CATALOGUE


def _user_model(entry: dict[str, object], origin: str, where: str) -> Model:
    """One merged entry as a Model (a user entry's error is exit 2, not a wanvid bug)."""
    entry = {k: v for k, v in entry.items() if k != "origin"}
    entry["origin"] = origin
    if origin == "shipped":
        return _model_from_entry(entry, where)
    try:
        return _model_from_entry(entry, where)
    except CatalogueError as e:
        from wanvid.errors import BadInputError

        raise BadInputError(str(e)) from None


def __getattr__(name: str) -> tuple[Model, ...]:
    # ``MODELS`` is read from wanvid/data/models.toml on first use.
    if name == "MODELS":
        return _catalogue()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def model_names() -> list[str]:
    return [m.name for m in _catalogue()]


def find_model(name: str) -> Model | None:
    """Look a model up by its canonical name, an alias or a dated snapshot name (case-insensitive)."""
    _catalogue()
    key = name.strip().lower()
    found = _BY_NAME.get(key)
    if found is None and (snap := _SNAPSHOT.match(key)):
        base = _BY_NAME.get(snap.group("base"))
        if base is not None and _snapshot_problem(base, key, snap.group("date")) is None:
            found = base
    return found


def _real_date(text: str) -> bool:
    import datetime

    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _snapshot_problem(base: Model, key: str, date: str) -> str | None:
    """Why ``key`` (BASE-YYYY-MM-DD) is not a snapshot of ``base``, or None when it is: the
    date must be a real one, and a model whose entry lists its snapshots has only those."""
    if not _real_date(date):
        return f"{date} is not a date (a dated snapshot is {base.name}-YYYY-MM-DD)"
    if base.snapshots and key not in (s.lower() for s in base.snapshots):
        return (f"not a snapshot wanvid knows; {base.name} has "
                f"{', '.join(base.snapshots)} (or use {base.name} itself; another snapshot "
                "goes in the model's snapshots list in models.toml, README \"Your own models\")")
    return None


def unknown_model(name: str, flag: str = "--model") -> BadInputError:
    """The error (exit 2) for a name no entry has: the closest known names, and where to
    describe a new model (the user's models.toml)."""
    from wanvid.catalogue import _shown, unknown_model_error
    from wanvid.errors import BadInputError

    key = name.strip().lower()
    if (snap := _SNAPSHOT.match(key)) and (base := _BY_NAME.get(snap.group("base"))):
        why = _snapshot_problem(base, key, snap.group("date"))
        if why is not None:
            return BadInputError(f"{flag} {_shown(name)}: {why}")
    known = [n for m in _catalogue() for n in (m.name, *m.aliases)]
    return unknown_model_error(name, known, user_catalogue_path(), flag)


def normalize_resolution(value: str) -> str:
    """'720p' -> '720P'; anything else is returned upper-cased for the caller to check."""
    v = value.strip().upper()
    return v if v.endswith("P") else v + "P"


def models_by_kind(kind: str) -> list[Model]:
    return [m for m in _catalogue() if m.kind == kind]


def request_name(model: Model, requested: str | None, region: str | None) -> str:
    """The model name to send: a dated snapshot as asked for (``wan2.7-i2v-2026-04-25``),
    else the model's name for the region."""
    key = (requested or "").strip().lower()
    snap = _SNAPSHOT.match(key)
    if snap and key not in _BY_NAME and find_model(snap.group("base")) is model:
        return key
    return model.api_name(region)


def check_model_region(model: Model, region: str | None) -> None:
    """Refuse (exit 2, before anything is sent) a model the region does not offer, naming
    the regions that do. A region the notes mark unconfirmed for the model is allowed."""
    if not region or region in model.regions or region in model.regions_unconfirmed:
        return
    from wanvid.errors import BadInputError

    def names(ids: tuple[str, ...]) -> str:
        return ", ".join(f"{r} ({REGION_NAMES.get(r, r)})" for r in ids)

    where = names(model.regions) or "none listed"
    if model.regions_unconfirmed:
        where += f"; unconfirmed: {names(model.regions_unconfirmed)}"
    raise BadInputError(f"{model.name} is not offered in region {region} "
                        f"({REGION_NAMES.get(region, region)}); it is offered in: {where}; "
                        "choose one with --region")
