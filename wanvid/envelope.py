"""The ``--json`` envelope: one versioned shape for every command, built in one place.

Every JSON line wanvid prints is an envelope (schema: ``docs/json-envelope.schema.json``)::

    {"wanvid_json": 1, "command": "wait", "kind": "task", "ok": true, "exit_code": 0,
     "data": {...}, "errors": []}

* ``kind`` is ``result`` for a command that prints one document (submit, download, tasks,
  models, config list, usage, dry runs), ``task`` / ``job`` for one line per task (status,
  wait, generate, cancel) or per batch line (batch), and ``summary`` for the line that
  always ends the output of those streaming commands (NDJSON).
* The last line's ``exit_code`` is the process's exit status, on success, on failure
  (bad input, no key, network error...), on Ctrl-C (130) and on SIGTERM (143); ``ok`` is
  ``exit_code == 0`` and ``errors`` is empty exactly when ``ok`` is true.
* Times in ``data`` are ISO 8601 UTC strings (``2026-12-03T09:24:00Z``), never epoch
  numbers; durations are seconds.

The command layer feeds result objects (``wanvid.service``'s ``Submitted``,
``TaskStatus``, ``DownloadResult``, ``CancelResult``, ``wanvid.poll.Outcome``...) to the
converters below and hands the data to a ``JsonOut``, whose ``emit`` is the one function
that prints an envelope. No typer here: the fast path of ``wanvid models --json`` uses it.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wanvid.errors import ExitStatus

if TYPE_CHECKING:
    from wanvid.context import Environment
    from wanvid.journal import TaskRecord
    from wanvid.poll import Outcome
    from wanvid.service import CancelResult, DownloadResult, Submitted, TaskStatus

VERSION = 1

# The stable error codes, one per exit status (README "JSON output").
ERROR_CODES: dict[int, str] = {
    ExitStatus.INTERNAL: "internal",
    ExitStatus.BAD_INPUT: "bad_input",
    ExitStatus.AUTH: "auth",
    ExitStatus.REJECTED: "rejected",
    ExitStatus.TASK_FAILED: "task_failed",
    ExitStatus.TIMEOUT: "timeout",
    ExitStatus.NETWORK: "network",
    ExitStatus.JOURNAL: "journal",
    ExitStatus.OUTPUT: "output",
    ExitStatus.INTERRUPTED: "interrupted",
    ExitStatus.STDOUT_CLOSED: "stdout_closed",
    ExitStatus.TERMINATED: "terminated",
}

Data = dict[str, Any] | list[Any] | None

# Commands that print one envelope per task (per job) and end with a ``summary`` line.
STREAMING = frozenset({"status", "wait", "generate", "cancel", "batch"})


def error_code(exit_code: int) -> str:
    return ERROR_CODES.get(int(exit_code), "internal")


def error(exit_code: int, message: str, **extra: Any) -> dict[str, Any]:
    """One entry of ``errors``: wanvid's code for the exit status, a message, and any of
    ``service_code``, ``request_id``, ``task_id``, ``line`` that are known."""
    d: dict[str, Any] = {"code": error_code(exit_code), "message": message}
    d.update({k: v for k, v in extra.items() if v is not None})
    return d


def envelope(command: str, kind: str, exit_code: int, data: Data,
             errors: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """THE envelope. ``ok`` follows from the exit code; a failure always has an error."""
    errs = list(errors)
    code = int(exit_code)
    if code and not errs:
        errs = [error(code, f"exit status {code}")]
    return {"wanvid_json": VERSION, "command": command, "kind": kind, "ok": code == 0,
            "exit_code": code, "data": data, "errors": errs if code else []}


def dumps(env: dict[str, Any]) -> str:
    return json.dumps(env, ensure_ascii=False, default=str)


# --- times ------------------------------------------------------------------------------

# The task API speaks Beijing time (UTC+8), as ``Service.remote_tasks`` assumes; the
# documentation does not state it (README "JSON output").
SERVICE_TZ = _dt.timezone(_dt.timedelta(hours=8))


def iso(epoch: float | None) -> str | None:
    """An epoch as ISO 8601 UTC, seconds precision (``2026-12-03T09:24:00Z``)."""
    if epoch is None:
        return None
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def service_time(value: object) -> str | None:
    """A service time (``YYYY-MM-DD HH:mm:ss[.SSS]``, Beijing time) as ISO 8601 UTC; an
    answer in another form is dropped (None) rather than passed on."""
    if not isinstance(value, str) or not value.strip():
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            dt = _dt.datetime.strptime(value.strip(), fmt).replace(tzinfo=SERVICE_TZ)
        except ValueError:
            continue
        return iso(dt.timestamp())
    return None


# --- data from result objects ----------------------------------------------------------

def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _expires(url: str | None) -> str | None:
    if not url:
        return None
    from wanvid.journal import expires_from_url

    return iso(expires_from_url(url))


def submitted_data(sub: Submitted) -> dict[str, Any]:
    out = sub.response.get("output") if isinstance(sub.response.get("output"), dict) else {}
    p = sub.prepared
    return {"task_id": sub.task_id, "status": _str(out.get("task_status")) or "PENDING",
            "model": p.model.name, "resolution": p.resolution, "duration": p.duration,
            "request_id": _str(sub.response.get("request_id"))}


def status_data(st: TaskStatus) -> dict[str, Any]:
    """A service answer about one task, in the task shape (never the raw object)."""
    return service_task(st.task_id, st.output, request_id=_str(st.response.get("request_id")))


def service_task(task_id: str, out: dict[str, Any], *,
                 request_id: str | None = None) -> dict[str, Any]:
    url = _str(out.get("video_url"))
    usage = out.get("usage")
    d: dict[str, Any] = {
        "task_id": task_id, "status": _str(out.get("task_status")) or "UNKNOWN",
        "model": _str(out.get("model_name")) or _str(out.get("model")),
        "submitted_at": service_time(out.get("submit_time")),
        "scheduled_at": service_time(out.get("scheduled_time")),
        "ended_at": service_time(out.get("end_time")),
        "video_url": url, "expires_at": _expires(url),
        "code": _str(out.get("code")), "message": _str(out.get("message")),
        "orig_prompt": _str(out.get("orig_prompt")),
        "actual_prompt": _str(out.get("actual_prompt")),
        "usage": usage if isinstance(usage, dict) else None,
    }
    if request_id:
        d["request_id"] = request_id
    return d


def task_list(resp: object) -> list[dict[str, Any]]:
    """The rows of the service's task list (``tasks --remote``): under ``data`` as the API
    reference has it, or ``tasks`` as SDK 2.0.2's JobList reads it (the first that is a
    list); rows that are not tables are dropped. The reference names a row's status
    ``status``: it is copied to ``task_status`` where that is missing."""
    if not isinstance(resp, dict):
        return []
    rows: object = None
    for key in ("data", "tasks"):
        if isinstance(resp.get(key), list):
            rows = resp[key]
            break
    out = []
    for t in rows if isinstance(rows, list) else []:
        if isinstance(t, dict):
            if "task_status" not in t and isinstance(t.get("status"), str):
                t = {**t, "task_status": t["status"]}
            out.append(t)
    return out


def remote_task(item: dict[str, Any]) -> dict[str, Any] | None:
    """One row of the service's task list in the task shape (None: no usable task id)."""
    from wanvid.sanitize import is_task_id

    tid = item.get("task_id")
    if not is_task_id(tid):
        return None
    return service_task(str(tid), item, request_id=_str(item.get("request_id")))


