"""The model catalogue: the single source of truth for validation and routing.

Everything here comes from the API reference in ``shared/api/``. Where the reference
contradicts itself (wan2.2-i2v-flash lists 1080P in the model table but only 480P/720P
in the ``resolution`` parameter list) the parameter list wins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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


MODELS: tuple[Model, ...] = (
    Model("wan2.5-i2v-preview", "i2v", ("480P", "720P", "1080P"), "1080P", (5, 10), 5,
          audio=True, prompt_max=2000, fps=24, regions=("intl", "cn"),
          description="Wan 2.5 preview: video with audio (automatic or your own track)"),
    Model("wan2.2-i2v-flash", "i2v", ("480P", "720P"), "720P", (5,), 5,
          audio=False, prompt_max=800, fps=30, regions=("intl", "cn"),
          description="Wan 2.2 Flash: silent, 50% faster than 2.1"),
    Model("wan2.2-i2v-plus", "i2v", ("480P", "1080P"), "1080P", (5,), 5,
          audio=False, prompt_max=800, fps=30, regions=("intl", "cn"),
          description="Wan 2.2 Professional: silent, more stable than 2.1"),
    Model("wan2.1-i2v-plus", "i2v", ("720P",), "720P", (5,), 5,
          audio=False, prompt_max=800, fps=30, regions=("intl", "cn"),
          aliases=("wanx2.1-i2v-plus",), description="Wan 2.1 Professional: silent"),
    Model("wan2.1-i2v-turbo", "i2v", ("480P", "720P"), "720P", (3, 4, 5), 5,
          audio=False, prompt_max=800, fps=30, regions=("intl", "cn"),
          aliases=("wanx2.1-i2v-turbo",), description="Wan 2.1 Flash: silent, 3-5 s"),
    Model("wan2.2-kf2v-flash", "kf2v", ("480P", "720P", "1080P"), "720P", (5,), 5,
          audio=False, prompt_max=800, fps=30, regions=("intl", "cn"),
          description="Wan 2.2 first+last frame Flash: silent"),
    Model("wan2.1-kf2v-plus", "kf2v", ("720P",), "720P", (5,), 5,
          audio=False, prompt_max=800, fps=30, regions=("intl", "cn"),
          aliases=("wanx2.1-kf2v-plus",), api_names={"cn": "wanx2.1-kf2v-plus"},
          description="Wan 2.1 first+last frame Professional: silent"),
)

DEFAULT_I2V_MODEL = "wan2.2-i2v-flash"
DEFAULT_KF2V_MODEL = "wan2.2-kf2v-flash"

_BY_NAME: dict[str, Model] = {}
for _m in MODELS:
    for _n in (_m.name, *_m.aliases):
        _BY_NAME[_n.lower()] = _m


def model_names() -> list[str]:
    return [m.name for m in MODELS]


def find_model(name: str) -> Model | None:
    """Look a model up by its canonical name or an alias (case-insensitive)."""
    return _BY_NAME.get(name.strip().lower())


def normalize_resolution(value: str) -> str:
    """'720p' -> '720P'; anything else is returned upper-cased for the caller to check."""
    v = value.strip().upper()
    return v if v.endswith("P") else v + "P"


def models_by_kind(kind: str) -> list[Model]:
    return [m for m in MODELS if m.kind == kind]
