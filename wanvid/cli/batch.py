"""wanvid batch: many jobs, validated first, N in flight, re-runs skip what is done."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wanvid.cli.app import app
from wanvid.cli.common import json_out as _json
from wanvid.cli.common import report_unrecorded, reporter, service
from wanvid.cli.options import (
    DownloadsOpt,
    ForceOpt,
    IntervalOpt,
    NoSidecarOpt,
    QuietOpt,
    TimeoutOpt,
    UploadOpt,
)
from wanvid.errors import BadInputError, ExitStatus

if TYPE_CHECKING:
    from wanvid.batch import Job, Plan, Run
    from wanvid.envelope import JsonOut
    from wanvid.poll import Outcome
    from wanvid.progress import QuietReporter
    from wanvid.service import Service


@app.command()
def batch(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="Jobs: JSON Lines, or CSV "
                                          "with a header row; - reads stdin.")],
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Tasks in flight at once "
                                             "(default: config jobs, else each model's "
                                             "concurrent-task limit).")] = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Template for jobs without their own output, e.g. "
        "'out/{stem}-{seed}.mp4'.")] = None,
    no_download: Annotated[bool, typer.Option("--no-download", help="Don't save the videos; "
                                              "print their URLs.")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Run the valid jobs even "
                                               "if some lines are invalid.")] = False,
    upload: UploadOpt = None,
    timeout: TimeoutOpt = None,
    interval: IntervalOpt = None,
    force: ForceOpt = False,
    no_sidecar: NoSidecarOpt = False,
    downloads: DownloadsOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every job and print what "
                                          "the batch would bill; send nothing.")] = False,
    max_seconds: Annotated[int | None, typer.Option(
        "--max-seconds", min=1, help="Refuse (exit 2, nothing sent) a batch that would bill "
        "more seconds than this (config: max_seconds).")] = None,
    quiet: QuietOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON Lines: one envelope per job "
                                           "(invalid lines too), then a summary.")] = False,
) -> int:
    r"""Run many jobs: validate all first, keep N in flight, skip jobs already done.

    Example: printf '%s\n' '{"image": "a.png", "prompt": "waves"}' | wanvid batch - -j 2

    Example: wanvid batch jobs.jsonl --dry-run;  wanvid batch jobs.jsonl --max-seconds 300
    """
    from dataclasses import asdict

    from wanvid.batch import Runner, Summary, flight_text, plan
    from wanvid.usage import price_table

    jo = _json(ctx, "batch", json_out)
    summary = Summary()
    if jo is not None:
        jo.summary = lambda: asdict(summary)
        jo.streaming = not dry_run
    svc = service(ctx, quiet)
    svc.upload = upload
    if no_sidecar:
        svc.sidecars = False
    svc.downloads = downloads
    n = jobs if jobs is not None else svc.settings.jobs if svc.settings.jobs_set else None
    if n is not None and n < 1:
        raise BadInputError("--jobs must be at least 1")
    if not dry_run:
        svc.start_deadline(timeout)  # resolving interrupted submits counts too
    p = plan(source, svc, output=output, download=not no_download, force=force,
             resolve=not dry_run, skip_invalid=skip_invalid)
    summary.invalid = len(p.invalid)
    _report_invalid(svc, jo, p, dry_run=dry_run)
    p.check(skip_invalid=skip_invalid)
    est = p.budget(max_seconds if max_seconds is not None else svc.settings.max_seconds,
                   flag="--max-seconds" if max_seconds is not None else "config max_seconds",
                   prices=price_table(svc.settings.prices))
    if dry_run:
        return _dry_run(svc, jo, p, est)
    rep = reporter(svc, quiet)
    if jo is not None:
        jo.write = rep.result
    if not quiet and (p.queue or p.resumed):
        svc.env.err(f"wanvid: {len(p.queue)} job(s) to submit, {len(p.resumed)} already "
                    f"submitted, {len(p.done)} already done; "
                    + flight_text(n, [j.prepared.model for j in
                                      [*p.queue, *(r for r, _ in p.resumed)] if j.prepared]))
    runner = Runner(svc, p, jobs=n, reporter=rep, output=output, timeout=timeout,
                    interval=interval, download=not no_download, force=force,
                    on_row=_row_printer(jo, rep), resume=_resume_command(ctx, source))
    summary = runner.summary
    try:
        run = runner.run()
    except KeyboardInterrupt:  # every job has its row; the closing line says what to run
        if runner.hint:
            from wanvid import runner as ending

            ending.resume_hint.append(runner.hint)
        raise
    if jo is not None:
        jo.write = None
    return _finish(svc, jo, run, source, quiet=quiet)


def _resume_command(ctx: typer.Context, source: str) -> str:
    """This very command (its jobs and its -o make the jobs' fingerprints: without them a
    re-run would not recognise the jobs done), to run again."""
    import shlex

    from wanvid.cli.common import State

    state = ctx.obj
    argv = state.argv if isinstance(state, State) and state.argv else ["batch", source]
    return shlex.join(["wanvid", *argv])


def _report_invalid(svc: Service, jo: JsonOut | None, p: Plan, *, dry_run: bool) -> None:
    """One stderr line per invalid job; with --json, an envelope each (a dry run's single
    result carries them as its errors)."""
    from wanvid.envelope import error

    for j in p.invalid:
        svc.env.err(f"wanvid: error: {p.source}: {j.error}")
        message = _without_line(j.line, j.error)
        if jo is not None and dry_run:
            jo.pending_errors.append(error(ExitStatus.BAD_INPUT, message, line=j.line))
        elif jo is not None:
            jo.item("job", ExitStatus.BAD_INPUT,
                    {"line": j.line, "task_id": None, "status": "INVALID",
                     "message": message},
                    [error(ExitStatus.BAD_INPUT, message, line=j.line)])


def _without_line(line: int, message: str | None) -> str:
    """An invalid line's message for JSON, where ``line`` is a key of its own (README's jq
    recipe prints "line 4: INVALID missing.png: ...", not "line 4: ... line 4: ...")."""
    return (message or "invalid").removeprefix(f"line {line}: ")


def _dry_run(svc: Service, jo: JsonOut | None, p: Plan, est: dict[str, Any]) -> int:
    """What the batch would bill: one result envelope, or lines per model and the total."""
    from wanvid.batch import estimate_lines

    if jo is not None:
        jo.streaming = False
        jo.result({"dry_run": True, **est,
                   "invalid": [{"line": j.line, "message": _without_line(j.line, j.error)}
                               for j in p.invalid]})
    else:
        for line in estimate_lines({"dry_run": True, **est}):
            svc.env.out(line)
    return 0


def _row_printer(jo: JsonOut | None, rep: QuietReporter) -> Callable[[dict[str, Any], Job,
                                                                    Outcome | None], None]:
    """What a finished job prints on stdout: its envelope, or its path (the URL with
    --no-download); a failure only on stderr (the reporter's)."""
    from wanvid.envelope import error, job_data, outcome_errors

    def on_row(row: dict[str, Any], job: Job, outcome: Outcome | None) -> None:
        if jo is not None:
            code = outcome.exit_status if outcome is not None else row.get("exit_code", 0)
            errs = (outcome_errors(outcome) if outcome is not None else
                    [error(code, row.get("message") or row["status"], line=job.line)]
                    if code else [])
            jo.item("job", code, job_data(row, outcome), errs)
        elif row["status"] == "SKIPPED":
            rep.result(row["path"])
        elif outcome is not None and outcome.ok:
            rep.result(str(outcome.path) if outcome.path else
                       f"{outcome.task_id} {outcome.video_url}")

    return on_row


def _finish(svc: Service, jo: JsonOut | None, run: Run, source: str, *, quiet: bool) -> int:
    """The lines after a run (what is left to do, the summary) and its exit status."""
    from wanvid.envelope import error

    if run.unresolved:
        svc.env.err(f"wanvid: error: {len(run.unresolved)} job(s) not submitted: an earlier "
                    "submit may have created their task (or another wanvid process is "
                    "submitting them right now); `wanvid wait --pending` settles "
                    f"that, then `{run.resume}` does the rest")
    if run.unsubmitted:
        svc.env.err(f"wanvid: error: {len(run.unsubmitted)} job(s) not submitted before the "
                    f"timeout; run `{run.resume}` again to do them (finished jobs "
                    "are skipped)")
    if not quiet:
        svc.env.err(f"wanvid: batch: {run.summary.line()}")
    report_unrecorded(svc.env, run)
    if jo is not None and run.journal_error:
        jo.pending_errors.append(error(run.exit_status, run.journal_error,
                                       unrecorded=run.unrecorded))
    return int(run.exit_status)
