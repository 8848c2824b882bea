"""Option and argument declarations shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated, Any

import typer

ImageArg = Annotated[str | None, typer.Argument(
    metavar="IMAGE", help="First frame: a local file, file:// path, http(s) URL or data: URI "
    "(optional only with --first-clip).", show_default=False)]
LastFrameOpt = Annotated[str | None, typer.Option(
    "--last-frame", "-l", help="Last frame (selects a first+last-frame model; wan2.7-i2v "
    "takes one too).")]
FirstClipOpt = Annotated[str | None, typer.Option(
    "--first-clip", help="Video to continue (MP4/MOV, 2-10 s; URL or local file, uploaded): "
    "wan2.7-i2v; --duration is then the total length.")]
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
                                            help="Seconds (per model, e.g. 5, 3-5, 2-15).")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="0..2147483647.")]
AudioOpt = Annotated[str | None, typer.Option(
    "--audio", help="Audio track (wan2.5/2.6 audio_url, wan2.7 driving_audio): WAV/MP3 file "
    "or URL, 2/3-30 s.")]
NoAudioOpt = Annotated[bool, typer.Option(
    "--no-audio", help="Silent video (wan2.6-i2v-flash: sends audio=false).")]
ExtendOpt = Annotated[bool | None, typer.Option(
    "--prompt-extend/--no-prompt-extend", help="Let the service rewrite the prompt "
    "(service default: on).", show_default=False)]
WatermarkOpt = Annotated[bool | None, typer.Option(
    "--watermark/--no-watermark", help="Add the 'AI-generated' mark (service default: off).",
    show_default=False)]
FitOpt = Annotated[bool | None, typer.Option(
    "--fit/--no-fit", help="Resize, rotate, flatten and strip local images so the service "
    "accepts them.", show_default=False)]
FitBgOpt = Annotated[str, typer.Option("--fit-background",
                                       help="Colour under transparent pixels with --fit.")]
ShotOpt = Annotated[str | None, typer.Option(
    "--shot", help="single or multi (parameters.shot_type; wan2.6). Takes effect only with "
    "prompt extension on.", show_default=False, autocompletion=lambda: ["single", "multi"])]
TemplateOpt = Annotated[str | None, typer.Option(
    "--template", help="Video effect (input.template), e.g. flying; Beijing only (--region "
    "cn). The prompt is then ignored; kf2v needs only the first frame.", show_default=False,
    autocompletion=lambda: _template_names())]
ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", metavar="NAME=VALUE", help="Send parameters.NAME (input.NAME when written "
    "input.NAME=VALUE) as given, over what wanvid built; VALUE is JSON if it parses, else "
    "text. Repeatable. duration, resolution and seed are checked like their flags, the rest "
    "is not; an input field wanvid builds from IMAGE/--last-frame/--audio/--first-clip "
    "(input.img_url, input.media...) replaces that input: give one, not both.",
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
UploadOpt = Annotated[str | None, typer.Option(
    "--upload", help="Local files: auto (audio/video uploaded to temporary storage, images "
    "inline unless over 7.5 MiB), always, or never (config: upload).", show_default=False,
    autocompletion=lambda: ["auto", "always", "never"])]


def _model_names() -> list[str]:
    from wanvid.models import model_names

    return model_names()


def _template_names() -> list[str]:
    from wanvid.models import MODELS

    return sorted({t for m in MODELS for t in m.templates})


def _submit_options(image: str | None, last_frame: str | None, prompt: str | None,
                    negative_prompt: str | None, model: str | None, resolution: str | None,
                    duration: int | None, seed: int | None, audio: str | None, no_audio: bool,
                    prompt_extend: bool | None, watermark: bool | None, fit: bool | None,
                    fit_background: str, settings: Any, *,
                    first_clip: str | None = None, shot: str | None = None,
                    template: str | None = None, param: list[str] | None = None) -> Any:
    from wanvid.params import SubmitOptions

    return SubmitOptions(image=image, last_frame=last_frame, first_clip=first_clip,
                         prompt=prompt,
                         negative_prompt=negative_prompt, model=model, resolution=resolution,
                         duration=duration, seed=seed, audio=audio, no_audio=no_audio,
                         prompt_extend=prompt_extend, watermark=watermark,
                         fit=settings.fit if fit is None else fit, fit_background=fit_background,
                         shot=shot, template=template, param=param or None)



OutputOpt = Annotated[str | None, typer.Option(
    "--output", "-o", help="Directory, file name, or template with {task_id} {model} {stem} "
    "{seed} {date}. Default: {task_id}.mp4 in output_dir (or the current directory).")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", min=0, help="Give up waiting "
                                                  "after this many seconds (exit 6).")]
IntervalOpt = Annotated[float | None, typer.Option(
    "--interval", min=0.1, help="Seconds between queries at first (default 5; it backs off "
    "to 15).")]
DownloadsOpt = Annotated[int | None, typer.Option(
    "--downloads", min=1, max=32, help="Videos downloaded at once while the other tasks are "
    "polled (default 4; config: downloads).", show_default=False)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but results.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]
NoSidecarOpt = Annotated[bool, typer.Option(
    "--no-sidecar", help="Don't write clip.json (+ clip.thumb.jpg) beside the video "
    "(config: sidecar).")]
