"""The use cases, in one place: prepare and check, submit and journal, status, wait (with
downloads), download, cancel, the task lists, and batches (``wanvid.batch`` holds the plan
and the runner).

A ``Service`` is built from an ``Environment`` (streams, clock, environment variables,
paths) and the root options; it imports neither typer nor rich. The command layer
(``wanvid.cli``) parses options, calls one method, and renders the result; the Python API
(``wanvid.api``) calls the same methods. Failures are ``WanvidError`` subclasses carrying
their exit status; methods that handle many tasks return results with one exit status each.
"""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanvid.context import Environment
from wanvid.errors import (
    BadInputError,
    ExitStatus,
    RejectedError,
    TaskFailedError,
    WanvidError,
    WriteError,
)
from wanvid.statuses import FAILED_STATES, SUCCEEDED, is_running

if TYPE_CHECKING:
    from wanvid.client import Client, RoutingClient
    from wanvid.config import Settings
    from wanvid.download import Limits
    from wanvid.envelope import JsonOut
    from wanvid.journal import IntentCheck, IntentRecord, Journal, TaskRecord
    from wanvid.leases import Leases, Limit, Wait
    from wanvid.models import Model
    from wanvid.net import Deadline
    from wanvid.params import PreparedSubmit, SubmitOptions
    from wanvid.poll import Outcome, Reporter, Waiter
    from wanvid.results import (
        CancelResult,
        DownloadResult,
        IntentDecision,
        Submitted,
        WaitResult,
    )

# Commands that touch tasks: before them, videos about to expire unsaved are announced.
GUARDED = frozenset({"submit", "status", "wait", "download", "tasks", "cancel", "generate",
                     "batch"})

OnOutcome = Callable[["Outcome"], None]

# The results of the other use cases, re-exported from wanvid.results on first use.
_RESULTS = frozenset({"Submitted", "WaitResult", "DownloadResult", "CancelResult",
                      "IntentDecision"})


def __getattr__(name: str) -> type:
    if name in _RESULTS:
        from wanvid import results

        return getattr(results, name)  # type: ignore[no-any-return]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class TaskStatus:
    """The service's answer about one task (``Service.status``)."""

    task_id: str
    response: dict[str, Any]

    @property
    def output(self) -> dict[str, Any]:
        out = self.response.get("output")
        return out if isinstance(out, dict) else {}

    @property
    def status(self) -> str:
        return str(self.output.get("task_status") or "UNKNOWN")

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.TASK_FAILED if self.status in FAILED_STATES else ExitStatus.OK


def worst(statuses: Iterable[ExitStatus]) -> ExitStatus:
    """The first non-zero status, else OK."""
    for s in statuses:
        if s:
            return s
    return ExitStatus.OK


def require_task_id(tid: str) -> None:
    """Refuse, before any request, what cannot be one of the service's task ids."""
    from wanvid.sanitize import is_task_id, one_line

    if not is_task_id(tid):
        raise BadInputError(f"'{one_line(tid, 60)}' is not a task id (letters, digits "
                            "and -_.: only, as the service's ids are); nothing was queried")


