"""The environment a command runs in: streams, tty flags, env vars, directories, clock.

Commands never reach for ``sys.stdout``, ``os.environ`` or ``time`` directly; they use an
``Environment``. Tests build one with their own streams, variables, directories and a
fake clock instead of patching globals (httpie's ``Environment`` / ``MockEnvironment``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from wanvid.errors import StdoutClosed  # noqa: F401 - re-exported


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """An environment variable's value; an empty (or blank) variable counts as unset."""
    value = environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


@dataclass
class Environment:
    """What a command runs in: its streams, variables, directories and clock."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stdin: TextIO = field(default_factory=lambda: _stdin())
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin_isatty: bool | None = None
    stdout_isatty: bool | None = None
    stderr_isatty: bool | None = None
    now: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    cwd: Path | None = None
    quiet: bool = False  # -q: no notes on stderr (warnings and errors still print)

    def __post_init__(self) -> None:
        if self.stdin_isatty is None:
            self.stdin_isatty = _isatty(self.stdin)
        if self.stdout_isatty is None:
            self.stdout_isatty = _isatty(self.stdout)
        if self.stderr_isatty is None:
            self.stderr_isatty = _isatty(self.stderr)

    def get(self, name: str) -> str | None:
        return env_value(self.environ, name)

    @property
    def config_dir(self) -> Path:
        override = self.get("WANVID_CONFIG_DIR")
        if override:
            return Path(override).expanduser()
        from platformdirs import user_config_dir

        return Path(user_config_dir("wanvid"))

    @property
    def journal_path(self) -> Path:
        """``$WANVID_STATE_DIR/journal.db``, else in the platform's user state dir."""
        from wanvid.journal import default_journal_path

        return default_journal_path(self.environ)

    @property
    def home(self) -> Path:
        return Path(self.get("HOME") or Path.home())

    @property
    def is_ci(self) -> bool:
        v = (self.get("CI") or "").lower()
        return v not in ("", "0", "false", "no")

    @property
    def interactive(self) -> bool:
        """True when live progress displays may be drawn (stderr is a terminal, not CI)."""
        return bool(self.stderr_isatty) and not self.is_ci and self.get("TERM") != "dumb"

    @property
    def no_color(self) -> bool:
        """NO_COLOR set to anything but the empty string (no-color.org)."""
        return bool(self.environ.get("NO_COLOR"))

    def out(self, line: str) -> None:
        """One line of result on stdout (control characters escaped; see ``sanitize``)."""
        from wanvid.sanitize import terminal

        try:
            self.stdout.write(terminal(line, keep="\n\t") + "\n")
            self.stdout.flush()
        except (OSError, ValueError, AttributeError):
            # `wanvid ... | head -1`: the reader is gone (or stdout is closed, `>&-`, or full,
            # `>/dev/full`). Stop quietly with the documented 141 (the task ids are in the
            # journal), stdout pointed at /dev/null so nothing complains at exit.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            raise StdoutClosed from None

    def err(self, line: str) -> None:
        """One human line on stderr: control characters and line breaks shown escaped, so
        nothing a server sent can act on the terminal or pass for a line of ours."""
        from wanvid.sanitize import terminal

        try:
            self.stderr.write(terminal(line, keep="\t") + "\n")
            self.stderr.flush()
        except (OSError, ValueError, AttributeError):
            # stderr closed (`2>&-`), full or gone: the human lines are lost, the work must
            # not be (a paid-for task goes on to its video).
            pass

    def note(self, line: str) -> None:
        """One line for humans about what is going on; silenced by ``-q``."""
        if not self.quiet:
            self.err(f"wanvid: {line}")

    def warn(self, line: str) -> None:
        self.err(f"wanvid: warning: {line}")


def _stdin() -> TextIO:
    """``sys.stdin``, or an empty stream when stdin is closed (``<&-``): a closed stdin
    reads as empty input, never as a crash."""
    if sys.stdin is None:
        import io

        return io.StringIO("")
    return sys.stdin


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False
