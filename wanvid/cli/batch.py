"""wanvid batch: many jobs, validated first, N in flight, re-runs skip what is done."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from wanvid.cli.app import app
from wanvid.cli.common import (
    _check_output,
    _check_template,
    _dest_factory,
    _fingerprint_with_output,
    _fixed_destination,
    _journal,
    _raise_unexpected,
    _report_unrecorded,
    _routing_client,
    _settings,
    _state,
    do_submit,
    prepare,
)
from wanvid.cli.options import ForceOpt, IntervalOpt, QuietOpt, TimeoutOpt
from wanvid.errors import BadInputError, ExitStatus, WanvidError


@app.command()
def batch(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="Jobs: JSON Lines, or CSV "
                                          "with a header row; - reads stdin.")],
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Tasks in flight at once "
                                             "(default: config jobs, 2).")] = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Template for jobs without their own output, e.g. "
        "'out/{stem}-{seed}.mp4'.")] = None,
    no_download: Annotated[bool, typer.Option("--no-download", help="Don't save the videos; "
                                              "print their URLs.")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Run the valid jobs even "
                                               "if some lines are invalid.")] = False,
    timeout: TimeoutOpt = None,
    interval: IntervalOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per job on stdout "
                                           "(JSON Lines).")] = False,
) -> None:
    """Run many jobs: validate all first, keep N in flight, skip jobs already done.

    Example: printf '%s\n' '{"image": "a.png", "prompt": "waves"}' | wanvid batch - -j 2
    """
    import json

    from wanvid.batch import Summary, prepare_jobs, read_jobs
    from wanvid.client import ThrottledError
    from wanvid.poll import FAILED_STATES, Outcome, Waiter, WaitOptions, overall_exit
    from wanvid.progress import make_reporter
    from wanvid.retry import retry_delay

    st = _state(ctx)
    settings = _settings(st)
    n = jobs if jobs is not None else settings.jobs
    if n < 1:
        raise BadInputError("--jobs must be at least 1")
    job_list, bad = read_jobs(source, st.env.stdin)
    bad += prepare_jobs(job_list, lambda o: prepare(st, o, settings))
    _check_template(output, "-o")
    destinations: dict[Path, int] = {}
    for j in job_list:
        if j.state == "invalid":
            continue
        try:
            _check_template(j.output, "output")
            if not no_download:
                _check_output(j.output or output, settings, "output" if j.output else "-o")
            j.dest = _fixed_destination(j.output or output, j.prepared, settings)
        except BadInputError as e:
            j.state, j.error = "invalid", f"line {j.line}: {e.message}"
            bad.append(j)
            continue
        if j.dest is not None:  # two jobs must not write one file
            other = destinations.setdefault(j.dest.resolve(), j.line)
            if other != j.line:
                j.state = "invalid"
                j.error = (f"line {j.line}: saves to {j.dest} like line {other}; give it its own "
                           "output, or use {task_id} or {seed} in the template")
                bad.append(j)
                continue
        # The same inputs saved under another name are another job.
        j.fingerprint = _fingerprint_with_output(j.fingerprint, j.output or output)
    valid = [j for j in job_list if j.state != "invalid"]
    journal = _journal(st)
    now = st.env.now()

    # Re-runs: each journaled task (newest first) stands for at most one job.
    records: dict[str, list[Any]] = {}
    for rec in sorted(journal.list(), key=lambda r: r.submitted_at or 0, reverse=True):
        if rec.fingerprint:
            records.setdefault(rec.fingerprint, []).append(rec)
    done_rows: list[tuple[Any, Any]] = []
    resumed: list[tuple[Any, Any]] = []
    for j in valid:
        candidates = records.get(j.fingerprint or "", [])
        rec = candidates.pop(0) if candidates else None
        if rec is None:
            pass
        elif rec.path and Path(rec.path).is_file() and (
                rec.size is None or Path(rec.path).stat().st_size == rec.size):
            j.state = "skipped"
            done_rows.append((j, rec))
            continue
        elif rec.status not in FAILED_STATES and not (
                rec.status == "SUCCEEDED" and rec.expires_at and rec.expires_at < now):
            j.state, j.task_id = "submitted", rec.task_id
            resumed.append((j, rec))
            continue
        # to be submitted: its file must not be in the way
        if j.dest is not None and j.dest.exists() and not force:
            j.state = "invalid"
            j.error = (f"line {j.line}: {j.dest} exists; pass --force to overwrite it, or give "
                       "the job another output")
            bad.append(j)
    bad.sort(key=lambda j: j.line)
    for j in bad:
        st.env.err(f"wanvid: error: {source}: {j.error}")
    if bad and not skip_invalid:
        raise BadInputError(f"{source}: {len(bad)} invalid job(s); nothing was sent. Fix them, "
                            "or pass --skip-invalid to run the others")
    valid = [j for j in job_list if j.state != "invalid"]
    if not valid:
        raise BadInputError(f"{source}: no jobs to run")
    reporter = make_reporter(st.env, quiet=quiet)
    summary = Summary(invalid=len(bad))
    results: list[dict[str, Any]] = []

    def report(job: Any, data: dict[str, Any]) -> None:
        row = {"line": job.line, **data}
        results.append(row)
        if json_out:
            reporter.result(json.dumps(row, ensure_ascii=False))

    by_task: dict[str, Any] = {j.task_id: j for j, _ in resumed}
    for j, rec in done_rows:
        summary.skipped += 1
        report(j, {"task_id": rec.task_id, "status": "SKIPPED", "path": rec.path,
                    "exit_code": 0})
        if not json_out:
            reporter.result(rec.path)
    queue = [j for j in valid if j.state == "queued"]
    if not quiet and (queue or by_task):
        st.env.err(f"wanvid: {len(queue)} job(s) to submit, {len(by_task)} already submitted, "
                   f"{summary.skipped} already done; {n} in flight at once")
    client = _routing_client(st, settings, journal)
    throttles = 0

    def refill(in_flight: int) -> list[str]:
        nonlocal throttles
        new: list[str] = []
        while queue and in_flight + len(new) < n:
            job = queue[0]
            try:
                resp = do_submit(st, job.prepared, settings, journal,
                                 output=job.output or output, fingerprint=job.fingerprint,
                                 client=client)
            except ThrottledError:
                throttles += 1
                if in_flight + len(new) > 0:
                    break  # try again when a task finishes
                delay = retry_delay(throttles, cap=60)
                reporter.note(f"throttled by the service; the batch waits {delay:.0f}s")
                st.env.sleep(delay)
                continue
            except (BadInputError, WanvidError) as e:
                from wanvid.errors import AuthError

                if isinstance(e, AuthError):
                    raise
                queue.pop(0)
                job.state = "error"
                summary.failed += 1
                st.env.err(f"wanvid: error: line {job.line}: {e.message}")
                report(job, {"task_id": None, "status": "ERROR", "exit_code": int(e.status),
                             "message": e.message})
                continue
            throttles = 0
            queue.pop(0)
            tid = resp["output"]["task_id"]
            job.state, job.task_id = "submitted", tid
            by_task[tid] = job
            new.append(tid)
        return new

    outcomes: list[Outcome] = []

    def on_outcome(o: Outcome) -> None:
        outcomes.append(o)
        job = by_task.get(o.task_id)
        if o.ok:
            summary.succeeded += 1
            if job is not None and job.prepared is not None:
                usage = o.usage or {}
                summary.billed_seconds += int(usage.get("duration") or usage.get("video_duration")
                                              or job.prepared.duration)
            if not json_out:
                reporter.result(str(o.path) if o.path else f"{o.task_id} {o.video_url}")
        else:
            summary.failed += 1
            what = f"{o.code}: {o.message}" if o.code else (o.message or o.status)
            line = f"line {job.line}: " if job is not None else ""
            st.env.err(f"wanvid: error: {line}{o.task_id} {o.status}: {what}")
        if job is not None:
            report(job, o.to_dict())

    opts = WaitOptions(interval=interval or settings.poll_interval, timeout=timeout,
                       max_qps=settings.max_qps, download=not no_download, force=force,
                       raise_unexpected=_raise_unexpected(st))
    # Each job's output template was journaled with its task (job's own, else -o).
    waiter = Waiter(client=client, journal=journal, reporter=reporter, options=opts,
                    dest_for=_dest_factory(st, settings, journal, None),
                    clock=st.env.monotonic, wall=st.env.now, sleep=st.env.sleep,
                    on_outcome=on_outcome)
    try:
        waiter.run(list(by_task), refill=refill)
    finally:
        reporter.close()
    for j in queue:  # never submitted: the wait timed out first
        summary.unsubmitted += 1
        report(j, {"task_id": None, "status": "NOT_SUBMITTED",
                   "exit_code": int(ExitStatus.TIMEOUT), "resume": f"wanvid batch {source}"})
    if queue:
        st.env.err(f"wanvid: error: {len(queue)} job(s) not submitted before the timeout; "
                   f"run `wanvid batch {source}` again to do them (finished jobs are skipped)")
    if not quiet:
        st.env.err(f"wanvid: batch: {summary.line()}")
    # Invalid lines skipped on request (--skip-invalid) are in the summary, not the exit
    # code: 2 promises that nothing was sent.
    unrecorded = _report_unrecorded(st, waiter, journal)
    code = overall_exit(outcomes) or unrecorded or ExitStatus.OK
    if not code and summary.failed:
        code = ExitStatus.TASK_FAILED
    if not code and queue:
        code = ExitStatus.TIMEOUT
    if code:
        raise typer.Exit(int(code))

