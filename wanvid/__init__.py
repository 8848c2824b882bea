"""wanvid: a command-line client and Python library for the Wan image-to-video API
(Alibaba Cloud Model Studio).

    import wanvid
    task_id = wanvid.submit("cat.png", prompt="the cat blinks")
    results = wanvid.wait([task_id], output="videos/")
    path = wanvid.generate("cat.png", prompt="the cat blinks", output="clip.mp4")

See ``wanvid.api`` for the functions, ``wanvid.service.Service`` for the use cases behind
them, and ``wanvid.errors`` for the exceptions (each carries ``exit_status``). Importing
``wanvid`` is cheap: the rest loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Each public name and the module it comes from, loaded on first use. Not ``download`` or
# ``service``: those names are the submodules wanvid.download and wanvid.service, which a
# package attribute must not shadow. (The TYPE_CHECKING imports below say the same for
# type checkers, and __all__ lists them: tests/test_public_api.py checks the three agree.)
_LAZY: dict[str, str] = {
    **dict.fromkeys(("submit", "wait", "generate", "status", "save", "cancel", "Result"),
                    "wanvid.api"),
    **dict.fromkeys(("WanvidError", "BadInputError", "AuthError", "RejectedError",
                     "TaskFailedError", "URLExpiredError", "WaitTimeoutError", "NetworkError",
                     "ThrottledError", "JournalError", "WriteError", "ExitStatus"),
                    "wanvid.errors"),
    "Environment": "wanvid.context",
    "Service": "wanvid.service",
}

# Written out for linters and type checkers, which read it without running this module.
__all__ = [
    "AuthError", "BadInputError", "Environment", "ExitStatus", "JournalError", "NetworkError",
    "RejectedError", "Result", "Service", "TaskFailedError", "ThrottledError",
    "URLExpiredError", "WaitTimeoutError", "WanvidError", "WriteError", "__version__",
    "cancel", "generate", "save", "status", "submit", "wait",
]

if TYPE_CHECKING:
    from wanvid.api import Result, cancel, generate, save, status, submit, wait
    from wanvid.context import Environment
    from wanvid.errors import (
        AuthError,
        BadInputError,
        ExitStatus,
        JournalError,
        NetworkError,
        RejectedError,
        TaskFailedError,
        ThrottledError,
        URLExpiredError,
        WaitTimeoutError,
        WanvidError,
        WriteError,
    )
    from wanvid.service import Service


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wanvid' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
