"""The model catalogue: the single source of truth for validation and routing.

The models themselves are data, in ``wanvid/data/models.toml`` (read on first use); each entry
names its source document. Where the Nov 2025 reference contradicts itself (wan2.2-i2v-flash lists
1080P in the model table but only 480P/720P in the ``resolution`` parameter list) the parameter
list wins.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields

I2V_PATH = "/services/aigc/video-generation/video-synthesis"
KF2V_PATH = "/services/aigc/image2video/video-synthesis"

REGIONS: dict[str, str] = {
    "intl": "https://dashscope-intl.aliyuncs.com/api/v1",  # Singapore
    "cn": "https://dashscope.aliyuncs.com/api/v1",  # Beijing
    "us": "https://dashscope-us.aliyuncs.com/api/v1",  # Virginia
}
REGION_NAMES = {"intl": "Singapore", "cn": "Beijing", "us": "Virginia"}

RESOLUTIONS = ("480P", "720P", "1080P")
# Total pixel count each tier aims for (the service keeps the first frame's aspect ratio).
TIER_PIXELS = {"480P": 832 * 480, "720P": 1280 * 720, "1080P": 1920 * 1080}

SEED_MIN, SEED_MAX = 0, 2147483647
NEGATIVE_PROMPT_MAX = 500

# Image limits (both documents): JPEG/PNG(no alpha)/BMP/WEBP, 360..2000 px, <= 10 MB.
IMAGE_MIN_PX, IMAGE_MAX_PX = 360, 2000
IMAGE_MAX_BYTES = 10 * 1024 * 1024
# Audio limits (wan2.5 only): WAV/MP3, 3..30 s, <= 15 MB.
AUDIO_MIN_S, AUDIO_MAX_S = 3.0, 30.0
AUDIO_MAX_BYTES = 15 * 1024 * 1024


@dataclass(frozen=True)
class Model:
    name: str  # canonical name
    kind: str  # "i2v" (first frame) or "kf2v" (first + last frame)
    resolutions: tuple[str, ...]
    default_resolution: str
    durations: tuple[int, ...]
    default_duration: int
    audio: bool
    prompt_max: int
    fps: int
    regions: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    # The name sent to the service, per region, where it differs from ``name``.
    api_names: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: str = ""  # the document (and date) the values come from

    @property
    def path(self) -> str:
        return I2V_PATH if self.kind == "i2v" else KF2V_PATH

    @property
    def negative_prompt_max(self) -> int:
        return NEGATIVE_PROMPT_MAX

    def api_name(self, region: str | None) -> str:
        return self.api_names.get(region or "", self.name)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["endpoint"] = self.path
        d["negative_prompt_max"] = NEGATIVE_PROMPT_MAX
        d["resolutions"] = list(self.resolutions)
        d["durations"] = list(self.durations)
        d["regions"] = list(self.regions)
        d["aliases"] = list(self.aliases)
        return d


DEFAULT_I2V_MODEL = "wan2.2-i2v-flash"
DEFAULT_KF2V_MODEL = "wan2.2-kf2v-flash"

_CATALOGUE: tuple[Model, ...] | None = None
_BY_NAME: dict[str, Model] = {}
# A dated snapshot of a model (``wan2.7-i2v-2026-04-25``) resolves to the model's entry.
_SNAPSHOT = re.compile(r"^(?P<base>.+)-\d{4}-\d{2}-\d{2}$")
_LIST_FIELDS = ("resolutions", "durations", "regions", "aliases")


class CatalogueError(ValueError):
    """The catalogue file is malformed (names the file, the entry and the field)."""


def _model_from_entry(entry: dict[str, object], where: str) -> Model:
    names = {f.name for f in fields(Model)}
    unknown = sorted(set(entry) - names)
    label = f"{where}: model {entry.get('name', '?')!r}"
    if unknown:
        raise CatalogueError(f"{label}: unknown field {unknown[0]!r}")
    kw: dict[str, object] = dict(entry)
    for f in _LIST_FIELDS:
        if f in kw:
            if not isinstance(kw[f], list):
                raise CatalogueError(f"{label}: field {f!r} must be a list")
            kw[f] = tuple(kw[f])  # type: ignore[arg-type]
    try:
        return Model(**kw)  # type: ignore[arg-type]
    except TypeError as e:
        raise CatalogueError(f"{label}: {e}") from None


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


def _catalogue() -> tuple[Model, ...]:
    global _CATALOGUE
    if _CATALOGUE is None:
        from importlib.resources import files

        text = files("wanvid").joinpath("data/models.toml").read_text(encoding="utf-8")
        models = load_catalogue(text, "wanvid/data/models.toml")
        for m in models:
            for n in (m.name, *m.aliases):
                _BY_NAME[n.lower()] = m
        _CATALOGUE = models
    return _CATALOGUE


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
        found = _BY_NAME.get(snap.group("base"))
    return found


def normalize_resolution(value: str) -> str:
    """'720p' -> '720P'; anything else is returned upper-cased for the caller to check."""
    v = value.strip().upper()
    return v if v.endswith("P") else v + "P"


def models_by_kind(kind: str) -> list[Model]:
    return [m for m in _catalogue() if m.kind == kind]
