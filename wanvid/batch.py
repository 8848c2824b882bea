"""Batch jobs: read JSON Lines or CSV, validate everything up front, run with at most N
tasks in flight, skip what an earlier run already finished.

A job has the same fields as the submit options (``image``, ``last_frame``, ``prompt``,
``negative_prompt``, ``model``, ``resolution``, ``duration``, ``seed``, ``audio``,
``no_audio``, ``prompt_extend``, ``watermark``, ``fit``, ``fit_background``, ``first_clip``,
``shot``, ``template``, ``param``: ``{"NAME": value}`` or ``"NAME=VALUE"`` text) plus
``output`` (a path or template for that job's video).

In flight and pacing follow the account limits of each job's model (its catalogue entry's
``concurrent_tasks`` and ``submits_per_second``, per account and model), shared with every
wanvid process using the same journal (``wanvid.leases``, as ``generate`` does): each submit
takes a slot of its model, held until the polling loop sees the task end, and a model's
submits keep to its rate; a job whose model has no slot free waits while the others go on
(the loop looks again). ``-j N`` (or config ``jobs``) caps the whole batch at N as well; a
model with no known limit has one task in flight at a time unless ``-j`` says more.

Re-running a batch file skips jobs already done: a job's fingerprint (model, parameters
and the content of its input files) is journaled with its task; a job whose task is
downloaded (and the file still there) is skipped, one whose task is still pending is
waited for instead of submitted again, and one that failed is submitted again. Before
anything is submitted, every open submit intent (a submit whose answer never arrived) is
resolved against the service's task list (``wanvid.intents``); a job whose intent stays
open is never submitted again.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanvid.errors import BadInputError, ExitStatus, WanvidError
from wanvid.params import PreparedSubmit, SubmitOptions

if TYPE_CHECKING:
    from wanvid.client import Client, RoutingClient
    from wanvid.journal import IntentRecord, TaskRecord
    from wanvid.poll import Outcome, Reporter
    from wanvid.service import Service

FIELDS: dict[str, type] = {
    "image": str, "last_frame": str, "first_clip": str, "prompt": str, "negative_prompt": str, "model": str,
    "resolution": str, "duration": int, "seed": int, "audio": str, "no_audio": bool,
    "prompt_extend": bool, "watermark": bool, "fit": bool, "fit_background": str,
    "shot": str, "template": str, "param": dict, "output": str,
}
ALIASES = {"first_frame": "image", "img_url": "image", "first_frame_url": "image",
           "last_frame_url": "last_frame", "audio_url": "audio", "o": "output"}


@dataclass
class Job:
    line: int
    fields: dict[str, Any]
    options: SubmitOptions | None = None
    output: str | None = None
    prepared: PreparedSubmit | None = None
    fingerprint: str | None = None
    error: str | None = None
    # filled while running
    task_id: str | None = None
    dest: Path | None = None  # where its video goes, when known before submitting
    state: str = "queued"  # queued|skipped|submitted|invalid|error|unresolved|waiting
    result: dict[str, Any] = field(default_factory=dict)
    intent: IntentRecord | None = None  # waiting / unresolved: the open submit intent of it


def _coerce(name: str, value: Any, line: int) -> Any:
    typ = FIELDS[name]
    if value is None or value == "":
        return None
    if typ is dict:  # param: {"NAME": value}, ["NAME=VALUE", ...], or one NAME=VALUE
        if isinstance(value, str) and value.lstrip().startswith("{"):
            try:
                value = json.loads(value)
            except ValueError:
                raise BadInputError(f"line {line}: {name}: not a valid JSON object") from None
        if isinstance(value, str):
            value = [value]
        if isinstance(value, dict) or (isinstance(value, list)
                                       and all(isinstance(x, str) for x in value)):
            return value
        raise BadInputError(f"line {line}: {name}: expected an object {{\"NAME\": value}}, "
                            f"or \"NAME=VALUE\" text, got {value!r}")
    if typ is bool:
        if isinstance(value, bool):
            return value
        low = str(value).strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise BadInputError(f"line {line}: {name}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise BadInputError(f"line {line}: {name}: expected a whole number, got {value!r}")
        if isinstance(value, int) and abs(value) <= 2**53:
            return value
        try:
            f = float(value)
            whole = math.isfinite(f) and f == int(f)
        except (TypeError, ValueError, OverflowError):
            whole = False
        if not whole:
            raise BadInputError(f"line {line}: {name}: expected a whole number, got {value!r}")
        return int(f)
    if not isinstance(value, str):
        raise BadInputError(f"line {line}: {name}: expected text, got {value!r}")
    return value


def _normalise(raw: dict[str, Any], line: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k is None:
            raise BadInputError(f"line {line}: more values than header columns")
        key = ALIASES.get(k.strip().lower().replace("-", "_"), k.strip().lower().replace("-", "_"))
        if key not in FIELDS:
            raise BadInputError(f"line {line}: unknown field {k!r}; fields: {', '.join(FIELDS)}")
        out[key] = _coerce(key, v, line)
    if not out.get("image") and not out.get("first_clip"):
        raise BadInputError(f"line {line}: no image (every job needs an \"image\", or a "
                            "\"first_clip\")")
    return out


def parse_jobs(text: str, *, name: str = "-") -> tuple[list[Job], list[Job]]:
    """(jobs, invalid): JSON Lines (a line starting with '{') or CSV with a header row.
    Blank lines and lines starting with '#' are ignored. Line numbers are 1-based."""
    jobs: list[Job] = []
    bad: list[Job] = []
    stripped = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    is_jsonl = bool(stripped) and stripped[0].lstrip().startswith("{")
    if is_jsonl:
        for i, ln in enumerate(text.splitlines(), 1):
            s = ln.strip()
            if not s or s.startswith("#"):
                continue
            try:
                obj = json.loads(s)
                if not isinstance(obj, dict):
                    raise BadInputError(f"line {i}: expected a JSON object")
                jobs.append(Job(i, _normalise(obj, i)))
            except json.JSONDecodeError as e:
                bad.append(Job(i, {}, error=f"line {i}: not valid JSON ({e.msg})", state="invalid"))
            except BadInputError as e:
                bad.append(Job(i, {}, error=e.message, state="invalid"))
        return jobs, bad
    # CSV: the reader sees the raw text (quoted cells may span lines); a record whose
    # first cell starts with '#' is a comment; line numbers are where each record starts.
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    start = 1
    for row in reader:
        lineno, start = start, reader.line_num + 1
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip() for c in row]
            continue
        try:
            if len(row) > len(header):
                raise BadInputError(f"line {lineno}: more values than header columns")
            jobs.append(Job(lineno, _normalise(dict(zip(header, row, strict=False)), lineno)))
        except BadInputError as e:
            bad.append(Job(lineno, {}, error=e.message, state="invalid"))
    return jobs, bad


def read_jobs(source: str, stdin: Any) -> tuple[list[Job], list[Job]]:
    if source == "-":
        return parse_jobs(stdin.read().removeprefix("\ufeff"), name="stdin")
    p = Path(source)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInputError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise BadInputError(f"{source}: is a directory, not a jobs file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"{source}: cannot read ({e})") from None
    return parse_jobs(text, name=source)


def prepare_jobs(jobs: list[Job], prepare: Callable[[SubmitOptions], PreparedSubmit],
                 *, base_dir: Path | None = None) -> list[Job]:
    """Validate every job; returns the invalid ones (error set, state 'invalid')."""
    bad: list[Job] = []
    for job in jobs:
        f = dict(job.fields)
        job.output = f.pop("output", None)
        if base_dir is not None:
            for k in ("image", "last_frame", "audio", "first_clip"):
                v = f.get(k)
                if v and "://" not in v and not v.startswith("data:") and not Path(v).is_absolute():
                    f[k] = str(base_dir / v)
        try:
            job.options = SubmitOptions(**{k: v for k, v in f.items() if v is not None})
            job.prepared = prepare(job.options)
            job.fingerprint = job.prepared.fingerprint()
        except BadInputError as e:
            job.error = f"line {job.line}: {e.message}"
            job.state = "invalid"
            bad.append(job)
        except WanvidError as e:
            job.error = f"line {job.line}: {e.message}"
            job.state = "invalid"
            bad.append(job)
    return bad


@dataclass
class Summary:
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    invalid: int = 0
    unsubmitted: int = 0
    billed_seconds: int = 0
    # Ctrl-C or SIGTERM: submitted jobs not finished, and what to run to finish the batch
    unfinished: int = 0
    resume: str | None = None

    def line(self) -> str:
        return (f"{self.succeeded} succeeded, {self.failed} failed, {self.skipped} skipped"
                + (f", {self.invalid} invalid" if self.invalid else "")
                + (f", {self.unsubmitted} not submitted" if self.unsubmitted else "")
                + f"; {self.billed_seconds} s billed")


# --- the plan: what to submit, what to wait for, what is done --------------------------

@dataclass
class Plan:
    """A batch, decided before anything is sent."""

    source: str
    jobs: list[Job]
    invalid: list[Job]  # sorted by line; each has ``error``
    done: list[tuple[Job, TaskRecord]]  # video saved by an earlier run: skipped
    resumed: list[tuple[Job, TaskRecord]]  # submitted by an earlier run, still alive: waited for
    queue: list[Job]  # to be submitted, in order
    # an earlier submit of the job may have created a task (its intent is open): not sent
    unresolved: list[Job] = field(default_factory=list)
    # what the journal held when the plan was made: a task or an open intent of a job's
    # fingerprint beyond these, found when it is submitted, is another process's
    seen_tasks: set[str] = field(default_factory=set)
    seen_intents: set[int] = field(default_factory=set)

    @property
    def billed_seconds(self) -> int:
        """What the jobs still to be submitted would bill (the service bills the duration)."""
        return sum(j.prepared.duration for j in self.queue if j.prepared is not None)

    def check(self, *, skip_invalid: bool) -> None:
        """Refuse (``BadInputError``, nothing sent) a batch with invalid lines, unless told
        to skip them, or with nothing to do."""
        if self.invalid and not skip_invalid:
            raise BadInputError(f"{self.source}: {len(self.invalid)} invalid job(s); nothing "
                                "was sent. Fix them, or pass --skip-invalid to run the others")
        if not (self.queue or self.resumed or self.done or self.unresolved):
            raise BadInputError(f"{self.source}: no jobs to run")

    def budget(self, limit: int | None, *, flag: str,
               prices: dict[str, float] | None = None) -> dict[str, Any]:
        """The estimate (``estimate``); refuse (``BadInputError``, nothing sent) a batch
        that would bill more seconds than ``limit`` (named ``flag`` in the message)."""
        est = self.estimate(prices)
        if limit is not None and est["billed_seconds"] > limit:
            raise BadInputError(f"{self.source}: the batch would bill {est['billed_seconds']} s "
                                f"({est['jobs']} job(s)), over {flag} {limit}; nothing was "
                                "sent. Split the batch, or raise the limit")
        return est

    def estimate(self, prices: dict[str, float] | None = None) -> dict[str, Any]:
        """What submitting the queue would bill: seconds per model and in all, and money at
        the user's prices where they have one (``cost`` None when no model is priced)."""
        from wanvid.usage import PRICES_LABEL, price_for

        by_model: dict[str, dict[str, Any]] = {}
        for j in self.queue:
            if j.prepared is None:
                continue
            name = j.prepared.model.name
            row = by_model.setdefault(name, {"jobs": 0, "billed_seconds": 0, "cost": None})
            row["jobs"] += 1
            row["billed_seconds"] += j.prepared.duration
        cost: float | None = None
        unpriced = 0
        for name, row in by_model.items():
            price = price_for(name, prices or {})
            if price is None:
                unpriced += row["jobs"]
                continue
            row["cost"] = round(row["billed_seconds"] * price, 6)
            cost = (cost or 0.0) + row["cost"]
        return {"jobs": sum(r["jobs"] for r in by_model.values()),
                "billed_seconds": self.billed_seconds, "by_model": by_model,
                "cost": None if cost is None else round(cost, 6), "unpriced_jobs": unpriced,
                "prices_note": PRICES_LABEL if prices else None,
                "already_submitted": len(self.resumed), "already_done": len(self.done)}