def journal_task(r: TaskRecord, now: float) -> dict[str, Any]:
    """One journal row (``wanvid tasks``)."""
    expires_in = (r.expires_at - now) if (r.expires_at and not r.path) else None
    return {"task_id": r.task_id, "status": r.status, "model": r.model or None,
            "submitted_at": iso(r.submitted_at), "path": r.path, "size": r.size,
            "sha256": r.sha256, "inputs": list(r.inputs or []),
            "video_url": r.video_url if not r.path else None,
            "expires_at": iso(r.expires_at),
            "expires_in": None if expires_in is None else int(expires_in),
            "code": r.code, "message": r.message}


def outcome_data(o: Outcome) -> dict[str, Any]:
    """What a wait learned about one task (wait, generate, batch)."""
    d: dict[str, Any] = {"task_id": o.task_id, "status": o.status,
                         "path": str(o.path) if o.path is not None else None,
                         "size": o.size if o.path is not None else None,
                         "sha256": o.sha256 if o.path is not None else None,
                         "video_url": o.video_url or None,
                         "expires_at": _expires(o.video_url),  # as status gives it
                         "code": o.code or None, "message": o.message or None,
                         "usage": o.usage or None, "resume": None}
    if o.exit_status in (ExitStatus.TIMEOUT, ExitStatus.NETWORK):
        d["resume"] = f"wanvid wait {o.task_id}"
    return d


