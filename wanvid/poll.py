"""The polling loop: wait for many tasks from one loop, then save each video at once.

* Adaptive schedule (``wanvid.pacing``): without history a task is first queried after
  ``interval`` seconds, then less often as it ages, toward the 15 s the reference
  recommends (``next_interval``); never more often than ``interval``. A 90 s task takes
  about a dozen queries, fewer than the official SDK's 1-5 s loop. With the journal's
  history of earlier tasks of the same model, resolution and duration (the service's
  submit, scheduled and end times, journaled when a task SUCCEEDED) it is queried once
  as completion becomes likely, then densely (every 1.5-3 s) until it ends: noticed
  within about 2 s, with under half the SDK's queries.
* One rate limiter (``RateLimiter``) for the whole loop: at most ``max_qps`` task queries
  per second however many tasks are waited on (the account allows 20/s in all).
* A 429 or 5xx answer, or a dropped connection, only delays that task (and, for 429,
  the whole loop): it is never fatal. A rejected key is.
* Every status change is journaled; on SUCCEEDED the video is handed to a pool of download
  threads (``wanvid.pool``, 4 at once by default) and the loop goes on polling the others.
* ``--timeout`` ends the loop: tasks still running are reported as timed out (exit 6),
  also when the deadline cuts a query or a download in progress.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from wanvid.errors import (
    AuthError,
    BusyError,
    DeadlineExceeded,
    ExitStatus,
    NetworkError,
    TaskFailedError,
    WanvidError,
    is_throttled,
)
from wanvid.pacing import AGE_FACTOR, MAX_INTERVAL, next_interval  # noqa: F401 - re-exported
from wanvid.retry import retry_delay
from wanvid.statuses import FAILED_STATES, TERMINAL

if TYPE_CHECKING:
    from wanvid.net import Deadline
    from wanvid.pacing import Sample
    from wanvid.pool import DownloadPool

log = logging.getLogger("wanvid.poll")

MAX_QUERY_ERRORS = 10  # consecutive failed queries of one task (not 429s) before exit 7


class RateLimiter:
    """Spaces calls at least ``1/rate`` seconds apart; ``penalize`` pauses everyone."""

    def __init__(self, rate: float, clock: Callable[[], float],
                 sleep: Callable[[float], None]) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.spacing = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0

    def acquire(self) -> None:
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.spacing

    def penalize(self, seconds: float) -> None:
        self._next = max(self._next, self.clock() + seconds)


class Reporter(Protocol):
    def add_task(self, task_id: str) -> None: ...
    def status(self, task_id: str, status: str, elapsed: float) -> None: ...
    def download_progress(self, task_id: str, done: int, total: int | None) -> None: ...
    def download_done(self, task_id: str, path: Path, size: int, skipped: bool) -> None: ...
    def note(self, message: str) -> None: ...
    def close(self) -> None: ...


class _Serialized:
    """A reporter called from several threads (the loop, the download workers), one call
    at a time; ``mute`` silences it (after Ctrl-C the display is closing)."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self._lock = threading.RLock()
        self._muted = False

    def mute(self) -> None:
        with self._lock:
            self._muted = True

    def add_task(self, task_id: str) -> None:
        with self._lock:
            if not self._muted:
                self.inner.add_task(task_id)

    def status(self, task_id: str, status: str, elapsed: float) -> None:
        with self._lock:
            if not self._muted:
                self.inner.status(task_id, status, elapsed)

    def download_progress(self, task_id: str, done: int, total: int | None) -> None:
        with self._lock:
            if not self._muted:
                self.inner.download_progress(task_id, done, total)

    def download_done(self, task_id: str, path: Path, size: int, skipped: bool) -> None:
        with self._lock:
            if not self._muted:
                self.inner.download_done(task_id, path, size, skipped)

    def note(self, message: str) -> None:
        with self._lock:
            if not self._muted:
                self.inner.note(message)

    def close(self) -> None:
        with self._lock:
            self.inner.close()