def estimate_lines(est: dict[str, Any]) -> list[str]:
    """``batch --dry-run`` for humans: one line per model, then the total."""
    from wanvid.usage import money

    def cost(c: float | None) -> str:
        return "" if c is None else f", {money(c)} at your prices"

    lines = [f"{name}: {r['jobs']} job(s), {r['billed_seconds']} s billed{cost(r['cost'])}"
             for name, r in sorted(est["by_model"].items())]
    total = (f"total: {est['jobs']} job(s) to submit, {est['billed_seconds']} s billed"
             f"{cost(est['cost'])}")
    if est["cost"] is not None and est["unpriced_jobs"]:
        total += f" (partial: {est['unpriced_jobs']} job(s) of models with no price)"
    lines.append(total)
    if est["already_submitted"] or est["already_done"]:
        lines.append(f"({est['already_submitted']} already submitted, {est['already_done']} "
                     "already done: not billed again)")
    return lines


def _as_given(recorded: str | None, dest: Path | None) -> str | None:
    """A skipped job's video as the job names it (the journal holds absolute paths): its
    planned destination when that is the recorded file, else the recorded path."""
    import os

    if recorded and dest is not None and os.path.abspath(dest) == recorded:
        return str(dest)
    return recorded


def batch_label(source: str, now: float) -> str:
    """What a sidecar calls the batch its video came from: the jobs file's name and when
    this run started (``jobs.jsonl 2026-12-03 07:30``), so the gallery can group a round."""
    import datetime

    name = "stdin" if source == "-" else Path(source).name
    when = datetime.datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M")
    return f"{name} {when}"


