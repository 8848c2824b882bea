"""Write-ahead submits: finding out what became of a submit whose answer never arrived.

Before a submit's POST leaves, the journal records an *intent*: the job (its fingerprint,
model, prompt, parameters, inputs, output), the API root, and the time. The answer closes
it: with the task id, in the same transaction as the task's row; or as *not created* when
the answer proves that no task exists (a 4xx refusal, throttling, a connection that was
never made). A kill, a crash, Ctrl-C or an answer that proves nothing (a timeout, a 5xx)
leaves it open, and the next ``wanvid wait --pending`` or ``wanvid batch`` resolves it
against the service's task list before anything else is submitted:

* A *candidate* for an intent is a task in ``GET /tasks`` of the intent's API root, of the
  intent's model, created between ``SKEW`` seconds before the intent and ``settle``
  seconds after it, that the journal does not hold; once the task has finished, its
  ``orig_prompt`` (``GET /tasks/{id}``) must also be the intent's prompt (or, the service
  truncating long prompts, its beginning).
* One candidate that no other open intent could claim is *adopted*: journaled as the
  intent's task (with its parameters and output) and waited for like any other.
* No candidate, once ``settle`` seconds have passed since the intent (the list is then
  complete for its window), proves that no task was created: the intent is closed, and a
  batch may submit the job again.
* Anything else (several candidates that the prompts cannot tell apart, a list that could
  not be read, an intent too recent for the list to be complete) leaves the intent open
  and says so on stderr; a batch never submits a job whose intent is open.

The decisions are pure functions (``decide``) over what the list showed; ``list_candidates``
does the requests through any client with ``list_tasks`` and ``get_task``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

from wanvid.errors import (
    AuthError,
    BadInputError,
    RejectedError,
    ThrottledError,
    WanvidError,
    is_throttled,
)

if TYPE_CHECKING:
    from wanvid.journal import IntentRecord

SETTLE_ENV = "WANVID_INTENT_SETTLE"
SETTLE_DEFAULT = 180.0  # s: the longest a submit's POST may take (120 s), plus a margin
SKEW = 120.0  # s: how far the service's clock may be behind ours
PAGE_SIZE = 100
MAX_PAGES = 20
SERVICE_TZ = timezone(timedelta(hours=8))  # the task API shows Beijing time
FINISHED = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})

ADOPT, CLOSE, OPEN = "adopt", "close", "open"


class TaskApi(Protocol):
    def list_tasks(self, **params: Any) -> dict[str, Any]: ...

    def get_task(self, task_id: str, *, max_retries: int | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Candidate:
    """A task the service listed that could be an intent's."""

    task_id: str
    model_name: str
    created: float | None  # epoch seconds, None when the row does not say
    status: str
    orig_prompt: str | None = None
    prompt_known: bool = False  # the task finished and its answer was read


@dataclass
class Listing:
    """What the service's list showed for one intent's window."""

    candidates: list[Candidate] = field(default_factory=list)
    complete: bool = True  # every page was read
    error: str | None = None  # the list could not be read


@dataclass(frozen=True)
class Decision:
    intent_id: int
    action: str  # ADOPT | CLOSE | OPEN
    reason: str
    task_id: str | None = None
    status: str | None = None
    retry_at: float | None = None  # OPEN: when trying again can settle it (epoch)
    candidates: tuple[str, ...] = ()


# --- the process's submit in flight (for the truth on Ctrl-C) -----------------------------

_lock = threading.RLock()  # re-entered if an interrupt lands while it is held
_in_flight = 0
_interrupted = False
_posting: set[int] = set()  # this process's intents whose POST is in flight


@contextmanager
def posting(intent_id: int | None = None) -> Iterator[None]:
    """Around a submit's POST: an interrupt inside it is remembered, so the command can say
    that the service may have created the task; ``intent_id``'s POST is in flight
    meanwhile (``in_flight_here``)."""
    global _in_flight, _interrupted
    with _lock:
        _in_flight += 1
        if intent_id is not None:
            _posting.add(intent_id)
    try:
        yield
    except BaseException as e:
        if not isinstance(e, Exception):  # KeyboardInterrupt, SIGTERM, SystemExit
            with _lock:
                _interrupted = True
        raise
    finally:
        with _lock:
            _in_flight -= 1
            _posting.discard(intent_id or 0)


def in_flight_here(intent_id: int) -> bool:
    """Whether this process's POST for ``intent_id`` is in flight (another thread's)."""
    with _lock:
        return intent_id in _posting


