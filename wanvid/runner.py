"""Ending one run of a command, Typer or not: every exception a command raises mapped to
its exit code and its one line on stderr, SIGTERM handled like Ctrl-C, and the closing
``--json`` envelope.

The Typer CLI (``wanvid.cli.app``) and the fast path of plain ``wanvid status ID``
(``wanvid.quick``) both end here, so both exit alike. Imports neither typer nor rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wanvid.errors import ExitStatus, StdoutClosed, Terminated, WanvidError, exit_status_of

if TYPE_CHECKING:
    from wanvid.context import Environment
    from wanvid.envelope import JsonOut

Errors = list[dict[str, object]]

# The signals seen during this run (a SIGTERM that click turned into a plain 130).
signalled: set[ExitStatus] = set()
# What to run after Ctrl-C or SIGTERM, when the command knows better than "wait --pending"
# (a batch: run it again); cleared with ``signalled``.
resume_hint: list[str] = []
# The command being run ("status", "config list"; set by the CLI): what the line after
# Ctrl-C or SIGTERM may say to do next depends on it.
command: list[str] = []
# Commands that submit or wait for tasks: after Ctrl-C their tasks are in the journal.
SUBMITTING = frozenset({"submit", "generate", "wait", "batch", "demo"})
# The line ``interrupted`` wrote, for the --json envelope (said once, read once).
_said: list[str] = []


def begin(name: str) -> None:
    """A new run of command ``name`` ("status", "config list"): nothing signalled yet."""
    signalled.clear()
    resume_hint.clear()
    _said.clear()
    command[:] = [name]


def interrupt_message(status: ExitStatus) -> str:
    """What the line after Ctrl-C or SIGTERM says: what happened and, where the command
    left something to finish, what to run."""
    from wanvid.intents import after_interrupt

    what = "terminated (SIGTERM)" if status == ExitStatus.TERMINATED else "interrupted"
    hint = after_interrupt()  # read even when not used: it resets the in-flight flag
    name = command[-1] if command else None
    if resume_hint:
        return f"{what}; {resume_hint[-1]}"
    if name is None or name in SUBMITTING or "in flight" in hint:
        return f"{what}; {hint}"
    if name == "download":
        return f"{what}; what was fetched is kept: the same command resumes it"
    return what


def interrupted(env: Environment, status: ExitStatus = ExitStatus.INTERRUPTED) -> int:
    """Ctrl-C or SIGTERM: the one line saying so (with what to run next); its exit code."""
    message = interrupt_message(status)
    _said[:] = [message]
    env.err(f"wanvid: {message}")
    return int(status)


def install_sigterm() -> object:
    """SIGTERM (CI runners, `timeout`) becomes ``Terminated``, a KeyboardInterrupt: every
    path that keeps the journal and partial downloads safe on Ctrl-C applies as well.
    Returns the previous handler, for ``restore_sigterm`` (None: nothing installed)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def on_term(signum: int, frame: object) -> None:
        signalled.add(ExitStatus.TERMINATED)  # click may turn the exception into a 130
        raise Terminated

    try:
        return signal.signal(signal.SIGTERM, on_term)
    except (ValueError, OSError):
        return None


def restore_sigterm(previous: object) -> None:
    if previous is not None:
        import signal

        signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]


def failure(e: BaseException, env: Environment) -> tuple[int, Errors] | None:
    """The exit status and envelope errors of a failure wanvid knows (its line written to
    stderr): a ``WanvidError``, Ctrl-C or SIGTERM, a closed stdout (no errors: nobody is
    reading). None for anything else."""
    if isinstance(e, WanvidError):
        env.err(f"wanvid: error: {e.message}")
        return int(e.status), [exception_error(e, int(e.status))]
    if isinstance(e, KeyboardInterrupt):
        code = interrupted(env, exit_status_of(e))
        return code, [exception_error(e, code)]
    if isinstance(e, BrokenPipeError | StdoutClosed):
        return int(ExitStatus.STDOUT_CLOSED), []
    return None


def internal(e: Exception, env: Environment, args: list[str]) -> tuple[int, Errors] | None:
    """An exception nobody expected: one line naming it, exit 1. None (the caller
    re-raises it, traceback and all) under ``--debug`` or ``WANVID_RAISE``."""
    if "--debug" in args or env.get("WANVID_RAISE"):
        return None
    env.err(f"wanvid: internal error: {type(e).__name__}: {e} "
            "(run with --debug for a traceback)")
    return 1, [exception_error(e, 1)]


def exception_error(e: BaseException, code: int) -> dict[str, object]:
    from wanvid.envelope import error as plain
    from wanvid.envelope import exception_error as error

    if isinstance(e, KeyboardInterrupt) and _said:
        return plain(code, _said.pop())  # the line stderr got
    if isinstance(e, KeyboardInterrupt) and resume_hint:
        what = "terminated (SIGTERM)" if code == ExitStatus.TERMINATED else "interrupted"
        return plain(code, f"{what}; {resume_hint[-1]}")
    return error(e, code)


def finish_json(jo: JsonOut | None, code: int, errors: Errors) -> int:
    """The last envelope of a --json run (the result, or the summary of a stream)."""
    if jo is None:
        return code
    try:
        jo.finish(code, errors)
    except (BrokenPipeError, StdoutClosed):
        return int(ExitStatus.STDOUT_CLOSED)
    return code
