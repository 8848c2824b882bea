"""Exit statuses and the exception types that carry them.

One table, one place: every failure wanvid reports is a ``WanvidError`` subclass whose
``status`` is the process exit code. The CLI maps exceptions to exit codes only here
(see ``cli.run_command``).
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    BAD_INPUT = 2  # bad usage or input; nothing was sent
    AUTH = 3  # missing or rejected API key
    REJECTED = 4  # request rejected by the service (other 4xx)
    TASK_FAILED = 5  # task ended FAILED, CANCELED or UNKNOWN, or its video URL expired
    TIMEOUT = 6  # timed out waiting
    NETWORK = 7  # network or service error after retries
    JOURNAL = 8  # the task journal could not be read or written (saved videos are listed)
    OUTPUT = 9  # a paid-for video could not be written where asked; the task stays pending
    INTERNAL = 1  # a bug in wanvid (run with --debug for a traceback)
    INTERRUPTED = 130  # Ctrl-C / SIGINT
    STDOUT_CLOSED = 141  # stdout's reader went away (like SIGPIPE)
    TERMINATED = 143  # SIGTERM (CI runners, `timeout`): handled like Ctrl-C


EXIT_CODE_TABLE: list[tuple[int, str]] = [
    (ExitStatus.OK, "success"),
    (ExitStatus.INTERNAL, "internal error (a bug: please report it, with --debug output)"),
    (ExitStatus.BAD_INPUT, "bad usage or input (nothing was sent)"),
    (ExitStatus.AUTH, "missing or rejected API key"),
    (ExitStatus.REJECTED, "request rejected by the service (other 4xx)"),
    (ExitStatus.TASK_FAILED, "task FAILED, CANCELED or UNKNOWN, or its video URL expired"),
    (ExitStatus.TIMEOUT, "timed out waiting"),
    (ExitStatus.NETWORK, "network or service error after retries"),
    (ExitStatus.JOURNAL, "the task journal is damaged, or could not be written "
                         "(videos saved meanwhile are listed)"),
    (ExitStatus.OUTPUT, "a finished video could not be written where asked (the task stays "
                        "pending: `wanvid wait --pending -o DIR`)"),
    (ExitStatus.INTERRUPTED, "interrupted (Ctrl-C)"),
    (ExitStatus.STDOUT_CLOSED, "stdout closed by its reader (e.g. | head -1)"),
    (ExitStatus.TERMINATED, "terminated (SIGTERM, e.g. from a CI runner or `timeout`)"),
]


class WanvidError(Exception):
    """Base class: a failure with a one-line message and an exit status."""

    status: ExitStatus = ExitStatus.NETWORK

    def __init__(self, message: str, *, code: str | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id

    @property
    def exit_status(self) -> ExitStatus:
        """The code the CLI exits with for this failure."""
        return self.status

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"code": self.code or type(self).__name__,
                                "message": self.message}
        if self.request_id:
            d["request_id"] = self.request_id
        return d


class BadInputError(WanvidError):
    """Bad usage or input, detected before anything was sent."""

    status = ExitStatus.BAD_INPUT


class BusyError(BadInputError):
    """Another wanvid process holds the file (it is downloading the same video)."""


class AuthError(WanvidError):
    status = ExitStatus.AUTH


class RejectedError(WanvidError):
    """The service answered a request with a 4xx other than auth and throttling."""

    status = ExitStatus.REJECTED


class TaskFailedError(WanvidError):
    """A task ended FAILED, CANCELED or UNKNOWN, or its result can no longer be fetched."""

    status = ExitStatus.TASK_FAILED


class URLExpiredError(TaskFailedError):
    """The signed video URL's 24-hour window has passed."""


class WaitTimeoutError(WanvidError):
    status = ExitStatus.TIMEOUT


class NetworkError(WanvidError):
    """Network or service error that persisted after retries."""

    status = ExitStatus.NETWORK


class ThrottledError(NetworkError):
    """The service said "too many requests" (429 / a Throttling code), after retries."""


class ProtocolAnswerError(NetworkError):
    """The service's answer breaks the protocol (exit 7)."""


class TooLarge(NetworkError):
    """A body bigger than wanvid accepts (exit 7)."""


class DeadlineExceeded(WaitTimeoutError):
    """The command's --timeout passed (exit 6)."""


class WriteError(WanvidError):
    """The video could not be written to disk (exit 9: the task stays pending; unlike
    exit 2, this can happen after the task was paid for)."""

    status = ExitStatus.OUTPUT


class JournalError(WanvidError):
    """The journal cannot be opened, read or written, is damaged, or is from a newer
    wanvid (exit 8)."""

    status = ExitStatus.JOURNAL


class StdoutClosed(Exception):  # noqa: N818 - a signal, not an error
    """stdout's reader went away (a closed pipe): exit 141, like SIGPIPE."""

    status = ExitStatus.STDOUT_CLOSED


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by ``cli.main``'s handler: handled like Ctrl-C
    (journal safe, partial downloads kept, the resume hint), exit 143."""

    status = ExitStatus.TERMINATED


def is_throttled(e: BaseException) -> bool:
    """Throttling is a type: a ``ThrottledError``, or a service error whose code says so."""
    return isinstance(e, ThrottledError) or (
        isinstance(e, WanvidError) and (e.code or "").startswith("Throttling"))


def exit_status_of(e: BaseException) -> ExitStatus:
    """The exit status an exception stands for (the one mapping, used by ``cli.main``)."""
    if isinstance(e, WanvidError):
        return e.status
    if isinstance(e, StdoutClosed | BrokenPipeError):
        return ExitStatus.STDOUT_CLOSED
    if isinstance(e, Terminated):
        return ExitStatus.TERMINATED
    if isinstance(e, KeyboardInterrupt):
        return ExitStatus.INTERRUPTED
    return ExitStatus.INTERNAL