def in_flight(intent: IntentRecord, *, holder_alive: Callable[[int, str | None], bool],
              here: tuple[int, str | None]) -> bool:
    """An open intent whose submit is still in flight: its POST is under way in this
    process (``here``: its pid and start time), or the process that wrote it still runs
    (``holder_alive``). Such an intent is its holder's to close, never resolved against
    the list (nor waited for); one whose holder is gone (killed, or a POST that ended
    with no proof either way) is. An intent from before schema 5 names no holder: it is
    resolved as ever."""
    if intent.pid is None:
        return False
    if (intent.pid, intent.started) == here or (intent.pid == here[0] and (
            intent.started is None or here[1] is None)):
        return in_flight_here(intent.intent_id)
    return holder_alive(intent.pid, intent.started)


def interrupted_in_submit() -> bool:
    """A submit's POST was in flight when this process was interrupted (read once).

    Called on the way out after Ctrl-C or SIGTERM, when the lock may be held for good (by
    a worker thread abandoned mid-update, or by this thread if the interrupt landed inside
    ``posting``'s bookkeeping): it never waits for the lock; without it, the values are
    read as they are (each read is atomic)."""
    global _interrupted
    got = _lock.acquire(timeout=0.1)
    try:
        was, _interrupted = _interrupted or _in_flight > 0, False
        return was
    finally:
        if got:
            _lock.release()


def after_interrupt() -> str:
    """What to tell the user after Ctrl-C or SIGTERM."""
    if interrupted_in_submit():
        return ("a submit was in flight: the service may have created the task; "
                "`wanvid wait --pending` will find it (or find that it was not created)")
    return "submitted tasks are in the journal: `wanvid wait --pending` picks them up"


# --- what an answer proves ------------------------------------------------------------------

def proves_not_created(e: WanvidError) -> bool:
    """The submit's failure proves the service created no task: it refused the request
    (4xx, the key, throttling) or the request was never sent."""
    if isinstance(e, (AuthError, RejectedError, ThrottledError, BadInputError)):
        return True
    return is_throttled(e) or "nothing was sent" in e.message


def settle_seconds(raw: str | None) -> float:
    """``WANVID_INTENT_SETTLE`` (seconds), else the default; nonsense is the default."""
    try:
        value = float(raw) if raw not in (None, "") else SETTLE_DEFAULT
    except ValueError:
        return SETTLE_DEFAULT
    return value if math.isfinite(value) and value >= 0 else SETTLE_DEFAULT


# --- reading the list -----------------------------------------------------------------------

def list_bound(epoch: float) -> str:
    """A list window bound as documented: ``YYYYMMDDhhmmss``, Beijing time."""
    return datetime.fromtimestamp(epoch, SERVICE_TZ).strftime("%Y%m%d%H%M%S")


def window(intent: IntentRecord, settle: float) -> tuple[float, float]:
    """When the intent's task, if any, was created: from ``SKEW`` before the intent to
    ``settle`` after it."""
    return intent.created_at - SKEW, intent.created_at + settle


def _created(row: Mapping[str, Any]) -> float | None:
    ms = row.get("gmt_create")
    if isinstance(ms, (int, float)) and not isinstance(ms, bool) and math.isfinite(ms):
        return float(ms) / 1000
    if isinstance(ms, str) and ms.strip().isdigit():
        return int(ms.strip()) / 1000
    for key in ("gmt_create", "submit_time"):
        text = row.get(key)
        if not isinstance(text, str):
            continue
        for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
            try:
                return datetime.strptime(text.strip(), fmt).replace(
                    tzinfo=SERVICE_TZ).timestamp()
            except ValueError:
                continue
    return None


def parse_rows(answer: Mapping[str, Any]) -> list[Candidate]:
    """The rows of a list answer (``data``, or ``tasks`` as an SDK reads it)."""
    rows = answer.get("data")
    if not isinstance(rows, list):
        rows = answer.get("tasks")
    found: list[Candidate] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping):
            continue
        tid = row.get("task_id")
        if not isinstance(tid, str) or not tid:
            continue
        status = row.get("status") or row.get("task_status") or ""
        found.append(Candidate(task_id=tid, model_name=str(row.get("model_name") or ""),
                               created=_created(row), status=str(status).upper()))
    return found


def list_candidates(api: TaskApi, intent: IntentRecord, *, settle: float) -> Listing:
    """Every task the intent's window of the list shows for its model (all pages, up to
    ``MAX_PAGES``). Errors become ``Listing.error``."""
    lo, hi = window(intent, settle)
    params: dict[str, Any] = {"start_time": list_bound(math.floor(lo) - 1),
                              "end_time": list_bound(math.ceil(hi) + 1),
                              "model_name": intent.model_name or intent.model,
                              "page_size": PAGE_SIZE}
    listing = Listing()
    try:
        for page in range(1, MAX_PAGES + 1):
            answer = api.list_tasks(**params, page_no=page)
            rows = parse_rows(answer)
            listing.candidates += rows
            total_page = answer.get("total_page")
            last = (not rows or len(rows) < PAGE_SIZE or
                    (isinstance(total_page, int) and page >= total_page))
            if last:
                break
        else:
            listing.complete = False
    except WanvidError as e:
        listing.error = e.message
    return listing


