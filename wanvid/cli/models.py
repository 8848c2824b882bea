"""wanvid models: the catalogue."""

from __future__ import annotations

from typing import Annotated

import typer

from wanvid.cli.app import app
from wanvid.cli.common import _state
from wanvid.cli.options import QuietOpt


@app.command()
def models(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """List the models, their resolutions, durations and audio support.

    Example: wanvid models --json | jq -r '.data[] | select(.audio) | .name'
    """
    from wanvid.cli.common import json_out as _json
    from wanvid.render import emit_models

    emit_models(_state(ctx).env, json_out=_json(ctx, "models", json_out))

