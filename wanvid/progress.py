"""Progress display on stderr.

* ``RichReporter``: on a terminal, one live display for all tasks: a row per task with
  its status and elapsed time, and during a download a bytes bar with speed and ETA.
* ``PlainReporter``: not on a terminal (CI logs, pipes) or with ``CI=true``: no bars,
  no spinner frames, one plain line per status change and per finished download.
* ``QuietReporter``: ``-q``: nothing but errors.

``make_reporter`` picks one from the environment; rich is imported only for the first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wanvid.context import Environment


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


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
    """One line per event, for logs. Download progress is not drawn, only its end."""

    def __init__(self, env: Environment) -> None:
        self.env = env

    def status(self, task_id: str, status: str, elapsed: float) -> None:
        self.env.err(f"wanvid: {task_id} {status} ({elapsed:.0f}s)")

    def download_done(self, task_id: str, path: Path, size: int, skipped: bool) -> None:
        verb = "already saved" if skipped else "saved"
        self.env.err(f"wanvid: {task_id} {verb} {path} ({human_size(size)})")

    def note(self, message: str) -> None:
        self.env.err(f"wanvid: {message}")

    def upload_done(self, label: str, size: int, reused: bool, seconds: float) -> None:
        if reused:
            self.env.err(f"wanvid: {label} already uploaded ({human_size(size)}); reusing it")
        else:
            self.env.err(f"wanvid: uploaded {label} ({human_size(size)}, {seconds:.1f} s)")


class RichReporter(QuietReporter):
    """A live table of tasks with download bars, drawn on stderr."""

    def __init__(self, env: Environment) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.text import Text

        class OnlyWhileSaving(ProgressColumn):
            """Shows the wrapped column only once a task's download has started."""

            def __init__(self, inner: ProgressColumn) -> None:
                super().__init__()
                self.inner = inner

            def render(self, task: Any) -> Any:
                return self.inner.render(task) if task.fields.get("saving") else Text("")

        self.env = env
        self.console = Console(file=env.stderr, no_color=env.no_color, force_terminal=True)
        self.progress = Progress(
            TextColumn("{task.fields[tid]}", style="bold"),
            TextColumn("{task.fields[status]:<9}"),
            TimeElapsedColumn(),
            OnlyWhileSaving(BarColumn(bar_width=30)),
            OnlyWhileSaving(DownloadColumn()),
            OnlyWhileSaving(TransferSpeedColumn()),
            OnlyWhileSaving(TimeRemainingColumn()),
            console=self.console,
            transient=False,
            refresh_per_second=4,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.rows: dict[str, Any] = {}
        self.pending_results: list[str] = []
        self.progress.start()

    def add_task(self, task_id: str) -> None:
        if task_id not in self.rows:
            self.rows[task_id] = self.progress.add_task("", tid=task_id, status="QUERYING",
                                                        total=None, start=True)

    def status(self, task_id: str, status: str, elapsed: float) -> None:
        self.add_task(task_id)
        self.progress.update(self.rows[task_id], status=status)

    def download_progress(self, task_id: str, done: int, total: int | None) -> None:
        self.add_task(task_id)
        self.progress.update(self.rows[task_id], status="SAVING", completed=done, total=total,
                             saving=True)

    def download_done(self, task_id: str, path: Path, size: int, skipped: bool) -> None:
        self.add_task(task_id)
        self.progress.update(self.rows[task_id], status="SAVED", completed=size, total=size,
                             saving=True)
        self.progress.console.print(f"{task_id} saved {path} ({human_size(size)})",
                                    markup=False, highlight=False)

    def note(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)

    def upload_progress(self, label: str, done: int, total: int) -> None:
        key = "upload " + label
        if key not in self.rows:
            self.rows[key] = self.progress.add_task("", tid=label, status="UPLOADING",
                                                    total=total, start=True)
        self.progress.update(self.rows[key], completed=done, total=total, saving=True)

    def upload_done(self, label: str, size: int, reused: bool, seconds: float) -> None:
        key = "upload " + label
        if key in self.rows:
            self.progress.update(self.rows[key], status="UPLOADED", completed=size,
                                 total=size, saving=True)
        elif reused:
            self.progress.console.print(f"{label} already uploaded ({human_size(size)}); "
                                        "reusing it", markup=False, highlight=False)

    def result(self, line: str) -> None:
        # A result line on a terminal would tear the live display: hold it until the end.
        if self.env.stdout_isatty:
            self.pending_results.append(line)
        else:
            self.env.out(line)

    def close(self) -> None:
        self.progress.stop()
        for line in self.pending_results:
            self.env.out(line)
        self.pending_results.clear()


def make_reporter(env: Environment, *, quiet: bool = False) -> QuietReporter:
    if quiet:
        return QuietReporter(env)
    if env.interactive:
        return RichReporter(env)
    return PlainReporter(env)
