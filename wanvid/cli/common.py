"""What the commands share: the per-run state, settings/client/journal construction, the
submit and wait steps, and the checks made before anything is paid for."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from wanvid.context import Environment
from wanvid.errors import BadInputError, ExitStatus, WanvidError


@dataclass
class State:
    """What one run of the CLI knows: its environment and the root options."""

    env: Environment
    argv: list[str] = field(default_factory=list)
    region: str | None = None
    base_url: str | None = None
    debug: bool = False


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    if not isinstance(obj, State):  # invoked without main() (e.g. typer's CliRunner)
        obj = State(env=Environment())
        ctx.find_root().obj = obj
    return obj


def _settings(st: State, **kw: Any) -> Any:
    from wanvid import config

    return config.resolve(st.env, region=st.region, base_url=st.base_url, **kw)


def _client(st: State, settings: Any) -> Any:
    from wanvid.client import Client

    key = settings.require_key()
    # Retries are logged at debug level (--debug), not surfaced: they are not errors.
    return Client(settings.base_url, key, sleep=st.env.sleep)


def _routing_client(st: State, settings: Any, journal: Any) -> Any:
    """A client that queries each task at the API root it was submitted to (journal);
    --region/--base-url only choose the root for tasks the journal has no root for."""
    from wanvid.client import RoutingClient

    default = _client(st, settings)

    def base_for(task_id: str) -> str | None:
        rec = journal.get(task_id)
        return rec.base_url if rec is not None and rec.base_url else None

    return RoutingClient(default, base_for)


def _journal(st: State) -> Any:
    from wanvid.journal import Journal

    return Journal(st.env.journal_path, now=st.env.now)


GUARDED = {"submit", "status", "wait", "download", "tasks", "cancel", "generate", "batch"}


def _expiry_guard(st: State) -> None:
    """Warn about videos that are paid for, not saved, and about to vanish."""
    if not st.env.journal_path.exists():
        return
    try:
        soon = _journal(st).expiring(within=7200)
    except Exception:  # the guard must never break a command
        return
    if not soon:
        return
    from wanvid.render import fmt_duration

    now = st.env.now()
    first = min(r.expires_at for r in soon if r.expires_at)
    st.env.warn(f"{len(soon)} finished video(s) not downloaded yet; the first URL expires in "
                f"{fmt_duration(first - now)}: run `wanvid wait --pending` to save them")


def _read_ids(st: State, ids: list[str] | None) -> list[str]:
    if ids:
        got = [i.strip() for i in ids if i.strip()]
    elif not st.env.stdin_isatty:
        got = [line.strip() for line in st.env.stdin
               if line.strip() and not line.startswith("#")]
    else:
        return []
    from wanvid.sanitize import is_task_id, one_line

    for tid in got:
        if not is_task_id(tid):
            raise BadInputError(f"{one_line(tid, 60)!r} is not a task id (letters, digits and "
                                "-_.: only, as the service's ids are); nothing was queried")
    return got


# --- models ---------------------------------------------------------------------------------



def prepare(st: State, opts: Any, settings: Any) -> Any:
    from wanvid.params import prepare_submit

    prepared = prepare_submit(opts, default_model=settings.model,
                              default_kf2v_model=settings.kf2v_model, region=settings.region,
                              warn=st.env.warn)
    for note in prepared.fit_notes:
        st.env.err(f"wanvid: {note}")
    return prepared


def dry_run_data(prepared: Any, settings: Any) -> dict[str, Any]:
    # Files are really read and encoded (streamed, not kept) so a dry run proves the
    # request can be made; the body's size is shown, data URIs abbreviated.
    data: dict[str, Any] = {
        "method": "POST",
        "url": settings.base_url + prepared.model.path,
        "headers": {"Authorization": "Bearer ***", "X-DashScope-Async": "enable",
                    "Content-Type": "application/json"},
        "body": prepared.preview_payload(),
        "body_bytes": prepared.body_size(),
        "billed_seconds": prepared.duration,
    }
    if prepared.predicted_size:
        w, h = prepared.predicted_size
        data["predicted_size"] = {"width": w, "height": h, "resolution": prepared.resolution}
    return data


def _dry_run_text(d: dict[str, Any]) -> list[str]:
    import json

    lines = [f"{d['method']} {d['url']}"]
    lines += [f"{k}: {v}" for k, v in d["headers"].items()]
    lines.append("")
    lines += json.dumps(d["body"], indent=2, ensure_ascii=False).splitlines()
    ps = d.get("predicted_size")
    size = (f"about {ps['width']}×{ps['height']} ({ps['resolution']})" if ps
            else "unknown (the image is a URL)")
    lines.append(f"# request body: {d['body_bytes']} bytes; predicted output: {size}; "
                 f"billed: {d['billed_seconds']} s")
    return lines


def do_submit(st: State, prepared: Any, settings: Any, journal: Any,
              output: str | None = None, fingerprint: str | None = None,
              client: Any = None) -> dict[str, Any]:
    """Send one prepared request and journal the task id the moment it comes back."""
    client = client or _client(st, settings)
    from wanvid.client import submitted_task_id

    resp = client.submit(prepared.model.path, prepared.body())
    # Checked against the safe pattern before it is printed, journaled or used in a path:
    # a number, a list or an id with a line break in it is a protocol error (exit 7).
    task_id = submitted_task_id(resp)
    out = resp["output"]
    try:
        journal.record_submit(task_id, model=prepared.model.name,
                              base_url=settings.base_url, params=prepared.journal_params(),
                              inputs=prepared.input_names(),
                              status=str(out.get("task_status") or "PENDING"),
                              fingerprint=fingerprint, output=output)
    except WanvidError as e:
        # The task exists and is paid for: its id must reach the user whatever happens.
        raise WanvidError(f"task {task_id} was created but the journal could not record it "
                          f"({e.message}); keep the id: `wanvid wait {task_id}` fetches "
                          "the video") from None
    return resp



def _status_line(tid: str, out: dict[str, Any], now: float) -> str:
    from wanvid.journal import expires_from_url
    from wanvid.render import fmt_duration
    from wanvid.sanitize import one_line

    status = one_line(out.get("task_status", "UNKNOWN"), 40)
    line = f"{tid} {status}"
    if status == "SUCCEEDED" and isinstance(out.get("video_url"), str) and out["video_url"]:
        exp = expires_from_url(out["video_url"])
        left = f" (expires in {fmt_duration(exp - now)})" if exp else ""
        line += f" {one_line(out['video_url'], 4000)}{left}"
    elif status in ("FAILED", "CANCELED"):
        code = one_line(out["code"], 100) if out.get("code") else None
        msg = one_line(out["message"]) if out.get("message") else None
        what = f"{code}: {msg}" if code and msg else (code or msg or "")
        if what:
            line += f" {what}"
    elif status == "UNKNOWN":
        line += " (expired after 24 h, or never existed in this region)"
    return line


def _dest_factory(st: State, settings: Any, journal: Any, output: str | None) -> Any:
    import datetime

    from wanvid.download import output_path

    def dest_for(task_id: str, out: dict[str, Any]) -> Path:
        rec = journal.get(task_id)
        template = output or (rec.output if rec is not None else None)
        stem = ""
        seed = None
        model = out.get("model") or ""
        if rec is not None:
            model = rec.model or model
            if rec.inputs:
                first = rec.inputs[0]
                if not first.startswith("data:"):
                    stem = Path(first.split("?")[0].rstrip("/")).stem
            seed = rec.params.get("seed") if isinstance(rec.params, dict) else None
        date = datetime.datetime.fromtimestamp(st.env.now()).strftime("%Y%m%d")
        return output_path(template, task_id=task_id, model=model, stem=stem, seed=seed,
                           date=date, output_dir=settings.output_dir)

    return dest_for


def run_wait(st: State, ids: list[str], *, settings: Any, journal: Any, output: str | None,
             timeout: float | None, interval: float | None, download: bool, force: bool,
             quiet: bool, json_out: bool, client: Any = None) -> ExitStatus:
    from wanvid.poll import Waiter, WaitOptions, overall_exit
    from wanvid.progress import make_reporter

    reporter = make_reporter(st.env, quiet=quiet)
    client = client or _routing_client(st, settings, journal)

    def on_outcome(o: Any) -> None:
        if json_out:
            import json

            reporter.result(json.dumps(o.to_dict(), ensure_ascii=False))
        elif o.ok and o.path is not None:
            reporter.result(str(o.path))
        elif o.ok:
            reporter.result(f"{o.task_id} {o.video_url}")
        if not o.ok:
            what = f"{o.code}: {o.message}" if o.code else (o.message or o.status)
            st.env.err(f"wanvid: error: {o.task_id} {o.status}: {what}")
            if o.exit_status in (ExitStatus.TIMEOUT, ExitStatus.NETWORK):
                st.env.err(f"wanvid: resume with: wanvid wait {o.task_id}")

    opts = WaitOptions(interval=interval or settings.poll_interval, timeout=timeout,
                       max_qps=settings.max_qps, download=download, force=force,
                       raise_unexpected=_raise_unexpected(st))
    waiter = Waiter(client=client, journal=journal, reporter=reporter, options=opts,
                    dest_for=_dest_factory(st, settings, journal, output),
                    clock=st.env.monotonic, wall=st.env.now, sleep=st.env.sleep,
                    on_outcome=on_outcome)
    try:
        outcomes = waiter.run(ids)
    finally:
        reporter.close()
    unrecorded = _report_unrecorded(st, waiter, journal)
    return overall_exit(outcomes) or unrecorded or ExitStatus.OK


def _raise_unexpected(st: State) -> bool:
    return st.debug or bool(st.env.get("WANVID_RAISE"))


def _report_unrecorded(st: State, waiter: Any, journal: Any) -> ExitStatus | None:
    """Journal writes that failed during a wait: name each, exit 8 (the videos are saved;
    the next `wanvid wait --pending` recognises them and records them)."""
    if not waiter.unrecorded:
        return None
    st.env.err(f"wanvid: error: the journal {journal.path} could not record "
               f"{len(waiter.unrecorded)} change(s) ({waiter.unrecorded[0].message}):")
    for u in waiter.unrecorded:
        st.env.err(f"wanvid:   {u.line()}")
    st.env.err("wanvid: once the journal is writable, `wanvid wait --pending` records them")
    return ExitStatus.JOURNAL


def _check_template(output: str | None, flag: str = "-o") -> None:
    """Render an output template once with sample values, so a typo fails before a task is
    created (and paid for), not after."""
    if not output:
        return
    from wanvid.download import output_path

    try:
        output_path(output, task_id="t", model="m", stem="s", seed=1, date="20260101")
    except BadInputError as e:
        raise BadInputError(f"{flag} {output}: {e.message}") from None


def _check_output(output: str | None, settings: Any, flag: str = "-o") -> None:
    """The output's directory (a template's fixed leading part) exists or can be created
    and is writable: found before a task is paid for, not after (exit 2, nothing sent)."""
    from wanvid.outputs import check_output

    check_output(output, settings.output_dir, flag=flag)


def _fixed_destination(output: str | None, prepared: Any, settings: Any) -> Path | None:
    """Where a video will be saved, when that does not depend on the task id (so it can
    be checked before anything is paid for); None when it does."""
    if output and "{task_id}" in output:
        return None
    if not output:
        return None  # default {task_id}.mp4
    import datetime

    from wanvid.download import output_path

    first = prepared.media[0] if prepared.media else None
    stem = ""
    if first is not None and first.kind != "data":
        stem = Path(first.arg.split("?")[0].rstrip("/")).stem
    dest = output_path(output, task_id="{task_id}", model=prepared.model.name, stem=stem,
                       seed=prepared.payload.get("parameters", {}).get("seed"),
                       date=datetime.date.today().strftime("%Y%m%d"),
                       output_dir=settings.output_dir)
    return None if dest.is_dir() else dest


def _check_free(dest: Path | None, where: str = "-o") -> None:
    if dest is not None and dest.exists():
        raise BadInputError(f"{where}: {dest} exists; pass --force to overwrite it, or choose "
                            "another -o (nothing was sent)")


def _fingerprint_with_output(fingerprint: str | None, output: str | None) -> str | None:
    if fingerprint is None or not output:
        return fingerprint
    import hashlib

    return hashlib.sha256(f"{fingerprint}\0{output}".encode()).hexdigest()


def _check_single_output(output: str | None, count: int) -> None:
    """-o naming one file cannot hold several videos."""
    if not output or count < 2 or "{" in output or output.endswith(("/", "\\")):
        return
    if Path(output).is_dir():
        return
    raise BadInputError(f"-o {output} names one file but there are {count} tasks; give a "
                        "directory or a template with {task_id} or {stem}")


def _parse_since(value: str) -> float:
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", value)
    if not m:
        raise BadInputError(f"--since {value!r}: use a duration like 30m, 2h, 1d")
    n = float(m.group(1))
    return n * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