@dataclass
class Outcome:
    task_id: str
    status: str  # last known task status, or TIMEOUT
    exit_status: ExitStatus = ExitStatus.OK
    path: Path | None = None
    size: int | None = None
    sha256: str | None = None
    video_url: str | None = None
    code: str | None = None
    message: str | None = None
    usage: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.exit_status == ExitStatus.OK

    def reason(self) -> str:
        """Why it did not succeed, for a line: ``CODE: message``, the code left out when
        the service sent none (it is then the status, already on the line)."""
        if self.code and self.code != self.status:
            return f"{self.code}: {self.message}" if self.message else self.code
        return self.message or self.status

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"task_id": self.task_id, "status": self.status,
                             "exit_code": int(self.exit_status)}
        if self.path is not None:
            d["path"] = str(self.path)
            d["size"] = self.size
            d["sha256"] = self.sha256
        if self.video_url:
            d["video_url"] = self.video_url
        if self.code:
            d["code"] = self.code
        if self.message:
            d["message"] = self.message
        if self.usage:
            d["usage"] = self.usage
        if self.exit_status == ExitStatus.TIMEOUT or (
            self.exit_status == ExitStatus.NETWORK
        ):
            d["resume"] = f"wanvid wait {self.task_id}"
        return d


@dataclass
class Unrecorded:
    """A journal write that failed during a wait (the wait went on without it)."""

    task_id: str
    what: str  # "status SUCCEEDED", "download"
    message: str
    path: Path | None = None  # the saved video, for a download that was not recorded

    def line(self) -> str:
        saved = f" (the video is saved: {self.path})" if self.path is not None else ""
        return f"{self.task_id}: {self.what} not recorded{saved}"


def overall_exit(outcomes: list[Outcome]) -> ExitStatus:
    """5 if any task did not succeed; else 6 on a timeout; else the worst other code."""
    codes = {o.exit_status for o in outcomes}
    for s in (ExitStatus.TASK_FAILED, ExitStatus.TIMEOUT, ExitStatus.NETWORK,
              ExitStatus.OUTPUT, ExitStatus.REJECTED, ExitStatus.JOURNAL,
              ExitStatus.BAD_INPUT):
        if s in codes:
            return s
    return ExitStatus.OK


@dataclass(order=True)
class _Due:
    due: float
    seq: int
    task_id: str = field(compare=False)


Downloader = Callable[..., Any]


@dataclass
class WaitOptions:
    interval: float = 5.0
    timeout: float | None = None
    max_qps: float = 5.0
    download: bool = True
    force: bool = False
    busy_interval: float = 2.0  # re-check a video another process is downloading
    # The command's deadline, when it started before the wait (generate: before the
    # submit); shared with the client and the downloads, so a request in progress is cut.
    deadline: Deadline | None = None
    raise_unexpected: bool = False  # tests and --debug: let a bug surface as a traceback
    sidecar: bool = True  # write clip.json (+ clip.thumb.jpg) beside each saved video
    downloads: int = 4  # videos downloaded at once, beside the polling loop (wanvid.pool)
    batch: str | None = None  # the batch a sidecar names (gallery groups by it)


