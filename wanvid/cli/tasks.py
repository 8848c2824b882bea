"""Commands about existing tasks: status, wait, download, tasks, cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from wanvid.cli.app import app
from wanvid.cli.common import (
    _check_output,
    _check_single_output,
    _check_template,
    _client,
    _dest_factory,
    _journal,
    _parse_since,
    _read_ids,
    _routing_client,
    _settings,
    _state,
    _status_line,
    run_wait,
)
from wanvid.cli.options import ForceOpt, IntervalOpt, JsonOpt, OutputOpt, QuietOpt, TimeoutOpt
from wanvid.errors import BadInputError, ExitStatus, WanvidError


@app.command()
def status(
    ctx: typer.Context,
    task_ids: Annotated[list[str] | None, typer.Argument(
        metavar="TASK_ID...", help="Task ids (or read from stdin, one per line).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Ask the service for the status of tasks (one line per task).

    Example: wanvid status 0385dc79-5ff8-4d82-bcb6-0123456789ab --json | jq .output.task_status
    """
    from wanvid.poll import FAILED_STATES

    st = _state(ctx)
    ids = _read_ids(st, task_ids)
    if not ids:
        raise BadInputError("status: give at least one TASK_ID (or pipe them in)")
    settings = _settings(st)
    journal = _journal(st)
    client = _routing_client(st, settings, journal)
    worst = ExitStatus.OK
    for tid in ids:
        resp = client.get_task(tid)
        out = resp.get("output") if isinstance(resp.get("output"), dict) else {}
        s = str(out.get("task_status") or "UNKNOWN")
        if journal.get(tid) is not None or s != "UNKNOWN":
            journal.update_status(tid, s, video_url=out.get("video_url"), code=out.get("code"),
                                  message=out.get("message"))
        if json_out:
            from wanvid.render import emit_jsonl

            emit_jsonl(st.env, [resp])
        else:
            st.env.out(_status_line(tid, out, st.env.now()))
        if s in FAILED_STATES:
            worst = ExitStatus.TASK_FAILED
    if worst:
        raise typer.Exit(int(worst))


# --- wait / download ------------------------------------------------------------------------



@app.command()
def wait(
    ctx: typer.Context,
    task_ids: Annotated[list[str] | None, typer.Argument(
        metavar="[TASK_ID...]", help="Task ids; none and stdin not a terminal: read from stdin.")]
    = None,
    output: OutputOpt = None,
    timeout: TimeoutOpt = None,
    interval: IntervalOpt = None,
    no_download: Annotated[bool, typer.Option("--no-download", help="Print the video URL "
                                              "instead of saving the file.")] = False,
    pending: Annotated[bool, typer.Option("--pending", help="Wait for every unfinished or "
                                          "not-yet-downloaded task in the journal.")] = False,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per task "
                                           "(JSON Lines).")] = False,
) -> None:
    """Wait for tasks, save each video as soon as it is ready, print the paths.

    Example: wanvid submit cat.png -p "the cat yawns" | wanvid wait -o videos/
    """
    st = _state(ctx)
    settings = _settings(st)
    journal = _journal(st)
    _check_template(output)
    if not no_download:
        _check_output(output, settings)
    ids = _read_ids(st, task_ids) if (task_ids or not pending) else []
    if pending:
        ids += [r.task_id for r in journal.pending() if r.task_id not in ids]
        if not ids:
            st.env.err("wanvid: nothing pending in the journal")
            return
    if not ids:
        raise BadInputError("wait: give TASK_IDs, pipe them in, or use --pending")
    settings.require_key()
    _check_single_output(output, len(ids))
    if output:
        for tid in ids:  # so that `wait --pending` after an interrupt keeps the same name
            try:
                journal.set_output(tid, output)
            except WanvidError as e:
                st.env.warn(f"{e.message}; waiting without recording -o")
                break
    code = run_wait(st, ids, settings=settings, journal=journal, output=output, timeout=timeout,
                    interval=interval, download=not no_download, force=force, quiet=quiet,
                    json_out=json_out)
    if code:
        raise typer.Exit(int(code))