def outcome_errors(o: Outcome) -> list[dict[str, Any]]:
    if o.ok:
        return []
    what = o.message or o.status
    return [error(o.exit_status, what, service_code=o.code, task_id=o.task_id)]


def job_data(row: dict[str, Any], outcome: Outcome | None) -> dict[str, Any]:
    """One batch job: its line and what became of it (the task shape of ``outcome_data``;
    ``status`` SKIPPED, ERROR, NOT_SUBMITTED, UNRESOLVED or INVALID when there is no
    outcome)."""
    if outcome is not None:
        return {"line": row.get("line"), **outcome_data(outcome)}
    keys = ("task_id", "status", "path", "size", "sha256", "video_url", "expires_at", "code",
            "message", "usage", "resume")
    return {"line": row.get("line"), **{k: row.get(k) for k in keys}}


def download_data(res: DownloadResult) -> dict[str, Any]:
    return {"task_id": res.task_id, "path": str(res.path), "size": res.size,
            "sha256": res.sha256, "skipped": res.skipped}


def cancel_data(r: CancelResult) -> dict[str, Any]:
    return {"task_id": r.task_id, "canceled": r.canceled,
            "status": "CANCELED" if r.canceled else None}


def cancel_errors(r: CancelResult) -> list[dict[str, Any]]:
    if r.canceled:
        return []
    return [error(r.exit_status, r.message or "cannot cancel; only PENDING tasks can be "
                  "canceled", service_code=r.code, task_id=r.task_id)]


def exception_error(e: BaseException, exit_code: int) -> dict[str, Any]:
    from wanvid.errors import WanvidError

    if isinstance(e, WanvidError):
        return error(exit_code, e.message, service_code=e.code, request_id=e.request_id)
    from wanvid.errors import Terminated

    if isinstance(e, Terminated):
        return error(exit_code, "terminated (SIGTERM); submitted tasks are in the journal: "
                     "`wanvid wait --pending` picks them up")
    if isinstance(e, KeyboardInterrupt):
        return error(exit_code, "interrupted; submitted tasks are in the journal: "
                     "`wanvid wait --pending` picks them up")
    return error(exit_code, f"{type(e).__name__}: {e}")


def task_id_of(line: str) -> str | None:
    """The task id a line stands for: the line itself, or, for a ``--json`` envelope
    (``submit --json``, a ``task`` line of wait/status), its ``data.task_id``; None for a
    ``summary`` line. A line that is neither is returned as it is (and refused by the
    caller's task-id check); an envelope without a task id raises ``BadInputError``."""
    if not line.startswith("{"):
        return line
    try:
        env = json.loads(line)
    except ValueError:
        return line
    if not isinstance(env, dict) or "wanvid_json" not in env:
        return line
    if env.get("kind") == "summary":
        return None
    data = env.get("data")
    tid = data.get("task_id") if isinstance(data, dict) else None
    if isinstance(tid, str):
        return tid
    from wanvid.errors import BadInputError
    from wanvid.sanitize import one_line

    errs = env.get("errors") or [{}]
    why = errs[0].get("message") if isinstance(errs[0], dict) else None
    what = f"a {one_line(env.get('command') or 'wanvid', 20)} --json line names no task" + (
        f" (it failed: {one_line(why, 200)})" if why else "")
    if env.get("ok") is False:
        raise FailedLine(what)
    raise BadInputError(what + "; nothing was queried")