def fingerprint_with_output(fingerprint: str | None, output: str | None) -> str | None:
    """The same inputs saved under another name are another job."""
    if fingerprint is None or not output:
        return fingerprint
    import hashlib

    return hashlib.sha256(f"{fingerprint}\0{output}".encode()).hexdigest()


def plan(source: str, service: Service, *, output: str | None = None,
         download: bool = True, force: bool = False, resolve: bool = False,
         skip_invalid: bool = False) -> Plan:
    """Read and validate every job, settle each output before paying (collisions, existing
    files, unwritable places), and match jobs against the journal: each journaled task
    (newest first) stands for at most one job, each open submit intent blocks one job of
    its fingerprint. ``resolve``: first settle open intents against the service's task
    list (queries only; not when invalid jobs stop the batch). Submits nothing."""
    from wanvid.statuses import FAILED_STATES

    job_list, bad = read_jobs(source, service.env.stdin)
    bad += prepare_jobs(job_list, service.prepare)
    service.check_output(output, writable=False)
    destinations: dict[Path, int] = {}
    for j in job_list:
        if j.state == "invalid":
            continue
        try:
            where = "output" if j.output else "-o"
            service.check_output(j.output or output, flag=where, writable=download)
            assert j.prepared is not None
            j.dest = service.fixed_destination(j.output or output, j.prepared)
        except BadInputError as e:
            j.state, j.error = "invalid", f"line {j.line}: {e.message}"
            bad.append(j)
            continue
        if j.dest is not None:  # two jobs must not write one file
            other = destinations.setdefault(j.dest.resolve(), j.line)
            if other != j.line:
                j.state = "invalid"
                j.error = (f"line {j.line}: saves to {j.dest} like line {other}; give it its "
                           "own output, or use {task_id} or {seed} in the template")
                bad.append(j)
                continue
        j.fingerprint = fingerprint_with_output(j.fingerprint, j.output or output)
    if resolve and (skip_invalid or not bad):
        service.resolve_intents()
    blocked: dict[str, list[IntentRecord | None]] = {}  # per fingerprint: each open
    seen_intents: set[int] = set()  # intent, when its submit is in flight (its holder runs)
    for it in service.journal.open_intents():
        seen_intents.add(it.intent_id)
        if it.fingerprint:
            blocked.setdefault(it.fingerprint, []).append(it if service.in_flight(it) else None)
    unresolved: list[Job] = []
    now = service.env.now()
    records: dict[str, list[TaskRecord]] = {}
    seen_tasks: set[str] = set()
    for rec in sorted(service.journal.list(), key=lambda r: r.submitted_at or 0, reverse=True):
        if rec.fingerprint:
            seen_tasks.add(rec.task_id)
            records.setdefault(rec.fingerprint, []).append(rec)
    done: list[tuple[Job, TaskRecord]] = []
    resumed: list[tuple[Job, TaskRecord]] = []
    for j in job_list:
        if j.state == "invalid":
            continue
        candidates = records.get(j.fingerprint or "", [])
        rec = candidates.pop(0) if candidates else None
        if rec is None:
            pass
        elif rec.path and Path(rec.path).is_file() and (
                rec.size is None or Path(rec.path).stat().st_size == rec.size):
            j.state = "skipped"
            done.append((j, rec))
            continue
        elif rec.status not in FAILED_STATES and not (
                rec.status == "SUCCEEDED" and rec.expires_at and rec.expires_at < now):
            j.state, j.task_id = "submitted", rec.task_id
            resumed.append((j, rec))
            continue
        if blocked.get(j.fingerprint or ""):  # it may exist: never a silent second one
            j.intent = blocked[j.fingerprint or ""].pop(0)
            j.state = "unresolved"
            if j.intent is not None:
                j.error = in_flight_message(j.intent)
            unresolved.append(j)
            continue
        if j.dest is not None and j.dest.exists() and not force:
            j.state = "invalid"
            j.error = (f"line {j.line}: {j.dest} exists; pass --force to overwrite it, or "
                       "give the job another output")
            bad.append(j)
    bad.sort(key=lambda j: j.line)
    return Plan(source, job_list, bad, done, resumed,
                [j for j in job_list if j.state == "queued"], unresolved, seen_tasks,
                seen_intents)


