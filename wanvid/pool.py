"""Downloads beside the polling loop: a small pool of worker threads.

The polling loop (``wanvid.poll.Waiter``) hands each finished task's download to a
``DownloadPool`` and goes on querying the other tasks; at most ``size`` videos come down at
once (default 4, ``downloads`` in the config, ``--downloads N``), the rest wait their turn
in order. Everything a download guarantees (``wanvid.download``: the locked ``.part``,
resume, verification, refused symlinks) holds in a worker as it does in the main thread.

What the workers hand back is collected by the polling loop, in the main thread, between
queries: outcomes are emitted (printed, journaled by the caller's callbacks) from there,
one at a time. On Ctrl-C the loop calls ``abandon``: the command's deadline is interrupted,
which shuts down every download's socket at once, so the ``.part`` files stay (closed and
unlocked) for ``wanvid wait --pending`` and nothing is renamed onto its final name.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from wanvid.net import Deadline

DEFAULT_DOWNLOADS = 4
ABANDON_GRACE = 2.0  # seconds the workers get to unwind after Ctrl-C

T = TypeVar("T")


class Abandoned(Exception):
    """The wait is over (Ctrl-C): this download stops where it is, its ``.part`` kept."""


@dataclass
class Done(Generic[T]):
    """A finished job: its key, and what it returned or raised."""

    key: str
    value: T | None = None
    error: BaseException | None = None


class DownloadPool(Generic[T]):
    """Runs jobs on at most ``size`` daemon threads, started as they are needed; results
    are collected without blocking (``collect``) or waited for (``wait``)."""

    def __init__(self, size: int = DEFAULT_DOWNLOADS, *, deadline: Deadline | None = None,
                 ) -> None:
        self.size = max(1, int(size))
        self.deadline = deadline
        self._cond = threading.Condition()
        self._jobs: deque[tuple[str, Callable[[], T]]] = deque()
        self._done: deque[Done[T]] = deque()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._running = 0
        self._closed = False
        self.abandoned = threading.Event()
        self.pending = 0  # submitted and not collected yet
        self.peak = 0  # most jobs that ran at once

    def submit(self, key: str, job: Callable[[], T]) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the download pool is closed")
            self._jobs.append((key, job))
            self.pending += 1
            if len(self._jobs) > self._idle and len(self._threads) < self.size:
                t = threading.Thread(target=self._work, name=f"wanvid-download-"
                                     f"{len(self._threads) + 1}", daemon=True)
                self._threads.append(t)
                t.start()
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                self._idle += 1
                while not self._jobs and not self._closed:
                    self._cond.wait()
                self._idle -= 1
                if not self._jobs:
                    return
                key, job = self._jobs.popleft()
                self._running += 1
                self.peak = max(self.peak, self._running)
            done: Done[T] = Done(key)
            try:
                if self.abandoned.is_set():
                    raise Abandoned
                done.value = job()
            except BaseException as e:  # handed to the main thread, which decides
                done.error = e
            with self._cond:
                self._running -= 1
                self._done.append(done)
                self._cond.notify_all()

    def collect(self) -> list[Done[T]]:
        """The jobs finished since the last call (never blocks)."""
        with self._cond:
            out = list(self._done)
            self._done.clear()
            self.pending -= len(out)
            return out

    def wait(self, timeout: float | None) -> bool:
        """Block until a finished job can be collected, at most ``timeout`` seconds (real
        time; None: until one can). True when one can."""
        with self._cond:
            if timeout is None:
                while not self._done and self.pending:
                    self._cond.wait(0.5)  # short waits: Ctrl-C is handled between them
            elif not self._done and self.pending:
                self._cond.wait(max(0.0, timeout))
            return bool(self._done)

    def check(self) -> None:
        """Raise ``Abandoned`` once the pool is abandoned (downloads' progress callback)."""
        if self.abandoned.is_set():
            raise Abandoned

    def close(self) -> None:
        """No more jobs: idle workers end (call once everything is collected)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abandon(self, grace: float = ABANDON_GRACE) -> None:
        """Stop everything (Ctrl-C): queued jobs are dropped, running downloads are cut
        (their sockets shut down through the deadline) and get ``grace`` seconds to unwind;
        a worker that does not is a daemon and dies with the process."""
        import time

        self.abandoned.set()
        with self._cond:
            self._closed = True
            self._jobs.clear()
            self._cond.notify_all()
        if self.deadline is not None:
            self.deadline.interrupt()
        end = time.monotonic() + grace
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(max(0.0, end - time.monotonic()))