class FailedLine(Exception):
    """The ``--json`` line of a command that failed (``ok`` false, no task): a submit of
    a loop that was refused. ``read_ids`` reports and skips it, the other tasks are waited
    for, and the command exits 2 at the end."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the stream of envelopes of one run -------------------------------------------------

@dataclass
class JsonOut:
    """The envelopes of one command run. Streaming commands print ``item`` lines as they
    come; ``finish`` (called by ``cli.main`` with the exit status, on every path) prints
    the ``result`` or the ``summary`` line, so the last line always tells how it ended."""

    env: Environment
    command: str
    streaming: bool | None = None  # None: by the command (STREAMING)
    data: Data = None
    summary: Callable[[], dict[str, Any]] | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # task ids a streaming run is about
    write: Callable[[str], None] | None = None  # item lines (a reporter's result())
    pending_errors: list[dict[str, Any]] = field(default_factory=list)  # for the last line
    finished: bool = False

    def __post_init__(self) -> None:
        if self.streaming is None:
            self.streaming = self.command in STREAMING

    def emit(self, kind: str, exit_code: int, data: Data,
             errors: Iterable[dict[str, Any]] = (), *,
             write: Callable[[str], None] | None = None) -> None:
        """Print one envelope (the one place envelopes reach stdout)."""
        (write or self.env.out)(dumps(envelope(self.command, kind, exit_code, data, errors)))

    def result(self, data: Data) -> None:
        """The data of a one-document command, printed by ``finish``."""
        self.data = data

    def item(self, kind: str, exit_code: int, data: dict[str, Any],
             errors: Iterable[dict[str, Any]] = ()) -> None:
        self.items.append({"exit_code": int(exit_code), **data})
        self.emit(kind, exit_code, data, errors, write=self.write)

    def expect(self, ids: Iterable[str]) -> None:
        self.expected += [t for t in ids if t not in self.expected]

    def default_summary(self) -> dict[str, Any]:
        """The summary of a run that set none of its own: the command's shape, counted from
        the items (a run stopped before its command set one: usage error, bad input)."""
        if self.command == "cancel":
            return {"tasks": len(self.expected) or len(self.items),
                    "canceled": sum(1 for i in self.items if i.get("canceled")),
                    "refused": sum(1 for i in self.items if not i.get("canceled"))}
        if self.command == "batch":
            return {"succeeded": 0, "failed": 0, "skipped": 0, "invalid": 0,
                    "unsubmitted": 0, "billed_seconds": 0}
        seen = {i.get("task_id") for i in self.items}
        # not finished: no task line (Ctrl-C), or given up on (--timeout, the network: the
        # task line has its `resume`); the task may still succeed, so it is not "failed"
        gave_up = [i["task_id"] for i in self.items if i["exit_code"] != 0 and i.get("resume")]
        unfinished = [t for t in self.expected if t not in seen] + gave_up
        return {"tasks": len(self.expected) or len(self.items),
                "ok": sum(1 for i in self.items if i["exit_code"] == 0),
                "failed": sum(1 for i in self.items
                              if i["exit_code"] != 0 and not i.get("resume")),
                "unfinished": unfinished,
                "resume": "wanvid wait --pending" if unfinished else None}

    def finish(self, exit_code: int, errors: Iterable[dict[str, Any]] = ()) -> None:
        """The last line: ``summary`` of a streaming command, else the ``result``."""
        if self.finished:
            return
        self.finished = True
        errs = list(errors) + self.pending_errors
        if self.streaming:
            data = (self.summary or self.default_summary)()
            if exit_code and not errs:
                bad = sum(1 for i in self.items if i["exit_code"] != 0)
                errs = [error(exit_code, f"{bad} of {len(self.items)} item(s) did not "
                              "succeed" if bad else f"exit status {exit_code}")]
            self.emit("summary", exit_code, data, errs)
        else:
            self.emit("result", exit_code, self.data, errs)
