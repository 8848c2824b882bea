"""``wanvid status`` without Typer: the command most often run in loops and scripts.

Importing Typer (and through it click) and building the command costs about as much as
the rest of a ``status`` run, request included. A plain ``wanvid status [ID ...]`` (ids,
``--json``, ``-q``/``--quiet`` in any order) is run here by ``wanvid.entry``; anything else
on the command line (``--help``, a root option, ``--``, a typo) goes to the Typer CLI,
which parses and reports it. Both run the same ``status_command`` and end in
``wanvid.runner``, so their output and exit codes are the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wanvid.context import Environment
    from wanvid.envelope import JsonOut
    from wanvid.service import Service

STATUS_FLAGS = frozenset({"--json", "-q", "--quiet"})


def _seconds(value: str) -> float | None:
    """A ``--timeout`` value as Typer would take it (a number >= 0), else None."""
    try:
        v = float(value)
    except ValueError:
        return None
    return v if v >= 0 and v == v else None


def split_timeout(rest: list[str]) -> tuple[list[str], float | None, bool]:
    """(the other arguments, the ``--timeout`` value or None, whether every ``--timeout``
    was well formed): ``--timeout S`` and ``--timeout=S``, the last one standing."""
    out: list[str] = []
    timeout: float | None = None
    ok = True
    i = 0
    while i < len(rest):
        a = rest[i]
        if a == "--timeout" or a.startswith("--timeout="):
            raw = a.partition("=")[2] if "=" in a else (rest[i + 1] if i + 1 < len(rest)
                                                         else "")
            i += 1 if "=" in a else 2
            value = _seconds(raw)
            ok = ok and value is not None
            timeout = value
            continue
        out.append(a)
        i += 1
    return out, timeout, ok


def is_plain_status(args: list[str]) -> bool:
    """``args`` is ``status`` followed only by task ids, status's own flags and a
    well-formed ``--timeout``."""
    if args[:1] != ["status"]:
        return False
    rest, _, ok = split_timeout(args[1:])
    return ok and all(a in STATUS_FLAGS or not a.startswith("-") for a in rest)


def status_command(svc: Service, task_ids: list[str] | None, jo: JsonOut | None,
                   timeout: float | None = None) -> int:
    """The body of ``wanvid status``: one line (or ``task`` envelope) per task as the
    service answers; the worst exit status. ``timeout``: see ``Service.status``."""
    from wanvid.envelope import error, status_data
    from wanvid.service import status_line, worst

    codes = []
    ids = svc.read_ids(task_ids)
    if jo is not None:
        jo.expect(ids)
    for st in svc.status(ids, timeout):
        if jo is not None:
            d = status_data(st)
            errs = [error(st.exit_status, d["message"] or f"the task is {st.status}",
                          service_code=d["code"], task_id=st.task_id)] if st.exit_status else []
            jo.item("task", st.exit_status, d, errs)
        else:
            svc.env.out(status_line(st.task_id, st.output, svc.env.now()))
        codes.append(st.exit_status)
    return svc.with_failed_inputs(int(worst(codes)), jo)


def run_status(args: list[str], env: Environment | None = None) -> int:
    """Run a plain ``status`` command line (``is_plain_status``) as ``wanvid.cli.main``
    would: the expiring-videos warning first, -q, --json envelopes, SIGTERM (only when
    ``env`` is None: a real run), every failure mapped by ``wanvid.runner``."""
    from wanvid import runner
    from wanvid.catalogue import use_user_catalogue
    from wanvid.context import Environment
    from wanvid.errors import ExitStatus, Terminated
    from wanvid.service import Service

    real = env is None
    env = env or Environment()
    use_user_catalogue(env.config_dir / "models.toml")  # as cli.main does
    rest, timeout, _ = split_timeout(args[1:])
    ids = [a for a in rest if a not in STATUS_FLAGS] or None
    jo: JsonOut | None = None
    if "--json" in rest:
        from wanvid.envelope import JsonOut

        jo = JsonOut(env, "status", streaming=None)
    runner.begin("status")
    previous = runner.install_sigterm() if real else None
    try:
        try:
            svc = Service(env)
            warning = svc.expiring_warning()
            if warning:
                env.warn(warning)
            if {"-q", "--quiet"} & set(rest):
                env.quiet = svc.quiet = True
            code, errors = status_command(svc, ids, jo, timeout), []
        except (Exception, KeyboardInterrupt) as e:
            got = runner.failure(e, env)
            if got is None:
                assert isinstance(e, Exception)  # a KeyboardInterrupt is known
                got = runner.internal(e, env, args)
                if got is None:
                    raise
            code, errors = got
            if code == ExitStatus.STDOUT_CLOSED:
                jo = None  # nobody is reading
        code = runner.finish_json(jo, code, errors)
    except KeyboardInterrupt as e:  # a second Ctrl-C / SIGTERM while finishing
        code = int(ExitStatus.TERMINATED if isinstance(e, Terminated)
                   else ExitStatus.INTERRUPTED)
    finally:
        runner.restore_sigterm(previous)
    return code
