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
    path: Annotated[bool, typer.Option("--path", help="Print the path of your own catalogue, "
                                       "models.toml (it adds models and changes shipped ones).")
                    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """List the models, their resolutions, durations and audio support.

    FROM says where each entry comes from: shipped with wanvid, user (your models.toml, see
    --path) or user-override (a shipped entry your file changes).

    Example: wanvid models --json | jq -r '.data[] | select(.audio) | .name'
    """
    from wanvid.cli.common import json_out as _json
    from wanvid.render import emit_models, emit_models_path

    st = _state(ctx)
    if quiet:
        st.env.quiet = True
    if path:
        emit_models_path(st.env, json_out=_json(ctx, "models", json_out))
        return
    emit_models(st.env, json_out=_json(ctx, "models", json_out))

