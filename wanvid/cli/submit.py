"""wanvid submit and wanvid generate: create a task (and wait for its video)."""

from __future__ import annotations

from typing import Annotated

import typer

from wanvid.cli.app import app
from wanvid.cli.common import (
    _check_free,
    _check_output,
    _check_template,
    _dry_run_text,
    _fixed_destination,
    _journal,
    _settings,
    _state,
    do_submit,
    dry_run_data,
    prepare,
    run_wait,
)
from wanvid.cli.options import (
    AudioOpt,
    DurOpt,
    ExtendOpt,
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
    OutputOpt,
    PromptOpt,
    QuietOpt,
    ResOpt,
    SeedOpt,
    TimeoutOpt,
    WatermarkOpt,
    _submit_options,
)


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
    _check_output(output, settings)
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

