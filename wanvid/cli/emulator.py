"""wanvid emulator and wanvid demo: the local emulator of the service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wanvid.cli.app import app
from wanvid.cli.common import _state, wait_and_render
from wanvid.cli.options import QuietOpt, _submit_options
from wanvid.errors import BadInputError


@app.command()
def emulator(
    ctx: typer.Context,
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
    storage_rate_mb: Annotated[float, typer.Option(
        "--storage-rate-mb", help="Serve each video download at most this many MiB/s "
        "(0: no cap).")] = 0.0,
    key: Annotated[str | None, typer.Option("--key", help="Accept only this API key (default: "
                                            "any).")] = None,
    no_uploads: Annotated[bool, typer.Option("--no-uploads", help="Answer the upload policy "
                                             "request with 'not offered here'.")] = False,
    upload_max_mb: Annotated[float, typer.Option("--upload-max-mb", help="The upload "
                                                 "policy's size limit.")] = 100.0,
    max_concurrent: Annotated[int, typer.Option(
        "--max-concurrent", min=0, help="At most N tasks PENDING/RUNNING per model (the "
        "account limit); submits over it get 429 Throttling, counted in /_emulator/stats "
        "concurrent_throttled. Also POST /_emulator/config?max_concurrent=N.")] = 0,
    model_limits: Annotated[bool, typer.Option(
        "--model-limits", help="Enforce each model's concurrent_tasks from the catalogue "
        "(when --max-concurrent is 0).")] = False,
    fail_with: Annotated[str | None, typer.Option(
        "--fail-with", metavar="CODE", help="Failed tasks end with CODE: InvalidParameter "
        "(size, 'The size is not match...'), DataInspectionFailed (inspection), "
        "IPInfringementSuspect (ip) or InternalError.Algo; every task fails unless "
        "--fail-rate picks a share.", autocompletion=lambda: [
            "InvalidParameter", "DataInspectionFailed", "IPInfringementSuspect",
            "InternalError.Algo"])] = None,
    models_file: Annotated[Path | None, typer.Option(
        "--models", metavar="FILE", help="Also accept the models of this catalogue (a user "
        "models.toml, e.g. \"$(wanvid models --path)\"); default: the shipped ones only.")
    ] = None,
    submit_latency: Annotated[float, typer.Option(
        "--submit-latency", help="Answer each submit this many seconds after creating its "
        "task (POST /_emulator/config?submit_latency=S changes it).")] = 0.0,
    slow_headers: Annotated[float, typer.Option(
        "--slow-headers", help="Send each video download's status line and headers one "
        "byte every this many seconds (0: off; POST /_emulator/config?slow_headers=S "
        "changes it).")] = 0.0,
    no_checksums: Annotated[bool, typer.Option(
        "--no-checksums", help="Serve videos without an ETag and without "
        "x-oss-hash-crc64ecma (nothing to verify a download against).")] = False,
    corrupt_ranges: Annotated[bool, typer.Option(
        "--corrupt-ranges", help="Answer every range request (206) with the wrong bytes "
        "under the right headers.")] = False,
) -> None:
    """Run a local emulator of the Wan video API (no key, no cost).

    Example: wanvid emulator --port 8765 &
    DASHSCOPE_HTTP_BASE_URL=http://127.0.0.1:8765/api/v1 DASHSCOPE_API_KEY=test wanvid generate cat.png

    Example: wanvid emulator --fail-with DataInspectionFailed  # every task fails so
    """
    from wanvid.emulator import EmulatorConfig, serve_forever

    cfg = EmulatorConfig(host=host, port=port, pending=pending, running=running,
                         url_ttl=url_ttl, fail_rate=fail_rate, throttle_every=throttle_every,
                         error_every=error_every, drop_download_at=drop_download_at,
                         video_mb=video_mb, storage_rate_mb=storage_rate_mb, key=key,
                         uploads=not no_uploads, upload_max_mb=upload_max_mb,
                         max_concurrent=max_concurrent, model_limits=model_limits,
                         fail_with=fail_with or "", submit_latency=submit_latency,
                         slow_headers=slow_headers, storage_checksums=not no_checksums,
                         corrupt_ranges=corrupt_ranges)
    try:
        cfg.check()
    except ValueError as e:
        raise BadInputError(f"emulator: {e}") from None
    from wanvid import models

    # The service knows no user file: the shipped catalogue, plus --models FILE if given
    # (read now, so a bad file is exit 2 before serving).
    if models_file is not None and not models_file.is_file():
        what = ("is a directory; give the models.toml file in it" if models_file.is_dir()
                else "is not a regular file" if models_file.exists() else "no such file")
        raise BadInputError(f"--models {models_file}: {what}")
    models.use_user_catalogue(models_file)
    models.MODELS  # noqa: B018
    env = _state(ctx).env
    serve_forever(cfg, out=env.stdout, err=env.stderr)


def demo_dir() -> Path:
    """Where ``wanvid demo`` saves its video by default: wanvid's cache directory, outside
    any repository (``~/.cache/wanvid/demo`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("wanvid")) / "demo"


@app.command()
def demo(
    ctx: typer.Context,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Where to save the video (file, directory or template). "
        "Default: wanvid-demo.mp4 in wanvid's cache directory (Linux: ~/.cache/wanvid/demo, "
        "macOS: ~/Library/Caches/wanvid/demo), replaced on each run.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing -o file "
                                        "(without it, nothing is sent).")] = False,
    quiet: QuietOpt = False,
) -> int:
    """See it work in seconds, no key: runs a full generate against a built-in emulator
    and prints the path of the real MP4 it saved.

    Example: wanvid demo && wanvid demo -o demo.mp4
    """
    import tempfile
    from importlib.resources import files

    from wanvid.emulator import Emulator, EmulatorConfig

    st = _state(ctx)
    st.env.quiet = quiet
    if output is None:  # our own cache: replaced on each run
        output, force = str(demo_dir() / "wanvid-demo.mp4"), True
    emu = Emulator(EmulatorConfig(pending=1.0, running=2.0))
    base = emu.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            img = Path(tmp) / "wanvid-demo.jpg"
            img.write_bytes(files("wanvid").joinpath("data/demo.jpg").read_bytes())
            environ = dict(st.env.environ)
            environ["DASHSCOPE_API_KEY"] = "demo-key-for-the-local-emulator"
            # A journal of its own: demo tasks live on an emulator that is gone afterwards,
            # and must not linger in the user's journal (nor draw their real key there).
            environ["WANVID_STATE_DIR"] = str(Path(tmp) / "state")
            st.env.environ = environ
            from wanvid.service import Service

            svc = Service(st.env, base_url=base, debug=st.debug)
            svc.quiet = quiet
            st.env.note(f"demo: local emulator at {base} (nothing leaves this machine)")
            opts = _submit_options(str(img), None, "a slow zoom on a colourful test card",
                                   None, None, "480P", None, None, None, False, None, None,
                                   False, "white", svc.settings)
            prepared = svc.prepare(opts)
            svc.check_before_paying(prepared, output, force=force)  # before the task exists
            sub = svc.submit(prepared, output=output)
            st.env.note(f"demo: submitted {sub.task_id}")
            code = wait_and_render(svc, [sub.task_id],
                                   output=output, timeout=120,
                                   interval=0.5, download=True, force=force, quiet=quiet,
                                   json_out=None)
    finally:
        emu.stop()
    return code

