"""Commands about existing tasks: status, wait, download, tasks, cancel."""

from __future__ import annotations

from typing import Annotated

import typer

from wanvid.cli.app import app
from wanvid.cli.common import json_out as _json
from wanvid.cli.common import reporter, service, unresolved_exit, wait_and_render, worst_of
from wanvid.cli.options import (
    DownloadsOpt,
    ForceOpt,
    IntervalOpt,
    JsonOpt,
    NoSidecarOpt,
    OutputOpt,
    QuietOpt,
    TimeoutOpt,
)


@app.command()
def status(
    ctx: typer.Context,
    task_ids: Annotated[list[str] | None, typer.Argument(
        metavar="TASK_ID", help="Task ids (or read from stdin, one per line).")] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0, help="Give up after this many seconds, every query included "
        "(exit 6). Default: 90 s for each task's query, retries included.")] = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> int:
    """Ask the service for the status of tasks (one line per task).

    Example: wanvid status 0385dc79-5ff8-4d82-bcb6-0123456789ab --json | jq -r '.data.status // empty'
    """
    from wanvid.quick import status_command  # also run without Typer: wanvid.entry

    jo = _json(ctx, "status", json_out)
    return status_command(service(ctx, quiet), task_ids, jo, timeout)


# --- wait / download ------------------------------------------------------------------------



@app.command()
def wait(
    ctx: typer.Context,
    task_ids: Annotated[list[str] | None, typer.Argument(
        metavar="TASK_ID", help="Task ids; none and stdin not a terminal: read from stdin.")]
    = None,
    output: OutputOpt = None,
    timeout: TimeoutOpt = None,
    interval: IntervalOpt = None,
    no_download: Annotated[bool, typer.Option("--no-download", help="Print the video URL "
                                              "instead of saving the file.")] = False,
    pending: Annotated[bool, typer.Option("--pending", help="Wait for every unfinished or "
                                          "not-yet-downloaded task in the journal.")] = False,
    force: ForceOpt = False,
    no_sidecar: NoSidecarOpt = False,
    downloads: DownloadsOpt = None,
    quiet: QuietOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON Lines: one envelope per "
                                           "task, then a summary.")] = False,
) -> int:
    """Wait for tasks, save each video as soon as it is ready, print the paths.

    Example: wanvid submit cat.png -p "the cat yawns" | wanvid wait -o videos/
    """
    jo = _json(ctx, "wait", json_out)
    svc = service(ctx, quiet)
    if no_sidecar:
        svc.sidecars = False
    svc.downloads = downloads
    ids = svc.read_ids(task_ids) if (task_ids or not pending) else []
    if pending:
        svc.start_deadline(timeout)  # resolving interrupted submits counts too
        # Two tasks named to one file are refused before resolving (a query) too.
        svc.check_wait(ids + [r.task_id for r in svc.journal.pending()], output,
                       download=not no_download, force=force)
        ids += [t for t in svc.pending_ids() if t not in ids]
        if not ids and not svc.journal.open_intents():
            svc.env.note("nothing pending in the journal")
            return 0
    code = wait_and_render(svc, ids, output=output, timeout=timeout, interval=interval,
                           download=not no_download, force=force, quiet=quiet,
                           json_out=jo) if ids or not pending else 0
    code = svc.with_failed_inputs(code, jo)
    return unresolved_exit(svc, jo, code) if pending else code


@app.command()
def download(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="TASK_ID|URL",
                                          help="A task id, or a video URL.")],
    output: OutputOpt = None,
    force: ForceOpt = False,
    no_sidecar: NoSidecarOpt = False,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0, help="Give up after this many seconds, status query included "
        "(exit 6; what was fetched is kept and resumed next time).")] = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> int:
    """Save a finished task's video (resumes a partial download; never overwrites
    without --force).

    Example: wanvid download 0385dc79-5ff8-4d82-bcb6-0123456789ab -o clip.mp4
    """
    from wanvid.envelope import download_data

    jo = _json(ctx, "download", json_out)
    svc = service(ctx, quiet)
    if no_sidecar:
        svc.sidecars = False
    svc.start_deadline(timeout)
    res = svc.download(target, output=output, force=force, reporter=reporter(svc, quiet))
    if jo is not None:
        jo.result(download_data(res))
    else:
        svc.env.out(str(res.path))
    return 0


