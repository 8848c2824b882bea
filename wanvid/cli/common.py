"""What the commands share: the per-run state (root options and the ``Service`` built from
them) and the renderers of results that several commands print. No use case lives here:
those are ``wanvid.service``'s."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

from wanvid.context import Environment
from wanvid.errors import ExitStatus

if TYPE_CHECKING:
    from wanvid.batch import Run
    from wanvid.envelope import JsonOut
    from wanvid.poll import Outcome
    from wanvid.progress import QuietReporter
    from wanvid.service import Service, WaitResult


@dataclass
class State:
    """What one run of the CLI knows: its environment and the root options."""

    env: Environment
    argv: list[str] = field(default_factory=list)
    region: str | None = None
    base_url: str | None = None
    workspace: str | None = None
    debug: bool = False
    json: JsonOut | None = None  # --json: the envelopes of this run (cli.main finishes them)
    _service: Service | None = None

    @property
    def service(self) -> Service:
        if self._service is None:
            from wanvid.service import Service

            self._service = Service(self.env, region=self.region, base_url=self.base_url,
                                    debug=self.debug, workspace=self.workspace)
        return self._service


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    if not isinstance(obj, State):  # invoked without main() (e.g. typer's CliRunner)
        obj = State(env=Environment())
        ctx.find_root().obj = obj
    return obj


def service(ctx: typer.Context, quiet: bool = False) -> Service:
    """The run's ``Service``; ``quiet`` (-q) silences notes and progress for the run."""
    st = _state(ctx)
    if quiet:
        st.env.quiet = True
        st.service.quiet = True
    return st.service


def json_out(ctx: typer.Context, command: str, enabled: bool) -> JsonOut | None:
    """The envelopes of this run when ``--json`` is on (else None, and ``main`` prints no
    envelope even if it guessed --json from the arguments)."""
    st = _state(ctx)
    if not enabled:
        st.json = None
        return None
    if st.json is None:
        from wanvid.envelope import JsonOut

        st.json = JsonOut(st.env, command)
    if st.json.command != command:
        from wanvid.envelope import STREAMING

        st.json.command, st.json.streaming = command, command in STREAMING
    return st.json


def reporter(svc: Service, quiet: bool) -> QuietReporter:
    from wanvid.progress import make_reporter

    return make_reporter(svc.env, quiet=quiet, namer=lambda tid: input_stem(svc, tid))


def input_stem(svc: Service, task_id: str) -> str:
    """The stem of a task's first input as journaled (``cat`` for ``photos/cat.png``), for
    the live rows; "" for a data: URI, an unknown task or an unreadable journal."""
    from pathlib import PurePosixPath

    try:
        rec = svc.journal.get(task_id)
    except Exception:  # a name is a nicety: a journal problem is reported elsewhere
        return ""
    if rec is None or not rec.inputs or rec.inputs[0].startswith("data:"):
        return ""
    return PurePosixPath(rec.inputs[0].split("?")[0].rstrip("/")).stem


# --- renderers ----------------------------------------------------------------------------

def dry_run_text(d: dict[str, Any]) -> list[str]:
    lines = [f"{d['method']} {d['url']}"]
    lines += [f"{k}: {v}" for k, v in d["headers"].items()]
    lines.append("")
    lines += json.dumps(d["body"], indent=2, ensure_ascii=False).splitlines()
    ps = d.get("predicted_size")
    size = (f"about {ps['width']}×{ps['height']} ({ps['resolution']})" if ps
            else "unknown (the image is a URL)")
    lines.append(f"# request body: {d['body_bytes']} bytes; predicted output: {size}; "
                 f"billed: {d['billed_seconds']} s")
    for u in d.get("uploads", []):
        lines.append(f"# would upload {u['input']} ({u['flag']}, {u['bytes']} bytes) to "
                     "temporary storage first")
    return lines


def outcome_printer(svc: Service, rep: QuietReporter, jo: JsonOut | None) -> Any:
    """Print each task's outcome as it comes: the path (or URL) on stdout (with --json: a
    ``task`` envelope), or an error line on stderr with the resume command where one
    helps."""
    env = svc.env

    def on_outcome(o: Outcome) -> None:
        if jo is not None:
            from wanvid.envelope import outcome_data, outcome_errors

            jo.item("task", o.exit_status, outcome_data(o), outcome_errors(o))
        elif o.ok and o.path is not None:
            rep.result(str(o.path))
        elif o.ok:
            rep.result(f"{o.task_id} {o.video_url}")
        if not o.ok:
            what = o.reason()
            env.err(f"wanvid: error: {o.task_id} {o.status}: {what}")
            if o.exit_status in (ExitStatus.TIMEOUT, ExitStatus.NETWORK):
                env.err(f"wanvid: resume with: wanvid wait {o.task_id}")

    return on_outcome


def report_unrecorded(env: Environment, res: WaitResult | Run) -> None:
    """Journal writes that failed during a wait: name each (the videos are saved)."""
    if not res.journal_error:
        return
    env.err(f"wanvid: error: {res.journal_error}:")
    for line in res.unrecorded:
        env.err(f"wanvid:   {line}")
    env.err("wanvid: once the journal is writable, `wanvid wait --pending` records them")


def wait_and_render(svc: Service, ids: list[str], *, output: str | None,
                    timeout: float | None, interval: float | None, download: bool,
                    force: bool, quiet: bool, json_out: JsonOut | None) -> int:
    """``Service.wait`` with the live display and outcome lines; returns the exit status."""
    rep = reporter(svc, quiet)
    if json_out is not None:
        json_out.expect(ids)
        json_out.write = rep.result
    res = svc.wait(ids, reporter=rep, output=output, timeout=timeout, interval=interval,
                   download=download, force=force,
                   on_outcome=outcome_printer(svc, rep, json_out))
    report_unrecorded(svc.env, res)
    if json_out is not None:
        json_out.write = None
        if res.journal_error:
            from wanvid.envelope import error

            json_out.pending_errors.append(error(res.exit_status, res.journal_error,
                                                 unrecorded=res.unrecorded))
    return int(res.exit_status)


def unresolved_exit(svc: Service, json_out: JsonOut | None, code: int) -> int:
    """``wait --pending``: submits left unresolved (each named on stderr as it was left
    open) make an otherwise clean run exit 6, since a task may still exist unwaited."""
    left = svc.interrupted_intents()  # not those a running submit will close
    if not left or code:
        return code
    msg = (f"{len(left)} interrupted submit(s) still unresolved (named above); "
           "`wanvid wait --pending` tries again")
    svc.env.err(f"wanvid: {msg}")
    if json_out is not None:  # nothing above in a JSON stream: the error names them
        from wanvid.envelope import error
        from wanvid.service import intent_label

        named = "; ".join(intent_label(it) for it in left[:5]) + (
            f"; and {len(left) - 5} more" if len(left) > 5 else "")
        json_out.pending_errors.append(error(
            ExitStatus.TIMEOUT, f"{len(left)} interrupted submit(s) still unresolved: "
            f"{named}; `wanvid wait --pending` tries again"))
    return int(ExitStatus.TIMEOUT)


def worst_of(statuses: Iterable[ExitStatus]) -> int:
    from wanvid.service import worst

    return int(worst(statuses))