def in_flight_message(it: IntentRecord) -> str:
    return (f"wanvid process {it.pid} is submitting this job right now (its intent is open); "
            "not submitted again")


INTERRUPTED_MESSAGE = ("an earlier submit of this job may have created a task (its intent "
                       "is open); not submitted again")


class Taken(WanvidError):
    """Raised inside the transaction that would write a job's submit intent (nothing is
    written, nothing sent): since the plan, the journal got a task of the job's fingerprint
    (``task_id``), or an open intent (``intent``), that is not this run's: another process
    submitted the job meanwhile, or is submitting it now."""

    def __init__(self, *, task_id: str | None = None,
                 intent: IntentRecord | None = None) -> None:
        super().__init__("another wanvid process submitted this job")
        self.task_id, self.intent = task_id, intent


# --- the run ------------------------------------------------------------------------------

def flight_text(jobs: int | None, models: list[Any]) -> str:
    """What is in flight at once: ``-j N``, or each model's concurrent-task limit."""
    if jobs is not None:
        over = sorted({f"{m.concurrent_tasks} {m.name}" for m in models
                       if 0 < m.concurrent_tasks < jobs})
        return f"{jobs} in flight at once" + (
            f" (at most; the account's limits hold: {', '.join(over)})" if over else "")
    seen = {m.name: m.concurrent_tasks for m in models}
    return "in flight at once: " + ", ".join(f"{n} {name}" for name, n in seen.items()) + \
        " (each model's concurrent-task limit; -j N sets one for the batch)"