@dataclass
class Service:
    """wanvid's use cases over one environment and one set of root options."""

    env: Environment = field(default_factory=Environment)
    region: str | None = None
    base_url: str | None = None
    debug: bool = False
    sidecars: bool | None = None  # metadata beside saved videos; None: config (default on)
    upload: str | None = None  # local files: auto|always|never (wanvid.upload); None: config
    quiet: bool = False  # no upload progress on stderr
    workspace: str | None = None  # --workspace (wanvid.config.resolve)
    downloads: int | None = None  # --downloads: videos saved at once; None: config
    failed_inputs: list[str] = field(default_factory=list)  # read_ids: failed --json lines
    _settings: Settings | None = field(default=None, repr=False)
    _journal: Journal | None = field(default=None, repr=False)
    _reader: Journal | None = field(default=None, repr=False)  # read-only (``reader``)
    _uploader: Any = field(default=None, repr=False)
    _upload_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _deadline: Deadline | None = field(default=None, repr=False)
    _leases: Leases | None = field(default=None, repr=False)
    _task_lease: dict[str, int] = field(default_factory=dict, repr=False)  # task -> my lease
    _orphans_asked: float | None = field(default=None, repr=False)  # env.now() of the last
    # task -> its -o as typed in this run (the journal keeps it absolute: journal_output)
    _typed_output: dict[str, str] = field(default_factory=dict, repr=False)

    # --- construction -----------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """Flags > environment > config file > defaults (read once)."""
        if self._settings is None:
            from wanvid import config

            self._settings = config.resolve(self.env, region=self.region,
                                            base_url=self.base_url, workspace=self.workspace)
        return self._settings

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            from wanvid.journal import Journal

            self._journal = Journal(self.env.journal_path, now=self.env.now)
        return self._journal

    @property
    def reader(self) -> Journal:
        """The journal for a command that only reads it (``tasks``, ``usage``, ``gallery``):
        the one this run opened, else opened read-only, so a journal on a read-only file,
        directory or file system is still listed (and none is created to be listed)."""
        if self._journal is not None:
            return self._journal
        if self._reader is None:
            from wanvid.journal import Journal

            self._reader = Journal(self.env.journal_path, now=self.env.now, read_only=True)
        return self._reader

    @property
    def deadline(self) -> Deadline:
        """The command's --timeout, shared by every request, wait and download of this
        run: when it passes, even a request in progress is cut (exit 6)."""
        if self._deadline is None:
            from wanvid.net import Deadline

            self._deadline = Deadline(None, clock=self.env.monotonic)
        return self._deadline

    def start_deadline(self, timeout: float | None) -> None:
        """Start counting --timeout from now; the first start stands (generate starts it
        before the submit, and the wait after it keeps it)."""
        if timeout is not None and self.deadline.at is None:
            self.deadline.start(timeout)

    def notice(self, line: str) -> None:
        """One line on stderr about a long wait ("throttled by the service; retrying in
        40 s")."""
        self.env.note(line)

    def download_limits(self) -> Limits:
        from wanvid.download import Limits

        return Limits(max_size=self.settings.max_download)

    def client(self) -> Client:
        """A client for the configured API root (the key is checked here)."""
        from wanvid.client import Client

        key = self.settings.require_key()
        return Client(self.settings.base_url, key, sleep=self.env.sleep,
                      deadline=self.deadline, notify=self.notice, now=self.env.now)

    def routing_client(self) -> RoutingClient:
        """A client that queries each task at the API root it was submitted to (journal);
        --region/--base-url only choose the root for tasks the journal has no root for."""
        from wanvid.client import RoutingClient

        journal = self.journal

        def base_for(task_id: str) -> str | None:
            rec = journal.get(task_id)
            return rec.base_url if rec is not None and rec.base_url else None

        return RoutingClient(self.client(), base_for)

    @property
    def write_sidecars(self) -> bool:
        return self.settings.sidecar if self.sidecars is None else self.sidecars

    @property
    def raise_unexpected(self) -> bool:
        return self.debug or bool(self.env.get("WANVID_RAISE"))

    def expiring_warning(self) -> str | None:
        """A line about paid-for videos not saved whose URLs expire within 2 h, or None."""
        if not self.env.journal_path.exists():
            return None
        try:
            soon = self.journal.expiring(within=7200)
        except Exception:  # the guard must never break a command
            return None
        if not soon:
            return None
        from wanvid.render import fmt_duration

        first = min(r.expires_at for r in soon if r.expires_at)
        return (f"{len(soon)} finished video(s) not downloaded yet; the first URL expires in "
                f"{fmt_duration(first - self.env.now())}: run `wanvid wait --pending` to save "
                "them")

    # --- prepare and check ------------------------------------------------------------

    def options(self, image: str, **kw: Any) -> SubmitOptions:
        """Submit options from keyword arguments named like the CLI's options; ``fit``
        defaults to the config's."""
        from wanvid.params import SubmitOptions

        if kw.get("fit") is None:
            kw["fit"] = self.settings.fit
        if kw.get("fit_background") is None:
            kw.pop("fit_background", None)
        try:
            return SubmitOptions(image=image, **kw)
        except TypeError as e:
            raise BadInputError(f"unknown option: {e}") from None

    def prepare(self, opts: SubmitOptions) -> PreparedSubmit:
        """Validate everything and build the request (nothing is sent)."""
        from wanvid.params import prepare_submit

        _check_texts(opts)
        s = self.settings
        prepared = prepare_submit(opts, default_model=s.model, default_kf2v_model=s.kf2v_model,
                                  region=s.region, check_region=s.enforce_region,
                                  warn=self.env.warn, note=self.env.note)
        for note in prepared.fit_notes:
            self.env.note(note)
        from wanvid.upload import plan

        prepared.uploads = plan(prepared.media, self.upload_mode)
        return prepared

    @property
    def upload_mode(self) -> str:
        from wanvid.upload import check_mode

        if self.upload is not None:
            return check_mode(self.upload)
        return check_mode(self.settings.upload, "config upload:")

    def dry_run(self, prepared: PreparedSubmit) -> dict[str, Any]:
        """The request that would be sent. Files are really read and encoded (streamed,
        not kept) so a dry run proves the request can be made; data URIs abbreviated."""
        headers = {"Authorization": "Bearer ***", "X-DashScope-Async": "enable",
                   "Content-Type": "application/json"}
        uploads: list[dict[str, Any]] = []
        shown = prepared
        if prepared.uploads:  # nothing is uploaded, not even the policy asked for
            import dataclasses

            from wanvid.upload import RESOLVE_HEADER, placeholder, substitute

            values = {id(m): placeholder(m) for m in prepared.uploads}
            payload = substitute(prepared.payload, values)
            assert isinstance(payload, dict)
            shown = dataclasses.replace(
                prepared, payload=payload,
                media=[m for m in prepared.media if id(m) not in values])
            headers[RESOLVE_HEADER] = "enable"
            uploads = [{"input": m.arg, "flag": m.flag or m.role, "bytes": m.size}
                       for m in prepared.uploads]
        data: dict[str, Any] = {
            "method": "POST",
            "url": self.settings.base_url + prepared.model.path,
            "headers": headers,
            "body": shown.preview_payload(),
            "body_bytes": shown.body_size(),
            "billed_seconds": prepared.duration,
        }
        if uploads:
            data["uploads"] = uploads
        if prepared.predicted_size:
            w, h = prepared.predicted_size
            data["predicted_size"] = {"width": w, "height": h,
                                      "resolution": prepared.resolution}
        return data

    def check_output(self, output: str | None, *, flag: str = "-o",
                     writable: bool = True) -> None:
        """A template renders, and its directory exists or can be created and is writable:
        found before a task is paid for (exit 2, nothing sent)."""
        from wanvid.outputs import check_output, check_template

        check_template(output, flag)
        if writable:
            check_output(output, self.settings.output_dir, flag=flag)

    def fixed_destination(self, output: str | None, prepared: PreparedSubmit) -> Path | None:
        """Where a video will be saved when that does not depend on the task id (so it can
        be checked before paying); None when it does."""
        from wanvid.outputs import depends_on, output_path

        if not output or "{task_id}" in output or \
                depends_on(output, "task_id", self.settings.output_dir):
            return None  # a directory: DIR/{task_id}.mp4

        first = prepared.media[0] if prepared.media else None
        stem = ""
        if first is not None and first.kind != "data":
            stem = Path(first.arg.split("?")[0].rstrip("/")).stem
        dest = output_path(output, task_id="{task_id}", model=prepared.model.name, stem=stem,
                           seed=prepared.payload.get("parameters", {}).get("seed"),
                           date=self._date(), output_dir=self.settings.output_dir)
        return None if dest.is_dir() else dest

    def check_free(self, dest: Path | None, where: str = "-o") -> None:
        if dest is not None and dest.exists():
            raise BadInputError(f"{where}: {dest} exists; pass --force to overwrite it, or "
                                "choose another -o (nothing was sent)")

    def check_before_paying(self, prepared: PreparedSubmit, output: str | None, *,
                            force: bool) -> None:
        """Everything about the output that can fail, checked before the task is created."""
        self.check_output(output)
        if not force:
            self.check_free(self.fixed_destination(output, prepared))

    # --- submit -----------------------------------------------------------------------

    def submit(self, prepared: PreparedSubmit, *, output: str | None = None,
               fingerprint: str | None = None, client: Client | RoutingClient | None = None,
               hold: bool | None = None, lease: int | None = None,
               check: IntentCheck | None = None) -> Submitted:
        """Send one prepared request and journal the task id the moment it comes back.

        ``hold`` shares the account's limits with other wanvid processes (``wanvid.leases``):
        both wait for a free slot of the model and pace the submit; the task then holds
        the slot until a wanvid process sees it end: False leaves it to the task at once
        (``submit``: nobody in this process follows it), True keeps it this process's
        until its wait sees the task end (``generate``); None (the Python API) does
        neither. A submit that creates no task gives its slot back. ``lease``: a slot
        already taken (``try_slot``: batch), used instead of waiting for one. ``check``:
        run in the transaction that writes the submit's intent (``Journal.open_intent``);
        what it raises ends the submit before anything is sent."""
        from wanvid import intents
        from wanvid.client import submitted_task_id

        client = client or self.client()
        journal = self.journal  # opened (and checked for damage) before anything is paid for
        body = self._upload(prepared, client) if prepared.uploads else prepared.body()
        if lease is None and hold is not None:
            lease = self._take_lease(prepared)
        try:
            # Write-ahead: the submit is journaled before its POST leaves, so a task created
            # by a POST whose answer never arrives (a kill, Ctrl-C, a timeout) is found again.
            inp = prepared.payload.get("input")
            prompt = inp.get("prompt") if isinstance(inp, dict) else None
            intent = journal.open_intent(
                model=prepared.model.name, model_name=str(prepared.payload.get("model") or
                                                          prepared.model.name),
                base_url=self.settings.base_url,
                prompt=prompt if isinstance(prompt, str) else None,
                params=prepared.journal_params(), inputs=self.journal_inputs(prepared),
                fingerprint=fingerprint, output=self.journal_output(output), check=check)
            with intents.posting(intent):
                try:
                    resp = client.submit(prepared.model.path, body)
                except WanvidError as e:
                    if intents.proves_not_created(e):
                        with suppress(WanvidError):
                            journal.close_intent(intent, note=e.message[:300])
                    else:  # the task may exist: the open intent is how it is found again
                        e.message = _intent_hint(e.message)
                    raise
            # Checked against the safe pattern before it is printed, journaled or used in
            # a path: a number, a list or an id with a line break is a protocol error.
            task_id = submitted_task_id(resp)
        except BaseException:
            if lease is not None:
                self._give_back(lease)
            raise
        if lease is not None:
            if hold:
                self._bind_lease(lease, task_id)
            else:  # the task runs on after this process: it keeps the slot (wanvid.leases)
                self._leave_lease(lease, task_id)
        out = resp["output"]
        try:
            journal.record_submit(task_id, model=prepared.model.name,
                                  base_url=self.settings.base_url,
                                  params=prepared.journal_params(),
                                  inputs=self.journal_inputs(prepared),
                                  status=str(out.get("task_status") or "PENDING"),
                                  fingerprint=fingerprint, output=self.journal_output(output),
                                  intent=intent)
        except WanvidError as e:
            # The task exists and is paid for: its id must reach the user whatever happens.
            raise WanvidError(f"task {task_id} was created but the journal could not record "
                              f"it ({e.message}); keep the id: `wanvid wait {task_id}` fetches "
                              "the video") from None
        if output:
            self._typed_output[task_id] = output
        from wanvid.results import Submitted

        return Submitted(task_id, resp, prepared)

    # --- paths: absolute in the journal, as typed on the screen ------------------------

    @property
    def cwd(self) -> Path | None:
        """The directory relative paths start in (the environment's, else the process's;
        None when it is gone)."""
        if self.env.cwd is not None:
            return self.env.cwd
        try:
            return Path.cwd()
        except OSError:
            return None

    def journal_output(self, output: str | None) -> str | None:
        """The -o path (or template) as the journal keeps it: absolute, so `wait --pending`
        run from another directory saves (and finishes the .part) where this run would."""
        cwd = self.cwd
        if not output or cwd is None:
            return output
        from wanvid.outputs import absolute_template

        return absolute_template(output, cwd, self.settings.output_dir)

    def journal_inputs(self, prepared: PreparedSubmit) -> list[str]:
        """The inputs' names as the journal keeps them: local files absolute (URLs and
        data: previews as they are), so `tasks --json` means the same files from anywhere."""
        names = prepared.input_names()
        cwd = self.cwd
        if cwd is None or len(names) != len(prepared.media):
            return names
        return [os.path.normpath(os.path.join(cwd, m.path))
                if m.kind == "file" and m.path is not None
                else name for m, name in zip(prepared.media, names, strict=True)]

    def typed_output(self, task_id: str, output: str | None) -> None:
        """``output`` is how this run's user named ``task_id``'s video (a batch's job
        submitted by an earlier run): its saved path is printed in that form."""
        if output:
            self._typed_output[task_id] = output

    # --- account limits shared with other wanvid processes (wanvid.leases) -------------

    @property
    def leases(self) -> Leases:
        if self._leases is None:
            from wanvid.leases import Leases

            self._leases = Leases(self.journal.path, now=self.env.now)
        return self._leases

    def _limit(self, m: Model) -> tuple[str, Limit]:
        from wanvid.leases import Limit, key_for

        return (key_for(m.name, self.settings.base_url),
                Limit(int(m.concurrent_tasks or 0), float(m.submits_per_second or 0)))

    def try_slot(self, prepared: PreparedSubmit) -> tuple[int | None, float]:
        """A slot of the model if one is free now (and the submit rate allows it):
        (lease, 0); else (None, seconds worth waiting before looking again; ``slot_wait``
        says why). Batch asks here, so its polling loop goes on while other processes hold
        the slots."""
        lease, wait = self.leases.try_take(*self._limit(prepared.model))
        if lease is None:
            self._follow_orphans()
        return lease, wait

    def slot_wait(self, prepared: PreparedSubmit) -> str:
        """Why the last ``try_slot`` found no slot, in words (every slot held, or the
        submits-per-second window full), as the lease table showed it then."""
        why = self.leases.last_wait
        if why is None:
            return "waiting for the account's limit"
        return why.describe(prepared.model.name)

    def adopt_slot(self, prepared: PreparedSubmit, task_id: str) -> None:
        """A task an earlier run submitted and this one waits for counts against its
        model's slots until a wait sees it end (no submit: never paced, never refused)."""
        try:
            lease = self.leases.adopt(self._limit(prepared.model)[0], task_id)
        except WanvidError:
            return
        if lease is not None:
            self._task_lease[task_id] = lease

    def _take_lease(self, prepared: PreparedSubmit) -> int:
        from wanvid.progress import heartbeat_seconds
        from wanvid.render import fmt_duration

        m = prepared.model
        key, limit = self._limit(m)

        # Not on a terminal (CI logs, pipes): the heartbeat's "still waiting" line every
        # WANVID_HEARTBEAT seconds (30) without one, as a task's wait has (-q: none).
        beat = (float("inf") if self.env.interactive or self.env.quiet
                else heartbeat_seconds(self.env))
        since = self.env.monotonic()
        said = [since]

        def waiting(why: Wait) -> None:
            self.env.note(f"{why.describe(m.name)} (nothing sent yet)")
            said[0] = self.env.monotonic()

        def nap(seconds: float) -> None:
            self._follow_orphans()
            now = self.env.monotonic()
            why = self.leases.last_wait
            if why is not None and now - said[0] >= beat:
                said[0] = now
                self.env.note(f"{slot_heartbeat(why, m.name)}, {fmt_duration(now - since)}")
            self.env.sleep(seconds)

        return self.leases.take(key, limit, sleep=nap,
                                deadline_left=self.deadline.remaining, on_wait=waiting)

    def _follow_orphans(self) -> None:
        """Waiting for a slot that tasks of gone wanvid processes hold (orphaned leases,
        ``wanvid.leases``): ask the service about those tasks (every ``ORPHAN_POLL``
        seconds, within the account's shared query rate) and free the slot of each that
        ended. Nobody else may be following them; a failed query is tried again later."""
        from wanvid.leases import ENDED, ORPHAN_POLL, SLOTS

        why = self.leases.last_wait
        if why is None or why.reason != SLOTS or not why.orphans:
            return
        now = self.env.now()
        if self._orphans_asked is not None and now - self._orphans_asked < ORPHAN_POLL:
            return
        self._orphans_asked = now
        try:
            client = self.client()
            for task_id in why.orphans:
                self.env.sleep(self._query_delay())
                out = client.get_task(task_id, max_retries=0).get("output")
                status = str(out.get("task_status") or "") if isinstance(out, dict) else ""
                if status.upper() in ENDED:
                    self.leases.release(task_id=task_id)
        except WanvidError as e:
            import logging

            logging.getLogger("wanvid.service").debug("orphaned tasks not followed: %s",
                                                      e.message)

    def _give_back(self, lease: int) -> None:
        try:
            self.leases.release(lease)
        except WanvidError:
            pass  # the process's exit frees it too

    def _leave_lease(self, lease: int, task_id: str) -> None:
        try:
            self.leases.leave(lease, task_id)
        except WanvidError:
            pass  # once this process is gone, its lease follows the intent to the task

    def _bind_lease(self, lease: int, task_id: str) -> None:
        self._task_lease[task_id] = lease
        try:
            self.leases.bind(lease, task_id)
        except WanvidError:
            pass

    def task_ended(self, task_id: str) -> None:
        """A wait saw ``task_id`` end: its slot is free, whichever process took it (one that
        holds no lease connection leaves it to the journal's status, which every lease
        purge reads)."""
        self._task_lease.pop(task_id, None)
        if self._leases is not None:
            try:
                self._leases.release(task_id=task_id)
            except WanvidError:
                pass

    def task_dropped(self, task_id: str) -> None:
        """A wait stopped following ``task_id`` without seeing it end (its query was
        refused, or failed too often): this process gives back its own slot for it (the
        task may still run at the service: at worst a later submit is throttled and
        retried, where keeping the slot would stall this process's next submit for good).
        Another process's lease of the task is left alone."""
        lease = self._task_lease.pop(task_id, None)
        if lease is not None:
            self._give_back(lease)

    def _query_delay(self) -> float:
        from wanvid.leases import ACCOUNT_QPS

        return self.leases.query_delay(ACCOUNT_QPS)

    def release_leases(self) -> None:
        if self._leases is not None:
            self._leases.release_mine()

    def _upload(self, prepared: PreparedSubmit, client: Client | RoutingClient) -> bytes:
        """Upload the inputs ``prepared.uploads`` names (or reuse earlier uploads of the
        same content for the same model, from the journal) and return the request body
        with their ``oss://`` URLs. One upload at a time per process."""

        from wanvid.client import RoutingClient
        from wanvid.media import body_bytes
        from wanvid.progress import make_reporter
        from wanvid.upload import Uploader, substitute

        api = client.default if isinstance(client, RoutingClient) else client
        model = str(prepared.payload.get("model") or prepared.model.name)
        values: dict[int, str] = {}
        with self._upload_lock:
            if self._uploader is None or self._uploader.root != api.base_url:
                self._uploader = Uploader(api, journal=self.journal, notify=self.env.warn)
            up = self._uploader
            try:
                rep = make_reporter(self.env, quiet=self.quiet)
            except Exception:  # a live display is already on (a batch's): plain lines
                from wanvid.progress import PlainReporter, QuietReporter

                rep = QuietReporter(self.env) if self.quiet else PlainReporter(self.env)
            try:
                up.progress = rep.upload_progress
                for m in prepared.uploads:
                    started = self.env.monotonic()
                    got = up.upload(m.path, model, label=m.arg, content_type=m.mime)
                    rep.upload_done(m.arg, got.size, got.reused, self.env.monotonic() - started)
                    values[id(m)] = got.url
            finally:
                up.progress = None
                rep.close()
        return body_bytes(substitute(prepared.payload, values))

    # --- status, cancel ---------------------------------------------------------------

    def status(self, ids: list[str], timeout: float | None = None) -> Iterable[TaskStatus]:
        """Ask the service about each task (journaled as it answers); yields as it goes.
        Bounded: ``timeout`` covers every query (exit 6 when it passes); without it (and
        without a deadline already running) each task's query, retries included, has
        ``STATUS_BOUND`` seconds, so a server that trickles or never answers cannot hold
        the command (its requests alone would allow minutes)."""
        if not ids:
            raise BadInputError("status: give at least one TASK_ID (or pipe them in)")
        self.start_deadline(timeout)
        own = self.deadline.at is None
        client = self.routing_client()
        try:
            for tid in ids:
                if own:
                    self.deadline.start(STATUS_BOUND, label=f"status's own {STATUS_BOUND:g} s "
                                        "bound per task (--timeout sets another)")
                st = TaskStatus(tid, client.get_task(tid))
                out = st.output
                if self.journal.get(tid) is not None or st.status != "UNKNOWN":
                    self.journal.update_status(tid, st.status, video_url=out.get("video_url"),
                                               code=out.get("code"),
                                               message=out.get("message"))
                yield st
        finally:
            if own:
                self.deadline.start(None)

    def cancel(self, ids: list[str]) -> Iterable[CancelResult]:
        """Cancel PENDING tasks; a task the service refuses to cancel is a result, not an
        exception (the others still get their turn)."""
        from wanvid.results import CancelResult

        client = self.routing_client()
        for tid in ids:
            try:
                client.cancel(tid)
            except RejectedError as e:
                yield CancelResult(tid, False, e.code, e.message)
                continue
            self.journal.update_status(tid, "CANCELED")
            yield CancelResult(tid, True)

    # --- wait and download ------------------------------------------------------------

    def read_ids(self, ids: list[str] | None) -> list[str]:
        """Task ids from arguments, else from stdin when it is not a terminal (an id, or a
        ``--json`` envelope line naming one: ``submit --json | wanvid wait``); anything that
        cannot be a task id is refused before any request. The line of a command that
        failed (a refused submit of a loop) is reported, kept in ``failed_inputs`` and
        skipped (``with_failed_inputs`` makes the exit status 2)."""
        if ids:
            got = [i.strip() for i in ids if i.strip()]
        elif not self.env.stdin_isatty:
            got = [line.strip() for line in self.env.stdin
                   if line.strip() and not line.startswith("#")]
        else:
            return []
        from wanvid.envelope import FailedLine, task_id_of

        tids = []
        for line in got:
            try:
                tid = task_id_of(line)
            except FailedLine as e:  # a refused submit of a loop: the others go on
                self.failed_inputs.append(e.message)
                continue
            if tid is not None:
                require_task_id(tid)
                tids.append(tid)
        tids = list(dict.fromkeys(tids))  # `cat ids ids | wanvid wait`: each task once
        failed = self.failed_inputs
        if failed and not tids:
            more = f" (and {len(failed) - 1} more such lines)" if len(failed) > 1 else ""
            raise BadInputError(f"{failed[0]}{more}; nothing was queried")
        for message in failed:
            self.env.err(f"wanvid: error: {message}; skipped, the other tasks go on")
        return tids

    def with_failed_inputs(self, code: int, jo: JsonOut | None = None) -> int:
        """The exit status of a run whose input had failed ``--json`` lines (``read_ids``
        skipped them): 2 unless the run failed otherwise; each is an error of the last
        JSON line."""
        if not self.failed_inputs:
            return code
        if jo is not None:
            from wanvid.envelope import error

            jo.pending_errors.extend(error(ExitStatus.BAD_INPUT, m) for m in self.failed_inputs)
        return code or int(ExitStatus.BAD_INPUT)

    def pending_ids(self) -> list[str]:
        """Every unfinished or not-yet-downloaded task in the journal, after resolving the
        submits whose answer never arrived (``wanvid.intents``)."""
        self.resolve_intents()
        return [r.task_id for r in self.journal.pending()]

    def in_flight(self, it: IntentRecord) -> bool:
        """An open intent whose submit is under way (in this process, or in another that
        still runs): its holder closes it; nothing resolves or waits for it."""
        from wanvid import intents, leases

        return intents.in_flight(it, holder_alive=leases.holder_alive, here=leases.me())

    def interrupted_intents(self) -> list[IntentRecord]:
        """Open intents no running submit will close (their process is gone, or its POST
        ended proving nothing): what ``wait --pending`` and ``batch`` resolve."""
        return [it for it in self.journal.open_intents() if not self.in_flight(it)]

    def resolve_intents(self, *, wait: bool = True) -> list[IntentDecision]:
        """Settle every open submit intent against the service's task list: adopt the task
        its submit created, close it when the list proves none was, else leave it open
        (said on stderr). ``wait``: an intent too recent for the list to be complete is
        tried again once it settles (within --timeout). An intent whose submit is in
        flight (``in_flight``: its process still runs) is left to that process, never
        waited for; it still claims the tasks the list shows in its window, so no other
        intent adopts the task its submit is creating."""
        from wanvid import intents
        from wanvid.results import IntentDecision

        journal = self.journal
        pending = journal.open_intents()
        if not pending:
            return []
        settle = intents.settle_seconds(self.env.get(intents.SETTLE_ENV))
        router = self.routing_client()
        done: list[IntentDecision] = []
        while True:
            flying = {it.intent_id for it in pending if self.in_flight(it)}
            if len(flying) == len(pending):
                for it in pending:
                    who = f"wanvid process {it.pid}"
                    self.notice(f"{intent_label(it)}: in flight ({who} is submitting it, "
                                "not an interrupted submit): left to it")
                    done.append(IntentDecision(it, intents.Decision(
                        it.intent_id, intents.OPEN, f"in flight in {who}")))
                return done
            now = self.env.now()
            listings: dict[int, intents.Listing] = {}
            apis: dict[int, intents.TaskApi] = {}
            for it in pending:
                try:
                    apis[it.intent_id] = api = router.for_root(it.base_url or
                                                               self.settings.base_url)
                except WanvidError as e:
                    listings[it.intent_id] = intents.Listing(error=e.message)
                    continue
                listings[it.intent_id] = intents.list_candidates(api, it, settle=settle)
            seen = {c.task_id for li in listings.values() for c in li.candidates}
            known = journal.known(seen)
            looked: dict[tuple[int, str], intents.Candidate] = {}  # one query per task and root
            for iid, li in listings.items():  # each candidate's status and orig_prompt
                key = id(apis[iid])
                li.candidates = [c if c.task_id in known else looked.setdefault(
                    (key, c.task_id), intents.with_prompt(apis[iid], c))
                    for c in li.candidates]
            decisions = intents.decide(pending, listings, known, now=now, settle=settle,
                                       recheck=max(0.5, self.settings.poll_interval))
            by_id = {it.intent_id: it for it in pending}
            # An in-flight intent's own decision is its holder's business: never acted on.
            flown = [d for d in decisions if d.intent_id in flying]
            decisions = [d for d in decisions if d.intent_id not in flying]
            retry = [d for d in decisions if d.retry_at is not None]
            still: list[intents.Decision] = []
            for d in decisions:
                it = by_id[d.intent_id]
                if d.action == intents.ADOPT and d.task_id:
                    if journal.adopt_intent(d.intent_id, d.task_id,
                                            status=d.status or "PENDING"):
                        self.notice(f"{intent_label(it)}: {d.reason}, which wanvid never "
                                    "heard of: adopted (it is waited for like the others)")
                    done.append(IntentDecision(it, d))
                elif d.action == intents.CLOSE:
                    if journal.close_intent(d.intent_id, note=d.reason):
                        self.notice(f"{intent_label(it)}: {d.reason}")
                    done.append(IntentDecision(it, d))
                else:
                    still.append(d)
            delay = (max(0.0, min(d.retry_at or now for d in retry) - now) + 0.05
                     if retry else 0.0)
            left = self.deadline.remaining()
            if not wait or not retry or (left is not None and delay > left):
                for d in still:  # every open intent is looked at again while any can settle
                    it = by_id[d.intent_id]
                    self.notice(f"{intent_label(it)}: left open: {d.reason}; its job is not "
                                "submitted again (`wanvid wait --pending` tries again)")
                    done.append(IntentDecision(it, d))
                for d in flown:
                    it = by_id[d.intent_id]
                    self.notice(f"{intent_label(it)}: in flight (wanvid process {it.pid} "
                                "is submitting it, not an interrupted submit): left to it")
                    done.append(IntentDecision(it, intents.Decision(
                        it.intent_id, intents.OPEN, f"in flight in wanvid process {it.pid}")))
                return done
            if any(d.candidates for d in retry):
                self.notice(f"{len(retry)} interrupted submit(s) with candidates that have "
                            f"not finished; looking again in {delay:.1f} s (their prompts "
                            "tell them apart once they finish)")
            else:
                self.notice(f"{len(retry)} submit(s) interrupted in the last {settle:.0f} s; "
                            f"waiting {delay:.1f} s for the service's task list to show "
                            "whether they created a task")
            self.env.sleep(delay)
            # Looked at again: those still open (another process may have settled some),
            # and the in-flight ones still open (their holders may have closed them).
            now_open = {it.intent_id: it for it in journal.open_intents()}
            pending = [now_open[i] for i in [d.intent_id for d in still] + sorted(flying)
                       if i in now_open]
            if not pending:
                return done

    def remember_output(self, ids: list[str], output: str | None) -> None:
        """Journal -o for each task, so `wait --pending` after an interrupt keeps the name."""
        if not output:
            return
        for tid in ids:
            try:
                self.journal.set_output(tid, self.journal_output(output) or output)
            except WanvidError as e:
                self.env.warn(f"{e.message}; waiting without recording -o")
                return

    def _destination(self, task_id: str, output: str | None, rec: TaskRecord | None,
                     model: str = "") -> tuple[Path, str | None, bool]:
        """(path, template, journaled) of ``task_id``'s video: ``output``, else the task's
        -o as typed in this run, else the template journaled with it (``journaled``); the
        values come from the journal's record (``model``: the service's, when none)."""
        from wanvid.outputs import output_path

        template = output or self._typed_output.get(task_id)
        journaled = template is None and rec is not None and bool(rec.output)
        if journaled:
            assert rec is not None
            template = rec.output
        stem, seed = "", None
        if rec is not None:
            model = rec.model or model
            stem = _stem(rec)
            seed = rec.params.get("seed") if isinstance(rec.params, dict) else None
        path = output_path(template, task_id=task_id, model=model, stem=stem, seed=seed,
                           date=self._date(), output_dir=self.settings.output_dir)
        return path, template, journaled

    def dest_for(self, output: str | None) -> Callable[[str, dict[str, Any]], Path]:
        """Where each task's video goes (``_destination``). A journaled (absolute) name
        under the current directory is given relative to it, so what is printed is what
        the user typed there. A second task of this wait named to a file another one is
        saved as (a name only the service's answer settles: ``check_wait`` refused the
        others up front) is a ``WriteError``: that task stays pending."""
        from wanvid.outputs import same_file, shown_path

        journal, cwd = self.journal, self.cwd
        claimed: dict[str, str] = {}  # file -> the task of this wait saved as it

        def dest(task_id: str, out: dict[str, Any]) -> Path:
            rec = journal.get(task_id)
            path, template, journaled = self._destination(task_id, output, rec,
                                                          out.get("model") or "")
            shown = shown_path(path, cwd) if journaled and cwd is not None else path
            other = claimed.setdefault(same_file(path), task_id)
            if other != task_id:
                raise WriteError(f"{task_id}: -o {template} names {shown}, the file task "
                                 f"{other} of this wait is saved as; the task stays pending: "
                                 f"`wanvid wait {task_id} -o DIR/` saves it")
            return shown

        return dest

    def check_wait(self, ids: list[str], output: str | None, *, download: bool = True,
                   force: bool = False) -> None:
        """Everything about where a wait saves its videos that can be refused before any
        request (``BadInputError``, exit 2): -o renders and can be written, one file is
        not named for two tasks (a file name, or a template such as ``{stem}.mp4`` that
        gives two tasks' inputs one name; their values are the journal's), and, without
        ``force``, no task would overwrite a video the journal has saved for another."""
        from wanvid.outputs import depends_on, same_file, shown_path

        self.check_output(output, writable=download)
        ids = list(dict.fromkeys(ids))
        _check_single_output(output, len(ids))
        if not download:
            return
        journal, cwd = self.journal, self.cwd
        planned: dict[str, tuple[str, Path]] = {}  # file -> (task, as shown)
        for tid in ids:
            rec = journal.get(tid)
            path, template, journaled = self._destination(tid, output, rec)
            if rec is None and depends_on(template, "model", self.settings.output_dir):
                continue  # the model comes with the service's answer: dest_for checks
            shown = shown_path(path, cwd) if journaled and cwd is not None else path
            key = same_file(path)
            if key in planned:
                first = planned[key][0]
                if output:
                    raise BadInputError(f"-o {output} names one file, {shown}, for tasks "
                                        f"{first} and {tid}; add {{task_id}} to it (no task "
                                        "was waited for)")
                raise BadInputError(f"tasks {first} and {tid} would both be saved as {shown} "
                                    f"(-o {template}, journaled with them); give -o with "
                                    "{task_id} to save them apart (no task was waited for)")
            planned[key] = (tid, shown)
        there = {key: v for key, v in planned.items() if os.path.lexists(key)}
        if force or not there:
            return
        saved = {same_file(r.path): r.task_id for r in journal.list()
                 if r.path and r.task_id not in ids}
        for key, (tid, shown) in there.items():
            owner = saved.get(key)
            if owner is not None:
                raise BadInputError(f"{shown} holds task {owner}'s video, so task {tid} "
                                    "cannot be saved as it; choose another -o, or pass "
                                    "--force to overwrite it (no task was waited for)")

    def waiter(self, *, reporter: Reporter, output: str | None = None,
               timeout: float | None = None, interval: float | None = None,
               download: bool = True, force: bool = False,
               on_outcome: OnOutcome | None = None,
               client: Client | RoutingClient | None = None,
               batch: str | None = None) -> Waiter:
        from functools import partial

        from wanvid.download import download as fetch
        from wanvid.poll import Waiter, WaitOptions

        s = self.settings
        self.start_deadline(timeout)
        opts = WaitOptions(interval=interval or s.poll_interval, timeout=timeout,
                           max_qps=s.max_qps, download=download, force=force,
                           raise_unexpected=self.raise_unexpected,
                           sidecar=self.write_sidecars, batch=batch, deadline=self.deadline,
                           downloads=self.downloads or s.downloads)
        return Waiter(client=client or self.routing_client(), journal=self.journal,
                      reporter=reporter, options=opts, dest_for=self.dest_for(output),
                      clock=self.env.monotonic, wall=self.env.now, sleep=self.env.sleep,
                      on_outcome=on_outcome, on_end=self.task_ended,
                      on_drop=self.task_dropped,
                      shared_rate=self._query_delay,
                      downloader=partial(fetch, **self._fetch_bounds()))

    def wait(self, ids: list[str], *, reporter: Reporter | None = None,
             output: str | None = None, timeout: float | None = None,
             interval: float | None = None, download: bool = True, force: bool = False,
             on_outcome: OnOutcome | None = None) -> WaitResult:
        """Poll every task from one loop and save each video as soon as it is ready."""

        if not ids:
            raise BadInputError("wait: give TASK_IDs, pipe them in, or use --pending")
        self.check_wait(ids, output, download=download, force=force)
        self.settings.require_key()
        self.remember_output(ids, output)
        reporter = reporter or _quiet(self.env)
        waiter = self.waiter(reporter=reporter, output=output, timeout=timeout,
                             interval=interval, download=download, force=force,
                             on_outcome=on_outcome)
        try:
            outcomes = waiter.run(ids)
        finally:
            reporter.close()
        return self._wait_result(outcomes, waiter)

    def _wait_result(self, outcomes: list[Outcome], waiter: Waiter) -> WaitResult:
        from wanvid.poll import overall_exit
        from wanvid.results import WaitResult

        res = WaitResult(outcomes, overall_exit(outcomes) or ExitStatus.OK)
        if waiter.unrecorded:
            # The videos are saved; the next `wanvid wait --pending` recognises and records them.
            res.unrecorded = [u.line() for u in waiter.unrecorded]
            res.journal_error = (f"the journal {self.journal.path} could not record "
                                 f"{len(waiter.unrecorded)} change(s) "
                                 f"({waiter.unrecorded[0].message})")
            if not res.exit_status:
                res.exit_status = ExitStatus.JOURNAL
        return res

    def _fetch_bounds(self) -> dict[str, Any]:
        """What every download gets from the command: its deadline, bounds and clocks."""
        return {"deadline": self.deadline, "limits": self.download_limits(),
                "sleep": self.env.sleep, "notify": self.notice, "now": self.env.now}

    def download(self, target: str, *, output: str | None = None, force: bool = False,
                 reporter: Reporter | None = None) -> DownloadResult:
        """Save a finished task's video (a task id, or a video URL)."""
        from wanvid.download import download as fetch

        self.check_output(output)
        journal = self.journal
        task_id: str | None
        if target.startswith(("http://", "https://")):
            from urllib.parse import urlsplit

            url, out, answer = target, {}, None
            name = Path(urlsplit(url).path).stem or "video"
            dest_id, task_id = name, None
            # A result URL is named after its task: journal the download against that task.
            rec = journal.get(name)
            if rec is not None and rec.video_url and \
                    rec.video_url.split("?")[0] == url.split("?")[0]:
                task_id = name
        else:
            require_task_id(target)
            task_id = dest_id = target
            st = next(iter(self.status([target])))
            out, answer = st.output, st.response
            if st.status != SUCCEEDED:
                if is_running(st.status):
                    raise BadInputError(f"{target} is still {st.status}; use "
                                        f"`wanvid wait {target}`")
                raise TaskFailedError(status_line(target, out, self.env.now()))
            url = out["video_url"]
        dest = self.dest_for(output)(dest_id, out)
        reporter = reporter or _quiet(self.env)
        reporter.add_task(dest_id)
        rec = journal.get(task_id) if task_id else None
        expected = (rec.sha256 if rec is not None and rec.path
                    and os.path.abspath(rec.path) == os.path.abspath(dest) else None)
        try:
            res = fetch(url, dest, force=force, expected_sha256=expected,
                        on_progress=lambda d, t: reporter.download_progress(dest_id, d, t),
                        **self._fetch_bounds())
            reporter.download_done(dest_id, res.path, res.size, res.skipped)
        finally:
            reporter.close()
        if task_id:
            journal.record_download(task_id, path=str(res.path), size=res.size,
                                    sha256=res.sha256)
        if self.write_sidecars:
            self._sidecar(task_id or dest_id, res, answer)
        from wanvid.results import DownloadResult

        return DownloadResult(task_id, res.path, res.size, res.sha256, res.skipped)

    def _sidecar(self, task_id: str, res: Any, answer: dict[str, Any] | None) -> None:
        """Metadata beside a video ``download`` saved; a failure is a warning (the video
        is saved and journaled)."""
        from wanvid import sidecar

        path = Path(res.path)
        if res.skipped and sidecar.sidecar_path(path).exists():
            return
        try:
            sidecar.save(path, task_id=task_id, record=self.journal.get(task_id),
                         response=answer, size=res.size, sha256=res.sha256, now=self.env.now())
        except (OSError, WanvidError) as e:
            why = e.message if isinstance(e, WanvidError) else (e.strerror or str(e))
            self.env.warn(f"{task_id}: metadata {sidecar.sidecar_path(path).name} not written "
                          f"({why}); the video is saved")

    # --- task lists -------------------------------------------------------------------

    def local_tasks(self, *, status: str | None = None, since: float | None = None,
                    limit: int | None = None) -> list[dict[str, Any]]:
        """The journal's tasks, newest first (``since``: seconds back from now; ``limit``:
        at most that many, the newest)."""
        now = self.env.now()
        return [task_row(r, now) for r in self.local_records(status=status, since=since,
                                                             limit=limit)]

    def local_records(self, *, status: str | None = None, since: float | None = None,
                      limit: int | None = None) -> list[TaskRecord]:
        """The journal's records, newest first (``since``: seconds back from now;
        ``limit``: at most that many, the newest)."""
        now = self.env.now()
        return self.reader.list(status=status.upper() if status else None,
                                 since=(now - since) if since else None,
                                 newest_first=True, limit=limit)

    def forget(self, ids: list[str]) -> list[str]:
        """Remove these tasks from the journal (their videos stay on disk). All or none:
        an id the journal does not hold is refused (``BadInputError``) and nothing is
        removed. A task still running or not yet saved is forgotten too, when asked: it
        is then no longer waited for by ``wait --pending``."""
        from wanvid.sanitize import one_line

        piped = not ids and not self.env.stdin_isatty
        ids = self.read_ids(ids)
        if not ids and piped:  # `... | jq ... | wanvid tasks --forget -` found nothing
            return []
        if not ids:
            raise BadInputError("--forget: no task ids given (as arguments, or on stdin, one "
                                "per line)")
        journal = self.journal
        unknown = [t for t in ids if journal.get(t) is None]
        if unknown:
            raise BadInputError(f"--forget: {one_line(unknown[0], 60)} is not in the journal"
                                + (f" (nor {len(unknown) - 1} other id(s))"
                                   if len(unknown) > 1 else "")
                                + "; nothing was removed (`wanvid tasks` lists it)")
        return journal.forget(ids)

    def remote_tasks(self, *, status: str | None = None, since: float | None = None,
                     model: str | None = None, page: int = 1, page_size: int = 10,
                     ) -> dict[str, Any]:
        """The account's task list from the service (``since``: seconds back from now)."""
        import time as _time

        now = self.env.now()
        params: dict[str, Any] = {"status": status.upper() if status else None,
                                  "model_name": model, "page_no": page, "page_size": page_size}
        if since:
            fmt = "%Y-%m-%d %H:%M:%S"
            bj = 8 * 3600  # the task API speaks Beijing time (UTC+8)
            params["start_time"] = _time.strftime(fmt, _time.gmtime(now - since + bj))
            params["end_time"] = _time.strftime(fmt, _time.gmtime(now + bj))
        resp = self.client().list_tasks(**params)
        self._free_slots_of_ended(resp)
        return resp

    def _free_slots_of_ended(self, resp: dict[str, Any]) -> None:
        """The task list shows these tasks ended: the account slots their leases hold are
        free (a ``submit``'s task, left to hold its slot until someone sees it end). Only
        in a journal that exists and can be written; the list itself never fails for it."""
        from wanvid.envelope import task_list
        from wanvid.leases import ENDED

        ended = [str(t["task_id"]) for t in task_list(resp)
                 if isinstance(t.get("task_id"), str)
                 and str(t.get("task_status") or "").upper() in ENDED]
        if not ended or not self.env.journal_path.exists():
            return
        try:
            for task_id in ended:
                self.leases.release(task_id=task_id)
        except WanvidError:
            pass

    # --- helpers ----------------------------------------------------------------------

    def _date(self) -> str:
        return datetime.datetime.fromtimestamp(self.env.now()).strftime("%Y%m%d")


