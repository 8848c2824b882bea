"""Progress display on stderr.

* ``RichReporter``: on a terminal, one live display for all tasks: a row per task (the
  input's stem, or the saved file's once it is saved, a short id, the status in colour,
  elapsed time, and during a download a bar, size and speed). Every row is cut to the
  terminal's width, never wrapped; anything else written to stderr meanwhile (errors,
  notes) is printed above the rows, never into them. Colour follows the terminal and
  ``NO_COLOR``.
* ``PlainReporter``: not on a terminal (CI logs, pipes) or with ``CI=true``: no bars,
  no spinner frames, one plain line per status change and per finished download, and a
  heartbeat: every unfinished task with no line for ``HEARTBEAT`` seconds gets one (status,
  or during a download the bytes so far and the total when known; elapsed), so CI's
  no-output watchdogs see the wait is alive.
* ``QuietReporter``: ``-q``: nothing but errors.

``make_reporter`` picks one from the environment; rich is imported only for the first.
Sizes are in binary units (``wanvid.units``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from wanvid.context import Environment
from wanvid.render import fmt_duration
from wanvid.units import human_pair, human_rate, human_size

__all__ = ["HEARTBEAT", "PlainReporter", "QuietReporter", "RichReporter", "human_size",
           "make_reporter", "row_cells"]

HEARTBEAT = 30.0  # seconds without a line about a task before a plain "still waiting" line

Namer = Callable[[str], str]  # task id -> a short name for it (the input's stem), or ""


class QuietReporter:
    def __init__(self, env: Environment | None = None) -> None:
        self.env = env

    def out(self, line: str) -> None:
        if self.env is not None:
            self.env.out(line)

    def add_task(self, task_id: str) -> None:
        pass

    def status(self, task_id: str, status: str, elapsed: float) -> None:
        pass

    def download_progress(self, task_id: str, done: int, total: int | None) -> None:
        pass

    def download_done(self, task_id: str, path: Path, size: int, skipped: bool) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def upload_progress(self, label: str, done: int, total: int) -> None:
        pass

    def upload_done(self, label: str, size: int, reused: bool, seconds: float) -> None:
        pass

    def result(self, line: str) -> None:
        """A result line for stdout (paths, URLs, JSON)."""
        self.out(line)

    def close(self) -> None:
        pass


class PlainReporter(QuietReporter):
    """One line per event, for logs. Download progress is not drawn, only its end.

    The heartbeat: ``beat()`` writes one line for each unfinished task that has had no
    line for ``heartbeat`` seconds (its status and elapsed time). ``start()`` runs it from
    a daemon thread about once a second, whatever the polling loop does; tests call
    ``beat()`` on an injected clock instead."""

    def __init__(self, env: Environment, *, heartbeat: float = HEARTBEAT,
                 clock: Callable[[], float] | None = None) -> None:
        self.env = env
        self.heartbeat = heartbeat
        self.clock = clock or env.monotonic
        self.lock = threading.Lock()
        self.waiting: dict[str, list[Any]] = {}  # unfinished task -> [status, started, said]
        self.finished: dict[str, float] = {}  # task done at the service -> started
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def _err(self, line: str, task_id: str | None = None) -> None:
        with self.lock:
            self.env.err(line)
            if task_id in self.waiting:
                self.waiting[task_id][2] = self.clock()

    def add_task(self, task_id: str) -> None:
        with self.lock:
            now = self.clock()
            self.waiting.setdefault(task_id, ["QUERYING", now, now])

    def status(self, task_id: str, status: str, elapsed: float) -> None:
        from wanvid.statuses import TERMINAL

        self.add_task(task_id)
        with self.lock:
            w = self.waiting[task_id]
            w[0], w[1] = status, self.clock() - elapsed
        self._err(f"wanvid: {task_id} {status} ({elapsed:.0f}s)", task_id)
        # ERROR: the wait gave up on it (its query was refused, or failed too often).
        if status in TERMINAL or status == "ERROR":  # a download, if one follows, brings it back
            with self.lock:
                self.finished[task_id] = self.waiting.pop(task_id, [status, 0.0, 0.0])[1]

    def download_progress(self, task_id: str, done: int, total: int | None) -> None:
        # The heartbeat then says the video is downloading and how far it has come, from
        # the request on (the download reports before the storage host answers), never
        # the status the task had before ("QUERYING" for `wanvid download ID`).
        got = ("nothing received yet" if not done and total is None
               else f"{human_pair(done, total)} so far")
        with self.lock:
            now = self.clock()
            w = self.waiting.setdefault(
                task_id, ["downloading", self.finished.pop(task_id, now), now])
            w[0] = f"downloading: {got}"

    def download_done(self, task_id: str, path: Path, size: int, skipped: bool) -> None:
        with self.lock:
            self.waiting.pop(task_id, None)
        verb = "already saved" if skipped else "saved"
        self._err(f"wanvid: {task_id} {verb} {path} ({human_size(size)})")

    def beat(self) -> None:
        """One line for each unfinished task that has had none for ``heartbeat`` s."""
        with self.lock:
            now = self.clock()
            due = [(tid, w[0], now - w[1]) for tid, w in self.waiting.items()
                   if now - w[2] >= self.heartbeat]
        for tid, status, elapsed in due:
            self._err(f"wanvid: {tid} still {status} ({fmt_duration(elapsed)} elapsed)", tid)

    def start(self) -> PlainReporter:
        def run() -> None:
            if self.heartbeat == float("inf"):
                return
            while not self.stopped.wait(min(1.0, self.heartbeat / 4)):
                try:
                    self.beat()
                except Exception:  # a closed stderr: the heartbeat just stops
                    return

        self.thread = threading.Thread(target=run, name="wanvid-heartbeat", daemon=True)
        self.thread.start()
        return self

    def note(self, message: str) -> None:
        self._err(f"wanvid: {message}")

    def upload_done(self, label: str, size: int, reused: bool, seconds: float) -> None:
        if reused:
            self._err(f"wanvid: {label} already uploaded ({human_size(size)}); reusing it")
        else:
            self._err(f"wanvid: uploaded {label} ({human_size(size)}, {seconds:.1f} s)")

    def close(self) -> None:
        self.stopped.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=2)


# --- the live display ----------------------------------------------------------------------

STYLES = {
    "QUERYING": "dim", "PENDING": "blue", "RUNNING": "yellow", "SUCCEEDED": "green",
    "SAVING": "cyan", "SAVED": "bold green", "UPLOADING": "cyan", "UPLOADED": "green",
    "FAILED": "bold red", "CANCELED": "bold red", "UNKNOWN": "bold red",
    "EXPIRED": "bold red", "ERROR": "bold red",
}
DONE = frozenset({"SAVED", "UPLOADED", "FAILED", "CANCELED", "UNKNOWN", "EXPIRED", "ERROR"})
NAME_MAX = 24
ID_SHOWN = 8  # a task id is a UUID: its first 8 characters tell tasks apart on one screen


@dataclass
class Row:
    name: str
    tid: str
    status: str
    started: float
    ended: float | None = None
    done: int = 0
    total: int | None = None
    saving: bool = False
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=20))

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, an ellipsis marking a cut."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[:width - 1] + "…"


def short_id(tid: str) -> str:
    return tid if len(tid) <= ID_SHOWN + 1 else tid[:ID_SHOWN] + "…"


def row_cells(row: Row, now: float, width: int) -> list[tuple[str, str]]:
    """One row as (text, style) pieces whose texts together fit in ``width - 1`` columns
    (the last column is left free: a terminal may wrap a line that fills it)."""
    room = max(1, width - 1)
    elapsed = fmt_duration((row.ended if row.ended is not None else now) - row.started)
    status = f"{row.status:<9}"
    fixed = [f" {short_id(row.tid)}", " ", status, f" {elapsed:>6}"]
    tail = ""
    if row.saving:
        pair, rate = human_pair(row.done, row.total), row.rate()
        extra = f" {pair}" + (f" {human_rate(rate)}" if rate is not None and row.status
                              not in DONE else "")
        left = room - sum(map(len, fixed)) - min(len(row.name), 12) - len(extra) - 1
        bar_w = max(0, min(20, left - 2))
        if bar_w >= 5 and row.total:
            filled = min(bar_w, round(bar_w * row.done / row.total))
            tail = " " + "━" * filled + "─" * (bar_w - filled) + extra
        else:
            tail = extra
    name_w = max(4, min(NAME_MAX, room - sum(map(len, fixed)) - len(tail)))
    name = f"{cut(row.name or row.tid, name_w):<{name_w}}"
    cells = [(name, "bold"), (fixed[0], "dim"), (fixed[1], ""),
             (status, STYLES.get(row.status, "")), (fixed[3], ""), (tail, "")]
    out: list[tuple[str, str]] = []
    used = 0
    for text, style in cells:  # never more than the room, whatever the pieces measured
        text = text[:max(0, room - used)]
        used += len(text)
        out.append((text, style))
    return out


class _AboveRows:
    """A text stream that prints each complete line above the live rows (as the display's
    console's output), so stderr lines never land inside a row."""

    def __init__(self, print_line: Callable[[str], None], original: IO[str]) -> None:
        self.print_line = print_line
        self.original = original
        self.buf = ""

    def write(self, s: str) -> int:
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self.print_line(line)
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.original.fileno()


class RichReporter(QuietReporter):
    """The live rows, drawn on stderr with rich (see the module docstring)."""

    def __init__(self, env: Environment, *, namer: Namer | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        if isinstance(env.stderr, _AboveRows):  # one live display at a time (a batch's)
            raise RuntimeError("a live display is already on")
        self.env = env
        self.namer = namer
        self.clock = clock or env.monotonic
        self.lock = threading.RLock()
        self.original_stderr = env.stderr
        self.console = Console(file=env.stderr, no_color=env.no_color, force_terminal=True,
                               highlight=False)
        self.rows: dict[str, Row] = {}
        self.pending_results: list[str] = []
        self.live = Live(self, console=self.console, refresh_per_second=4, transient=False,
                         redirect_stdout=False, redirect_stderr=False)
        self.live.start()
        env.stderr = _AboveRows(self._print_above, self.original_stderr)  # type: ignore[assignment]

    # rich calls this (from its refresh thread) to draw the rows
    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.text import Text

        width = min(options.max_width, console.width)
        with self.lock:
            now = self.clock()
            rows = list(self.rows.values())
        for row in rows:
            text = Text(no_wrap=True, overflow="crop", end="\n")
            for piece, style in row_cells(row, now, width):
                text.append(piece, style=style or None)
            yield text

    def _print_above(self, line: str) -> None:
        from rich.text import Text

        style = "bold red" if line.startswith("wanvid: error") else (
            "yellow" if line.startswith("wanvid: warning") else None)
        # Not under self.lock: rich's refresh thread holds its own lock while it asks for
        # the rows (which takes self.lock).
        self.console.print(Text(line, style=style or ""), soft_wrap=True)

    def _row(self, key: str, name: str = "", tid: str = "", status: str = "QUERYING") -> Row:
        if key not in self.rows:
            if not name and self.namer is not None:
                try:
                    name = self.namer(key)
                except Exception:  # a name is a nicety: never let it end the wait
                    name = ""
            self.rows[key] = Row(name=name, tid=tid or key, status=status,
                                 started=self.clock())
        return self.rows[key]

    def add_task(self, task_id: str) -> None:
        with self.lock:
            self._row(task_id)

    def status(self, task_id: str, status: str, elapsed: float) -> None:
        with self.lock:
            row = self._row(task_id)
            row.status = status
            row.started = self.clock() - elapsed
            if status in DONE:
                row.ended = self.clock()

    def download_progress(self, task_id: str, done: int, total: int | None) -> None:
        with self.lock:
            row = self._row(task_id)
            row.status, row.done, row.total, row.saving = "SAVING", done, total, True
            row.samples.append((self.clock(), done))

    def download_done(self, task_id: str, path: Path, size: int, skipped: bool) -> None:
        with self.lock:
            row = self._row(task_id)
            row.status, row.done, row.total, row.saving = "SAVED", size, size, True
            stem = Path(path).stem
            if task_id not in stem:  # the file's own name says more than "{task_id}.mp4"
                row.name = stem
            row.ended = self.clock()
        verb = "already saved" if skipped else "saved"
        self._print_above(f"{task_id} {verb} {path} ({human_size(size)})")

    def note(self, message: str) -> None:
        self._print_above(message)

    def upload_progress(self, label: str, done: int, total: int) -> None:
        with self.lock:
            row = self._row("upload " + label, name=label, tid="upload", status="UPLOADING")
            row.done, row.total, row.saving = done, total, True
            row.samples.append((self.clock(), done))

    def upload_done(self, label: str, size: int, reused: bool, seconds: float) -> None:
        key = "upload " + label
        with self.lock:
            row = self.rows.get(key)
            if row is not None:
                row.status, row.done, row.total, row.ended = "UPLOADED", size, size, self.clock()
        if row is None and reused:
            self._print_above(f"{label} already uploaded ({human_size(size)}); reusing it")

    def result(self, line: str) -> None:
        # A result line on a terminal would tear the live display: hold it until the end.
        if self.env.stdout_isatty:
            self.pending_results.append(line)
        else:
            self.env.out(line)

    def close(self) -> None:
        if self.env.stderr is not self.original_stderr:
            self.env.stderr = self.original_stderr
            self.live.stop()
        for line in self.pending_results:
            self.env.out(line)
        self.pending_results.clear()


def make_reporter(env: Environment, *, quiet: bool = False,
                  namer: Namer | None = None) -> QuietReporter:
    if quiet:
        return QuietReporter(env)
    if env.interactive:
        return RichReporter(env, namer=namer)
    return PlainReporter(env, heartbeat=heartbeat_seconds(env)).start()


def heartbeat_seconds(env: Environment) -> float:
    """``WANVID_HEARTBEAT`` (seconds; 0 or less: no heartbeat), else ``HEARTBEAT``."""
    raw = (env.get("WANVID_HEARTBEAT") or "").strip()
    try:
        value = float(raw) if raw else HEARTBEAT
    except ValueError:
        value = HEARTBEAT
    return value if value > 0 else float("inf")
