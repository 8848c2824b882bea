"""The command-line layer: parses arguments, calls the library, renders results.

Exit codes are mapped from exceptions in one place, ``main()``. stdout carries only
results (task ids, paths, JSON); everything for humans goes to stderr.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from wanvid import __version__
from wanvid.context import Environment, StdoutClosed
from wanvid.errors import BadInputError, ExitStatus, WanvidError

HELP = """Turn a still image (or a first and a last frame) into a video with Alibaba Cloud
Model Studio's Wan models.

Set DASHSCOPE_API_KEY, then: wanvid generate photo.png -p "the cat turns its head"
"""

app = typer.Typer(help=HELP, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode="rich",
                  context_settings={"help_option_names": ["-h", "--help"]})
config_app = typer.Typer(help="Show and change settings (API key, region, defaults).",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")


@dataclass
class State:
    env: Environment
    region: str | None = None
    base_url: str | None = None
    debug: bool = False


_ENV: Environment | None = None  # set by main(); tests pass their own


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    if not isinstance(obj, State):
        obj = State(env=_ENV or Environment())
        ctx.find_root().obj = obj
    return obj


def _version(value: bool) -> None:
    if value:
        print(f"wanvid {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    region: Annotated[str | None, typer.Option(
        "--region", help="intl (Singapore, default), cn (Beijing) or us (Virginia).",
        envvar=None)] = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", help="API root, e.g. http://127.0.0.1:8765/api/v1 (overrides --region; "
        "env DASHSCOPE_HTTP_BASE_URL).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Log requests (never the key) and show "
                                        "tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    st = _state(ctx)
    st.region, st.base_url, st.debug = region, base_url, debug
    if ctx.invoked_subcommand in GUARDED and "--help" not in sys.argv[1:]:
        _expiry_guard(st)
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=st.env.stderr,
                            format="wanvid: debug: %(name)s: %(message)s")


# --- shared helpers ------------------------------------------------------------------------


def _settings(st: State, **kw: Any) -> Any:
    from wanvid import config

    return config.resolve(st.env, region=st.region, base_url=st.base_url, **kw)


def _client(st: State, settings: Any) -> Any:
    from wanvid.client import Client

    key = settings.require_key()
    # Retries are logged at debug level (--debug), not surfaced: they are not errors.
    return Client(settings.base_url, key, sleep=st.env.sleep)


def _routing_client(st: State, settings: Any, journal: Any) -> Any:
    """A client that queries each task at the API root it was submitted to (journal),
    unless --region/--base-url on this command line says where to look."""
    from wanvid.client import RoutingClient

    default = _client(st, settings)
    if st.region or st.base_url:
        return default

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
        return [i.strip() for i in ids if i.strip()]
    if not st.env.stdin_isatty:
        return [line.strip() for line in st.env.stdin if line.strip() and not line.startswith("#")]
    return []


# --- models ---------------------------------------------------------------------------------


@app.command()
def models(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON.")] = False,
) -> None:
    """List the models, their resolutions, durations and audio support.

    Example: wanvid models --json | jq -r '.[] | select(.audio) | .name'
    """
    from wanvid.render import emit_models

    emit_models(_state(ctx).env, json_mode=json_out)


# --- config ---------------------------------------------------------------------------------


@config_app.command("path")
def config_path_cmd(ctx: typer.Context) -> None:
    """Print the config file's path.

    Example: cat "$(wanvid config path)"
    """
    from wanvid.config import config_path

    st = _state(ctx)
    st.env.out(str(config_path(st.env)))


@config_app.command("list")
def config_list(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show the effective settings and where the key comes from (the key is redacted).

    Example: wanvid config list --json | jq -r .region
    """
    from wanvid.config import redact
    from wanvid.render import emit

    st = _state(ctx)
    s = _settings(st)
    data = {
        "api_key": redact(s.api_key), "api_key_source": s.api_key_source,
        "region": s.region, "base_url": s.base_url, "model": s.model,
        "kf2v_model": s.kf2v_model, "output_dir": str(s.output_dir or "."),
        "poll_interval": s.poll_interval, "max_qps": s.max_qps, "jobs": s.jobs, "fit": s.fit,
    }
    emit(st.env, data, json_mode=json_out,
         text=lambda d: [f"{k} = {v}" for k, v in d.items()])