STATUS_BOUND = 90.0  # s for one task's status query, retries included (no --timeout): room for
# one Retry-After of 60 s (the cap) and the try after it


def slot_heartbeat(why: Wait, model: str) -> str:
    """The heartbeat line of a submit waiting for the account's limit (without elapsed)."""
    from wanvid.leases import SLOTS

    if why.reason == SLOTS:
        return (f"still waiting for a {model} slot ({why.others + why.mine} of "
                f"{why.limit.concurrent} held)")
    return f"still waiting for the account's {model} submit rate"


_REMOTE_HINT = "check `wanvid tasks --remote` before submitting again"
_INTENT_HINT = "`wanvid wait --pending` finds it if it was (the journal keeps the submit)"


def _intent_hint(message: str) -> str:
    if _REMOTE_HINT in message:
        return message.replace(_REMOTE_HINT, _INTENT_HINT)
    return f"{message}; the service may have created the task: {_INTENT_HINT}"


def intent_label(it: IntentRecord) -> str:
    """An interrupted submit as a person knows it: when, which model, which prompt."""
    from wanvid.sanitize import one_line

    when = datetime.datetime.fromtimestamp(it.created_at).strftime("%H:%M:%S")
    what = f"{one_line(it.prompt, 40)!r}" if it.prompt else "no prompt"
    return f"the submit of {when} ({it.model_name or it.model}, {what})"