@app.command()
def tasks(
    ctx: typer.Context,
    status_filter: Annotated[str | None, typer.Option("--status", help="Only tasks with this "
                                                      "status (e.g. SUCCEEDED).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only tasks submitted within "
                                              "this long, e.g. 2h, 30m, 1d.")] = None,
    remote: Annotated[bool, typer.Option("--remote", help="List the account's tasks from the "
                                         "service instead of the local journal.")] = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="--remote: only this "
                                              "model.")] = None,
    page: Annotated[int, typer.Option("--page", help="--remote: page number.")] = 1,
    page_size: Annotated[int, typer.Option("--page-size", help="--remote: tasks per page.")] = 10,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most this many "
                                              "tasks, the newest.")] = None,
    forget: Annotated[list[str] | None, typer.Option(
        "--forget", metavar="ID", help="Remove this task from the journal (repeatable; - reads "
        "ids from stdin); its video stays on disk.")] = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> int:
    """List tasks from the journal, newest first (or, with --remote, from the service).

    Example: wanvid tasks --status FAILED --json | jq -r '.data[].task_id' | wanvid tasks --forget -

    Example: wanvid tasks --status SUCCEEDED --since 1d --json | jq -r '.data[].path'
    """
    from wanvid.envelope import journal_task, remote_task, task_list
    from wanvid.render import journal_task_lines, remote_task_lines
    from wanvid.service import parse_since

    jo = _json(ctx, "tasks", json_out)
    svc = service(ctx, quiet)
    if forget:
        gone = svc.forget([] if forget == ["-"] else forget)
        if jo is not None:
            jo.result({"forgotten": gone})
        else:
            svc.env.note(f"forgot {len(gone)} task(s)")
        return 0
    window = parse_since(since) if since else None
    if remote:
        resp = svc.remote_tasks(status=status_filter, since=window, model=model, page=page,
                                page_size=page_size)
        rows = task_list(resp)
        if jo is not None:
            jo.result([d for d in map(remote_task, rows) if d is not None])
            return 0
        for line in remote_task_lines(rows):
            svc.env.out(line)
        return 0
    now = svc.env.now()
    if jo is not None:
        jo.result([journal_task(r, now) for r in
                   svc.local_records(status=status_filter, since=window, limit=limit)])
        return 0
    for line in journal_task_lines(svc.local_tasks(status=status_filter, since=window,
                                                   limit=limit), now):
        svc.env.out(line)
    return 0


@app.command()
def cancel(
    ctx: typer.Context,
    task_ids: Annotated[list[str], typer.Argument(metavar="TASK_ID",
                                                  help="Tasks to cancel (PENDING only).")],
    quiet: QuietOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON Lines: one envelope per "
                                           "task, then a summary.")] = False,
) -> int:
    """Cancel tasks that are still PENDING (queued); running tasks cannot be canceled.

    Example: wanvid tasks --status PENDING --json | jq -r '.data[].task_id' | xargs -r wanvid cancel
    """
    from wanvid.envelope import cancel_data, cancel_errors

    jo = _json(ctx, "cancel", json_out)
    svc = service(ctx, quiet)
    ids = svc.read_ids(task_ids)
    if jo is not None:
        jo.expect(ids)
        jo.summary = lambda: {"tasks": len(ids),
                              "canceled": sum(1 for i in jo.items if i["canceled"]),
                              "refused": sum(1 for i in jo.items if not i["canceled"])}
    codes = []
    for r in svc.cancel(ids):
        if not r.canceled:
            svc.env.err(f"wanvid: error: {r.task_id}: cannot cancel: {r.message}; "
                        "only PENDING tasks can be canceled")
        if jo is not None:
            jo.item("task", r.exit_status, cancel_data(r), cancel_errors(r))
        elif r.canceled:
            svc.env.out(f"{r.task_id} CANCELED")
        codes.append(r.exit_status)
    return worst_of(codes)
