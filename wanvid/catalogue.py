"""The catalogue as data: the models.toml shipped with wanvid, merged with the user's own.

The user's catalogue is ``models.toml`` in the config directory (beside config.toml;
``wanvid models --path`` prints where). Its ``[[model]]`` tables use the field names of
``wanvid models --json``. Merging happens on the raw TOML tables, before any ``Model`` is
built, so one set of checks covers both files:

* an entry whose ``name`` is a shipped model's name or alias (any case) **overrides** it
  field by field: the fields it gives replace the shipped values (a list is replaced as a
  whole: to add a template, write the whole list), the others stay as shipped. Its origin is
  ``user-override``.
* any other entry is a **new** model (origin ``user``). It needs ``name``, ``protocol``,
  ``resolutions`` and ``durations``; every other field may be left out. A field left out
  gets a neutral default (``default_resolution``: the first resolution; ``default_duration``:
  5 if offered, else the shortest; ``audio_mode``: ``auto``; ``regions``: all, unconfirmed)
  and is listed in ``unconfirmed``, so wanvid never refuses an input on a limit the user did
  not write (the limits of the Nov 2025 reference would otherwise apply).
* the derived fields of ``--json`` (``kind``, ``audio``, ``origin``) are accepted, so an
  entry can be pasted from ``wanvid models --json``; ``origin`` is always recomputed.

The file is read only if it is a regular file (a symlink to one is followed, as for
config.toml; a FIFO, device or directory is refused) and at most ``MAX_BYTES`` are read. Any
problem is one ``BadInputError`` (exit 2) naming the file, the entry and the field.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path

from wanvid.errors import BadInputError

USER_FILE = "models.toml"
MAX_BYTES = 1024 * 1024
ORIGINS = ("shipped", "user", "user-override")
DERIVED = ("kind", "audio", "origin")
# What a model name may be: it is sent to the service and shown on terminals.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Fields a new user entry must give.
REQUIRED = ("name", "protocol", "resolutions", "durations")
# (min field, max field) pairs that must not be crossed.
_RANGES = (("image_min_px", "image_max_px"), ("image_min_aspect", "image_max_aspect"),
           ("audio_min_s", "audio_max_s"), ("clip_min_s", "clip_max_s"),
           ("clip_min_px", "clip_max_px"), ("clip_min_aspect", "clip_max_aspect"))

Raw = dict[str, object]

DEFAULT_I2V_MODEL = "wan2.2-i2v-flash"
DEFAULT_KF2V_MODEL = "wan2.2-kf2v-flash"

# Which user file the catalogue merges. Chosen here, not in wanvid.models, so that every
# command can choose it without loading the models; wanvid.models reads the choice (and
# rereads a changed file) on its next lookup.
_user_path: Path | None = None  # None: the default place
_user_set = False
_choices = 0  # how many times a file was chosen


def use_user_catalogue(path: Path | None, *, explicit: bool = True) -> None:
    """Merge the user's catalogue at ``path`` from the next lookup on (the CLI passes
    ``Environment.config_dir / "models.toml"`` once per run; the emulator its ``--models``
    file). ``explicit=False`` goes back to the default place ($WANVID_CONFIG_DIR or the
    platform's config dir). A changed file is read again."""
    global _user_path, _user_set, _choices
    _user_path, _user_set = (path, True) if explicit else (None, False)
    _choices += 1


def user_catalogue_path() -> Path | None:
    """The user's models.toml that the catalogue merges (it may not exist)."""
    return _user_path if _user_set else default_user_path()


def user_choice() -> int:
    """Changes whenever ``use_user_catalogue`` is called."""
    return _choices


def default_user_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$WANVID_CONFIG_DIR/models.toml``, else in the platform's user config dir (the
    directory of config.toml; the CLI uses ``Environment.config_dir``)."""
    env = os.environ if environ is None else environ
    override = env.get("WANVID_CONFIG_DIR")
    if override:
        return Path(override).expanduser() / USER_FILE
    from platformdirs import user_config_dir

    return Path(user_config_dir("wanvid")) / USER_FILE


def file_key(path: Path | None) -> tuple[object, ...]:
    """What identifies one version of the user's file (path, inode, size, mtime); a missing
    file has its own key, so creating it is noticed."""
    if path is None:
        return (None,)
    try:
        st = os.stat(path)
    except OSError:
        return (str(path), None)
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns)


def _shown(value: object) -> str:
    from wanvid.sanitize import one_line

    return one_line(value, 100)


def read_user_file(path: Path) -> str | None:
    """The text of the user's models.toml, or None when there is none (exit 2 if unusable)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block the open
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise BadInputError(f"{path}: cannot read the model catalogue ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadInputError(f"{path}: not a regular file; the model catalogue must be a "
                                "TOML file (or a symlink to one)")
        if st.st_size > MAX_BYTES:
            raise BadInputError(f"{path}: {st.st_size} bytes; a model catalogue may be at "
                                f"most {MAX_BYTES // 1024} KiB")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES:  # the size may change after fstat: read bounded anyway
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BYTES:
            raise BadInputError(f"{path}: more than {MAX_BYTES // 1024} KiB; a model "
                                "catalogue may be at most that")
    except OSError as e:
        raise BadInputError(f"{path}: cannot read the model catalogue ({e.strerror})") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"{path}: not UTF-8 text; a model catalogue is a TOML file") from None