def _stem(rec: TaskRecord) -> str:
    if rec.inputs:
        first = rec.inputs[0]
        if not first.startswith("data:"):
            return Path(first.split("?")[0].rstrip("/")).stem
    return ""


def _check_texts(opts: SubmitOptions) -> None:
    """Every name and text of a submit is valid UTF-8 (a file name of undecodable bytes is
    not): refused before anything is read or sent (``outputs.check_text``)."""
    from wanvid.outputs import check_text

    files = {"image": "IMAGE", "last_frame": "--last-frame", "first_clip": "--first-clip",
             "audio": "--audio"}
    for name, flag in files.items():
        check_text(getattr(opts, name), flag, "rename the file, or give a link to it with "
                   "a UTF-8 name (ln -s)")
    for name in ("prompt", "negative_prompt", "model", "resolution", "shot", "template",
                 "fit_background"):
        check_text(getattr(opts, name), f"--{name.replace('_', '-')}", "give UTF-8 text")
    params = opts.param.items() if isinstance(opts.param, dict) else (
        (p, None) for p in opts.param or () if isinstance(p, str))
    for key, value in params:
        check_text(str(key), "--param", "give UTF-8 text")
        if isinstance(value, str):
            check_text(value, "--param", "give UTF-8 text")


def _quiet(env: Environment) -> Reporter:
    from wanvid.progress import QuietReporter

    return QuietReporter(env)


