"""Is an output location usable? Checked before a task is paid for.

A video can only be saved if its directory exists or can be created, is a directory (not
a regular file somewhere on the way) and is writable. For a template such as
``out/{model}/{stem}.mp4`` the fixed leading part (``out/``) is what can be checked before
the task exists; the rest depends on the task.
"""

from __future__ import annotations

import os
import stat
import tempfile
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
