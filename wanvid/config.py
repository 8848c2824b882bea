"""Configuration: API key, region, base URL, defaults.

Precedence, highest first: command-line flag > environment > config file > default.

The API key has no command-line flag on purpose (it would land in shell history). It is
looked up, in order: ``DASHSCOPE_API_KEY``; ``api_key`` in the config file; the file named
by ``DASHSCOPE_API_KEY_FILE_PATH``; ``~/.dashscope/api_key`` (the official SDK's places).

The config file is ``config.toml`` in the platform's user config dir (``WANVID_CONFIG_DIR``
overrides it). It is written atomically and with mode 0600 because it may hold the key.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanvid.catalogue import DEFAULT_I2V_MODEL, DEFAULT_KF2V_MODEL
from wanvid.context import Environment
from wanvid.errors import AuthError, BadInputError
from wanvid.regions import REGION_IDS, REGIONS, region_id, workspace_root

CONFIG_FILE = "config.toml"
DEFAULT_REGION = "intl"
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_MAX_QPS = 5.0
DEFAULT_JOBS = 2
DEFAULT_DOWNLOADS = 4  # videos a wait downloads at once, beside its polling
DEFAULT_MAX_DOWNLOAD_MB = 2048  # a video bigger than this is refused (no real one comes close)

# key -> (type, description). The single list `wanvid config` accepts.
CONFIG_KEYS: dict[str, tuple[type, str]] = {
    "api_key": (str, "Model Studio API key (prefer DASHSCOPE_API_KEY in CI)"),
    "region": (str, "intl (Singapore, default), cn (Beijing), us (Virginia) or eu (Frankfurt: "
                    "needs workspace)"),
    "workspace": (str, "Model Studio workspace id: use its host "
                       "https://ID.REGION.maas.aliyuncs.com/api/v1"),
    "base_url": (str, "API root, e.g. http://127.0.0.1:8765/api/v1; overrides region"),
    "model": (str, f"default first-frame model (default {DEFAULT_I2V_MODEL})"),
    "kf2v_model": (str, f"default first+last-frame model (default {DEFAULT_KF2V_MODEL})"),
    "output_dir": (str, "where videos are saved (default: the current directory)"),
    "poll_interval": (float, f"seconds between status queries at first (default {DEFAULT_POLL_INTERVAL:g})"),
    "max_qps": (float, f"most task queries per second a wait makes (default {DEFAULT_MAX_QPS:g})"),
    "jobs": (int, "batch: tasks in flight at once (default: each model's concurrent-task "
                  "limit)"),
    "fit": (bool, "prepare local images with --fit by default"),
    "upload": (str, "local files: auto (audio/video uploaded, default), always or never"),
    "sidecar": (bool, "write clip.json (+ clip.thumb.jpg) beside each saved video (default true)"),
    "prices": (dict, "your price per billed second, per model: set prices.MODEL 0.05 (usage, batch)"),
    "max_seconds": (int, "batch: refuse a batch that would bill more seconds than this"),
    "max_download_mb": (int, "largest video saved, in MiB, when the storage host names no "
                             f"size or a bigger one (default {DEFAULT_MAX_DOWNLOAD_MB})"),
    "downloads": (int, f"videos a wait downloads at once (default {DEFAULT_DOWNLOADS})"),
}


@dataclass
class Settings:
    """The configuration in effect: flags > environment > config file > defaults."""

    api_key: str | None
    api_key_source: str | None
    region: str
    base_url: str
    model: str
    kf2v_model: str
    output_dir: Path | None
    poll_interval: float
    max_qps: float
    jobs: int
    fit: bool
    downloads: int = DEFAULT_DOWNLOADS
    sidecar: bool = True
    prices: object = None  # the [prices] table as read; wanvid.usage.price_table checks it
    max_seconds: int | None = None  # batch: most billed seconds a batch may submit
    upload: str = "auto"
    max_download: int = DEFAULT_MAX_DOWNLOAD_MB << 20  # bytes
    workspace: str | None = None
    # Refuse a model the region does not offer: the region was named (flag, environment,
    # config) or chose the API root; not for a default region under an explicit base URL
    # (an emulator, a proxy), where the region is only a guess.
    enforce_region: bool = True
    jobs_set: bool = False  # config jobs is set: batch uses it instead of each model's limit

    def require_key(self) -> str:
        if not self.api_key:
            raise AuthError(
                "no API key found; set the DASHSCOPE_API_KEY environment variable, "
                "or store one with `wanvid config set api_key` (it prompts; nothing is echoed)"
            )
        check_key(self.api_key, self.api_key_source)
        return self.api_key


def check_key(key: str, source: str | None = None) -> None:
    """Refuse, before anything is sent, a key an HTTP header cannot carry (a line break, a
    control character, anything outside printable ASCII, as API keys are). The message
    names the problem and where the key came from, never the key."""
    for i, ch in enumerate(key):
        o = ord(ch)
        if ch in "\r\n":
            problem = "a line break"
        elif o < 0x20 or o == 0x7F:
            problem = f"a control character (U+{o:04X})"
        elif o > 0x7E:
            problem = f"a non-ASCII character (U+{o:04X})"
        else:
            continue
        where = f" from {source}" if source else ""
        raise AuthError(f"the API key{where} contains {problem} at position {i + 1} of "
                        f"{len(key)}; an HTTP header cannot carry it, so nothing was sent: "
                        "copy the key again from the Model Studio console")


def loose_permissions(path: Path) -> str | None:
    """The ssh-style warning for a file that holds the key and that group or others can
    read (or write); None when it is private (or on Windows, or when it cannot be read)."""
    if os.name != "posix":
        return None
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return (f"{path} holds your API key and is accessible by others (mode {mode:04o}); "
            f"fix it with: chmod 600 {path}")


def config_path(env: Environment) -> Path:
    return env.config_dir / CONFIG_FILE


def load_file(path: Path) -> dict[str, Any]:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise BadInputError(f"{path}: cannot read config file ({e.strerror})") from None
    import tomllib  # only when there is a file: most runs have none

    with f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise BadInputError(f"{path}: not valid TOML ({e}); fix or delete the file") \
                from None
        except OSError as e:
            raise BadInputError(f"{path}: cannot read config file ({e.strerror})") from None


def save_file(path: Path, data: Mapping[str, Any]) -> None:
    """Write the config atomically (temp file + rename), mode 0600 from the first byte."""
    import tomli_w

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            tomli_w.dump(dict(data), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


PRICES_PREFIX = "prices."


def price_key(key: str) -> str | None:
    """``prices.MODEL`` -> the model's canonical name (exit 2 for an unknown model)."""
    if not key.startswith(PRICES_PREFIX):
        return None
    name = key[len(PRICES_PREFIX):]
    from wanvid.models import find_model

    m = find_model(name)
    if m is None:
        raise BadInputError(f"config {key}: unknown model {name!r} (see `wanvid models`)")
    return m.name