def _check_single_output(output: str | None, count: int) -> None:
    """-o naming one file cannot hold several videos."""
    if not output or count < 2 or "{" in output or output.endswith(("/", "\\")):
        return
    if Path(output).is_dir():
        return
    raise BadInputError(f"-o {output} names one file but there are {count} tasks; give a "
                        "directory or a template with {task_id} or {stem}")


def task_row(r: TaskRecord, now: float) -> dict[str, Any]:
    d: dict[str, Any] = {"task_id": r.task_id, "status": r.status, "model": r.model,
                         "submitted_at": r.submitted_at, "path": r.path, "inputs": r.inputs,
                         "expires_at": r.expires_at, "code": r.code, "message": r.message}
    d["expires_in"] = (r.expires_at - now) if (r.expires_at and not r.path) else None
    return d


def status_line(tid: str, out: dict[str, Any], now: float) -> str:
    """One line about a task's state, everything from the service escaped."""
    from wanvid.journal import expires_from_url
    from wanvid.render import fmt_duration
    from wanvid.sanitize import one_line

    status = one_line(out.get("task_status", "UNKNOWN"), 40)
    line = f"{tid} {status}"
    if status == SUCCEEDED and isinstance(out.get("video_url"), str) and out["video_url"]:
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


def parse_since(value: str) -> float:
    """``30m``, ``2h``, ``1d`` → seconds."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", value)
    if not m:
        raise BadInputError(f"--since {value!r}: use a duration like 30m, 2h, 1d")
    n = float(m.group(1))
    return n * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