@app.command()
def download(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="TASK_ID|URL",
                                          help="A task id, or a video URL.")],
    output: OutputOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Save a finished task's video (resumes a partial download; never overwrites
    without --force).

    Example: wanvid download 0385dc79-5ff8-4d82-bcb6-0123456789ab -o clip.mp4
    """
    from wanvid.download import download as fetch
    from wanvid.progress import make_reporter
    from wanvid.render import emit

    st = _state(ctx)
    _check_template(output)
    settings = _settings(st)
    _check_output(output, settings)
    journal = _journal(st)
    if target.startswith(("http://", "https://")):
        url, task_id, out = target, None, {}
        from urllib.parse import urlsplit

        name = Path(urlsplit(url).path).stem or "video"
        dest_id = name
        # A result URL is named after its task: journal the download against that task.
        rec = journal.get(name)
        if rec is not None and rec.video_url and rec.video_url.split("?")[0] == url.split("?")[0]:
            task_id = name
    else:
        client = _routing_client(st, settings, journal)
        task_id = target
        resp = client.get_task(task_id)
        out = resp.get("output") if isinstance(resp.get("output"), dict) else {}
        s = str(out.get("task_status") or "UNKNOWN")
        journal.update_status(task_id, s, video_url=out.get("video_url"), code=out.get("code"),
                              message=out.get("message"))
        if s != "SUCCEEDED":
            from wanvid.errors import TaskFailedError

            if s in ("PENDING", "RUNNING"):
                raise BadInputError(f"{task_id} is still {s}; use `wanvid wait {task_id}`")
            raise TaskFailedError(_status_line(task_id, out, st.env.now()))
        url = out["video_url"]
        dest_id = task_id
    dest = _dest_factory(st, settings, journal, output)(dest_id, out)
    reporter = make_reporter(st.env, quiet=quiet)
    reporter.add_task(dest_id)
    rec = journal.get(task_id) if task_id else None
    expected = rec.sha256 if rec is not None and rec.path and Path(rec.path) == dest else None
    try:
        res = fetch(url, dest, force=force, expected_sha256=expected,
                    on_progress=lambda d, t: reporter.download_progress(dest_id, d, t))
        reporter.download_done(dest_id, res.path, res.size, res.skipped)
    finally:
        reporter.close()
    if task_id:
        journal.record_download(task_id, path=str(res.path), size=res.size, sha256=res.sha256)
    emit(st.env, {"task_id": task_id, "path": str(res.path), "size": res.size,
                  "sha256": res.sha256, "skipped": res.skipped},
         json_mode=json_out, text=lambda d: [d["path"]])



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
    json_out: JsonOpt = False,
) -> None:
    """List tasks from the journal (or, with --remote, from the service).

    Example: wanvid tasks --status SUCCEEDED --since 1d --json | jq -r '.[].path'
    """
    import time as _time

    from wanvid.render import emit, fmt_duration

    st = _state(ctx)
    window = _parse_since(since) if since else None
    now = st.env.now()
    status_up = status_filter.upper() if status_filter else None
    if remote:
        settings = _settings(st)
        client = _client(st, settings)
        params: dict[str, Any] = {"status": status_up, "model_name": model,
                                  "page_no": page, "page_size": page_size}
        if window:
            fmt = "%Y-%m-%d %H:%M:%S"
            bj = 8 * 3600  # the task API speaks Beijing time (UTC+8)
            params["start_time"] = _time.strftime(fmt, _time.gmtime(now - window + bj))
            params["end_time"] = _time.strftime(fmt, _time.gmtime(now + bj))
        resp = client.list_tasks(**params)
        from wanvid.sanitize import one_line

        rows = [t for t in (resp.get("data") or []) if isinstance(t, dict)]
        emit(st.env, resp, json_mode=json_out, text=lambda r: [
            " ".join(one_line(t.get(k) or "", 100) for k in
                     ("task_id", "task_status", "model_name", "submit_time")).rstrip()
            for t in rows])
        return
    journal = _journal(st)
    recs = journal.list(status=status_up, since=(now - window) if window else None)

    def row(r: Any) -> dict[str, Any]:
        d = {"task_id": r.task_id, "status": r.status, "model": r.model,
             "submitted_at": r.submitted_at, "path": r.path, "inputs": r.inputs,
             "expires_at": r.expires_at, "code": r.code, "message": r.message}
        d["expires_in"] = (r.expires_at - now) if (r.expires_at and not r.path) else None
        return d

    rows = [row(r) for r in recs]

    def text(rs: list[dict[str, Any]]) -> list[str]:
        out = []
        for d in rs:
            extra = d["path"] or ""
            if d["expires_in"] is not None and d["status"] == "SUCCEEDED":
                extra = ("not downloaded, expires in " + fmt_duration(d["expires_in"])
                         if d["expires_in"] > 0 else "not downloaded, URL expired")
            elif d["code"]:
                extra = f"{d['code']}: {d['message'] or ''}"
            age = fmt_duration(now - d["submitted_at"]) if d["submitted_at"] else "?"
            out.append(f"{d['task_id']} {d['status']:<9} {d['model'] or '-':<18} {age:>7} ago "
                       f"{extra}".rstrip())
        return out

    emit(st.env, rows, json_mode=json_out, text=text)



@app.command()
def cancel(
    ctx: typer.Context,
    task_ids: Annotated[list[str], typer.Argument(metavar="TASK_ID...",
                                                  help="Tasks to cancel (PENDING only).")],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per task "
                                           "(JSON Lines).")] = False,
) -> None:
    """Cancel tasks that are still PENDING (queued); running tasks cannot be canceled.

    Example: wanvid tasks --status PENDING --json | jq -r '.[].task_id' | xargs wanvid cancel
    """
    from wanvid.errors import RejectedError

    st = _state(ctx)
    settings = _settings(st)
    journal = _journal(st)
    client = _routing_client(st, settings, journal)
    worst = ExitStatus.OK
    from wanvid.render import emit

    for tid in task_ids:
        try:
            client.cancel(tid)
        except RejectedError as e:
            st.env.err(f"wanvid: error: {tid}: cannot cancel: {e.message}; "
                       "only PENDING tasks can be canceled")
            worst = ExitStatus.REJECTED
            if json_out:
                emit(st.env, {"task_id": tid, "canceled": False, "code": e.code,
                              "message": e.message}, json_mode=True)
            continue
        journal.update_status(tid, "CANCELED")
        emit(st.env, {"task_id": tid, "canceled": True, "status": "CANCELED"},
             json_mode=json_out, text=lambda d: [f"{d['task_id']} CANCELED"])
    if worst:
        raise typer.Exit(int(worst))