def store(data: dict[str, Any], key: str, value: Any) -> None:
    """Put a parsed value in the config data (``prices.MODEL`` goes into ``[prices]``)."""
    model = price_key(key)
    if model is None:
        data[key] = value
        return
    table = data.get("prices")
    if not isinstance(table, dict):
        table = data["prices"] = {}
    table[model] = value


def lookup(data: Mapping[str, Any], key: str) -> Any:
    """A stored value, or None (``prices.MODEL`` reads from ``[prices]``)."""
    model = price_key(key)
    if model is None:
        return data.get(key)
    table = data.get("prices")
    return table.get(model) if isinstance(table, dict) else None


def remove(data: dict[str, Any], key: str) -> Any:
    """Remove a stored value; what was there, or None."""
    model = price_key(key)
    if model is None:
        return data.pop(key, None)
    table = data.get("prices")
    if not isinstance(table, dict):
        return None
    value = table.pop(model, None)
    if not table:
        data.pop("prices", None)
    return value


def parse_value(key: str, raw: str) -> Any:
    """Turn a `wanvid config set KEY VALUE` string into the stored value, validated."""
    if price_key(key) is not None:
        try:
            price = float(raw.strip())
        except ValueError:
            price = -1.0
        if not (price >= 0 and price != float("inf")):
            raise BadInputError(f"config {key}: expected a price per billed second (a number "
                                f">= 0), got {raw!r}")
        return price
    if key == "prices":
        raise BadInputError("config prices: set one model's price at a time: "
                            "wanvid config set prices.wan2.2-i2v-flash 0.02")
    if key not in CONFIG_KEYS:
        raise BadInputError(
            f"unknown config key {key!r}; known keys: {', '.join(CONFIG_KEYS)}"
        )
    typ = CONFIG_KEYS[key][0]
    raw = raw.strip()
    value: Any
    if typ is bool:
        low = raw.lower()
        if low not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise BadInputError(f"config {key}: expected true or false, got {raw!r}")
        value = low in ("true", "1", "yes", "on")
    elif typ in (int, float):
        try:
            value = typ(raw)
        except ValueError:
            raise BadInputError(f"config {key}: expected a number, got {raw!r}") from None
        if value <= 0:
            raise BadInputError(f"config {key}: must be greater than 0, got {raw!r}")
    else:
        value = raw
    if key == "region":
        value = check_region(value, f"config {key}")
    elif key == "workspace":
        value = check_workspace(value, f"config {key}")
    elif key == "base_url":
        value = check_base_url(value, f"config {key}")
    elif key in ("model", "kf2v_model"):
        from wanvid.models import find_model, models_by_kind

        m = find_model(value)
        want = "i2v" if key == "model" else "kf2v"
        if m is None or m.kind != want:
            names = ", ".join(x.name for x in models_by_kind(want))
            raise BadInputError(f"config {key}: {raw!r} is not a {want} model; one of: {names}")
        value = m.name
    elif key == "api_key" and not value:
        raise BadInputError("config api_key: empty key")
    return value