@config_app.command("get")
def config_get(ctx: typer.Context, key: Annotated[str, typer.Argument(help="Config key.")]) -> None:
    """Print one stored setting (api_key is shown redacted).

    Example: wanvid config get region
    """
    from wanvid.config import CONFIG_KEYS, config_path, load_file, redact

    st = _state(ctx)
    if key not in CONFIG_KEYS:
        raise BadInputError(f"unknown config key {key!r}; known keys: {', '.join(CONFIG_KEYS)}")
    data = load_file(config_path(st.env))
    if key not in data:
        raise BadInputError(f"{key} is not set in {config_path(st.env)}")
    value = data[key]
    st.env.out(redact(value) if key == "api_key" else str(value))


@config_app.command("set")
def config_set(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="api_key, region, base_url, model, kf2v_model, "
                                       "output_dir, poll_interval, max_qps, jobs, fit")],
    value: Annotated[str | None, typer.Argument(help="The value. For api_key leave it out: "
                                                "it is read from a hidden prompt or stdin.")] = None,
) -> None:
    """Store a setting in the config file (mode 0600).

    Example: wanvid config set region cn;  printf %s "$KEY" | wanvid config set api_key
    """
    from wanvid.config import config_path, load_file, parse_value, save_file

    st = _state(ctx)
    if value is None or value == "-":
        if key != "api_key" and value is None:
            raise BadInputError(f"config set {key}: give a value")
        if st.env.stdin_isatty:
            import getpass

            value = getpass.getpass(f"{key}: ", stream=st.env.stderr)
        else:
            value = st.env.stdin.readline()
    elif key == "api_key":
        st.env.warn("a key typed on the command line stays in your shell history; next time "
                    "pipe it in: printf %s \"$KEY\" | wanvid config set api_key")
    parsed = parse_value(key, value)
    path = config_path(st.env)
    data = load_file(path)
    data[key] = parsed
    save_file(path, data)
    st.env.err(f"wanvid: {key} saved in {path}")


@config_app.command("unset")
def config_unset(ctx: typer.Context, key: Annotated[str, typer.Argument(help="Config key.")]) -> None:
    """Remove a setting from the config file.

    Example: wanvid config unset api_key
    """
    from wanvid.config import config_path, load_file, save_file

    st = _state(ctx)
    path = config_path(st.env)
    data = load_file(path)
    if data.pop(key, None) is None:
        raise BadInputError(f"{key} is not set in {path}")
    save_file(path, data)


# --- submit ---------------------------------------------------------------------------------

ImageArg = Annotated[str, typer.Argument(
    metavar="IMAGE", help="First frame: a local file, file:// path, http(s) URL or data: URI.")]
LastFrameOpt = Annotated[str | None, typer.Option(
    "--last-frame", "-l", help="Last frame (selects a first+last-frame model).")]
PromptOpt = Annotated[str | None, typer.Option("--prompt", "-p", help="What should happen.")]
NegOpt = Annotated[str | None, typer.Option("--negative-prompt", "-n",
                                            help="What should not appear.")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", "-m", help="Model (see `wanvid models`); default wan2.2-i2v-flash, or "
    "wan2.2-kf2v-flash with --last-frame.", autocompletion=lambda: _model_names())]
ResOpt = Annotated[str | None, typer.Option(
    "--resolution", "-r", help="480P, 720P or 1080P (per model; default: the model's).",
    autocompletion=lambda: ["480P", "720P", "1080P"])]
DurOpt = Annotated[int | None, typer.Option("--duration", "-d",
                                            help="Seconds (per model: 3-5, 5 or 10).")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="0..2147483647.")]
AudioOpt = Annotated[str | None, typer.Option(
    "--audio", help="Audio track for wan2.5: WAV/MP3 file or URL, 3-30 s.")]
NoAudioOpt = Annotated[bool, typer.Option("--no-audio", help="wan2.5: make a silent video.")]
ExtendOpt = Annotated[bool | None, typer.Option(
    "--prompt-extend/--no-prompt-extend", help="Let the service rewrite the prompt "
    "(service default: on).", show_default=False)]
WatermarkOpt = Annotated[bool | None, typer.Option(
    "--watermark/--no-watermark", help="Add the 'AI-generated' mark (service default: off).",
    show_default=False)]
FitOpt = Annotated[bool | None, typer.Option(
    "--fit/--no-fit", help="Resize, rotate, flatten and strip local images so the service "
    "accepts them (needs wanvid[fit]).", show_default=False)]