def parse_entries(text: str, where: str) -> list[Raw]:
    """The ``[[model]]`` tables of a catalogue file (exit 2 naming ``where`` when malformed)."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BadInputError(f"{where}: not valid TOML: {e}; fix or delete the file") from None
    except RecursionError:  # arrays or tables nested thousands deep
        raise BadInputError(f"{where}: nested too deeply to be a model catalogue; fix or "
                            "delete the file") from None
    extra = sorted(set(data) - {"model"})
    if extra:
        raise BadInputError(f"{where}: unknown table or key {_shown(extra[0])!r}; the file holds "
                            "only [[model]] tables")
    entries = data.get("model", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise BadInputError(f"{where}: 'model' must be an array of tables ([[model]])")
    return entries


def _type_error(label: str, name: str, want: str, value: object) -> BadInputError:
    from wanvid.sanitize import describe

    return BadInputError(f"{label}: field {name!r} must be {want}, not {describe(value)}")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)  # type: ignore[arg-type]


def check_types(entry: Raw, label: str) -> None:
    """Each field of a user entry has the type ``wanvid models --json`` shows for it."""
    from wanvid.models import Model

    types = {f.name: str(f.type) for f in fields(Model)}
    for name, value in entry.items():
        t = types.get(name)
        if name in DERIVED:
            continue
        if t is None:
            import difflib

            close = difflib.get_close_matches(name, list(types) + list(DERIVED), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BadInputError(f"{label}: unknown field {_shown(name)!r}{hint}")
        if name == "durations":
            if isinstance(value, str):
                continue  # a "min..max" range: checked where it is expanded
            if not (isinstance(value, list) and value and all(_is_int(x) and x > 0
                                                              for x in value)):
                raise _type_error(label, name, 'a list of whole seconds or a range like "2..15"',
                                  value)
            continue
        if t == "str":
            ok, want = isinstance(value, str), "a string"
        elif t == "bool":
            ok, want = isinstance(value, bool), "true or false"
        elif t == "int":
            ok, want = _is_int(value) and value >= 0, "a whole number >= 0"  # type: ignore[operator]
        elif t == "float":
            ok, want = _is_num(value) and value >= 0, "a number >= 0"  # type: ignore[operator]
        elif t == "tuple[str, ...]":
            ok, want = (isinstance(value, list) and all(isinstance(x, str) for x in value),
                        "a list of strings")
        elif t == "tuple[tuple[str, ...], ...]":
            ok = isinstance(value, list) and all(
                isinstance(c, list) and all(isinstance(x, str) for x in c) for c in value)
            want = "a list of lists of strings"
        elif t == "dict[str, str]":
            ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
            want = "a table of strings"
        else:  # pragma: no cover - a new Model field type needs a rule here
            ok, want = True, t
        if not ok:
            raise _type_error(label, name, want, value)
    name = entry.get("name")
    if isinstance(name, str) and not NAME_RE.fullmatch(name):
        raise BadInputError(f"{label}: field 'name' must be letters, digits, '.', '-' or '_' "
                            "(at most 100), as the service spells model names")
    for alias in entry.get("aliases") or ():  # type: ignore[attr-defined]
        if not NAME_RE.fullmatch(alias):
            raise BadInputError(f"{label}: field 'aliases': {_shown(alias)!r} is not a model name")


def check_ranges(entry: Raw, label: str) -> None:
    """Limits that contradict each other (a minimum above its maximum; no account capacity)."""
    for lo, hi in _RANGES:
        a, b = entry.get(lo), entry.get(hi)
        if _is_num(a) and _is_num(b) and a and b and a > b:  # type: ignore[operator]
            raise BadInputError(f"{label}: field {lo!r} ({a}) is above {hi!r} ({b})")
    for name, least, most in (("submits_per_second", 0.01, 1000), ("concurrent_tasks", 1, 1000)):
        if name in entry and not (_is_num(entry[name])
                                  and least <= entry[name] <= most):  # type: ignore[operator]
            raise BadInputError(f"{label}: field {name!r} must be between {least} and {most}")
    if entry.get("resolutions") == []:
        raise BadInputError(f"{label}: field 'resolutions' must list at least one resolution")


def _fill_new(entry: Raw, label: str) -> Raw:
    """A new user model: the required fields, and neutral defaults (marked unconfirmed) for
    the others."""
    from wanvid.models import REGION_IDS, Model, _durations

    missing = [f for f in REQUIRED if f not in entry
               and not (f == "protocol" and "kind" in entry)]  # older entries: kind
    if missing:
        raise BadInputError(f"{label}: field {missing[0]!r} is missing (a new model needs "
                            f"{', '.join(REQUIRED)})")
    out = dict(entry)
    durations = _durations_or_error(out["durations"], label, _durations)
    res = out["resolutions"]
    assert isinstance(res, list)
    defaults: dict[str, object] = {
        "default_resolution": res[0] if res else "",
        "default_duration": 5 if 5 in durations else min(durations),
        "audio_mode": "auto" if "audio" not in entry else ("auto" if entry["audio"] else "silent"),
        "prompt_max": 800, "fps": 30,
    }
    unconfirmed = list(out.get("unconfirmed") or [])  # type: ignore[call-overload]
    for k, v in defaults.items():
        if k not in out:
            out[k] = v
            if k != "audio_mode" or "audio" not in entry:
                unconfirmed.append(k)
    if out.get("protocol", entry.get("kind")) == "media" and "media" not in out:
        out["media"] = ["first_frame"]  # the one input every media model takes
    if "regions" not in out:
        out["regions"] = []
        out.setdefault("regions_unconfirmed", list(REGION_IDS))
    # Limits left out are not enforced: Model's own defaults are the Nov 2025 reference's.
    limit_fields = [f.name for f in fields(Model)
                    if f.name.startswith(("image_", "audio_", "clip_"))
                    and f.name not in ("audio_track",)]
    unconfirmed += [f for f in limit_fields if f not in out]
    out["unconfirmed"] = list(dict.fromkeys(unconfirmed))
    return out


def _durations_or_error(value: object, label: str, expand: object) -> list[int]:
    from wanvid.models import CatalogueError

    try:
        d = expand(value, label)  # type: ignore[operator]
    except CatalogueError as e:
        raise BadInputError(str(e)) from None
    assert isinstance(d, list)
    if not d:
        raise BadInputError(f"{label}: field 'durations' must list at least one duration")
    return d


def merge(shipped: list[Raw], user: Iterable[Raw], where: str) -> list[tuple[Raw, str]]:
    """Shipped and user entries as (raw entry, origin), shipped order first (overridden
    entries in place), then the user's new models in file order. Exit 2 naming ``where``,
    the entry and the field for a bad user entry."""
    index: dict[str, int] = {}
    for i, e in enumerate(shipped):
        for n in (e.get("name"), *(e.get("aliases") or ())):  # type: ignore[misc]
            index[str(n).lower()] = i
    out: list[tuple[Raw, str]] = [(dict(e), "shipped") for e in shipped]
    seen: dict[str, int] = {}
    for pos, entry in enumerate(user, 1):
        name = entry.get("name")
        label = f"{where}: model {_shown(name)!r}" if isinstance(name, str) else \
            f"{where}: model #{pos}"
        if not isinstance(name, str):
            raise BadInputError(f"{label}: field 'name' is missing (each [[model]] needs one)")
        check_types(entry, label)
        check_ranges(entry, label)
        key = name.lower()
        if key in seen:
            raise BadInputError(f"{label}: defined twice in the file (entries #{seen[key]} "
                                f"and #{pos})")
        seen[key] = pos
        given = {k: v for k, v in entry.items() if k != "origin"}
        if key in index:
            i = index[key]
            base = out[i][0]
            given["name"] = base["name"]  # an alias overrides the model it names
            out[i] = ({**base, **given}, "user-override")
        else:
            out.append((_fill_new(given, label), "user"))
    return out


def build(shipped_text: str, user_path: Path | None) -> list[tuple[Raw, str, str]]:
    """(raw entry, origin, where) for every model: the shipped file merged with the user's."""
    shipped_where = "wanvid/data/models.toml"
    try:
        shipped = parse_entries(shipped_text, shipped_where)
    except BadInputError as e:  # a bug in wanvid, not the user's input
        from wanvid.models import CatalogueError

        raise CatalogueError(e.message) from None
    user: list[Raw] = []
    where = str(user_path) if user_path is not None else ""
    if user_path is not None:
        text = read_user_file(user_path)
        if text is not None:
            user = parse_entries(text, where)
    merged = merge(shipped, user, where)
    return [(e, origin, shipped_where if origin == "shipped" else where)
            for e, origin in merged]


def unknown_model_error(name: str, known: list[str], user_path: Path | None,
                        flag: str = "--model") -> BadInputError:
    """An unknown model: the closest known names and how to teach wanvid a new one."""
    import difflib

    close = difflib.get_close_matches(name.strip().lower(), known, n=3, cutoff=0.6)
    msg = f"{flag}: unknown model {_shown(name)!r}"
    msg += (f"; did you mean {' or '.join(close)}?" if close
            else "; see `wanvid models` for the known ones.")
    where = str(user_path) if user_path is not None else f"the config directory's {USER_FILE}"
    return BadInputError(msg + f" To use a model wanvid does not know yet, describe it in a "
                         f"[[model]] table in {where} (README \"Your own models\")")