class Waiter:
    """Waits for a set of tasks; see the module docstring."""

    def __init__(self, *, client: Any, journal: Any, reporter: Reporter,
                 options: WaitOptions, dest_for: Callable[[str, dict[str, Any]], Path],
                 clock: Callable[[], float], wall: Callable[[], float],
                 sleep: Callable[[float], None], downloader: Downloader | None = None,
                 on_outcome: Callable[[Outcome], None] | None = None,
                 realtime: bool | None = None,
                 on_end: Callable[[str], None] | None = None,
                 on_drop: Callable[[str], None] | None = None,
                 shared_rate: Callable[[], float] | None = None) -> None:
        import time

        self.client = client
        self.journal = journal
        # Downloads report from pool workers: one call at a time reaches the display.
        self.reporter = _Serialized(reporter)
        # On the real clock a sleep of the loop ends early when a download finishes.
        self.realtime = sleep is time.sleep if realtime is None else realtime
        self._pool: DownloadPool[Outcome | None] | None = None
        self._history: dict[tuple[str, str, int], list[Sample]] = {}
        self.opt = options
        self.dest_for = dest_for
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        if downloader is None:
            from wanvid.download import download as downloader
        self.downloader = downloader
        self.on_outcome = on_outcome
        self.on_end = on_end  # a task reached a terminal status (its account slot is free)
        # The loop stops following a task it never saw end (its query was refused, failed
        # too often, or broke): this process's slot for it is given back (on_drop).
        self.on_drop = on_drop
        # Seconds to wait so that every process sharing the journal keeps, together, to
        # the account's query rate (wanvid.leases); None: this loop's own limit only.
        self.shared_rate = shared_rate
        self.limiter = RateLimiter(options.max_qps, clock, sleep)
        self.queries = 0
        self.unrecorded: list[Unrecorded] = []  # journal writes that failed
        self._unrecorded_lock = threading.Lock()

    # -- the journal: a failure to read or write it never stops the wait --

    def _get(self, task_id: str) -> Any:
        if not self.journal:
            return None
        try:
            return self.journal.get(task_id)
        except WanvidError as e:
            log.debug("%s: journal read failed: %s", task_id, e.message)
            return None

    def _record(self, task_id: str, what: str, write: Callable[[], object] | None,
                path: Path | None = None) -> None:
        if not self.journal or write is None:
            return
        try:
            write()
        except WanvidError as e:  # JournalError: locked for too long, disk full, damaged
            with self._unrecorded_lock:  # downloads record from pool workers
                first = not self.unrecorded
                self.unrecorded.append(Unrecorded(task_id, what, e.message, path))
            if first:
                self.reporter.note(f"{e.message}; going on without it")

    def _age(self, task_id: str) -> float:
        rec = self._get(task_id)
        if rec is not None and rec.submitted_at:
            return max(0.0, self.wall() - rec.submitted_at)
        return 0.0

    def run(self, task_ids: list[str],
            refill: Callable[[int], list[str]] | None = None,
            retry: Callable[[], float | None] | None = None) -> list[Outcome]:
        """Wait for ``task_ids``. ``refill(n)``, if given, is called whenever fewer tasks
        are in flight than it last allowed, and returns new task ids to wait for (batch
        submits the next jobs there, so at most N are ever in flight). ``retry()``: seconds
        until ``refill`` is worth calling again though nothing ended (a slot other processes
        held may be free by then), or None. A task being downloaded is no longer in flight:
        the service is done with it."""
        from wanvid.pool import DownloadPool

        pool: DownloadPool[Outcome | None] = DownloadPool(self.opt.downloads,
                                                          deadline=self.opt.deadline)
        self._pool = pool
        try:
            return self._run(task_ids, refill, pool, retry)
        except BaseException:
            # Ctrl-C, SIGTERM, a rejected key: the downloads in progress stop where they
            # are, their .part files kept for `wanvid wait --pending`.
            self.reporter.mute()
            pool.abandon()
            raise
        finally:
            pool.close()

    def _nap(self, seconds: float) -> bool:
        """Sleep ``seconds``; True when a download finished first (on the real clock only:
        a fake clock's sleep returns at once and the loop goes on)."""
        pool = self._pool
        if pool is not None and pool.pending and self.realtime:
            return pool.wait(seconds)
        self.sleep(seconds)
        return False

    def _run(self, task_ids: list[str], refill: Callable[[int], list[str]] | None,
             pool: DownloadPool[Outcome | None],
             retry: Callable[[], float | None] | None = None) -> list[Outcome]:
        start = self.clock()
        deadline = start + self.opt.timeout if self.opt.timeout is not None else None
        if self.opt.deadline is not None and self.opt.deadline.at is not None:
            deadline = self.opt.deadline.at
        heap: list[_Due] = []
        seq = 0
        last_status: dict[str, str] = {}
        errors: dict[str, int] = {}
        throttled = 0
        results: dict[str, Outcome] = {}
        busy_noted: set[str] = set()
        first_seen: dict[str, float] = {}
        order: list[str] = []
        timed_out = False  # --timeout passed: no more queries, no more refills
        ended: set[str] = set()  # seen in a terminal status (on_end called)
        saving: set[str] = set()  # handed to the download pool

        def add(ids: list[str]) -> None:
            nonlocal seq
            for tid in ids:
                if tid in first_seen:
                    continue
                order.append(tid)
                first_seen[tid] = self.clock()
                self.reporter.add_task(tid)
                heapq.heappush(heap, _Due(self.clock(), seq, tid))  # first query right away
                seq += 1

        def stop(out: Outcome) -> None:
            """The outcome of a task this loop follows no more. One it never saw end (an
            error ended its wait; it may still run at the service) is reported as ERROR,
            so no heartbeat says it is still being waited for, and this process's slot
            for it is given back (``on_drop``): a batch's next job goes ahead."""
            tid = out.task_id
            if tid not in ended:
                ended.add(tid)
                self.reporter.status(tid, "ERROR", self.clock() - first_seen.get(tid, start))
                if self.on_drop is not None:
                    self.on_drop(tid)
            elif tid in saving and not out.ok:  # its download gave up: no more "downloading"
                self.reporter.status(tid, "ERROR", self.clock() - first_seen.get(tid, start))
            self._emit(out, results)

        def more() -> None:
            if refill is not None and not timed_out:
                add(refill(len(heap)))

        def again() -> float | None:
            """Seconds until refill wants another try, when it does."""
            if retry is None or refill is None or timed_out:
                return None
            return retry()

        def busy(tid: str) -> None:
            """Another process is saving this video: look again in a while."""
            nonlocal seq
            if timed_out:
                self._emit(Outcome(tid, last_status.get(tid, "SUCCEEDED"), ExitStatus.TIMEOUT,
                                   message="another process was still downloading it when "
                                           "the wait timed out"), results)
                return
            if tid not in busy_noted:
                busy_noted.add(tid)
                self.reporter.note(f"{tid}: another wanvid process is downloading it; "
                                   "waiting for that")
            heapq.heappush(heap, _Due(self.clock() + self.opt.busy_interval, seq, tid))
            seq += 1

        # Saved videos are reported in the order their tasks were seen to finish (as when
        # the loop downloaded them itself), whichever download ends first.
        handed: list[str] = []
        ready: dict[str, Outcome] = {}

        def collect() -> None:
            for done in pool.collect():
                tid = done.key
                if done.error is not None:
                    if self.opt.raise_unexpected:
                        raise done.error
                    ready[tid] = _unexpected(tid, last_status.get(tid, "SUCCEEDED"),
                                             "saving the video", done.error)
                elif done.value is None:
                    handed.remove(tid)
                    busy(tid)
                else:
                    ready[tid] = done.value
            while handed and handed[0] in ready:
                stop(ready.pop(handed.pop(0)))

        add(task_ids)
        more()

        while True:
            collect()
            if not heap and refill is not None and not timed_out:
                add(refill(0))
            if not heap:
                r = again()
                if r is not None:  # nothing in flight, jobs waiting for a slot
                    if deadline is not None and self.clock() + r > deadline:
                        timed_out = True  # the rest stay unsubmitted
                        continue
                    self._nap(r)
                    more()
                    continue
                if pool.pending:
                    pool.wait(None)  # the downloads still running: wait for the next one
                    continue
                break
            item = heap[0]
            tid = item.task_id
            now = self.clock()
            r = again()
            if r is not None and now + r < item.due and (deadline is None
                                                         or now + r < deadline):
                self._nap(r)
                more()
                continue
            if deadline is not None and item.due > deadline:
                # Nothing can be learned before the deadline for any task: stop waiting
                # (the downloads in progress end by the deadline themselves).
                if now < deadline and self._nap(deadline - now):
                    continue
                timed_out = True
                self._finish_timeouts(heap, last_status, results)
                heap.clear()
                continue
            if item.due > now and self._nap(item.due - now):
                continue  # a download finished meanwhile: handle it, then look again
            heapq.heappop(heap)
            self.limiter.acquire()
            self._share_rate()
            self.queries += 1
            try:
                resp = self.client.get_task(tid, max_retries=0)
            except AuthError:
                raise
            except DeadlineExceeded:  # --timeout passed during the query
                timed_out = True
                self._finish_timeouts([item, *heap], last_status, results)
                heap.clear()
                continue
            except NetworkError as e:  # 429, 5xx, transport: retry this task later
                # Transient: retried quietly (visible with --debug), never surfaced.
                if is_throttled(e):
                    # Throttling is about the account, not this task: one loop-wide count,
                    # reset by any successful answer, so no task starves behind the others.
                    throttled += 1
                    delay = retry_delay(throttled, cap=MAX_INTERVAL)
                    self.limiter.penalize(delay)
                    log.debug("%s: throttled by the service; all queries wait %.1fs", tid, delay)
                else:
                    errors[tid] = errors.get(tid, 0) + 1
                    if errors[tid] > MAX_QUERY_ERRORS:  # give up on this task: exit 7
                        stop(Outcome(tid, last_status.get(tid, "UNKNOWN"), ExitStatus.NETWORK,
                                     message=e.message))
                        more()
                        continue
                    delay = retry_delay(errors[tid], cap=MAX_INTERVAL * 2)
                    log.debug("%s: %s; retrying in %.1fs", tid, e.message, delay)
                    if errors[tid] == 3:
                        self.reporter.note(f"{tid}: {e.message}; still retrying")
                heapq.heappush(heap, _Due(self.clock() + delay, seq, tid))
                seq += 1
                continue
            except WanvidError as e:
                stop(Outcome(tid, "ERROR", e.status, code=e.code, message=e.message))
                more()
                continue
            except Exception as e:  # isolation: one task's trouble never ends the loop
                if self.opt.raise_unexpected:
                    raise
                stop(_unexpected(tid, "ERROR", "querying the task", e))
                more()
                continue
            errors.pop(tid, None)
            throttled = 0
            status = last_status.get(tid, "UNKNOWN")
            outcome: Outcome | Callable[[], Outcome | None] | None
            try:
                output = _output(resp)
                status = _status(output)
                if status == "UNKNOWN" and self._succeeded_not_saved(tid):
                    status = "EXPIRED"
                if status != last_status.get(tid):
                    last_status[tid] = status
                    self._record(tid, f"status {status}", self.journal and partial(
                        self.journal.update_status, tid, status,
                        video_url=_text(output.get("video_url")),
                        code=_text(output.get("code")), message=_text(output.get("message"))))
                    self.reporter.status(tid, status, self.clock() - first_seen[tid])
                    if status == "SUCCEEDED":
                        self._record_times(tid, output)
                    if status in TERMINAL:
                        ended.add(tid)
                        if self.on_end is not None:
                            self.on_end(tid)
                if status not in TERMINAL:
                    age = max(self._age(tid), self.clock() - first_seen[tid])
                    due = self.clock() + self._delay(tid, status, output, age)
                    heapq.heappush(heap, _Due(due, seq, tid))
                    seq += 1
                    continue
                outcome = self._finish(tid, status, output, resp)
            except Exception as e:  # isolation: a bad answer, a bad URL, a bad journal row
                if self.opt.raise_unexpected:
                    raise
                outcome = _unexpected(tid, status, "handling the task", e)
            if outcome is None:  # another process is saving it: look again in a while
                busy(tid)
                continue
            if isinstance(outcome, Outcome):
                stop(outcome)
            else:  # the video comes down beside the loop, which goes on polling
                handed.append(tid)
                saving.add(tid)
                pool.submit(tid, outcome)
            more()
        return [results[t] for t in order if t in results]

    def _share_rate(self) -> None:
        if self.shared_rate is None:
            return
        try:
            wait = self.shared_rate()
        except WanvidError as e:  # the journal is busy or broken: this loop's limit only
            log.debug("shared query rate unavailable: %s", e.message)
            self.shared_rate = None
            return
        if wait > 0:
            self.sleep(wait)

    # -- predictive polling (wanvid.pacing): the journal's history of similar tasks --

    def _history_key(self, tid: str) -> tuple[str, str, int] | None:
        """(model, resolution, duration) of a task submitted through wanvid, else None."""
        rec = self._get(tid)
        if rec is None or not rec.model or not isinstance(rec.params, dict):
            return None
        res, dur = rec.params.get("resolution"), rec.params.get("duration")
        if not isinstance(res, str) or not isinstance(dur, int) or isinstance(dur, bool):
            return None
        return rec.model, res, dur

    def _samples(self, key: tuple[str, str, int]) -> list[Sample]:
        if key not in self._history:
            from wanvid.pacing import sample

            rows: list[tuple[float, float, float]] = []
            times = getattr(self.journal, "task_times", None)
            if times is not None:
                try:
                    rows = times(model=key[0], resolution=key[1], duration=key[2])
                except WanvidError as e:
                    log.debug("journal history unreadable: %s", e.message)
            self._history[key] = [s for s in (sample(*r) for r in rows) if s is not None]
        return self._history[key]

    def _delay(self, tid: str, status: str, output: dict[str, Any], age: float) -> float:
        """Seconds until the next query of a task still queued or running."""
        from wanvid.pacing import likely_end, next_delay, service_epoch

        key = self._history_key(tid)
        samples = self._samples(key) if key is not None else []
        window = likely_end(samples, running=False)
        since = age
        if window is not None and status == "RUNNING":
            sub = service_epoch(output.get("submit_time"))
            sch = service_epoch(output.get("scheduled_time"))
            if sub is not None and sch is not None and 0 <= sch - sub <= age:
                window, since = likely_end(samples, running=True), age - (sch - sub)
        return next_delay(age=age, base=self.opt.interval, since=since, window=window)

    def _record_times(self, tid: str, output: dict[str, Any]) -> None:
        """Journal the service's times of a task that SUCCEEDED (history for the next
        waits); a failure only costs the prediction, never the wait."""
        from wanvid.pacing import sample, service_epoch

        key = self._history_key(tid)
        record = getattr(self.journal, "record_times", None)
        if key is None or record is None:
            return
        times = [service_epoch(output.get(k)) for k in ("submit_time", "scheduled_time",
                                                         "end_time")]
        if sample(*times) is None:
            return
        sub, sch, end = times
        assert sub is not None and sch is not None and end is not None
        try:
            record(tid, model=key[0], resolution=key[1], duration=key[2], submitted=sub,
                   scheduled=sch, ended=end)
        except WanvidError as e:
            log.debug("%s: times not journaled: %s", tid, e.message)
        self._history.pop(key, None)  # the next task of this kind learns from it

    def _succeeded_not_saved(self, tid: str) -> bool:
        rec = self._get(tid)
        return rec is not None and rec.status == "SUCCEEDED" and not rec.path

    def _emit(self, out: Outcome, results: dict[str, Outcome]) -> None:
        results[out.task_id] = out
        if self.on_outcome:
            self.on_outcome(out)

    def _finish_timeouts(self, items: list[_Due], last_status: dict[str, str],
                         results: dict[str, Outcome]) -> None:
        for it in items:
            st = last_status.get(it.task_id, "PENDING")
            self._emit(Outcome(it.task_id, st, ExitStatus.TIMEOUT,
                               message="still " + st + " when the wait timed out"), results)

    def _finish(self, tid: str, status: str, output: dict[str, Any], resp: dict[str, Any],
                ) -> Outcome | Callable[[], Outcome | None]:
        """The task's outcome, or the download that makes it (run beside the loop)."""
        usage = resp.get("usage") if isinstance(resp.get("usage"), dict) else None
        if status in FAILED_STATES:
            code = _text(output.get("code")) or status
            msg = _text(output.get("message")) or {
                "EXPIRED": "the video was never saved and the service has forgotten the task: "
                           "its 24-hour window has passed",
                "UNKNOWN": "the task is unknown to the service (expired after 24 h, or "
                           "never existed in this region)",
                "CANCELED": "the task was canceled",
            }.get(status, "the task failed")
            return Outcome(tid, status, ExitStatus.TASK_FAILED, code=str(code), message=str(msg))
        url = _text(output.get("video_url"))
        out = Outcome(tid, status, video_url=url, usage=usage)
        if not url:
            out.exit_status = ExitStatus.TASK_FAILED
            out.message = "the service reported SUCCEEDED without a video URL"
            return out
        if not self.opt.download:
            return out
        rec = self._get(tid)
        try:
            dest = self.dest_for(tid, output)
        except WanvidError as e:  # the video stays on the service: `wanvid download` saves it
            return Outcome(tid, status, e.status, video_url=url, message=e.message)
        expected = (rec.sha256 if rec is not None and rec.path
                    and os.path.abspath(rec.path) == os.path.abspath(dest) else None)
        return partial(self._save, out, url, dest, expected, resp)

    def _save(self, out: Outcome, url: str, dest: Path, expected: str | None,
              resp: dict[str, Any]) -> Outcome | None:
        """Download one video (in a pool worker); None when another process is saving it."""
        tid, status = out.task_id, out.status
        pool = self._pool

        def progress(done: int, total: int | None) -> None:
            if pool is not None:
                pool.check()  # Ctrl-C: stop here, the .part kept
            self.reporter.download_progress(tid, done, total)

        try:
            res = self.downloader(url, dest, force=self.opt.force, expected_sha256=expected,
                                  adopt=True, on_progress=progress)
        except BusyError:
            return None
        except TaskFailedError as e:
            return Outcome(tid, status, e.status, video_url=url, code=e.code or "URLExpired",
                           message=e.message)
        except WanvidError as e:  # network, disk, existing file: the task stays pending
            return Outcome(tid, status, e.status, video_url=url, message=e.message)
        self._record(tid, "download", self.journal and partial(
            self.journal.record_download, tid, path=str(res.path), size=res.size,
            sha256=res.sha256), path=res.path)
        if self.opt.sidecar:
            self._sidecar(tid, res, resp)
        self.reporter.download_done(tid, res.path, res.size, res.skipped)
        out.path, out.size, out.sha256 = res.path, res.size, res.sha256
        return out

    def _sidecar(self, tid: str, res: Any, resp: dict[str, Any]) -> None:
        """Metadata beside the saved video; a failure is noted, never fatal (the video is
        saved and journaled)."""
        from wanvid import sidecar

        path = Path(res.path)
        if res.skipped and sidecar.sidecar_path(path).exists():
            return
        try:
            sidecar.save(path, task_id=tid, record=self._get(tid), response=resp,
                         size=res.size, sha256=res.sha256, now=self.wall(),
                         batch=self.opt.batch)
        except OSError as e:
            self.reporter.note(f"{tid}: metadata {sidecar.sidecar_path(path).name} not "
                               f"written ({e.strerror or e}); the video is saved")


def _output(resp: object) -> dict[str, Any]:
    out = resp.get("output") if isinstance(resp, dict) else None
    return out if isinstance(out, dict) else {}


def _status(output: dict[str, Any]) -> str:
    value = output.get("task_status")
    status = value.strip().upper() if isinstance(value, str) else ""
    return status if status.isascii() and status.isalpha() and len(status) <= 20 else "UNKNOWN"


def _text(value: object) -> str | None:
    """A string field of an answer, or None when it is missing or not a string; control
    characters escaped (it is journaled and printed), at most a few hundred characters."""
    if not isinstance(value, str) or not value:
        return None
    from wanvid.sanitize import one_line

    return one_line(value, 8000 if value.startswith(("http://", "https://")) else 500)


def _unexpected(tid: str, status: str, doing: str, e: BaseException) -> Outcome:
    log.debug("%s: unexpected error while %s", tid, doing, exc_info=True)
    return Outcome(tid, status, ExitStatus.NETWORK,
                   message=f"unexpected error while {doing}: {type(e).__name__}: {e}"[:300])
