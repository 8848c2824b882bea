"""wanvid from Python: the CLI's use cases as functions, configured exactly like the CLI
(``DASHSCOPE_API_KEY`` and the other environment variables, the config file, the same
journal), so a task submitted here is found again by ``wanvid wait --pending``.

    import wanvid
    task_id = wanvid.submit("cat.png", prompt="the cat blinks")   # journaled; returns the id
    results = wanvid.wait([task_id], output="videos/")            # one Result per task
    path = wanvid.generate("cat.png", prompt="the cat blinks", output="clip.mp4")

Keyword arguments mirror the CLI's options (``model``, ``last_frame``, ``resolution``,
``duration``, ``seed``, ``audio``, ``no_audio``, ``prompt_extend``, ``watermark``, ``fit``,
``shot``, ``template``, ``param`` ...). Failures raise ``wanvid.WanvidError`` subclasses
whose ``exit_status`` is the code the CLI would exit with. Nothing is printed on stdout;
notes and warnings go to stderr, as the CLI's do (pass ``env=Environment(stderr=...)``
to send them elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, Unpack

from wanvid.context import Environment
from wanvid.errors import (
    AuthError,
    BadInputError,
    ExitStatus,
    JournalError,
    NetworkError,
    RejectedError,
    TaskFailedError,
    WaitTimeoutError,
    WanvidError,
    WriteError,
)
from wanvid.poll import Outcome as Result
from wanvid.service import CancelResult, Service, TaskStatus

if TYPE_CHECKING:
    from wanvid.params import PreparedSubmit

__all__ = ["JobOptions", "Result", "cancel", "generate", "save", "service", "status", "submit", "wait"]


def service(*, region: str | None = None, base_url: str | None = None,
            env: Environment | None = None) -> Service:
    """A ``Service`` configured like the CLI (``region``/``base_url`` as ``--region`` and
    ``--base-url``)."""
    return Service(env or Environment(), region=region, base_url=base_url)


class JobOptions(TypedDict, total=False):
    """The options of one job, named like the CLI's (``--last-frame`` is ``last_frame``)."""

    prompt: str | None
    model: str | None
    last_frame: str | Path | None
    negative_prompt: str | None
    resolution: str | None
    duration: int | None
    seed: int | None
    audio: str | Path | None
    no_audio: bool
    prompt_extend: bool | None
    watermark: bool | None
    fit: bool | None
    fit_background: str | None
    first_clip: str | Path | None
    shot: str | None  # "single" | "multi" (parameters.shot_type)
    template: str | None  # a video effect (input.template)
    # --param: {"NAME": value, "input.NAME": value}, or ["NAME=VALUE", ...] as on the CLI
    param: Mapping[str, object] | Sequence[str] | None


def _prepared(svc: Service, image: str | Path, job: JobOptions) -> PreparedSubmit:
    kw = {k: (str(v) if isinstance(v, Path) else v) for k, v in job.items()}
    return svc.prepare(svc.options(str(image), **kw))


def submit(image: str | Path, *, region: str | None = None, base_url: str | None = None,
           env: Environment | None = None, **job: Unpack[JobOptions]) -> str:
    """Validate, submit and journal one task; returns its task id. Bad input raises
    ``BadInputError`` before anything is sent. ``job``: see ``JobOptions``."""
    svc = service(region=region, base_url=base_url, env=env)
    return svc.submit(_prepared(svc, image, job)).task_id


def wait(task_ids: Iterable[str] | str, *, output: str | Path | None = None,
         timeout: float | None = None, interval: float | None = None, download: bool = True,
         force: bool = False, region: str | None = None, base_url: str | None = None,
         env: Environment | None = None) -> list[Result]:
    """Wait for tasks and save each video as soon as it is ready (``output``: a directory,
    file name or template, as ``-o``). Returns one ``Result`` per task (``task_id``,
    ``status``, ``path``, ``code``, ``message``, ``exit_status``); a task that failed is a
    result, not an exception."""
    ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
    svc = service(region=region, base_url=base_url, env=env)
    return svc.wait(svc.read_ids(ids), output=_str(output), timeout=timeout,
                    interval=interval, download=download, force=force).outcomes


def generate(image: str | Path, *, output: str | Path | None = None,
             timeout: float | None = None, interval: float | None = None,
             force: bool = False, region: str | None = None, base_url: str | None = None,
             env: Environment | None = None, **job: Unpack[JobOptions]) -> Path:
    """Submit, wait and download; returns the saved video's path. A task that ends without
    a video raises the matching ``WanvidError`` (``TaskFailedError``, ``WaitTimeoutError``...).
    ``job``: see ``JobOptions``."""
    svc = service(region=region, base_url=base_url, env=env)
    prepared = _prepared(svc, image, job)
    out = _str(output)
    svc.check_before_paying(prepared, out, force=force)
    sub = svc.submit(prepared, output=out)
    res = svc.wait([sub.task_id], output=out, timeout=timeout, interval=interval,
                   force=force)
    outcome = res.outcomes[0] if res.outcomes else None
    if outcome is None or not outcome.ok or outcome.path is None:
        raise failure(outcome, sub.task_id)
    return outcome.path


def status(task_ids: Iterable[str] | str, *, region: str | None = None,
           base_url: str | None = None, env: Environment | None = None) -> list[TaskStatus]:
    """The service's answer for each task (``.status``, ``.output``, ``.response``)."""
    ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
    svc = service(region=region, base_url=base_url, env=env)
    return list(svc.status(svc.read_ids(ids)))


def save(target: str, *, output: str | Path | None = None, force: bool = False,
             region: str | None = None, base_url: str | None = None,
             env: Environment | None = None) -> Path:
    """Save a finished task's video (a task id or a video URL); returns the path."""
    svc = service(region=region, base_url=base_url, env=env)
    return svc.download(target, output=_str(output), force=force).path


def cancel(task_ids: Iterable[str] | str, *, region: str | None = None,
           base_url: str | None = None, env: Environment | None = None) -> list[CancelResult]:
    """Cancel PENDING tasks; one ``CancelResult`` (``canceled`` true or false) per task."""
    ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
    svc = service(region=region, base_url=base_url, env=env)
    return list(svc.cancel(svc.read_ids(ids)))


_BY_STATUS: dict[ExitStatus, type[WanvidError]] = {
    ExitStatus.BAD_INPUT: BadInputError, ExitStatus.AUTH: AuthError,
    ExitStatus.REJECTED: RejectedError, ExitStatus.TASK_FAILED: TaskFailedError,
    ExitStatus.TIMEOUT: WaitTimeoutError, ExitStatus.NETWORK: NetworkError,
    ExitStatus.JOURNAL: JournalError, ExitStatus.OUTPUT: WriteError,
}


def failure(outcome: Result | None, task_id: str) -> WanvidError:
    """The exception a task's unsuccessful outcome stands for."""
    if outcome is None:
        return WaitTimeoutError(f"{task_id}: no result")
    cls = _BY_STATUS.get(outcome.exit_status, WanvidError)
    what = f"{outcome.code}: {outcome.message}" if outcome.code else (
        outcome.message or outcome.status)
    return cls(f"{task_id} {outcome.status}: {what}", code=outcome.code)


def _str(v: str | Path | None) -> str | None:
    return None if v is None else str(v)
