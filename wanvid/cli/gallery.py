"""wanvid gallery: a static index.html of the videos in a directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wanvid.cli.app import app
from wanvid.cli.common import service
from wanvid.cli.options import QuietOpt


@app.command()
def gallery(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Argument(
        metavar="[DIR]", help="The videos' directory (default: output_dir, or the current "
        "directory).", show_default=False)] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only videos submitted since: a duration back (2h, 7d) or a local "
        "date (2026-12-01).")] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open the page in your browser.")]
    = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an index.html that wanvid "
                                        "did not write.")] = False,
    quiet: QuietOpt = False,
) -> int:
    """Write DIR/index.html: one card per video (prompt, actual prompt, model, seed,
    thumbnail...), grouped by batch and prompt, with a text filter. Works offline and
    from file://; re-run it to update the page. Prints the page's path.

    Example: wanvid gallery videos/ --since 7d --open
    """
    from wanvid import gallery as g
    from wanvid.usage import parse_since

    svc = service(ctx, quiet)
    root = directory or svc.settings.output_dir or Path(".")
    start = parse_since(since, svc.env.now()) if since else None
    records = svc.reader.list() if svc.env.journal_path.exists() else []
    index, count = g.write(root, records=records, since=start, force=force, cwd=svc.env.cwd)
    svc.env.out(str(index))
    svc.env.note(f"gallery of {count} video(s): {index}")
    if open_it:
        import webbrowser

        if not webbrowser.open(index.resolve().as_uri()):
            svc.env.warn(f"no browser could be opened; open {index} yourself")
    return 0