FitBgOpt = Annotated[str, typer.Option("--fit-background",
                                       help="Colour under transparent pixels with --fit.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def _model_names() -> list[str]:
    from wanvid.models import model_names

    return model_names()


def _submit_options(image: str, last_frame: str | None, prompt: str | None,
                    negative_prompt: str | None, model: str | None, resolution: str | None,
                    duration: int | None, seed: int | None, audio: str | None, no_audio: bool,
                    prompt_extend: bool | None, watermark: bool | None, fit: bool | None,
                    fit_background: str, settings: Any) -> Any:
    from wanvid.params import SubmitOptions

    return SubmitOptions(image=image, last_frame=last_frame, prompt=prompt,
                         negative_prompt=negative_prompt, model=model, resolution=resolution,
                         duration=duration, seed=seed, audio=audio, no_audio=no_audio,
                         prompt_extend=prompt_extend, watermark=watermark,
                         fit=settings.fit if fit is None else fit, fit_background=fit_background)


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
    resp = client.submit(prepared.model.path, prepared.body())
    out = resp.get("output") if isinstance(resp.get("output"), dict) else {}
    task_id = out.get("task_id")
    if not task_id:
        raise WanvidError("the service accepted the request but returned no task id "
                          f"(request_id {resp.get('request_id')})")
    try:
        journal.record_submit(str(task_id), model=prepared.model.name,
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


@app.command()
def submit(
    ctx: typer.Context,
    image: ImageArg,
    last_frame: LastFrameOpt = None,
    prompt: PromptOpt = None,
    negative_prompt: NegOpt = None,
    model: ModelOpt = None,
    resolution: ResOpt = None,
    duration: DurOpt = None,
    seed: SeedOpt = None,
    audio: AudioOpt = None,
    no_audio: NoAudioOpt = False,
    prompt_extend: ExtendOpt = None,
    watermark: WatermarkOpt = None,
    fit: FitOpt = None,
    fit_background: FitBgOpt = "white",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check everything and print the "
                                          "request; send nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Create a task and print its id (the video is fetched later by `wanvid wait`).

    Example: id=$(wanvid submit cat.png -p "the cat yawns") && wanvid wait "$id"
    """
    from wanvid.render import emit

    st = _state(ctx)
    settings = _settings(st)
    opts = _submit_options(image, last_frame, prompt, negative_prompt, model, resolution,
                           duration, seed, audio, no_audio, prompt_extend, watermark, fit,
                           fit_background, settings)
    prepared = prepare(st, opts, settings)
    if dry_run:
        emit(st.env, dry_run_data(prepared, settings), json_mode=json_out, text=_dry_run_text)
        return
    journal = _journal(st)
    resp = do_submit(st, prepared, settings, journal)
    emit(st.env, resp, json_mode=json_out, text=lambda r: [r["output"]["task_id"]])


# --- status ---------------------------------------------------------------------------------


def _status_line(tid: str, out: dict[str, Any], now: float) -> str:
    from wanvid.journal import expires_from_url
    from wanvid.render import fmt_duration

    status = out.get("task_status", "UNKNOWN")
    line = f"{tid} {status}"
    if status == "SUCCEEDED" and out.get("video_url"):
        exp = expires_from_url(out["video_url"])
        left = f" (expires in {fmt_duration(exp - now)})" if exp else ""
        line += f" {out['video_url']}{left}"
    elif status in ("FAILED", "CANCELED"):
        code, msg = out.get("code"), out.get("message")
        what = f"{code}: {msg}" if code and msg else (code or msg or "")
        if what:
            line += f" {what}"
    elif status == "UNKNOWN":
        line += " (expired after 24 h, or never existed in this region)"
    return line


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


OutputOpt = Annotated[str | None, typer.Option(
    "--output", "-o", help="Directory, file name, or template with {task_id} {model} {stem} "
    "{seed} {date}. Default: {task_id}.mp4 in output_dir (or the current directory).")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", min=0, help="Give up waiting "
                                                  "after this many seconds (exit 6).")]
IntervalOpt = Annotated[float | None, typer.Option(
    "--interval", min=0.1, help="Seconds between queries at first (default 5; it backs off "
    "to 15).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but results.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]


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


# --- generate -------------------------------------------------------------------------------


@app.command()
def generate(
    ctx: typer.Context,
    image: ImageArg,
    last_frame: LastFrameOpt = None,
    prompt: PromptOpt = None,
    negative_prompt: NegOpt = None,
    model: ModelOpt = None,
    resolution: ResOpt = None,
    duration: DurOpt = None,
    seed: SeedOpt = None,
    audio: AudioOpt = None,
    no_audio: NoAudioOpt = False,
    prompt_extend: ExtendOpt = None,
    watermark: WatermarkOpt = None,
    fit: FitOpt = None,
    fit_background: FitBgOpt = "white",
    output: OutputOpt = None,
    timeout: TimeoutOpt = None,
    interval: IntervalOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Submit, wait with progress, download: prints the saved video's path.

    Example: wanvid generate cat.png -p "the cat turns its head" -o "{stem}-{seed}.mp4" --seed 7
    """
    st = _state(ctx)
    settings = _settings(st)
    opts = _submit_options(image, last_frame, prompt, negative_prompt, model, resolution,
                           duration, seed, audio, no_audio, prompt_extend, watermark, fit,
                           fit_background, settings)
    prepared = prepare(st, opts, settings)
    _check_template(output)
    if not force:
        _check_free(_fixed_destination(output, prepared, settings))
    journal = _journal(st)
    resp = do_submit(st, prepared, settings, journal, output=output)
    task_id = resp["output"]["task_id"]
    if not quiet:
        st.env.err(f"wanvid: submitted {task_id} ({prepared.model.name}, {prepared.resolution}, "
                   f"{prepared.duration} s)")
    code = run_wait(st, [task_id], settings=settings, journal=journal, output=output,
                    timeout=timeout, interval=interval, download=True, force=force, quiet=quiet,
                    json_out=json_out)
    if code:
        raise typer.Exit(int(code))


# --- batch ----------------------------------------------------------------------------------


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


# --- emulator / demo ------------------------------------------------------------------------


@app.command()
def emulator(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by "
                                      "default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port; 0 picks a free one.")] = 8765,
    pending: Annotated[float, typer.Option("--pending", help="Seconds a task stays PENDING.")]
    = 1.0,
    running: Annotated[float, typer.Option("--running", help="Seconds a task stays RUNNING.")]
    = 3.0,
    url_ttl: Annotated[float, typer.Option("--url-ttl", help="Seconds a video URL stays "
                                           "valid.")] = 86400.0,
    fail_rate: Annotated[float, typer.Option("--fail-rate", help="Share of tasks that end "
                                             "FAILED (0..1).")] = 0.0,
    throttle_every: Annotated[int, typer.Option("--throttle-every", help="Answer every Nth "
                                                "API request with 429.")] = 0,
    error_every: Annotated[int, typer.Option("--error-every", help="Answer every Nth task "
                                             "query with 500.")] = 0,
    drop_download_at: Annotated[float, typer.Option(
        "--drop-download-at", help="Cut each download once at this fraction (0..1).")] = 0.0,
    video_mb: Annotated[float, typer.Option("--video-mb", help="Pad the video to this many "
                                            "MiB.")] = 0.0,
    key: Annotated[str | None, typer.Option("--key", help="Accept only this API key (default: "
                                            "any).")] = None,
) -> None:
    """Run a local emulator of the Wan video API (no key, no cost).

    Example: wanvid emulator --port 8765 &  DASHSCOPE_HTTP_BASE_URL=http://127.0.0.1:8765/api/v1
    DASHSCOPE_API_KEY=test wanvid generate cat.png
    """
    from wanvid.emulator import EmulatorConfig, serve_forever

    cfg = EmulatorConfig(host=host, port=port, pending=pending, running=running,
                         url_ttl=url_ttl, fail_rate=fail_rate, throttle_every=throttle_every,
                         error_every=error_every, drop_download_at=drop_download_at,
                         video_mb=video_mb, key=key)
    try:
        cfg.check()
    except ValueError as e:
        raise BadInputError(f"emulator: {e}") from None
    env = _ENV or Environment()
    serve_forever(cfg, out=env.stdout, err=env.stderr)


@app.command()
def demo(
    ctx: typer.Context,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """See it work in seconds, no key: runs a full generate against a built-in emulator
    and leaves a real MP4 in the current directory.

    Example: wanvid demo
    """
    import tempfile
    from importlib.resources import files

    from wanvid.emulator import Emulator, EmulatorConfig

    st = _state(ctx)
    emu = Emulator(EmulatorConfig(pending=1.0, running=2.0))
    base = emu.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            img = Path(tmp) / "wanvid-demo.jpg"
            img.write_bytes(files("wanvid").joinpath("data/demo.jpg").read_bytes())
            st.base_url = base
            environ = dict(st.env.environ)
            environ["DASHSCOPE_API_KEY"] = "demo-key-for-the-local-emulator"
            # A journal of its own: demo tasks live on an emulator that is gone afterwards,
            # and must not linger in the user's journal (nor draw their real key there).
            environ["WANVID_STATE_DIR"] = str(Path(tmp) / "state")
            st.env.environ = environ
            settings = _settings(st)
            st.env.err(f"wanvid: demo: local emulator at {base} (nothing leaves this machine)")
            opts = _submit_options(str(img), None, "a slow zoom on a colourful test card",
                                   None, None, "480P", None, None, None, False, None, None,
                                   False, "white", settings)
            prepared = prepare(st, opts, settings)
            journal = _journal(st)
            resp = do_submit(st, prepared, settings, journal, output=output)
            task_id = resp["output"]["task_id"]
            st.env.err(f"wanvid: demo: submitted {task_id}")
            code = run_wait(st, [task_id], settings=settings, journal=journal,
                            output=output or "wanvid-demo-{task_id}.mp4", timeout=120,
                            interval=0.5, download=True, force=False, quiet=quiet,
                            json_out=False)
    finally:
        emu.stop()
    if code:
        raise typer.Exit(int(code))


# --- tasks / cancel -------------------------------------------------------------------------


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
        emit(st.env, resp, json_mode=json_out, text=lambda r: [
            f"{t.get('task_id')} {t.get('task_status')} {t.get('model_name', '')} "
            f"{t.get('submit_time', '')}".rstrip() for t in r.get("data") or []])
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


def _parse_since(value: str) -> float:
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", value)
    if not m:
        raise BadInputError(f"--since {value!r}: use a duration like 30m, 2h, 1d")
    n = float(m.group(1))
    return n * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


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


# --- completions ----------------------------------------------------------------------------


@app.command()
def completions(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print a shell completion script (static: pressing TAB runs no Python).

    Example: wanvid completions bash > ~/.local/share/bash-completion/completions/wanvid
    """
    from wanvid.completion import generate

    try:
        script = generate(shell)
    except ValueError as e:
        raise BadInputError(str(e)) from None
    _state(ctx).env.out(script.removesuffix("\n"))


# --- entry point ----------------------------------------------------------------------------


def _interrupted(env: Environment) -> int:
    env.err("wanvid: interrupted; submitted tasks are in the journal: "
            "`wanvid wait --pending` picks them up")
    return int(ExitStatus.INTERRUPTED)


def _is_click_exception(e: BaseException) -> bool:
    return hasattr(e, "exit_code") and hasattr(e, "format_message")


def main(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Run the CLI; map every outcome to an exit code in this one place."""
    global _ENV
    _ENV = env or Environment()
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    code: int
    try:
        rv = app(args=args, prog_name="wanvid", standalone_mode=False)
        code = int(rv) if isinstance(rv, int) else 0
        if code == ExitStatus.INTERRUPTED:  # Typer turns Ctrl-C into a returned 130
            code = _interrupted(_ENV)
    except WanvidError as e:
        _ENV.err(f"wanvid: error: {e.message}")
        code = int(e.status)
    except KeyboardInterrupt:
        code = _interrupted(_ENV)
    except typer.Exit as e:
        code = int(getattr(e, "exit_code", 0) or 0)
    except typer.Abort:
        _ENV.err("wanvid: aborted")
        code = int(ExitStatus.INTERRUPTED)
    except (BrokenPipeError, StdoutClosed):
        code = int(ExitStatus.STDOUT_CLOSED)
    except Exception as e:
        if _is_click_exception(e):
            msg = e.format_message()  # type: ignore[attr-defined]
            cmd = getattr(getattr(e, "ctx", None), "command_path", "wanvid")
            _ENV.err(f"wanvid: error: {msg} (see `{cmd} --help`)")
            code = int(ExitStatus.BAD_INPUT)
        else:
            if debug or _ENV.get("WANVID_RAISE"):
                raise
            _ENV.err(f"wanvid: internal error: {type(e).__name__}: {e} "
                     "(run with --debug for a traceback)")
            code = 1
    if argv is None:
        sys.exit(code)
    return code
