"""wanvid completions: static shell completion scripts."""

from __future__ import annotations

from typing import Annotated

import typer

from wanvid.cli.app import app
from wanvid.cli.common import _state
from wanvid.errors import BadInputError


@app.command()
def completions(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print a shell completion script (static: pressing TAB runs no Python).

    Example: wanvid completions bash > ~/.local/share/bash-completion/completions/wanvid
    """
    from wanvid.cli.completion import generate

    try:
        script = generate(shell, app=app)
    except ValueError as e:
        raise BadInputError(str(e)) from None
    _state(ctx).env.out(script.removesuffix("\n"))