@dataclass
class Run:
    """What a batch run did: one row per job (``line`` first), the summary, the exit."""

    rows: list[dict[str, Any]]
    summary: Summary
    exit_status: ExitStatus
    unsubmitted: list[Job]
    journal_error: str | None = None
    unrecorded: list[str] = field(default_factory=list)
    unresolved: list[Job] = field(default_factory=list)  # blocked by an open submit intent
    resume: str = "wanvid batch FILE"  # the command that finishes the batch


class Runner:
    """Runs a plan: at most ``jobs`` tasks in flight, each submit holding one of its
    model's account slots (``Service.try_slot``) until its task ends; a 429 on submit
    slows the whole batch (never a failure); each job's result goes to ``on_row`` as it
    is known.

    Another process running the same jobs (the same batch started twice) never makes a
    job billed twice: each submit's intent is written only if, in the same transaction,
    the journal holds no task and no open intent of the job's fingerprint that the plan
    did not see (``Taken``). A task found there is followed instead (its video saved by
    whichever process gets to it first, the other finding it saved); an intent whose
    holder is submitting it now is waited for (until its task is journaled, or at most
    the settle time of an intent), then its task is followed, or the job submitted if the
    holder's submit proved that none was created.

    ``resume``: the command that finishes the batch (printed for jobs left undone)."""

    def __init__(self, service: Service, plan: Plan, *, jobs: int | None, reporter: Reporter,
                 output: str | None = None, timeout: float | None = None,
                 interval: float | None = None, download: bool = True, force: bool = False,
                 on_row: Callable[[dict[str, Any], Job, Outcome | None], None] | None = None,
                 resume: str | None = None) -> None:
        if jobs is not None and jobs < 1:
            raise BadInputError("--jobs must be at least 1")
        self.service, self.plan, self.jobs = service, plan, jobs
        self.running: dict[str, int] = {}  # model name -> its tasks in flight
        self.retry_at: float | None = None  # monotonic: when a slot is worth asking again
        self.told_waiting = False
        self.why_waiting = ""  # what the first job that found no slot waits for
        self.reporter, self.output = reporter, output
        self.timeout, self.interval, self.download, self.force = timeout, interval, download, force
        self.on_row = on_row
        self.summary = Summary(invalid=len(plan.invalid))
        self.rows: list[dict[str, Any]] = []
        self.queue = list(plan.queue)
        self.by_task: dict[str, Job] = {}
        self.throttles = 0
        self.sent = 0  # jobs this run submitted
        self.client: Client | RoutingClient | None = None
        self.resume = resume or f"wanvid batch {plan.source}"
        self.known_tasks = set(plan.seen_tasks)  # and every task this run follows
        self.known_intents = set(plan.seen_intents)  # and every intent a job waits on
        self.awaiting: list[Job] = []  # another process is submitting it (job.intent)
        self.followed: set[str] = set()  # tasks another running process submitted
        self.unresolved: list[Job] = []  # not submitted: an open intent may be its task
        self.submitting: tuple[Job, set[int]] | None = None  # (job, intents before it)
        self.hint: str | None = None  # after Ctrl-C or SIGTERM: what to run to finish

    def _row(self, job: Job, data: dict[str, Any], outcome: Outcome | None = None) -> None:
        row = {"line": job.line, **data}
        self.rows.append(row)
        if self.on_row is not None:
            self.on_row(row, job, outcome)

    def _next(self) -> tuple[int, int] | None:
        """(queue index, lease) of the next job to submit: the first whose model has a
        slot free now; None (``retry_at`` set) when none has."""
        blocked: dict[str, float] = {}
        for i, job in enumerate(self.queue):
            assert job.prepared is not None
            m = job.prepared.model
            if m.name in blocked:
                continue
            if (self.jobs is None and not m.concurrent_tasks
                    and self.running.get(m.name, 0) >= 1):
                continue  # no known limit: one at a time unless -j says more
            lease, wait = self.service.try_slot(job.prepared)
            if lease is not None:
                return i, lease
            if not blocked:
                self.why_waiting = self.service.slot_wait(job.prepared)
            blocked[m.name] = wait
        if blocked:
            self.retry_at = self.service.env.monotonic() + min(blocked.values())
        return None

    def retry_in(self) -> float | None:
        """Seconds until a job waiting for a slot, or for another process's submit of it,
        is worth another look (the loop's ``retry``), or None."""
        waits: list[float] = []
        if self.retry_at is not None and self.queue:
            waits.append(max(0.0, self.retry_at - self.service.env.monotonic()))
        if self.awaiting:
            waits.append(self.interval or self.service.settings.poll_interval)
        return min(waits) if waits else None

    # -- another process's submit of a job ---------------------------------------------

    def _check(self, tasks: list[str], intents: list[IntentRecord]) -> None:
        """In the transaction that writes a job's intent (``Service.submit(check=)``):
        a task or open intent of its fingerprint this run has not accounted for is
        another process's (``Taken``: nothing written, nothing sent)."""
        for tid in tasks:
            if tid not in self.known_tasks:
                raise Taken(task_id=tid)
        mine = self.service.journal.opened
        for it in intents:
            if it.intent_id not in self.known_intents and it.intent_id not in mine:
                raise Taken(intent=it)

    def _follow(self, job: Job, task_id: str) -> None:
        """Follow the task another process submitted for ``job`` (as an earlier run's)."""
        self.known_tasks.add(task_id)
        self.followed.add(task_id)  # billed in that process's summary, not this one's
        job.state, job.task_id = "submitted", task_id
        self.by_task[task_id] = job
        self._started(job)
        if job.prepared is not None:
            self.service.adopt_slot(job.prepared, task_id)
        self.reporter.note(f"line {job.line}: another wanvid process submitted this job "
                           f"meanwhile (task {task_id}); following that task instead of "
                           "submitting it again")

    def _worth_waiting(self, it: IntentRecord) -> bool:
        """Its holder runs and its POST may still be under way (within the settle time)."""
        from wanvid import intents

        settle = intents.settle_seconds(self.service.env.get(intents.SETTLE_ENV))
        return self.service.in_flight(it) and self.service.env.now() < it.created_at + settle

    def _hold(self, job: Job, it: IntentRecord) -> None:
        """``job``'s submit is ``it``, another process's: wait for it, or give up now."""
        self.known_intents.add(it.intent_id)  # each open intent stands for one job
        job.intent = it
        if self._worth_waiting(it):
            job.state = "waiting"
            self.awaiting.append(job)
            self.reporter.note(f"line {job.line}: wanvid process {it.pid} is submitting this "
                               "job right now; waiting for its task instead of submitting "
                               "it again")
        else:
            self._give_up(job)

    def _give_up(self, job: Job) -> None:
        it = job.intent
        job.state = "unresolved"
        job.error = (in_flight_message(it) if it is not None and self.service.in_flight(it)
                     else INTERRUPTED_MESSAGE)
        self.unresolved.append(job)
        self._unresolved_row(job)

    def _unresolved_row(self, job: Job, code: ExitStatus = ExitStatus.TIMEOUT,
                        resume: str = "wanvid wait --pending") -> None:
        self.summary.unsubmitted += 1
        self._row(job, {"task_id": None, "status": "UNRESOLVED", "exit_code": int(code),
                        "message": job.error or INTERRUPTED_MESSAGE, "resume": resume})

    def _recheck(self) -> list[str]:
        """The jobs waiting for another process's submit: its task is followed once
        journaled; a submit that created none sends the job back to the queue; one whose
        holder is gone (or that outlived the settle time) leaves the job unresolved."""
        from wanvid.journal import INTENT_OPEN

        if not self.awaiting:
            return []
        try:
            now = {it.intent_id: it for it in self.service.journal.intents()}
        except WanvidError:
            return []
        new: list[str] = []
        still: list[Job] = []
        for job in self.awaiting:
            assert job.intent is not None
            it = now.get(job.intent.intent_id, job.intent)
            if it.state != INTENT_OPEN and it.task_id and it.task_id not in self.known_tasks:
                self._follow(job, it.task_id)
                new.append(it.task_id)
            elif it.state != INTENT_OPEN:  # no task: the job is this run's to submit
                job.state, job.intent = "queued", None
                self.queue.append(job)
                self.queue.sort(key=lambda j: j.line)
            elif self._worth_waiting(it):
                still.append(job)
            else:
                self._give_up(job)
        self.awaiting = still
        return new

    def _started(self, job: Job) -> None:
        if job.prepared is not None:
            name = job.prepared.model.name
            self.running[name] = self.running.get(name, 0) + 1

    def refill(self, in_flight: int) -> list[str]:
        """Submit queued jobs while slots are free and -j allows (called by the polling
        loop when a task ends, and when ``retry_in`` comes)."""
        from wanvid.errors import AuthError, is_throttled
        from wanvid.retry import retry_delay

        env = self.service.env
        new: list[str] = self._recheck()
        self.retry_at = None
        while self.queue and (self.jobs is None or in_flight + len(new) < self.jobs):
            picked = self._next()
            if picked is None:
                if (self.retry_at is not None and not in_flight + len(new)
                        and not self.told_waiting):
                    self.told_waiting = True
                    sent = ("nothing sent yet" if not self.sent
                            else f"{len(self.queue)} job(s) still to send")
                    self.reporter.note(f"the batch waits ({sent}): {self.why_waiting}")
                break
            i, lease = picked
            job = self.queue[i]
            assert job.prepared is not None
            self.submitting = job, set(self.service.journal.opened)
            try:
                sub = self.service.submit(job.prepared, output=job.output or self.output,
                                          fingerprint=job.fingerprint, client=self.client,
                                          hold=True, lease=lease, check=self._check)
            except Taken as t:  # another process has it: nothing sent, the slot given back
                self.submitting = None
                self.queue.pop(i)
                if t.task_id is not None:
                    self._follow(job, t.task_id)
                    new.append(t.task_id)
                elif t.intent is not None:
                    self._hold(job, t.intent)
                continue
            except WanvidError as e:  # the slot was given back
                self.submitting = None
                if isinstance(e, AuthError):
                    raise
                if is_throttled(e):
                    self.throttles += 1
                    if in_flight + len(new) > 0:
                        break  # try again when a task finishes
                    delay = retry_delay(self.throttles, cap=60)
                    left = self.service.deadline.remaining()
                    if left is not None and delay > left:
                        break  # would end after --timeout: the rest stay NOT_SUBMITTED
                    self.reporter.note(f"throttled by the service; the batch waits {delay:.0f}s")
                    env.sleep(delay)
                    continue
                self.queue.pop(i)
                job.state = "error"
                self.summary.failed += 1
                env.err(f"wanvid: error: line {job.line}: {e.message}")
                self._row(job, {"task_id": None, "status": "ERROR", "exit_code": int(e.status),
                                "message": e.message})
                continue
            self.submitting = None
            self.throttles = 0
            self.sent += 1
            self.queue.pop(i)
            self.known_tasks.add(sub.task_id)
            job.state, job.task_id = "submitted", sub.task_id
            self.by_task[sub.task_id] = job
            self._started(job)
            new.append(sub.task_id)
        return new

    def on_outcome(self, o: Outcome) -> None:
        from wanvid.usage import usage_seconds

        job = self.by_task.get(o.task_id)
        if job is not None and job.prepared is not None:
            name = job.prepared.model.name
            self.running[name] = max(0, self.running.get(name, 0) - 1)
        if o.ok:
            self.summary.succeeded += 1
            if job is not None and job.prepared is not None and o.task_id not in self.followed:
                billed = usage_seconds(o.usage)
                self.summary.billed_seconds += int(billed if billed is not None
                                                   else job.prepared.duration)
        else:
            self.summary.failed += 1
            what = o.reason()
            line = f"line {job.line}: " if job is not None else ""
            self.service.env.err(f"wanvid: error: {line}{o.task_id} {o.status}: {what}")
        if job is not None:
            self._row(job, o.to_dict(), o)

    def run(self) -> Run:
        from wanvid.poll import overall_exit

        svc = self.service
        for j, rec in self.plan.done:
            self.summary.skipped += 1
            self._row(j, {"task_id": rec.task_id, "status": "SKIPPED",
                          "path": _as_given(rec.path, j.dest), "exit_code": 0})
        for j in self.plan.unresolved:
            if j.intent is not None:  # another process is submitting it: wait for that
                self._hold(j, j.intent)
            else:
                self.unresolved.append(j)
                self._unresolved_row(j)
        self.by_task.update({j.task_id: j for j, _ in self.plan.resumed if j.task_id})
        for j, _ in self.plan.resumed:  # still in flight: they count against the limits
            if j.task_id:
                svc.typed_output(j.task_id, j.output or self.output)  # printed as typed
                self._started(j)
                if j.prepared is not None:
                    svc.adopt_slot(j.prepared, j.task_id)
        self.client = svc.routing_client()
        # Each job's output template was journaled with its task (job's own, else -o).
        waiter = svc.waiter(reporter=self.reporter, output=None, timeout=self.timeout,
                            interval=self.interval, download=self.download, force=self.force,
                            on_outcome=self.on_outcome, client=self.client,
                            batch=batch_label(self.plan.source, svc.env.now()))
        outcomes: list[Outcome] = []
        try:
            outcomes = waiter.run(list(self.by_task), refill=self.refill, retry=self.retry_in)
        except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM: every job said, then the exit
            from wanvid.errors import exit_status_of

            self._interrupted(exit_status_of(e))
            raise
        finally:
            svc.release_leases()  # a killed batch's slots go with its pid (wanvid.leases)
            self.reporter.close()
        for j in self.awaiting:  # the wait timed out first: the other process's submit
            self._give_up(j)     # is still open
        self.awaiting = []
        for j in self.queue:  # never submitted: the wait timed out first
            self.summary.unsubmitted += 1
            self._row(j, {"task_id": None, "status": "NOT_SUBMITTED",
                          "exit_code": int(ExitStatus.TIMEOUT), "resume": self.resume})
        waited = svc._wait_result(outcomes, waiter)
        # Invalid lines skipped on request (--skip-invalid) are in the summary, not the exit
        # code: 2 promises that nothing was sent.
        code = overall_exit(outcomes) or waited.exit_status or ExitStatus.OK
        if not code and self.summary.failed:
            code = ExitStatus.TASK_FAILED
        if not code and (self.queue or self.unresolved):
            code = ExitStatus.TIMEOUT
        return Run(self.rows, self.summary, code, list(self.queue), waited.journal_error,
                   waited.unrecorded, list(self.unresolved), self.resume)

    def _interrupted(self, code: ExitStatus) -> None:
        """Ctrl-C or SIGTERM: a row for every job not reported yet (the one whose submit
        was cut, those submitted and not finished, those never sent), the summary's
        ``unfinished`` and ``resume``, and ``hint``: the line that says what to run."""
        from wanvid.journal import INTENT_OPEN

        said = {row["line"] for row in self.rows}
        cut: tuple[Job, IntentRecord | None] | None = None
        if self.submitting is not None:
            job, before = self.submitting
            mine = self.service.journal.opened - before
            try:
                its = [it for it in self.service.journal.intents() if it.intent_id in mine]
            except WanvidError:
                its = []
            cut = job, (its[0] if its else None)
            if cut[1] is not None and cut[1].state != INTENT_OPEN and cut[1].task_id:
                job.state, job.task_id = "submitted", cut[1].task_id  # its answer came
                cut = None
            elif cut[1] is None or cut[1].state != INTENT_OPEN:
                cut = None  # nothing was sent, or the service refused it: still queued
        in_flight = False
        for job in self.plan.jobs:
            if job.line in said or job.state in ("invalid", "skipped"):
                continue
            if cut is not None and job is cut[0]:
                in_flight = True
                job.error = ("interrupted while its submit was in flight: the service may "
                             "have created the task; the batch run again finds it (or finds "
                             "that none was created)")
                self.summary.unsubmitted += 1
                self._row(job, {"task_id": None, "status": "UNRESOLVED",
                                "exit_code": int(code), "message": job.error,
                                "resume": self.resume})
            elif job.state == "waiting" and job.intent is not None:
                job.error = in_flight_message(job.intent)
                self._unresolved_row(job, code, self.resume)
            elif job.task_id is not None and job.state == "submitted":
                status = "PENDING"
                try:
                    rec = self.service.journal.get(job.task_id)
                except WanvidError:
                    rec = None
                if rec is not None and rec.status:
                    status = rec.status
                self.summary.unfinished += 1
                self._row(job, {"task_id": job.task_id, "status": status,
                                "exit_code": int(code),
                                "message": (
                                    "its video was not saved yet when the batch was "
                                    "interrupted" if status == "SUCCEEDED" else
                                    f"still {status} when the batch was interrupted (the "
                                    "task goes on at the service)"),
                                "resume": self.resume})
            elif job.state == "queued":
                self.summary.unsubmitted += 1
                self._row(job, {"task_id": None, "status": "NOT_SUBMITTED",
                                "exit_code": int(code),
                                "message": "not submitted: the batch was interrupted first",
                                "resume": self.resume})
        left = self.summary.unsubmitted + self.summary.unfinished
        if not left:
            return
        self.summary.resume = self.resume
        what = [f"{n} {label}" for n, label in (
            (self.summary.unsubmitted, "job(s) not submitted"),
            (self.summary.unfinished, "submitted and not finished")) if n]
        stdin = " with the same jobs on stdin" if self.plan.source == "-" else ""
        self.hint = (", ".join(what) + f"; run `{self.resume}` again{stdin}: it skips the "
                     "jobs done, "
                     "waits for the submitted ones and submits the rest"
                     + (" (a submit was in flight: the service may have created the "
                        "task; the batch run again finds it, or finds that none was "
                        "created)" if in_flight else "")
                     + "; `wanvid wait --pending` only saves the submitted ones")
