"""The Typer application, its root options, and ``main()``: the one place where outcomes
become exit codes.

stdout carries only results (task ids, paths, JSON); everything for humans goes to stderr.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from wanvid import __version__
from wanvid.cli.common import State, _state
from wanvid.context import Environment, StdoutClosed
from wanvid.errors import ExitStatus, WanvidError

HELP = """Turn a still image (or a first and a last frame) into a video with Alibaba Cloud
Model Studio's Wan models.

Set DASHSCOPE_API_KEY, then: wanvid generate photo.png -p "the cat turns its head"
"""

app = typer.Typer(help=HELP, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode="rich",
                  context_settings={"help_option_names": ["-h", "--help"]})


def _version(value: bool) -> None:
    if value:
        print(f"wanvid {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    region: Annotated[str | None, typer.Option(
        "--region", help="intl (Singapore, default), cn (Beijing) or us (Virginia).",
        envvar=None)] = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", help="API root, e.g. http://127.0.0.1:8765/api/v1 (overrides --region; "
        "env DASHSCOPE_HTTP_BASE_URL).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Log requests (never the key) and show "
                                        "tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    st = _state(ctx)
    st.region, st.base_url, st.debug = region, base_url, debug
    from wanvid.service import GUARDED

    if ctx.invoked_subcommand in GUARDED and not {"--help", "-h"} & set(st.argv):
        warning = st.service.expiring_warning()
        if warning:
            st.env.warn(warning)
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=st.env.stderr,
                            format="wanvid: debug: %(name)s: %(message)s")



def _interrupted(env: Environment) -> int:
    env.err("wanvid: interrupted; submitted tasks are in the journal: "
            "`wanvid wait --pending` picks them up")
    return int(ExitStatus.INTERRUPTED)


def _is_click_exception(e: BaseException) -> bool:
    return hasattr(e, "exit_code") and hasattr(e, "format_message")


def _quiet_rich_broken_pipe() -> None:
    """Help is drawn by rich, which turns a closed stdout into exit 1; make it the
    documented 141 (``wanvid --help | head -1``) like every other closed stdout."""
    import os

    from rich.console import Console

    def on_broken_pipe(self: Console) -> None:
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        raise StdoutClosed

    Console.on_broken_pipe = on_broken_pipe  # type: ignore[method-assign]


def main(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Run the CLI; map every outcome to an exit code in this one place."""
    env = env or Environment()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        args = ["--help"]  # `wanvid` alone: the help, exit 0
    if {"-h", "--help"} & set(args):
        _quiet_rich_broken_pipe()
    debug = "--debug" in args
    code: int
    try:
        rv = app(args=args, prog_name="wanvid", standalone_mode=False,
                 obj=State(env=env, argv=args))
        code = int(rv) if isinstance(rv, int) else 0
        if code == ExitStatus.INTERRUPTED:  # Typer turns Ctrl-C into a returned 130
            code = _interrupted(env)
    except WanvidError as e:
        env.err(f"wanvid: error: {e.message}")
        code = int(e.status)
    except KeyboardInterrupt:
        code = _interrupted(env)
    except typer.Exit as e:
        code = int(getattr(e, "exit_code", 0) or 0)
    except typer.Abort:
        env.err("wanvid: aborted")
        code = int(ExitStatus.INTERRUPTED)
    except (BrokenPipeError, StdoutClosed):
        code = int(ExitStatus.STDOUT_CLOSED)
    except Exception as e:
        if _is_click_exception(e):
            msg = e.format_message()  # type: ignore[attr-defined]
            cmd = getattr(getattr(e, "ctx", None), "command_path", "wanvid")
            env.err(f"wanvid: error: {msg} (see `{cmd} --help`)")
            code = int(ExitStatus.BAD_INPUT)
        else:
            if debug or env.get("WANVID_RAISE"):
                raise
            env.err(f"wanvid: internal error: {type(e).__name__}: {e} "
                     "(run with --debug for a traceback)")
            code = 1
    if argv is None:
        sys.exit(code)
    return code