def check_region(value: str, where: str) -> str:
    v = region_id(value)
    if v is None:
        raise BadInputError(f"{where}: unknown region {value!r}; use one of: "
                            f"{', '.join(REGION_IDS)}")
    return v


# A workspace id becomes part of a host name: one DNS label, letters, digits and inner hyphens.
_WORKSPACE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def check_workspace(value: str, where: str) -> str:
    v = value.strip().lower()
    if not _WORKSPACE.fullmatch(v):
        raise BadInputError(f"{where}: {value!r} is not a workspace id (letters, digits and "
                            "inner hyphens, at most 63; e.g. llm-abc123): copy it from the "
                            "Model Studio console")
    return v


def check_base_url(value: str, where: str) -> str:
    v = value.strip().rstrip("/")
    if not (v.startswith("http://") or v.startswith("https://")):
        raise BadInputError(
            f"{where}: {value!r} is not an http(s) URL; e.g. https://dashscope-intl.aliyuncs.com/api/v1"
        )
    return v


def redact(key: str | None) -> str:
    """A key shown as `sk-…` plus its last 4 characters; never the key itself."""
    if not key:
        return "(not set)"
    tail = key[-4:] if len(key) >= 12 else ""
    return f"{key[:3]}…{tail}" if tail else "***"


def find_api_key(env: Environment, file_data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The API key and where it came from (see the module docstring for the order)."""
    k = env.get("DASHSCOPE_API_KEY")
    if k:
        return k, "environment (DASHSCOPE_API_KEY)"
    k = file_data.get("api_key")
    if isinstance(k, str) and k.strip():
        return k.strip(), "config file"
    candidates: list[tuple[Path, str]] = []
    kp = env.get("DASHSCOPE_API_KEY_FILE_PATH")
    if kp:
        candidates.append((Path(kp).expanduser(), "DASHSCOPE_API_KEY_FILE_PATH"))
    candidates.append((env.home / ".dashscope" / "api_key", "~/.dashscope/api_key"))
    for p, label in candidates:
        try:
            text = p.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text:
            warning = loose_permissions(p)
            if warning:
                env.warn(warning)
            return text, label
    return None, None


def resolve(env: Environment, *, region: str | None = None, base_url: str | None = None,
            output_dir: str | None = None, poll_interval: float | None = None,
            workspace: str | None = None) -> Settings:
    """Merge flags, environment, config file and defaults into Settings."""
    path = config_path(env)
    data = load_file(path)
    if isinstance(data.get("api_key"), str) and data["api_key"].strip():
        warning = loose_permissions(path)
        if warning:
            env.warn(warning)
    key, source = find_api_key(env, data)

    # The region: the first of flag > environment > file that names one; so the workspace.
    # The base URL: the highest layer that says anything decides; within a layer an explicit
    # URL beats a region or workspace (the root is then the region's host, or its workspace
    # host). The region still names the region when a URL decides (per-region model names).
    layers: list[tuple[str | None, str | None, str | None, str]] = [
        (base_url, region, workspace, "flag"),
        (env.get("DASHSCOPE_HTTP_BASE_URL"), env.get("WANVID_REGION"),
         env.get("DASHSCOPE_WORKSPACE_ID") or env.get("DASHSCOPE_WORKSPACE"), "environment"),
        (_str(data.get("base_url")), _str(data.get("region")), _str(data.get("workspace")),
         "config file"),
    ]
    chosen_region, region_named = DEFAULT_REGION, False
    for _, reg, _, where in layers:
        if reg:
            chosen_region, region_named = check_region(reg, f"region ({where})"), True
            break
    chosen_ws = None
    for _, _, ws, where in layers:
        if ws:
            chosen_ws = check_workspace(ws, f"workspace ({where})")
            break
    chosen_url = None
    for url, reg, ws, where in layers:
        if url:
            chosen_url = check_base_url(url, f"base URL ({where})")
            break
        if reg or ws:
            break
    url_from_region = chosen_url is None
    if chosen_url is None:
        if chosen_ws:
            chosen_url = workspace_root(chosen_ws, chosen_region)
        elif chosen_region in REGIONS:
            chosen_url = REGIONS[chosen_region]
        else:
            raise BadInputError(
                f"region {chosen_region} (Frankfurt) has no shared host, only workspace hosts: "
                "give your workspace id with --workspace ID (or DASHSCOPE_WORKSPACE_ID, or "
                "`wanvid config set workspace ID`)")

    out = output_dir or env.get("WANVID_OUTPUT_DIR") or _str(data.get("output_dir"))
    interval = poll_interval or _env_num(env, "WANVID_POLL_INTERVAL") or _num(
        data.get("poll_interval"))
    _env_num(env, "WANVID_HEARTBEAT", off=True)  # read by wanvid.progress; checked here
    downloads = _env_num(env, "WANVID_DOWNLOADS", whole=True)
    max_mib = _env_num(env, "WANVID_MAX_DOWNLOAD_MB") or _num(data.get("max_download_mb")) \
        or DEFAULT_MAX_DOWNLOAD_MB
    return Settings(
        api_key=key,
        api_key_source=source,
        region=chosen_region,
        base_url=chosen_url,
        model=_str(data.get("model")) or DEFAULT_I2V_MODEL,
        kf2v_model=_str(data.get("kf2v_model")) or DEFAULT_KF2V_MODEL,
        output_dir=Path(out).expanduser() if out else None,
        poll_interval=float(interval or DEFAULT_POLL_INTERVAL),
        max_qps=float(_env_num(env, "WANVID_MAX_QPS") or _num(data.get("max_qps"))
                      or DEFAULT_MAX_QPS),
        jobs=int(_num(data.get("jobs")) or DEFAULT_JOBS),
        jobs_set=bool(_num(data.get("jobs"))),
        downloads=min(32, int(downloads or _num(data.get("downloads"))
                              or DEFAULT_DOWNLOADS)),  # --downloads' own cap
        fit=bool(data.get("fit", False)),
        sidecar=bool(data.get("sidecar", True)),
        prices=data.get("prices"),
        max_seconds=int(_num(data.get("max_seconds")) or 0) or None,
        upload=_str(env.get("WANVID_UPLOAD")) or _str(data.get("upload")) or "auto",
        max_download=int(max_mib * (1 << 20)),  # 0.5 MiB is 524288 bytes, not 0
        workspace=chosen_ws,
        enforce_region=region_named or url_from_region,
    )


def _str(v: Any) -> str | None:
    return v.strip() if isinstance(v, str) and v.strip() else None


def _env_num(env: Environment, name: str, *, whole: bool = False,
             off: bool = False) -> float | None:
    """A number from the environment variable ``name``: None when unset or empty; any
    other value that is not a positive number (``whole``: a whole one; ``off``: 0 or less
    allowed too, it turns the thing off) is refused with one line, before anything is
    sent."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    value = _num(raw)
    if off and value is None:
        try:
            value = float(raw) if float(raw) <= 0 else None
        except ValueError:
            value = None
    if value is not None and (not whole or value == int(value)):
        return value
    from wanvid.sanitize import one_line

    what = "a positive whole number" if whole else (
        "a number of seconds (0: off)" if off else "a positive number")
    raise BadInputError(f"{name}={one_line(raw, 40)!r} is not {what}: set it to one, or "
                        f"unset it (`unset {name}`)")


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if 0 < f < 1e12 else None  # not inf, nan or absurd (ignored, as garbage is)
