"""Predictive polling: when to query a task next, from how long earlier tasks of the same
model, resolution and duration took. Pure functions; the polling loop (``wanvid.poll``)
calls them, the journal keeps the history (``Journal.record_times``/``task_times``).

The history is the service's own times for each earlier task that SUCCEEDED: submitted,
scheduled (left the queue) and ended. Only differences between them are used, so the
service's clock and timezone never matter. For a new task:

* While it is queued, its end is likely between the shortest and longest earlier total
  (submit to end) times, widened a little (``likely_end``); once it is RUNNING and the
  service has said when it was scheduled, between the shortest and longest earlier
  running times after that, which leaves the queue's own variation out.
* Before that window opens the task is queried sparsely: once, when the window is about to
  open (at most ``SPARSE_CAP`` seconds apart, so a task that fails early is still seen).
  Inside the window it is queried densely, most densely around the earlier tasks' median
  (every 1.5 s, so a typical task's end is noticed within 2 s), less so toward the
  window's edges (every 3 s for well-known tasks). After the window (later than every
  earlier task) it backs off again as without history.
* Fewer than ``MIN_SAMPLES`` earlier tasks: no prediction, the schedule of
  ``wanvid.poll.next_interval`` (first queries every ``interval`` seconds, then less
  often toward 15 s).

The loop-wide query rate limit (``max_qps``) still spaces every query.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MIN_SAMPLES = 2  # earlier tasks needed before predicting
MAX_SAMPLES = 20  # the most recent earlier tasks looked at
MARGIN = 0.02  # the window is widened by this share of the median each side...
MIN_MARGIN = 1.0  # ...and by at least this many seconds
DENSE_NEAR = 1.5  # seconds between queries around the most likely end: noticed within 2 s
DENSE_FAR = 3.0  # ...widening to at least this toward the window's edges
DENSE_QUERIES = 9  # ...or to 1/9 of the window's width (a window known less well)
DENSE_MAX = 15.0
LEAD = 1.0  # start the dense queries this long before the window opens (s)
SPARSE_CAP = 60.0  # the longest wait between two queries before the window (s)
DEFAULT_BASE = 5.0  # an --interval above this is honoured inside the window too
MAX_INTERVAL = 15.0
AGE_FACTOR = 0.2


@dataclass(frozen=True)
class Sample:
    """One earlier task: seconds it spent queued (submit to scheduled) and running
    (scheduled to end), by the service's clock."""

    queued: float
    ran: float

    @property
    def total(self) -> float:
        return self.queued + self.ran


def sample(submitted: float | None, scheduled: float | None,
           ended: float | None) -> Sample | None:
    """A sample from the service's three times (epoch seconds on any one clock), or None
    when one is missing or they are out of order."""
    if submitted is None or scheduled is None or ended is None:
        return None
    queued, ran = scheduled - submitted, ended - scheduled
    if queued < 0 or ran <= 0 or queued + ran > 86400:
        return None
    return Sample(queued, ran)


def service_epoch(value: object) -> float | None:
    """A service time (``YYYY-MM-DD HH:mm:ss[.SSS]``) as epoch seconds read as UTC (its
    timezone is not documented; only differences between such times are used), else
    None."""
    import calendar
    import time

    if not isinstance(value, str) or not value.strip() or len(value) > 40:
        return None
    text = value.strip()
    frac = 0.0
    if "." in text:
        text, _, digits = text.partition(".")
        if not digits.isdigit():
            return None
        frac = float("0." + digits)
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S")) + frac
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class Window:
    """When a task is likely to end, in seconds after its submit (or its schedule): from
    ``lo`` to ``hi``, most likely around ``mid`` (the earlier tasks' median)."""

    lo: float
    mid: float
    hi: float


def likely_end(samples: Sequence[Sample], *, running: bool) -> Window | None:
    """When a task is likely to end, after its submit (``running``: after it was
    scheduled), from the earlier tasks' times; None without enough history."""
    values = [s.ran if running else s.total for s in samples[:MAX_SAMPLES]]
    if len(values) < MIN_SAMPLES:
        return None
    mid = statistics.median(values)
    margin = max(MIN_MARGIN, MARGIN * mid)
    return Window(max(0.0, min(values) - margin), mid, max(values) + margin)


def dense_interval(window: Window, base: float, since: float | None = None) -> float:
    """Seconds between queries inside ``window``, ``since`` seconds after its origin:
    ``DENSE_NEAR`` around the most likely moment, widening toward the window's edges to
    about 1/``DENSE_QUERIES`` of its width (``DENSE_FAR`` at least, ``DENSE_MAX`` at
    most); an ``--interval`` above the default is honoured."""
    far = min(DENSE_MAX, max(DENSE_FAR, (window.hi - window.lo) / DENSE_QUERIES))
    half = max(window.mid - window.lo, window.hi - window.mid, 1e-9)
    off = 1.0 if since is None else min(1.0, abs(since - window.mid) / half)
    step = DENSE_NEAR + (far - DENSE_NEAR) * off
    return max(step, base) if base > DEFAULT_BASE else step


def next_interval(age: float, base: float, cap: float = MAX_INTERVAL) -> float:
    """Without history: seconds until the next query of a task submitted ``age`` seconds
    ago (``interval`` at first, then about age/5, at most 15 s; never below ``base``)."""
    cap = max(cap, base)
    return max(base, min(cap, age * AGE_FACTOR))


def next_delay(*, age: float, base: float, since: float | None = None,
               window: Window | None = None) -> float:
    """Seconds until the next query of a task.

    ``age``: seconds since it was submitted; ``base``: the first interval (--interval);
    ``window``: ``likely_end(...)``, measured from the moment ``since`` seconds ago
    (the submit, or the schedule for a running task); None: no prediction."""
    if window is None or since is None:
        return next_interval(age, base)
    opens = window.lo - LEAD
    if since < opens:  # completion unlikely yet: one query as the window opens
        return min(max(opens - since, DENSE_NEAR), SPARSE_CAP)
    if since <= window.hi:  # completion likely: query densely
        return dense_interval(window, base, since)
    # Later than every earlier task: back off again, as without history.
    return min(max(MAX_INTERVAL, base),
               max(dense_interval(window, base), (since - window.hi) * AGE_FACTOR))
