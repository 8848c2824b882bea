"""wanvid submit and wanvid generate: create a task (and wait for its video)."""

from __future__ import annotations

from typing import Annotated

import typer

from wanvid.cli.app import app
from wanvid.cli.common import dry_run_text, service, wait_and_render
from wanvid.cli.common import json_out as _json
from wanvid.cli.options import (
    AudioOpt,
    DownloadsOpt,
    DurOpt,
    ExtendOpt,
    FirstClipOpt,
    FitBgOpt,
    FitOpt,
    ForceOpt,
    ImageArg,
    IntervalOpt,
    JsonOpt,
    LastFrameOpt,
    ModelOpt,
    NegOpt,
    NoAudioOpt,
    NoSidecarOpt,
    OutputOpt,
    ParamOpt,
    PromptOpt,
    QuietOpt,
    ResOpt,
    SeedOpt,
    ShotOpt,
    TemplateOpt,
    TimeoutOpt,
    UploadOpt,
    WatermarkOpt,
    _submit_options,
)


@app.command()
def submit(
    ctx: typer.Context,
    image: ImageArg = None,
    last_frame: LastFrameOpt = None,
    first_clip: FirstClipOpt = None,
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
    shot: ShotOpt = None,
    template: TemplateOpt = None,
    param: ParamOpt = None,
    upload: UploadOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check everything and print the "
                                          "request; send nothing.")] = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> int:
    """Create a task and print its id (the video is fetched later by `wanvid wait`).

    Example: id=$(wanvid submit cat.png -p "the cat yawns") && wanvid wait "$id"
    """
    from wanvid.envelope import submitted_data

    jo = _json(ctx, "submit", json_out)
    svc = service(ctx, quiet)
    svc.upload = upload
    opts = _submit_options(image, last_frame, prompt, negative_prompt, model, resolution,
                           duration, seed, audio, no_audio, prompt_extend, watermark, fit,
                           fit_background, svc.settings, first_clip=first_clip,
                           shot=shot, template=template, param=param)
    prepared = svc.prepare(opts)
    if dry_run:
        if jo is not None:
            jo.result({"dry_run": True, **svc.dry_run(prepared)})
        else:
            for line in dry_run_text(svc.dry_run(prepared)):
                svc.env.out(line)
        return 0
    sub = svc.submit(prepared, hold=False)  # waits for a free slot, paced (wanvid.leases)
    if jo is not None:
        jo.result(submitted_data(sub))
    else:
        svc.env.out(sub.task_id)
    return 0


@app.command()
def generate(
    ctx: typer.Context,
    image: ImageArg = None,
    last_frame: LastFrameOpt = None,
    first_clip: FirstClipOpt = None,
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
    shot: ShotOpt = None,
    template: TemplateOpt = None,
    param: ParamOpt = None,
    upload: UploadOpt = None,
    output: OutputOpt = None,
    timeout: TimeoutOpt = None,
    interval: IntervalOpt = None,
    force: ForceOpt = False,
    no_sidecar: NoSidecarOpt = False,
    downloads: DownloadsOpt = None,
    quiet: QuietOpt = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON Lines: the task, then a "
                                           "summary (README: JSON output).")] = False,
) -> int:
    """Submit, wait with progress, download: prints the saved video's path.

    Example: wanvid generate cat.png -p "the cat turns its head" -o "{stem}-{seed}.mp4" --seed 7
    """
    jo = _json(ctx, "generate", json_out)
    svc = service(ctx, quiet)
    svc.upload = upload
    if no_sidecar:
        svc.sidecars = False
    svc.downloads = downloads
    opts = _submit_options(image, last_frame, prompt, negative_prompt, model, resolution,
                           duration, seed, audio, no_audio, prompt_extend, watermark, fit,
                           fit_background, svc.settings, first_clip=first_clip,
                           shot=shot, template=template, param=param)
    prepared = svc.prepare(opts)
    svc.check_before_paying(prepared, output, force=force)
    svc.start_deadline(timeout)  # --timeout covers the submit too (a long Retry-After)
    # Holds one of the account's slots for the model until the wait sees the task end
    # (other wanvid processes sharing the journal queue for it: wanvid.leases).
    sub = svc.submit(prepared, output=output, hold=True)
    try:
        if jo is not None:
            jo.expect([sub.task_id])
        if not quiet:
            svc.env.err(f"wanvid: submitted {sub.task_id} ({prepared.model.name}, "
                        f"{prepared.resolution}, {prepared.duration} s)")
        return wait_and_render(svc, [sub.task_id], output=output, timeout=timeout,
                               interval=interval, download=True, force=force, quiet=quiet,
                               json_out=jo)
    finally:
        svc.release_leases()
