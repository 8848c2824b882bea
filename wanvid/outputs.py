"""Output naming (templates, sanitising) and whether an output location is usable
(checked before a task is paid for).

A video can only be saved if its directory exists or can be created, is a directory (not
a regular file somewhere on the way) and is writable. For a template such as
``out/{model}/{stem}.mp4`` the fixed leading part (``out/``) is what can be checked before
the task exists; the rest depends on the task.
"""

from __future__ import annotations

import os
import re
import stat
import string
import tempfile
import unicodedata
from pathlib import Path

from wanvid.errors import BadInputError


def fixed_directory(template: str | None, output_dir: Path | None = None) -> Path:
    """The directory a video saved under ``template`` certainly lands in (or below):
    the template's leading path components without a placeholder, under ``output_dir``."""
    base = Path(output_dir).expanduser() if output_dir is not None else Path()
    if not template:
        return base
    text = template.replace("\\", "/")
    is_dir = text.endswith("/")
    parts = text.split("/")
    if not is_dir:
        if "{" not in text and (base / Path(template).expanduser()).is_dir():
            return base / Path(template).expanduser()
        parts = parts[:-1]  # the file name
    fixed: list[str] = []
    for part in parts:
        if "{" in part:
            break
        fixed.append(part)
    if not fixed:
        return base
    joined = "/".join(fixed) or "/"  # a template starting with "/" is absolute
    return base / Path(joined).expanduser()


def check_output(template: str | None, output_dir: Path | None = None, *,
                 flag: str = "-o") -> None:
    """``BadInputError`` (exit 2, nothing sent) when videos cannot be saved under
    ``template``: a regular file stands where a directory must be, or the deepest existing
    directory on the way cannot be written (read-only file system, permissions)."""
    target = fixed_directory(template, output_dir)
    shown = f"{flag} {template}" if template else "the output directory"
    probe = target
    while True:
        try:
            st = probe.stat()
        except FileNotFoundError:
            if probe.parent == probe:
                return
            probe = probe.parent
            continue
        except NotADirectoryError:
            probe = probe.parent  # something above is a file: found on the next step
            continue
        except OSError as e:
            raise BadInputError(f"{shown}: cannot use {probe}: {e.strerror}; choose another "
                                f"{flag} (nothing was sent)") from None
        break
    if not stat.S_ISDIR(st.st_mode):
        what = (f"{probe} is a file, not a directory" if probe == target
                else f"{probe} is a file, so {target} cannot be created")
        raise BadInputError(f"{shown}: {what}; choose another {flag} (nothing was sent)")
    try:
        fd, name = tempfile.mkstemp(prefix=".wanvid-check-", dir=probe)
    except OSError as e:
        raise BadInputError(f"{shown}: cannot write in {probe} ({e.strerror}); choose another "
                            f"{flag} (nothing was sent)") from None
    os.close(fd)
    os.unlink(name)


