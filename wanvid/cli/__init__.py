"""The command-line layer: parses arguments, calls the library, renders results.

One module per command or family; ``app.main()`` maps every outcome to an exit code.
"""

from __future__ import annotations

from wanvid.cli import (  # noqa: F401
    batch,
    completions,
    config,
    emulator,
    gallery,
    models,
    submit,
    tasks,
    usage,
)
from wanvid.cli.app import app, main

__all__ = ["app", "main"]
