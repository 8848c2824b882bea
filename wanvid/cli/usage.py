"""wanvid usage: billed seconds, video counts and (at your prices) money, from the journal."""

from __future__ import annotations

from typing import Annotated

import typer

from wanvid.cli.app import app
from wanvid.cli.common import service
from wanvid.cli.options import JsonOpt, QuietOpt


@app.command()
def usage(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only tasks submitted since: a duration back (2h, 7d) or a local date "
        "(2026-12-01).")] = None,
    by: Annotated[str | None, typer.Option(
        "--by", help="One row per model, day or resolution.",
        autocompletion=lambda: ["model", "day", "resolution"])] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> int:
    """Billed seconds and video counts from the journal; money at your own per-second
    prices when the config has them (wanvid config set prices.MODEL 0.05).

    Example: wanvid usage --since 7d --by model
    """
    from wanvid.cli.common import json_out as _json
    from wanvid.usage import parse_since, price_table, summarize, text_lines

    jo = _json(ctx, "usage", json_out)
    svc = service(ctx, quiet)
    start = parse_since(since, svc.env.now()) if since else None
    prices = price_table(svc.settings.prices)
    if not svc.env.journal_path.exists():
        records = []
    else:
        records = svc.reader.list(since=start)
    report = summarize(records, by=by, prices=prices, since=start)
    if jo is not None:
        jo.result(report.to_dict())
        return 0
    for line in text_lines(report):
        svc.env.out(line)
    return 0