def shown_bytes(value: str) -> str:
    """A name that is no valid UTF-8, shown with its undecodable bytes as ``\\xe9``."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def check_text(value: str | None, what: str, fix: str) -> None:
    """``BadInputError`` (exit 2, nothing sent) when ``value`` (a file name, an output
    template, a prompt) is no valid UTF-8, as a file name of undecodable bytes is (Python
    holds its bytes as surrogates): wanvid keeps names and prompts as UTF-8 text (the
    request, the journal, JSON output), so such a name is refused before anything is
    sent rather than failing on the way."""
    if value is None:
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        from wanvid.sanitize import one_line

        raise BadInputError(f"{what} {one_line(shown_bytes(value), 80)}: not valid UTF-8 "
                            f"(wanvid keeps names and prompts as UTF-8 text); {fix} "
                            "(nothing was sent)") from None


def absolute_template(template: str, cwd: Path, output_dir: Path | None = None) -> str:
    """The -o path or template as the journal keeps it: absolute (``~`` expanded, a
    relative one joined to ``output_dir`` and ``cwd``), so a later run from another
    directory saves where this one would have. Joined as text, never normalised:
    ``shown_path`` gives back the typed form (``../x.mp4`` included) from ``cwd``."""
    text = os.path.expanduser(template)
    if os.path.isabs(text):
        return text
    base = Path(output_dir).expanduser() if output_dir is not None else Path()
    if not base.is_absolute():
        base = cwd / base
    return os.path.join(os.fspath(base), text)


def shown_path(path: Path, cwd: Path) -> Path:
    """A video's path as wanvid prints it when its name came from the journal (absolute):
    relative to ``cwd`` when it lies under it (what the user typed there), else as is."""
    if not path.is_absolute():
        return path
    try:
        return path.relative_to(cwd)
    except ValueError:
        return path


PLACEHOLDERS = ("task_id", "model", "stem", "seed", "date")
SANITIZE_MAX = 80  # characters per substituted value

# --- naming --------------------------------------------------------------------

_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}


def sanitize(part: str) -> str:
    """Make a value from the service safe as (part of) one file name: no path separators,
    no ``..``, no control characters, no leading dots or dashes, at most 80 characters."""
    s = unicodedata.normalize("NFC", str(part))
    s = "".join("_" if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") else c
                for c in s)  # Cs: a file name's undecodable bytes (os.fsdecode surrogates)
    s = _UNSAFE.sub("_", s)
    s = re.sub(r"\.{2,}", ".", s)
    s = s.strip().lstrip(".-").strip()
    s = s[:SANITIZE_MAX].rstrip(". ")
    while len(s.encode("utf-8")) > 2 * SANITIZE_MAX:
        s = s[:-1]
    if s.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        s = "_" + s
    return s or "_"


def _template_fields(template: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise BadInputError(f"-o {template!r}: {e}") from e
    return [field for _, field, _, _ in parsed if field is not None]


def _literal_tail(template: str) -> str:
    """The literal text after the last placeholder (where a user-written suffix lives)."""
    items = list(string.Formatter().parse(template))
    if not items:
        return ""
    literal, field = items[-1][0], items[-1][1]
    return literal if field is None else ""


def output_path(template: str | None, *, task_id: str, model: str = "", stem: str = "",
                seed: int | None = None, date: str = "",
                output_dir: Path | None = None) -> Path:
    """Where to save a task's video.

    ``template`` None -> ``{task_id}.mp4`` (in ``output_dir``, else the current directory);
    an existing directory or anything ending in ``/`` -> ``DIR/{task_id}.mp4``; otherwise a
    file name, optionally with ``{task_id}``, ``{model}``, ``{stem}``, ``{seed}`` and
    ``{date}``; ``.mp4`` is added when the name has no suffix of its own. Every substituted
    value is passed through ``sanitize`` (task ids and model names come from the service).
    """
    base = Path(output_dir).expanduser() if output_dir is not None else Path()
    default_name = f"{sanitize(task_id)}.mp4"
    if not template:
        return base / default_name

    fields = _template_fields(template)
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        shown = ", ".join("{" + f + "}" for f in unknown)
        allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        raise BadInputError(f"-o {template!r}: unknown placeholder {shown}; "
                            f"allowed: {allowed}")
    values: dict[str, str] = {
        "task_id": sanitize(task_id),
        "model": sanitize(model),
        "stem": sanitize(stem),
        "seed": sanitize(str(seed)) if seed is not None else "noseed",
        "date": sanitize(date),
    }
    try:
        rendered = template.format_map(values)
    except (ValueError, IndexError, KeyError) as e:
        raise BadInputError(f"-o {template!r}: {e}") from e

    is_dir = rendered.endswith(("/", os.sep)) or (os.altsep and rendered.endswith(os.altsep))
    path = base / Path(rendered).expanduser()
    if is_dir or path.is_dir():
        return path / default_name
    # Only a suffix the user wrote counts: "{model}" must not end in ".2-i2v-flash".
    tail = _literal_tail(template.replace("\\", "/").rsplit("/", 1)[-1])
    if not Path("x" + tail).suffix:
        path = path.with_name(path.name + ".mp4")
    return path


def depends_on(template: str | None, name: str, output_dir: Path | None = None) -> bool:
    """Whether the file a video is saved as under ``template`` changes with ``name``'s
    value (a placeholder; ``task_id`` also behind a directory's ``{task_id}.mp4``): when
    it does not, two tasks that differ only there are saved as one file."""
    sample: dict[str, str] = {"task_id": "t", "model": "m", "stem": "s", "date": "20260101"}
    other = {**sample, name: "u"}
    seeds = (1, 2) if name == "seed" else (1, 1)
    return (output_path(template, **sample, seed=seeds[0], output_dir=output_dir)
            != output_path(template, **other, seed=seeds[1], output_dir=output_dir))


def same_file(path: Path | str) -> str:
    """One key for every spelling of a file's name (``a.mp4``, ``./a.mp4``, absolute, a
    symlinked directory on the way): two tasks with one key would write one file."""
    try:
        return os.path.normcase(os.fspath(Path(path).expanduser().resolve()))
    except (OSError, RuntimeError):
        return os.path.normcase(os.path.abspath(os.path.expanduser(path)))


def check_template(output: str | None, flag: str = "-o") -> None:
    """Render an output template once with sample values, so a typo fails before a task is
    created (and paid for), not after; a name that is no valid UTF-8 is refused."""
    if not output:
        return
    check_text(output, flag, f"choose another {flag}")
    try:
        output_path(output, task_id="t", model="m", stem="s", seed=1, date="20260101")
    except BadInputError as e:
        raise BadInputError(f"{flag} {output}: {e.message}") from None
