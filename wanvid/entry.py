"""Console-script entry point with a fast path.

``wanvid --version`` and ``wanvid models [--json]`` are answered here without importing
Typer (which pulls in click and pydantic), requests or rich: they are used in scripts and
completions, and must start in a few tens of milliseconds. A plain ``wanvid status ID``
runs without Typer too (``wanvid.quick``). Everything else goes to ``wanvid.cli.main``.
"""

from __future__ import annotations

import os
import sys


def _fill_closed_std_fds() -> None:
    """Point a closed stdin, stdout or stderr (`<&-`, `>&-`, `2>&-`) at /dev/null, so the
    next file wanvid opens (the journal, a video's .part) cannot become fd 0-2 and receive
    what is meant for a terminal. Python already made the closed stream None; wanvid's
    writers treat that as "nobody is listening"."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                null = os.open(os.devnull, os.O_RDWR)
            except OSError:
                return
            if null != fd:  # the lowest free fd: it is fd itself when fd was closed
                os.dup2(null, fd)
                os.close(null)


def main() -> None:
    _fill_closed_std_fds()
    args = sys.argv[1:]
    if args == ["--version"]:
        from wanvid import __version__

        sys.stdout.write(f"wanvid {__version__}\n")
        sys.exit(0)
    if args[:1] == ["models"] and set(args[1:]) <= {"--json", "-q", "--quiet"}:
        from wanvid import models
        from wanvid.context import Environment
        from wanvid.envelope import JsonOut
        from wanvid.errors import StdoutClosed, WanvidError
        from wanvid.render import emit_models

        env = Environment()
        models.use_user_catalogue(env.config_dir / "models.toml")
        try:
            models.MODELS  # noqa: B018 - loads the user's models.toml
        except WanvidError:  # a bad models.toml: the full CLI reports it (text or JSON)
            from wanvid.cli import main as cli_main

            cli_main()
            return
        jo = JsonOut(env, "models") if "--json" in args else None
        try:
            emit_models(env, json_out=jo)
            if jo is not None:
                jo.finish(0)
        except (BrokenPipeError, StdoutClosed):
            sys.exit(141)
        sys.exit(0)
    if args[:1] == ["status"]:
        from wanvid.quick import is_plain_status, run_status

        if is_plain_status(args):  # without Typer (see wanvid.quick)
            sys.exit(run_status(args))
    from wanvid.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