def with_prompt(api: TaskApi, c: Candidate) -> Candidate:
    """The candidate with its status and, once finished, its ``orig_prompt`` from
    ``GET /tasks/{id}``; unchanged when the query fails."""
    try:
        answer = api.get_task(c.task_id)
    except WanvidError:
        return c
    out = answer.get("output")
    if not isinstance(out, Mapping):
        return c
    status = str(out.get("task_status") or c.status).upper()
    prompt = out.get("orig_prompt")
    known = status in FINISHED
    return replace(c, status=status, orig_prompt=prompt if isinstance(prompt, str) else None,
                   prompt_known=known)


# --- deciding ---------------------------------------------------------------------------------

def same_model(a: str, b: str) -> bool:
    if a.strip().lower() == b.strip().lower():
        return True
    from wanvid.models import find_model

    ma, mb = find_model(a), find_model(b)
    return ma is not None and ma is mb


def prompt_matches(intended: str | None, orig: str | None) -> bool:
    """The service's ``orig_prompt`` is the prompt sent, or its beginning (long prompts
    are truncated to the model's limit)."""
    sent, got = intended or "", orig or ""
    return sent == got or (got != "" and sent.startswith(got))


def fits(intent: IntentRecord, c: Candidate, settle: float) -> bool:
    lo, hi = window(intent, settle)
    if c.model_name and not same_model(c.model_name, intent.model_name or intent.model):
        return False
    if c.created is not None and not lo <= c.created <= hi:
        return False
    return not (c.prompt_known and not prompt_matches(intent.prompt, c.orig_prompt))


def decide(intents: list[IntentRecord], listings: Mapping[int, Listing],
           journaled: set[str], *, now: float, settle: float,
           recheck: float | None = None) -> list[Decision]:
    """What to do with each open intent, given what the list showed (``listings`` by
    intent id) and the task ids the journal already holds. ``recheck``: when candidates
    that have not finished yet could be told apart by their prompts once they have, look
    again that many seconds later (``retry_at``)."""
    decisions: dict[int, Decision] = {}
    cands: dict[int, dict[str, Candidate]] = {}
    for it in intents:
        listing = listings.get(it.intent_id)
        if listing is None or listing.error is not None:
            why = listing.error if listing is not None and listing.error else "not listed"
            decisions[it.intent_id] = Decision(
                it.intent_id, OPEN, f"the service's task list could not be read ({why})")
            continue
        mine = {c.task_id: c for c in listing.candidates
                if c.task_id not in journaled and fits(it, c, settle)}
        # A task whose prompt is this intent's to the letter beats one whose prompt is only
        # its beginning (a truncation, or another submit's shorter prompt: "slow zoom" is
        # the beginning of "slow zoom in"): the prefix ones are dropped when one matches.
        if any(c.prompt_known and (c.orig_prompt or "") == (it.prompt or "")
               for c in mine.values()):
            mine = {t: c for t, c in mine.items()
                    if not c.prompt_known or (c.orig_prompt or "") == (it.prompt or "")}
        cands[it.intent_id] = mine
    # Adopt a candidate only when it is an intent's only one and no other intent's.
    changed = True
    while changed:
        changed = False
        for iid, mine in list(cands.items()):
            if len(mine) != 1:
                continue
            (tid, c), = mine.items()
            if any(tid in other for oid, other in cands.items() if oid != iid):
                continue
            decisions[iid] = Decision(iid, ADOPT, f"the service created task {tid}",
                                      task_id=tid, status=c.status or "PENDING",
                                      candidates=(tid,))
            del cands[iid]
            changed = True
    by_id = {it.intent_id: it for it in intents}
    for iid, mine in cands.items():
        it = by_id[iid]
        listing = listings[iid]
        settled_at = it.created_at + settle
        if not mine:
            if not listing.complete:
                decisions[iid] = Decision(iid, OPEN, "the service's task list has more pages "
                                          "than wanvid reads")
            elif now >= settled_at:
                decisions[iid] = Decision(iid, CLOSE, "the service's task list shows no "
                                          "task for it: none was created")
            else:
                decisions[iid] = Decision(
                    iid, OPEN, f"too recent for the service's task list to be complete "
                    f"(settles in {math.ceil(settled_at - now)} s)", retry_at=settled_at)
            continue
        ids = tuple(sorted(mine))
        unfinished = [t for t, c in mine.items() if not c.prompt_known]
        why = f"{len(ids)} tasks could be its own ({', '.join(ids)})" if len(ids) > 1 else (
            f"task {ids[0]} could be its own or another interrupted submit's")
        retry_at = None
        if unfinished:
            why += "; their prompts tell them apart once they finish"
            retry_at = now + recheck if recheck is not None else None
        decisions[iid] = Decision(iid, OPEN, why, candidates=ids, retry_at=retry_at)
    return [decisions[it.intent_id] for it in intents]
