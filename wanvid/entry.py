"""Console-script entry point with a fast path.

``wanvid --version`` and ``wanvid models [--json]`` are answered here without importing
Typer (which pulls in click and pydantic), requests or rich: they are used in scripts and
completions, and must start in a few tens of milliseconds. Everything else goes to
``wanvid.cli.main``.
"""

from __future__ import annotations

import sys


def main() -> None:
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
    from wanvid.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
